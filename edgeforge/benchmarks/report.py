"""The report: ``report.json`` (every figure), ``report.md`` (tables per model), ``plots/*.png``.

The whole report directory is assembled aside and swapped in at once (``edgeforge.atomic``), so a
crashed or interrupted run leaves the previous report, never half of a new one. A directory that is
not an earlier report is never replaced.
"""

from __future__ import annotations

import re
from pathlib import Path

from edgeforge.atomic import atomic_directory, check_replaceable
from edgeforge.benchmarks.baseline_budget import BUDGET_CHECK
from edgeforge.benchmarks.recommend import PROXY_DRIFT, verdict_words
from edgeforge.contract import SEGMENTATION
from edgeforge.errors import EdgeforgeError
from edgeforge.jsonfile import dumps_strict, read_json_object

REPORT_JSON, REPORT_MD, PLOTS = "report.json", "report.md", "plots"
REPORT_WHAT = "an earlier benchmark report"
DASH = "–"


def write_report(report: dict, out_dir: str | Path, assets: dict[str, bytes] | None = None) -> Path:
    """Write report.json, report.md and plots/ (figures made from ``report`` plus ``assets``)."""
    from edgeforge.benchmarks.plots import model_plots

    out_dir = Path(out_dir)
    check_report_dir(out_dir)  # before the plots are drawn
    figures = dict(assets or {})
    for model in report["models"]:
        made = model_plots(model, slug(model["name"]))
        given = {name for name in figures if name.startswith(slug(model["name"]) + "-")}  # a re-written report's too
        model["plots"] = sorted(f"{PLOTS}/{name}" for name in given | set(made))
        figures.update(made)
    return _swap_in(out_dir, report, render_markdown(report), figures)


def _swap_in(out_dir: Path, report: dict, markdown: str, figures: dict[str, bytes]) -> Path:
    """report.json, report.md and plots/, assembled aside and swapped in at once."""
    with atomic_directory(out_dir, replaces=REPORT_JSON, what=REPORT_WHAT) as staging:
        (staging / PLOTS).mkdir()
        for name, png in figures.items():
            (staging / PLOTS / name).write_bytes(png)
        (staging / REPORT_JSON).write_text(dumps_strict(report) + "\n")
        (staging / REPORT_MD).write_text(markdown)
    return out_dir


FARM_FORMAT = "edgeforge-bench-farm/1"


def farm_report(address: str, sections: list[dict]) -> dict:
    """One report for a device farm: each node's own report (its machine, versions, peak and models)."""
    import datetime

    return {"format": FARM_FORMAT, "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cluster": address, "nodes": sections}


def write_farm_report(farm: dict, out_dir: str | Path, figures: dict[str, bytes]) -> Path:
    """report.json, report.md (a section per node) and plots/ of every node, swapped in at once."""
    out_dir = Path(out_dir)
    check_report_dir(out_dir)
    for section in farm["nodes"]:
        for model in section["report"]["models"]:
            model["plots"] = sorted(f"{PLOTS}/{name}" for name in figures if name.startswith(slug(model["name"]) + "-"))
    return _swap_in(out_dir, farm, render_farm_markdown(farm), figures)


def render_farm_markdown(farm: dict) -> str:
    lines = ["# edgeforge device-farm report", "",
             f"Run {farm['created']} on the Ray cluster at `{farm['cluster']}`: {len(farm['nodes'])} node(s), benchmarked "
             "one at a time, each in a task that reserved all its CPUs. Every section is one node's own measurement "
             "(its CPU, flags, threads and versions): compare ratios within a section, never times across sections.",
             ""]
    for section in farm["nodes"]:
        node, report = section["node"], section["report"]
        lines += [f"## Node {node['number']}: {node['address']} ({node['id'][:8]}), {report['machine']['cpu']}", ""]
        # The node's own report, one heading level down.
        body = render_markdown(report).splitlines()[2:]
        lines += [f"#{line}" if line.startswith("#") else line for line in body]
    return "\n".join(lines) + "\n"


