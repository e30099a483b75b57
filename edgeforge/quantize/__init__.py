"""Quantized and reduced-precision variants of an artifact, held to an accuracy budget.

    from edgeforge.quantize import quantize
    report = quantize("artifacts/face-parsing", precisions="fp16,quantized,q4", calibration="photos/")

Names and recipes: ``edgeforge.quantize.recipes``. Importing this package stays light (no onnx,
onnxruntime.quantization or coremltools) until ``quantize`` is called.
"""

from edgeforge.quantize.recipes import VARIANTS, parse_precisions, with_options

__all__ = ["VARIANTS", "parse_precisions", "quantize", "with_options"]


def quantize(*args, **kwargs):
    """See ``edgeforge.quantize.pipeline.quantize``."""
    from edgeforge.quantize.pipeline import quantize as run

    return run(*args, **kwargs)
