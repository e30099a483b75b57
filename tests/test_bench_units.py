"""Benchmark building blocks on hand-made inputs: no model, no onnxruntime session (fast)."""

from __future__ import annotations

import gzip
import io
import json
import math

import numpy as np
import pytest
import zstandard
from PIL import Image

from edgeforge.benchmarks.accuracy import measure_drift
from edgeforge.benchmarks.compare import compare_reports
from edgeforge.benchmarks.latency import Timed, round_robin, summarize
from edgeforge.benchmarks.machine import cpuinfo
from edgeforge.benchmarks.plots import (
    DPI,
    class_iou_drift_plot,
    latency_plot,
    pareto_front,
    pareto_plot,
    side_by_side,
)
from edgeforge.benchmarks.recommend import recommend
from edgeforge.benchmarks.report import read_report, render_markdown, write_report
from edgeforge.benchmarks.size import compressed_sizes, variant_files
from edgeforge.data.datasets import Sample
from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.results import ClassificationResult, SegmentationResult


# --- latency -------------------------------------------------------------------------------------------
def test_summarize_percentiles_match_hand_values():
    summary = summarize([i / 1000 for i in range(1, 11)])  # 1..10 ms
    # Linear interpolation between order statistics: p50 at rank 4.5 -> 5.5; p90 at 8.1 -> 9.1; p99 at 8.91 -> 9.91.
    assert summary["p50_ms"] == pytest.approx(5.5)
    assert summary["p90_ms"] == pytest.approx(9.1)
    assert summary["p99_ms"] == pytest.approx(9.91)
    assert summary["mean_ms"] == pytest.approx(5.5)
    assert (summary["min_ms"], summary["max_ms"], summary["n"]) == (pytest.approx(1.0), pytest.approx(10.0), 10)
    assert summary["samples_ms"] == pytest.approx(list(range(1, 11)))


def test_round_robin_interleaves_and_rotates_the_order():
    calls, prepared = [], []
    items = [Timed(name, (lambda n=name: calls.append(n)), (lambda n=name: prepared.append(n))) for name in "abc"]
    samples = round_robin(items, runs=3, warmup=1)
    assert calls == list("abc") + list("abc") + list("bca") + list("cab")  # warm-up, then rotated rounds
    assert prepared == calls  # prepare runs before every call, timed or not
    assert {name: len(s) for name, s in samples.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(t >= 0 for s in samples.values() for t in s)


# --- size ----------------------------------------------------------------------------------------------
def test_compressed_sizes_match_the_standard_tools(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.standard_normal(300_000).astype(np.float32) * 0.01).tobytes() + bytes(200_000)
    path = tmp_path / "model.onnx"
    path.write_bytes(data)
    sizes = compressed_sizes([path])
    assert sizes["bytes"] == len(data)
    assert sizes["gzip_bytes"] == len(gzip.compress(data, compresslevel=6))
    one_shot = len(zstandard.ZstdCompressor(level=10).compress(data))
    assert abs(sizes["zstd_bytes"] - one_shot) <= 16  # streamed frames omit the content-size field
    assert sizes["gzip_bytes"] < sizes["bytes"] and sizes["zstd_bytes"] < sizes["bytes"]


def test_variant_files_include_external_data_and_package_contents(tmp_path):
    (tmp_path / "onnx").mkdir()
    for name in ("model.onnx", "model.onnx.data", "model_fp16.onnx", "model_fp16.onnx_data"):
        (tmp_path / "onnx" / name).write_bytes(b"x")
    package = tmp_path / "coreml" / "model.mlpackage" / "Data"
    package.mkdir(parents=True)
    (package / "weights.bin").write_bytes(b"w")
    (package.parent / "Manifest.json").write_bytes(b"{}")
    assert variant_files(tmp_path, "onnx/model.onnx", None) == ["onnx/model.onnx", "onnx/model.onnx.data"]
    assert variant_files(tmp_path, "onnx/model_fp16.onnx", None) == ["onnx/model_fp16.onnx",
                                                                     "onnx/model_fp16.onnx_data"]
    assert variant_files(tmp_path, "coreml/model.mlpackage", None) == [
        "coreml/model.mlpackage/Data/weights.bin", "coreml/model.mlpackage/Manifest.json"]


# --- machine -------------------------------------------------------------------------------------------
def test_cpuinfo_reads_model_and_the_interesting_flags(tmp_path):
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu sse4_2 avx avx2 avx512f avx512_vnni "
                    "ht\n\nprocessor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\n")
    info = cpuinfo(fake)
    assert info == {"model": "Test CPU 9000", "flags": ["sse4_2", "avx", "avx2", "avx512f", "avx512_vnni"]}


