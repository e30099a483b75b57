"""`edgeforge export`: checkpoint -> ONNX only (the first step of `build`)."""

from __future__ import annotations

import sys

from edgeforge.cli.build import _common
from edgeforge.contract import REFERENCE_VARIANT, VARIANTS


def register(sub) -> None:
    export = sub.add_parser(
        "export",
        help=f"checkpoint -> {VARIANTS[REFERENCE_VARIANT].file}, validated against PyTorch",
        description="Export a checkpoint to ONNX (dynamic batch; dynamic height/width for SegFormer) with the "
        "family's exact graph speed-ups (folded decode head, onnxruntime fusions; --no-fold --no-optimize for the "
        "plain export), run onnx's full checker and compare with the stock PyTorch model; writes config, "
        f"preprocessor config, {VARIANTS[REFERENCE_VARIANT].file}, manifest.json.",
    )
    _common(export)
    export.set_defaults(func=_export)


def _export(args) -> int:
    from edgeforge.stages import build

    build(args.checkpoint, args.output, targets=("onnx",), trust_pickle=args.trust_pickle, opset=args.opset,
          fold=args.fold, optimize=args.optimize, postprocess_in_graph=args.postprocess_in_graph,
          log=lambda line: print(line, file=sys.stderr))
    return 0
