"""Report figures as PNG bytes, drawn with matplotlib's object API on the Agg canvas.

``Figure`` + ``FigureCanvasAgg`` rather than pyplot: no global figure state, no GUI backend, safe in
any process. Every figure has a title, labelled axes with units and a legend or colour bar.
"""

from __future__ import annotations

import io

import numpy as np

DPI = 110
VARIANT_COLOUR, BASELINE_COLOUR = "#4C72B0", "#DD8452"


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _points(model: dict, threads: str) -> list[dict]:
    """Every measured runner with its p50 at ``threads``, file size and drift (None if unmeasured)."""
    points = []
    for kind, entries in (("variant", model.get("variants", {})), ("baseline", model.get("baselines", {}))):
        for name, entry in entries.items():
            p50 = ((entry.get("latency") or {}).get(threads) or {}).get("p50_ms")
            size = (entry.get("size") or {}).get("bytes")
            if p50 is None or size is None:
                continue
            drift = (entry.get("drift") or {}).get("drift_points")
            points.append({"name": name, "kind": kind, "p50": p50, "mb": size / 2 ** 20, "drift": drift})
    return points


def pareto_front(points: list[dict]) -> list[dict]:
    """Points no other point beats on both latency and size (ties count as not beaten), by latency."""
    front = [p for p in points
             if not any(q["p50"] <= p["p50"] and q["mb"] <= p["mb"] and (q["p50"] < p["p50"] or q["mb"] < p["mb"])
                        for q in points)]
    return sorted(front, key=lambda p: p["p50"])


def pareto_plot(model: dict) -> bytes | None:
    """Latency (x) vs size (y), drift as colour; variants as circles, baselines as squares."""
    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.lines import Line2D

    threads = str(model["threads"][0])
    points = _points(model, threads)
    if not points:
        return None
    figure = _figure(8.5, 6)
    axes = figure.add_subplot()
    budget = model.get("drift_budget_points") or 0.5  # None: no budget (random weights); the scale still needs one
    drifts = [p["drift"] for p in points if p["drift"] is not None]
    norm = Normalize(vmin=0, vmax=max([budget * 2, *drifts]))
    cmap = colormaps["viridis"]
    for p in points:
        colour = cmap(norm(p["drift"])) if p["drift"] is not None else "lightgrey"
        axes.scatter(p["p50"], p["mb"], s=140, marker="o" if p["kind"] == "variant" else "s", color=colour,
                     edgecolors="black", linewidths=0.8, zorder=3)
        axes.annotate(p["name"], (p["p50"], p["mb"]), xytext=(7, 5), textcoords="offset points", fontsize=9)
    front = pareto_front([p for p in points if p["kind"] == "variant"])
    if len(front) > 1:
        axes.step([p["p50"] for p in front], [p["mb"] for p in front], where="post", linestyle="--",
                  color="grey", zorder=2)
    spread = lambda values: max(values) / max(min(values), 1e-9)  # noqa: E731
    if spread([p["p50"] for p in points]) > 4:
        axes.set_xscale("log")
    if spread([p["mb"] for p in points]) > 4:
        axes.set_yscale("log")
    axes.set_xlabel(f"p50 latency per image, batch 1, {threads} thread(s) (ms)")
    axes.set_ylabel("model size on disk (MB)")
    axes.set_title(f"{model['name']}: latency vs size vs drift (lower left is better)")
    axes.grid(True, alpha=0.3)
    mappable = axes.scatter([], [], c=[], cmap=cmap, norm=norm)
    bar = figure.colorbar(mappable, ax=axes)
    bar.set_label(f"drift vs fp32 (points; budget {budget:g})")
    bar.ax.axhline(budget, color="red", linewidth=1.5)
    handles = [
        Line2D([], [], marker="o", linestyle="", markerfacecolor="white", markeredgecolor="black", label="variant"),
        Line2D([], [], marker="s", linestyle="", markerfacecolor="white", markeredgecolor="black", label="baseline"),
        Line2D([], [], color="grey", linestyle="--", label="Pareto front (variants)"),
    ]
    if any(p["drift"] is None for p in points):
        handles.append(Line2D([], [], marker="o", linestyle="", color="lightgrey", label="drift not measured"))
    axes.legend(handles=handles, loc="best", fontsize=9)
    return _png(figure)


