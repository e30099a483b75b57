"""`edgeforge run`: predict images with an artifact directory (runtime only) or a checkpoint."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from edgeforge.errors import EdgeforgeError


def register(sub) -> None:
    run = sub.add_parser(
        "run",
        help="run a model on images: label-map PNG, colour overlay PNG and JSON per image",
        description="Run an artifact directory (or a checkpoint, exported on the fly) on images. Writes, per "
        "image, NAME.labels.png (class id per pixel), NAME.overlay.png and NAME.json for segmentation, "
        "NAME.json (scores) for classification. A bad image is reported and skipped; exit status 1 if any failed. "
        "NAME.json, written last, records the input's and the model's sha256: running the same command again keeps "
        "the images already done and predicts the rest.",
    )
    run.add_argument("model", help="artifact directory, or a checkpoint directory / hub id (needs edgeforge[build])")
    run.add_argument("images", nargs="+", help="image files")
    run.add_argument("-o", "--output", required=True, help="output directory")
    run.add_argument("--variant", default="fp32",
                     help="fp32, fp16, quantized, int8, uint8, q4, ort, openvino*, litert* (default fp32)")
    run.add_argument("--provider", default="auto",
                     help="execution provider(s), comma-separated: auto, cpu, cuda, coreml, nnapi, xnnpack")
    run.add_argument("--strict-provider", action="store_true", help="fail instead of falling back to CPU")
    run.add_argument("--threads", type=int, default=None,
                     help="intra-op threads (default: onnxruntime's choice; with --ray, 1 per actor)")
    run.add_argument("--no-verify", action="store_true", help="skip the sha256 check against manifest.json")
    cluster = run.add_argument_group(
        "on a Ray cluster (pip install 'edgeforge[ray]')",
        "The artifact directory, the images and the output folder must be on a path every node sees. Outputs are "
        "the same bytes as a local run; an image already done (same input bytes and model) is kept, so the same "
        "command finishes an interrupted run.")
    cluster.add_argument("--ray", metavar="HOST:PORT", help="the head's address, as `ray start --head` prints it")
    cluster.add_argument("--workers", type=int, default=None,
                         help="model replicas (Ray actors, each with --threads CPUs; default: the cluster's CPUs "
                         "divided by --threads)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (--ray)")
    run.set_defaults(func=_run)


def _run(args) -> int:
    from edgeforge.atomic import output_directory
    from edgeforge.runtime import load

    providers = "auto" if args.provider == "auto" else args.provider.split(",")
    if args.ray:
        return _run_on_cluster(args, providers)
    output_directory(args.output)  # before the model is loaded
    with _artifact_dir(args.model) as artifact:
        model = load(artifact, variant=args.variant, providers=providers, strict_providers=args.strict_provider,
                     threads=args.threads, verify=not args.no_verify)
        return predict_files(model, args.images, Path(args.output))


def _run_on_cluster(args, providers) -> int:
    from edgeforge.distributed.predict import ClusterRun, predict_on_cluster
    from edgeforge.predictions import FAILED, WRITTEN

    if not (Path(args.model) / "manifest.json").is_file():
        raise EdgeforgeError(f"{args.model} is not an artifact directory (no manifest.json): --ray runs built "
                             "artifacts (edgeforge build) from a path every node sees")
    if args.workers is not None and args.workers < 1:
        raise EdgeforgeError("--workers must be at least 1")
    cluster = ClusterRun(args.ray, threads=args.threads or 1, workers=args.workers)
    outcomes = predict_on_cluster(args.model, args.images, args.output, cluster, variant=args.variant,
                                  providers=providers, verify=not args.no_verify, progress=not args.no_progress)
    for outcome in outcomes:
        if outcome.status == FAILED:
            print(f"edgeforge: error: {outcome.line}", file=sys.stderr)
    print(f"{sum(o.status == WRITTEN for o in outcomes)} image(s) predicted into {args.output} on the cluster")
    return summarize([o.status for o in outcomes], len(outcomes))


def predict_files(model, images: list[str], out_dir: Path) -> int:
    """Predict ``images`` one by one into ``out_dir`` (``edgeforge.predictions``); 1 if any failed."""
    from edgeforge.atomic import output_directory, remove_stale_partial_files
    from edgeforge.predictions import FAILED, model_sha256, output_stems, predict_one

    output_directory(out_dir)
    remove_stale_partial_files(out_dir)  # what a killed run was writing
    outcomes, digest = [], model_sha256(model)
    for path, stem in zip(images, output_stems(images)):
        outcome = predict_one(model, digest, path, out_dir, stem)
        print(f"edgeforge: error: {outcome.line}" if outcome.status == FAILED else outcome.line,
              file=sys.stderr if outcome.status == FAILED else sys.stdout)
        outcomes.append(outcome.status)
    return summarize(outcomes, len(images))


def summarize(statuses: list[str], total: int) -> int:
    """The closing line of a run (stderr when something failed) and its exit status."""
    from edgeforge.predictions import DONE_BEFORE, FAILED

    failures, kept = statuses.count(FAILED), statuses.count(DONE_BEFORE)
    if kept:
        print(f"{kept} of {total} image(s) were done before (same input and model) and kept")
    if failures:
        print(f"edgeforge: {failures} of {total} image(s) failed", file=sys.stderr)
    return 1 if failures else 0


class _artifact_dir:
    """An artifact directory as given, or a temporary ONNX export of a checkpoint / hub id."""

    def __init__(self, model: str):
        self.model = model
        self.tmp = None

    def __enter__(self) -> Path:
        path = Path(self.model)
        if (path / "onnx").is_dir() or (path / "manifest.json").is_file():
            return path
        try:
            from edgeforge.stages import build
        except ImportError:
            raise EdgeforgeError(
                f"{self.model} is not an artifact directory; running a checkpoint needs pip install 'edgeforge[build]'"
            ) from None
        self.tmp = tempfile.TemporaryDirectory(prefix="edgeforge-run-")
        out = Path(self.tmp.name) / "artifact"
        build(self.model, out, targets=("onnx",), log=lambda line: print(line, file=sys.stderr))
        return out

    def __exit__(self, *exc):
        if self.tmp is not None:
            self.tmp.cleanup()
