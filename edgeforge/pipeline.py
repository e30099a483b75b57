"""The main job end to end: checkpoint -> artifacts -> quantized variants -> benchmark report.

Each stage is its own function (``stages.build``, ``stages.quantize``, ``benchmarks.bench``);
this module only chains them, in the one direction data flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeforge.contract import DEFAULT_MAX_DRIFT
from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE
from edgeforge.errors import EdgeforgeError

BENCH_MODES = ("quick", "full", "none")


@dataclass(frozen=True)
class PipelineOptions:
    targets: tuple[str, ...] | None = None  # None: every registered target
    precisions: str | None = None  # None: every precision the targets allow; "none": skip quantization
    calibration: str | Path | None = None  # image folder; None: synthetic images matching the labels
    max_drift: float = DEFAULT_MAX_DRIFT
    confidence: float = DEFAULT_CONFIDENCE  # the budget is checked on this upper bound of the drift; 0: the estimate
    bench: str = "quick"  # quick | full | none
    report_dir: str | Path | None = None  # default: OUT/../NAME-report
    dataset: str | Path | None = None  # for drift in the report; None: synthetic
    trust_pickle: bool = False
    opset: int = 17
    fold: bool = True
    optimize: bool = True
    postprocess_in_graph: bool = False

    def check(self) -> None:
        if self.bench not in BENCH_MODES:
            raise EdgeforgeError(f"unknown bench mode {self.bench!r}; choose from {', '.join(BENCH_MODES)}")
        from edgeforge.quantize.budget import Budget

        Budget(self.max_drift, confidence=self.confidence)  # checks both, before minutes of export, not after


def default_report_dir(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    return out_dir.with_name(f"{out_dir.name}-report")


def run_pipeline(source: str | Path, out_dir: str | Path, options: PipelineOptions = PipelineOptions(),
                 log=print) -> dict:
    """Build, quantize and benchmark ``source`` into ``out_dir``; returns {manifest, quantize, report}.

    All three stages work on one staging copy of the artifact, swapped in once at the very end: a build
    killed or failing at any stage leaves the previous ``out_dir`` byte for byte (or nothing)."""
    from edgeforge.atomic import atomic_directory
    from edgeforge.runtime.manifest import MANIFEST_NAME
    from edgeforge.stages import build, quantize
    from edgeforge.targets import default_targets, parse_precisions, parse_targets

    options.check()
    targets = parse_targets(options.targets or default_targets())
    quantizing = options.precisions != "none"
    if quantizing and options.precisions is not None:
        parse_precisions(options.precisions)  # a bad name fails before the export, not after
    out_dir = Path(out_dir)
    report_dir = Path(options.report_dir) if options.report_dir else default_report_dir(out_dir)
    if options.bench != "none":
        from edgeforge.benchmarks.report import check_report_dir

        check_report_dir(report_dir)
    result = {}
    with atomic_directory(out_dir, replaces=MANIFEST_NAME) as staging:
        result["manifest"] = build(source, staging, targets=targets, trust_pickle=options.trust_pickle,
                                   opset=options.opset, fold=options.fold, optimize=options.optimize,
                                   postprocess_in_graph=options.postprocess_in_graph, log=log, staged=True)
        if quantizing:
            from edgeforge.quantize.budget import Budget

            log("quantizing ...")
            result["quantize"] = quantize(staging, precisions=options.precisions, calibration=options.calibration,
                                          budget=Budget(options.max_drift, confidence=options.confidence), log=log)
            result["quantize"]["artifact"] = str(out_dir)
        if options.bench != "none":
            from edgeforge.benchmarks.run import BenchOptions, bench

            bench_options = BenchOptions.quick() if options.bench == "quick" else BenchOptions()
            log(f"benchmarking ({options.bench}) ...")
            result["report"] = bench(staging, dataset=options.dataset, report_dir=report_dir, options=bench_options,
                                     name=out_dir.resolve().name, checkpoint=str(source), log=log,
                                     recorded_path=str(out_dir))
            log(f"report: {report_dir / 'report.md'}")
    log(f"wrote {out_dir}")
    return result
