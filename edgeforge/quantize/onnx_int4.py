"""4-bit weight-only ONNX (transformers.js ``q4``): onnxruntime's MatMulNBitsQuantizer on MatMul weights.

MatMulNBits covers MatMul only, so Conv, Gemm and fused Attention weights would stay fp32: on the plain
SegFormer-b2 export that is a third of the parameters (the file would be ~43 % of fp32), on the
optimized one (Mix-FFN as 1x1 convs, fused Attention) 86 %. The recipe stores them weight-only too
(``weight_only``): 4-bit blocks along the input channels where a block fits, 8 bits elsewhere; fused
Attention weights go to int8 with onnxruntime's dynamic quantizer (QAttention), which has a kernel.
"""

from __future__ import annotations

import logging
from pathlib import Path

from edgeforge.environment import quiet_logger
from edgeforge.quantize.onnx_graph import (
    load_model,
    require_candidates,
    save_model,
    weighted_nodes,
)
from edgeforge.quantize.onnx_int8 import dynamic_on_top
from edgeforge.quantize.recipes import Int4Recipe
from edgeforge.quantize.weight_only import store_weights, weight_nodes


class Int4Quantizer:
    def __init__(self, prepared_path: str | Path, recipe: Int4Recipe):
        self.source = Path(prepared_path)
        self.recipe = recipe
        model = load_model(self.source)
        self.matmuls = weighted_nodes(model, ("MatMul",))
        self.other_nodes = weight_nodes(model, recipe.other_weight_ops)
        self.int8_nodes = weighted_nodes(model, recipe.dynamic_int8_ops)
        self.candidates = require_candidates(self.matmuls + self.other_nodes + self.int8_nodes, "q4",
                                             ("MatMul", *recipe.other_weight_ops, *recipe.dynamic_int8_ops))

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        # It logs a line per node at INFO (its module calls logging.basicConfig(level=INFO)).
        with quiet_logger("onnxruntime.quantization.matmul_nbits_quantizer", logging.WARNING):
            model = self._matmul_nbits(MatMulNBitsQuantizer, keep_float)
        model = store_weights(model, self.recipe.other_weight_ops, keep_float,
                              bits=self.recipe.other_weight_bits, block_size=self.recipe.block_size)
        if not self.int8_nodes:
            return save_model(model, out_path)
        return dynamic_on_top(lambda path: save_model(model, path), out_path, self.recipe.dynamic_part(), keep_float)

    def _matmul_nbits(self, quantizer_class, keep_float: frozenset[str]):
        quantizer = quantizer_class(
            load_model(self.source),
            bits=4,
            block_size=self.recipe.block_size,
            is_symmetric=self.recipe.symmetric,
            accuracy_level=self.recipe.accuracy_level,
            nodes_to_exclude=sorted(keep_float),
            op_types_to_quantize=("MatMul",),
        )
        quantizer.process()
        return quantizer.model.model


