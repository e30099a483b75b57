"""Export: ONNX validated against PyTorch, ORT-mobile equal to ONNX, Optimum loads the layout, Core ML spec."""

import json
import platform

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from conftest import REFERENCES

from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.manifest import sha256_of
from edgeforge.stages import build
from edgeforge.targets import parse_targets
from edgeforge.zoo.checkpoints import load_checkpoint


@pytest.mark.parametrize("name", REFERENCES)
def test_manifest_records_every_file_and_validation(name, mini_artifacts):
    root = mini_artifacts[name]
    manifest = json.loads((root / "manifest.json").read_text())
    on_disk = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != "manifest.json"}
    assert set(manifest["files"]) == on_disk
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_of(root / rel)
    validation = manifest["variants"]["fp32"]["validation"]
    assert validation["max_abs_diff"] < 1e-4
    assert manifest["variants"]["ort"]["validation"]["max_abs_diff_vs_onnx"] < 1e-5
    assert {"torch", "onnxruntime", "transformers"} <= set(manifest["tools"])


@pytest.mark.parametrize("name", REFERENCES)
def test_onnx_graph_checks_and_has_dynamic_axes(name, mini_artifacts, mini_checkpoints):
    path = mini_artifacts[name] / "onnx" / "model.onnx"
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    dims = [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    checkpoint = load_checkpoint(mini_checkpoints[name])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert dims[0] == "batch_size"
    if checkpoint.family.task == "semantic-segmentation":
        assert dims[2:] == ["height", "width"]
        x = np.random.default_rng(0).standard_normal((2, 3, 160, 224)).astype(np.float32)  # another size, batch 2
    else:
        side = checkpoint.config.image_size  # ViT: position embeddings fix the input size
        x = np.random.default_rng(0).standard_normal((3, 3, side, side)).astype(np.float32)
    with torch.no_grad():
        expected = checkpoint.model(pixel_values=torch.from_numpy(x)).logits.numpy()
    got = session.run(None, {"pixel_values": x})[0]
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("name", REFERENCES)
def test_ort_format_matches_onnx(name, mini_artifacts):
    root = mini_artifacts[name]
    onnx_session = ort.InferenceSession(str(root / "onnx" / "model.onnx"), providers=["CPUExecutionProvider"])
    ort_session = ort.InferenceSession(str(root / "ort" / "model.ort"), providers=["CPUExecutionProvider"])
    shape = [d if isinstance(d, int) else 1 for d in ort_session.get_inputs()[0].shape]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    a = onnx_session.run(None, {"pixel_values": x})[0]
    b = ort_session.run(None, {"pixel_values": x})[0]
    assert np.abs(a - b).max() < 1e-5
    assert (root / "ort" / "required_operators.config").read_text().strip()
    usability = json.loads((root / "ort" / "mobile_usability.json").read_text())
    assert {"NNAPI", "CoreML-MLProgram"} <= set(usability)
    assert all(0 < v["supported_nodes"] <= v["total_nodes"] for v in usability.values())


@pytest.mark.parametrize("name", REFERENCES)
def test_optimum_ortmodel_loads_the_directory(name, mini_artifacts, mini_checkpoints):
    import optimum.onnxruntime as optimum_ort

    checkpoint = load_checkpoint(mini_checkpoints[name])
    ort_class = getattr(optimum_ort, checkpoint.family.ort_model_class)
    model = ort_class.from_pretrained(mini_artifacts[name], subfolder="onnx", file_name="model.onnx")
    size = checkpoint.image_processor.size
    x = torch.rand(1, 3, size["height"], size["width"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = checkpoint.model(pixel_values=x).logits
    got = model(pixel_values=x).logits
    assert torch.abs(torch.as_tensor(got) - expected).max().item() < 1e-4


@pytest.mark.parametrize("name", ["face-parsing", "facial-emotions"])
def test_coreml_package_spec(name, mini_checkpoints, tmp_path):
    out = tmp_path / name
    manifest = build(mini_checkpoints[name], out, targets=("onnx", "coreml"), log=lambda *_: None)
    report = manifest["variants"]["coreml"]["validation"]
    assert report["outputs"] == ["logits"]
    assert list(report["inputs"]) == ["pixel_values"]
    assert report["size_bytes"] > 100_000
    if platform.system() != "Darwin":
        assert report["numerical_check"].startswith("skipped")
    else:
        assert report["max_abs_diff"] < 5e-2  # fp16 compute precision


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML prediction runs only on macOS")
def test_coreml_prediction_matches_pytorch(mini_checkpoints, tmp_path):
    manifest = build(mini_checkpoints["face-parsing"], tmp_path / "a", targets=("coreml",), log=lambda *_: None)
    assert manifest["variants"]["coreml"]["validation"]["argmax_agreement"] > 0.99


def test_unknown_target_rejected():
    with pytest.raises(EdgeforgeError, match="unknown target"):
        parse_targets("onnx,tflite")
    assert parse_targets("ort") == ("onnx", "ort")


def test_failed_build_keeps_previous_output(mini_checkpoints, tmp_path, monkeypatch):
    import dataclasses

    from edgeforge.targets import TARGETS

    out = tmp_path / "out"
    build(mini_checkpoints["facial-emotions"], out, targets=("onnx",), log=lambda *_: None)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def fail_midway(job):
        (job.staging / "ort").mkdir(parents=True)
        (job.staging / "ort" / "model.ort").write_bytes(b"half")
        raise EdgeforgeError("disk full")

    monkeypatch.setitem(TARGETS, "ort", dataclasses.replace(TARGETS["ort"], export=fail_midway))
    with pytest.raises(EdgeforgeError, match="disk full"):
        build(mini_checkpoints["face-parsing"], out, targets=("onnx", "ort"), log=lambda *_: None)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no staging directory left behind
