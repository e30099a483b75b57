"""The main job: checkpoint -> artifact directory (ONNX, ORT-mobile, Core ML) + manifest.

Everything is assembled in a staging directory and swapped into place only when every target was
exported and validated, so a failed or interrupted build leaves the previous output (or nothing).
"""

from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from edgeforge import __version__
from edgeforge.atomic import atomic_directory
from edgeforge.environment import package_versions
from edgeforge.errors import EdgeforgeError
from edgeforge.export.onnx import DEFAULT_OPSET, export_onnx
from edgeforge.export.validate import validate_onnx
from edgeforge.families import SEGMENTATION
from edgeforge.runtime.manifest import write_manifest
from edgeforge.zoo.checkpoints import load_checkpoint

TARGETS = ("onnx", "ort", "coreml")
DEFAULT_TARGETS = ("onnx", "ort", "coreml")
TOOLS = ("torch", "transformers", "onnx", "onnxruntime", "coremltools", "numpy", "Pillow")


def parse_targets(text: str | tuple | list) -> tuple[str, ...]:
    names = [t.strip() for t in text.split(",")] if isinstance(text, str) else list(text)
    unknown = [t for t in names if t not in TARGETS]
    if unknown or not names:
        raise EdgeforgeError(f"unknown target(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    if "onnx" not in names:
        names.insert(0, "onnx")  # ORT and validation start from the ONNX graph
    return tuple(dict.fromkeys(names))


def build(
    source: str | Path,
    out_dir: str | Path,
    targets=DEFAULT_TARGETS,
    trust_pickle: bool = False,
    opset: int = DEFAULT_OPSET,
    validation_images: list | None = None,
    log=print,
    fold: bool = True,
    optimize: bool = True,
    postprocess_in_graph: bool = False,
) -> dict:
    """Export ``source`` (local checkpoint dir or hub id) to ``out_dir``; returns the manifest.

    ``fold`` / ``optimize``: the family's exact rewrites and onnxruntime fusions (both off = plain
    export); ``postprocess_in_graph``: also write onnx/model_labels.onnx (segmentation only).
    """
    targets = parse_targets(targets)
    started = time.perf_counter()
    step = _Steps(log, total=2 + len(targets) + int(postprocess_in_graph))
    with step("loading checkpoint"):
        checkpoint = load_checkpoint(source, trust_pickle=trust_pickle)
    if postprocess_in_graph and checkpoint.family.task != SEGMENTATION:
        raise EdgeforgeError(f"--postprocess-in-graph makes label maps: {checkpoint.family.task} models have none")
    images = validation_images or default_validation_images(checkpoint)
    variants: dict[str, dict] = {}
    # must_contain: never replace a non-empty directory that is not an earlier artifact (say, -o ~/photos).
    with atomic_directory(out_dir, must_contain="manifest.json") as staging, tempfile.TemporaryDirectory() as work:
        _save_configs(checkpoint, staging)
        onnx_path = staging / "onnx" / "model.onnx"
        # Before onnxruntime's fusions: ORT-mobile converts it (NNAPI / Core ML take standard ops only).
        exported = Path(work) / "exported.onnx"
        with step("exporting ONNX and validating against PyTorch"):
            export_onnx(checkpoint, exported, opset=opset, fold=fold)
            graph = _optimize_graph(exported, onnx_path, checkpoint, fold, optimize, log)
            if graph["rewrites"] or graph["optimizer"]:
                from edgeforge.export.fold import validate_against_stock

                validation = validate_against_stock(checkpoint, onnx_path, images)
            else:
                validation = validate_onnx(checkpoint, onnx_path, images)
        variants["fp32"] = {"file": "onnx/model.onnx", "format": "onnx", "precision": "fp32", "graph": graph,
                            "validation": validation}
        log(f"      max |logit diff| vs PyTorch {validation['max_abs_diff']:.2e}, "
            + ", ".join(f"{k} {v:.4%}" for k, v in validation.items() if k.endswith("agreement")))
        if postprocess_in_graph:
            with step("adding in-graph post-processing (uint8 label map output)"):
                variants["labels"] = _build_label_graph(checkpoint, onnx_path, staging / "onnx" / "model_labels.onnx",
                                                        images)
        if "ort" in targets:
            with step("converting to ORT format (ONNX Runtime Mobile)"):
                variants["ort"] = _build_ort(exported, staging / "ort", images, checkpoint)
        if "coreml" in targets:
            with step("converting to Core ML (.mlpackage, fp16)"):
                variants["coreml"] = _build_coreml(checkpoint, staging / "coreml" / "model.mlpackage")
        with step("writing manifest"):
            manifest = write_manifest(staging, {
                "source": {"checkpoint": str(source), "model_type": checkpoint.config.model_type,
                           "task": checkpoint.family.task, "architecture": checkpoint.config.architectures[0]},
                "created_by": f"edgeforge {__version__}",
                "tools": package_versions(TOOLS),
                "machine": {"system": platform.system(), "machine": platform.machine(), "python": sys.version.split()[0]},
                "variants": variants,
            })
    log(f"built {out_dir} in {time.perf_counter() - started:.1f} s")
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


def _optimize_graph(exported: Path, onnx_path: Path, checkpoint, fold: bool, optimize: bool, log) -> dict:
    """onnx/model.onnx from the exported graph: onnxruntime's fusions for the family, or the graph as is.
    Returns the manifest's record of what was applied."""
    family = checkpoint.family
    graph = {"rewrites": list(family.torch_rewrites) if fold else [], "optimizer": None}
    if not (optimize and family.fusion_profile):
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(exported, onnx_path)
        return graph
    from edgeforge.export.optimize import missing_fusions, optimize_onnx

    graph["optimizer"] = optimize_onnx(exported, onnx_path, family.fusion_profile)
    fused = graph["optimizer"]["fused_operators"]
    log("      fused: " + (", ".join(f"{count} {op}" for op, count in fused.items()) or "nothing"))
    if missing_fusions(graph["optimizer"]):
        log(f"      warning: expected fusions did not fire: {', '.join(missing_fusions(graph['optimizer']))}")
    return graph


def _build_label_graph(checkpoint, onnx_path: Path, out_path: Path, images: list) -> dict:
    import numpy as np

    from edgeforge.export.postprocess_graph import add_label_map_output, validate_label_graph

    add_label_map_output(onnx_path, out_path, len(checkpoint.config.id2label), checkpoint.family.output_name)
    pixel_values = checkpoint.image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)
    validation = validate_label_graph(out_path, onnx_path, pixel_values, [image.size for image in images])
    return {"file": f"onnx/{out_path.name}", "format": "onnx", "precision": "fp32", "output": "label_map",
            "inputs": {checkpoint.family.input_name: "float32 (batch, 3, height, width)",
                       "output_size": "int64 [height, width] of the label map"},
            "validation": validation}


