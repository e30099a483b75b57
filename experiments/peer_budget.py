"""Do the baselines meet the accuracy budget that edgeforge's own variants are held to? Issue 23's peers, on the
shipped trained minis.

A quantized edgeforge variant exists only if its drift's 95 % upper bound, on the build's held-out split (64
mixed-size images for segmentation, ~2100 for classification), is within the budget. The benchmark measures the
baselines' drift on its own 16 images: an estimate, and for classification too coarse (one flip is 6 points).
This script holds each baseline to the build's rule: it makes the baselines as the benchmark does (Optimum's
plain export; OpenVINO f32, bf16 and NNCF's default int8 of it, NNCF calibrated on 8 images), then scores them
through the runtime on the build's held-out split against the fp32 model's predictions, with the same bound.

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
    from edgeforge.quantize.budget import Budget
    from edgeforge.quantize.calibration import DEFAULT_NUM_IMAGES, split_images, synthetic_images
    from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE, default_eval_images
    from edgeforge.quantize.drift import DriftMeter, run_logits
    from edgeforge.runtime import load
    from edgeforge.runtime.artifact import Artifact
    from edgeforge.stages import build
    from edgeforge.zoo.shipped import trained_checkpoint

    root, budget = work / name, Budget(0.5)
    build(trained_checkpoint(name), root, targets=("onnx",), log=lambda _: None)
    artifact = Artifact.open(root)
    segmentation = artifact.task == "semantic-segmentation"
    labels = [artifact.id2label[i] for i in sorted(artifact.id2label)]
    count = DEFAULT_NUM_IMAGES + default_eval_images(segmentation, budget.max_drift, DEFAULT_CONFIDENCE)
    calibration, held_out = split_images(synthetic_images(artifact.task, labels, count), DEFAULT_NUM_IMAGES)
    meter = DriftMeter(root, held_out.images, confidence=DEFAULT_CONFIDENCE)
    plain = baselines.export_plain_onnx(str(trained_checkpoint(name)), artifact.task, work / f"{name}-plain", None)
    peers, _ = baselines.openvino_peers(plain, meter.preprocessor(calibration.images), work / f"{name}-peers")
    results = {}
    for label, path, variant in [(baselines.OPTIMUM, plain.path, "fp32")] + [(p.name, p.path, p.variant) for p in peers]:
        drift = meter.score(run_logits(load(root, variant=variant, model_file=path), meter.pixel_values))
        results[label] = drift.to_json(budget.max_drift)
        log(f"{name}: {label}: drift {drift.describe()}, {'within' if drift.passes(budget.max_drift) else 'OVER'} "
            f"the {budget.max_drift:g}-point budget")
    return {"held_out": held_out.source, "num_images": len(held_out.images), "calibration_images": len(calibration.images),
            "peers": results}


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