# --- drift over a dataset, with fake models whose outputs are known ------------------------------------
class FakeModel:
    """Looks like a runtime Model: the image's red channel *is* the answer (a class map or a row index)."""

    def __init__(self, task, id2label, table=None):
        self.task, self.id2label, self.table = task, id2label, table

    def preprocess(self, images):
        return np.stack([np.asarray(im)[..., 0].astype(np.float32)[None] for im in images]), images

    def forward(self, pixel_values):
        if self.task == "semantic-segmentation":  # one-hot logits of the class map
            ids = pixel_values[:, 0].astype(int)
            return np.moveaxis(np.eye(len(self.id2label), dtype=np.float32)[ids], -1, 1)
        return np.log(self.table[pixel_values[:, 0, 0, 0].astype(int)])  # softmax(log p) = p

    def postprocess(self, logits, sizes):
        if self.task == "semantic-segmentation":
            return [SegmentationResult(l.argmax(0), self.id2label) for l in logits]
        return [ClassificationResult(np.exp(l) / np.exp(l).sum(), self.id2label) for l in logits]


CLASS_MAP = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 2]], dtype=np.uint8)


def _image(red: np.ndarray) -> Image.Image:
    return Image.fromarray(np.stack([red, red, red], -1).astype(np.uint8))


def test_segmentation_drift_matches_hand_values():
    model = FakeModel("semantic-segmentation", {0: "a", 1: "b", 2: "c"})

    def merge_b_into_c(pixel_values):  # predicts c wherever fp32 predicts b
        logits = model.forward(pixel_values)
        logits[:, 2] += logits[:, 1]
        logits[:, 1] = 0
        return logits

    samples = [Sample("x.png", _image(CLASS_MAP), CLASS_MAP)]
    result = measure_drift(samples, model, {"same": model.forward, "merged": merge_b_into_c}, use_labels=True,
                           progress=False)
    merged, same = result["candidates"]["merged"], result["candidates"]["same"]
    # vs fp32: a 4/4 -> IoU 1; b: 0 of 4 -> IoU 0; c: 8 / (8 + 12 - 8) = 2/3. mIoU 5/9, drift 100 * 4/9.
    assert merged["miou_vs_fp32"] == pytest.approx(5 / 9)
    assert merged["drift_points"] == pytest.approx(100 * 4 / 9)
    assert merged["pixel_agreement"] == pytest.approx(12 / 16)
    assert merged["per_class_iou_drift_points"] == pytest.approx({"a": 0.0, "b": 100.0, "c": 100 / 3})
    assert merged["worst_image"] == {"index": 0, "path": "x.png", "pixel_disagreement": 0.25}
    # Ground truth equals fp32's map here: fp32 scores 1.0, the variant 5/9, a loss of 44.4 points.
    assert result["fp32_ground_truth"]["miou"] == pytest.approx(1.0)
    assert merged["ground_truth"]["miou"] == pytest.approx(5 / 9)
    assert merged["ground_truth"]["miou_delta_points"] == pytest.approx(100 * (5 / 9 - 1))
    assert same["drift_points"] == pytest.approx(0.0) and same["boundary_f1"] == pytest.approx(1.0)


def test_classification_drift_matches_hand_values():
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    candidate = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1]])
    model = FakeModel("image-classification", {0: "a", 1: "b", 2: "c"}, table=reference)
    other = FakeModel("image-classification", model.id2label, table=candidate)
    samples = [Sample(f"{i}.png", _image(np.full((2, 2), i)), label) for i, label in enumerate([0, 2])]
    result = measure_drift(samples, model, {"candidate": other.forward}, use_labels=True, progress=False)
    figures = result["candidates"]["candidate"]
    kl = [0.7 * math.log(7 / 6) + 0.2 * math.log(2 / 3), 0.1 * math.log(0.2) + 0.6 * math.log(1.5) + 0.3 * math.log(3)]
    assert figures["top1_agreement"] == pytest.approx(0.5)  # argmax 0,1 vs 0,0
    assert figures["drift_points"] == pytest.approx(50.0)
    assert figures["mean_kl"] == pytest.approx(sum(kl) / 2)
    assert figures["worst_image"]["index"] == 1  # the second image has the larger KL
    # Labels 0, 2: fp32 predicts 0, 1 (one right), the candidate 0, 0 (one right): no change in accuracy.
    assert result["fp32_ground_truth"]["accuracy"] == pytest.approx(0.5)
    assert figures["ground_truth"] == pytest.approx({"accuracy": 0.5, "accuracy_delta_points": 0.0})


