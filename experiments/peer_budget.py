"""Do the baselines meet the accuracy budget that edgeforge's own variants are held to? Issue 23's peers, on the
shipped trained minis.

A quantized edgeforge variant exists only if its drift's 95 % upper bound, on the build's held-out split (64
mixed-size images for segmentation, ~2100 for classification), is within the budget. The benchmark measures the
baselines' drift on its own 16 images: an estimate, and for classification too coarse (one flip is 6 points).
This script holds each baseline to the build's rule: it makes the baselines as the benchmark does (Optimum's
plain export; OpenVINO f32, bf16 and NNCF's default int8 of it, NNCF calibrated on the build's 8 calibration
images), then scores them as the benchmark does (``edgeforge.benchmarks.baseline_budget``): through the runtime on
the build's held-out split against the fp32 model's predictions, with the same bound.

    python experiments/peer_budget.py [--models face-parsing,...] [--work DIR] [-o results.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edgeforge.benchmarks.machine import machine_info
from edgeforge.jsonfile import print_result

NAMES = ("face-parsing", "clothes-parsing", "facial-emotions")


def check_mini(name: str, work: Path, log) -> dict:
    from edgeforge.benchmarks import baselines
    from edgeforge.benchmarks.baseline_budget import BUDGET_CHECK, check_baselines
    from edgeforge.quantize.calibration import synthetic_images
    from edgeforge.runtime import load
    from edgeforge.runtime.artifact import Artifact
    from edgeforge.stages import build, quantize
    from edgeforge.zoo.shipped import trained_checkpoint

    root = work / name
    build(trained_checkpoint(name), root, targets=("onnx",), log=lambda _: None)
    quantize(root, precisions="uint8", log=lambda _: None)  # records the build's held-out split in the manifest
    artifact = Artifact.open(root)
    split = artifact.manifest["quantization"]
    labels = [artifact.id2label[i] for i in sorted(artifact.id2label)]
    calibration = synthetic_images(artifact.task, labels, split["calibration_set"]["num_images"])  # the split's head
    plain = baselines.export_plain_onnx(str(trained_checkpoint(name)), artifact.task, work / f"{name}-plain", None)
    pixel_values = load(root).preprocessor(calibration.images)
    peers, _ = baselines.openvino_peers(plain, pixel_values, work / f"{name}-peers")
    entry = {"baselines": {plain.name: {}, **{peer.name: {} for peer in peers}}, "notes": []}
    check_baselines(entry, root, {"plain_onnx": plain, "peers": peers}, 0.5, log)
    return {"held_out": split["eval_set"]["source"], "num_images": split["eval_set"]["num_images"],
            "calibration_images": len(calibration.images), "notes": entry["notes"],
            "peers": {peer: record[BUDGET_CHECK] for peer, record in entry["baselines"].items() if BUDGET_CHECK in record}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(NAMES))
    parser.add_argument("--work", default=".peer-budget-work")
    parser.add_argument("-o", "--output", default=None, help="write the JSON result here (default: stdout)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    minis = {name: check_mini(name, Path(args.work), log) for name in args.models.split(",")}
    print_result({"machine": machine_info(), "budget_points": 0.5, "minis": minis,
                  "seconds": round(time.perf_counter() - started, 1)}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
