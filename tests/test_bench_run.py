"""End to end: `edgeforge bench` on mini artifacts (few runs), the regression gate's exit codes both ways,
classification drift, and the peak-memory child."""

from __future__ import annotations

import copy
import io
import json
import shutil

import numpy as np
import pytest
from PIL import Image

from edgeforge.benchmarks.timing import STAGE_ROUNDS
from edgeforge.runtime.manifest import read_manifest, write_manifest


@pytest.fixture(scope="module")
def face_artifact(tmp_path_factory, mini_artifacts):
    """The mini face-parsing artifact plus a dynamic-int8 variant and a (fake) Core ML package."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = tmp_path_factory.mktemp("bench") / "face-parsing"
    shutil.copytree(mini_artifacts["face-parsing"], root)
    quantize_dynamic(str(root / "onnx" / "model.onnx"), str(root / "onnx" / "model_quantized.onnx"),
                     weight_type=QuantType.QInt8,
                     # the fp32 graph carries onnxruntime's fused (com.microsoft) ops: types are not inferable
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    onnx.checker.check_model(str(root / "onnx" / "model_quantized.onnx"))
    package = root / "coreml" / "model.mlpackage"
    package.mkdir(parents=True)
    (package / "Manifest.json").write_text("{}")
    manifest = read_manifest(root)
    manifest["variants"]["quantized"] = {"file": "onnx/model_quantized.onnx", "format": "onnx", "precision": "int8"}
    manifest["variants"]["coreml"] = {"file": "coreml/model.mlpackage", "format": "coreml", "precision": "fp16"}
    write_manifest(root, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    return root


def run_cli(monkeypatch, argv: list[str]) -> int:
    """`edgeforge bench ...` through the real entry point (the command is registered if the lead has not yet)."""
    from edgeforge import cli

    if "bench" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "bench"))
    return cli.main(["bench", *argv])


def _old_report(report: dict, p50_factor: float) -> dict:
    """The same report with every variant's p50 scaled: a past run that was faster (<1) or slower (>1)."""
    old = copy.deepcopy(report)
    for model in old["models"]:
        for entry in model["variants"].values():
            for latency in entry.get("latency", {}).values():
                latency["p50_ms"] *= p50_factor
    return old


def _png_size(path) -> tuple[int, int]:
    image = Image.open(io.BytesIO(path.read_bytes()))
    assert image.format == "PNG"
    image.load()
    return image.size