def test_drift_without_labels_has_no_ground_truth():
    model = FakeModel("semantic-segmentation", {0: "a", 1: "b", 2: "c"})
    samples = [Sample("x.png", _image(CLASS_MAP), None)]
    result = measure_drift(samples, model, {"same": model.forward}, use_labels=False, progress=False)
    assert result["fp32_ground_truth"] is None
    assert "ground_truth" not in result["candidates"]["same"]


# --- report fixtures -----------------------------------------------------------------------------------
def _entry(p50: float, size: int, drift: float | None, fmt: str = "onnx", file: str = "onnx/model.onnx",
           p50_single: float | None = None, zstd: int | None = None) -> dict:
    latency = {"2": summarize([p50 / 1e3] * 5)}
    if p50_single is not None:
        latency["1"] = summarize([p50_single / 1e3] * 5)
    entry = {"kind": "variant", "file": file, "format": fmt, "precision": "fp32",
             "size": {"bytes": size, "gzip_bytes": int(size * 0.9), "zstd_bytes": zstd or int(size * 0.85)},
             "latency": latency}
    if drift is not None:
        entry["drift"] = {"drift_points": drift}
    return entry


def make_report(variants: dict, name: str = "face-parsing", baselines: dict | None = None) -> dict:
    return {
        "format": "edgeforge-bench/1", "created": "2026-01-01T00:00:00+00:00",
        "machine": {"cpu": "Test CPU", "flags": ["avx2"], "logical_cores": 2, "available_cores": 2,
                    "ram_gib": 8.0, "load_average_at_start": [0.5, 0.5, 0.5]},
        "versions": {"onnxruntime": "1.0"}, "settings": {},
        "peak": {"2": {"gflops": 50.0, "matmul_size": 1024}},
        "models": [{"name": name, "artifact": "a", "task": "semantic-segmentation", "source": {}, "classes": 3,
                    "input_size": [8, 8], "threads": [2], "variants": variants, "baselines": baselines or {},
                    "skipped": {}, "notes": [], "drift_budget_points": 0.5}],
    }


# --- regression gate -----------------------------------------------------------------------------------
def test_gate_flags_slower_and_drifted_variants_only():
    old = make_report({"fp32": _entry(10.0, 100, 0.0), "int8": _entry(5.0, 30, 0.3), "fp16": _entry(8.0, 50, 0.1)})
    new = make_report({"fp32": _entry(11.0, 100, 0.0),  # x1.10: within 1.15
                       "int8": _entry(6.0, 30, 1.0),  # x1.20 slower, and +0.7 points of drift
                       "fp16": _entry(8.0, 50, 0.5)})  # +0.4 points: within 0.5
    regressions = compare_reports(old, new)
    assert sorted((r.variant, r.kind) for r in regressions) == [("int8", "drift"), ("int8", "slower")]
    slower = next(r for r in regressions if r.kind == "slower")
    assert slower.line() == "REGRESSION face-parsing/int8: p50 at 2 thread(s) 6.00 ms vs 5.00 ms before (x1.20 > x1.15)"
    assert compare_reports(old, new, slower_ratio=1.25, drift_increase=1.0) == []
    assert compare_reports(old, old) == []


def test_gate_flags_missing_variants_and_an_absolute_ceiling():
    old = make_report({"fp32": _entry(10.0, 100, 0.0), "q4": _entry(4.0, 20, 2.0)})
    new = make_report({"fp32": _entry(10.0, 100, 0.0)})
    assert [(r.variant, r.kind) for r in compare_reports(old, new)] == [("q4", "missing")]
    drifting = make_report({"fp32": _entry(10.0, 100, 0.0), "q4": _entry(4.0, 20, 2.0)})
    assert [(r.variant, r.kind) for r in compare_reports(old, drifting, max_drift=1.0)] == [("q4", "drift")]


