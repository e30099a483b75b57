"""``bench(artifact_dir, dataset=None, report_dir=...)``: every variant of an artifact, measured next to
what the user would otherwise run (PyTorch eager, Optimum's plain ONNX export), in one run.

Order of work, per model: sizes -> baselines -> sessions (cold start) -> latency (round-robin, per
thread count) -> throughput -> pre/post-processing -> FLOPs and efficiency -> drift over the dataset
-> peak memory in child processes -> recommendations. Timing happens before the child processes
start, so they never compete with it.
"""

from __future__ import annotations

import datetime
import gc
import re
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeforge.benchmarks import baselines as base
from edgeforge.benchmarks.latency import Timed, round_robin, summarize, time_creation, time_stages
from edgeforge.benchmarks.runners import (BASELINE, NOT_RUNNABLE, ONNXRUNTIME_FORMATS, VARIANT, Runner,
                                          load_model, onnxruntime_runner, runner_name)
from edgeforge.benchmarks.size import compressed_sizes, variant_size
from edgeforge.errors import EdgeforgeError

REPORT_FORMAT = "edgeforge-bench/1"
DEFAULT_DRIFT_BUDGET = 0.5  # points of mIoU (segmentation) or top-1 agreement (classification) vs fp32


@dataclass
class BenchOptions:
    """What to measure and how much. ``quick()`` is for smoke tests: few runs, one thread count."""

    runs: int = 30
    warmup: int = 3
    threads: int | None = None  # None: every core this process may use
    single_thread: bool = True  # also measure at 1 thread
    throughput_batch: int = 8
    throughput_runs: int | None = None  # default max(3, runs // 4)
    synthetic_samples: int = 16  # images of the synthetic set made when no dataset is given
    max_samples: int | None = None  # cap on a given dataset
    baselines: bool = True
    memory: bool = True
    accuracy: bool = True
    drift_budget: float | None = None  # None: the manifest's budget if it records one, else 0.5 points
    providers: str = "auto"
    peak_size: int = 2048
    session_repeats: int = 3  # in-process session creations timed per variant
    progress: bool = True

    @classmethod
    def quick(cls, **overrides) -> "BenchOptions":
        settings = dict(runs=5, warmup=1, single_thread=False, throughput_batch=4, throughput_runs=2,
                        synthetic_samples=4, peak_size=1024, session_repeats=1)
        settings.update(overrides)
        return cls(**settings)

    def thread_counts(self) -> list[int]:
        from edgeforge.benchmarks.machine import available_cores

        full = self.threads or available_cores()
        if full < 1:
            raise EdgeforgeError(f"thread count must be at least 1, got {full}")
        return [full, 1] if self.single_thread and full != 1 else [full]

    def check(self) -> None:
        if min(self.runs, self.throughput_batch, self.synthetic_samples, self.session_repeats, self.peak_size) < 1 \
                or self.warmup < 0:
            raise EdgeforgeError("runs, batch, samples, session repeats and peak size must be at least 1, "
                                 "warm-up at least 0")


def bench(artifact_dir: str | Path, dataset: str | Path | None = None, report_dir: str | Path | None = None,
          options: BenchOptions | None = None, name: str | None = None, checkpoint: str | None = None,
          log=None) -> dict:
    """Benchmark every variant of ``artifact_dir``; write report.json/.md and plots to ``report_dir``
    (atomically) when given; return the report dict."""
    options = options or BenchOptions()
    log = log or _stderr
    check_artifact_dir(Path(artifact_dir))  # before minutes of measuring the machine
    report = start_report(options, log)
    entry, assets = bench_model(artifact_dir, dataset, options, name=name, checkpoint=checkpoint, log=log)
    report["models"].append(entry)
    if report_dir is not None:
        from edgeforge.benchmarks.report import write_report

        write_report(report, report_dir, assets)
        log(f"report written to {report_dir}")
    return report


def start_report(options: BenchOptions, log) -> dict:
    """Machine, versions, settings and the machine's measured fp32 peak (at every thread count)."""
    from edgeforge.benchmarks.machine import machine_info, versions
    from edgeforge.benchmarks.peak import measure_peak_gflops

    options.check()
    threads = options.thread_counts()
    with _step(log, "measuring fp32 MatMul peak"):
        peak = {str(t): measure_peak_gflops(t, options.peak_size) for t in threads}
    return {
        "format": REPORT_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
        "settings": {**asdict(options), "thread_counts": threads},
        "peak": peak,
        "models": [],
    }


