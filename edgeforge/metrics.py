"""Agreement and accuracy metrics on label maps and class scores (numpy only).

Used the same way everywhere: ``reference`` is fp32's prediction (for drift) or the ground truth
(for accuracy), ``prediction`` the variant's. Segmentation metrics accumulate a confusion matrix, so
a whole dataset streams through in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class SegmentationScores:
    """Streaming confusion matrix plus boundary counts for one (reference, prediction) pairing."""

    num_classes: int
    ignore_index: int | None = 255
    boundary_tolerance: int = 2  # pixels, as in the usual boundary-F1 definition scaled to small images
    confusion: np.ndarray = field(init=False)
    _boundary: np.ndarray = field(init=False)  # [matched pred, pred total, matched ref, ref total]

    def __post_init__(self):
        self.confusion = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        self._boundary = np.zeros(4, dtype=np.int64)

    def update(self, reference: np.ndarray, prediction: np.ndarray) -> None:
        if reference.shape != prediction.shape:
            raise ValueError(f"label maps differ in shape: {reference.shape} vs {prediction.shape}")
        valid = np.ones(reference.shape, dtype=bool) if self.ignore_index is None else reference != self.ignore_index
        ref, pred = reference[valid].astype(np.int64), prediction[valid].astype(np.int64)
        # An id outside 0..num_classes-1 would land in another class's cell of the flattened matrix.
        for name, ids in (("reference", ref), ("prediction", pred)):
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(f"{name} has class ids outside 0..{self.num_classes - 1}: "
                                 f"{np.unique(ids[(ids < 0) | (ids >= self.num_classes)])[:5].tolist()}")
        self.confusion += np.bincount(ref * self.num_classes + pred, minlength=self.num_classes ** 2).reshape(
            self.num_classes, self.num_classes)
        self._boundary += boundary_counts(reference, prediction, self.boundary_tolerance, valid)

    def per_class_iou(self) -> np.ndarray:
        """IoU per class; NaN for classes absent from both reference and prediction."""
        intersection = np.diag(self.confusion).astype(np.float64)
        union = self.confusion.sum(0) + self.confusion.sum(1) - intersection
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, intersection / union, np.nan)

    def miou(self) -> float:
        iou = self.per_class_iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_agreement(self) -> float:
        total = self.confusion.sum()
        return float(np.trace(self.confusion) / total) if total else float("nan")

    def boundary_f1(self) -> float:
        matched_pred, pred_total, matched_ref, ref_total = self._boundary
        if pred_total == 0 and ref_total == 0:
            return 1.0
        precision = matched_pred / pred_total if pred_total else 0.0
        recall = matched_ref / ref_total if ref_total else 0.0
        return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def boundaries(label_map: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Pixels whose right or lower neighbour has another label (both sides of each edge).

    With ``valid``, only edges between two valid pixels count: the border of an ignored region is
    not an object boundary.
    """
    edge = np.zeros(label_map.shape, dtype=bool)
    horizontal = label_map[:, 1:] != label_map[:, :-1]
    vertical = label_map[1:, :] != label_map[:-1, :]
    if valid is not None:
        horizontal &= valid[:, 1:] & valid[:, :-1]
        vertical &= valid[1:, :] & valid[:-1, :]
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    return edge


def dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Square dilation by ``radius`` pixels (numpy only; the runtime side has no scipy)."""
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:, :] |= out[:-1, :]
        grown[:-1, :] |= out[1:, :]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        grown[1:, 1:] |= out[:-1, :-1]
        grown[:-1, :-1] |= out[1:, 1:]
        grown[1:, :-1] |= out[:-1, 1:]
        grown[:-1, 1:] |= out[1:, :-1]
        out = grown
    return out


def boundary_counts(reference: np.ndarray, prediction: np.ndarray, tolerance: int,
                    valid: np.ndarray | None = None) -> np.ndarray:
    """[pred boundary pixels near a ref boundary, pred boundary pixels, and the same the other way].

    ``valid`` (where the reference is not ignored) restricts both maps' boundaries, as the
    confusion matrix is restricted: without it, every edge of an ignored region in a ground-truth
    map would count as a boundary the prediction missed.
    """
    ref_edge, pred_edge = boundaries(reference, valid), boundaries(prediction, valid)
    near_ref, near_pred = dilate(ref_edge, tolerance), dilate(pred_edge, tolerance)
    return np.array([(pred_edge & near_ref).sum(), pred_edge.sum(), (ref_edge & near_pred).sum(), ref_edge.sum()])


@dataclass
class ClassificationScores:
    """Streaming top-1 agreement and KL divergence of score distributions."""

    matches: int = 0
    total: int = 0
    kl_sum: float = 0.0
    kl_count: int = 0  # rows KL was summed over (update_labels adds to ``total`` but has no KL)

    def update(self, reference_probs: np.ndarray, probs: np.ndarray) -> None:
        """Both (N, C) probability arrays (or one (C,) row each); reference first (KL(reference || candidate))."""
        reference_probs, probs = np.atleast_2d(reference_probs), np.atleast_2d(probs)
        if reference_probs.shape != probs.shape:
            raise ValueError(f"probability arrays differ in shape: {reference_probs.shape} vs {probs.shape}")
        self.matches += int((reference_probs.argmax(-1) == probs.argmax(-1)).sum())
        self.total += len(probs)
        self.kl_sum += float(kl_divergence(reference_probs, probs).sum())
        self.kl_count += len(probs)

    def update_labels(self, labels: np.ndarray, probs: np.ndarray) -> None:
        """Accuracy against ground-truth class ids: (N,) ids and (N, C) probabilities (or one id, one row)."""
        labels, probs = np.atleast_1d(np.asarray(labels)), np.atleast_2d(probs)
        if len(labels) != len(probs):
            raise ValueError(f"{len(labels)} labels for {len(probs)} probability rows")
        self.matches += int((labels == probs.argmax(-1)).sum())
        self.total += len(probs)

    def agreement(self) -> float:
        return self.matches / self.total if self.total else float("nan")

    def mean_kl(self) -> float:
        return self.kl_sum / self.kl_count if self.kl_count else float("nan")


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """KL(p || q) per row, in nats."""
    p = np.clip(p.astype(np.float64), eps, 1.0)
    q = np.clip(q.astype(np.float64), eps, 1.0)
    return (p * (np.log(p) - np.log(q))).sum(-1)
