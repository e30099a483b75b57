"""Drift of variants from fp32 (and accuracy against ground truth), folded image by image into tallies that
merge exactly.

Per image: preprocessed once (the runtime's ``Model.preprocess``), run through fp32 and every candidate,
post-processed by the runtime's own ``Model.postprocess`` to what an app gets (label maps at the image's
size, or class probabilities), then counted. A tally holds confusion matrices and counts, not averages, so
tallies of consecutive image ranges -- a cluster's shards -- merge into exactly what one pass over all the
images gives (``DriftTally.merge``). ``edgeforge.benchmarks.accuracy`` streams a dataset through one tally;
``edgeforge.distributed.drift`` merges the tallies of a Ray cluster's shards.

Drift, in points (what the budget is expressed in):
  segmentation    100 x (1 - mIoU of the variant's label maps taking fp32's maps as reference)
  classification  100 x (1 - top-1 agreement with fp32)
"""

from __future__ import annotations

from collections.abc import Callable
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
        if disagreement > self.disagreement:  # strictly: the first of equals wins, whatever the merging
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

    def merge(self, later: "_Segmentation") -> None:
        for mine, theirs in ((self.vs_reference, later.vs_reference), (self.vs_truth, later.vs_truth)):
            if mine is not None:  # new arrays: a tally that came from a Ray worker holds read-only ones
                mine.confusion = mine.confusion + theirs.confusion
                mine._boundary = mine._boundary + theirs._boundary
        self.worst.offer(later.worst.index, later.worst.path, later.worst.disagreement)


@dataclass
class _Classification:
    labelled: bool
    vs_reference: ClassificationScores = field(default_factory=ClassificationScores)
    vs_truth: ClassificationScores | None = field(init=False)
    worst: _Worst = field(default_factory=_Worst)
    kls: list[float] = field(default_factory=list)  # per image, in image order: the KL sum is re-added from them

    def __post_init__(self):
        self.vs_truth = ClassificationScores() if self.labelled else None

    def merge(self, later: "_Classification") -> None:
        for mine, theirs in ((self.vs_reference, later.vs_reference), (self.vs_truth, later.vs_truth)):
            if mine is not None:
                mine.matches += theirs.matches
                mine.total += theirs.total
                mine.kl_count += theirs.kl_count
        # Float addition is not associative: adding the halves' sums would differ from a local run in the
        # last bits; re-adding image by image, in order, is the local run's own sum.
        self.kls += later.kls
        self.vs_reference.kl_sum = 0.0
        for kl in self.kls:
            self.vs_reference.kl_sum += kl
        self.worst.offer(later.worst.index, later.worst.path, later.worst.disagreement)


class DriftTally:
    """The scores ``measure_drift`` keeps, for some of a dataset's images: fp32 against ground truth, and each
    candidate against fp32 (and ground truth). Tallies of consecutive image ranges merge exactly (``merge``,
    in image order): counts add up, the one float sum is redone image by image -- so figures reduced from a
    cluster's shards equal a local run's."""

    def __init__(self, segmentation: bool, names: list[str], candidates: list[str], use_labels: bool):
        self.segmentation, self.names, self.use_labels = segmentation, names, use_labels
        make = (lambda: _Segmentation(len(names), use_labels)) if segmentation else (lambda: _Classification(use_labels))
        self.fp32_truth = make()
        self.states = {name: make() for name in candidates}
        self.count = 0

    def add(self, index: int, sample, reference_model, candidates: dict[str, Forward]) -> None:
        """Fold in image ``index``: preprocessed once, run through fp32 and every candidate, post-processed by
        the runtime to what an app gets."""
        pixel_values, images = reference_model.preprocess([sample.image])
        sizes = [image.size for image in images]
        reference = _output(reference_model, reference_model.forward(pixel_values), sizes, self.segmentation)
        label = sample.label if self.use_labels else None
        if label is not None:
            _update_truth(self.fp32_truth, label, reference, self.segmentation)
        for name, forward in candidates.items():
            output = _output(reference_model, forward(pixel_values), sizes, self.segmentation)
            state = self.states[name]
            state.vs_reference.update(reference, output)
            if self.segmentation:
                departure = (output != reference).mean()
            else:
                departure = _kl(reference, output)
                state.kls.append(departure)
            state.worst.offer(index, str(sample.path), float(departure))
            if label is not None:
                _update_truth(state, label, output, self.segmentation)
        self.count += 1

    def merge(self, later: "DriftTally") -> None:
        """Add the tally of the images that follow this one's."""
        self.fp32_truth.merge(later.fp32_truth)
        for name, state in self.states.items():
            state.merge(later.states[name])
        self.count += later.count

    def summary(self) -> dict:
        summarize = _summarize_segmentation if self.segmentation else _summarize_classification
        reference_truth = summarize(self.fp32_truth, self.names, None)["ground_truth"] if self.use_labels else None
        return {
            "samples": self.count,
            "labelled": self.use_labels,
            "definition": DEFINITION[self.segmentation],
            "fp32_ground_truth": reference_truth,
            "candidates": {name: summarize(state, self.names, reference_truth) for name, state in self.states.items()},
        }


DEFINITION = {True: "100 x (1 - mIoU vs fp32 label maps)", False: "100 x (1 - top-1 agreement with fp32)"}


def new_tally(reference_model, candidates: list[str], use_labels: bool) -> DriftTally:
    names = [reference_model.id2label[i] for i in sorted(reference_model.id2label)]
    return DriftTally(reference_model.task == SEGMENTATION, names, candidates, use_labels)


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
