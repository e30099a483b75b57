"""`edgeforge bench`: measure every variant of an artifact next to its baselines; optional regression gate."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    bench = sub.add_parser(
        "bench",
        help="benchmark every variant of an artifact: speed, size, memory, drift from fp32, vs PyTorch/Optimum",
        description="Measure every variant of an artifact directory (latency p50/p90/p99 at all cores and at 1 "
        "thread, throughput, cold start, size raw/gzip/zstd, peak memory in a child process, drift from fp32 "
        "over a dataset) next to PyTorch eager and Optimum's plain ONNX export of the same checkpoint, in one "
        "run. Writes report.json, report.md and plots/ to --report (atomically). With --compare OLD_report.json, "
        "exits 1 with one line per regression (slower or more drift) for build pipelines.",
    )
    bench.add_argument("artifact", metavar="ARTIFACT_DIR", help="artifact directory (edgeforge build output)")
    bench.add_argument("--dataset", metavar="DIR",
                       help="dataset folder (any layout `edgeforge data info` knows); default: a small synthetic "
                       "set matching the model's labels")
    bench.add_argument("--report", metavar="DIR", help="report directory to write (default reports/<artifact name>)")
    bench.add_argument("--threads", type=_positive, default=None,
                       help="intra-op threads for the main figures (default: all available cores); also measured "
                       "at 1 thread unless --quick")
    bench.add_argument("--runs", type=_positive, default=None, help="timed runs per variant (default 30; --quick 5)")
    bench.add_argument("--warmup", type=_non_negative, default=None, help="warm-up runs per variant (default 3)")
    bench.add_argument("--batch", type=_positive, default=None, help="batch for the throughput figure (default 8; "
                       "--quick 4)")
    bench.add_argument("--samples", type=_positive, default=None,
                       help="images in the synthetic dataset (default 16; --quick 4)")
    bench.add_argument("--max-samples", type=_positive, default=None, help="use at most this many dataset images")
    bench.add_argument("--checkpoint", help="source checkpoint for the baselines (default: manifest source.checkpoint)")
    bench.add_argument("--name", help="model name in the report (default: the artifact directory's name)")
    bench.add_argument("--provider", default="auto", help="execution providers to measure (default: all available)")
    bench.add_argument("--drift-budget", type=float, default=None,
                       help="drift budget in points for the recommendations (default: manifest's, else 0.5)")
    bench.add_argument("--no-baselines", action="store_true", help="skip PyTorch and Optimum baselines")
    bench.add_argument("--no-baseline-budget", action="store_true",
                       help="judge the baselines by this run's drift estimate only, not on the build's held-out images "
                       "with its bound (that scoring takes seconds for a mini, minutes for a trained full-size model; "
                       "--quick skips it)")
    bench.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    bench.add_argument("--no-drift", action="store_true", help="skip drift measurement")
    bench.add_argument("--quick", action="store_true",
                       help="smoke test: 5 runs, 1 warm-up, one thread count, throughput at batch 4, 4 synthetic "
                       "images, small peak matmul")
    bench.add_argument("--no-progress", action="store_true", help="no progress bars")
    cluster = bench.add_argument_group(
        "on a Ray cluster (pip install 'edgeforge[ray]')",
        "--ray with --dataset: drift and accuracy over the whole dataset are computed on the cluster (figures equal "
        "to a local run's), the rest here. --ray with --on-each-node: the latency/size/memory bench runs on every "
        "node in turn (a device farm), one report with a section per node. The artifact, dataset and checkpoint "
        "must be on a path every node sees.")
    cluster.add_argument("--ray", metavar="HOST:PORT", help="the head's address, as `ray start --head` prints it")
    cluster.add_argument("--ray-threads", type=_positive, default=1,
                         help="intra-op threads of each actor computing drift on the cluster (default 1)")
    cluster.add_argument("--on-each-node", action="store_true",
                         help="benchmark the artifact on every node of the cluster, one node at a time")
    cluster.add_argument("--node-resource", metavar="NAME",
                         help="with --on-each-node: only the nodes that have this Ray resource "
                         "(e.g. `ray start --resources '{\"arm-board\": 1}'`)")
    gate = bench.add_argument_group("regression gate")
    gate.add_argument("--compare", metavar="OLD_report.json", help="exit 1 if a variant regressed against this report")
    gate.add_argument("--slower-threshold", type=float, default=1.15,
                      help="p50 ratio new/old above which a variant counts as slower (default 1.15)")
    gate.add_argument("--drift-threshold", type=float, default=0.5,
                      help="drift increase in points above which a variant counts as drifted (default 0.5)")
    gate.add_argument("--max-drift", type=float, default=None, help="absolute drift ceiling in points (default none)")
    bench.set_defaults(func=_bench)


def options_from_args(args):
    from edgeforge.benchmarks.run import BenchOptions

    make = BenchOptions.quick if args.quick else BenchOptions
    overrides = {key: value for key, value in {
        "runs": args.runs, "warmup": args.warmup, "synthetic_samples": args.samples, "threads": args.threads,
        "throughput_batch": args.batch, "baseline_budget": False if args.no_baseline_budget else None,
    }.items() if value is not None}
    return make(max_samples=args.max_samples, baselines=not args.no_baselines,
                memory=not args.no_memory, accuracy=not args.no_drift, drift_budget=args.drift_budget,
                providers=args.provider, progress=not args.no_progress, ray=args.ray,
                ray_threads=args.ray_threads, **overrides)


def _bench(args) -> int:
    from pathlib import Path

    from edgeforge.benchmarks.compare import compare_reports
    from edgeforge.benchmarks.report import read_report
    from edgeforge.benchmarks.run import bench, slug

    old = read_report(args.compare) if args.compare else None  # read before the new report may replace it
    report_dir = Path(args.report) if args.report else Path("reports") / slug(Path(args.artifact).resolve().name)
    if args.on_each_node or args.node_resource:
        return _bench_each_node(args, report_dir)
    report = bench(args.artifact, dataset=args.dataset, report_dir=report_dir, options=options_from_args(args),
                   name=args.name, checkpoint=args.checkpoint)
    print_summary(report)
    print(f"report: {report_dir / 'report.md'}")
    if old is None:
        return 0
    regressions = compare_reports(old, report, args.slower_threshold, args.drift_threshold, args.max_drift)
    for regression in regressions:
        print(regression.line())
    if regressions:
        print(f"edgeforge: {len(regressions)} regression(s) against {args.compare}", file=sys.stderr)
        return 1
    print(f"no regression against {args.compare}")
    return 0


def _bench_each_node(args, report_dir) -> int:
    from pathlib import Path

    from edgeforge.benchmarks.farm import bench_each_node
    from edgeforge.benchmarks.report import check_report_dir, write_farm_report
    from edgeforge.benchmarks.variants import check_artifact_dir
    from edgeforge.distributed.cluster import preflight
    from edgeforge.errors import EdgeforgeError

    if not args.ray:
        raise EdgeforgeError("--on-each-node and --node-resource need --ray HOST:PORT")
    if args.compare or args.dataset:
        raise EdgeforgeError("--on-each-node times the variants on each node; use --compare and --dataset "
                             "with a single-machine run")
    check_artifact_dir(Path(args.artifact))
    check_report_dir(report_dir)
    preflight(args.ray)
    options = options_from_args(args)
    options.ray, options.accuracy = None, False  # drift does not depend on the node: one --ray --dataset run has it
    farm, figures = bench_each_node(args.ray, Path(args.artifact), options, name=args.name,
                                    checkpoint=args.checkpoint, resource=args.node_resource,
                                    log=lambda line: print(line, file=sys.stderr, flush=True))
    write_farm_report(farm, report_dir, figures)
    for section in farm["nodes"]:
        print(f"node {section['node']['number']} ({section['node']['address']}, {section['report']['machine']['cpu']}):")
        print_summary(section["report"])
    print(f"report: {report_dir / 'report.md'}")
    return 0


def print_summary(report: dict) -> None:
    """One line per variant: p50, size, drift and whether it is within the budget; then the recommendations."""
    from edgeforge.benchmarks.recommend import verdict_words

    for model in report["models"]:
        full = str(model["threads"][0])
        print(f"{model['name']} ({full} thread(s)):")
        for group in ("variants", "baselines"):
            for name, entry in model[group].items():
                p50 = entry.get("latency", {}).get(full, {}).get("p50_ms")
                drift = (entry.get("drift") or {}).get("drift_points")
                size = (entry.get("size") or {}).get("bytes")
                print(f"  {name:<16} p50 {_fmt(p50, 'ms')}  size {_fmt(size and size / 2 ** 20, 'MB')}  "
                      f"drift {_fmt(drift, 'pts')}  {verdict_words(entry.get('budget_verdict'))}".rstrip())
        for target, rec in (model.get("recommendations") or {}).items():
            print(f"  recommended for {target}: {rec['variant'] or 'none'}")


def _fmt(value, unit: str) -> str:
    return f"{value:8.2f} {unit}" if value is not None else f"{'–':>8} {unit}"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value
