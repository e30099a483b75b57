"""experiments/run_matrix.py: which rows it runs and with which settings (the run itself is smoke-tested by hand
in quick mode on the minis; the full-size matrix is for the release machine)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgeforge.errors import EdgeforgeError

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "run_matrix.py"


@pytest.fixture(scope="module")
def matrix():
    spec = importlib.util.spec_from_file_location("run_matrix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_cover_every_model_as_minis_then_at_full_size(matrix):
    rows = matrix.matrix_rows(matrix.parse_args([]))
    assert rows == [("minis", n) for n in matrix.NAMES] + [("full", n) for n in matrix.NAMES]
    assert matrix.matrix_rows(matrix.parse_args(["--only", "minis", "--models", "facial-emotions"])) == [
        ("minis", "facial-emotions")]
    with pytest.raises(EdgeforgeError, match="unknown model"):
        matrix.matrix_rows(matrix.parse_args(["--models", "resnet"]))


def test_full_size_rows_skip_drift_and_quick_mode_is_small(matrix):
    full = matrix.options_for("full", matrix.parse_args([]))
    minis = matrix.options_for("minis", matrix.parse_args([]))
    assert not full.accuracy and minis.accuracy  # random full-size weights make drift meaningless
    assert full.runs < minis.runs and len(minis.thread_counts()) >= 1
    assert matrix.options_for("full", matrix.parse_args([]), "facial-emotions").runs > full.runs  # 0.1 s runs
    quick = matrix.options_for("minis", matrix.parse_args(["--quick", "--no-memory"]))
    assert quick.runs == 5 and not quick.single_thread and not quick.memory and quick.accuracy
    assert matrix.options_for("full", matrix.parse_args(["--quick", "--runs", "2"])).runs == 2


def test_rows_use_random_full_size_weights_and_the_trained_minis(matrix, tmp_path):
    from edgeforge.zoo.shipped import trained_checkpoint

    checkpoint, label = matrix.prepare_checkpoint("minis", "facial-emotions", tmp_path)
    assert checkpoint == trained_checkpoint("facial-emotions") and label == "facial-emotions-mini (trained)"


def _graph_with_nodes(path, names):
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Identity", ["x" if i == 0 else f"t{i - 1}"], [f"t{i}"], name=name)
             for i, name in enumerate(names)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(f"t{len(names) - 1}", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), path)
    return path


def test_full_size_variants_keep_float_what_the_trained_mini_needed(matrix, tmp_path):
    """Layers map by relative depth (a one-block stage stands for the whole stage); other names as they are."""
    seg = "/m/encoder/block.{}.{}/mlp/dense1/Conv"
    mini = _graph_with_nodes(tmp_path / "mini.onnx", [seg.format(0, 0), seg.format(1, 0), "/m/head/Conv",
                                                      *[f"/v/layer.{i}/fc/MatMul" for i in range(4)]])
    full = _graph_with_nodes(tmp_path / "full.onnx", [
        *[seg.format(0, i) for i in range(3)], *[seg.format(1, i) for i in range(12)], "/m/head/Conv",
        *[f"/v/layer.{i}/fc/MatMul" for i in range(12)]])
    manifest = {"variants": {
        "quantized": {"nodes_kept_float": [seg.format(0, 0), "/m/head/Conv"]},
        "uint8": {"nodes_kept_float": []},
        "q4": {"nodes_kept_float": [seg.format(1, 0), "/v/layer.3/fc/MatMul", "/gone/Conv"]},
        "openvino-int8": {"nodes_kept_float": ["/m/head/Conv"]},  # another target's variant: not this graph's
    }}
    assert matrix.transferred_float_nodes(manifest, matrix.graph_counterparts(mini, full), "onnx") == {
        "quantized": sorted(["/m/head/Conv", *[seg.format(0, i) for i in range(3)]]),
        "q4": sorted([*[seg.format(1, i) for i in range(12)], *[f"/v/layer.{i}/fc/MatMul" for i in (9, 10, 11)]]),
    }


def test_each_mini_node_stands_for_its_full_size_counterparts(matrix):
    """The mapping behind both the transferred float sets and the full-size node costs the mini's search uses."""
    seg = "/m/encoder/block.{}.{}/mlp/dense1/Conv"
    mini = [seg.format(2, 0), seg.format(3, 0), "/m/head/Conv", "/m/only_in_mini/Conv"]
    full = [*[seg.format(2, i) for i in range(40)], *[seg.format(3, i) for i in range(3)], "/m/head/Conv"]
    counterparts = matrix.full_size_counterparts(mini, full)
    assert counterparts == {seg.format(2, 0): [seg.format(2, i) for i in range(40)],
                            seg.format(3, 0): [seg.format(3, i) for i in range(3)], "/m/head/Conv": ["/m/head/Conv"]}


