"""Core ML weight compression of the built ``coreml/model.mlpackage`` with coremltools.optimize.coreml.

fp16 is the Core ML build's compute precision already. The compressed packages run only under Core ML
(macOS / iOS): their drift is measured on macOS and recorded as not measured anywhere else.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import platform
import shutil
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.recipes import CoreMLLinearRecipe, CoreMLPaletteRecipe

NOT_MEASURED = "not measured: needs macOS (Core ML runs only there)"


def compress_coreml(source: str | Path, out_path: str | Path, recipe: CoreMLLinearRecipe | CoreMLPaletteRecipe) -> Path:
    """Write ``source`` with compressed weights to ``out_path`` (an .mlpackage directory)."""
    import coremltools as ct
    from coremltools.optimize import coreml as cto

    source, out_path = Path(source), Path(out_path)
    if not source.is_dir():
        raise EdgeforgeError(f"{source} is missing: build the artifact with the coreml target first")
    if isinstance(recipe, CoreMLPaletteRecipe) and recipe.mode == "kmeans" and not _has_kmeans():
        raise EdgeforgeError("k-means palettization needs scikit-learn (pip install scikit-learn), "
                             "or choose the uniform palette mode")
    model = ct.models.MLModel(str(source), skip_model_load=True)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # coremltools draws a progress bar per pass
            compressed = _compress(cto, model, recipe)
    except (ValueError, NotImplementedError) as exc:
        raise EdgeforgeError(f"Core ML compression failed: {str(exc).strip().splitlines()[0]}") from None
    for key, value in model.user_defined_metadata.items():  # task, labels, preprocessing travel along
        compressed.user_defined_metadata[key] = value
    compressed.short_description = model.short_description
    if out_path.exists():
        shutil.rmtree(out_path)
    compressed.save(str(out_path))
    return out_path


def _compress(cto, model, recipe):
    if isinstance(recipe, CoreMLLinearRecipe):
        config = cto.OpLinearQuantizerConfig(mode=recipe.mode, dtype=recipe.dtype, granularity=recipe.granularity,
                                             weight_threshold=recipe.weight_threshold)
        return cto.linear_quantize_weights(model, cto.OptimizationConfig(global_config=config))
    config = cto.OpPalettizerConfig(mode=recipe.mode, nbits=recipe.nbits, granularity=recipe.granularity,
                                    weight_threshold=recipe.weight_threshold)
    return cto.palettize_weights(model, cto.OptimizationConfig(global_config=config))


def _has_kmeans() -> bool:
    return importlib.util.find_spec("sklearn") is not None


def can_measure() -> bool:
    return platform.system() == "Darwin"


def coreml_logits(path: str | Path, pixel_values: np.ndarray, input_name: str, output_name: str = "logits"):
    """Per-image logits from Core ML (macOS only); the package takes batch-1 inputs."""
    import coremltools as ct

    model = ct.models.MLModel(str(path))
    return [np.asarray(model.predict({input_name: pixel_values[i : i + 1]})[output_name][0], dtype=np.float32)
            for i in range(len(pixel_values))]


def package_size(path: str | Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def make_coreml_variant(job, name: str, recipe) -> tuple[Path, dict]:
    """Compress the artifact's Core ML package with ``recipe``; drift measured where Core ML runs (macOS)."""
    from edgeforge.contract import VARIANTS

    source = job.root / VARIANTS["coreml"].file  # present: stages.quantize checks every base file first
    out = compress_coreml(source, job.work / Path(VARIANTS[name].file).name, recipe)
    details = {"recipe": recipe.to_json(), "size_bytes": package_size(out),
               "size_vs_fp16_package": round(package_size(out) / package_size(source), 4), "nodes_kept_float": []}
    if can_measure():
        drift = job.meter.score(coreml_logits(out, job.meter.pixel_values, job.meter.input_name))
        details["drift"] = {**drift.to_json(), "status": "measured with Core ML"}
    else:
        details["drift"] = {"status": NOT_MEASURED, "num_images": 0}
    return out, details
