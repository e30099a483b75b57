"""Small ONNX graph helpers shared by the quantizers: loading, saving loadable files, finding nodes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from edgeforge.contract import MAX_IR_VERSION
from edgeforge.errors import EdgeforgeError


def load_model(path: str | Path) -> onnx.ModelProto:
    model = onnx.load(str(path))
    name_unnamed_nodes(model)
    return model


def save_model(model: onnx.ModelProto, path: str | Path) -> Path:
    """Save with an IR version onnxruntime loads (external data is not used: these models are < 2 GB)."""
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def name_unnamed_nodes(model: onnx.ModelProto) -> None:
    """Quantizers select and exclude nodes by name, so every node needs a unique one."""
    counts = Counter(node.name for node in model.graph.node)
    for index, node in enumerate(model.graph.node):
        if not node.name or counts[node.name] > 1:
            node.name = f"{node.op_type}_edgeforge_{index}"


#: The ops onnxruntime's quantizers give quantized weights (and, for static QDQ, quantized biases).
WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Attention")


def unshare_weights(model: onnx.ModelProto, op_types=WEIGHTED_OPS) -> int:
    """Give every ``op_types`` node its own copy of each weight or bias it shares with another node; returns
    the number of copies made.

    Why: onnxruntime's quantizers quantize a tensor for all of its consumers. A node kept float that shares,
    say, an all-zero bias with a quantized one then reads that bias through DequantizeLinear, and a float
    Conv whose bias is not a constant loses onnxruntime's blocked-layout (NCHWc) kernels: SegFormer-b2's
    kept-float convolutions took 71 ms instead of 57 (its stage-1 depthwise ones 2.7x as long). Exporters
    share identical initializers (the zero biases of a freshly initialised model are all one tensor).
    """
    initializers = {init.name: init for init in model.graph.initializer}
    uses = Counter(name for node in model.graph.node for name in node.input if name in initializers)
    copies = 0
    for index, node in enumerate(model.graph.node):
        if node.op_type not in op_types:
            continue
        for position, name in enumerate(node.input):
            if position == 0 or uses.get(name, 0) < 2:  # input 0 is the activation
                continue
            copy = onnx.TensorProto()
            copy.CopyFrom(initializers[name])
            copy.name = f"{name}_of_{node.name or index}"
            model.graph.initializer.append(copy)
            node.input[position] = copy.name
            uses[name] -= 1
            copies += 1
    return copies


def initializer_names(model: onnx.ModelProto) -> set[str]:
    return {init.name for init in model.graph.initializer}


def weighted_nodes(model: onnx.ModelProto, op_types, weight_index: int = 1) -> list[str]:
    """Names of nodes of ``op_types`` whose input ``weight_index`` is a constant initializer."""
    constants = initializer_names(model)
    return [
        node.name for node in model.graph.node
        if node.op_type in op_types and len(node.input) > weight_index and node.input[weight_index] in constants
    ]


def nodes_of_types(model: onnx.ModelProto, op_types) -> list[str]:
    return [node.name for node in model.graph.node if node.op_type in op_types]


def opset_version(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def require_candidates(candidates: list[str], what: str, op_types) -> list[str]:
    if not candidates:
        raise EdgeforgeError(
            f"the model has no quantizable ops for {what} (no {'/'.join(op_types)} with constant weights)")
    return candidates
