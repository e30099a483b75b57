"""Small ONNX graph helpers shared by the quantizers: loading, saving loadable files, finding nodes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import onnx

from edgeforge.errors import EdgeforgeError

#: onnx 1.23 writes IR version 14 by default; onnxruntime 1.31 loads at most 13, and 10 covers int4 tensors.
MAX_IR_VERSION = 10


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
