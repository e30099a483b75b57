"""Timing: warm-up, interleaved (round-robin) timed runs, percentiles; session creation; pipeline stages.

Interleaving: run ``k`` of every runner happens in the same stretch of wall time, and the order is
rotated each round so no runner always goes first (right after another one's threads wake up).
Machine noise (other processes, frequency changes, a shared host) then lands on every runner alike,
which is what makes the *ratios* between variants trustworthy even when absolute times drift.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timed:
    """One thing to time: ``call`` is timed; ``prepare`` (untimed) runs before each call, e.g. to set
    PyTorch's process-wide thread count before a PyTorch run."""

    name: str
    call: Callable[[], object]
    prepare: Callable[[], None] | None = None
    samples: list[float] = field(default_factory=list)


def summarize(seconds: Sequence[float]) -> dict:
    """Percentiles of a list of durations, in milliseconds (plus the raw samples, for plots/comparisons)."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {"n": 0}
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "n": int(ms.size),
        "mean_ms": float(ms.mean()),
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "std_ms": float(ms.std()),
        "samples_ms": [round(float(v), 4) for v in ms],
    }


def round_robin(items: Sequence[Timed], runs: int, warmup: int, progress: Callable[[Iterable], Iterable] = iter
                ) -> dict[str, list[float]]:
    """Warm every item up, then time ``runs`` rounds, one call of each item per round (rotated order)."""
    for item in items:
        for _ in range(warmup):
            _call(item)
    for round_index in progress(range(runs)):
        shift = round_index % len(items)
        for item in [*items[shift:], *items[:shift]]:
            item.samples.append(_call(item))
    return {item.name: item.samples for item in items}


def _call(item: Timed) -> float:
    if item.prepare is not None:
        item.prepare()
    start = time.perf_counter()
    item.call()
    return time.perf_counter() - start


def time_creation(create: Callable[[], object], repeats: int = 3) -> dict:
    """Seconds to create an object (e.g. an inference session), ``repeats`` times: the first creation
    (closest to a cold start in this process) and the median (file cache warm)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        created = create()
        seconds.append(time.perf_counter() - start)
        del created
    return {"first_ms": seconds[0] * 1e3, "median_ms": float(np.median(seconds)) * 1e3, "n": repeats}


def time_stages(model, image, runs: int) -> dict:
    """Pre- and post-processing of one image with the runtime's own ``Model.preprocess`` / ``.postprocess``,
    and ``predict()`` end to end beside the model's own run (``.forward``), in interleaved rounds."""
    pixel_values, pil_images = model.preprocess([image])
    logits = model.forward(pixel_values)
    sizes = [im.size for im in pil_images]
    items = [Timed("preprocess", lambda: model.preprocess([image])),
             Timed("forward", lambda: model.forward(pixel_values)),
             Timed("postprocess", lambda: model.postprocess(logits, sizes)),
             Timed("predict", lambda: model.predict(image))]
    samples = round_robin(items, runs, warmup=2)
    return {"image_size": list(image.size), **{name: summarize(seconds) for name, seconds in samples.items()}}