# --- recommendations -----------------------------------------------------------------------------------
def test_recommendations_follow_the_stated_rules():
    variants = {
        "fp32": _entry(10.0, 1000, None, p50_single=18.0),  # reference: drift 0 by definition
        "quantized": _entry(6.0, 300, 0.4, file="onnx/model_quantized.onnx", p50_single=10.0, zstd=250),
        "int8": _entry(5.9, 290, 0.45, file="onnx/model_int8.onnx", p50_single=10.2, zstd=240),
        "q4": _entry(4.0, 150, 3.0, file="onnx/model_q4.onnx", p50_single=7.0),  # over budget
        "ort": _entry(9.0, 1000, 0.0, fmt="ort", file="ort/model.ort", p50_single=17.0),
    }
    recs = recommend(variants, budget=0.5, threads=[2, 1])
    assert recs["cpu-server"]["variant"] == "int8"  # fastest within budget at 2 threads
    # 1 thread: quantized 10.0 and int8 10.2 are within 5 %: the smaller zstd download (int8) wins.
    assert recs["mobile"]["variant"] == "int8"
    # Browser: smallest gzip among onnx/ files within budget: int8 (261) and quantized (270) are within 5 %:
    # the faster at 1 thread (quantized) wins.
    assert recs["browser"]["variant"] == "quantized"
    assert recommend(variants, budget=5.0, threads=[2, 1])["cpu-server"]["variant"] == "q4"
    nothing = recommend({"q4": variants["q4"]}, budget=0.5, threads=[2, 1])
    assert nothing["cpu-server"]["variant"] is None and "budget" in nothing["cpu-server"]["why"]


# --- plots ---------------------------------------------------------------------------------------------
def _png_size(data: bytes) -> tuple[int, int]:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()  # decodes fully: a truncated file would raise here
    return image.size


def _plot_model() -> dict:
    variants = {"fp32": _entry(10.0, 4_000_000, None), "int8": _entry(6.0, 1_000_000, 0.8)}
    variants["fp32"]["drift"] = {"reference": True, "drift_points": 0.0}
    variants["int8"]["drift"]["per_class_iou_drift_points"] = {"background": 0.1, "skin": 2.5, "hat": None}
    baselines = {"pytorch": _entry(40.0, 3_900_000, 0.0)}
    return make_report(variants, baselines=baselines)["models"][0]


def test_pareto_front_keeps_only_undominated_points():
    points = [{"p50": 10, "mb": 4}, {"p50": 6, "mb": 1}, {"p50": 8, "mb": 2}, {"p50": 5, "mb": 3}]
    assert pareto_front(points) == [{"p50": 5, "mb": 3}, {"p50": 6, "mb": 1}]


def test_plots_are_real_pngs_of_the_expected_size():
    model = _plot_model()
    assert _png_size(pareto_plot(model)) == (round(8.5 * DPI), round(6 * DPI))
    assert _png_size(class_iou_drift_plot(model))[0] == 9 * DPI
    width, height = _png_size(latency_plot(model))
    assert width >= 6 * DPI and height == round(5.5 * DPI)
    label_map = np.zeros((32, 48), dtype=np.int64)
    label_map[8:24, 10:30] = 1
    changed = label_map.copy()
    changed[8:12, 10:30] = 2
    png = side_by_side(_image(np.full((32, 48), 128)), label_map, changed, {0: "background", 1: "skin", 2: "hat"},
                       "face-parsing", "int8")
    assert _png_size(png) == (14 * DPI, round(4.6 * DPI))


def test_classification_models_get_no_class_iou_plot():
    model = _plot_model()
    del model["variants"]["int8"]["drift"]["per_class_iou_drift_points"]
    assert class_iou_drift_plot(model) is None


# --- report files --------------------------------------------------------------------------------------
def test_write_report_writes_json_markdown_and_plots_and_replaces_only_a_report(tmp_path):
    report = make_report(_plot_model()["variants"], baselines=_plot_model()["baselines"])
    out = tmp_path / "report"
    write_report(report, out, {"face-parsing-side-by-side.png": b"\x89PNG fake"})
    written = json.loads((out / "report.json").read_text())
    assert written["models"][0]["variants"]["int8"]["drift"]["drift_points"] == 0.8
    assert sorted(p.name for p in (out / "plots").iterdir()) == [
        "face-parsing-class-iou-drift.png", "face-parsing-latency.png", "face-parsing-pareto.png",
        "face-parsing-side-by-side.png"]
    markdown = (out / "report.md").read_text()
    assert "| variant | precision | size MB | gzip MB | zstd MB | p50 ms @2 | p90 ms @2 | speed-up vs pytorch |" in markdown
    assert "| int8 | fp32 | 0.95 |" in markdown and "| **pytorch** |" in markdown
    assert "![face-parsing-pareto](plots/face-parsing-pareto.png)" in markdown
    assert read_report(out)["format"] == "edgeforge-bench/1"
    write_report(report, out)  # an earlier report may be replaced
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(EdgeforgeError, match="not an earlier benchmark report"):
        write_report(report, foreign)
    assert (foreign / "holiday.jpg").read_bytes() == b"precious"


