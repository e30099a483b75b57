"""Exact graph speed-ups, measured on the full-size models: plain fp32 export vs folded vs folded+optimized.

Models (architecture-faithful, seeded random weights; speed does not depend on the weights' values):
SegFormer-b2 (clothes-parsing) and SegFormer-b5 (face-parsing) at 512x512, ViT-base (facial-emotions) at 224.
Variants, each an fp32 ONNX graph run by onnxruntime's CPU provider, batch 1:

    plain      torch.onnx export of the stock model (`edgeforge export --no-fold --no-optimize`)
    folded     + the family's exact torch rewrites (SegFormer: folded decode head, NCHW Mix-FFN)
    optimized  + onnxruntime's transformer fusions = what `edgeforge build` writes as onnx/model.onnx
    extended   optimized, saved again by onnxruntime at ORT_ENABLE_EXTENDED (offline optimisation;
               measured here to show whether shipping it would help; it is not shipped)

All sessions of a model run round-robin (order rotated each round), so noise from a shared machine
lands on every variant alike; ratios are the median over rounds of plain/variant within one round.
Intra-op spinning is off: spinning threads would steal time from other processes on a shared host
and make the CPU-time column meaningless. GFLOP/s = the variant's own FLOPs (torch FlopCounterMode:
matmuls and convolutions, 1 multiply-add = 2 FLOPs) / median latency.

For segmentation, in-graph post-processing (onnx/model_labels.onnx: Resize + ArgMax -> uint8) is
timed against the logits graph + the runtime's numpy ``resize_logits_argmax``, at --output-size.

    python experiments/perf_graph.py [--work DIR] [--models clothes-parsing,face-parsing,facial-emotions]
                                    [--rounds 6] [--threads 2] [--output-size 768x1024] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = {"clothes-parsing": "SegFormer-b2", "face-parsing": "SegFormer-b5", "facial-emotions": "ViT-base"}
VARIANTS = ("plain", "folded", "optimized", "extended")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", help="directory for checkpoints and graphs (checkpoints reused if present)")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--rounds", type=int, default=6, help="interleaved timing rounds (default 6)")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads per session (default 2)")
    parser.add_argument("--output-size", default="768x1024", help="label-map HxW for post-processing timing")
    parser.add_argument("--reuse-graphs", action="store_true", help="reuse graphs already exported in --work")
    parser.add_argument("--json", help="write all figures to this JSON file")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.models.split(",")]
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {list(MODELS)}")
    if args.work:
        return run(Path(args.work), names, args)
    with tempfile.TemporaryDirectory(prefix="perf-graph-") as work:
        return run(Path(work), names, args)


def run(work: Path, names: list[str], args) -> int:
    from edgeforge.benchmarks.machine import machine_info, versions

    height, width = (int(v) for v in args.output_size.lower().split("x"))
    results = {"machine": machine_info(), "versions": versions(), "threads": args.threads, "rounds": args.rounds,
               "models": {}}
    print(f"load average at start: {_load_average()}", file=sys.stderr)
    for name in names:
        log(f"== {MODELS[name]} ({name})")
        graphs, checkpoint, fusion = prepare(work / name, name, args.reuse_graphs)
        size = _input_size(checkpoint)
        x = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
        entry = {"input": [1, 3, *size], "fused_operators": fusion["fused_operators"],
                 "gflops": count_gflops(checkpoint, size)}
        entry["variants"] = time_variants(graphs, x, args.rounds, args.threads)
        for variant, figures in entry["variants"].items():
            gflops = entry["gflops"]["plain" if variant == "plain" else "folded"]
            figures["gflop_per_s"] = gflops / (figures["wall_p50_ms"] / 1e3)
        if "labels" in graphs:
            entry["postprocess"] = time_postprocess(graphs["optimized"], graphs["labels"], x, (height, width),
                                                    args.rounds, args.threads)
        entry["load_average_after"] = _load_average()
        results["models"][name] = entry
        print_model(MODELS[name], entry)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


# --- graphs ------------------------------------------------------------------------------------------
def prepare(work: Path, name: str, reuse: bool) -> tuple[dict[str, Path], object, dict]:
    """Checkpoint (made once) and the four graphs (+ the label-map graph for segmentation)."""
    from edgeforge.contract import SEGMENTATION
    from edgeforge.export.onnx import export_onnx
    from edgeforge.export.optimize import optimize_onnx
    from edgeforge.export.postprocess_graph import add_label_map_output
    from edgeforge.zoo.checkpoints import load_checkpoint, make_checkpoint

    work.mkdir(parents=True, exist_ok=True)
    if not (work / "checkpoint" / "config.json").is_file():
        log("   making the full-size checkpoint")
        make_checkpoint(name, work / "checkpoint")
    checkpoint = load_checkpoint(work / "checkpoint")
    graphs = {variant: work / f"{variant}.onnx" for variant in VARIANTS}
    fusion_file = work / "fusion.json"
    fresh = not (reuse and all(p.is_file() for p in graphs.values()) and fusion_file.is_file())
    if fresh:
        for variant, fold in (("plain", False), ("folded", True)):
            log(f"   exporting {variant}")
            export_onnx(checkpoint, graphs[variant], fold=fold)
        log("   optimizing")
        fusion_file.write_text(json.dumps(optimize_onnx(graphs["folded"], graphs["optimized"],
                                                        checkpoint.family.fusion)))
        save_offline_extended(graphs["optimized"], graphs["extended"])
    if checkpoint.family.task == SEGMENTATION:
        graphs["labels"] = work / "labels.onnx"
        if fresh or not graphs["labels"].is_file():
            add_label_map_output(graphs["optimized"], graphs["labels"], len(checkpoint.config.id2label))
    return graphs, checkpoint, json.loads(fusion_file.read_text())


def save_offline_extended(src: Path, dst: Path) -> None:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])


def count_gflops(checkpoint, size: tuple[int, int]) -> dict:
    """GFLOPs of one image through the stock model and through the rewritten one."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from edgeforge.export.rewrite import rewrite_model

    figures = {}
    for variant, model in (("plain", checkpoint.model),
                           ("folded", rewrite_model(checkpoint.model, checkpoint.family.rewrites))):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(pixel_values=torch.zeros(1, 3, *size))
        figures[variant] = counter.get_total_flops() / 1e9
    return figures


