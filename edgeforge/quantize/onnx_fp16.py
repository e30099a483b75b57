"""fp32 ONNX -> fp16 ONNX (weights and compute in float16, inputs and outputs kept float32).

The converter is onnxruntime's ``onnxruntime.transformers.float16`` (the same algorithm as
onnxconverter-common's, maintained with onnxruntime and its fused com.microsoft ops). onnxconverter-common
1.16 produces graphs onnxruntime refuses on these exports: an initializer shared by a kept-fp32 op
(LayerNormalization) and an fp16 op is left fp32 for both, and a graph input read by several nodes
loses all but one of its Casts. onnxruntime's has one flaw of its own, mended after conversion: an fp16
tensor read by several kept-fp32 nodes gets one identical Cast per reader (same name, same output).
"""

from __future__ import annotations

import copy
from pathlib import Path

from edgeforge.quantize.onnx_graph import (
    load_model,
    nodes_of_types,
    require_candidates,
    save_model,
)
from edgeforge.quantize.recipes import Fp16Recipe


class Fp16Converter:
    """Converts the graph ``onnx_int8.prepare`` wrote: its value_info already holds the types symbolic shape
    inference found for com.microsoft ops, so the converter's own (slow, sympy) pass is skipped unless
    ``infer_types`` is set (for a graph that was not prepared)."""

    def __init__(self, source_path: str | Path, recipe: Fp16Recipe, infer_types: bool = False):
        self.recipe = recipe
        self.infer_types = infer_types
        self.model = load_model(source_path)
        searchable = [op for op in recipe.searchable_ops if op not in recipe.keep_float_ops]
        self.candidates = require_candidates(nodes_of_types(self.model, searchable), "fp16", searchable)

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST
        from onnxruntime.transformers.onnx_model import OnnxModel

        # The converter needs every tensor's type; onnx's shape inference does not know the fused
        # com.microsoft ops (Attention, Gelu, ...), symbolic shape inference does.
        wrapper = OnnxModel(copy.deepcopy(self.model))  # the converter edits the graph in place
        wrapper.convert_float_to_float16(
            use_symbolic_shape_infer=self.infer_types,
            keep_io_types=self.recipe.keep_io_types,
            op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(self.recipe.keep_float_ops)),
            node_block_list=sorted(keep_float),
        )
        converted = wrapper.model
        drop_repeated_nodes(converted.graph)
        return save_model(converted, out_path)


def drop_repeated_nodes(graph) -> None:
    """Remove nodes identical to an earlier one (same op, inputs, outputs and attributes): a graph may
    produce each tensor once only, and a repeat computes nothing new."""
    seen, keep = set(), []
    for node in graph.node:
        key = node.SerializeToString(deterministic=True)
        if key not in seen:
            seen.add(key)
            keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
        names = set()
        unique_info = [v for v in graph.value_info if not (v.name in names or names.add(v.name))]
        del graph.value_info[:]
        graph.value_info.extend(unique_info)
