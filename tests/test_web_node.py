"""transformers.js in Node (onnxruntime-node) runs edgeforge artifacts unchanged, and agrees with edgeforge's runtime.

The real library (web/node_modules, pinned by web/package-lock.json; install once with `bash web/setup.sh`)
loads the artifact directory by path with each dtype the artifact has, runs the image-segmentation /
image-classification pipeline, and web/node/predict.mjs writes what it returned. Images at the model's
input size make both sides skip image resizing, so these checks see the model and the post-processing;
`test_images_of_other_sizes` measures what the libraries' different image resizing does (see the README).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

WEB = Path(__file__).resolve().parents[1] / "web"
NODE = shutil.which("node")
AGREEMENT = {"fp32": 0.995}  # label-map pixel agreement with the Python runtime, same file on both sides
QUANTIZED_AGREEMENT = 0.98
WEB_MODELS = ("face-parsing", "facial-emotions")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the transformers.js checks need "
                                "Node.js >= 20.19 and `bash web/setup.sh`")


# --- helpers shared with test_web_browser.py --------------------------------------------------------------
_ARTIFACTS = pytest.StashKey[dict]()


# Every ONNX precision edgeforge makes. The accuracy budget is beside the point here (both sides run the
# same file), so it is set wide open: no variant is withheld for drift, every dtype gets checked.
WEB_PRECISIONS = "fp16,quantized,int8,uint8,q4"


def web_artifacts_for(request) -> dict[str, Path]:
    """name -> artifact directory with every ONNX precision, once per session, from the shipped trained minis
    (clear label maps, no near-ties between classes)."""
    stash = request.config.stash
    if _ARTIFACTS not in stash:
        from edgeforge.quantize.calibration import Calibration
        from edgeforge.stages import quantize

        root = request.getfixturevalue("tmp_path_factory").mktemp("web-artifacts")
        trained = request.getfixturevalue("trained_artifacts")
        for name in WEB_MODELS:
            shutil.copytree(trained[name], root / name)
            quantize(root / name, precisions=WEB_PRECISIONS, calibration=Calibration(None, 2), budget=100.0, log=lambda *_: None)
        stash[_ARTIFACTS] = {name: root / name for name in WEB_MODELS}
    return stash[_ARTIFACTS]


def require_web_install() -> None:
    """A machine with node but without the npm packages was not set up: that is a failure, not a skip."""
    if not (WEB / "node_modules" / "@huggingface" / "transformers").is_dir():
        pytest.fail("web/node_modules is missing: run `bash web/setup.sh` once (npm ci in web/)")


def loadable_variants(artifact: Path) -> dict[str, str]:
    """edgeforge variant -> transformers.js dtype, for the variants transformers.js can load (as serve-web lists them)."""
    from edgeforge.cli.serve_web import model_index

    (entry,) = model_index({"model": artifact})["models"]
    return {v["variant"]: v["dtype"] for v in entry["variants"]}


def minimum_agreement(variant: str) -> float:
    return AGREEMENT.get(variant, QUANTIZED_AGREEMENT)


def decode_label_map(record: dict) -> np.ndarray:
    data = np.frombuffer(base64.b64decode(record["label_map"]), dtype=np.uint8)
    return data.reshape(record["height"], record["width"])


def model_input_size(artifact: Path) -> tuple[int, int]:
    """(width, height) the artifact's image processor resizes to."""
    from edgeforge.runtime.artifact import Artifact
    from edgeforge.runtime.preprocess import Preprocessor

    preprocessor = Preprocessor.from_config(Artifact.open(artifact).preprocessor_config)
    return preprocessor.width, preprocessor.height


def write_samples(kind: str, indices, size: int, out_dir: Path, seed: int = 11) -> list[Path]:
    """Synthetic samples as PNG (lossless: both sides decode the same pixels)."""
    from edgeforge.data.synth import make_sample

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in indices:
        image, _ = make_sample(kind, index, seed=seed, size=size)
        paths.append(out_dir / f"{kind}-{index}-{size}.png")
        image.save(paths[-1])
    return paths


# --- running transformers.js ------------------------------------------------------------------------------
def node_predict(artifact: Path, dtypes, images, out: Path, target_size: tuple[int, int] | None = None) -> dict:
    command = [NODE, str(WEB / "node" / "predict.mjs"), str(artifact), "--dtype", ",".join(dtypes), "--out", str(out)]
    if target_size:
        command += ["--target-size", f"{target_size[0]}x{target_size[1]}"]
    result = subprocess.run([*command, *map(str, images)], capture_output=True, text=True, timeout=600, cwd=WEB)
    assert result.returncode == 0, result.stderr
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def web_artifacts(request):
    require_web_install()
    return web_artifacts_for(request)


def _report(capsys, title: str, rows: list[str]) -> None:
    with capsys.disabled():
        print(f"\n{title}\n" + "\n".join(f"  {row}" for row in rows))


