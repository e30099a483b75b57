"""Full-size SegFormer-b2 (clothes-parsing architecture, 512x512): are the quantized variants faster and smaller?

Goals (from the quantizers issue): the default int8 (``quantized``) not slower than fp32 ONNX on this CPU
and <= 30 % of fp32's size; fp16 <= 52 %; q4 <= 20 %. Latency is measured in one run as a ratio, the two
sessions' runs interleaved (order alternating each round) so a noisy shared machine slows both alike.

    python experiments/quantize_b2.py [--work DIR] [--rounds 12] [--threads 2]

Weights are random (architecture-faithful), so the drift figures printed say little about a trained
model; speed and size do not depend on the weights' values.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOALS = {"quantized": ("size", 0.30), "fp16": ("size", 0.52), "q4": ("size", 0.20)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="directory to keep the checkpoint and artifact in (reused if present)")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved timing rounds (default 12)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads per session (default 2)")
    parser.add_argument("--precisions", default="quantized,fp16,q4")
    parser.add_argument("--calibration-images", type=int, default=2)
    args = parser.parse_args(argv)
    if args.work:
        return run(Path(args.work), args)
    with tempfile.TemporaryDirectory(prefix="quantize-b2-") as work:
        return run(Path(work), args)


def run(work: Path, args) -> int:
    artifact = build_b2(work)
    from edgeforge.quantize.calibration import Calibration
    from edgeforge.stages import quantize

    report = quantize(artifact, precisions=args.precisions, calibration=Calibration(None, args.calibration_images), budget=100.0, log=lambda line: print(line, file=sys.stderr))
    fp32_size = (artifact / "onnx" / "model.onnx").stat().st_size
    print(f"\nSegFormer-b2 clothes-parsing, 512x512, batch 1, {args.threads} threads; fp32 {fp32_size / 1e6:.1f} MB")
    ok = True
    for name, entry in report["variants"].items():
        ratio = entry["size_bytes"] / fp32_size
        goal = GOALS.get(name)
        verdict = "" if goal is None else (" PASS" if ratio <= goal[1] else " FAIL") + f" (goal <= {goal[1]:.0%})"
        ok &= goal is None or ratio <= goal[1]
        print(f"  {name:10s} size {entry['size_bytes'] / 1e6:7.1f} MB = {ratio:6.1%} of fp32{verdict}; "
              f"drift vs fp32 {entry['drift']['drift_points']:.2f} mIoU points (random weights)")
    for name in report["variants"]:
        ratio, fp32_ms, variant_ms = interleaved_ratio(artifact, name, args.rounds, args.threads)
        verdict = (" PASS" if ratio <= 1.0 else " FAIL") + " (goal <= 1.00)" if name == "quantized" else ""
        ok &= name != "quantized" or ratio <= 1.0
        print(f"  {name:10s} latency {variant_ms:8.0f} ms vs fp32 {fp32_ms:8.0f} ms: ratio {ratio:.2f}{verdict}")
    return 0 if ok else 1


def build_b2(work: Path) -> Path:
    from edgeforge.stages import build
    from edgeforge.zoo.checkpoints import make_checkpoint

    checkpoint, artifact = work / "checkpoint", work / "artifact"
    if not (checkpoint / "config.json").is_file():
        make_checkpoint("clothes-parsing", checkpoint, mini=False, seed=0)
    if not (artifact / "manifest.json").is_file():
        build(checkpoint, artifact, targets=("onnx",), log=lambda line: print(line, file=sys.stderr))
    return artifact


def interleaved_ratio(artifact: Path, variant: str, rounds: int, threads: int) -> tuple[float, float, float]:
    """Median over rounds of (variant time / fp32 time), each round running both once, order alternating."""
    from edgeforge.data.synth import make_sample
    from edgeforge.runtime import load

    fp32, candidate = load(artifact, "fp32", threads=threads), load(artifact, variant, threads=threads)
    image, _ = make_sample("people", 0, seed=3, size=512)
    pixel_values, _ = fp32.preprocess([image])
    for model in (fp32, candidate):  # warm-up: first runs allocate and pre-pack
        model.forward(pixel_values)
    ratios, fp32_times, variant_times = [], [], []
    for index in range(rounds):
        pair = (fp32, candidate) if index % 2 == 0 else (candidate, fp32)
        timings = {}
        for model in pair:
            started = time.perf_counter()
            model.forward(pixel_values)
            timings[id(model)] = time.perf_counter() - started
        fp32_times.append(timings[id(fp32)])
        variant_times.append(timings[id(candidate)])
        ratios.append(timings[id(candidate)] / timings[id(fp32)])
    return float(np.median(ratios)), 1000 * statistics.median(fp32_times), 1000 * statistics.median(variant_times)


if __name__ == "__main__":
    sys.exit(main())
