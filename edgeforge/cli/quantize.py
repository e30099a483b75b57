"""`edgeforge quantize`: fp16 / int8 / int4 / Core ML variants of an artifact, within an accuracy budget."""

from __future__ import annotations

import json
import sys

from edgeforge.contract import DEFAULT_MAX_DRIFT, VARIANTS
from edgeforge.quantize.calibration import DEFAULT_EVAL_IMAGES, DEFAULT_NUM_IMAGES
from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE, DEFAULT_SEGMENTATION_IMAGES
from edgeforge.targets import TARGETS

PRECISION_HELP = "comma-separated, of: " + "; ".join(
    f"{target.name} target: " + ", ".join(f"{name} ({VARIANTS[name].precision})" for name in target.precisions)
    for target in TARGETS.values() if target.precisions
) + " (default: every precision of every target the artifact holds)"


def register(sub) -> None:
    parser = sub.add_parser(
        "quantize",
        help="make fp16 / int8 / int4 / Core ML variants held to an accuracy budget",
        description="Make quantized variants of an artifact directory, measure each one's drift from the fp32 "
        "model's own predictions on held-out images, keep the most sensitive nodes in float until the "
        "budget is met, and record everything in manifest.json. Variants that cannot meet the budget are not "
        "written (exit status 1). The directory is updated atomically.",
    )
    parser.add_argument("artifact", help="artifact directory made by `edgeforge build`")
    parser.add_argument("--precisions", default=None, help=PRECISION_HELP)
    parser.add_argument("--calibration", default=None,
                        help="folder of images: the first --num-images calibrate, the next --eval-images "
                        "measure drift (default: synthetic images for the model's task)")
    parser.add_argument("--num-images", type=int, default=None, help=f"calibration images (default {DEFAULT_NUM_IMAGES})")
    parser.add_argument("--eval-images", type=int, default=None,
                        help="held-out images the drift budget is checked on (default: enough for the bound -- "
                        f"{DEFAULT_SEGMENTATION_IMAGES} for segmentation; for classification the number on which a "
                        "variant changing half the budget's share of predictions can pass, 2100 at 0.5 points; "
                        f"{DEFAULT_EVAL_IMAGES} with --confidence 0. 0, or a folder with no images beyond the "
                        "calibration ones, checks on the calibration images)")
    parser.add_argument("--confidence", type=float, default=None,
                        help="the budget is checked on an upper bound of the drift at this confidence, so that an "
                        "accepted variant stays within it on unseen images of the same kind (default "
                        f"{DEFAULT_CONFIDENCE}; bootstrap over images for segmentation, Clopper-Pearson for "
                        "classification); 0 checks the estimate on the held-out images alone")
    parser.add_argument("--max-drift", type=float, default=None,
                        help="budget in points: mIoU vs fp32 (segmentation) or top-1 agreement (classification) "
                        f"may fall by at most this much (default {DEFAULT_MAX_DRIFT})")
    parser.add_argument("--calibration-method", choices=("minmax", "entropy", "percentile"), default=None,
                        help="activation range calibration for the static recipes (default minmax)")
    parser.add_argument("--dynamic-ops", default=None,
                        help="op types quantized dynamically, comma-separated (default MatMul,Gemm; Conv makes "
                        "ConvInteger, slow on x86)")
    parser.add_argument("--block-size", type=int, default=None, help="q4 block size along K (default 32)")
    parser.add_argument("--palette-mode", choices=("kmeans", "uniform"), default=None,
                        help="Core ML palettization (default kmeans, needs scikit-learn)")
    parser.add_argument("--keep-float", default=None, metavar="NODES",
                        help="comma-separated ONNX node names held in float in every variant that would quantize "
                        "them (the manifest's nodes_kept_float names them); the search decides the rest")
    parser.add_argument("--node-costs", default=None, metavar="FILE",
                        help="JSON object {node name: fp32 ms} the search weighs float choices by, e.g. times "
                        "profiled on the target device (default: measured here on this graph)")
    parser.add_argument("--sensitivity-images", type=int, default=2,
                        help="images used to rank node sensitivity when a variant misses the budget (default 2)")
    parser.add_argument("--json", default=None, help="also write the report to this JSON file")
    parser.set_defaults(func=_quantize)


