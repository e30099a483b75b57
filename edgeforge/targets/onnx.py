"""ONNX: the fp32 reference graph (exact family rewrites + onnxruntime fusions), validated against the stock
PyTorch model, and the quantized / fp16 variants made from it within the accuracy budget."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeforge.contract import SEGMENTATION, VariantEntry
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.recipes import (
    DynamicInt8Recipe,
    Fp16Recipe,
    HybridInt8Recipe,
    Int4Recipe,
    StaticInt8Recipe,
)
from edgeforge.targets.base import ExportJob, Target, register


def export(job: ExportJob) -> dict[str, VariantEntry]:
    from edgeforge.export.onnx import export_onnx
    from edgeforge.export.rewrite import validate_against_stock
    from edgeforge.export.validate import validate_onnx

    checkpoint = job.checkpoint
    if job.postprocess_in_graph and checkpoint.family.task != SEGMENTATION:
        raise EdgeforgeError(f"--postprocess-in-graph makes label maps: {checkpoint.family.task} models have none")
    entry = VariantEntry.of("fp32")
    onnx_path = job.staging / entry.file
    job.exported_onnx = job.work / "exported.onnx"
    export_onnx(checkpoint, job.exported_onnx, opset=job.opset, fold=job.fold)
    graph = _optimize_graph(job.exported_onnx, onnx_path, checkpoint, job.fold, job.optimize, job.log)
    if graph["rewrites"] or graph["optimizer"]:
        validation = validate_against_stock(checkpoint, onnx_path, job.images)
    else:
        validation = validate_onnx(checkpoint, onnx_path, job.images)
    entry.details.update(graph=graph, validation=validation)
    job.log(f"      max |logit diff| vs PyTorch {validation['max_abs_diff']:.2e}, "
            + ", ".join(f"{k} {v:.4%}" for k, v in validation.items() if k.endswith("agreement")))
    entries = {"fp32": entry}
    if job.postprocess_in_graph:
        entries["labels"] = _label_graph(job, onnx_path)
    return entries


def _optimize_graph(exported: Path, onnx_path: Path, checkpoint, fold: bool, optimize: bool, log) -> dict:
    """onnx/model.onnx from the exported graph: onnxruntime's fusions for the family, or the graph as is.
    Returns the manifest's record of what was applied."""
    family = checkpoint.family
    graph = {"rewrites": [rewrite.name for rewrite in family.rewrites_for("onnx")] if fold else [], "optimizer": None}
    if not (optimize and family.fusion):
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(exported, onnx_path)
        return graph
    from edgeforge.export.optimize import missing_fusions, optimize_onnx

    graph["optimizer"] = optimize_onnx(exported, onnx_path, family.fusion)
    fused = graph["optimizer"]["fused_operators"]
    log("      fused: " + (", ".join(f"{count} {op}" for op, count in fused.items()) or "nothing"))
    missing = missing_fusions(graph["optimizer"], family.fusion)
    if missing:
        log(f"      warning: expected fusions did not fire: {', '.join(missing)}")
    return graph


def _label_graph(job: ExportJob, onnx_path: Path) -> VariantEntry:
    """onnx/model_labels.onnx: resize + argmax inside the graph, a uint8 label map out."""
    import numpy as np

    from edgeforge.export.postprocess_graph import (
        add_label_map_output,
        validate_label_graph,
    )

    checkpoint, entry = job.checkpoint, VariantEntry.of("labels")
    out_path = job.staging / entry.file
    add_label_map_output(onnx_path, out_path, len(checkpoint.config.id2label), checkpoint.family.output_name)
    pixel_values = checkpoint.image_processor(job.images, return_tensors="np")["pixel_values"].astype(np.float32)
    validation = validate_label_graph(out_path, onnx_path, pixel_values, [image.size for image in job.images])
    entry.details.update(output="label_map", validation=validation,
                         inputs={checkpoint.family.input_name: "float32 (batch, 3, height, width)",
                                 "output_size": "int64 [height, width] of the label map"})
    return entry


def make_precision(job, name: str, recipe):
    from edgeforge.quantize.onnx_search import make_onnx_variant

    return make_onnx_variant(job, name, recipe)


ONNX = register(Target(
    name="onnx",
    title="exporting ONNX and validating against PyTorch",
    export=export,
    base_variant="fp32",
    precisions={
        "fp16": Fp16Recipe(),
        "quantized": HybridInt8Recipe(),
        "int8": StaticInt8Recipe(activation_type="int8"),
        "uint8": DynamicInt8Recipe(weight_type="uint8"),
        "q4": Int4Recipe(),
    },
    make_precision=make_precision,
))
