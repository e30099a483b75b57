"""`edgeforge export` and `edgeforge build`: checkpoint -> artifact directory."""

from __future__ import annotations

import sys

from edgeforge.contract import DEFAULT_MAX_DRIFT, VARIANTS
from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE
from edgeforge.targets import TARGETS

_CHECKPOINT_HELP = "local checkpoint directory (config.json + model.safetensors) or a Hugging Face hub id"


def register(sub) -> None:
    build = sub.add_parser(
        "build",
        help="the main job: checkpoint -> artifacts -> quantized variants -> benchmark report",
        description="Export a checkpoint to every target (ONNX, ORT-mobile, Core ML) and validate each against "
        "PyTorch; add the quantized variants that fit the accuracy budget; benchmark everything against fp32 and "
        "the baselines. Writes the artifact directory (Optimum / transformers.js layout, manifest.json) atomically "
        "and the report beside it (OUT-report/ by default).",
    )
    _common(build)
    build.add_argument("--targets", default=None,
                       help=f"comma-separated subset of {','.join(TARGETS)} (default: every one whose optional "
                       "packages are installed; onnx is always built)")
    build.add_argument("--precisions", default=None,
                       help="quantized variants to make (see `edgeforge quantize --help`; default: all the targets "
                       "allow, keeping those within the budget; 'none' to skip). Exit status 1 if one asked for "
                       "here cannot meet the budget")
    build.add_argument("--calibration", default=None,
                       help="folder of images: the first 8 calibrate, the next ones check the drift budget "
                       "(as many as the bound needs; default: synthetic images for the labels, mixed sizes)")
    build.add_argument("--max-drift", type=float, default=DEFAULT_MAX_DRIFT,
                       help=f"accuracy budget in points against fp32 (mIoU or top-1 agreement; default {DEFAULT_MAX_DRIFT})")
    build.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                       help="the budget is checked on an upper bound of the drift at this confidence "
                       f"(default {DEFAULT_CONFIDENCE}; "
                       "0: the estimate on the held-out images alone); see `edgeforge quantize --help`")
    build.add_argument("--bench", choices=("quick", "full", "none"), default="quick",
                       help="benchmark after building: quick (few runs), full, or none (default quick)")
    build.add_argument("--report", default=None, help="report directory (default: OUT-report beside OUT)")
    build.add_argument("--dataset", default=None, help="dataset for the report's drift figures (default: synthetic)")
    build.set_defaults(func=_build)


def _common(parser) -> None:
    parser.add_argument("checkpoint", help=_CHECKPOINT_HELP)
    parser.add_argument("-o", "--output", required=True, help="artifact directory to write")
    parser.add_argument("--trust-pickle", action="store_true",
                        help="allow pickle weights (pytorch_model.bin): only for checkpoints you trust")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument("--no-fold", dest="fold", action="store_false",
                        help="export the stock modules (no exact head folding / fusion-friendly rewrites)")
    parser.add_argument("--no-optimize", dest="optimize", action="store_false",
                        help="skip onnxruntime's transformer fusions (with --no-fold: the plain export)")
    parser.add_argument("--postprocess-in-graph", action="store_true",
                        help=f"segmentation: also write {VARIANTS['labels'].file}, which takes an output_size input "
                        "and returns the uint8 label map (resize + argmax inside the graph)")


def _build(args) -> int:
    from edgeforge.pipeline import PipelineOptions, run_pipeline
    from edgeforge.targets import parse_targets

    options = PipelineOptions(
        targets=parse_targets(args.targets) if args.targets else None,  # fail on a bad name before loading anything
        precisions=args.precisions, calibration=args.calibration, max_drift=args.max_drift,
        confidence=args.confidence, bench=args.bench,
        report_dir=args.report, dataset=args.dataset, trust_pickle=args.trust_pickle, opset=args.opset, fold=args.fold,
        optimize=args.optimize, postprocess_in_graph=args.postprocess_in_graph,
    )
    result = run_pipeline(args.checkpoint, args.output, options, log=lambda line: print(line, file=sys.stderr))
    rejected = sorted((result.get("quantize") or {}).get("rejected") or {})
    if rejected:
        print(f"edgeforge: over the accuracy budget, not written: {', '.join(rejected)} "
              "(see rejected_variants in manifest.json)", file=sys.stderr)
    # Precisions the user asked for must all be made; the default set makes whatever fits the budget.
    return 1 if rejected and args.precisions else 0