def _quantize(args) -> int:
    from edgeforge.atomic import write_text
    from edgeforge.quantize.budget import Budget
    from edgeforge.quantize.calibration import Calibration
    from edgeforge.quantize.recipes import (
        CoreMLPaletteRecipe,
        DynamicInt8Recipe,
        with_options,
    )
    from edgeforge.stages import quantize
    from edgeforge.targets import parse_precisions

    names = parse_precisions(args.precisions) if args.precisions else None  # bad names fail before any work
    dynamic_ops = tuple(op.strip() for op in args.dynamic_ops.split(",") if op.strip()) if args.dynamic_ops else None
    recipes = {
        name: with_options(recipe, calibration_method=args.calibration_method, block_size=args.block_size,
                           mode=args.palette_mode if isinstance(recipe, CoreMLPaletteRecipe) else None,
                           op_types=dynamic_ops if isinstance(recipe, DynamicInt8Recipe) else None,
                           dynamic_op_types=dynamic_ops)
        for target in TARGETS.values() for name, recipe in target.precisions.items()
    }
    calibration = Calibration(args.calibration,
                              DEFAULT_NUM_IMAGES if args.num_images is None else args.num_images,
                              args.eval_images)
    budget = Budget(DEFAULT_MAX_DRIFT if args.max_drift is None else args.max_drift,
                    sensitivity_images=args.sensitivity_images,
                    confidence=DEFAULT_CONFIDENCE if args.confidence is None else args.confidence)
    report = quantize(
        args.artifact, precisions=names, calibration=calibration, budget=budget, recipes=recipes,
        keep_float=[n.strip() for n in args.keep_float.split(",") if n.strip()] if args.keep_float else (),
        node_costs=read_node_costs(args.node_costs) if args.node_costs else None,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(format_report(report))
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
    return 1 if report["rejected"] else 0


def read_node_costs(path: str) -> dict:
    from edgeforge.errors import EdgeforgeError
    from edgeforge.jsonfile import read_json_object

    try:
        return read_json_object(path)
    except FileNotFoundError:
        raise EdgeforgeError(f"--node-costs: cannot read {path}: no such file") from None
    except EdgeforgeError as exc:
        raise EdgeforgeError(f"--node-costs: {exc} (give one JSON object {{node name: milliseconds}})") from None


def held_out(report: dict) -> str:
    return "held-out" if report["eval_set"]["held_out"] else "calibration"


def format_report(report: dict) -> str:
    from edgeforge.quantize.drift import drift_text
    bound = (f" (checked on the {report['confidence']:.0%} upper bound)" if report.get("confidence")
             else " (checked on the estimate alone)")
    lines = [f"{report['artifact']}: budget {report['max_drift_points']} points{bound}, "
             f"drift on {report['eval_set']['num_images']} {held_out(report)} image(s) from "
             f"{report['eval_set']['source']}"]
    for name, entry in report["variants"].items():
        drift = entry["drift"]
        figure = f"drift {drift_text(drift)}" if "drift_points" in drift else drift["status"]
        if "size_vs_fp32" in entry:
            size = f"{entry['size_vs_fp32']:.1%} of fp32"
        else:
            size = f"{entry['size_bytes'] / 1e6:.2f} MB"
        kept = len(entry.get("nodes_kept_float", []))
        suffix = f"  ({kept} kept float)" if kept else ""
        lines.append(f"  {name:16s} {entry['file']:34s} {size:>15s}  {figure}{suffix}")
    for name, entry in report["rejected"].items():
        lines.append(f"  {name:16s} REJECTED: drift {drift_text(entry['drift'])} even with "
                     f"{len(entry['nodes_kept_float'])} node(s) in float")
    return "\n".join(lines)
