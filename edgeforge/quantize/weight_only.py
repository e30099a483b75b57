"""Weight-only storage for Conv, Gemm and Attention weights: int8/int4 initializer -> DequantizeLinear -> float op.

Written here because onnxruntime's quantizers have no weight-only path for these ops: MatMulNBits
covers MatMul and Gather only, and quantize_static/quantize_dynamic always quantize activations too
(ConvInteger / QLinearConv / QAttention). Compute stays in float; only the stored weights shrink.

- 8 bits: symmetric, one scale per output channel (DequantizeLinear ``axis``, opset >= 13).
- 4 bits: symmetric, one scale per block of ``block_size`` weights along the reduction (input-channel)
  axis, as MatMulNBits does for MatMul (DequantizeLinear ``block_size``, int4 tensors: opset 21, IR 10;
  the graph is moved to opset 21 with onnx's version converter). Weights whose reduction axis is shorter
  than a block (depthwise convs, the 3-channel patch embedding) get 8 bits instead.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
from onnx import helper, numpy_helper

from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.onnx_graph import opset_version

WEIGHT_ONLY_OPS = ("Conv", "Gemm", "Attention")
#: Smaller weights (biases of small heads, 1x1 classifiers of a few classes) are not worth a node.
MIN_ELEMENTS = 1024
BLOCKED_OPSET = 21


def weight_nodes(model: onnx.ModelProto, op_types=WEIGHT_ONLY_OPS) -> list[str]:
    """Nodes whose constant weight this module would store in fewer bits."""
    initializers = {init.name: init for init in model.graph.initializer}
    return [node.name for node in model.graph.node if _weight_of(node, op_types, initializers) is not None]


def store_weights(model: onnx.ModelProto, op_types=WEIGHT_ONLY_OPS, keep_float=frozenset(), bits: int = 8,
                  block_size: int = 32) -> onnx.ModelProto:
    """Return ``model`` with the weights of ``op_types`` nodes (not in ``keep_float``) stored in ``bits``.

    The converted node names are in ``converted_nodes(result)``.
    """
    if bits not in (4, 8):
        raise EdgeforgeError(f"weight-only storage takes 4 or 8 bits, not {bits}")
    if opset_version(model) < 13:
        raise EdgeforgeError(f"weight-only storage needs opset 13 or later (the model has {opset_version(model)})")
    if bits == 4 and opset_version(model) < BLOCKED_OPSET:
        model = _to_opset(model, BLOCKED_OPSET)
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    done, dequantize_nodes = set(), []
    for node in list(graph.node):
        weight = _weight_of(node, op_types, initializers)
        if weight is None or weight.name in done:
            continue
        users = consumers[weight.name]
        # A weight shared with a node that must stay float (or of another kind) is left as it is.
        if any(u.name in keep_float or _weight_of(u, op_types, initializers) is None for u in users):
            continue
        out_axis, in_axis = _axes(node)
        blocked = bits == 4 and weight.dims[in_axis] >= block_size
        dequantize_nodes.append(_replace(graph, weight, out_axis, in_axis, block_size if blocked else 0))
        done.add(weight.name)
    # DequantizeLinear reads initializers only, so placing the new nodes first keeps the graph sorted.
    nodes = dequantize_nodes + list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes)
    if any(init.data_type == onnx.TensorProto.INT4 for init in graph.initializer):
        model.ir_version = max(model.ir_version, 10)
    return model


def converted_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes that read a weight through one of this module's DequantizeLinear nodes."""
    dequantized = {n.output[0] for n in model.graph.node
                   if n.op_type == "DequantizeLinear" and n.name.endswith("_wo_dq")}
    return [n.name for n in model.graph.node if len(n.input) > 1 and n.input[1] in dequantized]


def _to_opset(model: onnx.ModelProto, version: int) -> onnx.ModelProto:
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, version)
    except Exception as exc:  # the converter raises its C++ errors as several types
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeforgeError(f"cannot move the graph to opset {version} for 4-bit weights: {first}") from None


def _weight_of(node, op_types, initializers):
    if node.op_type not in op_types or len(node.input) < 2:
        return None
    weight = initializers.get(node.input[1])
    if weight is None or weight.data_type != onnx.TensorProto.FLOAT or len(weight.dims) < 2:
        return None
    return weight if int(np.prod(weight.dims)) >= MIN_ELEMENTS else None


def _axes(node) -> tuple[int, int]:
    """(output-channel axis, reduction axis) of the node's weight."""
    if node.op_type == "Gemm":  # B is (K, N), or (N, K) with transB
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return (0, 1) if trans_b else (1, 0)
    if node.op_type == "Attention":  # (hidden, 3 x hidden) packed Q, K, V projections
        return 1, 0
    return 0, 1  # Conv: (M, C/group, k...)


def _replace(graph, weight, out_axis: int, in_axis: int, block_size: int):
    values = numpy_helper.to_array(weight).astype(np.float32)
    name = weight.name
    if block_size:
        quantized, scale = _blocked_int4(values, in_axis, block_size)
        # ml_dtypes' int4 makes onnx pack two values per byte into raw_data (make_tensor would write
        # one protobuf varint per byte pair, up to 2 bytes each).
        stored = numpy_helper.from_array(quantized.astype(ml_dtypes.int4), f"{name}_int4")
        attributes = {"axis": in_axis, "block_size": block_size}
    else:
        quantized, scale = _per_channel_int8(values, out_axis)
        stored = numpy_helper.from_array(quantized, f"{name}_int8")
        attributes = {"axis": out_axis}
    graph.initializer.remove(weight)
    graph.initializer.extend([stored, numpy_helper.from_array(scale, f"{name}_wo_scale")])
    # The DequantizeLinear output takes the weight's old name, so consumers need no edit.
    return helper.make_node("DequantizeLinear", [stored.name, f"{name}_wo_scale"], [name], name=f"{name}_wo_dq",
                            **attributes)


def _per_channel_int8(values: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    moved = np.moveaxis(values, axis, 0).reshape(values.shape[axis], -1)
    scale = _nonzero(np.abs(moved).max(axis=1) / 127.0)
    shape = [1] * values.ndim
    shape[axis] = -1
    return np.clip(np.round(values / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def _blocked_int4(values: np.ndarray, axis: int, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of ``block`` along ``axis``; the scale tensor has ceil(n / block) entries on that axis."""
    length = values.shape[axis]
    blocks = -(-length // block)
    padded = np.moveaxis(values, axis, 0)
    padded = np.concatenate([padded, np.zeros((blocks * block - length, *padded.shape[1:]), np.float32)])
    grouped = padded.reshape(blocks, block, *padded.shape[1:])
    scale = _nonzero(np.abs(grouped).max(axis=1) / 7.0)  # (blocks, ...rest)
    quantized = np.clip(np.round(grouped / scale[:, None]), -8, 7).reshape(blocks * block, *padded.shape[1:])
    quantized = np.moveaxis(quantized[:length], 0, axis).astype(np.int8)
    return quantized, np.moveaxis(scale, 0, axis)


def _nonzero(scale: np.ndarray) -> np.ndarray:
    return np.where(scale > 0, scale, 1.0).astype(np.float32)  # all-zero channels: any scale is exact
