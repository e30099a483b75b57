"""onnxruntime fusions fire and stay portable; the in-graph label map agrees with the runtime's post-processing."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import REFERENCES

from edgeforge.contract import MAX_IR_VERSION
from edgeforge.errors import EdgeforgeError
from edgeforge.export.onnx import export_onnx
from edgeforge.export.optimize import missing_fusions, optimize_onnx
from edgeforge.export.postprocess_graph import run_label_graph
from edgeforge.runtime import load
from edgeforge.stages import build
from edgeforge.zoo.checkpoints import load_checkpoint

# Contrib ops the fusions may emit: implemented by the CPU execution provider and onnxruntime-web's WASM build.
PORTABLE_CONTRIB_OPS = {"Attention", "MultiHeadAttention", "Gelu", "BiasGelu", "FastGelu"}


def _op_counts(path):
    counts = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


@pytest.mark.parametrize("name", REFERENCES)
def test_expected_fusions_fire_and_are_recorded(name, mini_artifacts, mini_checkpoints):
    family = load_checkpoint(mini_checkpoints[name]).family
    root = mini_artifacts[name]
    report = json.loads((root / "manifest.json").read_text())["variants"]["fp32"]["graph"]["optimizer"]
    assert report["profile"] == family.fusion.name
    assert missing_fusions(report, family.fusion) == []
    counts = _op_counts(root / "onnx" / "model.onnx")
    for op in family.fusion.expected:
        assert report["fused_operators"][op] > 0
        assert counts.get(op, 0) == report["fused_operators"][op]  # the file holds what the manifest says
    assert "SkipLayerNormalization" not in counts  # disabled: measured slower on CPU
    assert report["nodes_after"] < report["nodes_before"]


@pytest.mark.parametrize("name", REFERENCES)
def test_optimized_graph_is_portable(name, mini_artifacts):
    path = mini_artifacts[name] / "onnx" / "model.onnx"
    model = onnx.load(str(path))
    assert model.ir_version <= MAX_IR_VERSION
    onnx.checker.check_model(model, full_check=True)
    domains = {n.domain for n in model.graph.node}
    assert domains <= {"", "ai.onnx", "com.microsoft"}
    contrib = {n.op_type for n in model.graph.node if n.domain == "com.microsoft"}
    assert contrib and contrib <= PORTABLE_CONTRIB_OPS
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # runs as saved, no CPU-only rewrites
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    # Symbolic axes: batch 1, height and width 64 (SegFormer's; the ViT mini's are fixed at 64).
    shape = [d if isinstance(d, int) else (1 if axis == 0 else 64)
             for axis, d in enumerate(session.get_inputs()[0].shape)]
    assert np.isfinite(session.run(None, {"pixel_values": np.zeros(shape, np.float32)})[0]).all()


@pytest.mark.parametrize("name", ["clothes-parsing", "facial-emotions"])
def test_fusions_keep_outputs(name, mini_checkpoints, tmp_path, photos):
    checkpoint = load_checkpoint(mini_checkpoints[name])
    exported = export_onnx(checkpoint, tmp_path / "exported.onnx", fold=True)
    report = optimize_onnx(exported, tmp_path / "optimized.onnx", checkpoint.family.fusion)
    assert report["fused_operators"]
    images = [photos["astronaut"], photos["chelsea"]]
    x = checkpoint.image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)
    outputs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"pixel_values": x})[0]
               for p in (exported, tmp_path / "optimized.onnx")]
    assert np.abs(outputs[0] - outputs[1]).max() <= 1e-5
    assert (outputs[0].argmax(1) == outputs[1].argmax(1)).mean() >= 0.9999


def test_missing_fusions_are_reported():
    from edgeforge.families.vit import VIT

    report = {"profile": "vit", "fused_operators": {"BiasGelu": 4}}
    assert missing_fusions(report, VIT.fusion) == ["Attention"]


@pytest.fixture(scope="module")
def labels_artifact(mini_checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("labels") / "face-parsing"
    build(mini_checkpoints["face-parsing"], out, targets=("onnx",), postprocess_in_graph=True, log=lambda *_: None)
    return out


def test_label_graph_agrees_with_runtime_label_maps(labels_artifact, photos):
    manifest = json.loads((labels_artifact / "manifest.json").read_text())
    variant = manifest["variants"]["labels"]
    assert variant["file"] == "onnx/model_labels.onnx" and variant["output"] == "label_map"
    assert variant["validation"]["label_agreement_vs_runtime"] >= 0.9999
    assert "onnx/model_labels.onnx" in manifest["files"]

    runtime = load(labels_artifact)  # fp32 logits + numpy resize/argmax
    session = ort.InferenceSession(str(labels_artifact / variant["file"]), providers=["CPUExecutionProvider"])
    for image in (photos["astronaut"], photos["chelsea"], photos["chelsea"].resize((97, 211))):
        pixel_values, _ = runtime.preprocess([image])
        label_map = run_label_graph(session, pixel_values, image.size[::-1])
        assert label_map.dtype == np.uint8 and label_map.shape == (1, *image.size[::-1])
        expected = runtime.predict(image).label_map
        assert len(np.unique(expected)) > 1  # not a constant map, where agreement would be trivial
        assert (label_map[0] == expected).mean() >= 0.9999


def test_cli_options_reach_the_build(mini_checkpoints, tmp_path):
    from edgeforge.cli import build_parser

    checkpoint = mini_checkpoints["facial-emotions"]
    args = build_parser().parse_args(["export", str(checkpoint), "-o", str(tmp_path / "plain"), "--no-fold",
                                      "--no-optimize"])
    assert args.func(args) == 0
    graph = json.loads((tmp_path / "plain" / "manifest.json").read_text())["variants"]["fp32"]["graph"]
    assert graph == {"rewrites": [], "optimizer": None}
    args = build_parser().parse_args(["build", str(checkpoint), "-o", str(tmp_path / "labels"), "--targets", "onnx",
                                      "--postprocess-in-graph"])
    with pytest.raises(EdgeforgeError, match="label maps"):  # classification has none
        args.func(args)
    assert not (tmp_path / "labels").exists()
    defaults = build_parser().parse_args(["build", str(checkpoint), "-o", str(tmp_path / "x")])
    assert (defaults.fold, defaults.optimize, defaults.postprocess_in_graph) == (True, True, False)
