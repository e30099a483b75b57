"""Which variants of an artifact the benchmark measures, which it lists but cannot run here (and why), and
the drift the build recorded for each."""

from __future__ import annotations

from pathlib import Path

from edgeforge.benchmarks.options import BenchOptions
from edgeforge.benchmarks.runners import VARIANT, load_model
from edgeforge.contract import (
    DEFAULT_MAX_DRIFT,
    REFERENCE_VARIANT,
    VARIANTS,
    format_of_file,
)
from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.engines import runnable as runnable_here
from edgeforge.runtime.engines import why_not_runnable


def check_artifact_dir(root: Path) -> None:
    if not root.is_dir():
        raise EdgeforgeError(f"{root} is not a directory; give an artifact directory written by `edgeforge build`")
    if not (root / "config.json").is_file():
        raise EdgeforgeError(f"{root} is not an artifact directory (no config.json)")


def load_reference(root: Path, threads: int):
    from edgeforge.runtime.manifest import read_manifest

    verify = read_manifest(root) is not None
    try:
        return load_model(root, threads, "CPUExecutionProvider", REFERENCE_VARIANT, verify=verify)
    except EdgeforgeError as exc:
        if "no variant 'fp32'" in str(exc):
            raise EdgeforgeError(f"{root} has no fp32 variant; bench measures every variant against it") from None
        raise


def list_variants(reference) -> tuple[dict, dict]:
    """(runnable variant -> {kind, file, format, precision[, manifest_drift]}, skipped variant -> the same + reason)."""
    manifest_variants = ((reference.artifact.manifest or {}).get("variants")) or {}
    runnable, skipped = {}, {}
    for name, rel in reference.artifact.variants().items():
        listed = manifest_variants.get(name) or {}
        fmt = listed.get("format") or format_of_file(rel) or Path(rel).suffix.lstrip(".")
        declared = VARIANTS.get(name)
        info = {"kind": VARIANT, "variant": name, "file": rel, "format": fmt,
                "precision": listed.get("precision") or (declared.numeric if declared else "unknown")}
        drift = manifest_drift(listed)
        if drift is not None:
            info["manifest_drift"] = drift
        if isinstance(listed.get("nodes_kept_float"), list) and listed["nodes_kept_float"]:
            info["nodes_kept_float"] = len(listed["nodes_kept_float"])  # how many; the manifest names them
        for key in ("platforms", "conversion"):  # the ARM64 check's verdicts; how an .ort was converted
            if isinstance(listed.get(key), dict):
                info[key] = listed[key]
        if listed.get("output") == "label_map":
            # Resize + ArgMax inside the graph, with an extra output_size input: not comparable per variant here
            # (benchmarks/perf_graph.py times it against numpy post-processing).
            skipped[name] = {**info, "reason": "label-map output (post-processing in the graph)"}
        elif runnable_here(fmt):
            runnable[name] = info
        else:
            skipped[name] = {**info, "reason": why_not_runnable(fmt)}
    return runnable, skipped


def manifest_drift(listed: dict) -> dict | None:
    """The drift the build recorded for a variant, if any: a number (points) or a dict with the figure
    under ``points``/``drift_points`` and optionally its ``budget``/``budget_points``."""
    drift = listed.get("drift")
    if isinstance(drift, (int, float)) and not isinstance(drift, bool):
        return {"points": float(drift)}
    if not isinstance(drift, dict):
        return None
    pick = lambda *keys: next((float(drift[k]) for k in keys if isinstance(drift.get(k), (int, float))), None)  # noqa: E731
    return {"points": pick("points", "drift_points"), "budget": pick("budget", "budget_points"), "recorded": drift}


def drift_budget(options: BenchOptions, variants: dict, manifest: dict | None = None) -> float | None:
    """The budget variants are judged by: the option, else the build's; None when the build checked none
    (``quantize(budget=None)``: random weights, whose drift means nothing)."""
    if options.drift_budget is not None:
        return options.drift_budget
    quantization = (manifest or {}).get("quantization") or {}
    if "max_drift_points" in quantization and quantization["max_drift_points"] is None:
        return None
    budgets = [v["manifest_drift"]["budget"] for v in variants.values()
               if (v.get("manifest_drift") or {}).get("budget") is not None]
    return max(budgets) if budgets else DEFAULT_MAX_DRIFT




def aarch64_status(info: dict) -> str | None:
    """The ARM64 check's verdict recorded for a variant (portable, x86-only, differs), None if never checked."""
    return ((info.get("platforms") or {}).get("aarch64") or {}).get("status")


def manifest_notes(variants: dict) -> list[str]:
    """Report notes from what the manifest records of each variant: how it was converted, and where the
    ARM64 check found it does not run (or not alike)."""
    notes = []
    for name, info in variants.items():
        if (info.get("conversion") or {}).get("note"):
            notes.append(f"{name}: {info['conversion']['note']}")
        status = aarch64_status(info)
        if status not in (None, "portable"):
            why = info["platforms"]["aarch64"].get("error") or "differs from x86 beyond its bar"
            notes.append(f"{name}: {status} (ARM64 check: {why})")
    return notes