def bench_model(artifact_dir: str | Path, dataset: str | Path | None, options: BenchOptions, name: str | None = None,
                checkpoint: str | None = None, log=None) -> tuple[dict, dict[str, bytes]]:
    """Measure one artifact; returns its report entry and extra files (name -> PNG bytes) for the report."""
    log = log or _stderr
    options.check()
    root = Path(artifact_dir)
    threads = options.thread_counts()
    full = threads[0]
    started = time.perf_counter()
    with _step(log, f"loading {root}"):
        reference = _load_reference(root, full)
    manifest = reference.artifact.manifest
    label_names = [reference.id2label[i] for i in sorted(reference.id2label)]
    height, width = reference.preprocessor.height, reference.preprocessor.width
    model_name = name or root.resolve().name
    source = dict((manifest or {}).get("source") or {})
    checkpoint_source = checkpoint or source.get("checkpoint")
    entry = {
        "name": model_name, "artifact": str(root), "task": reference.task, "source": source,
        "classes": len(label_names), "input_size": [height, width], "threads": threads,
        "settings": {"runs": options.runs, "warmup": options.warmup, "thread_counts": threads,
                     "throughput_batch": options.throughput_batch, "accuracy": options.accuracy},
        "variants": {}, "baselines": {}, "skipped": {}, "notes": [],
    }
    variants, skipped = list_variants(reference)
    with _step(log, "measuring sizes (raw, gzip, zstd)"):
        for variant, info in variants.items():
            entry["variants"][variant] = {**info, "size": variant_size(root, info["file"], manifest)}
        for variant, info in skipped.items():
            entry["skipped"][variant] = {**info, "size": variant_size(root, info["file"], manifest)}
    budget = _drift_budget(options, entry["variants"])
    entry["drift_budget_points"] = budget
    assets: dict[str, bytes] = {}
    verify = manifest is not None
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        work = Path(tmp)
        from edgeforge.benchmarks.dataset import open_bench_dataset

        with _step(log, "preparing dataset"):
            data = open_bench_dataset(dataset, reference.task, label_names, work, options.synthetic_samples,
                                      max(height, width), options.max_samples, options.progress)
        entry["dataset"] = data.info
        first_image = data.dataset[0].image
        pixel_values, _ = reference.preprocess([first_image])
        baseline_info = _prepare_baselines(options, checkpoint_source, reference.task, work, entry, log)
        providers = _providers(options)
        runners = _make_runners(root, variants, baseline_info, threads, providers, verify, entry, log)
        entry["providers"] = providers
        _record_descriptions(entry, runners, baseline_info, providers, root)
        with _step(log, "timing session creation (cold start, in process)"):
            _cold_start(entry, root, runners, full, verify, baseline_info, options.session_repeats)
        for count in threads:
            batch_runners = [r for r in runners if r.threads == count]
            with _step(log, f"latency, batch 1, {count} thread(s), {options.runs} interleaved runs"):
                _latency(entry, batch_runners, pixel_values, options, count)
        runners = [r for r in runners if r.threads == full]  # the others' sessions are done: free their memory
        gc.collect()
        with _step(log, f"throughput, batch {options.throughput_batch}, {full} thread(s)"):
            _throughput(entry, runners, pixel_values, options, full)
        with _step(log, "pre- and post-processing"):
            entry["stages"] = time_stages(reference, first_image, max(options.runs, 5))
        _speedups(entry, threads)
        _efficiency(entry, root, height, width, log)
        if options.accuracy:
            with _step(log, f"drift over {data.count} image(s)"):
                _drift(entry, reference, data, runners, options)
            assets.update(_side_by_side(entry, reference, data))
        else:
            entry["notes"].append("drift not measured (accuracy disabled)")
        del runners
        if options.memory:
            with _step(log, "peak memory, one child process per variant"):
                _memory(entry, root, baseline_info, full, [1, 3, height, width])
    from edgeforge.benchmarks.recommend import recommend

    entry["recommendations"] = recommend(entry["variants"], budget, threads)
    entry["seconds"] = time.perf_counter() - started
    return entry, assets


# --- variants ---------------------------------------------------------------------------------------
def check_artifact_dir(root: Path) -> None:
    if not root.is_dir():
        raise EdgeforgeError(f"{root} is not a directory; give an artifact directory written by `edgeforge build`")
    if not (root / "config.json").is_file():
        raise EdgeforgeError(f"{root} is not an artifact directory (no config.json)")


