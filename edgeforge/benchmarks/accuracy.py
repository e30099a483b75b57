"""Drift of every variant from fp32 (and accuracy against ground truth) over a dataset, streamed.

One image at a time: it is preprocessed once (the runtime's ``Model.preprocess``, identical for all
variants), run through fp32 and every candidate, post-processed by the runtime's own
``Model.postprocess`` to what an app would get (label maps at the image's size, or class
probabilities), and folded into streaming scores. Memory stays bounded by one image's worth of maps.

Drift, in points (what the budget is expressed in):
  segmentation    100 x (1 - mIoU of the variant's label maps taking fp32's maps as reference)
  classification  100 x (1 - top-1 agreement with fp32)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from edgeforge.contract import SEGMENTATION
from edgeforge.metrics import ClassificationScores, SegmentationScores, kl_divergence

Forward = Callable[[np.ndarray], np.ndarray]  # (N, 3, H, W) float32 -> logits


@dataclass
class _Worst:
    """The image on which a candidate departs most from fp32 (for the side-by-side figure)."""

    index: int = -1
    path: str = ""
    disagreement: float = -1.0

    def offer(self, index: int, path: str, disagreement: float) -> None:
        if disagreement > self.disagreement:
            self.index, self.path, self.disagreement = index, path, disagreement


@dataclass
class _Segmentation:
    num_classes: int
    labelled: bool
    vs_reference: SegmentationScores = field(init=False)
    vs_truth: SegmentationScores | None = field(init=False)
    worst: _Worst = field(default_factory=_Worst)

    def __post_init__(self):
        self.vs_reference = SegmentationScores(self.num_classes)
        self.vs_truth = SegmentationScores(self.num_classes) if self.labelled else None


@dataclass
class _Classification:
    labelled: bool
    vs_reference: ClassificationScores = field(default_factory=ClassificationScores)
    vs_truth: ClassificationScores | None = field(init=False)
    worst: _Worst = field(default_factory=_Worst)

    def __post_init__(self):
        self.vs_truth = ClassificationScores() if self.labelled else None


def measure_drift(
    dataset: Iterable,
    reference_model,
    candidates: dict[str, Forward],
    use_labels: bool,
    total: int | None = None,
    progress: bool = True,
    description: str = "drift",
) -> dict:
    """Stream ``dataset`` (``Sample``s) through fp32 (``reference_model``, a runtime ``Model``) and
    each candidate forward; returns figures per candidate and fp32's own ground-truth figures."""
    segmentation = reference_model.task == SEGMENTATION
    names = [reference_model.id2label[i] for i in sorted(reference_model.id2label)]
    make = (lambda: _Segmentation(len(names), use_labels)) if segmentation else (lambda: _Classification(use_labels))
    fp32_truth = make()
    states = {name: make() for name in candidates}
    count = 0
    for index, sample in enumerate(_progress(dataset, total, progress, description)):
        pixel_values, images = reference_model.preprocess([sample.image])
        sizes = [image.size for image in images]
        reference = _output(reference_model, reference_model.forward(pixel_values), sizes, segmentation)
        label = sample.label if use_labels else None
        if label is not None:
            _update_truth(fp32_truth, label, reference, segmentation)
        for name, forward in candidates.items():
            output = _output(reference_model, forward(pixel_values), sizes, segmentation)
            state = states[name]
            state.vs_reference.update(reference, output)
            departure = (output != reference).mean() if segmentation else _kl(reference, output)
            state.worst.offer(index, str(sample.path), float(departure))
            if label is not None:
                _update_truth(state, label, output, segmentation)
        count += 1
    summarize = _summarize_segmentation if segmentation else _summarize_classification
    reference_truth = summarize(fp32_truth, names, None)["ground_truth"] if use_labels else None
    return {
        "samples": count,
        "labelled": use_labels,
        "definition": "100 x (1 - mIoU vs fp32 label maps)" if segmentation else "100 x (1 - top-1 agreement with fp32)",
        "fp32_ground_truth": reference_truth,
        "candidates": {name: summarize(state, names, reference_truth) for name, state in states.items()},
    }


def _output(model, logits: np.ndarray, sizes, segmentation: bool) -> np.ndarray:
    result = model.postprocess(logits, sizes)[0]
    return result.label_map if segmentation else result.probabilities


def _update_truth(state, label, output: np.ndarray, segmentation: bool) -> None:
    if segmentation:
        state.vs_truth.update(np.asarray(label), output)
    else:
        state.vs_truth.update_labels(np.array([int(label)]), output[None])


def _kl(reference: np.ndarray, output: np.ndarray) -> float:
    return float(kl_divergence(reference[None], output[None])[0])


def _summarize_segmentation(state: _Segmentation, names: list[str], fp32_truth: dict | None) -> dict:
    scores = state.vs_reference
    per_class = scores.per_class_iou()
    miou, boundary_f1 = scores.miou(), scores.boundary_f1()
    figures = {
        "miou_vs_fp32": _number(miou),
        "drift_points": _number(100 * (1 - miou)),
        "pixel_agreement": _number(scores.pixel_agreement()),
        "boundary_f1": _number(boundary_f1),
        "boundary_f1_drift_points": _number(100 * (1 - boundary_f1)),
        "per_class_iou_vs_fp32": _by_name(names, per_class),
        "per_class_iou_drift_points": _by_name(names, 100 * (1 - per_class)),
        "worst_image": _worst(state.worst, "pixel_disagreement"),
    }
    if state.vs_truth is not None:
        truth = state.vs_truth
        figures["ground_truth"] = {
            "miou": _number(truth.miou()),
            "pixel_accuracy": _number(truth.pixel_agreement()),
            "boundary_f1": _number(truth.boundary_f1()),
            "per_class_iou": _by_name(names, truth.per_class_iou()),
        }
        if fp32_truth is not None:
            figures["ground_truth"]["miou_delta_points"] = _delta(figures["ground_truth"]["miou"], fp32_truth["miou"])
    return figures


def _summarize_classification(state: _Classification, names: list[str], fp32_truth: dict | None) -> dict:
    scores = state.vs_reference
    agreement = scores.agreement()
    figures = {
        "top1_agreement": _number(agreement),
        "drift_points": _number(100 * (1 - agreement)),
        "mean_kl": _number(scores.mean_kl()),
        "worst_image": _worst(state.worst, "kl"),
    }
    if state.vs_truth is not None:
        figures["ground_truth"] = {"accuracy": _number(state.vs_truth.agreement())}
        if fp32_truth is not None:
            figures["ground_truth"]["accuracy_delta_points"] = _delta(
                figures["ground_truth"]["accuracy"], fp32_truth["accuracy"])
    return figures


def _worst(worst: _Worst, measure: str) -> dict | None:
    return {"index": worst.index, "path": worst.path, measure: worst.disagreement} if worst.index >= 0 else None


def _delta(value: float | None, reference: float | None) -> float | None:
    """Change in points (variant minus fp32): negative means the variant scores lower."""
    return None if value is None or reference is None else 100 * (value - reference)


def _number(value: float) -> float | None:
    """JSON has no NaN: an undefined figure (e.g. IoU of a class absent everywhere) becomes None."""
    return None if value is None or not np.isfinite(value) else float(value)


def _by_name(names: list[str], values: np.ndarray) -> dict[str, float | None]:
    return {name: _number(v) for name, v in zip(names, values)}


def _progress(items: Iterable, total: int | None, enabled: bool, description: str) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=description, unit="img", leave=False)
