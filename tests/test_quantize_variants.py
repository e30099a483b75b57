"""Every ONNX precision on the minis of all three families: written under its transformers.js name, loadable
by the runtime (sha256 checked), smaller than fp32, and recorded with recipe and measured drift; the
budget search keeps nodes in float when the budget is tight and rejects what it cannot fix."""

import json
import shutil

import numpy as np
import onnx
import pytest

from edgeforge.contract import VARIANTS
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.budget import Budget
from edgeforge.quantize.calibration import Calibration
from edgeforge.stages import quantize
from edgeforge.targets import TARGETS

ONNX_PRECISIONS = tuple(TARGETS["onnx"].precisions)
from edgeforge.references import REFERENCE_NAMES
from edgeforge.runtime import load
from edgeforge.runtime.manifest import read_manifest

QUIET = {"log": lambda _: None}


@pytest.fixture(scope="module")
def models(trained_artifacts):
    """The trained minis: drift against fp32 means what it says only on trained weights."""
    return trained_artifacts


def artifact_copy(models, name, tmp_path):
    """Artifacts are shared by the session: each test quantizes its own copy."""
    target = tmp_path / name
    shutil.copytree(models[name], target)
    return target


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_every_onnx_precision_is_made_loaded_and_measured(name, models, tmp_path):
    root = artifact_copy(models, name, tmp_path)
    before = read_manifest(root)
    report = quantize(root, precisions=ONNX_PRECISIONS, calibration=Calibration(None, 2, 3), budget=100.0, **QUIET)
    assert report["rejected"] == {} and list(report["variants"]) == list(ONNX_PRECISIONS)
    manifest = read_manifest(root)
    for name_before, entry_before in before["variants"].items():  # existing entries (fp32, ort) are kept
        assert manifest["variants"][name_before] == entry_before
    fp32_size = (root / "onnx" / "model.onnx").stat().st_size
    for precision in ONNX_PRECISIONS:
        entry = manifest["variants"][precision]
        assert entry["file"] == VARIANTS[precision].file and entry["file"] in manifest["files"]
        assert manifest["files"][entry["file"]]["size"] == entry["size_bytes"] < fp32_size
        assert entry["recipe"]["kind"] == TARGETS["onnx"].precisions[precision].kind
        drift = entry["drift"]
        assert drift["num_images"] == 3 and drift["passed"] is True and drift["budget_points"] == 100.0
        assert 0.0 <= drift["drift_points"] <= 100.0
        model = load(root, precision)  # verifies the sha256 recorded in the manifest
        result = model.predict(np.full((40, 30, 3), 128, dtype=np.uint8))
        assert result is not None
    ops = {n.op_type for n in onnx.load(root / "onnx" / "model_q4.onnx").graph.node}
    assert "MatMulNBits" in ops  # 4-bit MatMul
    fp32_ops = {n.op_type for n in onnx.load(root / "onnx" / "model.onnx").graph.node}
    if "Conv" in fp32_ops:
        assert "DequantizeLinear" in ops  # Conv weights stored weight-only
    if "Attention" in fp32_ops:  # fused attention goes to the int8 kernel, not dequantized at every run
        assert "QAttention" in ops and "Attention" not in ops
    quantized_ops = {n.op_type for n in onnx.load(root / "onnx" / "model_quantized.onnx").graph.node}
    assert {"MatMulInteger", "QuantizeLinear"} <= quantized_ops and "ConvInteger" not in quantized_ops
    calibration_set, eval_set = manifest["quantization"]["calibration_set"], manifest["quantization"]["eval_set"]
    assert calibration_set["num_images"] == 2 and eval_set["num_images"] == 3 and "synthetic" in eval_set["source"]
    assert eval_set["held_out"] is True and not set(calibration_set["images"]) & set(eval_set["images"])


def test_tight_budget_keeps_nodes_float_and_lowers_drift(models, tmp_path):
    root = artifact_copy(models, "face-parsing", tmp_path)
    # Checked on the estimate (confidence 0): this is about which nodes the search keeps, not about the bound.
    loose = quantize(root, precisions="uint8", calibration=Calibration(None, 2), budget=Budget(100.0, confidence=0),
                     **QUIET)["variants"]["uint8"]
    assert loose["nodes_kept_float"] == []
    first = loose["drift"]["drift_points"]
    assert first > 0, "quantizing every MatMul should change some pixels"
    budget = round(first * 0.6, 3)
    # Every node costs the same (a node without a time counts as the median one), so the cost order is the
    # sensitivity order and the test sees the search's ranking alone.
    one_node = next(n.name for n in onnx.load(root / "onnx" / "model.onnx").graph.node if n.op_type == "MatMul")
    tight = quantize(root, precisions="uint8", calibration=Calibration(None, 2), budget=Budget(budget, confidence=0),
                     node_costs={one_node: 1.0}, **QUIET)["variants"]["uint8"]
    assert tight["drift"]["drift_points"] <= budget < first
    kept = tight["nodes_kept_float"]
    assert 0 < len(kept) <= tight["search"]["candidate_nodes"] // 2
    assert tight["search"]["drift_all_quantized"]["drift_points"] == pytest.approx(first)
    assert kept == [n["node"] for n in tight["search"]["most_sensitive"]][: len(kept)]
    graph_nodes = {n.name: n.op_type for n in onnx.load(root / "onnx" / "model_uint8.onnx").graph.node}
    assert all(graph_nodes.get(node) in ("MatMul", "Gemm", "Attention") for node in kept)  # still float ops
    load(root, "uint8")