def check_report_dir(out_dir: str | Path) -> None:
    """Refuse, before any measuring, a report directory that would not be replaced at the end."""
    check_replaceable(out_dir, REPORT_JSON, REPORT_WHAT)


def slug(name: str) -> str:
    """A model name as it appears in the report's file names (plots/NAME-*.png)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def read_report(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_JSON
    try:
        report = read_json_object(path)
    except FileNotFoundError:
        raise EdgeforgeError(f"report {path} does not exist") from None
    if report.get("format") != "edgeforge-bench/1":
        raise EdgeforgeError(f"{path} is not an edgeforge benchmark report (format {report.get('format')!r})")
    return report


# --- markdown ----------------------------------------------------------------------------------------
def render_markdown(report: dict) -> str:
    lines = ["# edgeforge benchmark report", ""]
    lines += _machine_section(report)
    for model in report["models"]:
        lines += _model_section(model, report)
    return "\n".join(lines) + "\n"


def _machine_section(report: dict) -> list[str]:
    machine, versions = report["machine"], report["versions"]
    load = machine.get("load_average_at_start")
    busy = load and load[0] > machine["available_cores"]
    peak = "; ".join(f"at {t} thread(s) " + ", ".join(f"{name} {g:.1f}" for name, g in _kernels(v).items())
                     for t, v in report["peak"].items())
    lines = [
        f"Run {report['created']} on **{machine['cpu']}**, {machine['available_cores']} core(s) available "
        f"({machine['logical_cores']} logical), {machine['ram_gib']} GiB RAM, flags: {', '.join(machine['flags']) or 'none'}.",
        f"Load average at start: {', '.join(f'{x:.2f}' for x in load) if load else DASH}"
        + (" — **the machine was busy: compare ratios within this report, not absolute times across reports.**"
           if busy else "."),
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "onnxruntime_providers") + ".",
        "Method: per model, every variant and baseline is timed in interleaved rounds (one run of each per round, "
        "order rotated) after warm-up, so machine noise hits all alike; memory is the peak RSS of a fresh child "
        "process per variant.",
        f"Machine peaks (GOP/s of one {report['peak'][next(iter(report['peak']))]['matmul_size']}² matrix product on "
        f"each engine's own kernels, best run): {peak}.",
        "",
    ]
    return lines


def _model_section(model: dict, report: dict) -> list[str]:
    threads = [str(t) for t in model["threads"]]
    full, single = threads[0], ("1" if "1" in threads else None)
    baselines = list(model["baselines"])
    lines = [f"## {model['name']}", ""]
    source = model.get("source") or {}
    flops = model.get("flops", {}).get("flops_per_image")
    lines.append(f"Artifact `{model['artifact']}` · {model['task']} · {model['classes']} classes · input "
                 f"{model['input_size'][0]}×{model['input_size'][1]} · source `{source.get('checkpoint', DASH)}`"
                 + (f" · {flops / 1e9:.2f} GFLOP per image" if flops else "") + ".")
    settings = model.get("settings") or {}
    if settings:
        lines.append(f"Timing: {settings['runs']} runs after {settings['warmup']} warm-up per variant at "
                     f"{' and '.join(map(str, settings['thread_counts']))} thread(s); throughput at batch "
                     f"{settings['throughput_batch']}.")
    lines.append(_dataset_line(model))
    lines.append("")
    header = ["variant", "precision", "size MB", "gzip MB", "zstd MB", f"p50 ms @{full}", f"p90 ms @{full}"]
    if single:
        header.append("p50 ms @1")
    header += [f"speed-up vs {b}" for b in baselines] + ["peak RSS MB", "drift (points)"]
    lines += _table_header(header)
    for kind, entries in (("variant", model["variants"]), ("baseline", model["baselines"])):
        for name, entry in entries.items():
            lat = entry.get("latency", {})
            row = [f"**{name}**" if kind == "baseline" else name, entry.get("precision", DASH),
                   _mb(entry, "bytes"), _mb(entry, "gzip_bytes"), _mb(entry, "zstd_bytes"),
                   _num(lat.get(full, {}).get("p50_ms")), _num(lat.get(full, {}).get("p90_ms"))]
            if single:
                row.append(_num(lat.get(single, {}).get("p50_ms")))
            row += [_speedup(entry, b, full, single) for b in baselines]
            row += [_num((entry.get("memory") or {}).get("peak_rss_mb"), 0), _drift(name, entry)]
            lines.append(_row(row))
    for name, entry in model.get("skipped", {}).items():
        cells = [name, entry.get("precision", DASH), _mb(entry, "bytes"), _mb(entry, "gzip_bytes"),
                 _mb(entry, "zstd_bytes"), entry["reason"]]
        lines.append(_row(cells + [""] * (len(header) - len(cells))))
    lines.append("")
    if baselines:
        described = "; ".join(f"**{b}** = {model['baselines'][b].get('label', b)}" for b in baselines)
        lines.append(f"Speed-up = baseline p50 / variant p50 at {full} thread(s)" + (" / at 1 thread" if single else "")
                     + f"; > 1 means faster. Baselines (bold): {described}.")
    else:
        lines.append("No baselines were measured.")
    if model.get("drift"):
        budget = model.get("drift_budget_points")
        lines.append(f"Drift = {model['drift']['definition']}; "
                     + (f"budget {budget:g} points." if budget is not None else "no budget (random weights)."))
    lines.append("")
    lines += _details_table(model, full, report)
    lines += _drift_table(model)
    lines += _stages(model)
    lines += _recommendations(model)
    lines += _head_to_head(model)
    if model.get("notes"):
        lines += ["Notes:", *[f"- {note}" for note in model["notes"]], ""]
    for plot in model.get("plots", []):
        lines += [f"![{Path(plot).stem}]({plot})", ""]
    return lines


def _dataset_line(model: dict) -> str:
    data = model.get("dataset")
    if not data:
        return "No dataset (drift not measured)."
    if not model.get("settings", {}).get("accuracy", True):
        return ("Drift not measured in this run; a drift marked (manifest) is the figure `edgeforge quantize` "
                "recorded when it made the variant.")
    what = (f"synthetic `{data['generator']}`" if data["synthetic"] else f"`{data['path']}` ({data['format']})")
    text = f"Drift measured on {data['samples']} image(s) of {what}, " + (
        "with ground-truth labels." if data["labelled"] else "without ground truth.")
    return text + (f" {data['note']}." if data.get("note") else "")


def _kernels(peak: dict) -> dict[str, float]:
    """"engine arithmetic" -> measured GOP/s (reports before 2026-12-07 measured onnxruntime fp32 alone)."""
    return peak.get("kernels") or ({"onnxruntime fp32": peak["gflops"]} if peak.get("gflops") else {})


def _peak_for(entry: dict, kernels: dict[str, float]) -> tuple[str | None, float | None]:
    """The measured peak a variant is held to: its engine's kernel in its arithmetic, else onnxruntime's."""
    compute = entry.get("compute", "fp32")
    for name in (f"{entry.get('engine')} {compute}", f"onnxruntime {compute}", "onnxruntime fp32"):
        if kernels.get(name):
            return name, kernels[name]
    return None, None


def _details_table(model: dict, full: str, report: dict) -> list[str]:
    kernels = _kernels(report["peak"].get(full, {}))
    lines = ["Details (at {} thread(s)):".format(full), ""]
    lines += _table_header(["variant", "p99 ms", "mean ms", "session create ms", "fresh process: import + load s",
                            "first inference ms", "throughput img/s", "GFLOP/s", "% of peak"])
    for entries in (model["variants"], model["baselines"]):
        for name, entry in entries.items():
            lat = entry.get("latency", {}).get(full, {})
            memory = entry.get("memory") or {}
            throughput = entry.get("throughput") or {}
            gflops = (entry.get("gflops") or {}).get(full)
            lines.append(_row([
                name, _num(lat.get("p99_ms")), _num(lat.get("mean_ms")),
                _num((entry.get("session_create") or {}).get("median_ms"), 1),
                _num((memory.get("import_s") or 0) + memory["load_s"], 2) if "load_s" in memory else _err(memory),
                _num(memory["first_inference_s"] * 1e3, 1) if "first_inference_s" in memory else DASH,
                _num(throughput.get("images_per_s"), 1) if "images_per_s" in throughput else throughput.get("skipped", DASH),
                _num(gflops, 1), _share_of_peak(gflops, *_peak_for(entry, kernels)),
            ]))
    lines.append("")
    if kernels:
        lines.append("GFLOP/s = the stock architecture's FLOPs per image / p50 (an effective rate: edgeforge's folded "
                     "SegFormer head does fewer FLOPs, so its variants can pass 100 %); % of peak against this run's "
                     "measured peak of the variant's engine in the arithmetic most of its FLOPs run in (named; "
                     "onnxruntime's where its own engine's was not measured). Mixed-precision variants run some "
                     "layers in float, so they stay further below their int8 or bf16 peak.")
        lines.append("")
    return lines


def _share_of_peak(gflops: float | None, kernel: str | None, peak: float | None) -> str:
    return f"{100 * gflops / peak:.1f} ({kernel})" if gflops and peak else DASH


def _drift_table(model: dict) -> list[str]:
    rows = {n: e for group in (model["variants"], model["baselines"]) for n, e in group.items()
            if (e.get("drift") or {}).get("drift_points") is not None and not e["drift"].get("reference")}
    if not rows:
        return []
    segmentation = model["task"] == SEGMENTATION
    truth = (model.get("drift") or {}).get("fp32_ground_truth")
    if segmentation:
        header = ["variant", "mIoU vs fp32", "pixel agreement", "boundary F1", "drift (points)", "boundary F1 drift"]
        header += ["mIoU vs ground truth", "Δ mIoU vs fp32's (points)"] if truth else []
    else:
        header = ["variant", "top-1 agreement", "mean KL (nats)", "drift (points)"]
        header += ["accuracy", "Δ accuracy vs fp32's (points)"] if truth else []
    lines = ["Drift from fp32:", ""] + _table_header(header)
    for name, entry in rows.items():
        d = entry["drift"]
        gt = d.get("ground_truth") or {}
        if segmentation:
            row = [name, _num(d.get("miou_vs_fp32"), 4), _pct(d.get("pixel_agreement")), _num(d.get("boundary_f1"), 4),
                   _num(d.get("drift_points")), _num(d.get("boundary_f1_drift_points"))]
            row += [_num(gt.get("miou"), 4), _num(gt.get("miou_delta_points"))] if truth else []
        else:
            row = [name, _pct(d.get("top1_agreement")), _num(d.get("mean_kl"), 5), _num(d.get("drift_points"))]
            row += [_pct(gt.get("accuracy")), _num(gt.get("accuracy_delta_points"))] if truth else []
        lines.append(_row(row))
    lines.append("")
    if truth:
        key = "miou" if segmentation else "accuracy"
        lines += [f"fp32 against ground truth: {key} {_num(truth.get(key), 4)}.", ""]
    return lines


def _stages(model: dict) -> list[str]:
    stages = model.get("stages")
    if not stages:
        return []
    width, height = stages["image_size"]
    lines = [f"Pipeline outside the model (runtime code, the same for every variant), {width}×{height} image: "
             f"preprocess p50 {_num(stages['preprocess']['p50_ms'])} ms, postprocess p50 "
             f"{_num(stages['postprocess']['p50_ms'])} ms."]
    if "predict" in stages:  # reports before 2026-12-07 timed the stages alone
        predict, forward = stages["predict"]["p50_ms"], stages["forward"]["p50_ms"]
        lines.append(f"End to end with the fastest variant, **{stages['variant']}** at {stages['threads']} "
                     f"thread(s): `predict()` p50 {_num(predict)} ms = **{predict / forward:.3f}×** its model run "
                     f"alone ({_num(forward)} ms), timed in the same interleaved rounds.")
    return [" ".join(lines), ""]


def _recommendations(model: dict) -> list[str]:
    recs = model.get("recommendations")
    if not recs:
        return []
    budget = model.get("drift_budget_points")
    basis = (f"drift budget {budget:g} points" if budget is not None
             else "by speed and size alone: drift not measured (random weights), no budget")
    lines = [f"Recommended ({basis}):", ""]
    lines += _table_header(["target", "variant", "why", "rule"])
    for target, rec in recs.items():
        lines.append(_row([target, f"**{rec['variant']}**" if rec["variant"] else DASH, rec["why"], rec["rule"]]))
    lines.append("")
    return lines


def _head_to_head(model: dict) -> list[str]:
    duel = model.get("head_to_head")
    if not duel:
        return []
    fastest = duel["fastest"]
    line = (f"Against the baselines at {duel['threads']} thread(s): the cpu-server choice **{duel['variant']}** "
            f"(p50 {_num(duel['p50_ms'])} ms) runs **{fastest['ratio']:.2f}×** as fast as the fastest baseline, "
            f"**{fastest['baseline']}** ({_num(fastest['p50_ms'])} ms, whatever its drift)")
    within = duel.get("fastest_within_budget")
    if within:
        line += (f", and **{within['ratio']:.2f}×** as fast as the fastest baseline within the drift budget, "
                 f"**{within['baseline']}** ({_num(within['p50_ms'])} ms; drift {within['drift_points']:.2f} points "
                 f"on {within['drift_on']})")
    if duel.get("not_judged"):
        line += f"; drift not known for {', '.join(duel['not_judged'])}"
    return [line + ".", ""]


# --- cells --------------------------------------------------------------------------------------------
def _table_header(header: list[str]) -> list[str]:
    return [_row(header), _row(["---"] * len(header))]


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |"


def _num(value, digits: int = 2) -> str:
    return DASH if value is None else f"{value:.{digits}f}"


def _pct(value) -> str:
    return DASH if value is None else f"{100 * value:.2f}%"


def _mb(entry: dict, key: str) -> str:
    size = (entry.get("size") or {}).get(key)
    return DASH if size is None else f"{size / 2 ** 20:.2f}"


def _speedup(entry: dict, baseline: str, full: str, single: str | None) -> str:
    ratios = (entry.get("speedup") or {}).get(baseline, {})
    parts = [f"{ratios[t]:.2f}×" for t in (full, single) if t and t in ratios]
    return " / ".join(parts) if parts else DASH


def _drift(name: str, entry: dict) -> str:
    drift = entry.get("drift") or {}
    if drift.get("reference"):
        return "reference"
    checked = entry.get(BUDGET_CHECK)
    if checked and drift.get("drift_points") is not None:  # a baseline held to the build's rule as well
        words = "within budget" if checked.get("passed") else "OVER BUDGET"
        bound = checked.get("drift_bound_points", checked["drift_points"])
        return f"{_num(drift['drift_points'])} ({words} on the build's {checked['num_images']} held-out: {_num(bound)})"
    if drift.get("drift_points") is not None:
        return f"{_num(drift['drift_points'])} {verdict_words(entry.get('budget_verdict'))}".strip()
    recorded = (entry.get("manifest_drift") or {}).get("points")
    if recorded is not None:
        return f"{recorded:.2f} (manifest)"
    proxy = (entry.get(PROXY_DRIFT) or {}).get("points")
    return f"{proxy:.2f} (trained mini)" if proxy is not None else DASH


def _err(memory: dict) -> str:
    return f"error: {memory['error']}" if "error" in memory else DASH
