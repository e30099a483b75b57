"""Does the accuracy budget hold on images the build never saw? Issue 21's check, on the shipped minis.

For each trained mini: ``build`` every Linux target (ONNX, ORT, OpenVINO, LiteRT), ``quantize`` every default
precision at the default budget (0.5 points, checked on the 95 % upper bound over the default held-out split
of mixed sizes), then score every variant the build accepted on N unseen synthetic images of mixed sizes and
aspects (a seed no build or training uses), through the runtime as an app runs it. A variant holds when its
drift on the unseen images is within the budget.

    python experiments/budget_bound.py [-n 240] [--work DIR] [-o results.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edgeforge.benchmarks.machine import machine_info
from edgeforge.jsonfile import print_result

UNSEEN_SEED = 31337  # not a training (0), model-card (1000), test or calibration seed
TARGETS = ("onnx", "ort", "openvino", "litert")


def check_mini(name: str, work: Path, count: int, log) -> dict:
    from edgeforge.quantize.calibration import synthetic_images
    from edgeforge.quantize.drift import DriftMeter, run_logits
    from edgeforge.runtime import load
    from edgeforge.stages import build, quantize
    from edgeforge.targets import TARGETS as DECLARED
    from edgeforge.zoo.shipped import trained_checkpoint

    root = work / name
    started = time.perf_counter()
    build(trained_checkpoint(name), root, targets=TARGETS, log=lambda _: None)
    precisions = [p for t in TARGETS for p in DECLARED[t].precisions
                  if not DECLARED[t].missing() and not DECLARED[t].unavailable(p)]
    report = quantize(root, precisions=precisions, log=lambda line: log("  " + line))
    build_seconds = time.perf_counter() - started
    reference = load(root, "fp32")
    labels = [reference.id2label[i] for i in sorted(reference.id2label)]
    unseen = synthetic_images(reference.task, labels, count, seed=UNSEEN_SEED)
    meter = DriftMeter(root, unseen.images, confidence=report["confidence"])
    budget = report["max_drift_points"]
    rows = {}
    for variant, entry in report["variants"].items():
        drift = meter.score(run_logits(load(root, variant=variant), meter.pixel_values))
        built = entry["drift"]
        rows[variant] = {
            "build": {"drift_points": built.get("drift_points"), "bound_points": built.get("drift_bound_points"),
                      "num_images": built.get("num_images")},
            "unseen": {"drift_points": round(drift.points, 4), "bound_points": round(drift.checked_points, 4),
                       "num_images": drift.num_images},
            "holds": drift.points <= budget + 1e-9,
            "nodes_kept_float": len(entry.get("nodes_kept_float", [])),
        }
        log(f"  {variant:16s} build {built.get('drift_points'):.3f} (bound {built.get('drift_bound_points'):.3f}) "
            f"-> unseen {drift.points:.3f} on {drift.num_images}: {'holds' if rows[variant]['holds'] else 'OVER'}")
    return {"budget_points": budget, "confidence": report["confidence"],
            "eval_set": {k: report["eval_set"][k] for k in ("source", "num_images")},
            "unseen_set": {"source": unseen.source, "num_images": count},
            "rejected": {v: e["drift"].get("drift_bound_points") for v, e in report["rejected"].items()},
            "variants": rows, "build_and_quantize_seconds": round(build_seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--count", type=int, default=240, help="unseen images per mini (default 240)")
    parser.add_argument("--work", default="/tmp/edgeforge-budget-bound", help="artifacts are built here")
    parser.add_argument("--models", default="face-parsing,clothes-parsing,facial-emotions")
    parser.add_argument("-o", "--output", default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    results = {"machine": machine_info(), "unseen_seed": UNSEEN_SEED, "minis": {}}
    for name in args.models.split(","):
        log(f"== {name}-mini")
        results["minis"][name] = check_mini(name, Path(args.work), args.count, log)
    results["all_hold"] = all(row["holds"] for mini in results["minis"].values() for row in mini["variants"].values())
    print_result(results, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
