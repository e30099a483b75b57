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
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from edgeforge.benchmarks import baselines as base
from edgeforge.benchmarks.options import BenchOptions
from edgeforge.benchmarks.report import check_report_dir, slug
from edgeforge.benchmarks.runners import (
    BASELINE,
    VARIANT,
    Runner,
    RunnerKey,
    load_model,
    runtime_runner,
)
from edgeforge.benchmarks.size import compressed_sizes, variant_size
from edgeforge.benchmarks.timing import (
    cold_start,
    efficiency,
    latency,
    pipeline,
    record_of,
    speedups,
    step,
    throughput,
)
from edgeforge.benchmarks.variants import (
    check_artifact_dir,
    drift_budget,
    list_variants,
    manifest_notes,
    load_reference,
)
from edgeforge.contract import REFERENCE_VARIANT, SEGMENTATION, VARIANTS
from edgeforge.errors import EdgeforgeError

REPORT_FORMAT = "edgeforge-bench/1"


def bench(artifact_dir: str | Path, dataset: str | Path | None = None, report_dir: str | Path | None = None,
          options: BenchOptions | None = None, name: str | None = None, checkpoint: str | None = None,
          log=None, recorded_path: str | None = None) -> dict:
    """Benchmark every variant of ``artifact_dir``; write report.json/.md and plots to ``report_dir``
    (atomically) when given; return the report dict. ``recorded_path``: the artifact's path as the report
    names it, when it is measured in a staging copy (``pipeline.run_pipeline``)."""
    options = options or BenchOptions()
    log = log or _stderr
    check_artifact_dir(Path(artifact_dir))  # before minutes of measuring the machine
    if report_dir is not None:
        check_report_dir(report_dir)
    if options.ray and options.accuracy:
        from edgeforge.distributed.cluster import preflight

        if dataset is None:
            raise EdgeforgeError("--ray computes drift over a dataset: give --dataset DIR on a path every node sees")
        preflight(options.ray)
        dataset = Path(dataset).resolve()  # the nodes read it from the same path
    report = start_report(options, log)
    entry, assets = bench_model(artifact_dir, dataset, options, name=name, checkpoint=checkpoint, log=log)
    if recorded_path is not None:
        entry["artifact"] = recorded_path
    report["models"].append(entry)
    if report_dir is not None:
        from edgeforge.benchmarks.report import write_report

        write_report(report, report_dir, assets)
        log(f"report written to {report_dir}")
    return report


