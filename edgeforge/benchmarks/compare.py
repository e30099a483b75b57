"""Regression gate: compare a new report with an old one, variant by variant, for build pipelines.

A regression is a variant that
  - got slower: new p50 / old p50 above ``slower_ratio`` (default 1.15) at a thread count both measured;
  - drifted further from fp32: new drift more than ``drift_increase`` points (default 0.5) above the old;
  - exceeds ``max_drift`` points of drift, when given (an absolute ceiling);
  - disappeared: in the old report, not in the new one.
Baselines are not gated: they are what the user would run otherwise, not what is shipped.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SLOWER_RATIO = 1.15
DEFAULT_DRIFT_INCREASE = 0.5


@dataclass(frozen=True)
class Regression:
    model: str
    variant: str
    kind: str  # "slower", "drift", "missing"
    message: str

    def line(self) -> str:
        return f"REGRESSION {self.model}/{self.variant}: {self.message}"


def compare_reports(old: dict, new: dict, slower_ratio: float = DEFAULT_SLOWER_RATIO,
                    drift_increase: float = DEFAULT_DRIFT_INCREASE, max_drift: float | None = None) -> list[Regression]:
    regressions = []
    new_models = {m["name"]: m for m in new.get("models", [])}
    for old_model in old.get("models", []):
        name = old_model["name"]
        new_model = new_models.get(name)
        if new_model is None:
            regressions.append(Regression(name, "*", "missing", "model missing from the new report"))
            continue
        for variant, old_entry in old_model.get("variants", {}).items():
            new_entry = new_model.get("variants", {}).get(variant)
            if new_entry is None:
                regressions.append(Regression(name, variant, "missing", "variant missing from the new report"))
                continue
            regressions += _slower(name, variant, old_entry, new_entry, slower_ratio)
            regressions += _drifted(name, variant, old_entry, new_entry, drift_increase, max_drift)
    for name, new_model in new_models.items():  # a new model has no history, but a ceiling still applies
        if max_drift is not None and name not in {m["name"] for m in old.get("models", [])}:
            for variant, entry in new_model.get("variants", {}).items():
                regressions += _drifted(name, variant, {}, entry, drift_increase, max_drift)
    return regressions


def _slower(model: str, variant: str, old: dict, new: dict, limit: float) -> list[Regression]:
    found = []
    for threads, old_latency in (old.get("latency") or {}).items():
        new_latency = (new.get("latency") or {}).get(threads)
        if not new_latency or not old_latency.get("p50_ms"):
            continue
        ratio = new_latency["p50_ms"] / old_latency["p50_ms"]
        if ratio > limit:
            found.append(Regression(model, variant, "slower",
                                    f"p50 at {threads} thread(s) {new_latency['p50_ms']:.2f} ms vs "
                                    f"{old_latency['p50_ms']:.2f} ms before (x{ratio:.2f} > x{limit:.2f})"))
    return found


def _drifted(model: str, variant: str, old: dict, new: dict, increase: float, ceiling: float | None) -> list[Regression]:
    new_drift = (new.get("drift") or {}).get("drift_points")
    if new_drift is None:
        return []
    old_drift = (old.get("drift") or {}).get("drift_points")
    if old_drift is not None and new_drift - old_drift > increase:
        return [Regression(model, variant, "drift", f"drift {new_drift:.2f} points vs {old_drift:.2f} before "
                                                    f"(+{new_drift - old_drift:.2f} > {increase:g})")]
    if ceiling is not None and new_drift > ceiling:
        return [Regression(model, variant, "drift", f"drift {new_drift:.2f} points > ceiling {ceiling:g}")]
    return []
