"""fp32 ONNX -> fp16 ONNX: weights stored in float16, arithmetic in float32 on every platform.

Each float initializer a weighted op reads (Conv, MatMul, Gemm, the fused attention's weights, an Add's bias,
...) is stored as float16 and cast back to float32 by a ``Cast`` in the graph, which onnxruntime folds into a
constant at load: the file is about half the fp32 one, and the arithmetic is the fp32 graph's on weights
rounded to fp16.

Why not fp16 arithmetic (what onnxruntime's and onnxconverter-common's converters make): the budget search can
only measure the platform it runs on, and platforms compute an fp16 graph differently. x86's CPU provider has
no fp16 kernels and casts every op back to fp32; ARM64's computes Conv (NhwcFusedConv), MatMul and the
elementwise ops natively in fp16, accumulating in fp16. Measured on the trained minis (edgeforge check-arm64,
2026-12-07): the same fp16-arithmetic file agreed with fp32 to 0.05 points on x86 but drifted 0.69 points on
ARM for clothes parsing and flipped 1 % of the emotion predictions -- over the 0.5-point budget the build had
accepted it under. Keeping Conv and MatMul in fp32 still left the ARM emotions mini 1 flip in 60 images off
(fp16 Add/Mul/Erf); only fp32 arithmetic made the two platforms agree (and they then agree exactly). A weight
``keep_float`` keeps a node's weights in fp32 too (the budget search's knob); it is rarely needed.

No library writes this form (the converters above cast the arithmetic, not only the storage), hence this
module: one pass over the initializers.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgeforge.quantize.onnx_graph import (
    load_model,
    nodes_of_types,
    require_candidates,
    save_model,
)
from edgeforge.quantize.recipes import Fp16Recipe

#: Initializers below this many elements stay fp32: scalars, shape-like constants and resize scales save
#: nothing in fp16 and some ops need them as float32 constants.
MIN_ELEMENTS = 64


class Fp16Converter:
    def __init__(self, source_path: str | Path, recipe: Fp16Recipe, infer_types: bool = False):
        self.recipe = recipe
        self.model = load_model(source_path)
        searchable = [op for op in recipe.searchable_ops if op not in recipe.keep_float_ops]
        sizes = _float_initializer_sizes(self.model.graph)
        weighted = {node.name for node in self.model.graph.node if _weights(node, sizes)}
        self.candidates = require_candidates(
            [name for name in nodes_of_types(self.model, searchable) if name in weighted], "fp16", searchable)

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        model = copy.deepcopy(self.model)
        graph = model.graph
        sizes = _float_initializer_sizes(graph)
        held = {name for node in graph.node
                if node.name in keep_float or node.op_type in self.recipe.keep_float_ops
                for name in node.input}
        stored = {name for node in graph.node for name in _weights(node, sizes)} - held
        casts = []
        for initializer in graph.initializer:
            if initializer.name not in stored:
                continue
            values = numpy_helper.to_array(initializer).astype(np.float16)
            half_name = f"{initializer.name}_fp16"
            casts.append(helper.make_node("Cast", [half_name], [initializer.name], to=TensorProto.FLOAT,
                                          name=f"{initializer.name}_to_fp32"))
            initializer.CopyFrom(numpy_helper.from_array(values, half_name))
        nodes = casts + list(graph.node)  # the Casts first: every reader comes after its input's producer
        del graph.node[:]
        graph.node.extend(nodes)
        return save_model(model, out_path)


def _weights(node: onnx.NodeProto, sizes: dict[str, int]) -> list[str]:
    """The float32 initializers of at least MIN_ELEMENTS elements ``node`` reads."""
    return [name for name in node.input if sizes.get(name, 0) >= MIN_ELEMENTS]


def _float_initializer_sizes(graph: onnx.GraphProto) -> dict[str, int]:
    return {init.name: int(np.prod(init.dims)) for init in graph.initializer if init.data_type == TensorProto.FLOAT}