def start_report(options: BenchOptions, log) -> dict:
    """Machine, versions, settings and the machine's measured peaks (at every thread count)."""
    from edgeforge.benchmarks.machine import machine_info, versions
    from edgeforge.benchmarks.peak import measure_peak_gflops

    options.check()
    threads = options.thread_counts()
    with step(log, "measuring the engines' matrix-product peaks"):
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
    with step(log, f"loading {root}"):
        reference = load_reference(root, full)
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
    entry["notes"].extend(manifest_notes({**variants, **skipped}))
    with step(log, "measuring sizes (raw, gzip, zstd)"):
        for variant, info in variants.items():
            entry["variants"][variant] = {**info, "size": variant_size(root, info["file"], manifest)}
        for variant, info in skipped.items():
            entry["skipped"][variant] = {**info, "size": variant_size(root, info["file"], manifest)}
    budget = drift_budget(options, entry["variants"], manifest)
    entry["drift_budget_points"] = budget
    assets: dict[str, bytes] = {}
    verify = manifest is not None
    with tempfile.TemporaryDirectory(prefix="edgeforge-bench-") as tmp:
        work = Path(tmp)
        from edgeforge.benchmarks.dataset import open_bench_dataset

        with step(log, "preparing dataset"):
            data = open_bench_dataset(dataset, reference.task, label_names, work, options.synthetic_samples,
                                      max(height, width), options.max_samples, options.progress, log)
        entry["dataset"] = data.info
        first_image = data.dataset[0].image
        pixel_values, _ = reference.preprocess([first_image])
        calibration, _ = reference.preprocess([data.dataset[i].image for i in range(min(8, data.count))])
        baseline_info = _prepare_baselines(options, checkpoint_source, reference.task, work, entry, log, calibration)
        providers = _providers(options)
        runners = _make_runners(root, variants, baseline_info, threads, providers, verify, entry, log)
        entry["providers"] = providers
        _record_descriptions(entry, runners, baseline_info, providers, root)
        with step(log, "timing session creation (cold start, in process)"):
            cold_start(entry, root, runners, full, verify, baseline_info, options.session_repeats)
        for count in threads:
            batch_runners = [r for r in runners if r.threads == count]
            with step(log, f"latency, batch 1, {count} thread(s), {options.runs} interleaved runs"):
                latency(entry, batch_runners, pixel_values, options, count)
        runners = [r for r in runners if r.threads == full]  # the others' sessions are done: free their memory
        gc.collect()
        with step(log, f"throughput, batch {options.throughput_batch}, {full} thread(s)"):
            throughput(entry, runners, pixel_values, options, full)
        with step(log, "pre- and post-processing"):
            pipeline(entry, runners, first_image, max(options.runs, 5), full)
        speedups(entry, threads)
        efficiency(entry, root, height, width, log)
        if options.accuracy and options.ray:
            with step(log, f"drift over {data.count} image(s) on the Ray cluster at {options.ray}"):
                _drift_on_cluster(entry, root, data, options)
            assets.update(_side_by_side(entry, reference, data))
        elif options.accuracy:
            with step(log, f"drift over {data.count} image(s)"):
                _drift(entry, reference, data, runners, options)
            assets.update(_side_by_side(entry, reference, data))
        else:
            entry["notes"].append("drift not measured (accuracy disabled)")
        if options.accuracy and options.baseline_budget and budget is not None and baseline_info["plain_onnx"]:
            from edgeforge.benchmarks.baseline_budget import check_baselines

            with step(log, "the baselines' drift on the build's held-out images, with its bound"):
                check_baselines(entry, root, baseline_info, budget, log)
        del runners
        if options.memory:
            with step(log, "peak memory, one child process per variant"):
                _memory(entry, root, baseline_info, full, [1, 3, height, width])
    from edgeforge.benchmarks.recommend import judge

    judge(entry, budget, threads)
    entry["seconds"] = time.perf_counter() - started
    return entry, assets


def _providers(options: BenchOptions) -> list[str]:
    from edgeforge.runtime.providers import choose_providers

    return choose_providers(options.providers)


# --- baselines --------------------------------------------------------------------------------------
def _prepare_baselines(options: BenchOptions, checkpoint_source: str | None, task: str, work: Path, entry: dict,
                       log, calibration) -> dict:
    """{"checkpoint": loaded or None, "source": str, "plain_onnx": PlainOnnx or None, "peers": [Peer]}, notes for
    what is missing; ``calibration``: pixel values NNCF's default int8 peer calibrates on."""
    info = {"checkpoint": None, "source": checkpoint_source, "plain_onnx": None, "peers": []}
    if not options.baselines:
        entry["notes"].append("baselines not measured (disabled)")
        return info
    if not checkpoint_source:
        entry["notes"].append("baselines skipped: the manifest names no source checkpoint (use --checkpoint)")
        return info
    try:
        with step(log, f"loading the source checkpoint {checkpoint_source} (PyTorch baseline)"):
            info["checkpoint"] = base.load_pytorch(checkpoint_source)
    except EdgeforgeError as exc:
        entry["notes"].append(f"baselines skipped: source checkpoint unavailable ({exc})")
        return info
    with step(log, "exporting the plain ONNX baseline"):
        info["plain_onnx"] = base.export_plain_onnx(checkpoint_source, task, work / "baseline", info["checkpoint"])
    if info["plain_onnx"].note:
        entry["notes"].append(info["plain_onnx"].note)
    with step(log, "converting the plain export for the OpenVINO peers (f32, bf16, NNCF default int8)"):
        info["peers"], note = base.openvino_peers(info["plain_onnx"], calibration, work / "openvino-peers")
    if note:
        entry["notes"].append(note)
    if any(v.get("format") == "tflite" for v in entry["variants"].values()):
        with step(log, "converting the stock model for the LiteRT peer (litert-torch, no rewrites)"):
            peers, note = base.litert_peers(info["checkpoint"], work / "litert-peers")
        info["peers"] += peers
        if note:
            entry["notes"].append(note)
    return info