def test_bench_end_to_end_then_the_gate_both_ways(face_artifact, tmp_path, monkeypatch, capsys):
    report_dir = tmp_path / "report"
    code = run_cli(monkeypatch, [str(face_artifact), "--report", str(report_dir), "--quick", "--runs", "3",
                                 "--samples", "3", "--no-baselines", "--no-progress", "--threads", "2"])
    assert code == 0
    report = json.loads((report_dir / "report.json").read_text())
    model = report["models"][0]
    variants = model["variants"]
    assert sorted(variants) == ["fp32", "ort", "quantized"]
    assert model["skipped"]["coreml"]["reason"].startswith("needs macOS")
    assert model["skipped"]["coreml"]["size"]["bytes"] == 2
    for name, entry in variants.items():
        latency = entry["latency"]["2"]
        assert latency["n"] == 3 and 0 < latency["p50_ms"] <= latency["p90_ms"] <= latency["max_ms"]
        assert entry["size"]["bytes"] == (face_artifact / entry["file"]).stat().st_size
        assert 0 < entry["size"]["gzip_bytes"] < entry["size"]["bytes"]
        memory = entry["memory"]
        assert "error" not in memory, memory
        # A fresh child: far below this test process (torch, transformers, every session already loaded).
        assert 30 < memory["peak_rss_mb"] < 600 and memory["peak_rss_mb"] >= memory["rss_after_import_mb"]
    # Drift of every variant against fp32, and against the labelled synthetic set's ground truth.
    assert variants["fp32"]["drift"]["reference"] is True
    for name in ("ort", "quantized"):
        drift = variants[name]["drift"]
        assert 0 <= drift["drift_points"] <= 100 and drift["miou_vs_fp32"] == pytest.approx(1 - drift["drift_points"] / 100)
        assert len(drift["per_class_iou_drift_points"]) == model["classes"]
        assert 0 <= drift["ground_truth"]["miou"] <= 1 and "miou_delta_points" in drift["ground_truth"]
    assert variants["ort"]["drift"]["pixel_agreement"] > 0.999  # same fp32 graph in another container
    assert model["dataset"]["synthetic"] and model["dataset"]["labelled"] and model["dataset"]["samples"] == 3
    assert model["drift"]["fp32_ground_truth"]["miou"] is not None
    assert variants["quantized"]["throughput"]["images_per_s"] > 0
    assert variants["ort"]["throughput"] == {"skipped": "fixed batch axis (one image per run)"}
    assert model["flops"]["flops_per_image"] > 1e8 and variants["fp32"]["gflops"]["2"] > 0
    assert report["peak"]["2"]["gflops"] > 0
    kernels = report["peak"]["2"]["kernels"]  # each engine's own kernels (openvino is in the dev install)
    assert {"onnxruntime fp32", "onnxruntime int8", "openvino fp32", "openvino int8"} <= set(kernels)
    assert all(g > 0 for g in kernels.values()) and kernels["onnxruntime fp32"] == report["peak"]["2"]["gflops"]
    assert variants["quantized"]["compute"] == "int8" and variants["fp32"]["compute"] == "fp32"
    assert set(model["recommendations"]) == {"cpu-server", "mobile", "browser"}
    # The pipeline is timed with the fastest variant: predict() includes its model run and the stages.
    stages = model["stages"]
    fastest = min(variants, key=lambda name: variants[name]["latency"]["2"]["p50_ms"])
    assert stages["variant"] == fastest and stages["threads"] == 2
    assert all(stages[part]["n"] == STAGE_ROUNDS for part in ("preprocess", "forward", "postprocess", "predict"))
    assert stages["predict"]["p50_ms"] > stages["forward"]["p50_ms"] * 0.8
    # The report and its figures.
    markdown = (report_dir / "report.md").read_text()
    assert "## face-parsing" in markdown and "| quantized | int8 |" in markdown and "needs macOS" in markdown
    assert "(onnxruntime int8) |" in markdown and "(onnxruntime fp32) |" in markdown  # each held to its own peak
    assert f"End to end with the fastest variant, **{fastest}** at 2 thread(s): `predict()` p50" in markdown
    plots = sorted(p.name for p in (report_dir / "plots").iterdir())
    assert plots == ["face-parsing-class-iou-drift.png", "face-parsing-latency.png", "face-parsing-pareto.png",
                     "face-parsing-side-by-side.png"]
    assert _png_size(report_dir / "plots" / "face-parsing-pareto.png") == (935, 660)
    assert _png_size(report_dir / "plots" / "face-parsing-side-by-side.png") == (1540, 506)
    capsys.readouterr()

    # The gate, passing: the previous run was much slower, and drifted the same.
    slower_before = tmp_path / "slower_before.json"
    slower_before.write_text(json.dumps(_old_report(report, 100.0)))
    code = run_cli(monkeypatch, [str(face_artifact), "--report", str(tmp_path / "pass"), "--quick", "--runs", "2",
                                 "--no-baselines", "--no-memory", "--no-drift", "--no-progress", "--threads", "2",
                                 "--compare", str(slower_before)])
    assert code == 0
    assert "no regression against" in capsys.readouterr().out

    # The gate, failing: the previous run was 100x faster (drift is not measured in these two runs, so only
    # speed is gated here; the drift rule is checked on hand-made reports in test_bench_units).
    faster_before = tmp_path / "faster_before.json"
    faster_before.write_text(json.dumps(_old_report(report, 0.01)))
    code = run_cli(monkeypatch, [str(face_artifact), "--report", str(tmp_path / "fail"), "--quick", "--runs", "2",
                                 "--no-baselines", "--no-memory", "--no-drift", "--no-progress", "--threads", "2",
                                 "--compare", str(faster_before)])
    assert code == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("REGRESSION")]
    assert sorted(line.split(":")[0] for line in lines) == [
        "REGRESSION face-parsing/fp32", "REGRESSION face-parsing/ort", "REGRESSION face-parsing/quantized"]
    assert all("p50 at 2 thread(s)" in line and "> x1.15" in line for line in lines)


def test_bench_refuses_bad_input_with_one_line(face_artifact, tmp_path, monkeypatch, capsys):
    assert run_cli(monkeypatch, [str(tmp_path / "missing"), "--report", str(tmp_path / "r")]) == 2
    (tmp_path / "old.json").write_text("{}")
    assert run_cli(monkeypatch, [str(face_artifact), "--compare", str(tmp_path / "old.json")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgeforge: error:")]
    assert len(errors) == 2 and "not an edgeforge benchmark report" in errors[1]


def test_classification_drift_on_the_synthetic_expressions(mini_artifacts):
    from edgeforge.benchmarks.run import BenchOptions, bench_model

    options = BenchOptions.quick(runs=2, synthetic_samples=3, baselines=False, memory=False, progress=False,
                                 threads=2)
    entry, assets = bench_model(mini_artifacts["facial-emotions"], None, options, log=lambda *_: None)
    assert assets == {}  # no side-by-side mask image for a classifier
    drift = entry["variants"]["ort"]["drift"]
    assert drift["top1_agreement"] == 1.0 and drift["mean_kl"] < 1e-6 and drift["drift_points"] == 0.0
    assert 0 <= drift["ground_truth"]["accuracy"] <= 1
    assert entry["dataset"]["kind"] == "expressions" and entry["dataset"]["labelled"]


def test_memory_child_does_not_inherit_the_parent_peak(mini_artifacts):
    from edgeforge.benchmarks.memory import measure_in_child, runtime_spec

    ballast = np.ones(400 * 2 ** 20 // 8)  # 400 MB resident in this process before the child is forked
    result = measure_in_child(runtime_spec(str(mini_artifacts["face-parsing"]), 1, [1, 3, 256, 256], variant="fp32"))
    assert ballast.sum() > 0
    assert "error" not in result, result
    assert result["peak_rss_mb"] < 350 and result["model_rss_mb"] > 0
    failed = measure_in_child(runtime_spec(str(mini_artifacts["face-parsing"]), 1, [1, 3, 256, 256], variant="nope"))
    assert "no variant 'nope'" in failed["error"]
