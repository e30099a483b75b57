"""`edgeforge export` and `edgeforge build`: checkpoint -> artifact directory."""

from __future__ import annotations

import sys

_CHECKPOINT_HELP = "local checkpoint directory (config.json + model.safetensors) or a Hugging Face hub id"


def register(sub) -> None:
    build = sub.add_parser(
        "build",
        help="the main job: checkpoint -> ONNX, ORT-mobile and Core ML artifacts with a manifest",
        description="Export a checkpoint to every target, validate each against PyTorch, and write the "
        "artifact directory (Optimum / transformers.js layout) with manifest.json. Written atomically.",
    )
    _common(build)
    build.add_argument("--targets", default="onnx,ort,coreml",
                       help="comma-separated subset of onnx,ort,coreml (default: all)")
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
                        help="segmentation: also write onnx/model_labels.onnx, which takes an output_size input "
                        "and returns the uint8 label map (resize + argmax inside the graph)")


def _build(args) -> int:
    from edgeforge.export.build import build, parse_targets

    targets = parse_targets(args.targets)  # fail on a bad name before loading anything
    build(args.checkpoint, args.output, targets=targets, trust_pickle=args.trust_pickle, opset=args.opset,
          fold=args.fold, optimize=args.optimize, postprocess_in_graph=args.postprocess_in_graph,
          log=lambda line: print(line, file=sys.stderr))
    return 0