def _load_reference(root: Path, threads: int):
    from edgeforge.runtime.manifest import read_manifest

    verify = read_manifest(root) is not None
    try:
        return load_model(root, threads, "CPUExecutionProvider", "fp32", verify=verify)
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
        fmt = listed.get("format") or _format_of(rel)
        info = {"kind": VARIANT, "file": rel, "format": fmt, "precision": listed.get("precision") or _precision_of(name)}
        drift = manifest_drift(listed)
        if drift is not None:
            info["manifest_drift"] = drift
        if listed.get("output") == "label_map":
            # Resize + ArgMax inside the graph, with an extra output_size input: not comparable per variant here
            # (benchmarks/perf_graph.py times it against numpy post-processing).
            skipped[name] = {**info, "reason": "label-map output (post-processing in the graph)"}
        elif fmt in ONNXRUNTIME_FORMATS:
            runnable[name] = info
        else:
            skipped[name] = {**info, "reason": NOT_RUNNABLE.get(fmt, f"format {fmt!r} does not run with onnxruntime")}
    return runnable, skipped


def _format_of(rel: str) -> str:
    return {".onnx": "onnx", ".ort": "ort", ".mlpackage": "coreml"}.get(Path(rel).suffix, Path(rel).suffix.lstrip("."))


def _precision_of(name: str) -> str:
    return {"fp32": "fp32", "ort": "fp32", "fp16": "fp16", "quantized": "int8", "q8": "int8", "int8": "int8",
            "uint8": "uint8", "q4": "int4"}.get(name, "unknown")


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


def _drift_budget(options: BenchOptions, variants: dict) -> float:
    if options.drift_budget is not None:
        return options.drift_budget
    budgets = [v["manifest_drift"]["budget"] for v in variants.values()
               if (v.get("manifest_drift") or {}).get("budget") is not None]
    return max(budgets) if budgets else DEFAULT_DRIFT_BUDGET


def _providers(options: BenchOptions) -> list[str]:
    from edgeforge.runtime.providers import choose_providers

    return choose_providers(options.providers)


# --- baselines --------------------------------------------------------------------------------------
def _prepare_baselines(options: BenchOptions, checkpoint_source: str | None, task: str, work: Path, entry: dict,
                       log) -> dict:
    """{"checkpoint": loaded or None, "source": str, "plain_onnx": PlainOnnx or None}, notes for what is missing."""
    info = {"checkpoint": None, "source": checkpoint_source, "plain_onnx": None}
    if not options.baselines:
        entry["notes"].append("baselines not measured (disabled)")
        return info
    if not checkpoint_source:
        entry["notes"].append("baselines skipped: the manifest names no source checkpoint (use --checkpoint)")
        return info
    try:
        with _step(log, f"loading the source checkpoint {checkpoint_source} (PyTorch baseline)"):
            info["checkpoint"] = base.load_pytorch(checkpoint_source)
    except EdgeforgeError as exc:
        entry["notes"].append(f"baselines skipped: source checkpoint unavailable ({exc})")
        return info
    with _step(log, "exporting the plain ONNX baseline"):
        info["plain_onnx"] = base.export_plain_onnx(checkpoint_source, task, work / "baseline", info["checkpoint"])
    if info["plain_onnx"].note:
        entry["notes"].append(info["plain_onnx"].note)
    return info


def _make_runners(root: Path, variants: dict, baseline_info: dict, threads: list[int], providers: list[str],
                  verify: bool, entry: dict, log) -> list[Runner]:
    """Sessions for every (variant, provider, thread count) and baseline. A variant onnxruntime cannot
    load (say, an operator this build lacks) moves to ``skipped`` with the reason instead of ending the run."""
    runners = []
    with _step(log, "creating sessions"):
        for count in threads:
            for provider in providers:
                for variant in [v for v in variants if v not in entry["skipped"]]:
                    try:
                        runners.append(onnxruntime_runner(runner_name(variant, provider, providers), VARIANT, root,
                                                          count, provider, variant=variant, verify=verify))
                    except EdgeforgeError as exc:
                        entry["skipped"][variant] = {**entry["variants"].pop(variant), "reason": f"cannot run: {exc}"}
                        runners = [r for r in runners if r.name.split(" [")[0] != variant]
            if baseline_info["checkpoint"] is not None:
                runners.append(Runner(base.PYTORCH, BASELINE, count, "PyTorch CPU",
                                      base.pytorch_forward(baseline_info["checkpoint"]), dynamic_batch=True,
                                      prepare=base.pytorch_threads(count)))
            plain = baseline_info["plain_onnx"]
            if plain is not None:
                runners.append(onnxruntime_runner(plain.name, BASELINE, root, count, "CPUExecutionProvider",
                                                  model_file=plain.path))
    return runners


