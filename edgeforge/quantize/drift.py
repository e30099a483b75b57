"""How far a candidate variant's predictions drift from the fp32 model's own, on the same images.

Segmentation: mIoU of the candidate's label maps taking fp32's label maps as the reference (drift in
points = 100 x (1 - mIoU)); classification: top-1 agreement with fp32 (drift = 100 x (1 - agreement)).
Candidates run through ``edgeforge.runtime`` with the artifact's own pre- and post-processing, so the
figures are those an app would see. The budget is checked against an upper confidence bound on the drift
(``edgeforge.quantize.confidence``), not the estimate on these few images. Sensitivity ranking uses a finer,
continuous figure: the mean KL divergence of the class distributions at the model's output resolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeforge.contract import SEGMENTATION
from edgeforge.metrics import ClassificationScores, SegmentationScores, kl_divergence
from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE, classification_bound, segmentation_bound
from edgeforge.runtime import load
from edgeforge.runtime.postprocess import softmax


NOT_MEASURED = "not measured"
NOT_MEASURED_STATUS = "not measured: built without an accuracy budget (random weights have no accuracy to keep)"


@dataclass
class Drift:
    metric: str  # "miou_vs_fp32" or "top1_agreement_vs_fp32"
    value: float  # in [0, 1]
    num_images: int
    details: dict = field(default_factory=dict)
    bound: float | None = None  # upper confidence bound on the drift in points (see ``confidence``); None: none
    confidence: float | None = None

    @property
    def points(self) -> float:
        """Drift in percentage points: 0 means identical predictions."""
        return 100.0 * (1.0 - self.value)

    @property
    def checked_points(self) -> float:
        """What the budget is checked against: the upper bound when there is one, else the estimate."""
        return self.points if self.bound is None else max(self.bound, self.points)

    @classmethod
    def not_measured(cls) -> "Drift":
        """A variant built without a budget (``Budget(None)``: weights without accuracy to keep)."""
        return cls(NOT_MEASURED, float("nan"), 0)

    def passes(self, max_points: float | None) -> bool:
        """Within ``max_points`` by its bound; with no budget (None) every variant passes, unmeasured."""
        return max_points is None or bool(self.checked_points <= max_points + 1e-9)

    def to_json(self, max_points: float | None = None) -> dict:
        if self.metric == NOT_MEASURED:
            return {"status": NOT_MEASURED_STATUS, "num_images": 0}
        record = {"metric": self.metric, "value": round(self.value, 6), "drift_points": round(self.points, 4),
                  "num_images": self.num_images, **{k: round(v, 6) for k, v in self.details.items()}}
        if self.bound is not None:
            record.update(drift_bound_points=round(self.checked_points, 4), confidence=self.confidence)
        if max_points is not None:
            record.update(budget_points=max_points, passed=self.passes(max_points))
        return record

    def describe(self) -> str:
        """"0.123 points (95% bound 0.400)", as the build's lines say it."""
        return drift_text(self.to_json())


class DriftMeter:
    """fp32's predictions on the evaluation images, computed once; candidates are scored against them."""

    def __init__(self, artifact_dir: str | Path, images: Sequence, threads: int | None = None,
                 confidence: float | None = DEFAULT_CONFIDENCE):
        self.artifact_dir = Path(artifact_dir)
        self.threads = threads
        self.confidence = confidence or None  # 0 or None: the estimate alone
        reference = load(self.artifact_dir, "fp32", threads=threads)
        self._postprocessor = reference  # post-processing depends on the artifact's configs only
        self.task = reference.task
        self.num_classes = len(reference.id2label)
        self.input_name = reference.input.name
        self.preprocessor = reference.preprocessor
        self.pixel_values = reference.preprocessor(list(images))
        self.sizes = [image.size for image in images]
        self.reference_logits = run_logits(reference, self.pixel_values)
        self.reference = self._predictions(self.reference_logits)

    def __len__(self) -> int:
        return len(self.pixel_values)

    def candidate(self, model_file: str | Path):
        """The candidate ONNX file loaded with the artifact's configs (raises EdgeforgeError if ORT refuses it)."""
        return load(self.artifact_dir, model_file=model_file, threads=self.threads)

    def measure(self, model_file: str | Path) -> Drift:
        return self.score(run_logits(self.candidate(model_file), self.pixel_values))

    def score(self, logits: list[np.ndarray]) -> Drift:
        """Score per-image logits (from any runtime) against fp32's predictions."""
        predictions = self._predictions(logits)
        if self.task == SEGMENTATION:
            scores = SegmentationScores(self.num_classes, ignore_index=None)
            confusions = []
            for reference, prediction in zip(self.reference, predictions):
                before = scores.confusion.copy()
                scores.update(reference, prediction)
                confusions.append(scores.confusion - before)
            bound = segmentation_bound(np.stack(confusions), self.confidence) if self.confidence else None
            return Drift("miou_vs_fp32", scores.miou(), len(predictions),
                         {"pixel_agreement": scores.pixel_agreement(), "boundary_f1": scores.boundary_f1()},
                         bound, self.confidence)
        scores = ClassificationScores()
        scores.update(np.stack(self.reference), np.stack(predictions))
        disagreements = scores.total - scores.matches
        bound = classification_bound(disagreements, scores.total, self.confidence) if self.confidence else None
        return Drift("top1_agreement_vs_fp32", scores.agreement(), len(predictions), {"mean_kl": scores.mean_kl()},
                     bound, self.confidence)

    def logit_error(self, model_file: str | Path, count: int) -> float:
        """Mean KL(fp32 || candidate) of the class distributions over the first ``count`` images."""
        model = self.candidate(model_file)
        errors = [mean_class_kl(self.reference_logits[i], run_logits(model, self.pixel_values[i : i + 1])[0])
                  for i in range(min(count, len(self)))]
        return float(np.mean(errors))

    def _predictions(self, logits: list[np.ndarray]) -> list[np.ndarray]:
        """Label maps at each image's own size, or class probabilities."""
        if self.task == SEGMENTATION:
            return [self._postprocessor.postprocess(l[None], [size])[0].label_map
                    for l, size in zip(logits, self.sizes)]
        return [softmax(l[None])[0] for l in logits]


def run_logits(model, pixel_values: np.ndarray) -> list[np.ndarray]:
    """One image at a time: the activations of a full-size model at batch N would not fit small machines."""
    return [model.forward(pixel_values[i : i + 1])[0].astype(np.float32) for i in range(len(pixel_values))]


def mean_class_kl(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Mean KL divergence between class distributions; the class axis is the first (C, ...)."""
    flat_ref = np.moveaxis(reference, 0, -1).reshape(-1, reference.shape[0])
    flat_cand = np.moveaxis(candidate, 0, -1).reshape(-1, candidate.shape[0])
    return float(kl_divergence(softmax(flat_ref), softmax(flat_cand)).mean())


def drift_text(drift: dict) -> str:
    """A variant's recorded drift (``Drift.to_json``) as the build's lines say it: "0.123 points (95% bound
    0.400)" -- the estimate, and the bound the budget was checked on."""
    if "drift_points" not in drift:
        return drift.get("status", "not measured")
    text = f"{drift['drift_points']:.3f} points"
    if drift.get("drift_bound_points") is not None:
        text += f" ({drift['confidence']:.0%} bound {drift['drift_bound_points']:.3f})"
    return text
