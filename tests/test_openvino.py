"""The OpenVINO target on the trained minis: the IR agrees with ONNX, NNCF int8 and bf16 compute are held to the
budget on held-out images, the runtime runs every variant, and bad input is one line."""

from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

import pytest

from edgeforge.cli import main
from edgeforge.contract import VARIANTS
from edgeforge.errors import EdgeforgeError

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from edgeforge.runtime import IntegrityError, load  # noqa: E402
from edgeforge.runtime.engines import openvino_cpu_has_bf16  # noqa: E402

QUIET = {"log": lambda *_: None}


@pytest.fixture(scope="module")
def openvino_artifacts(tmp_path_factory):
    """Each trained mini built for onnx + openvino."""
    from edgeforge.stages import build
    from edgeforge.zoo.shipped import trained_checkpoint

    root = tmp_path_factory.mktemp("openvino")
    for name in ("face-parsing", "facial-emotions"):
        build(trained_checkpoint(name), root / name, targets=("onnx", "openvino"), **QUIET)
    return {name: root / name for name in ("face-parsing", "facial-emotions")}


def _images(kind: str, sizes=((256, 256), (320, 240), (200, 300))):
    from edgeforge.data.synth import make_sample

    return [make_sample(kind, i, seed=4242, size=256)[0].resize(size) for i, size in enumerate(sizes)]


def test_the_ir_agrees_with_the_onnx_graph(openvino_artifacts):
    manifest = load(openvino_artifacts["face-parsing"]).artifact.manifest
    entry = manifest["variants"]["openvino"]
    assert entry["file"] == VARIANTS["openvino"].file and entry["format"] == "openvino"
    assert entry["validation"]["label_map_agreement"] >= 0.999
    assert {"openvino/model.xml", "openvino/model.bin"} <= set(manifest["files"])
    onnx, ir = load(openvino_artifacts["face-parsing"]), load(openvino_artifacts["face-parsing"], variant="openvino")
    for image in _images("faces"):
        assert (onnx.predict(image).label_map == ir.predict(image).label_map).mean() >= 0.999
    onnx, ir = load(openvino_artifacts["facial-emotions"]), load(openvino_artifacts["facial-emotions"], variant="openvino")
    for image in _images("expressions"):
        assert onnx.predict(image).label == ir.predict(image).label
    assert ir.providers == ["OpenVINO CPU (f32)"]


def test_nncf_int8_is_searched_into_the_budget_and_runs(openvino_artifacts, tmp_path):
    from edgeforge.quantize.budget import Budget
    from edgeforge.quantize.calibration import Calibration
    from edgeforge.stages import quantize

    root = Path(shutil.copytree(openvino_artifacts["face-parsing"], tmp_path / "face"))
    loose = quantize(root, precisions="openvino-int8", calibration=Calibration(None, 4, 8), budget=100.0, **QUIET)
    all_int8 = loose["variants"]["openvino-int8"]["drift"]["drift_points"]
    assert all_int8 > 0.05, "the face mini loses accuracy in int8: the budget below must make the search work"
    budget = round(all_int8 * 0.5, 3)
    report = quantize(root, precisions="openvino-int8", calibration=Calibration(None, 4, 8),
                      budget=Budget(budget, max_probes=8), **QUIET)
    entry = report["variants"].get("openvino-int8") or report["rejected"]["openvino-int8"]
    assert entry["search"]["candidate_nodes"] > 10 and entry["nodes_kept_float"]
    if "openvino-int8" in report["variants"]:  # accepted: within the budget on the held-out images
        assert entry["drift"]["drift_points"] <= budget
        assert {"openvino/model_int8.xml", "openvino/model_int8.bin"} <= set(load(root).artifact.manifest["files"])
        model = load(root, variant="openvino-int8")
        assert model.predict(_images("faces")[1]).label_map.shape == (240, 320)
    else:
        assert not (root / "openvino" / "model_int8.xml").exists()


def test_sensitivity_probes_are_cut_from_one_quantization(openvino_artifacts, tmp_path):
    """A probe keeps the quantizers in front of its ops only: none left is the float model, all kept is the
    quantized one (with no bias correction to undo)."""
    import numpy as np
    import openvino as ov

    from edgeforge.quantize.openvino_int8 import NNCFInt8Quantizer
    from edgeforge.quantize.recipes import NNCFInt8Recipe

    root = openvino_artifacts["face-parsing"]
    float_model = load(root, variant="openvino")
    pixels, _ = float_model.preprocess(_images("faces"))
    quantizer = NNCFInt8Quantizer(root / VARIANTS["openvino"].file, NNCFInt8Recipe(), pixels, "pixel_values", tmp_path)
    every = frozenset(quantizer.candidates)

    def quantizers(path):
        return sum(op.get_type_name() == "FakeQuantize" for op in ov.Core().read_model(str(path)).get_ordered_ops())

    def logits(path):
        return load(root, model_file=path, variant="openvino").forward(pixels)

    none, one, all_ = (quantizer.write_probe(tmp_path / f"{name}.xml", nodes) for name, nodes in
                       (("none", frozenset()), ("one", frozenset(quantizer.candidates[:1])), ("all", every)))
    assert quantizers(none) == 0 and 0 < quantizers(one) < quantizers(all_)
    reference = float_model.forward(pixels)
    assert np.abs(logits(none) - reference).max() < 1e-2 * np.abs(reference).max()
    assert np.abs(logits(all_) - reference).max() > np.abs(logits(none) - reference).max()