def test_full_size_baselines_are_judged_by_the_trained_mini_like_the_variants(matrix, tmp_path):
    from edgeforge.benchmarks.recommend import PROXY_DRIFT

    def timed(ms, drift=None):
        record = {"kind": "baseline", "latency": {"2": {"p50_ms": ms}}}
        if drift is not None:
            record["drift"] = {"drift_points": drift}
        return record

    def variant(ms):
        return {"kind": "variant", "format": "openvino", "file": "openvino/model.xml", "latency": {"2": {"p50_ms": ms}},
                "size": {"bytes": 10, "gzip_bytes": 9, "zstd_bytes": 8}}

    mini = {"name": matrix.row_label("minis", "clothes-parsing"), "matrix_row": "minis", "drift_budget_points": 0.5,
            "threads": [2], "variants": {"openvino": {**variant(2.0), "drift": {"drift_points": 0.1}}},
            "baselines": {"nncf-plain": timed(1.5, 98.3), "f32-plain": timed(3.0, 0.2)},
            "recommendations": {"cpu-server": {"variant": "openvino"}}}
    full = {"name": matrix.row_label("full", "clothes-parsing"), "matrix_row": "full", "drift_budget_points": None,
            "threads": [2], "variants": {"openvino": variant(130.0)},
            "baselines": {"nncf-plain": timed(135.0), "f32-plain": timed(300.0)},
            "recommendations": {"cpu-server": {"variant": "openvino"}}}
    report = {"format": "edgeforge-bench/1", "models": [mini, full]}
    matrix.judge_baselines_by_minis(report)
    assert full["baselines"]["nncf-plain"][PROXY_DRIFT]["points"] == 98.3
    duel = full["head_to_head"]
    assert duel["fastest"]["baseline"] == "nncf-plain"
    assert duel["fastest_within_budget"]["baseline"] == "f32-plain"
    assert duel["fastest_within_budget"]["ratio"] == pytest.approx(300 / 130)
    assert duel["fastest_within_budget"]["drift_on"].startswith(mini["name"] + ", ")
    assert mini["head_to_head"]["fastest_within_budget"]["baseline"] == "f32-plain"  # measured on the mini itself


def test_each_mini_litert_op_stands_for_the_full_size_ops_at_its_place(matrix, tmp_path):
    """.tflite names carry no stage and differ between a narrow and a wide model: ops map by (stage, layer,
    place in the layer, op type), a layer by relative depth. Two SegFormers, one block per stage against 2/1/3/1."""
    pytest.importorskip("litert_torch")
    import torch

    from edgeforge.export.onnx import logits_module
    from edgeforge.export.rewrite import rewrite_model
    from edgeforge.families.segformer import SEGFORMER
    from edgeforge.targets.litert import convert
    from edgeforge.zoo.checkpoints import checkpoint_config

    paths = {}
    for label, depths in (("mini", [1, 1, 1, 1]), ("deep", [2, 1, 3, 1])):
        config = checkpoint_config("face-parsing", mini=True)
        config.depths = depths
        torch.manual_seed(0)
        model = SEGFORMER.transformers_class("model_class")(config).eval()
        paths[label] = tmp_path / f"{label}.tflite"
        convert(logits_module(rewrite_model(model, SEGFORMER.rewrites_for("litert"))), torch.zeros(1, 3, 64, 64),
                paths[label])
    counterparts = matrix.tflite_counterparts(paths["mini"], paths["deep"])
    mini_places, deep_places = matrix._tflite_places(paths["mini"]), matrix._tflite_places(paths["deep"])
    assert set(counterparts) == set(mini_places)  # every mini op has its counterparts
    assert sorted(n for names in counterparts.values() for n in names) == sorted(deep_places)  # each deep op once
    for mini_op, deep_ops in counterparts.items():
        stage, layer, place, op = mini_places[mini_op]
        assert {deep_places[name][0] for name in deep_ops} == {stage}
        assert {deep_places[name][2:] for name in deep_ops} == {(place, op)}
        if layer is not None:  # a one-block stage stands for every block of that stage
            assert sorted(deep_places[name][1] for name in deep_ops) == list(range([2, 1, 3, 1][stage]))
