"""Core ML: an ML Program ``.mlpackage`` (fp16 compute) with labels and preprocessing in its metadata, and
its weight-compressed variants (coremltools.optimize). Prediction needs macOS: elsewhere the package is
checked structurally and drift is recorded as not measured."""

from __future__ import annotations

from edgeforge.contract import VariantEntry
from edgeforge.quantize.recipes import CoreMLLinearRecipe, CoreMLPaletteRecipe
from edgeforge.targets.base import ExportJob, Target, register


def export(job: ExportJob) -> dict[str, VariantEntry]:
    from edgeforge.export.coreml import export_coreml, validate_coreml

    entry = VariantEntry.of("coreml")
    path = job.staging / entry.file
    export_coreml(job.checkpoint, path)
    entry.details["validation"] = validate_coreml(path, job.checkpoint)
    return {"coreml": entry}


def make_precision(job, name: str, recipe):
    from edgeforge.quantize.coreml import make_coreml_variant

    return make_coreml_variant(job, name, recipe)


COREML = register(Target(
    name="coreml",
    title="converting to Core ML (.mlpackage, fp16)",
    export=export,
    base_variant="coreml",
    precisions={
        "coreml-int8": CoreMLLinearRecipe(),
        "coreml-palette4": CoreMLPaletteRecipe(nbits=4),
        "coreml-palette6": CoreMLPaletteRecipe(nbits=6),
    },
    make_precision=make_precision,
))
