"""LiteRT target on the trained minis: the .tflite agrees with the ONNX graph, its quantized variants stay
within the budget, the runtime runs it with no build-side import, and bad input gets one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import one_line_error

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")
pytest.importorskip("ai_edge_quantizer")

from edgeforge.contract import VARIANTS  # noqa: E402
from edgeforge.runtime import load  # noqa: E402

QUIET = {"log": lambda *_: None}
NAMES = ("face-parsing", "facial-emotions")
LITERT_PRECISIONS = ("litert-fp16", "litert-dynamic-int8", "litert-int8")


@pytest.fixture(scope="module")
def litert_artifacts(tmp_path_factory):
    """Each trained mini built for onnx + litert, with every LiteRT precision the budget allows."""
    from edgeforge.pipeline import PipelineOptions, run_pipeline
    from edgeforge.zoo.shipped import trained_checkpoint

    root = tmp_path_factory.mktemp("litert")
    for name in NAMES:
        run_pipeline(trained_checkpoint(name), root / name,
                     PipelineOptions(targets=("onnx", "litert"), precisions=",".join(LITERT_PRECISIONS), bench="none"),
                     **QUIET)
    return {name: root / name for name in NAMES}


def _images(kind: str, count: int = 6):
    from edgeforge.data.synth import make_sample

    sizes = ((256, 256), (384, 256), (200, 320))
    return [make_sample(kind, i, seed=5151, size=256)[0].resize(sizes[i % 3]) for i in range(count)]


def test_the_tflite_agrees_with_the_onnx_graph(litert_artifacts):
    for name, kind in (("face-parsing", "faces"), ("facial-emotions", "expressions")):
        images = _images(kind)
        onnx, tflite = load(litert_artifacts[name]), load(litert_artifacts[name], variant="litert", threads=2)
        assert tflite.providers == ["LiteRT CPU (XNNPACK)"]
        for a, b in zip(onnx.predict(images), tflite.predict(images)):
            if name == "face-parsing":
                assert (a.label_map == b.label_map).mean() >= 0.999
            else:
                assert a.label == b.label
        entry = json.loads((litert_artifacts[name] / "manifest.json").read_text())["variants"]["litert"]
        assert entry["validation"]["reference"] == "stock PyTorch model"
        # XNNPACK runs the whole graph: nothing falls back to TFLite's own kernels between partitions.
        assert entry["litert"]["ops"] and entry["litert"]["xnnpack_partitions"] == 1
        if name == "face-parsing":  # the family's rewrites for LiteRT went into the .tflite
            assert entry["rewrites"] == ["segformer-decode-head", "segformer-litert-attention",
                                         "segformer-litert-channels-last"]


def test_the_litert_rewrites_keep_every_op_in_xnnpack_and_cancel_the_layout_transposes(mini_checkpoints, tmp_path):
    """The face mini converted with ONNX's rewrites: its one-head attention scores become FULLY_CONNECTED ops with
    run-time weights, which XNNPACK's default delegate leaves to TFLite (more than one partition), and its conv
    inputs and outputs are transposed twice. With LiteRT's own: one partition, BATCH_MATMULs, fewer TRANSPOSEs."""
    from edgeforge.export.rewrite import rewrite_model
    from edgeforge.runtime.engines import litert_op_set
    from edgeforge.targets.litert import convert_checkpoint
    from edgeforge.zoo.checkpoints import load_checkpoint

    checkpoint = load_checkpoint(mini_checkpoints["face-parsing"])
    assert checkpoint.config.num_attention_heads[0] == 1
    op_sets = {}
    for target in ("onnx", "litert"):
        convert_checkpoint(checkpoint, rewrite_model(checkpoint.model, checkpoint.family.rewrites_for(target)),
                           tmp_path / f"{target}.tflite")
        op_sets[target] = litert_op_set(tmp_path / f"{target}.tflite")
    onnx, litert = op_sets["onnx"], op_sets["litert"]
    assert onnx["xnnpack_partitions"] > 1 and litert["xnnpack_partitions"] == 1
    assert litert["ops"]["BATCH_MATMUL"] > onnx["ops"]["BATCH_MATMUL"]
    assert litert["ops"]["TRANSPOSE"] < onnx["ops"]["TRANSPOSE"] / 2


