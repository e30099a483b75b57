"""LiteRT (formerly TensorFlow Lite: Android's on-device runtime, MediaPipe, most Linux boards): ``.tflite``
converted by ``litert-torch`` from the checkpoint *with the family's torch rewrites for LiteRT* (SegFormer: folded
decode head, attention scores as BATCH_MATMUL, convs fed by way of NHWC), validated against the stock PyTorch
model; fp16 weights, dynamic-range int8 and static int8 (calibrated) made by ai-edge-quantizer within the accuracy
budget, on the ops XNNPACK runs fast in int8 (see ``LiteRTRecipe.op_types``).

Optional: ``pip install 'edgeforge[litert]'`` (litert-torch, ai-edge-litert, ai-edge-quantizer). Without it the
target is not in the default set, and asking for it says how to install it.
"""

from __future__ import annotations

from pathlib import Path

from edgeforge.contract import VARIANTS, VariantEntry
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.recipes import LiteRTRecipe
from edgeforge.targets.base import ExportJob, Target, register

#: The .tflite's label maps must agree with the stock PyTorch model's on this share of pixels (top-1 on every
#: image for classification): float32 throughout, only summation order differs.
MIN_AGREEMENT = 0.999


def convert(model, sample, out_path: Path) -> None:
    """``litert_torch.convert`` of a logits-only module; one line naming the op for what it cannot lower."""
    import contextlib
    import io

    import litert_torch

    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            edge_model = litert_torch.convert(model.eval(), (sample,))
            edge_model.export(str(out_path))
    except Exception as exc:  # torch.export and the lowering raise many types; the first line names the op
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise EdgeforgeError(f"litert-torch cannot convert the model: {lines[0] if lines else type(exc).__name__}") from None


def convert_checkpoint(checkpoint, model, out_path: Path) -> list[int]:
    """``convert`` of ``model`` (the checkpoint's, rewritten or stock) at the checkpoint's input size, one image
    of NCHW float; returns that input shape. The target and the bench's stock peer convert the same way."""
    import torch

    from edgeforge.export.onnx import input_size, logits_module

    shape = [1, checkpoint.config.num_channels, *input_size(checkpoint.image_processor)]
    with torch.no_grad():
        convert(logits_module(model), torch.zeros(*shape), out_path)
    return shape


def export(job: ExportJob) -> dict[str, VariantEntry]:
    import time

    from edgeforge.export.rewrite import rewrite_model
    from edgeforge.runtime.engines import litert_op_set

    checkpoint = job.checkpoint
    model = checkpoint.model
    rewrites = checkpoint.family.rewrites_for("litert") if job.fold else ()
    if rewrites:
        model = rewrite_model(model, rewrites)
    entry = VariantEntry.of("litert")
    path = job.staging / entry.file
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    shape = convert_checkpoint(checkpoint, model, path)
    entry.details.update(validation=_validate(job, path), converted_with="litert-torch",
                         rewrites=[rewrite.name for rewrite in rewrites],
                         conversion_seconds=round(time.perf_counter() - started, 1), input_shape=shape,
                         layout="NCHW", litert=litert_op_set(path))
    job.log(f"      LiteRT vs PyTorch: max |logit diff| {entry.details['validation']['max_abs_diff']:.2e}")
    return {"litert": entry}


def _validate(job: ExportJob, path: Path) -> dict:
    import numpy as np

    from edgeforge.export.rewrite import compare_with_stock
    from edgeforge.runtime.engines import EngineOptions, LiteRTEngine

    engine = LiteRTEngine(path, EngineOptions())
    figures, agreement = compare_with_stock(
        job.checkpoint, lambda pixels: np.concatenate([engine.run(pixels[i : i + 1]) for i in range(len(pixels))]),
        job.images)
    if agreement < MIN_AGREEMENT:
        raise EdgeforgeError(f"the LiteRT model of {job.checkpoint.source} disagrees with PyTorch ({agreement:.4%} "
                             f"agreement, limit {MIN_AGREEMENT:.1%}); not writing it")
    return figures


def make_precision(job, name: str, recipe: LiteRTRecipe):
    from edgeforge.quantize.budget import fit_to_budget
    from edgeforge.quantize.litert_quantizer import LiteRTQuantizer
    from edgeforge.quantize.onnx_search import outcome_details

    quantizer = LiteRTQuantizer(job.root / VARIANTS["litert"].file, recipe, job.calibration_pixel_values)
    held = job.held_float(name) & set(quantizer.candidates)
    outcome = fit_to_budget(quantizer, job.meter, job.budget, job.work, name, job.log, held)
    details = outcome_details(recipe, outcome, job.budget, job.fp32_size)
    details["search"]["held_float_as_asked"] = sorted(held)
    return outcome.path, details


LITERT = register(Target(
    name="litert",
    title="converting to LiteRT (.tflite) with litert-torch and validating against PyTorch",
    export=export,
    base_variant="litert",
    precisions={
        "litert-fp16": LiteRTRecipe(mode="fp16"),
        # Fully connected layers only: XNNPACK's dynamically quantized CONV_2D rounds differently on x86 and ARM
        # (clothes mini: 0.66 points apart, max |logit diff| 0.16, where its FC kernels agree to 1e-5), and it
        # bought no speed at full size (b2: 168 ms with CONV_2D vs 173 ms fp32).
        "litert-dynamic-int8": LiteRTRecipe(mode="dynamic-int8", op_types=("FULLY_CONNECTED",)),
        "litert-int8": LiteRTRecipe(mode="static-int8", op_types=("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D")),
    },
    make_precision=make_precision,
    requires=("litert_torch", "ai_edge_litert", "ai_edge_quantizer"),
))