def _build_ort(onnx_path: Path, out_dir: Path, images: list, checkpoint) -> dict:
    import numpy as np

    from edgeforge.export.ort_mobile import compare_ort_with_onnx, export_ort

    pixel_values = checkpoint.image_processor(images[:1], return_tensors="np")["pixel_values"].astype(np.float32)
    usability = export_ort(onnx_path, out_dir, list(pixel_values.shape))
    diff = compare_ort_with_onnx(out_dir / "model.ort", onnx_path, pixel_values)
    return {"file": "ort/model.ort", "format": "ort", "precision": "fp32",
            "validation": {"max_abs_diff_vs_onnx": diff}, "mobile_usability": usability}


def _build_coreml(checkpoint, path: Path) -> dict:
    from edgeforge.export.coreml import export_coreml, validate_coreml

    export_coreml(checkpoint, path)
    return {"file": "coreml/model.mlpackage", "format": "coreml", "precision": "fp16",
            "validation": validate_coreml(path, checkpoint)}


def default_validation_images(checkpoint) -> list:
    """Two synthetic images with real structure (not noise), one square and one not."""
    from edgeforge.data.synth import make_sample

    kind = "expressions" if checkpoint.family.task == "image-classification" else "faces"
    first, _ = make_sample(kind, 0, seed=1234, size=256)
    second, _ = make_sample(kind, 1, seed=1234, size=256)
    return [first, second.resize((320, 240))]


class _Steps:
    """Numbered, timed progress lines: `[2/5] exporting ONNX ... 1.3 s`."""

    def __init__(self, log, total: int):
        self.log, self.total, self.done = log, total, 0

    def __call__(self, title: str):
        import contextlib

        @contextlib.contextmanager
        def running():
            self.done += 1
            started = time.perf_counter()
            yield
            self.log(f"[{self.done}/{self.total}] {title} ... {time.perf_counter() - started:.1f} s")

        return running()
