"""ORT format for ONNX Runtime Mobile: the exported graph with a fixed batch-1 input, its reduced-build
operator config and the NNAPI / Core ML usability report, compared with the ONNX graph."""

from __future__ import annotations

from edgeforge.contract import VariantEntry
from edgeforge.targets.base import ExportJob, Target, register


def export(job: ExportJob) -> dict[str, VariantEntry]:
    import numpy as np

    from edgeforge.export.ort_mobile import CONVERSION, compare_ort_with_onnx, export_ort

    entry = VariantEntry.of("ort")
    out_dir = (job.staging / entry.file).parent
    pixel_values = job.checkpoint.image_processor(job.images[:1], return_tensors="np")["pixel_values"]
    pixel_values = pixel_values.astype(np.float32)
    # Before onnxruntime's fusions: NNAPI / Core ML take standard ops only.
    usability = export_ort(job.exported_onnx, out_dir, list(pixel_values.shape))
    diff = compare_ort_with_onnx(job.staging / entry.file, job.exported_onnx, pixel_values)
    entry.details.update(validation={"max_abs_diff_vs_onnx": diff}, conversion=CONVERSION,
                         mobile_usability=usability)
    return {"ort": entry}


ORT = register(Target(name="ort", title="converting to ORT format (ONNX Runtime Mobile)", export=export,
                      base_variant="ort"))
