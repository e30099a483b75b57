"""Fit a variant into an accuracy budget by keeping its most sensitive nodes in float.

1. Build the variant with every candidate node quantized; if its drift is within budget, done.
2. Sensitivity: quantize one candidate alone (all others float) and measure the KL divergence of its
   class distributions from fp32's on a few images -- a continuous figure that ranks nodes finely.
   Models with more than ``max_probes`` candidates are probed in that many groups of neighbouring
   nodes (in graph order, so roughly layer by layer) and decided group by group.
3. Keep the top-k most sensitive nodes (groups) in float, k found by binary search on the full
   evaluation set (up to ``max_float_fraction`` of the candidates; beyond that the variant keeps too
   little of its point and is rejected).
4. With ``costs`` (each node's measured fp32 time), search a second order too -- sensitivity per
   millisecond, so cheap sensitive nodes go float before expensive ones -- and keep whichever passing
   set costs less time: the most sensitive nodes are often the widest convolutions at high resolution,
   the ones int8 speeds up most.

Nodes the caller names in ``always_float`` stay float in every build and are not searched. Nodes that
match one of ``Budget.together``'s patterns are searched as one unit (see ``group_candidates``).

Cost: at most 1 + ``max_probes`` + (1 + log2(``max_probes``)) x (number of orders) builds, each measured
by one onnxruntime session, plus one profiled fp32 run for the costs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from edgeforge.contract import check_budget
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE
from edgeforge.quantize.drift import Drift, DriftMeter


class Quantizer(Protocol):
    candidates: list[str]

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path: ...

    # Optional: ``write_probe(out_path, quantized)``, a cheaper build with only ``quantized`` quantized, for
    # the sensitivity ranking (see rank_sensitivity); without it, ``write`` with everything else kept float.


@dataclass(frozen=True)
class Budget:
    # Percentage points of mIoU (segmentation) or top-1 agreement (classification). None: no budget, for
    # weights without accuracy to keep (random): each variant is built once with the float choices given
    # (``always_float``) and its drift is not measured.
    max_drift: float | None
    sensitivity_images: int = 2
    max_float_fraction: float = 0.5
    max_probes: int = 48
    together: tuple[str, ...] = ()  # regexes on node names: the nodes each matches are kept float as one unit
    # The budget is checked on an upper bound at this confidence (edgeforge.quantize.confidence); 0 checks
    # the estimate on the held-out images alone.
    confidence: float = DEFAULT_CONFIDENCE

    def __post_init__(self):
        if self.max_drift is not None:
            check_budget(self.max_drift)
        if isinstance(self.confidence, bool) or not isinstance(self.confidence, (int, float)) \
                or not 0 <= self.confidence < 1:
            raise EdgeforgeError(f"the confidence must be from 0 (the estimate alone) to below 1, "
                                 f"not {self.confidence!r}")
        if not 0 <= self.max_float_fraction <= 1:
            raise EdgeforgeError(f"the float fraction must be from 0 to 1, not {self.max_float_fraction}")
        if self.sensitivity_images < 1 or self.max_probes < 1:
            raise EdgeforgeError("sensitivity images and probes must be at least 1")


@dataclass
class Outcome:
    path: Path | None  # the accepted file; None when rejected
    drift: Drift  # of the accepted file, or of the best attempt when rejected
    kept_float: list[str]
    initial_drift: Drift  # with every candidate quantized
    candidates: int
    sensitivity: list[tuple[str, float]] = field(default_factory=list)  # most sensitive first
    builds: int = 0
    kept_by: str | None = None  # which ordering found the float set (see fit_to_budget)

    @property
    def passed(self) -> bool:
        return self.path is not None


def fit_to_budget(quantizer: Quantizer, meter: DriftMeter, budget: Budget, workdir: Path, name: str,
                  log: Callable[[str], None] = print, always_float: frozenset[str] = frozenset(),
                  costs: Callable[[], Mapping[str, float]] | None = None) -> Outcome:
    base = sorted(always_float & set(quantizer.candidates))
    searchable = [node for node in quantizer.candidates if node not in always_float]
    trials = _Trials(quantizer, meter, workdir, name, base)
    if budget.max_drift is None:
        path, _ = trials.build((), measure=False)
        log(f"  {name}: no accuracy budget: {len(searchable)} candidate nodes quantized, {len(base)} held float "
            "as given; drift not measured")
        return Outcome(path, Drift.not_measured(), base, Drift.not_measured(), len(quantizer.candidates),
                       builds=trials.count)
    full_path, full_drift = trials.build(())
    held = f" ({len(base)} held float as asked)" if base else ""
    log(f"  {name}: drift {full_drift.describe()} with all {len(searchable)} candidate nodes "
        f"quantized{held} (budget {budget.max_drift})")
    if full_drift.passes(budget.max_drift):
        return Outcome(full_path, full_drift, base, full_drift, len(quantizer.candidates), builds=trials.count)
    if not searchable:  # everything the search could keep float already is
        trials.discard()
        return Outcome(None, full_drift, base, full_drift, len(quantizer.candidates), builds=trials.count)
    groups = group_candidates(searchable, budget.max_probes, budget.together)
    ranked = rank_sensitivity(quantizer, meter, workdir, name, groups, budget.sensitivity_images)
    ranking = [(node, score) for group, score in ranked for node in group]
    orders = [("most sensitive", ranked)]
    node_costs = costs() if costs is not None else None
    if node_costs:
        orders.append(("most sensitive per ms of fp32 time", order_by_sensitivity_per_cost(ranked, node_costs)))
    max_nodes = budget.max_float_fraction * len(searchable)
    found = [_smallest_passing_prefix(trials, order, budget.max_drift, max_nodes, name, label, log)
             for label, order in orders]
    passing = [f for f in found if f.drift.passes(budget.max_drift)]
    if not passing:
        trials.discard()
        return Outcome(None, found[0].drift, base + found[0].nodes, full_drift, len(quantizer.candidates), ranking,
                       trials.count)
    # Of the sets that meet the budget, the one whose float nodes cost the least fp32 time (or the first).
    best = min(passing, key=lambda f: float_cost(f.nodes, node_costs)) if node_costs else passing[0]
    for other in (f for f in passing if f is not best):
        log(f"  {name}: kept float: {best.label} ({float_cost(best.nodes, node_costs):.2f} ms of fp32 time, "
            f"other order {float_cost(other.nodes, node_costs):.2f} ms)")
    trials.discard(keep=best.path)
    return Outcome(best.path, best.drift, base + best.nodes, full_drift, len(quantizer.candidates), ranking,
                   trials.count, kept_by=best.label)


@dataclass
class _Prefix:
    label: str
    path: Path
    drift: Drift
    nodes: list[str]


def _smallest_passing_prefix(trials: "_Trials", order: list[tuple[list[str], float]], max_drift: float,
                             max_nodes: float, name: str, label: str, log: Callable[[str], None]) -> _Prefix:
    """Binary search for the shortest prefix of ``order`` (groups) whose nodes, kept float, meet the budget;
    when even the longest allowed prefix misses, that attempt (not passing)."""

    def nodes(count: int) -> list[str]:
        return [node for group, _ in order[:count] for node in group]

    limit = _group_limit(order, max_nodes)
    best_path, best_drift = trials.build(nodes(limit))
    log(f"  {name}: {label}: {len(nodes(limit))} nodes in float -> {best_drift.describe()}")
    if not best_drift.passes(max_drift):
        return _Prefix(label, best_path, best_drift, nodes(limit))
    low, high = 1, limit  # invariant: keeping nodes(high) passes
    while low < high:
        middle = (low + high) // 2
        path, drift = trials.build(nodes(middle))
        log(f"  {name}: {label}: {len(nodes(middle))} nodes in float -> {drift.describe()}")
        if drift.passes(max_drift):
            high, best_path, best_drift = middle, path, drift
        else:
            low = middle + 1
    return _Prefix(label, best_path, best_drift, nodes(high))


def order_by_sensitivity_per_cost(ranked: list[tuple[list[str], float]], costs: Mapping[str, float]
                                  ) -> list[tuple[list[str], float]]:
    """Groups by KL per millisecond of fp32 time: keeping a cheap sensitive node float costs little speed.
    Nodes without a measured time count as the median one (see ``float_cost``)."""
    floor = max(_median(costs) * 1e-3, 1e-9)
    return sorted(ranked, key=lambda item: -item[1] / max(float_cost(item[0], costs), floor))


def float_cost(nodes: list[str], costs: Mapping[str, float] | None) -> float:
    """fp32 milliseconds spent in ``nodes`` (0 without measured costs; an unmeasured node counts as the median)."""
    if not costs:
        return 0.0
    typical = _median(costs)
    return float(sum(costs.get(node, typical) for node in nodes))


def _median(costs: Mapping[str, float]) -> float:
    known = sorted(costs.values())
    return known[len(known) // 2] if known else 1.0


def group_candidates(candidates: list[str], max_probes: int, together: tuple[str, ...] = ()) -> list[list[str]]:
    """The search's units: the nodes that match one pattern of ``together`` form one unit (placed where the
    first of them is), every other node is a unit of its own. With more than ``max_probes`` units,
    neighbouring units are merged into ``max_probes`` groups."""
    units: list[list[str]] = []
    by_pattern: dict[str, list[str]] = {}
    for node in candidates:
        pattern = next((p for p in together if re.search(p, node)), None)
        if pattern is None:
            units.append([node])
        elif pattern in by_pattern:
            by_pattern[pattern].append(node)
        else:
            by_pattern[pattern] = [node]
            units.append(by_pattern[pattern])
    count = min(len(units), max(1, max_probes))
    bounds = [round(i * len(units) / count) for i in range(count + 1)]
    return [[node for unit in units[bounds[i]:bounds[i + 1]] for node in unit] for i in range(count)]


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
    probe = workdir / f"{name}.probe{getattr(quantizer, 'suffix', '.onnx')}"
    scores = []
    unit = "node" if all(len(g) == 1 for g in groups) else "group"
    write_probe = getattr(quantizer, "write_probe", None)
    for group in tqdm(groups, desc=f"{name}: sensitivity per {unit}", unit=unit, leave=False):
        if write_probe is not None:
            write_probe(probe, frozenset(group))
        else:
            quantizer.write(probe, everything - set(group))
        scores.append((group, meter.logit_error(probe, images)))
    _remove_written(probe)
    return sorted(scores, key=lambda item: -item[1])


class _Trials:
    """Builds and measures candidate files; each keeps its own path so the accepted one survives."""

    def __init__(self, quantizer: Quantizer, meter: DriftMeter, workdir: Path, name: str, base: list[str]):
        self.quantizer, self.meter, self.workdir, self.name = quantizer, meter, workdir, name
        self.base = frozenset(base)  # kept float in every build
        self.count = 0
        self.paths: list[Path] = []

    def build(self, keep_float, measure: bool = True) -> tuple[Path, Drift | None]:
        # The file type the quantizer writes (``suffix``, default ONNX): the runtime picks its engine by it.
        path = self.workdir / f"{self.name}.try{self.count}{getattr(self.quantizer, 'suffix', '.onnx')}"
        self.count += 1
        self.quantizer.write(path, self.base | frozenset(keep_float))
        self.paths.append(path)
        return path, self.meter.measure(path) if measure else None

    def discard(self, keep: Path | None = None) -> None:
        for path in self.paths:
            if path != keep:
                _remove_written(path)


def _remove_written(path: Path) -> None:
    """A candidate file the search wrote, with its weights file if it has one (OpenVINO's .xml + .bin)."""
    for written in path.parent.glob(f"{path.stem}.*"):
        written.unlink(missing_ok=True)