@pytest.mark.skipif(not openvino_cpu_has_bf16(), reason="this CPU has no native bf16")
def test_bf16_compute_is_a_variant_of_the_same_file(openvino_artifacts, tmp_path):
    from edgeforge.stages import quantize

    root = Path(shutil.copytree(openvino_artifacts["facial-emotions"], tmp_path / "emotions"))
    # About the file and the engine, not the budget (bf16 flips a few near-tied emotions in a thousand).
    report = quantize(root, precisions="openvino-bf16", budget=100.0, **QUIET)
    entry = report["variants"]["openvino-bf16"]
    assert entry["file"] == VARIANTS["openvino"].file and entry["inference_precision"] == "bf16"
    assert entry["drift"]["num_images"] > 0 and entry["drift"]["drift_points"] <= entry["drift"]["drift_bound_points"]
    model = load(root, variant="openvino-bf16")
    assert model.providers == ["OpenVINO CPU (bf16)"]
    assert model.predict(_images("expressions")[0]).label


def test_bad_openvino_inputs_are_one_line(openvino_artifacts, tmp_path, monkeypatch, capsys):
    root = Path(shutil.copytree(openvino_artifacts["facial-emotions"], tmp_path / "art"))
    image = tmp_path / "in.png"
    _images("expressions")[0].save(image)
    weights = root / "openvino" / "model.bin"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.bin"):
        load(root, variant="openvino")
    assert main(["run", str(root), str(image), "-o", str(tmp_path / "out"), "--variant", "openvino"]) == 2
    assert "model.bin" in capsys.readouterr().err
    weights.unlink()
    with pytest.raises(IntegrityError, match="missing"):
        load(root, variant="openvino")
    # no OpenVINO installed: the runtime and the build say how to get it
    monkeypatch.setitem(sys.modules, "openvino", None)
    shutil.copytree(openvino_artifacts["facial-emotions"], tmp_path / "intact")
    with pytest.raises(EdgeforgeError, match=r"pip install 'edgeforge\[openvino\]'"):
        load(tmp_path / "intact", variant="openvino")
    from edgeforge.targets import TARGETS, parse_targets

    monkeypatch.setitem(TARGETS, "openvino", dataclasses.replace(TARGETS["openvino"], requires=("no_such_module",)))
    with pytest.raises(EdgeforgeError, match=r"pip install 'edgeforge\[openvino\]'"):
        parse_targets("onnx,openvino")


def test_bf16_on_a_cpu_without_it_is_refused(openvino_artifacts, tmp_path, monkeypatch, capsys):
    from edgeforge.runtime import engines

    monkeypatch.setattr(engines, "openvino_cpu_has_bf16", lambda: False)
    root = Path(shutil.copytree(openvino_artifacts["facial-emotions"], tmp_path / "art"))
    with pytest.raises(EdgeforgeError, match="no native bf16"):
        load(root, variant="openvino-bf16", model_file=root / "openvino" / "model.xml")
    before = sorted(p.name for p in root.rglob("*"))
    assert main(["quantize", str(root), "--precisions", "openvino-bf16"]) == 2
    assert "no native bf16" in capsys.readouterr().err
    assert sorted(p.name for p in root.rglob("*")) == before
    # the default set leaves it out, saying why
    from edgeforge.stages.quantize import _default_precisions

    lines = []
    assert "openvino-bf16" not in _default_precisions(root, lines.append)
    assert any("openvino-bf16" in line and "no native bf16" in line for line in lines)


def test_an_ir_that_disagrees_with_pytorch_is_refused(openvino_artifacts, mini_checkpoints, tmp_path):
    """The validation compares with the stock model: another model's IR (the trained emotions mini against a
    random-weights one of the same architecture) is refused, not recorded."""
    from edgeforge.targets import openvino as target
    from edgeforge.targets.base import ExportJob
    from edgeforge.zoo.checkpoints import load_checkpoint

    other = load_checkpoint(mini_checkpoints["facial-emotions"])
    job = ExportJob(other, tmp_path, tmp_path, _images("expressions") * 4, opset=17, fold=True, optimize=True,
                    postprocess_in_graph=False, log=lambda _: None)
    with pytest.raises(EdgeforgeError, match="disagrees with PyTorch"):
        target._validate(job, openvino_artifacts["facial-emotions"] / "openvino" / "model.xml")


@pytest.mark.parametrize("relative, passes", [(0.002, True), (0.05, False)])
def test_flips_at_near_ties_pass_only_with_small_logit_differences(relative, passes, openvino_artifacts,
                                                                  mini_checkpoints, tmp_path, monkeypatch):
    """Random weights: 0.2 % of pixels flip where two classes nearly tie. That passes when the logits moved by
    a fraction of a per cent (fp16 weights), not when they moved by 5 % of their size."""
    from edgeforge.export import rewrite
    from edgeforge.targets import openvino as target
    from edgeforge.targets.base import ExportJob
    from edgeforge.zoo.checkpoints import load_checkpoint

    figures = {"max_abs_diff": relative * 2.0, "max_abs_logit": 2.0, "label_map_agreement": 0.998}
    monkeypatch.setattr(rewrite, "compare_with_stock", lambda *args: (dict(figures), 0.998))
    job = ExportJob(load_checkpoint(mini_checkpoints["face-parsing"]), tmp_path, tmp_path, _images("faces"),
                    opset=17, fold=True, optimize=True, postprocess_in_graph=False, log=lambda _: None)
    ir = openvino_artifacts["face-parsing"] / "openvino" / "model.xml"
    if passes:
        assert target._validate(job, ir)["relative_logit_diff"] == pytest.approx(relative)
    else:
        with pytest.raises(EdgeforgeError, match=r"5\.00% of the largest logit, limit 1%"):
            target._validate(job, ir)
