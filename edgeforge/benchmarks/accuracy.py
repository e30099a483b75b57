"""Drift of every variant from fp32 (and accuracy against ground truth) over a dataset, streamed through one
``edgeforge.tally.DriftTally``: one image at a time, so memory stays bounded by one image's worth of maps.

Drift, in points (what the budget is expressed in):
  segmentation    100 x (1 - mIoU of the variant's label maps taking fp32's maps as reference)
  classification  100 x (1 - top-1 agreement with fp32)
"""

from __future__ import annotations

from collections.abc import Iterable

from edgeforge.tally import Forward, new_tally


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
    tally = new_tally(reference_model, list(candidates), use_labels)
    for index, sample in enumerate(_progress(dataset, total, progress, description)):
        tally.add(index, sample, reference_model, candidates)
    return tally.summary()


def _progress(items: Iterable, total: int | None, enabled: bool, description: str) -> Iterable:
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, total=total, desc=description, unit="img", leave=False)
