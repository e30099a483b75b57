"""Accuracy of a mini model on a held-out split of its synthetic dataset.

One scoring path for every caller: training scores its PyTorch model with it (the model card's
figures) and the tests score the exported ONNX graph through the runtime with it, so the two figures
differ only by the split's seed and the engine. Pre- and post-processing are the runtime's own
(``Preprocessor``, ``resize_logits_argmax``, ``softmax``): what the card reports is what an app gets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgeforge.contract import SEGMENTATION
from edgeforge.metrics import ClassificationScores, SegmentationScores
from edgeforge.references import label_names, load_reference
from edgeforge.runtime.postprocess import resize_logits_argmax, softmax
from edgeforge.runtime.preprocess import Preprocessor

LogitsFn = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 pixel values -> logits


def is_segmentation(name: str) -> bool:
    return load_reference(name)["task"] == SEGMENTATION


def headline_metric(name: str) -> str:
    """The figure a mini's target is set on: mean IoU for parsing, top-1 accuracy for expressions."""
    return "mean_iou" if is_segmentation(name) else "accuracy"


def evaluate(name: str, logits_fn: LogitsFn, preprocessor: Preprocessor, samples: Sequence[tuple],
             batch_size: int = 16) -> dict:
    """Score ``logits_fn`` on ``samples``; label maps are compared at the label's own resolution."""
    names = label_names(name)
    segmentation = is_segmentation(name)
    scores = SegmentationScores(len(names)) if segmentation else ClassificationScores()
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)  # classification: true x predicted
    for start in range(0, len(samples), batch_size):
        batch = samples[start : start + batch_size]
        logits = logits_fn(preprocessor([image for image, _ in batch]))
        if segmentation:
            for class_logits, (_, label) in zip(logits, batch):
                height, width = label.shape
                scores.update(label, resize_logits_argmax(class_logits.astype(np.float32), height, width))
        else:
            labels = np.array([label for _, label in batch])
            probabilities = softmax(logits)
            scores.update_labels(labels, probabilities)
            np.add.at(confusion, (labels, probabilities.argmax(-1)), 1)
    if segmentation:
        return {"mean_iou": scores.miou(), "pixel_accuracy": scores.pixel_agreement(),
                "per_class_iou": _by_name(names, scores.per_class_iou()), "samples": len(samples)}
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.diag(confusion) / confusion.sum(1)
    return {"accuracy": scores.agreement(), "per_class_accuracy": _by_name(names, recall),
            "confusion": confusion.tolist(), "samples": len(samples)}


def _by_name(names: Sequence[str], values: np.ndarray) -> dict[str, float | None]:
    """JSON-friendly: NaN (class absent from the split) becomes None."""
    return {n: (None if np.isnan(v) else float(v)) for n, v in zip(names, values)}
