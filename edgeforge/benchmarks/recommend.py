"""Which variant to ship per target, from the measured figures, under the drift budget.

The rules are deliberately simple so a release engineer can check them against the table:
  cpu-server  fastest p50 at the full thread count, among every variant the runtime ran (any engine:
              ONNX Runtime, OpenVINO).
  mobile      fastest p50 at 1 thread (phones give a model one or two big cores), among the formats phone
              runtimes load (ONNX / ORT / LiteRT) and not found x86-only by the ARM64 check (phones are ARM: a
              variant the check recorded as x86-only or differing never qualifies; an unchecked one does);
              within 5 % of the fastest, the smaller zstd download wins.
  browser     smallest gzip download among ``onnx/`` files (what transformers.js fetches); within 5 %
              of the smallest, the faster at 1 thread wins (onnxruntime-web's WASM backend is
              usually single-threaded).
A variant qualifies when its drift is within budget: measured drift, else the manifest's figure;
fp32 is the reference (drift 0). A variant without any drift figure never qualifies.

``head_to_head`` then sets the cpu-server choice against the baselines (the pipelines a user would otherwise
run): the fastest of them whatever its accuracy, and the fastest whose drift is within the same budget --
measured here, or, for random weights, on the trained mini of the same family (``PROXY_DRIFT``), the way the
full-size variants inherit their mini's verdict.
"""

from __future__ import annotations

from edgeforge.benchmarks.baseline_budget import BUDGET_CHECK
from edgeforge.benchmarks.variants import aarch64_status

TIE = 1.05
MOBILE_FORMATS = ("onnx", "ort", "tflite")  # what ONNX Runtime Mobile and LiteRT load
RULES = {  # {threads}: the thread count the rule was applied at (1 unless only one count was measured)
    "cpu-server": "fastest p50 at {threads} thread(s) among all measured variants (any engine) within the drift "
                  "budget",
    "mobile": "fastest p50 at {threads} thread(s) among ONNX/ORT/LiteRT variants within the drift budget and not "
              "x86-only by the ARM64 check; within 5% the smaller zstd download wins",
    "browser": "smallest gzip download among onnx/ files (transformers.js) within the drift budget; within 5% "
               "the faster at {threads} thread(s) wins",
}


def drift_points(name: str, entry: dict) -> float | None:
    if name == "fp32":
        return 0.0
    measured = (entry.get("drift") or {}).get("drift_points")
    if measured is not None:
        return measured
    return (entry.get("manifest_drift") or {}).get("points")


#: Said wherever a recommendation would otherwise cite a drift: weights without accuracy have none to lose.
UNMEASURED = "drift not measured (random weights)"


#: A baseline's drift measured on a stand-in (the trained mini of the same family), set by whoever benched it:
#: {"points": the figure held to the budget, "on": what it was measured on, "budget_points": that budget}.
PROXY_DRIFT = "drift_on_trained_mini"


def judge(entry: dict, budget: float | None, threads: list[int]) -> None:
    """Mark each measured variant within or over ``budget`` (noting where the build's figure disagrees) and
    add the recommendations to a model's report ``entry``. ``budget`` None: the build checked no budget
    (random weights), so nothing is judged by drift."""
    for name, record in entry["variants"].items():
        verdict = budget_verdict(name, record, budget) if budget is not None else None
        if verdict is not None:
            record["budget_verdict"] = verdict
            if "disagreement" in verdict:
                entry["notes"].append(f"{name}: {'within' if verdict['within_budget'] else 'over'} the "
                                      f"{budget:g}-point budget here; {verdict['disagreement']}")
    entry["recommendations"] = recommend(entry["variants"], budget, threads)
    entry["head_to_head"] = head_to_head(entry, budget, threads[0])


def head_to_head(entry: dict, budget: float | None, threads: int) -> dict | None:
    """The cpu-server variant against the fastest baseline and the fastest baseline within ``budget`` (each judged
    by ``baseline_drift``), all at ``threads``; None without a variant or a timed baseline. ``budget`` None: the
    proxy's budget, where a proxy drift gives one (``budget_points``); a baseline with no figure is not judged."""
    chosen = (entry.get("recommendations") or {}).get("cpu-server", {}).get("variant")
    timed = {name: p50(record, threads) for name, record in entry.get("baselines", {}).items()}
    timed = {name: ms for name, ms in timed.items() if ms is not None}
    if chosen is None or not timed:
        return None
    ours = p50(entry["variants"][chosen], threads)
    result = {"threads": threads, "variant": chosen, "p50_ms": ours}

    def against(name: str) -> dict:
        return {"baseline": name, "p50_ms": timed[name], "ratio": timed[name] / ours}

    result["fastest"] = against(min(timed, key=timed.get))
    judged = {name: baseline_drift(entry["baselines"][name], budget) for name in timed}
    within = [name for name, (points, limit, _) in judged.items() if points is not None and points <= limit + 1e-9]
    best = min(within, key=timed.get) if within else None
    result["fastest_within_budget"] = (None if best is None else
                                       {**against(best), "drift_points": judged[best][0], "drift_on": judged[best][2]})
    result["not_judged"] = sorted(name for name, (points, _, _) in judged.items() if points is None)
    return result