def test_predict_refills_its_logits_buffer_and_gives_the_fresh_results(litert_artifacts):
    images = _images("faces", 2)
    model = load(litert_artifacts["face-parsing"], variant="litert", threads=2)
    first = model.predict(images[0])
    buffer = model._buffers.logits
    second = model.predict(images[1])
    assert model._buffers.logits is buffer  # the same array, written again
    fresh = [load(litert_artifacts["face-parsing"], variant="litert").predict(image) for image in images]
    assert np.array_equal(first.label_map, fresh[0].label_map) and np.array_equal(second.label_map, fresh[1].label_map)
    assert not np.array_equal(first.label_map, second.label_map)  # two images: a stale buffer would show
    pixel_values, _ = model.preprocess([images[0]])
    wrong_shape = np.zeros((1, 2, 3), dtype=np.float32)
    out = model.forward(pixel_values, into=wrong_shape)
    assert out is not wrong_shape and np.array_equal(out, model.forward(pixel_values))


def test_quantized_litert_variants_are_within_the_budget_or_rejected(litert_artifacts):
    made = 0
    for name in NAMES:
        manifest = json.loads((litert_artifacts[name] / "manifest.json").read_text())
        for precision in LITERT_PRECISIONS:
            entry = manifest["variants"].get(precision) or manifest["rejected_variants"].get(precision)
            assert entry is not None, (name, precision)
            drift = entry["drift"]
            if precision in manifest["variants"]:
                made += 1
                assert drift["drift_points"] <= drift["budget_points"] and drift["passed"]
                made_file = litert_artifacts[name] / VARIANTS[precision].file
                assert made_file.is_file() and not made_file.stat().st_mode & 0o111  # a plain file, not 0755
                model = load(litert_artifacts[name], variant=precision)
                assert model.predict(_images("faces" if name == "face-parsing" else "expressions", 1)[0]) is not None
            else:
                assert not drift["passed"] and not (litert_artifacts[name] / VARIANTS[precision].file).exists()
    assert made >= 3  # at least the fp16 weights and one int8 form for each family fit


def test_the_runtime_runs_tflite_without_the_build_side(litert_artifacts, tmp_path):
    image = tmp_path / "face.png"
    _images("faces", 1)[0].save(image)
    code = ("import sys; from edgeforge.runtime import load; "
            f"load({str(litert_artifacts['face-parsing'])!r}, variant='litert').predict({str(image)!r}); "
            "heavy = {'torch', 'transformers', 'onnx', 'tensorflow', 'litert_torch', 'ai_edge_quantizer', 'jax'}; "
            "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    out = tmp_path / "out"
    run = subprocess.run([sys.executable, "-m", "edgeforge", "run", litert_artifacts["face-parsing"], image, "-o", out,
                          "--variant", "litert"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (out / "face.labels.png").is_file() and (out / "face.json").is_file()


def test_bad_litert_inputs_are_one_line(litert_artifacts, tmp_path, monkeypatch):
    from edgeforge.errors import EdgeforgeError
    from edgeforge.runtime.manifest import read_manifest, write_manifest

    image = tmp_path / "face.png"
    _images("faces", 1)[0].save(image)
    artifact = tmp_path / "artifact"
    shutil.copytree(litert_artifacts["face-parsing"], artifact)
    tflite = artifact / VARIANTS["litert"].file
    data = tflite.read_bytes()
    tflite.write_bytes(data[: len(data) // 3])  # truncated: the manifest's sha256 catches it first
    run = lambda *extra: subprocess.run([sys.executable, "-m", "edgeforge", "run", artifact, image, "-o", tmp_path / "o",  # noqa: E731
                                         "--variant", "litert", *extra], capture_output=True, text=True, timeout=300)
    assert "sha256" in one_line_error(run())
    manifest = read_manifest(artifact)  # recorded as it is: now only the interpreter can object
    write_manifest(artifact, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    assert "LiteRT cannot load it" in one_line_error(run())
    assert not (tmp_path / "o" / "face.json").exists()
    # ai-edge-litert missing: one line naming the extra
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(EdgeforgeError, match=r"pip install 'edgeforge\[litert\]'"):
        load(litert_artifacts["face-parsing"], variant="litert")


def test_an_op_litert_cannot_convert_is_named(tmp_path):
    import torch

    from edgeforge.errors import EdgeforgeError
    from edgeforge.targets.litert import convert

    class Unconvertible(torch.nn.Module):
        def forward(self, pixel_values):
            return torch.linalg.svd(pixel_values.flatten(2))[1]

    with pytest.raises(EdgeforgeError, match="litert-torch cannot convert the model: .*svd"):
        convert(Unconvertible(), torch.zeros(1, 3, 8, 8), tmp_path / "model.tflite")
    assert not (tmp_path / "model.tflite").exists()
