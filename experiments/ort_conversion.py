"""How should the ORT-format (ONNX Runtime Mobile) file be converted? Measured, on one exported graph.

Converts the graph the `ort` target converts (the folded export before onnxruntime's transformer fusions,
input fixed to one image) in each way onnxruntime's converter offers, and times every resulting session
beside the fused `onnx/model.onnx` in one interleaved run on this machine's CPU provider:

    fixed            --optimization_style Fixed, no target platform (what edgeforge shipped until 2026-12-07)
    fixed-arm        --optimization_style Fixed --target_platform arm
    fixed-amd64      --optimization_style Fixed --target_platform amd64 (keeps x86's NCHWc blocked layout)
    runtime          --optimization_style Runtime (basic optimisations saved, the rest replayed at load)
    onnx             the fused onnx/model.onnx run as an .onnx (onnxruntime optimises it at load, NCHWc included)

For each it also counts the kernels one run launches (profiled): ReorderInput/ReorderOutput mark the NCHWc
blocked layout, which is x86-only (MLAS has no NCHWc kernels on ARM). Speed here is an x86 figure; the ARM64 check (edgeforge check-arm64)
says which files run on aarch64.

    python experiments/ort_conversion.py EXPORTED.onnx FUSED.onnx --size 512 [--rounds 15] [--threads 2]
"""

from __future__ import annotations

import argparse
import collections
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeforge.export.ort_mobile import _quietly, fix_input_shape

STYLES = {"fixed": ("Fixed", None), "fixed-arm": ("Fixed", "arm"), "fixed-amd64": ("Fixed", "amd64"),
          "runtime": ("Runtime", None)}


def convert(exported: Path, work: Path, style: str, platform: str | None, size: int) -> Path:
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    src = work / f"src-{style}-{platform}"
    src.mkdir()
    fix_input_shape(exported, src / "model.onnx", [1, 3, size, size])
    out = work / f"out-{style}-{platform}"
    _quietly(lambda: convert_onnx_models_to_ort(src, out, optimization_styles=[OptimizationStyle[style]],
                                                target_platform=platform))
    return next(out.glob("*.ort"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exported", type=Path)
    parser.add_argument("fused", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        files = {name: convert(args.exported, work, style, platform, args.size) for name, (style, platform) in STYLES.items()}
        files["onnx"] = args.fused
        sessions = {}
        for name, path in files.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            if name == "runtime":
                options.add_session_config_entry("session.enable_saved_runtime_optimizations", "1")
            if name == "onnx":
                for dim, value in (("batch_size", 1), ("height", args.size), ("width", args.size)):
                    options.add_free_dimension_override_by_name(dim, value)
            sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
        times = {name: [] for name in sessions}
        for name, session in sessions.items():  # warm-up
            session.run(None, {session.get_inputs()[0].name: x})
        for round_ in range(args.rounds):
            order = list(sessions)[round_ % len(sessions):] + list(sessions)[:round_ % len(sessions)]
            for name in order:
                session = sessions[name]
                start = time.perf_counter()
                session.run(None, {session.get_inputs()[0].name: x})
                times[name].append(1000 * (time.perf_counter() - start))
        # nodes of the .ort as onnxruntime runs them: profile one run and count kernel launches by op type
        results = {}
        for name, path in files.items():
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.enable_profiling = True
            options.profile_file_prefix = str(work / f"profile-{name}")
            for dim, value in (("batch_size", 1), ("height", args.size), ("width", args.size)):
                options.add_free_dimension_override_by_name(dim, value)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            session.run(None, {session.get_inputs()[0].name: x})
            events = json.loads(Path(session.end_profiling()).read_text())
            ops = collections.Counter(e["args"]["op_name"] for e in events
                                      if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"))
            results[name] = {"p50_ms": round(statistics.median(times[name]), 1),
                             "vs_onnx": None, "size_mb": round(path.stat().st_size / 1e6, 2),
                             # layout changes into/out of NCHWc blocks: present only where the NCHWc kernels run
                             "nchwc_reorders": ops.get("ReorderInput", 0) + ops.get("ReorderOutput", 0),
                             "kernels": dict(ops.most_common())}
        for name in results:
            results[name]["vs_onnx"] = round(results[name]["p50_ms"] / results["onnx"]["p50_ms"], 3)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "kernels"} for k, v in results.items()}, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "size": args.size, "rounds": args.rounds,
                                         "results": results}, indent=1))


if __name__ == "__main__":
    main()
