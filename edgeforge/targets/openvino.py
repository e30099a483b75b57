"""OpenVINO (Intel CPUs, edge boxes): the IR of edgeforge's optimised ONNX graph (``openvino.convert_model``;
fp16-compressed weights, as ``save_model`` writes by default), validated against the stock PyTorch model; bf16
compute where the CPU has it; NNCF post-training int8 within the accuracy budget.

Optional: ``pip install 'edgeforge[openvino]'`` (openvino + nncf). Without it the target is not in the default
set, and asking for it says how to install it.
"""

from __future__ import annotations

from pathlib import Path

from edgeforge.contract import VARIANTS, VariantEntry
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.recipes import NNCFInt8Recipe, OpenVINOComputeRecipe
from edgeforge.targets.base import ExportJob, Target, register

#: The IR's label maps must agree with the stock PyTorch model's on this share of pixels (top-1 on every
#: image for classification); fp16-compressed weights move logits by ~1e-3, not decisions ...
MIN_AGREEMENT = 0.999
#: ... unless its logits are within this share of the largest one: then every flipped pixel was a near-tie,
#: which random weights are full of (b5's flipped 0.13 %). fp16 weights measured 0.05-0.18 % here (the minis
#: and the full-size random b2 and ViT); a wrong conversion is off by the logits' own size.
MAX_RELATIVE_DIFF = 0.01
INSTALL = "pip install 'edgeforge[openvino]'"


def _openvino():
    try:
        import openvino
    except ImportError:
        raise EdgeforgeError(f"the openvino target needs OpenVINO: {INSTALL}") from None
    return openvino


def has_bf16() -> bool:
    from edgeforge.runtime import engines

    _openvino()
    return engines.openvino_cpu_has_bf16()


def export(job: ExportJob) -> dict[str, VariantEntry]:
    ov = _openvino()
    entry = VariantEntry.of("openvino")
    onnx_path, ir_path = job.staging / VARIANTS["fp32"].file, job.staging / entry.file
    ir_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # the ONNX frontend names the op it has no conversion for
        raise EdgeforgeError(f"OpenVINO cannot convert {onnx_path.name}: {str(exc).strip().splitlines()[0]}") from None
    ov.save_model(model, str(ir_path), compress_to_fp16=True)
    entry.details.update(validation=_validate(job, ir_path), converted_from=VARIANTS["fp32"].file,
                         weights="fp16 (compressed)", input_shape="dynamic (the runtime fixes it to one image)")
    job.log(f"      OpenVINO IR vs PyTorch: max |logit diff| {entry.details['validation']['max_abs_diff']:.2e}")
    return {"openvino": entry}


def _validate(job: ExportJob, ir_path: Path) -> dict:
    """The IR (f32 compute) against the stock PyTorch model on the build's validation images."""
    import numpy as np

    from edgeforge.export.rewrite import compare_with_stock
    from edgeforge.runtime.engines import EngineOptions, OpenVINOEngine

    checkpoint = job.checkpoint
    engine = OpenVINOEngine(ir_path, EngineOptions(inference_precision="f32"))
    figures, agreement = compare_with_stock(
        checkpoint, lambda pixels: np.concatenate([engine.run(pixels[i : i + 1]) for i in range(len(pixels))]),
        job.images)
    figures["inference_precision"] = "f32"
    figures["relative_logit_diff"] = relative = figures["max_abs_diff"] / max(figures["max_abs_logit"], 1e-30)
    if agreement < MIN_AGREEMENT and relative > MAX_RELATIVE_DIFF:
        raise EdgeforgeError(f"the OpenVINO IR of {checkpoint.source} disagrees with PyTorch ({agreement:.4%} "
                             f"agreement, limit {MIN_AGREEMENT:.1%}; max |logit diff| {relative:.2%} of the largest "
                             f"logit, limit {MAX_RELATIVE_DIFF:.0%}); not writing it")
    return figures


def make_precision(job, name: str, recipe):
    if isinstance(recipe, OpenVINOComputeRecipe):
        return _compute_precision(job, name, recipe)
    return _nncf_int8(job, name, recipe)


def _compute_precision(job, name: str, recipe: OpenVINOComputeRecipe):
    """The artifact's IR run at ``recipe.inference_precision``: its drift under the budget, no new file."""
    from edgeforge.quantize.drift import Drift, run_logits
    from edgeforge.runtime import load
    from edgeforge.runtime.artifact import model_size

    if recipe.inference_precision == "bf16" and not has_bf16():
        raise EdgeforgeError(f"{name}: this CPU has no native bf16, so its drift cannot be measured here")
    ir = job.root / VARIANTS["openvino"].file
    if job.budget.max_drift is None:  # no accuracy to keep: nothing to measure
        drift = Drift.not_measured()
    else:
        model = load(job.root, variant=name, model_file=ir, threads=job.threads)
        drift = job.meter.score(run_logits(model, job.meter.pixel_values))
    size = model_size(ir)
    details = {"recipe": recipe.to_json(), "drift": drift.to_json(job.budget.max_drift), "nodes_kept_float": [],
               "inference_precision": recipe.inference_precision, "same_file_as": "openvino",
               "size_bytes": size, "size_vs_fp32": round(size / job.fp32_size, 4)}
    return (ir if drift.passes(job.budget.max_drift) else None), details


def _nncf_int8(job, name: str, recipe: NNCFInt8Recipe):
    from edgeforge.quantize.budget import fit_to_budget
    from edgeforge.quantize.onnx_search import outcome_details
    from edgeforge.quantize.openvino_int8 import NNCFInt8Quantizer

    quantizer = NNCFInt8Quantizer(job.root / VARIANTS["openvino"].file, recipe, job.calibration_pixel_values,
                                  job.input_name, job.work)
    held = job.held_float(name) & set(quantizer.candidates)  # ONNX node names OpenVINO kept
    outcome = fit_to_budget(quantizer, job.meter, job.budget, job.work, name, job.log, held)
    details = outcome_details(recipe, outcome, job.budget, job.fp32_size)
    details["search"]["held_float_as_asked"] = sorted(held)
    return outcome.path, details


def unavailable(name: str) -> str | None:
    """Why this machine cannot make precision ``name`` (None: it can)."""
    if name == "openvino-bf16" and not has_bf16():
        return "this CPU has no native bf16"
    return None


OPENVINO = register(Target(
    name="openvino",
    title="converting to OpenVINO IR and validating against PyTorch",
    export=export,
    base_variant="openvino",
    precisions={"openvino-bf16": OpenVINOComputeRecipe(), "openvino-int8": NNCFInt8Recipe()},
    make_precision=make_precision,
    requires=("openvino", "nncf"),
    unavailable=unavailable,
))
