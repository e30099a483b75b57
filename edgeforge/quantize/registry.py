"""Which quantizer makes an ONNX recipe: dispatch as data. A quantizer takes the prepared fp32 graph and its
recipe (and, when the recipe calibrates, the calibration batch) and writes a variant with a given set of
nodes kept float (``budget.Quantizer``)."""

from __future__ import annotations

from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.onnx_fp16 import Fp16Converter
from edgeforge.quantize.onnx_int4 import Int4Quantizer
from edgeforge.quantize.onnx_int8 import (
    DynamicInt8Quantizer,
    HybridInt8Quantizer,
    StaticInt8Quantizer,
)
from edgeforge.quantize.recipes import (
    DynamicInt8Recipe,
    Fp16Recipe,
    HybridInt8Recipe,
    Int4Recipe,
    StaticInt8Recipe,
)

#: recipe type -> quantizer class
QUANTIZERS = {
    Fp16Recipe: Fp16Converter,
    DynamicInt8Recipe: DynamicInt8Quantizer,
    StaticInt8Recipe: StaticInt8Quantizer,
    HybridInt8Recipe: HybridInt8Quantizer,
    Int4Recipe: Int4Quantizer,
}


def quantizer_for(recipe, prepared_path, calibration: tuple):
    """The quantizer for ``recipe``; ``calibration`` is (pixel values, input name, work dir), used by the
    recipes that calibrate (``Recipe.needs_calibration``)."""
    try:
        quantizer_class = QUANTIZERS[type(recipe)]
    except KeyError:
        raise EdgeforgeError(f"no ONNX quantizer for recipe {recipe.kind}") from None
    if recipe.needs_calibration:
        return quantizer_class(prepared_path, recipe, *calibration)
    return quantizer_class(prepared_path, recipe)
