"""Segmentation post-processing inside the graph: logits -> label map at a requested size.

The logits graph gains an int64 input ``output_size`` = [height, width] and, instead of ``logits``,
outputs ``label_map`` (batch, height, width): Resize (linear, half_pixel = torch's bilinear with
align_corners=False, no antialias, edge-clamped), ArgMax over classes (first maximum, as numpy),
Cast to uint8 (uint16 beyond 256 classes). An app then never handles the (batch, classes, h/4, w/4)
float logits. No library appends these nodes to an existing graph, so the six nodes are built
with onnx.helper.
"""

from __future__ import annotations

from pathlib import Path

from edgeforge.atomic import atomic_path
from edgeforge.contract import MAX_IR_VERSION
from edgeforge.errors import EdgeforgeError

OUTPUT_SIZE = "output_size"
LABEL_MAP = "label_map"
#: Worst per-image pixel agreement with the runtime's post-processing (float order differs slightly).
MIN_AGREEMENT = 0.9999


def add_label_map_output(src: str | Path, dst: str | Path, num_labels: int, logits_name: str = "logits") -> Path:
    """Write ``dst``: the graph of ``src`` with its ``logits_name`` output replaced by a label map."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(src))
    graph = model.graph
    if [o.name for o in graph.output] != [logits_name]:
        raise EdgeforgeError(f"{src}: expected one output {logits_name!r}, got {[o.name for o in graph.output]}")
    if num_labels > 65536:
        raise EdgeforgeError(f"{num_labels} classes do not fit a uint16 label map")
    label_type = TensorProto.UINT8 if num_labels <= 256 else TensorProto.UINT16
    batch = graph.output[0].type.tensor_type.shape.dim[0]
    graph.initializer.extend([
        helper.make_tensor("pp_zero", TensorProto.INT64, [1], [0]),
        helper.make_tensor("pp_two", TensorProto.INT64, [1], [2]),
    ])
    graph.node.extend([
        helper.make_node("Shape", [logits_name], ["pp_logits_shape"], name="pp_Shape"),
        helper.make_node("Slice", ["pp_logits_shape", "pp_zero", "pp_two"], ["pp_batch_classes"], name="pp_Slice"),
        helper.make_node("Concat", ["pp_batch_classes", OUTPUT_SIZE], ["pp_sizes"], axis=0, name="pp_Concat"),
        helper.make_node("Resize", [logits_name, "", "", "pp_sizes"], ["pp_resized"], name="pp_Resize",
                         mode="linear", coordinate_transformation_mode="half_pixel"),
        helper.make_node("ArgMax", ["pp_resized"], ["pp_labels"], axis=1, keepdims=0, name="pp_ArgMax"),
        helper.make_node("Cast", ["pp_labels"], [LABEL_MAP], to=label_type, name="pp_Cast"),
    ])
    graph.input.append(helper.make_tensor_value_info(OUTPUT_SIZE, TensorProto.INT64, [2]))
    del graph.output[:]
    label_map = helper.make_tensor_value_info(LABEL_MAP, label_type, [None, "output_height", "output_width"])
    label_map.type.tensor_type.shape.dim[0].CopyFrom(batch)
    graph.output.append(label_map)
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    onnx.checker.check_model(model, full_check=True)
    dst = Path(dst)
    with atomic_path(dst, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return dst


def validate_label_graph(label_path: str | Path, logits_path: str | Path, pixel_values, sizes: list) -> dict:
    """Pixel agreement of the in-graph label maps with the runtime's numpy post-processing of the
    logits graph, per image at its original ``sizes`` (width, height); fails below ``MIN_AGREEMENT``."""
    import onnxruntime as ort

    from edgeforge.runtime.postprocess import resize_logits_argmax

    labels = ort.InferenceSession(str(label_path), providers=["CPUExecutionProvider"])
    logits = ort.InferenceSession(str(logits_path), providers=["CPUExecutionProvider"])
    agreements = []
    for index, (width, height) in enumerate(sizes):
        one = pixel_values[index : index + 1]
        in_graph = run_label_graph(labels, one, (height, width))[0]
        reference = resize_logits_argmax(logits.run(None, {logits.get_inputs()[0].name: one})[0][0], height, width)
        agreements.append(float((in_graph == reference).mean()))
    worst = min(agreements)
    if worst < MIN_AGREEMENT:
        raise EdgeforgeError(f"{label_path}: in-graph label maps agree with the runtime's on only {worst:.4%} "
                             f"of pixels (minimum {MIN_AGREEMENT:.2%}); not writing it")
    return {"label_agreement_vs_runtime": worst, "images": len(sizes)}


def run_label_graph(session, pixel_values, size: tuple[int, int]):
    """Label map(s) from a label-map graph's session for one output ``size`` = (height, width)."""
    import numpy as np

    feeds = {session.get_inputs()[0].name: pixel_values, OUTPUT_SIZE: np.asarray(size, dtype=np.int64)}
    return session.run([LABEL_MAP], feeds)[0]