def _make_runners(root: Path, variants: dict, baseline_info: dict, threads: list[int], providers: list[str],
                  verify: bool, entry: dict, log) -> list[Runner]:
    """Sessions for every (variant, provider, thread count) and baseline. A variant onnxruntime cannot
    load (say, an operator this build lacks) moves to ``skipped`` with the reason instead of ending the run."""
    runners = []
    with step(log, "creating sessions"):
        for count in threads:
            for provider in providers:
                for variant in [v for v in variants if v not in entry["skipped"]]:
                    key = RunnerKey(VARIANT, variant, provider, count, qualified=len(providers) > 1)
                    try:
                        runners.append(runtime_runner(key, root, verify=verify))
                    except EdgeforgeError as exc:
                        entry["skipped"][variant] = {**entry["variants"].pop(variant), "reason": f"cannot run: {exc}"}
                        runners = [r for r in runners if not (r.kind == VARIANT and r.key.name == variant)]
            if baseline_info["checkpoint"] is not None:
                runners.append(Runner(RunnerKey(BASELINE, base.PYTORCH, "PyTorch CPU", count),
                                      base.pytorch_forward(baseline_info["checkpoint"]), dynamic_batch=True,
                                      prepare=base.pytorch_threads(count)))
            plain = baseline_info["plain_onnx"]
            if plain is not None:
                runners.append(runtime_runner(RunnerKey(BASELINE, plain.name, "CPUExecutionProvider", count), root,
                                              model_file=plain.path))
            for peer in baseline_info["peers"]:
                runners.append(runtime_runner(RunnerKey(BASELINE, peer.name, peer.provider, count), root,
                                              model_file=peer.path, variant=peer.variant))
    return runners


def _record_descriptions(entry: dict, runners: list[Runner], baseline_info: dict, providers: list[str],
                         root: Path) -> None:
    """Variant entries for every (variant, provider) runner, baseline entries with their sizes."""
    for runner in runners:
        if runner.kind == VARIANT:
            record = entry["variants"].setdefault(runner.name, dict(entry["variants"][runner.key.name]))
            record["provider"], record["engine"] = runner.provider, runner.engine
            record["compute"] = VARIANTS[runner.key.name].compute
        elif runner.name not in entry["baselines"]:
            record = {"kind": BASELINE, "label": base.LABELS[runner.name], "provider": runner.provider,
                      "engine": runner.engine, "precision": "fp32",
                      "format": {"pytorch": "pytorch", "openvino": "openvino", "litert": "tflite"}.get(runner.engine, "onnx")}
            peer = next((p for p in baseline_info["peers"] if p.name == runner.name), None)
            if peer is not None:
                from edgeforge.runtime.artifact import companion_files

                record["precision"], record["compute"] = VARIANTS[peer.variant].precision, VARIANTS[peer.variant].compute
                record["file"] = "(converted in a temporary directory)"
                files = [peer.path, *(peer.path.parent / name for name in companion_files(peer.path))]
                record["size"] = {**compressed_sizes(files), "files": [p.name for p in files]}
            elif runner.name == base.PYTORCH:
                weights = _checkpoint_weights(baseline_info["source"])
                record["file"] = baseline_info["source"]
                if weights:
                    record["size"] = {**compressed_sizes(weights), "files": [p.name for p in weights]}
            else:
                record["file"] = "(exported to a temporary directory)"
                record["size"] = {**compressed_sizes([baseline_info["plain_onnx"].path]), "files": ["model.onnx"]}
            entry["baselines"][runner.name] = record
    if len(providers) > 1:  # the unqualified entries were placeholders for the per-provider ones
        for name in [n for n, record in entry["variants"].items() if "provider" not in record]:
            del entry["variants"][name]


def _checkpoint_weights(source: str | None) -> list[Path]:
    if not source or not Path(source).is_dir():
        return []
    return sorted(Path(source).glob("*.safetensors"))


# --- drift ------------------------------------------------------------------------------------------
def _drift(entry: dict, reference, data, runners: list[Runner], options: BenchOptions) -> None:
    from edgeforge.benchmarks.accuracy import measure_drift

    for runner in runners:
        if runner.prepare is not None:
            runner.prepare()
    candidates = {r.name: r.forward for r in runners if not (r.kind == VARIANT and r.name == REFERENCE_VARIANT)}
    result = measure_drift(data.samples, reference, candidates, data.use_labels, total=data.count,
                           progress=options.progress, description=f"drift {entry['name']}")
    _record_drift(entry, result)
    for runner in runners:
        if runner.name in result["candidates"]:
            record_of(entry, runner)["drift"] = result["candidates"][runner.name]