def _record_descriptions(entry: dict, runners: list[Runner], baseline_info: dict, providers: list[str],
                         root: Path) -> None:
    """Variant entries for every (variant, provider) runner, baseline entries with their sizes."""
    for runner in runners:
        if runner.kind == VARIANT:
            plain_name = runner.name.split(" [")[0]
            record = entry["variants"].setdefault(runner.name, dict(entry["variants"][plain_name]))
            record["provider"] = runner.provider
        elif runner.name not in entry["baselines"]:
            record = {"kind": BASELINE, "label": base.LABELS[runner.name], "provider": runner.provider,
                      "precision": "fp32", "format": "pytorch" if runner.name == base.PYTORCH else "onnx"}
            if runner.name == base.PYTORCH:
                weights = _checkpoint_weights(baseline_info["source"])
                record["file"] = baseline_info["source"]
                if weights:
                    record["size"] = {**compressed_sizes(weights), "files": [p.name for p in weights]}
            else:
                record["file"] = "(exported to a temporary directory)"
                record["size"] = {**compressed_sizes([baseline_info["plain_onnx"].path]), "files": ["model.onnx"]}
            entry["baselines"][runner.name] = record
    if len(providers) > 1:  # the unqualified names were placeholders for the per-provider entries
        for name in [n for n in entry["variants"] if " [" not in n]:
            del entry["variants"][name]


def _checkpoint_weights(source: str | None) -> list[Path]:
    if not source or not Path(source).is_dir():
        return []
    return sorted(Path(source).glob("*.safetensors"))


# --- timing -----------------------------------------------------------------------------------------
def _entry(entry: dict, runner: Runner) -> dict:
    return entry["variants" if runner.kind == VARIANT else "baselines"][runner.name]


def _cold_start(entry: dict, root: Path, runners: list[Runner], threads: int, verify: bool, baseline_info: dict,
                repeats: int) -> None:
    for runner in runners:
        if runner.threads != threads or runner.name == base.PYTORCH:
            continue  # PyTorch's load time comes from its fresh child process (memory step)
        if runner.kind == VARIANT:
            variant, provider = runner.name.split(" [")[0], runner.provider
            create = lambda: load_model(root, threads, provider, variant, verify=verify)  # noqa: E731
        else:
            path = baseline_info["plain_onnx"].path
            create = lambda: load_model(root, threads, "CPUExecutionProvider", model_file=path)  # noqa: E731
        _entry(entry, runner)["session_create"] = time_creation(create, repeats)


def _latency(entry: dict, runners: list[Runner], pixel_values: np.ndarray, options: BenchOptions, threads: int) -> None:
    items = [Timed(r.name, (lambda f=r.forward: f(pixel_values)), r.prepare) for r in runners]
    samples = round_robin(items, options.runs, options.warmup, _bar(options, f"latency @{threads} thr", options.runs))
    for runner in runners:
        _entry(entry, runner).setdefault("latency", {})[str(threads)] = summarize(samples[runner.name])


