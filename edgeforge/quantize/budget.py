"""Fit a variant into an accuracy budget by keeping its most sensitive nodes in float.

1. Build the variant with every candidate node quantized; if its drift is within budget, done.
2. Sensitivity: quantize one candidate alone (all others float) and measure the KL divergence of its
   class distributions from fp32's on a few images -- a continuous figure that ranks nodes finely.
   Models with more than ``max_probes`` candidates are probed in that many groups of neighbouring
   nodes (in graph order, so roughly layer by layer) and decided group by group.
3. Keep the top-k most sensitive nodes (groups) in float, k found by binary search on the full
   evaluation set (up to ``max_float_fraction`` of the candidates; beyond that the variant keeps too
   little of its point and is rejected).

Nodes the caller names in ``always_float`` stay float in every build and are not searched.

Cost: at most ``max_probes`` + 2 + log2(``max_probes``) builds, each measured by one onnxruntime session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from edgeforge.quantize.drift import Drift, DriftMeter


class Quantizer(Protocol):
    candidates: list[str]

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path: ...


@dataclass(frozen=True)
class Budget:
    max_drift: float  # percentage points of mIoU (segmentation) or top-1 agreement (classification)
    sensitivity_images: int = 2
    max_float_fraction: float = 0.5
    max_probes: int = 48


@dataclass
class Outcome:
    path: Path | None  # the accepted file; None when rejected
    drift: Drift  # of the accepted file, or of the best attempt when rejected
    kept_float: list[str]
    initial_drift: Drift  # with every candidate quantized
    candidates: int
    sensitivity: list[tuple[str, float]] = field(default_factory=list)  # most sensitive first
    builds: int = 0

    @property
    def passed(self) -> bool:
        return self.path is not None


def fit_to_budget(quantizer: Quantizer, meter: DriftMeter, budget: Budget, workdir: Path, name: str,
                  log: Callable[[str], None] = print, always_float: frozenset[str] = frozenset()) -> Outcome:
    base = sorted(always_float & set(quantizer.candidates))
    searchable = [node for node in quantizer.candidates if node not in always_float]
    trials = _Trials(quantizer, meter, workdir, name, base)
    full_path, full_drift = trials.build(())
    held = f" ({len(base)} held float as asked)" if base else ""
    log(f"  {name}: drift {full_drift.points:.3f} points with all {len(searchable)} candidate nodes "
        f"quantized{held} (budget {budget.max_drift})")
    if full_drift.passes(budget.max_drift):
        return Outcome(full_path, full_drift, base, full_drift, len(quantizer.candidates), builds=trials.count)
    if not searchable:  # everything the search could keep float already is
        trials.discard()
        return Outcome(None, full_drift, base, full_drift, len(quantizer.candidates), builds=trials.count)
    groups = group_candidates(searchable, budget.max_probes)
    ranked = rank_sensitivity(quantizer, meter, workdir, name, groups, budget.sensitivity_images)
    ranking = [(node, score) for group, score in ranked for node in group]

    def nodes(count: int) -> list[str]:  # the nodes of the ``count`` most sensitive groups
        return [node for group, _ in ranked[:count] for node in group]

    limit = _group_limit(ranked, budget.max_float_fraction * len(searchable))
    best_path, best_drift = trials.build(nodes(limit))
    log(f"  {name}: keeping the {len(nodes(limit))} most sensitive nodes in float gives {best_drift.points:.3f} points")
    if not best_drift.passes(budget.max_drift):
        trials.discard()
        return Outcome(None, best_drift, base + nodes(limit), full_drift, len(quantizer.candidates), ranking,
                       trials.count)
    low, high = 1, limit  # invariant: keeping nodes(high) passes
    while low < high:
        middle = (low + high) // 2
        path, drift = trials.build(nodes(middle))
        log(f"  {name}: {len(nodes(middle))} nodes in float -> {drift.points:.3f} points")
        if drift.passes(budget.max_drift):
            high, best_path, best_drift = middle, path, drift
        else:
            low = middle + 1
    trials.discard(keep=best_path)
    return Outcome(best_path, best_drift, base + nodes(high), full_drift, len(quantizer.candidates), ranking,
                   trials.count)


def group_candidates(candidates: list[str], max_probes: int) -> list[list[str]]:
    """One node per group, or ``max_probes`` groups of neighbouring nodes when there are more."""
    count = min(len(candidates), max(1, max_probes))
    bounds = [round(i * len(candidates) / count) for i in range(count + 1)]
    return [candidates[bounds[i]:bounds[i + 1]] for i in range(count)]


def _group_limit(ranked: list[tuple[list[str], float]], max_nodes: float) -> int:
    """How many of the top groups fit within ``max_nodes`` nodes (at least one group)."""
    total, count = 0, 0
    for group, _ in ranked:
        total += len(group)
        if total > max_nodes:
            break
        count += 1
    return max(1, count)


def rank_sensitivity(quantizer: Quantizer, meter: DriftMeter, workdir: Path, name: str,
                     groups: list[list[str]], images: int) -> list[tuple[list[str], float]]:
    """(group, KL divergence from fp32 when only that group is quantized), most sensitive first."""
    everything = frozenset(quantizer.candidates)
    probe = workdir / f"{name}.probe.onnx"
    scores = []
    unit = "node" if all(len(g) == 1 for g in groups) else "group"
    for group in tqdm(groups, desc=f"{name}: sensitivity per {unit}", unit=unit, leave=False):
        quantizer.write(probe, everything - set(group))
        scores.append((group, meter.logit_error(probe, images)))
    probe.unlink(missing_ok=True)
    return sorted(scores, key=lambda item: -item[1])


class _Trials:
    """Builds and measures candidate files; each keeps its own path so the accepted one survives."""

    def __init__(self, quantizer: Quantizer, meter: DriftMeter, workdir: Path, name: str, base: list[str]):
        self.quantizer, self.meter, self.workdir, self.name = quantizer, meter, workdir, name
        self.base = frozenset(base)  # kept float in every build
        self.count = 0
        self.paths: list[Path] = []

    def build(self, keep_float) -> tuple[Path, Drift]:
        path = self.workdir / f"{self.name}.try{self.count}.onnx"
        self.count += 1
        self.quantizer.write(path, self.base | frozenset(keep_float))
        self.paths.append(path)
        return path, self.meter.measure(path)

    def discard(self, keep: Path | None = None) -> None:
        for path in self.paths:
            if path != keep:
                path.unlink(missing_ok=True)
