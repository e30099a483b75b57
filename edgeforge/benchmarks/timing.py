"""The timed parts of a benchmark run, each filling the report entry of every runner: session creation (cold
start), batch-1 latency in interleaved rounds, throughput at a larger batch, speed-ups over each baseline,
and achieved GFLOP/s."""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from edgeforge.benchmarks.latency import Timed, round_robin, summarize, time_creation, time_stages
from edgeforge.benchmarks.options import BenchOptions
from edgeforge.benchmarks.runners import VARIANT, Runner


def record_of(entry: dict, runner: Runner) -> dict:
    """The report record a runner's figures go into."""
    return entry["variants" if runner.kind == VARIANT else "baselines"][runner.name]


def cold_start(entry: dict, root: Path, runners: list[Runner], threads: int, verify: bool, baseline_info: dict,
                repeats: int) -> None:
    for runner in runners:
        if runner.threads != threads or runner.reload is None:
            continue  # PyTorch's load time comes from its fresh child process (memory step)
        record_of(entry, runner)["session_create"] = time_creation(runner.reload, repeats)


def latency(entry: dict, runners: list[Runner], pixel_values: np.ndarray, options: BenchOptions, threads: int) -> None:
    items = [Timed(r.name, (lambda f=r.forward: f(pixel_values)), r.prepare) for r in runners]
    samples = round_robin(items, options.runs, options.warmup, bar(options, f"latency @{threads} thr", options.runs))
    for runner in runners:
        record_of(entry, runner).setdefault("latency", {})[str(threads)] = summarize(samples[runner.name])


def throughput(entry: dict, runners: list[Runner], pixel_values: np.ndarray, options: BenchOptions,
                threads: int) -> None:
    batch = np.repeat(pixel_values, options.throughput_batch, axis=0)
    dynamic = [r for r in runners if r.dynamic_batch]
    for runner in runners:
        if not runner.dynamic_batch:
            record_of(entry, runner)["throughput"] = {"skipped": "fixed batch axis (one image per run)"}
    if not dynamic:
        return
    runs = options.throughput_runs or max(3, options.runs // 4)
    items = [Timed(r.name, (lambda f=r.forward_releasing or r.forward: f(batch)), r.prepare) for r in dynamic]
    samples = round_robin(items, runs, min(options.warmup, 1), bar(options, f"throughput b{len(batch)}", runs))
    for runner in dynamic:
        summary = summarize(samples[runner.name])
        record_of(entry, runner)["throughput"] = {
            "batch": len(batch), "threads": threads, "images_per_s": len(batch) / (summary["p50_ms"] / 1e3),
            "p50_ms": summary["p50_ms"], "n": summary["n"]}


def speedups(entry: dict, threads: list[int]) -> None:
    """Every variant's p50 as a speed-up over each baseline (baseline p50 / variant p50; > 1 = faster)."""
    for record in [*entry["variants"].values(), *entry["baselines"].values()]:
        record["speedup"] = {
            name: {str(t): baseline["latency"][str(t)]["p50_ms"] / record["latency"][str(t)]["p50_ms"]
                   for t in threads if str(t) in baseline.get("latency", {}) and str(t) in record.get("latency", {})}
            for name, baseline in entry["baselines"].items()}


def efficiency(entry: dict, root: Path, height: int, width: int, log) -> None:
    """Achieved GFLOP/s (FLOPs per image / p50) and its share of this run's measured MatMul peak."""
    try:
        from edgeforge.benchmarks.flops import count_flops

        with step(log, "counting FLOPs"):
            entry["flops"] = count_flops(root, height, width)
    except Exception as exc:  # an optional figure: torch missing or a model it cannot trace on 'meta'
        entry["notes"].append(f"FLOPs not counted: {type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}")
        return
    flops = entry["flops"]["flops_per_image"]
    for record in [*entry["variants"].values(), *entry["baselines"].values()]:
        record["gflops"] = {t: flops / (lat["p50_ms"] / 1e3) / 1e9 for t, lat in record.get("latency", {}).items()}


def bar(options: BenchOptions, description: str, total: int):
    if not options.progress:
        return iter
    from tqdm import tqdm

    return lambda items: tqdm(items, total=total, desc=description, unit="round", leave=False)


@contextmanager
def step(log, title: str):
    started = time.perf_counter()
    yield
    log(f"  {title} ... {time.perf_counter() - started:.1f} s")


#: Rounds of the stage timing, at least: ``predict()`` / model run is a ratio of two medians a few percent
#: apart, and ten runs of a ~100 ms model on a shared machine move each median by about a percent.
STAGE_ROUNDS = 30


def pipeline(entry: dict, runners: list[Runner], image, runs: int, threads: int) -> None:
    """Pre-, post-processing and ``predict()`` end to end with the fastest variant at ``threads`` (the one
    an app would ship), beside that variant's own model run, in at least ``STAGE_ROUNDS`` rounds."""
    timed = [r for r in runners if r.kind == VARIANT and r.threads == threads and r.reload is not None]
    if not timed:
        return
    fastest = min(timed, key=lambda r: record_of(entry, r)["latency"][str(threads)]["p50_ms"])
    stages = time_stages(fastest.reload(), image, max(runs, STAGE_ROUNDS))
    entry["stages"] = {"variant": fastest.name, "threads": threads, **stages}
