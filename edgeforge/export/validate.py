"""Numerical validation of an exported graph against the PyTorch model it came from."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeforge.contract import SEGMENTATION
from edgeforge.errors import EdgeforgeError
from edgeforge.zoo.checkpoints import Checkpoint

#: Export fails above this max-abs logit difference: beyond float noise, something was mis-exported.
MAX_ABS_DIFF = 1e-3


def reference_logits(checkpoint: Checkpoint, pixel_values: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return checkpoint.model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()


def onnx_logits(onnx_path: str | Path, pixel_values: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: pixel_values})[0]


def compare_logits(reference: np.ndarray, candidate: np.ndarray, task: str) -> dict:
    """Max abs difference, and agreement of the predicted classes (per pixel or per image)."""
    agreement = float((reference.argmax(axis=1) == candidate.argmax(axis=1)).mean())
    figures = {"max_abs_diff": float(np.abs(reference - candidate).max())}
    figures["argmax_agreement" if task == SEGMENTATION else "top1_agreement"] = agreement
    return figures


def validate_onnx(checkpoint: Checkpoint, onnx_path: str | Path, images: list, tolerance: float = MAX_ABS_DIFF) -> dict:
    """Compare ONNX Runtime and PyTorch on ``images`` (PIL, preprocessed by the checkpoint's own processor)."""
    pixel_values = checkpoint.image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)
    figures = compare_logits(reference_logits(checkpoint, pixel_values), onnx_logits(onnx_path, pixel_values),
                             checkpoint.family.task)
    figures["images"] = len(images)
    if figures["max_abs_diff"] > tolerance:
        raise EdgeforgeError(
            f"ONNX export of {checkpoint.source} differs from PyTorch by {figures['max_abs_diff']:.2e} "
            f"(tolerance {tolerance:.0e}); not writing it"
        )
    return figures