def _record_drift(entry: dict, result: dict, **where) -> None:
    """A drift result's dataset-level figures, and fp32's row (the reference, with its ground-truth scores)."""
    entry["drift"] = {**{k: v for k, v in result.items() if k != "candidates"}, **where}
    if REFERENCE_VARIANT in entry["variants"]:
        entry["variants"][REFERENCE_VARIANT]["drift"] = {"reference": True, "drift_points": 0.0,
                                                         "ground_truth": result["fp32_ground_truth"]}


def _drift_on_cluster(entry: dict, root: Path, data, options: BenchOptions) -> None:
    """The variants' drift computed by ``edgeforge.distributed.drift`` (figures equal to ``_drift``'s); the
    baselines exist only on this machine, so their drift is left out."""
    from edgeforge.distributed.drift import drift_on_cluster

    on_cpu = [record for record in entry["variants"].values()
              if record.get("provider", "CPUExecutionProvider") == "CPUExecutionProvider"]
    variants = sorted({record["variant"] for record in on_cpu if record["variant"] != REFERENCE_VARIANT})
    result = drift_on_cluster(options.ray, root, data.dataset, variants, data.use_labels, threads=options.ray_threads,
                              progress=options.progress, description=f"drift {entry['name']}")
    _record_drift(entry, result, computed_on=f"Ray cluster {options.ray}")
    for record in on_cpu:
        if record["variant"] in result["candidates"]:
            record["drift"] = result["candidates"][record["variant"]]
    if entry["baselines"]:
        entry["notes"].append("drift of the baselines not measured: with --ray, drift is computed on the cluster, "
                              "and the baselines exist only on this machine")


def _side_by_side(entry: dict, reference, data) -> dict[str, bytes]:
    """Input, fp32 mask, variant mask and disagreement for the variant that drifts most, on the image
    where it disagrees most (segmentation only)."""
    if reference.task != SEGMENTATION:
        return {}
    drifted = {n: v["drift"] for n, v in entry["variants"].items()
               if n != REFERENCE_VARIANT and (v.get("drift") or {}).get("drift_points") is not None and v["drift"].get("worst_image")}
    if not drifted:
        return {}
    worst = max(drifted, key=lambda n: drifted[n]["drift_points"])
    image = data.dataset[drifted[worst]["worst_image"]["index"]].image
    from edgeforge.benchmarks.plots import side_by_side

    pixel_values, _ = reference.preprocess([image])
    fp32_map = reference.postprocess(reference.forward(pixel_values), [image.size])[0].label_map
    variant_model = load_model(Path(entry["artifact"]), entry["threads"][0], "CPUExecutionProvider",
                               entry["variants"][worst]["variant"], verify=reference.artifact.manifest is not None)
    variant_map = variant_model.postprocess(variant_model.forward(pixel_values), [image.size])[0].label_map
    file_name = f"{slug(entry['name'])}-side-by-side.png"
    entry["side_by_side"] = {"variant": worst, "image": drifted[worst]["worst_image"]["path"],
                             "plot": f"plots/{file_name}"}
    return {file_name: side_by_side(image, fp32_map, variant_map, reference.id2label, entry["name"], worst)}


# --- memory -----------------------------------------------------------------------------------------
def _memory(entry: dict, root: Path, baseline_info: dict, threads: int, input_shape: list[int]) -> None:
    from edgeforge.benchmarks.memory import measure_in_child, pytorch_spec, runtime_spec

    for record in entry["variants"].values():
        if record.get("provider", "CPUExecutionProvider") != "CPUExecutionProvider":
            record["memory"] = {"skipped": "measured on the CPU provider only"}
            continue
        record["memory"] = measure_in_child(runtime_spec(str(root.resolve()), threads, input_shape,
                                                         variant=record["variant"]))
    plain = baseline_info["plain_onnx"]
    if plain is not None:
        entry["baselines"][plain.name]["memory"] = measure_in_child(
            runtime_spec(str(root.resolve()), threads, input_shape, model_file=str(plain.path)))
    if baseline_info["checkpoint"] is not None:
        source = baseline_info["source"]
        source = str(Path(source).resolve()) if Path(source).exists() else source
        entry["baselines"][base.PYTORCH]["memory"] = measure_in_child(pytorch_spec(source, threads, input_shape))


# --- helpers ----------------------------------------------------------------------------------------
def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