# --- the checks -------------------------------------------------------------------------------------------
def test_segmentation_label_maps_match_python_runtime_for_every_dtype(web_artifacts, tmp_path, capsys):
    from edgeforge.runtime import load

    artifact = web_artifacts["face-parsing"]
    variants = loadable_variants(artifact)
    assert "fp32" in variants
    width, height = model_input_size(artifact)
    images = write_samples("faces", (0, 1), width, tmp_path)
    output = node_predict(artifact, variants.values(), images, tmp_path / "seg.json")
    assert output["task"] == "image-segmentation"
    assert len(output["records"]) == len(variants) * len(images)

    variant_of = {dtype: variant for variant, dtype in variants.items()}
    rows = []
    for dtype in variants.values():
        variant = variant_of[dtype]
        model = load(artifact, variant=variant)
        records = [r for r in output["records"] if r["dtype"] == dtype]
        for record in records:
            expected = model.predict(record["image"]).label_map
            got = decode_label_map(record)
            assert got.shape == expected.shape == (height, width)
            agreement = float((got == expected).mean())
            rows.append(f"{variant:9s} (dtype {dtype:5s}) {Path(record['image']).name}: {agreement:.4%} of pixels "
                        f"agree; Node: pipeline {record['infer_ms']:.0f} ms, of which model {record['session_ms']:.0f} ms")
            assert agreement >= minimum_agreement(variant), rows[-1]
    _report(capsys, "transformers.js (Node) vs edgeforge runtime, face parsing:", rows)


@pytest.mark.parametrize("target_size", [(512, 512), (320, 240)])
def test_logits_upsampling_to_any_size_matches(web_artifacts, tmp_path, target_size):
    """The pipeline's `target_sizes`: transformers.js's bilinear logits resize (half-pixel, align_corners=False)
    against edgeforge's torch-exact one, with the image resizing out of the way."""
    from edgeforge.runtime import load

    artifact = web_artifacts["face-parsing"]
    width, _ = model_input_size(artifact)
    images = write_samples("faces", (2,), width, tmp_path)
    (record,) = node_predict(artifact, ["fp32"], images, tmp_path / "up.json", target_size)["records"]
    model = load(artifact)
    expected = model.postprocess(model.logits(images), [target_size])[0].label_map
    got = decode_label_map(record)
    assert got.shape == expected.shape == (target_size[1], target_size[0])
    assert (got == expected).mean() >= AGREEMENT["fp32"]


def test_images_of_other_sizes(web_artifacts, tmp_path, capsys):
    """Images the processor must resize: transformers.js in Node resizes with sharp's affine transform (no
    antialiasing, top-left aligned), edgeforge and Hugging Face with PIL's antialiased bilinear. The label map
    still comes back at the image's size; the agreement is measured and printed (it depends on the model)."""
    from edgeforge.runtime import load

    artifact = web_artifacts["face-parsing"]
    large = write_samples("faces", (3,), 512, tmp_path)[0]
    from PIL import Image

    wide = tmp_path / "faces-3-320x240.png"
    Image.open(large).resize((320, 240), Image.Resampling.LANCZOS).save(wide)
    output = node_predict(artifact, ["fp32"], [large, wide], tmp_path / "sizes.json")
    model = load(artifact)
    rows = []
    for record in output["records"]:
        expected = model.predict(record["image"]).label_map
        got = decode_label_map(record)
        assert got.shape == expected.shape == Image.open(record["image"]).size[::-1]
        rows.append(f"{Path(record['image']).name}: {(got == expected).mean():.2%} of pixels agree")
    _report(capsys, "transformers.js (Node) vs edgeforge runtime on images that need resizing (fp32):", rows)


def test_classification_top1_matches_python_runtime_for_every_dtype(web_artifacts, tmp_path, capsys):
    from edgeforge.runtime import load

    artifact = web_artifacts["facial-emotions"]
    variants = loadable_variants(artifact)
    width, _ = model_input_size(artifact)
    images = write_samples("expressions", (0, 1, 2), width, tmp_path)
    output = node_predict(artifact, variants.values(), images, tmp_path / "cls.json")
    assert output["task"] == "image-classification"
    variant_of = {dtype: variant for variant, dtype in variants.items()}
    rows = []
    for record in output["records"]:
        variant = variant_of[record["dtype"]]
        expected = load(artifact, variant=variant).predict(record["image"])
        scores = record["scores"]
        assert set(scores) == set(expected.id2label.values())
        top = max(scores, key=scores.get)
        gap = max(abs(scores[label] - p) for label, p in expected.scores().items())
        rows.append(f"{variant:9s} {Path(record['image']).name}: top-1 {top} (Python {expected.label}), "
                    f"max |score diff| {gap:.1e}")
        assert top == expected.label, rows[-1]
        if variant == "fp32":
            assert gap < 1e-4, rows[-1]
    _report(capsys, "transformers.js (Node) vs edgeforge runtime, facial emotions:", rows)


def test_predict_script_fails_clearly_on_a_missing_dtype(web_artifacts, tmp_path):
    """A dtype the artifact lacks is a clear failure (transformers.js reports the missing file), never a
    silent fallback to another precision."""
    artifact = web_artifacts["facial-emotions"]
    absent = "q2"  # a transformers.js dtype (onnx/model_q2.onnx) that edgeforge never writes
    assert absent not in loadable_variants(artifact).values()
    image = write_samples("expressions", (0,), model_input_size(artifact)[0], tmp_path)[0]
    command = [NODE, str(WEB / "node" / "predict.mjs"), str(artifact), "--dtype", absent, "--out",
               str(tmp_path / "x.json"), str(image)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=WEB)
    assert result.returncode == 1
    assert f"model_{absent}.onnx" in result.stderr or "not found" in result.stderr.lower(), result.stderr
    assert not (tmp_path / "x.json").exists()