def test_the_decode_head_is_kept_float_or_quantized_as_one_unit(models, tmp_path):
    """SegFormer declares its decode head one unit (families.SEGFORMER.quantize_together): a budget that needs
    some nodes float keeps all of the head's convolutions float or none."""
    root = artifact_copy(models, "clothes-parsing", tmp_path)
    loose = quantize(root, precisions="quantized", calibration=Calibration(None, 2, 4), budget=100.0, **QUIET)
    first = loose["variants"]["quantized"]["drift"]["drift_points"]
    report = quantize(root, precisions="quantized", calibration=Calibration(None, 2, 4),
                      budget=Budget(round(first * 0.3, 3), confidence=0), **QUIET)  # the estimate: about grouping
    entry = report["variants"]["quantized"]
    assert report["search"]["quantized_together"] == ["/decode_head/"]
    head = [n.name for n in onnx.load(root / "onnx" / "model.onnx").graph.node
            if n.op_type == "Conv" and "/decode_head/" in n.name]
    kept = set(entry["nodes_kept_float"])
    assert len(head) == 5 and 0 < len(kept) < entry["search"]["candidate_nodes"]
    assert set(head) <= kept or not set(head) & kept


def test_nodes_asked_to_stay_float_stay_float(models, tmp_path):
    root = artifact_copy(models, "face-parsing", tmp_path)
    first = quantize(root, precisions="quantized", calibration=Calibration(None, 2, 2), budget=100.0, **QUIET)
    assert first["variants"]["quantized"]["nodes_kept_float"] == []
    convs = [n.name for n in onnx.load(root / "onnx" / "model.onnx").graph.node if n.op_type == "Conv"]
    held = sorted(convs[:2])
    report = quantize(root, precisions="quantized,uint8", calibration=Calibration(None, 2, 2), budget=100.0,
                      keep_float={"quantized": held}, **QUIET)
    entry = report["variants"]["quantized"]
    assert entry["nodes_kept_float"] == held and entry["search"]["held_float_as_asked"] == held
    assert report["variants"]["uint8"]["nodes_kept_float"] == []  # asked for one precision only
    ops = {n.name: n.op_type for n in onnx.load(root / "onnx" / "model_quantized.onnx").graph.node}
    assert all(ops[name] == "Conv" for name in held)  # still float Conv, not ConvInteger / QDQ-fed
    quantized_inputs = {i for n in onnx.load(root / "onnx" / "model_quantized.onnx").graph.node
                        if n.name in held for i in n.input}
    assert not any(name.endswith("_DequantizeLinear_Output") for name in quantized_inputs)
    with pytest.raises(EdgeforgeError, match="no node named /nowhere/Conv"):
        quantize(root, precisions="quantized", calibration=Calibration(None, 1, 1), keep_float=["/nowhere/Conv"], **QUIET)
    with pytest.raises(EdgeforgeError, match="no node named /nowhere/Conv"):
        quantize(root, precisions="quantized", calibration=Calibration(None, 1, 1),
                 keep_float={"uint8": ["/nowhere/Conv"]}, **QUIET)
    # Another target's names (OpenVINO's IR ops) are not this graph's to check.
    report = quantize(root, precisions="uint8", calibration=Calibration(None, 1, 1), budget=None,
                      keep_float={"openvino-int8": ["/x/Conv/WithoutBiases"]}, **QUIET)
    assert report["variants"]["uint8"]["nodes_kept_float"] == []


def test_given_node_costs_reach_the_search_instead_of_measured_ones(models, tmp_path, monkeypatch):
    """Costs of the model that ships (another device, the full-size model) replace the ones measured here."""
    import edgeforge.quantize.onnx_search as pipeline

    root = artifact_copy(models, "face-parsing", tmp_path)
    convs = [n.name for n in onnx.load(root / "onnx" / "model.onnx").graph.node if n.op_type == "Conv"]
    given = {convs[0]: 12.5, convs[1]: 0.0}
    seen = []
    real_fit = pipeline.fit_to_budget

    def spy(*args, costs=None, **kwargs):
        seen.append(costs())
        return real_fit(*args, costs=costs, **kwargs)

    monkeypatch.setattr(pipeline, "fit_to_budget", spy)
    report = quantize(root, precisions="quantized", calibration=Calibration(None, 1, 1), budget=100.0, node_costs=given, **QUIET)
    assert seen == [given] and report["search"]["node_costs"] == "given by the caller"
    measured = quantize(root, precisions="quantized", calibration=Calibration(None, 1, 1), budget=100.0, **QUIET)
    assert measured["search"]["node_costs"].startswith("measured on this graph")
    for bad, message in (({"/nowhere/Conv": 1.0}, "no node named /nowhere/Conv"),
                         ({convs[0]: -1.0}, "0 or more"), ({convs[0]: "fast"}, "0 or more")):
        with pytest.raises(EdgeforgeError, match=message):
            quantize(root, precisions="quantized", calibration=Calibration(None, 1, 1), node_costs=bad, **QUIET)


