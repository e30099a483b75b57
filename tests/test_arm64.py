"""ARM64: every variant of the trained minis, built here, runs on an emulated aarch64 runtime (qemu-user, a
Debian arm64 root, PyPI's aarch64 wheels) with the thin runtime only, and agrees with x86.

CI runs the two families (SegFormer: face parsing, ViT: facial emotions); `make check-arm64` runs all
three trained minis. A third artifact carries two deliberate faults: an .ort converted for x86 (NCHWc
kernels, which aarch64 builds of onnxruntime lack) and a tampered fp32 file.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import one_line_error
from edgeforge.contract import VARIANTS

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux",
                                reason="the ARM64 check emulates aarch64 from an x86-64 Linux machine")

QUIET = {"log": lambda *_: None}
CHECKED = ("face-parsing", "facial-emotions")
#: variants that may not run on aarch64, each for a reason outside edgeforge (the check says which)
EXPECTED_X86_ONLY = {
    "openvino-bf16": "native bf16",  # OpenVINO's ARM CPU plugin offers no bf16 compute
    "openvino-int8": "OpenVINO",  # OpenVINO 2026.4's ARM plugin fails on NNCF's FakeQuantize after a MatMul bias
}
CACHE = Path(os.environ.get("EDGEFORGE_ARM64_CACHE", Path.home() / ".cache" / "edgeforge" / "arm64"))


def _cli(*args, env=None, timeout=1800):
    return subprocess.run([sys.executable, "-m", "edgeforge", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout)


def _x86_ort(artifact: Path, work: Path) -> None:
    """Replace the artifact's .ort by one converted for amd64, as a user who converted it on x86 would ship it,
    and record it in the manifest (so only aarch64 can object to it)."""
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    from edgeforge.export.ort_mobile import fix_input_shape
    from edgeforge.runtime.manifest import read_manifest, write_manifest

    (work / "in").mkdir(parents=True)
    size = json.loads((artifact / "preprocessor_config.json").read_text())["size"]
    fix_input_shape(artifact / "onnx/model.onnx", work / "in/model.onnx", [1, 3, size["height"], size["width"]])
    convert_onnx_models_to_ort(work / "in", work / "out", optimization_styles=[OptimizationStyle.Fixed],
                               target_platform="amd64")
    shutil.copyfile(next((work / "out").glob("*.ort")), artifact / "ort/model.ort")
    manifest = read_manifest(artifact)
    write_manifest(artifact, {k: v for k, v in manifest.items() if k not in ("format", "files")})


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """The check's report and the artifacts it recorded its verdicts into (one run of the CLI)."""
    from edgeforge.pipeline import PipelineOptions, run_pipeline
    from edgeforge.stages import build
    from edgeforge.zoo.shipped import trained_checkpoint

    root = tmp_path_factory.mktemp("arm64")
    artifacts = {}
    for name in CHECKED:  # every target that runs on Linux, every precision within the budget
        # The budget checked on the estimate (confidence 0, 16 held-out images): this is about every variant
        # running alike on aarch64, and the bound's 2100 images per emotions candidate would add minutes.
        run_pipeline(trained_checkpoint(name), root / name,
                     PipelineOptions(targets=("onnx", "ort", "openvino", "litert"), bench="none", confidence=0),
                     **QUIET)
        artifacts[name] = root / name
    faulty = root / "faulty"
    build(trained_checkpoint("face-parsing"), faulty, targets=("onnx", "ort"), **QUIET)
    _x86_ort(faulty, root / "convert")
    data = bytearray((faulty / "onnx/model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF  # tampered after the manifest was written
    (faulty / "onnx/model.onnx").write_bytes(bytes(data))
    artifacts["faulty"] = faulty
    result = _cli("check-arm64", *artifacts.values(), "-o", root / "report", "--record", "--cache", CACHE)
    report = json.loads((root / "report" / "arm64-check.json").read_text())
    return {"result": result, "report": report, "artifacts": artifacts,
            "verdicts": {(v["artifact"], v["variant"]): v for v in report["verdicts"]}}


def test_the_probe_ran_on_aarch64_with_the_thin_runtime_only(checked):
    facts = checked["report"]["platforms"]["aarch64"]
    assert facts["machine"] == "aarch64", facts
    assert checked["report"]["platforms"]["x86"]["machine"] == "x86_64"
    assert facts["build_side_imported"] == []
    installed = {line.split("==")[0].lower() for line in checked["report"]["runtime_install"]}
    assert {"edgeforge", "numpy", "onnxruntime", "pillow"} <= installed
    assert not installed & {"torch", "transformers", "onnx", "coremltools", "openvino", "nncf", "optimum"}, installed


def test_every_variant_of_the_minis_runs_on_aarch64_and_agrees(checked):
    for name in CHECKED:
        manifest = json.loads((checked["artifacts"][name] / "manifest.json").read_text())
        for variant in manifest["variants"]:
            verdict = checked["verdicts"][(name, variant)]
            if verdict.get("error"):
                reason = EXPECTED_X86_ONLY.get(variant)
                assert reason and reason in verdict["error"], verdict
                continue
            if verdict["bar"] == "float":  # same arithmetic on both: only summation order may differ
                assert verdict["portable"] and verdict["agreement"] >= 0.9999, verdict
                assert verdict["max_logit_diff"] < 1e-3, verdict
            else:
                assert verdict["portable"] == (verdict["drift_points"] <= verdict["budget_points"] + 1e-9), verdict
            if name == "face-parsing":  # ~200 000 pixels: every quantized variant within the budget of its x86 self
                assert verdict["portable"], verdict
    # A classifier's verdict turns on single flipped top-1s (0.5 points each in 200 images), and the x86 side's
    # int8 kernels differ between CPUs (VNNI or not): its budget verdicts are checked for consistency above and
    # reported by `make check-arm64`, not pinned here.
    for name in CHECKED:  # the float files every app starts from: the same labels on both platforms
        for variant in ("fp32", "ort", "openvino", "litert"):
            assert checked["verdicts"][(name, variant)]["bar"] == "float"
            assert checked["verdicts"][(name, variant)]["portable"]


def test_faults_are_caught_with_a_clear_line(checked):
    result = checked["result"]
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("edgeforge: check-arm64:")]
    broken = [line for line in lines if "faulty/" in line]
    assert len(broken) == 1 and "faulty/fp32" in broken[0] and "sha256" in broken[0] and "x86 as well" in broken[0], lines
    differing = {line.split(": ")[2] for line in lines if "beyond its bar" in line}
    assert differing == {f"{v['artifact']}/{v['variant']}" for v in checked["verdicts"].values()
                         if not v["portable"] and not v.get("error")}, lines
    x86_ort = checked["verdicts"][("faulty", "ort")]
    assert not x86_ort["portable"] and "onnxruntime" in x86_ort["error"], x86_ort
    assert "x86-only" in (Path(checked["artifacts"]["faulty"]).parent / "report" / "arm64-check.md").read_text()


def test_verdicts_are_recorded_in_the_manifests_which_still_verify(checked):
    from edgeforge.runtime import load

    face = json.loads((checked["artifacts"]["face-parsing"] / "manifest.json").read_text())["variants"]
    assert face["fp32"]["platforms"]["aarch64"]["status"] == "portable"
    assert face["ort"]["conversion"]["target_platform"] == "arm"
    faulty = json.loads((checked["artifacts"]["faulty"] / "manifest.json").read_text())["variants"]
    assert faulty["ort"]["platforms"]["aarch64"]["status"] == "x86-only"
    assert "platforms" not in faulty["fp32"]  # broken everywhere: nothing to say about aarch64
    load(checked["artifacts"]["face-parsing"], variant="ort")  # the files still match the rewritten manifest


def test_the_bench_reads_the_verdicts(checked):
    from edgeforge.benchmarks.recommend import recommend
    from edgeforge.benchmarks.variants import manifest_notes
    from edgeforge.runtime.manifest import read_manifest

    variants = read_manifest(checked["artifacts"]["faulty"])["variants"]
    notes = manifest_notes({name: {"platforms": v.get("platforms"), "conversion": v.get("conversion")}
                            for name, v in variants.items()})
    assert any(note.startswith("ort: x86-only") for note in notes), notes
    assert any("NCHWc" in note for note in notes), notes
    timed = {name: {"format": VARIANTS[name].format, "latency": {"1": {"p50_ms": ms}},
                    "size": {"zstd_bytes": 1, "gzip_bytes": 1}, "platforms": variants[name].get("platforms"),
                    "manifest_drift": {"points": 0.0}}
             for name, ms in (("fp32", 10.0), ("ort", 5.0))}
    assert recommend(timed, 0.5, [1])["mobile"]["variant"] == "fp32"  # the faster .ort is x86-only
    assert recommend(timed, 0.5, [1])["cpu-server"]["variant"] == "ort"


def test_missing_tools_are_one_line(tmp_path, checked):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    result = _cli("check-arm64", checked["artifacts"]["face-parsing"], "--cache", tmp_path / "cache",
                  env={**os.environ, "PATH": str(bin_dir)})
    assert "apt-get install" in one_line_error(result)
    assert result.returncode == 2 and not (tmp_path / "cache").exists()
    assert "not an artifact directory" in one_line_error(_cli("check-arm64", tmp_path))
