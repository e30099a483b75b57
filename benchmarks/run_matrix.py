"""The whole benchmark matrix, one combined report: ``reports/latest/report.md`` + ``report.json`` + plots.

    python benchmarks/run_matrix.py                 # everything (full-size models take a long while)
    python benchmarks/run_matrix.py --quick --only minis    # smoke test: minutes, not hours

Rows of the matrix:
  full size   the three reference architectures (``make_checkpoint(name)``: exact architecture, random
              weights) -> ``build`` -> quantize (when ``edgeforge.quantize.pipeline`` exists) -> latency,
              size, memory next to PyTorch / Optimum. No drift: random weights make it meaningless.
  minis       the trained minis shipped in ``edgeforge/zoo/trained/<name>-mini/`` (random-weight minis,
              labelled as such, when they are not there) -> build -> quantize -> everything, drift
              included, on a labelled synthetic set matching each model's labels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # every checkpoint here is local
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from edgeforge.errors import EdgeforgeError  # noqa: E402

NAMES = ("face-parsing", "clothes-parsing", "facial-emotions")
FULL, MINIS = "full", "minis"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=(FULL, MINIS, "all"), default="all", help="which rows to run (default all)")
    parser.add_argument("--models", default=",".join(NAMES), help="comma-separated subset of " + ", ".join(NAMES))
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 5 runs, 1 warm-up, one thread count, 4 synthetic images, small peak matmul")
    parser.add_argument("--report", default="reports/latest", help="report directory (default reports/latest)")
    parser.add_argument("--work", default=".bench-work", help="checkpoints and artifacts are built here")
    parser.add_argument("--reuse", action="store_true", help="reuse artifacts already built in --work")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per variant (default: minis 30, full 10)")
    parser.add_argument("--threads", type=int, default=None, help="main thread count (default: all cores)")
    parser.add_argument("--samples", type=int, default=None, help="synthetic images for drift (default 16)")
    parser.add_argument("--targets", default="onnx,ort", help="build targets (default onnx,ort; coreml adds minutes "
                        "and cannot be timed off macOS)")
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def options_for(row: str, args: argparse.Namespace):
    from edgeforge.benchmarks.run import BenchOptions

    overrides = {"baselines": not args.no_baselines, "memory": not args.no_memory, "progress": not args.no_progress,
                 "accuracy": row == MINIS}
    for key, value in (("runs", args.runs), ("threads", args.threads), ("synthetic_samples", args.samples)):
        if value is not None:
            overrides[key] = value
    if args.quick:
        return BenchOptions.quick(**overrides)
    if row == FULL:  # seconds per run at full size: fewer runs (still interleaved), a smaller throughput batch
        overrides = {"runs": 10, "warmup": 1, "throughput_batch": 4, "throughput_runs": 3, **overrides}
    return BenchOptions(**overrides)


def matrix_rows(args: argparse.Namespace) -> list[tuple[str, str]]:
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in NAMES]
    if unknown:
        raise EdgeforgeError(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    rows = [FULL, MINIS] if args.only == "all" else [args.only]
    return [(row, name) for row in rows for name in names]


def trained_mini(name: str) -> Path | None:
    """The shipped trained mini checkpoint of ``name``, or None when it is not (yet) shipped."""
    try:
        from edgeforge.zoo.shipped import trained_checkpoint
    except ImportError:
        import edgeforge.zoo

        path = Path(edgeforge.zoo.__file__).with_name("trained") / f"{name}-mini"
        return path if (path / "config.json").is_file() and (path / "model.safetensors").is_file() else None
    try:
        return trained_checkpoint(name)
    except EdgeforgeError:
        return None


def prepare_checkpoint(row: str, name: str, work: Path, log) -> tuple[Path, str]:
    """(checkpoint directory, report name saying what the weights are)."""
    from edgeforge.zoo.checkpoints import make_checkpoint

    if row == FULL:
        return make_checkpoint(name, work / "checkpoints" / name, mini=False, seed=0), f"{name} (full size, random weights)"
    trained = trained_mini(name)
    if trained is not None:
        return trained, f"{name}-mini (trained)"
    log(f"  no trained {name} mini shipped: using a random-weight mini")
    return make_checkpoint(name, work / "checkpoints" / f"{name}-mini", mini=True, seed=0), \
        f"{name}-mini (random weights)"


def quantize_artifact(artifact: Path, log) -> str | None:
    """Add quantized variants with ``edgeforge.quantize.pipeline.quantize`` when it exists; a note otherwise."""
    try:
        from edgeforge.quantize.pipeline import quantize
    except ImportError:
        return "edgeforge.quantize.pipeline is not available yet: fp32 and ORT variants only"
    started = time.perf_counter()
    try:
        quantize(artifact)
    except EdgeforgeError as exc:
        return f"quantization failed: {exc}"
    log(f"  quantized in {time.perf_counter() - started:.1f} s")
    return None


def build_artifact(checkpoint: Path, artifact: Path, targets: str, reuse: bool, log) -> list[str]:
    from edgeforge.export.build import build, parse_targets

    if reuse and (artifact / "manifest.json").is_file():
        log(f"  reusing {artifact}")
        return []
    build(checkpoint, artifact, targets=parse_targets(targets), log=lambda line: log("  " + line))
    note = quantize_artifact(artifact, log)
    return [note] if note else []


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from edgeforge.benchmarks.report import write_report
    from edgeforge.benchmarks.run import bench_model, slug, start_report

    args = parse_args(argv)
    rows = matrix_rows(args)
    log = lambda line: tqdm.write(line, file=sys.stderr)  # noqa: E731  (keeps the bars intact)
    work = Path(args.work)
    report = start_report(options_for(rows[0][0], args), log)  # machine + peak; each model records its own settings
    assets: dict[str, bytes] = {}
    started = time.perf_counter()
    for row, name in tqdm(rows, desc="matrix", unit="model", disable=args.no_progress):
        log(f"== {row}: {name}")
        checkpoint, label = prepare_checkpoint(row, name, work, log)
        artifact = work / "artifacts" / slug(label)
        notes = build_artifact(checkpoint, artifact, args.targets, args.reuse, log)
        options = options_for(row, args)
        entry, extra = bench_model(artifact, None, options, name=label, checkpoint=str(checkpoint), log=log)
        entry["notes"] = notes + entry["notes"]
        entry["matrix_row"] = row
        report["models"].append(entry)
        assets.update(extra)
    report["seconds"] = time.perf_counter() - started
    write_report(report, args.report, assets)
    print(f"wrote {Path(args.report) / 'report.md'} ({len(rows)} model(s) in {report['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except EdgeforgeError as exc:
        print(f"run_matrix: error: {exc}", file=sys.stderr)
        sys.exit(2)