def test_impossible_budget_is_rejected_and_not_written(models, tmp_path):
    root = artifact_copy(models, "face-parsing", tmp_path)
    quantize(root, precisions="uint8", calibration=Calibration(None, 2), budget=100.0, **QUIET)
    assert (root / "onnx" / "model_uint8.onnx").is_file()
    report = quantize(root, precisions="uint8", calibration=Calibration(None, 2), budget=Budget(0.0, max_float_fraction=0.1, sensitivity_images=1, max_probes=4), **QUIET)
    rejected = report["rejected"]["uint8"]
    assert rejected["drift"]["passed"] is False and rejected["drift"]["drift_points"] > 0
    assert not (root / "onnx" / "model_uint8.onnx").exists()  # the earlier file under that name is gone
    manifest = read_manifest(root)
    assert "uint8" not in manifest["variants"] and manifest["rejected_variants"]["uint8"]["file"].endswith("uint8.onnx")
    with pytest.raises(EdgeforgeError, match="no variant 'uint8'"):
        load(root, "uint8")


@pytest.mark.parametrize("graph", ["plain", "transformer-optimized"])
def test_quantizers_work_on_plain_and_optimized_graphs(graph, mini_checkpoints, tmp_path):
    """The plain torch export, and onnxruntime's transformer optimizer output (com.microsoft Attention, Gelu)."""
    from edgeforge.stages import build

    root = tmp_path / "art"
    build(mini_checkpoints["facial-emotions"], root, targets=("onnx",), fold=graph != "plain",
          optimize=graph != "plain", **QUIET)
    contrib = {n.op_type for n in onnx.load(root / "onnx" / "model.onnx").graph.node if n.domain == "com.microsoft"}
    assert bool(contrib) == (graph != "plain")
    report = quantize(root, precisions=ONNX_PRECISIONS, calibration=Calibration(None, 1), budget=100.0, **QUIET)
    assert set(report["variants"]) == set(ONNX_PRECISIONS)
    for precision in report["variants"]:
        load(root, precision).predict(np.zeros((32, 32, 3), dtype=np.uint8))
    if "Attention" in contrib:  # fused attention weights are quantized too, not left fp32
        ops = {n.op_type for n in onnx.load(root / "onnx" / "model_quantized.onnx").graph.node}
        assert "QAttention" in ops


def test_calibration_folder_is_used_and_recorded(mini_artifacts, photos, tmp_path):
    root = artifact_copy(mini_artifacts, "facial-emotions", tmp_path)
    folder = tmp_path / "calib"
    folder.mkdir()
    photos["astronaut"].save(folder / "astronaut.jpg")
    photos["chelsea"].save(folder / "chelsea.png")
    (folder / "readme.txt").write_text("two photos")
    lines = []
    report = quantize(root, precisions="int8", calibration=Calibration(folder, 1, 16), budget=100.0, log=lines.append)
    assert report["calibration_set"]["images"] == ["astronaut.jpg"] and report["eval_set"]["images"] == ["chelsea.png"]
    assert report["eval_set"]["held_out"] is True
    assert report["calibration_set"]["skipped_files"] == 1 and any("readme.txt" in line for line in lines)
    entry = json.loads((root / "manifest.json").read_text())["variants"]["int8"]
    assert entry["drift"]["metric"] == "top1_agreement_vs_fp32" and entry["drift"]["num_images"] == 1
    # A folder with nothing beyond the calibration images: drift is checked on them, and the report says so.
    report = quantize(root, precisions="int8", calibration=Calibration(folder, 4), budget=100.0, log=lines.append)
    assert report["eval_set"]["images"] == report["calibration_set"]["images"] == ["astronaut.jpg", "chelsea.png"]
    assert report["eval_set"]["held_out"] is False
    assert any("calibration images themselves" in line for line in lines)
    assert entry["recipe"]["calibration_method"] == "minmax" and entry["recipe"]["activation_type"] == "int8"


def test_bad_requests_fail_with_one_line(mini_artifacts, tmp_path):
    root = artifact_copy(mini_artifacts, "face-parsing", tmp_path)
    with pytest.raises(EdgeforgeError, match="unknown precision"):
        quantize(root, precisions="int2", **QUIET)
    with pytest.raises(EdgeforgeError, match="no coreml/model.mlpackage"):
        quantize(root, precisions="coreml-int8", **QUIET)
    with pytest.raises(EdgeforgeError, match="does not exist"):
        quantize(root, precisions="uint8", calibration=tmp_path / "nowhere", **QUIET)
    with pytest.raises(EdgeforgeError, match="is not an artifact directory"):
        quantize(tmp_path / "nothing", **QUIET)
    assert sorted(p.name for p in (root / "onnx").iterdir()) == ["model.onnx"]