def latency_plot(model: dict) -> bytes | None:
    """Distribution of the timed runs per variant and baseline, one panel per thread count."""
    from matplotlib.patches import Patch

    thread_keys = [str(t) for t in model["threads"]]
    rows = []
    for kind, entries in (("variant", model.get("variants", {})), ("baseline", model.get("baselines", {}))):
        for name, entry in entries.items():
            if any(t in (entry.get("latency") or {}) for t in thread_keys):
                rows.append((name, kind, entry["latency"]))
    if not rows:
        return None
    figure = _figure(max(6.0, 1.1 * len(rows) * len(thread_keys) + 2), 5.5)
    panels = figure.subplots(1, len(thread_keys), squeeze=False)[0]
    for axes, threads in zip(panels, thread_keys):
        present = [(n, k, lat[threads]) for n, k, lat in rows if threads in lat]
        boxes = axes.boxplot([s["samples_ms"] for _, _, s in present], patch_artist=True, showfliers=True,
                             medianprops={"color": "black"})
        for box, (_, kind, _) in zip(boxes["boxes"], present):
            box.set_facecolor(VARIANT_COLOUR if kind == "variant" else BASELINE_COLOUR)
            box.set_alpha(0.75)
        axes.set_xticks(range(1, len(present) + 1), [n for n, _, _ in present], rotation=30, ha="right")
        axes.set_ylabel("latency per image, batch 1 (ms)")
        axes.set_title(f"{threads} thread(s), {present[0][2]['n']} runs each")
        axes.grid(True, axis="y", alpha=0.3)
    panels[0].legend(handles=[Patch(color=VARIANT_COLOUR, label="variant"), Patch(color=BASELINE_COLOUR,
                                                                                   label="baseline")], fontsize=9)
    figure.suptitle(f"{model['name']}: latency distribution (box: quartiles, whiskers: 1.5 IQR)")
    return _png(figure)


def class_iou_drift_plot(model: dict) -> bytes | None:
    """Per-class IoU drift vs fp32, one bar per variant and class (segmentation)."""
    series = {name: entry["drift"]["per_class_iou_drift_points"] for name, entry in model.get("variants", {}).items()
              if (entry.get("drift") or {}).get("per_class_iou_drift_points")}
    if not series:
        return None
    classes = list(next(iter(series.values())))
    figure = _figure(9, 1.2 + 0.28 * len(classes) * max(1, len(series)) ** 0.5)
    axes = figure.add_subplot()
    height = 0.8 / len(series)
    positions = np.arange(len(classes))
    for i, (name, values) in enumerate(series.items()):
        drift = [values[c] if values[c] is not None else np.nan for c in classes]
        axes.barh(positions + (i - (len(series) - 1) / 2) * height, drift, height=height, label=name)
    axes.set_yticks(positions, classes)
    axes.invert_yaxis()
    axes.set_xlabel("IoU drift vs fp32 label maps (points, 100 x (1 - IoU)); no bar: class absent")
    axes.set_ylabel("class")
    if model.get("drift_budget_points") is not None:
        axes.axvline(model["drift_budget_points"], color="red", linestyle="--", linewidth=1,
                     label=f"drift budget ({model['drift_budget_points']:g})")
    axes.set_title(f"{model['name']}: per-class IoU drift from fp32")
    axes.grid(True, axis="x", alpha=0.3)
    axes.legend(fontsize=9, loc="best")
    return _png(figure)


def side_by_side(image, fp32_map: np.ndarray, variant_map: np.ndarray, id2label: dict, model_name: str,
                 variant: str) -> bytes:
    """Input | fp32 mask | variant mask | disagreement (red on the greyed input)."""
    from matplotlib.patches import Patch

    from edgeforge.runtime.postprocess import palette

    colours = palette(len(id2label))
    pixels = np.asarray(image.convert("RGB"))
    grey = np.repeat(pixels.mean(axis=2, keepdims=True), 3, axis=2) * 0.6
    differ = fp32_map != variant_map
    disagreement = grey.copy()
    disagreement[differ] = (230, 30, 30)
    figure = _figure(14, 4.6)
    panels = figure.subplots(1, 4)
    agreement = 1 - differ.mean()
    views = [(pixels, "input"), (colours[fp32_map], "fp32 label map"), (colours[variant_map], f"{variant} label map"),
             (disagreement.astype(np.uint8), f"disagreement: {differ.sum()} px ({1 - agreement:.2%})")]
    for axes, (view, title) in zip(panels, views):
        axes.imshow(view)
        axes.set_title(title)
        axes.set_xlabel("x (px)")
        axes.set_ylabel("y (px)")
    present = sorted(set(np.unique(fp32_map)) | set(np.unique(variant_map)))
    handles = [Patch(color=colours[i] / 255, label=id2label[int(i)]) for i in present]
    handles.append(Patch(color=(230 / 255, 30 / 255, 30 / 255), label="fp32 and variant differ"))
    figure.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=8)
    figure.suptitle(f"{model_name}: {variant} vs fp32 on its most-changed image (pixel agreement {agreement:.2%})")
    return _png(figure)


def model_plots(model: dict, prefix: str) -> dict[str, bytes]:
    """File name -> PNG bytes for every figure that applies to ``model``."""
    made = {f"{prefix}-pareto.png": pareto_plot(model), f"{prefix}-latency.png": latency_plot(model),
            f"{prefix}-class-iou-drift.png": class_iou_drift_plot(model)}
    return {name: png for name, png in made.items() if png is not None}