def _throughput(entry: dict, runners: list[Runner], pixel_values: np.ndarray, options: BenchOptions,
                threads: int) -> None:
    batch = np.repeat(pixel_values, options.throughput_batch, axis=0)
    dynamic = [r for r in runners if r.dynamic_batch]
    for runner in runners:
        if not runner.dynamic_batch:
            _entry(entry, runner)["throughput"] = {"skipped": "fixed batch axis (one image per run)"}
    if not dynamic:
        return
    runs = options.throughput_runs or max(3, options.runs // 4)
    items = [Timed(r.name, (lambda f=r.forward_releasing or r.forward: f(batch)), r.prepare) for r in dynamic]
    samples = round_robin(items, runs, min(options.warmup, 1), _bar(options, f"throughput b{len(batch)}", runs))
    for runner in dynamic:
        summary = summarize(samples[runner.name])
        _entry(entry, runner)["throughput"] = {
            "batch": len(batch), "threads": threads, "images_per_s": len(batch) / (summary["p50_ms"] / 1e3),
            "p50_ms": summary["p50_ms"], "n": summary["n"]}


def _speedups(entry: dict, threads: list[int]) -> None:
    """Every variant's p50 as a speed-up over each baseline (baseline p50 / variant p50; > 1 = faster)."""
    for record in [*entry["variants"].values(), *entry["baselines"].values()]:
        record["speedup"] = {
            name: {str(t): baseline["latency"][str(t)]["p50_ms"] / record["latency"][str(t)]["p50_ms"]
                   for t in threads if str(t) in baseline.get("latency", {}) and str(t) in record.get("latency", {})}
            for name, baseline in entry["baselines"].items()}


def _efficiency(entry: dict, root: Path, height: int, width: int, log) -> None:
    """Achieved GFLOP/s (FLOPs per image / p50) and its share of this run's measured MatMul peak."""
    try:
        from edgeforge.benchmarks.flops import count_flops

        with _step(log, "counting FLOPs"):
            entry["flops"] = count_flops(root, height, width)
    except Exception as exc:  # an optional figure: torch missing or a model it cannot trace on 'meta'
        entry["notes"].append(f"FLOPs not counted: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        return
    flops = entry["flops"]["flops_per_image"]
    for record in [*entry["variants"].values(), *entry["baselines"].values()]:
        record["gflops"] = {t: flops / (lat["p50_ms"] / 1e3) / 1e9 for t, lat in record.get("latency", {}).items()}


# --- drift ------------------------------------------------------------------------------------------
def _drift(entry: dict, reference, data, runners: list[Runner], options: BenchOptions) -> None:
    from edgeforge.benchmarks.accuracy import measure_drift

    for runner in runners:
        if runner.prepare is not None:
            runner.prepare()
    candidates = {r.name: r.forward for r in runners if not (r.kind == VARIANT and r.name == "fp32")}
    result = measure_drift(data.samples, reference, candidates, data.use_labels, total=data.count,
                           progress=options.progress, description=f"drift {entry['name']}")
    entry["drift"] = {k: v for k, v in result.items() if k != "candidates"}
    for runner in runners:
        if runner.name in result["candidates"]:
            _entry(entry, runner)["drift"] = result["candidates"][runner.name]
    if "fp32" in entry["variants"]:
        entry["variants"]["fp32"]["drift"] = {"reference": True, "drift_points": 0.0,
                                              "ground_truth": result["fp32_ground_truth"]}


def _side_by_side(entry: dict, reference, data) -> dict[str, bytes]:
    """Input, fp32 mask, variant mask and disagreement for the variant that drifts most, on the image
    where it disagrees most (segmentation only)."""
    if reference.task != "semantic-segmentation":
        return {}
    drifted = {n: v["drift"] for n, v in entry["variants"].items()
               if n != "fp32" and (v.get("drift") or {}).get("drift_points") is not None and v["drift"].get("worst_image")}
    if not drifted:
        return {}
    worst = max(drifted, key=lambda n: drifted[n]["drift_points"])
    image = data.dataset[drifted[worst]["worst_image"]["index"]].image
    from edgeforge.benchmarks.plots import side_by_side

    pixel_values, _ = reference.preprocess([image])
    fp32_map = reference.postprocess(reference.forward(pixel_values), [image.size])[0].label_map
    variant_model = load_model(Path(entry["artifact"]), entry["threads"][0], "CPUExecutionProvider",
                               worst.split(" [")[0], verify=reference.artifact.manifest is not None)
    variant_map = variant_model.postprocess(variant_model.forward(pixel_values), [image.size])[0].label_map
    file_name = f"{slug(entry['name'])}-side-by-side.png"
    entry["side_by_side"] = {"variant": worst, "image": drifted[worst]["worst_image"]["path"],
                             "plot": f"plots/{file_name}"}
    return {file_name: side_by_side(image, fp32_map, variant_map, reference.id2label, entry["name"], worst)}


# --- memory -----------------------------------------------------------------------------------------
def _memory(entry: dict, root: Path, baseline_info: dict, threads: int, input_shape: list[int]) -> None:
    from edgeforge.benchmarks.memory import measure_in_child, pytorch_spec, runtime_spec

    for name, record in entry["variants"].items():
        if " [" in name:
            record["memory"] = {"skipped": "measured on the CPU provider only"}
            continue
        record["memory"] = measure_in_child(runtime_spec(str(root.resolve()), threads, input_shape, variant=name))
    plain = baseline_info["plain_onnx"]
    if plain is not None:
        entry["baselines"][plain.name]["memory"] = measure_in_child(
            runtime_spec(str(root.resolve()), threads, input_shape, model_file=str(plain.path)))
    if baseline_info["checkpoint"] is not None:
        source = baseline_info["source"]
        source = str(Path(source).resolve()) if Path(source).exists() else source
        entry["baselines"][base.PYTORCH]["memory"] = measure_in_child(pytorch_spec(source, threads, input_shape))


# --- helpers ----------------------------------------------------------------------------------------
def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "model"


def _bar(options: BenchOptions, description: str, total: int):
    if not options.progress:
        return iter
    from tqdm import tqdm

    return lambda items: tqdm(items, total=total, desc=description, unit="round", leave=False)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@contextmanager
def _step(log, title: str):
    started = time.perf_counter()
    yield
    log(f"  {title} ... {time.perf_counter() - started:.1f} s")
