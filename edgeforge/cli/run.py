"""`edgeforge run`: predict images with an artifact directory (runtime only) or a checkpoint."""

from __future__ import annotations

import json
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
        "NAME.json (scores) for classification. A bad image is reported and skipped; exit status 1 if any failed.",
    )
    run.add_argument("model", help="artifact directory, or a checkpoint directory / hub id (needs edgeforge[build])")
    run.add_argument("images", nargs="+", help="image files")
    run.add_argument("-o", "--output", required=True, help="output directory")
    run.add_argument("--variant", default="fp32", help="fp32, fp16, quantized, int8, uint8, q4, ort (default fp32)")
    run.add_argument("--provider", default="auto",
                     help="execution provider(s), comma-separated: auto, cpu, cuda, coreml, nnapi, xnnpack")
    run.add_argument("--strict-provider", action="store_true", help="fail instead of falling back to CPU")
    run.add_argument("--threads", type=int, default=None, help="intra-op threads (default: onnxruntime's choice)")
    run.add_argument("--no-verify", action="store_true", help="skip the sha256 check against manifest.json")
    run.set_defaults(func=_run)


def _run(args) -> int:
    from edgeforge.atomic import output_directory
    from edgeforge.runtime import load

    providers = "auto" if args.provider == "auto" else args.provider.split(",")
    output_directory(args.output)  # before the model is loaded
    with _artifact_dir(args.model) as artifact:
        model = load(artifact, variant=args.variant, providers=providers, strict_providers=args.strict_provider,
                     threads=args.threads, verify=not args.no_verify)
        return predict_files(model, args.images, Path(args.output))


def predict_files(model, images: list[str], out_dir: Path) -> int:
    from edgeforge.atomic import atomic_path, output_directory, write_text
    from edgeforge.runtime import SegmentationResult, load_image

    output_directory(out_dir)
    failures, used = 0, set()
    for path in images:
        try:
            image = load_image(path)
            result = model.predict(image)
        except EdgeforgeError as exc:
            print(f"edgeforge: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        stem = _unique_stem(Path(path).stem, used)
        summary = {"image": str(path), "variant": model.variant, **result.to_json()}
        if isinstance(result, SegmentationResult):
            with atomic_path(out_dir / f"{stem}.labels.png", suffix=".png") as tmp:
                result.label_image().save(tmp, format="PNG")
            with atomic_path(out_dir / f"{stem}.overlay.png", suffix=".png") as tmp:
                result.overlay(image).save(tmp, format="PNG")
            shares = ", ".join(f"{k} {v:.1%}" for k, v in list(result.pixel_shares().items())[:4])
            print(f"{path}: {shares}")
        else:
            top = ", ".join(f"{k} {v:.1%}" for k, v in list(result.scores().items())[:3])
            print(f"{path}: {top}")
        write_text(out_dir / f"{stem}.json", json.dumps(summary, indent=2) + "\n")
    if failures:
        print(f"edgeforge: {failures} of {len(images)} image(s) failed", file=sys.stderr)
    return 1 if failures else 0


def _unique_stem(stem: str, used: set) -> str:
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


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