def baseline_drift(record: dict, budget: float | None) -> tuple[float | None, float | None, str | None]:
    """(the drift figure held to the budget, that budget, what it was measured on) of one baseline: the bound on
    the build's held-out images where ``baseline_budget`` scored it, else this run's estimate, else ``PROXY_DRIFT``."""
    checked = record.get(BUDGET_CHECK) or {}
    if checked.get("drift_points") is not None and budget is not None:
        bound = checked.get("drift_bound_points")
        on = f"the build's {checked['num_images']} held-out images"
        return (bound, budget, on + f" ({checked['confidence']:.0%} bound)") if bound is not None \
            else (checked["drift_points"], budget, on)
    measured = (record.get("drift") or {}).get("drift_points")
    if measured is not None and budget is not None:
        return measured, budget, "this run's images (an estimate)"
    proxy = record.get(PROXY_DRIFT) or {}
    limit = proxy.get("budget_points", budget)
    if proxy.get("points") is not None and limit is not None:
        return proxy["points"], limit, proxy.get("on")
    return None, None, None  # unknown: neither within the budget nor over it


def budget_verdict(name: str, entry: dict, budget: float) -> dict | None:
    """Whether the variant is within the drift budget by this run's measurement (None when this run measured no
    drift for it), and -- where the build's own figure (recorded in the manifest) says otherwise -- why the two
    can disagree: the build measures drift on a few held-out images, so its figure is an estimate, not a bound."""
    drift = entry.get("drift") or {}
    measured = drift.get("drift_points")
    if name == "fp32" or drift.get("reference") or measured is None:
        return None
    within = lambda points: points <= budget + 1e-9  # noqa: E731 -- the quantizer's own test (Drift.passes)
    verdict = {"within_budget": within(measured), "budget_points": budget, "drift_points": measured}
    recorded = entry.get("manifest_drift") or {}
    built_record = recorded.get("recorded") or {}
    built, images, bound = recorded.get("points"), built_record.get("num_images"), built_record.get("drift_bound_points")
    checked = bound if bound is not None else built  # what the build held to the budget
    if checked is not None and within(checked) != verdict["within_budget"]:
        on = f" on its {images} held-out image(s)" if images else ""
        verdict["build_drift_points"] = built
        if bound is not None:
            verdict["disagreement"] = (
                f"the build measured {built:.2f} points{on}, {built_record['confidence']:.0%} upper bound "
                f"{bound:.2f}, and this run {measured:.2f}: a bound is exceeded that often by chance (or this "
                "run's images are not of the kind the build checked on)")
        else:
            verdict["disagreement"] = (
                f"the build measured {built:.2f} points{on} and this run {measured:.2f}: each is an estimate on a "
                "sample of images, and the build checked no bound (--confidence 0), so a variant near the budget "
                "can land on either side of it on other images")
    return verdict


def verdict_words(verdict: dict | None) -> str:
    if verdict is None:
        return ""
    words = "within budget" if verdict["within_budget"] else "OVER BUDGET"
    if "build_drift_points" in verdict:
        words += f" (build: {verdict['build_drift_points']:.2f})"
    return words


def p50(entry: dict, threads: int) -> float | None:
    return ((entry.get("latency") or {}).get(str(threads)) or {}).get("p50_ms")


def recommend(variants: dict, budget: float | None, threads: list[int]) -> dict:
    """target -> {"variant", "rule", "why"} (variant None, with the reason, when nothing qualifies).

    ``budget`` None (random weights): by speed and size alone, every variant eligible, and each says so."""
    full, single = threads[0], (1 if 1 in threads else threads[0])
    eligible = {name: e for name, e in variants.items()
                if p50(e, full) is not None
                and (budget is None or ((d := drift_points(name, e)) is not None and d <= budget))}
    server = _fastest(eligible, full)
    phone = {n: e for n, e in eligible.items()
             if e.get("format") in MOBILE_FORMATS and aarch64_status(e) in (None, "portable")}
    mobile = _fastest(phone, single, tie_break=lambda e: e["size"]["zstd_bytes"])
    browser_pool = {n: e for n, e in eligible.items()
                    if e.get("format") == "onnx" and str(e.get("file", "")).startswith("onnx/")}
    browser = _smallest(browser_pool, single)
    chosen = {"cpu-server": (server, full), "mobile": (mobile, single), "browser": (browser, single)}
    result = {}
    for target, (name, at_threads) in chosen.items():
        rule = RULES[target].format(threads=at_threads)
        if budget is None:
            rule = rule.replace(" within the drift budget", "") + f"; {UNMEASURED}"
        if name is None:
            within = f" within the {budget:g}-point drift budget" if budget is not None else ""
            result[target] = {"variant": None, "rule": rule, "why": f"no variant with measured speed{within}"}
            continue
        entry = variants[name]
        result[target] = {
            "variant": name, "rule": rule,
            "why": f"p50 {p50(entry, at_threads):.2f} ms at {at_threads} thread(s), "
                   f"{entry['size']['gzip_bytes'] / 2 ** 20:.2f} MB gzip, {_accuracy_words(name, entry, budget)}",
        }
    return result


def _accuracy_words(name: str, entry: dict, budget: float | None) -> str:
    if budget is not None:
        return f"drift {drift_points(name, entry):.2f} points"
    kept = entry.get("nodes_kept_float", 0)
    return UNMEASURED + (f"; {kept} node(s) kept float as given at build" if kept else "")


def _fastest(pool: dict, threads: int, tie_break=None) -> str | None:
    timed = {n: p50(e, threads) for n, e in pool.items() if p50(e, threads) is not None}
    if not timed:
        return None
    best = min(timed.values())
    close = [n for n, t in timed.items() if t <= best * TIE]
    if tie_break is None or len(close) == 1:
        return min(close, key=lambda n: timed[n])
    return min(close, key=lambda n: (tie_break(pool[n]), timed[n]))


def _smallest(pool: dict, threads: int) -> str | None:
    if not pool:
        return None
    sizes = {n: e["size"]["gzip_bytes"] for n, e in pool.items()}
    best = min(sizes.values())
    close = [n for n, s in sizes.items() if s <= best * TIE]
    return min(close, key=lambda n: (p50(pool[n], threads) or float("inf"), sizes[n]))