def test_nan_figures_are_written_as_null(tmp_path):
    report = make_report({"fp32": _entry(10.0, 100, float("nan"))})
    write_report(report, tmp_path / "r")
    assert json.loads((tmp_path / "r" / "report.json").read_text())["models"][0]["variants"]["fp32"]["drift"] == {
        "drift_points": None}


def test_read_report_refuses_what_is_not_a_report(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"format": "something-else"}')
    with pytest.raises(EdgeforgeError, match="not valid JSON"):
        read_report(tmp_path / "bad.json")
    with pytest.raises(EdgeforgeError, match="not an edgeforge benchmark report"):
        read_report(tmp_path / "other.json")
    with pytest.raises(EdgeforgeError, match="does not exist"):
        read_report(tmp_path / "missing.json")


def test_markdown_warns_when_the_machine_was_busy():
    report = make_report({"fp32": _entry(10.0, 100, 0.0)})
    assert "busy" not in render_markdown(report)
    report["machine"]["load_average_at_start"] = [6.0, 5.0, 4.0]
    assert "the machine was busy" in render_markdown(report)


def test_budget_verdict_says_within_or_over_and_explains_a_disagreement_with_the_build():
    from edgeforge.benchmarks.recommend import budget_verdict, verdict_words

    built = {"points": 0.49, "budget": 0.5, "recorded": {"drift_points": 0.49, "num_images": 16}}
    over = budget_verdict("q4", {"drift": {"drift_points": 0.6}, "manifest_drift": built}, 0.5)
    assert not over["within_budget"] and over["build_drift_points"] == 0.49
    assert "0.49 points on its 16 held-out image(s)" in over["disagreement"] and "this run 0.60" in over["disagreement"]
    assert verdict_words(over) == "OVER BUDGET (build: 0.49)"
    agreeing = budget_verdict("fp16", {"drift": {"drift_points": 0.02}, "manifest_drift": {"points": 0.03}}, 0.5)
    assert agreeing["within_budget"] and "disagreement" not in agreeing and verdict_words(agreeing) == "within budget"
    assert budget_verdict("fp32", {"drift": {"reference": True, "drift_points": 0.0}}, 0.5) is None
    assert budget_verdict("int8", {"manifest_drift": built}, 0.5) is None  # nothing measured in this run


def test_budget_verdict_names_the_bound_the_build_checked():
    from edgeforge.benchmarks.recommend import budget_verdict

    built = {"points": 0.2, "budget": 0.5, "recorded": {"drift_points": 0.2, "num_images": 64,
                                                         "drift_bound_points": 0.45, "confidence": 0.95}}
    over = budget_verdict("q4", {"drift": {"drift_points": 0.6}, "manifest_drift": built}, 0.5)
    assert "95% upper bound 0.45" in over["disagreement"] and "64 held-out image(s)" in over["disagreement"]
    # the estimate is within but the bound is not: the build rejected it, so a bench within budget disagrees
    rejected_by_bound = {"points": 0.3, "recorded": {"drift_points": 0.3, "drift_bound_points": 0.7, "confidence": 0.95}}
    within = budget_verdict("int8", {"drift": {"drift_points": 0.3}, "manifest_drift": rejected_by_bound}, 0.5)
    assert within["within_budget"] and "upper bound 0.70" in within["disagreement"]


def test_without_a_budget_recommendations_go_by_speed_and_size_and_say_drift_was_not_measured():
    from edgeforge.benchmarks.recommend import UNMEASURED, judge

    entry = {"variants": {"fp32": _entry(10.0, 100, None), "quantized": _entry(4.0, 30, 35.0),
                          "q4": _entry(6.0, 20, 60.0)}, "notes": []}
    entry["variants"]["quantized"]["nodes_kept_float"] = 3
    judge(entry, None, [2])
    recs = entry["recommendations"]
    assert recs["cpu-server"]["variant"] == "quantized"  # fastest, though its (random-weight) drift is 35 points
    assert UNMEASURED in recs["cpu-server"]["why"] and "3 node(s) kept float" in recs["cpu-server"]["why"]
    assert "budget" not in recs["cpu-server"]["rule"] and UNMEASURED in recs["browser"]["rule"]
    assert all("budget_verdict" not in v for v in entry["variants"].values())
    report = make_report({})
    report["models"][0].update(entry, drift_budget_points=None)
    text = render_markdown(report)
    assert "budget 100" not in text and "by speed and size alone: drift not measured (random weights)" in text


