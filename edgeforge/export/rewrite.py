"""Applying a family's exact torch rewrites (``Family.rewrites``) and checking the result.

The rewrites themselves are declared with their family (``edgeforge.families``); none of torch, onnx or
onnxruntime does them (the decode-head fold has to see through a resize), hence they are written there.
The stock model stays the numerical reference: build validation compares the exported graph against it.

Build side only.
"""

from __future__ import annotations

import copy

import numpy as np

from edgeforge.contract import SEGMENTATION
from edgeforge.errors import EdgeforgeError
from edgeforge.families import Rewrite

#: A rewritten graph must match the stock PyTorch model this closely (float-rounding level): 1e-4 for logits up
#: to 10, and 1e-5 of the largest |logit| beyond (float32 rounding grows with the values summed: the clothes mini
#: trained at mixed sizes, logits up to 47, differs by 2.1e-4 after the fold with every label the same)...
REWRITE_MAX_ABS_DIFF = 1e-4
REWRITE_MAX_REL_DIFF = 1e-5
#: ...and give the same label map (segmentation, at the image's size) / top-1 class on this share.
REWRITE_MIN_AGREEMENT = 0.9999


def rewrite_model(model, rewrites: tuple[Rewrite, ...] | list[Rewrite]):
    """A rewritten copy of ``model`` (eval mode) with ``rewrites`` applied in order; ``model`` is untouched."""
    if model.training:
        raise EdgeforgeError("model rewrites need a model in eval mode (BatchNorm statistics, no dropout)")
    rewritten = copy.deepcopy(model)
    for rewrite in rewrites:
        rewrite.apply(rewritten)
    return rewritten.eval()


def compare_with_stock(checkpoint, candidate_logits, images: list) -> tuple[dict, float]:
    """``candidate_logits(pixel_values)`` against the *stock* PyTorch model on ``images`` (PIL): (figures: max abs
    logit difference and label-map / top-1 agreement, that agreement). Every target's graph is checked so."""
    from edgeforge.export.validate import compare_logits, reference_logits
    from edgeforge.runtime.postprocess import resize_logits_argmax

    pixel_values = checkpoint.image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)
    reference, candidate = reference_logits(checkpoint, pixel_values), candidate_logits(pixel_values)
    figures = compare_logits(reference, candidate, checkpoint.family.task)
    figures.update(images=len(images), reference="stock PyTorch model", max_abs_logit=float(np.abs(reference).max()))
    if checkpoint.family.task == SEGMENTATION:
        figures["label_map_agreement"] = min(
            float((resize_logits_argmax(ref, h, w) == resize_logits_argmax(cand, h, w)).mean())
            for ref, cand, (w, h) in zip(reference, candidate, (image.size for image in images))
        )
        return figures, figures["label_map_agreement"]
    return figures, figures["top1_agreement"]


def validate_against_stock(checkpoint, onnx_path, images: list) -> dict:
    """ONNX Runtime on the rewritten/optimised graph vs the stock PyTorch model (``compare_with_stock``);
    raises beyond the thresholds above."""
    from edgeforge.export.validate import onnx_logits

    figures, agreement = compare_with_stock(checkpoint, lambda pixels: onnx_logits(onnx_path, pixels), images)
    limit = rewrite_tolerance(figures["max_abs_logit"])
    if figures["max_abs_diff"] > limit or agreement < REWRITE_MIN_AGREEMENT:
        raise EdgeforgeError(
            f"rewritten graph of {checkpoint.source} differs from the stock PyTorch model (max |logit diff| "
            f"{figures['max_abs_diff']:.2e}, agreement {agreement:.4%}; limits {limit:.1e}, "
            f"{REWRITE_MIN_AGREEMENT:.2%}); export again with --no-fold --no-optimize and report it"
        )
    return figures


def rewrite_tolerance(max_abs_logit: float) -> float:
    """The largest |logit diff| a rewritten graph may show, for logits as large as ``max_abs_logit``."""
    return max(REWRITE_MAX_ABS_DIFF, REWRITE_MAX_REL_DIFF * max_abs_logit)
