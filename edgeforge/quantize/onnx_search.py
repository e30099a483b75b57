"""An ONNX precision within the accuracy budget: the recipe's quantizer (``registry``) driven by the budget
search (``budget.fit_to_budget``) on the graph every ONNX quantizer starts from (``onnx_int8.prepare``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from edgeforge.contract import VARIANTS
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.budget import Budget, Outcome, fit_to_budget


class OnnxContext:
    """What the ONNX precisions of one run share, made once: the prepared graph, node names and costs."""

    def __init__(self, job):
        self.job = job
        self._prepared: Path | None = None
        self._node_names: set[str] | None = None
        self._node_costs: dict[str, float] | None = None
        if job.node_costs is not None:
            self._node_costs = self._checked_costs(job.node_costs)
        # Per precision: only the ONNX precisions' names are this graph's (OpenVINO's and LiteRT's name theirs).
        asked = ([nodes for precision, nodes in job.keep_float.items()
                  if precision in VARIANTS and VARIANTS[precision].format == "onnx"]
                 if isinstance(job.keep_float, Mapping) else [job.keep_float])
        names = frozenset().union(*map(frozenset, asked))
        if names:
            self.require_nodes(names, "--keep-float")

    @property
    def prepared(self) -> Path:
        if self._prepared is None:
            from edgeforge.quantize.onnx_int8 import prepare

            self._prepared = prepare(self.job.fp32_path, self.job.work / "prepared.onnx")
        return self._prepared

    def node_costs(self) -> dict[str, float]:
        """Each node's fp32 time (ms): the caller's, or measured on one calibration image once per run when a
        search needs it."""
        if self._node_costs is None:
            from edgeforge.quantize.costs import node_times_ms

            feeds = {self.job.input_name: self.job.calibration_pixel_values[:1]}
            self._node_costs = node_times_ms(self.prepared, feeds, threads=self.job.threads)
        return self._node_costs

    def require_nodes(self, names, what: str) -> None:
        """Refuse node names the graph lacks (``what`` says which option named them)."""
        if self._node_names is None:
            from edgeforge.quantize.onnx_graph import load_model

            self._node_names = {node.name for node in load_model(self.prepared).graph.node}
        unknown = sorted(set(names) - self._node_names)
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise EdgeforgeError(f"{what}: no node named {', '.join(unknown[:3])}{more} in the graph")

    def _checked_costs(self, node_costs: Mapping[str, float]) -> dict[str, float]:
        """The caller's node costs, checked: numbers of 0 ms or more, for nodes the graph has."""
        costs = {}
        for name, value in node_costs.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise EdgeforgeError(f"node costs: {name!r} has {value!r}; costs are milliseconds, 0 or more")
            costs[str(name)] = float(value)
        self.require_nodes(costs, "node costs")
        return costs


def make_onnx_variant(job, name: str, recipe) -> tuple[Path | None, dict]:
    """Build precision ``name`` with ``recipe`` within ``job.budget``: (the file, or None when no float set
    fits the budget; its manifest details)."""
    from edgeforge.quantize.registry import quantizer_for

    context = job.shared(OnnxContext)
    calibration = (job.calibration_pixel_values, job.input_name, job.work)
    held = job.held_float(name)
    outcome = fit_to_budget(quantizer_for(recipe, context.prepared, calibration), job.meter, job.budget, job.work,
                            name, job.log, held, costs=context.node_costs)
    details = outcome_details(recipe, outcome, job.budget, job.fp32_size)
    details["search"]["held_float_as_asked"] = sorted(held)
    return outcome.path, details


def outcome_details(recipe, outcome: Outcome, budget: Budget, fp32_size: int) -> dict:
    details = {
        "recipe": recipe.to_json(),
        "drift": outcome.drift.to_json(budget.max_drift),
        "nodes_kept_float": outcome.kept_float,
        "search": {
            "candidate_nodes": outcome.candidates,
            "drift_all_quantized": outcome.initial_drift.to_json(budget.max_drift),
            "builds": outcome.builds,
            "kept_float_by": outcome.kept_by,
            "most_sensitive": [{"node": n, "kl": round(s, 8)} for n, s in outcome.sensitivity[:10]],
        },
    }
    if outcome.path is not None:
        from edgeforge.runtime.artifact import model_size

        size = model_size(outcome.path)
        details.update(size_bytes=size, size_vs_fp32=round(size / fp32_size, 4))
    return details