def _baseline(p50: float, drift: float | None = None) -> dict:
    record = {"kind": "baseline", "latency": {"2": summarize([p50 / 1e3] * 5)}}
    if drift is not None:
        record["drift"] = {"drift_points": drift}
    return record


def test_head_to_head_sets_the_choice_against_the_fastest_baseline_and_the_fastest_within_budget():
    from edgeforge.benchmarks.recommend import judge

    entry = {"variants": {"fp32": _entry(10.0, 100, None), "openvino": _entry(4.0, 50, 0.2)}, "notes": [],
             "baselines": {"f32-plain": _baseline(12.0, 0.1), "int8-plain": _baseline(3.0, 98.0),
                           "bf16-plain": _baseline(6.0, 1.4)}}
    judge(entry, 0.5, [2])
    duel = entry["head_to_head"]
    assert duel["variant"] == "openvino"
    assert duel["fastest"]["baseline"] == "int8-plain" and duel["fastest"]["ratio"] == pytest.approx(0.75)
    within = duel["fastest_within_budget"]  # the broken int8 and the over-budget bf16 baselines do not count
    assert within["baseline"] == "f32-plain" and within["ratio"] == pytest.approx(3.0) and within["drift_points"] == 0.1
    report = make_report({})
    report["models"][0].update(entry, drift_budget_points=0.5)
    text = render_markdown(report)
    assert "runs **0.75×** as fast as the fastest baseline, **int8-plain**" in text
    assert "**3.00×** as fast as the fastest baseline within the drift budget, **f32-plain**" in text


def test_without_drift_no_baseline_is_called_within_budget_unless_its_trained_mini_measured_it():
    from edgeforge.benchmarks.recommend import PROXY_DRIFT, head_to_head, judge

    entry = {"variants": {"fp32": _entry(10.0, 100, None)}, "notes": [],
             "baselines": {"f32-plain": _baseline(20.0), "int8-plain": _baseline(5.0)}}
    judge(entry, None, [2])  # random weights: no drift anywhere
    assert entry["head_to_head"]["fastest_within_budget"] is None
    assert entry["head_to_head"]["not_judged"] == ["f32-plain", "int8-plain"]
    entry["baselines"]["int8-plain"][PROXY_DRIFT] = {"points": 98.0, "on": "the mini", "budget_points": 0.5}
    entry["baselines"]["f32-plain"][PROXY_DRIFT] = {"points": 0.2, "on": "the mini", "budget_points": 0.5}
    duel = head_to_head(entry, None, 2)
    assert duel["fastest_within_budget"]["baseline"] == "f32-plain" and duel["fastest_within_budget"]["ratio"] == 2.0
    assert duel["fastest_within_budget"]["drift_on"] == "the mini" and duel["not_judged"] == []


def test_a_baseline_checked_on_the_builds_held_out_images_is_judged_by_that_bound_not_the_estimate():
    from edgeforge.benchmarks.baseline_budget import BUDGET_CHECK
    from edgeforge.benchmarks.recommend import judge

    entry = {"variants": {"fp32": _entry(10.0, 100, None), "quantized": _entry(4.0, 50, 0.3)}, "notes": [],
             "baselines": {"bf16-plain": _baseline(3.0, 0.0), "f32-plain": _baseline(8.0, 0.0)}}
    # 16 images saw no flip; on the build's 2100 held-out images the bound is over the budget
    entry["baselines"]["bf16-plain"][BUDGET_CHECK] = {"drift_points": 0.45, "drift_bound_points": 0.7,
                                                      "num_images": 2100, "confidence": 0.95, "passed": False}
    entry["baselines"]["f32-plain"][BUDGET_CHECK] = {"drift_points": 0.0, "drift_bound_points": 0.14,
                                                     "num_images": 2100, "confidence": 0.95, "passed": True}
    judge(entry, 0.5, [2])
    within = entry["head_to_head"]["fastest_within_budget"]
    assert within["baseline"] == "f32-plain" and within["drift_points"] == 0.14
    assert within["drift_on"] == "the build's 2100 held-out images (95% bound)"
    report = make_report({})
    report["models"][0].update(entry, drift_budget_points=0.5)
    assert "0.00 (OVER BUDGET on the build's 2100 held-out: 0.70)" in render_markdown(report)
