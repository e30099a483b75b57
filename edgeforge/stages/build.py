"""Stage 1: checkpoint -> artifact directory holding every requested target's files + manifest.

Each target's export is its own declaration (``edgeforge.targets``); this module only loads the checkpoint,
runs them in order and writes the manifest. Everything is assembled in a staging directory and swapped into
place only when every target was exported and validated, so a failed or interrupted build leaves the
previous output (or nothing).
"""

from __future__ import annotations

import contextlib
import platform
import sys
import tempfile
import time
from pathlib import Path

from edgeforge import __version__
from edgeforge.atomic import atomic_directory
from edgeforge.contract import CLASSIFICATION
from edgeforge.environment import package_versions
from edgeforge.errors import EdgeforgeError
from edgeforge.export.onnx import DEFAULT_OPSET
from edgeforge.runtime.manifest import MANIFEST_NAME, write_manifest
from edgeforge.targets import TARGETS, ExportJob, default_targets, parse_targets
from edgeforge.zoo.checkpoints import load_checkpoint

TOOLS = ("torch", "transformers", "onnx", "onnxruntime", "coremltools", "numpy", "Pillow")


def build(
    source: str | Path,
    out_dir: str | Path,
    targets=None,
    trust_pickle: bool = False,
    opset: int = DEFAULT_OPSET,
    validation_images: list | None = None,
    log=print,
    fold: bool = True,
    optimize: bool = True,
    postprocess_in_graph: bool = False,
    staged: bool = False,
) -> dict:
    """Export ``source`` (local checkpoint dir or hub id) to ``out_dir`` for ``targets``; returns the manifest.

    ``fold`` / ``optimize``: the family's exact rewrites and onnxruntime fusions (both off = plain
    export); ``postprocess_in_graph``: also write onnx/model_labels.onnx (segmentation only).
    ``staged``: ``out_dir`` is an empty staging directory that the caller swaps into place itself
    (``pipeline.run_pipeline`` stages all three stages in one); otherwise ``out_dir`` is replaced atomically.
    """
    targets = parse_targets(targets if targets is not None else default_targets())
    started = time.perf_counter()
    step = _Steps(log, total=2 + len(targets))
    with step("loading checkpoint"):
        checkpoint = load_checkpoint(source, trust_pickle=trust_pickle)
    images = validation_images or default_validation_images(checkpoint)
    variants: dict[str, dict] = {}
    if staged and (not Path(out_dir).is_dir() or any(Path(out_dir).iterdir())):
        raise EdgeforgeError(f"{out_dir}: a staged build writes into an empty directory")
    output = contextlib.nullcontext(Path(out_dir)) if staged else atomic_directory(out_dir, replaces=MANIFEST_NAME)
    with output as staging, tempfile.TemporaryDirectory() as work:
        _save_configs(checkpoint, staging)
        job = ExportJob(checkpoint, staging, Path(work), images, opset=opset, fold=fold, optimize=optimize,
                        postprocess_in_graph=postprocess_in_graph, log=log)
        for name in targets:
            target = TARGETS[name]
            with step(target.title):
                variants.update({variant: entry.to_json() for variant, entry in target.export(job).items()})
        with step("writing manifest"):
            manifest = write_manifest(staging, {
                "source": {"checkpoint": str(source), "model_type": checkpoint.config.model_type,
                           "task": checkpoint.family.task, "architecture": checkpoint.config.architectures[0]},
                "created_by": f"edgeforge {__version__}",
                "tools": package_versions(TOOLS),
                "machine": {"system": platform.system(), "machine": platform.machine(), "python": sys.version.split()[0]},
                "variants": variants,
            })
    log(f"exported {len(variants)} variant(s) in {time.perf_counter() - started:.1f} s")
    return manifest


def _save_configs(checkpoint, root: Path) -> None:
    """config.json and preprocessor_config.json, as transformers, Optimum and transformers.js read them."""
    import json

    checkpoint.model.config.save_pretrained(root)
    checkpoint.image_processor.save_pretrained(root)
    # transformers.js loads model_quantized.onnx when no dtype is given; fp32 is the one variant always here.
    config = json.loads((root / "config.json").read_text())
    config["transformers.js_config"] = {"dtype": "fp32"}
    (root / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def default_validation_images(checkpoint) -> list:
    """Two synthetic images with real structure (not noise), one square and one not."""
    from edgeforge.data.synth import make_sample

    kind = "expressions" if checkpoint.family.task == CLASSIFICATION else "faces"
    first, _ = make_sample(kind, 0, seed=1234, size=256)
    second, _ = make_sample(kind, 1, seed=1234, size=256)
    return [first, second.resize((320, 240))]


class _Steps:
    """Numbered, timed progress lines: `[2/5] exporting ONNX ... 1.3 s`."""

    def __init__(self, log, total: int):
        self.log, self.total, self.done = log, total, 0

    @contextlib.contextmanager
    def __call__(self, title: str):
        self.done += 1
        started = time.perf_counter()
        yield
        self.log(f"[{self.done}/{self.total}] {title} ... {time.perf_counter() - started:.1f} s")