# --- timing ------------------------------------------------------------------------------------------
def session(path: Path, threads: int, level=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if level is not None:
        options.graph_optimization_level = level
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_variants(graphs: dict[str, Path], x: np.ndarray, rounds: int, threads: int) -> dict:
    from edgeforge.benchmarks.latency import Timed, round_robin, summarize

    sessions, created = {}, {}
    for variant in VARIANTS:
        started = time.perf_counter()
        sessions[variant] = session(graphs[variant], threads)
        created[variant] = (time.perf_counter() - started) * 1e3
    outputs = {v: s.run(None, {"pixel_values": x})[0] for v, s in sessions.items()}
    cpu = {variant: [] for variant in VARIANTS}
    items = [Timed(v, _cpu_timed(lambda s=s: s.run(None, {"pixel_values": x}), cpu[v])) for v, s in sessions.items()]
    log(f"   timing {len(items)} sessions x {rounds} rounds")
    wall = round_robin(items, runs=rounds, warmup=1)
    figures = {}
    for variant in VARIANTS:
        summary = summarize(wall[variant])
        cpu_runs = cpu[variant][-rounds:]  # the warm-up call is recorded first
        figures[variant] = {
            "wall_p50_ms": summary["p50_ms"], "wall_min_ms": summary["min_ms"],
            "cpu_p50_ms": float(np.median(cpu_runs)) * 1e3,
            "ratio_wall": _round_ratio(wall["plain"], wall[variant]),
            "ratio_cpu": _round_ratio(cpu["plain"][-rounds:], cpu_runs),
            "session_creation_ms": created[variant],
            "max_abs_diff_vs_plain": float(np.abs(outputs[variant] - outputs["plain"]).max()),
            "argmax_agreement_vs_plain": float((outputs[variant].argmax(1) == outputs["plain"].argmax(1)).mean()),
            "wall_samples_ms": summary["samples_ms"],
        }
    return figures


def time_postprocess(optimized: Path, labels: Path, x: np.ndarray, size: tuple[int, int], rounds: int,
                     threads: int) -> dict:
    """Logits graph + numpy resize/argmax vs the label-map graph, to a (height, width) label map."""
    from edgeforge.benchmarks.latency import Timed, round_robin, summarize
    from edgeforge.export.postprocess_graph import run_label_graph
    from edgeforge.runtime.postprocess import resize_logits_argmax

    logits_session, labels_session = session(optimized, threads), session(labels, threads)
    numpy_post = []

    def numpy_path():
        logits = logits_session.run(None, {"pixel_values": x})[0]
        started = time.perf_counter()
        label_map = resize_logits_argmax(logits[0], *size)
        numpy_post.append(time.perf_counter() - started)
        return label_map

    in_graph = run_label_graph(labels_session, x, size)[0]
    agreement = float((numpy_path() == in_graph).mean())
    items = [Timed("numpy", numpy_path), Timed("in_graph", lambda: run_label_graph(labels_session, x, size))]
    log(f"   timing post-processing to {size[0]}x{size[1]}")
    wall = round_robin(items, runs=rounds, warmup=1)
    return {
        "output_size": list(size),
        "label_agreement": agreement,
        "logits_plus_numpy_p50_ms": summarize(wall["numpy"])["p50_ms"],
        "numpy_postprocess_p50_ms": summarize(numpy_post[-rounds:])["p50_ms"],
        "in_graph_p50_ms": summarize(wall["in_graph"])["p50_ms"],
        "ratio_numpy_over_in_graph": _round_ratio(wall["numpy"], wall["in_graph"]),
    }


def _cpu_timed(call, samples: list):
    def timed():
        started = time.process_time()
        call()
        samples.append(time.process_time() - started)

    return timed


def _round_ratio(baseline: list[float], candidate: list[float]) -> float:
    """Median over rounds of baseline/candidate, each pair timed in the same round."""
    return float(np.median(np.asarray(baseline) / np.asarray(candidate)))


# --- output ------------------------------------------------------------------------------------------
def print_model(title: str, entry: dict) -> None:
    gflops = entry["gflops"]
    print(f"\n{title}, input {'x'.join(map(str, entry['input']))}; GFLOPs stock {gflops['plain']:.1f}, "
          f"rewritten {gflops['folded']:.1f}; fused: "
          + (", ".join(f"{n} {op}" for op, n in entry["fused_operators"].items()) or "nothing"))
    print(f"  {'variant':10s} {'wall p50':>10s} {'x plain':>8s} {'cpu p50':>10s} {'x plain':>8s} {'GFLOP/s':>8s} "
          f"{'load ms':>8s} {'max|diff|':>10s}")
    for variant, f in entry["variants"].items():
        print(f"  {variant:10s} {f['wall_p50_ms']:8.0f}ms {f['ratio_wall']:7.2f}x {f['cpu_p50_ms']:8.0f}ms "
              f"{f['ratio_cpu']:7.2f}x {f['gflop_per_s']:8.1f} {f['session_creation_ms']:8.0f} "
              f"{f['max_abs_diff_vs_plain']:10.1e}")
    post = entry.get("postprocess")
    if post:
        print(f"  post-processing to {post['output_size'][0]}x{post['output_size'][1]}: logits + numpy "
              f"{post['logits_plus_numpy_p50_ms']:.0f} ms (numpy part {post['numpy_postprocess_p50_ms']:.0f} ms) vs "
              f"in-graph {post['in_graph_p50_ms']:.0f} ms = {post['ratio_numpy_over_in_graph']:.2f}x; "
              f"label agreement {post['label_agreement']:.4%}")
    print(f"  load average after: {entry['load_average_after']}")


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _input_size(checkpoint) -> tuple[int, int]:
    from edgeforge.export.onnx import input_size

    return input_size(checkpoint.image_processor)


def _load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
