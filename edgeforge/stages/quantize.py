"""Stage 2: ``quantize(artifact_dir, ...)``: make the requested precisions, hold each to the accuracy budget,
and record them in the artifact directory (transformers.js names) and its manifest.

Which target makes a precision, with which default recipe and how, is the target's declaration
(``edgeforge.targets``); this module prepares what every precision shares (images, drift meter, budget),
runs them and commits the result. All work happens in a temporary directory; the artifact directory is then
updated in one swap (a hard-linked staging copy gets the new files and the manifest, written last), so an
interrupted run leaves the previous complete directory. A variant that cannot meet the budget is not
written: the manifest lists it under ``rejected_variants`` with its drift, and a previous file of that name
is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from edgeforge.atomic import atomic_directory
from edgeforge.contract import (
    DEFAULT_MAX_DRIFT,
    REFERENCE_VARIANT,
    SEGMENTATION,
    VARIANTS,
    VariantEntry,
)
from edgeforge.environment import package_versions
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.budget import Budget
from edgeforge.quantize.calibration import (
    Calibration,
    ImageSet,
    folder_images,
    split_images,
    synthetic_images,
)
from edgeforge.quantize.confidence import default_eval_images
from edgeforge.quantize.drift import DriftMeter, drift_text
from edgeforge.runtime.artifact import Artifact, companion_files
from edgeforge.runtime.manifest import MANIFEST_NAME, read_manifest, write_manifest
from edgeforge.targets import TARGETS, parse_precisions, target_of_precision

TOOLS = ("onnxruntime", "onnx", "coremltools", "scikit-learn")


@dataclass
class VariantJob:
    """What every precision of one run is made with (a target's ``make_precision`` reads it)."""

    root: Path
    meter: DriftMeter
    budget: Budget
    work: Path
    log: Callable[[str], None]
    fp32_path: Path
    fp32_size: int
    calibration_pixel_values: object  # (N, 3, H, W) float32
    input_name: str
    threads: int | None
    keep_float: Iterable[str] | Mapping[str, Iterable[str]]
    node_costs: Mapping[str, float] | None
    _shared: dict = field(default_factory=dict)

    def held_float(self, name: str) -> frozenset[str]:
        """The node names the caller asked to hold float in precision ``name`` (a list for all, or per precision)."""
        asked = self.keep_float.get(name, ()) if isinstance(self.keep_float, Mapping) else self.keep_float
        return frozenset(asked)

    def shared(self, make: Callable):
        """One ``make(job)`` per run, for what a target's precisions share (e.g. the prepared ONNX graph)."""
        if make not in self._shared:
            self._shared[make] = make(self)
        return self._shared[make]


def quantize(
    artifact_dir: str | Path,
    precisions=None,
    calibration: Calibration | str | Path | None = None,
    budget: Budget | float | None = DEFAULT_MAX_DRIFT,
    recipes: Mapping | None = None,
    keep_float: Iterable[str] | Mapping[str, Iterable[str]] = (),
    node_costs: Mapping[str, float] | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Make ``precisions`` (default: every precision of every target the artifact holds) of the artifact at
    ``artifact_dir``; returns the report (also stored in the manifest).

    ``calibration``: a ``Calibration`` (or just its image folder): the first ``num_images`` readable images
    calibrate, the next ``eval_images`` measure drift (when the folder has no more, the calibration images do,
    and the manifest says so); without a folder, synthetic images suited to the model's labels. ``budget``:
    a ``Budget`` or its ``max_drift`` in points (see ``drift``), checked on an upper confidence bound of the
    drift (``Budget.confidence``); ``None``: no budget, for random weights (nothing to keep: every precision is
    built once with the float choices of ``keep_float``, drift not measured); the model family's ``quantize_together``
    patterns set which nodes the search decides as one unit. ``recipes``: precision -> recipe, overriding a
    target's default (see ``recipes.with_options``). ``keep_float``: ONNX node names held in float in every
    variant whose recipe would quantize them (or a mapping precision -> names); the search decides the rest.
    ``node_costs``: node name -> fp32 ms that the search's cost order weighs nodes by (see ``budget``);
    default: measured here on this graph. Pass the times of the model you will ship (another device, or the
    full-size model a mini stands for) to choose the float set that is cheapest there.
    """
    root = Path(artifact_dir)
    artifact = _open_artifact(root)
    calibration = calibration if isinstance(calibration, Calibration) else Calibration(calibration)
    budget = budget if isinstance(budget, Budget) else Budget(budget)
    unchecked = budget.max_drift is None
    budget = replace(budget, together=budget.together or _quantized_together(artifact))
    names = parse_precisions(precisions) if precisions is not None else _default_precisions(root, log)
    maker = {name: target_of_precision(name) for name in names}
    chosen = {name: (recipes or {}).get(name) or maker[name].precisions[name] for name in names}
    for name, target in maker.items():  # before any image is made: what this artifact and this machine cannot do
        base = VARIANTS[target.base_variant]
        if not (root / base.file).exists():
            raise EdgeforgeError(f"{root} has no {base.file}, which {name} is made from: build it with "
                                 f"--targets onnx,{target.name} first")
        if target.missing():
            raise EdgeforgeError(f"{name} needs {', '.join(target.missing())}: pip install 'edgeforge[{target.name}]'")
        if target.unavailable(name):
            raise EdgeforgeError(f"{name} cannot be made on this machine: {target.unavailable(name)}")
    eval_count = 0 if unchecked else calibration.eval_images  # no budget: no drift to measure
    if eval_count is None:
        eval_count = default_eval_images(artifact.task == SEGMENTATION, budget.max_drift, budget.confidence)
    images = _images(artifact, calibration.folder, calibration.num_images + eval_count, log)
    calibration_set, eval_set = split_images(images, calibration.num_images)
    started = time.perf_counter()
    held_out = "held out" if eval_set is not calibration_set else "the calibration images themselves"
    checked = (f"the budget checked on the {budget.confidence:.0%} upper bound" if budget.confidence
               else "the budget checked on the estimate alone")
    if unchecked:
        log(f"calibrating on {len(calibration_set.images)} image(s) from {calibration_set.source}; no accuracy "
            "budget (random weights): drift not measured")
    else:
        log(f"calibrating on {len(calibration_set.images)} image(s), measuring drift on {len(eval_set.images)} "
            f"({held_out}) from {eval_set.source}; {checked}")
    meter = DriftMeter(root, eval_set.images, threads=threads, confidence=budget.confidence)
    fp32_path = root / artifact.variant_file(REFERENCE_VARIANT)
    produced, rejected = {}, {}
    with tempfile.TemporaryDirectory(prefix="edgeforge-quantize-") as work:
        job = VariantJob(root, meter, budget, Path(work), log, fp32_path, fp32_path.stat().st_size,
                         meter.preprocessor(calibration_set.images), meter.input_name, threads, keep_float, node_costs)
        for name, recipe in chosen.items():
            step_started = time.perf_counter()
            log(f"[{name}] {VARIANTS[name].precision} ({recipe.kind})")
            path, details = maker[name].make_precision(job, name, recipe)
            entry = VariantEntry.of(name, **details, build_seconds=round(time.perf_counter() - step_started, 1))
            if path is None:
                rejected[name] = entry.to_json()
                log(f"[{name}] REJECTED: drift {drift_text(details['drift'])} > budget {budget.max_drift}")
            else:
                produced[name] = (path, entry.to_json())
                log(f"[{name}] {_summary(entry.to_json())}")
        info = _quantization_info(calibration_set, eval_set, budget, time.perf_counter() - started,
                                  node_costs is not None)
        manifest = _commit(root, produced, rejected, info)
    return {"artifact": str(root), **info, "variants": {n: manifest["variants"][n] for n in produced},
            "rejected": rejected}


def _summary(entry: dict) -> str:
    drift = entry.get("drift", {})
    size = f"{entry['size_bytes'] / 1e6:.2f} MB"
    if "size_vs_fp32" in entry:
        size += f" ({entry['size_vs_fp32']:.1%} of fp32)"
    figure = f"drift {drift_text(drift)}" if "drift_points" in drift else drift.get("status", "")
    if "drift_points" in drift and drift.get("budget_points") is not None:
        figure += (f", within the {drift['budget_points']:g}-point budget" if drift.get("passed")
                   else f", over the {drift['budget_points']:g}-point budget")
        figure += f" on {drift['num_images']} held-out image(s)" if drift.get("num_images") else ""
    kept = f", {len(entry['nodes_kept_float'])} node(s) kept float" if entry.get("nodes_kept_float") else ""
    return f"{entry['file']}: {size}, {figure}{kept}"


def _open_artifact(root: Path) -> Artifact:
    artifact = Artifact.open(root)
    if artifact.manifest is None:
        raise EdgeforgeError(f"{root} has no manifest.json: quantize an artifact directory made by `edgeforge build`")
    fp32 = root / artifact.variant_file(REFERENCE_VARIANT)
    if not fp32.is_file():
        raise EdgeforgeError(f"{fp32} is missing: the fp32 ONNX model is the reference every variant is made from")
    return artifact


def _quantized_together(artifact: Artifact) -> tuple[str, ...]:
    """The family's units for the search (``Family.quantize_together``); none for a model type not declared."""
    from edgeforge.families import FAMILIES

    family = FAMILIES.get(artifact.config.get("model_type"))
    return family.quantize_together if family else ()


def _default_precisions(root: Path, log) -> tuple[str, ...]:
    """Every precision of every target whose base file the artifact holds and this machine can make."""
    names = []
    for target in TARGETS.values():
        if not (root / VARIANTS[target.base_variant].file).exists() or target.missing():
            continue
        for name in target.precisions:
            reason = target.unavailable(name)
            if reason:
                log(f"[{name}] not made: {reason}")
            else:
                names.append(name)
    return tuple(names)


def _images(artifact: Artifact, folder, count: int, log) -> ImageSet:
    if folder is not None:
        return folder_images(folder, count, log)
    labels = [artifact.id2label[i] for i in sorted(artifact.id2label)]
    return synthetic_images(artifact.task, labels, count)


def _quantization_info(calibration_set: ImageSet, eval_set: ImageSet, budget: Budget, seconds: float,
                       costs_given: bool) -> dict:
    return {
        "calibration_set": {"source": calibration_set.source, "num_images": len(calibration_set.images),
                            "images": calibration_set.names, "skipped_files": len(calibration_set.skipped)},
        "eval_set": {"source": eval_set.source, "num_images": len(eval_set.images), "images": eval_set.names,
                     "held_out": eval_set is not calibration_set,
                     "reference": "the fp32 ONNX model's own predictions on these images"},
        "max_drift_points": budget.max_drift,
        "confidence": budget.confidence or None,  # None: the budget was checked on the estimate alone
        "search": {"sensitivity_images": budget.sensitivity_images, "max_float_fraction": budget.max_float_fraction,
                   "max_probes": budget.max_probes, "quantized_together": list(budget.together),
                   "node_costs": "given by the caller" if costs_given else "measured on this graph (fp32, one "
                                 "calibration image)"},
        "tools": package_versions(TOOLS),
        "seconds": round(seconds, 1),
    }


def _commit(root: Path, produced: dict, rejected: dict, info: dict) -> dict:
    """Swap in a copy of ``root`` holding the new files, with the manifest rewritten last."""
    with atomic_directory(root, replaces=MANIFEST_NAME) as staging:
        shutil.copytree(root, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
        manifest = read_manifest(staging)
        variants = manifest.setdefault("variants", {})
        for name, (path, entry) in produced.items():
            variants[name] = entry
            if path.resolve() == (root / entry["file"]).resolve():
                continue  # a precision of a file the artifact already holds (OpenVINO's bf16 compute)
            target = staging / entry["file"]
            for source in [path, *(path.parent / name for name in companion_files(path))]:  # with its weights
                destination = target.with_suffix(source.suffix)
                _remove(destination)
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(source), str(destination))
        for name in rejected:
            previous = variants.pop(name, None)
            in_use = {entry.get("file") for entry in variants.values()}
            if previous is not None and previous["file"] not in in_use:  # another variant may run the same file
                for leftover in [previous["file"], *companion_files(staging / previous["file"])]:
                    _remove(staging / Path(previous["file"]).parent / Path(leftover).name)
        earlier = {k: v for k, v in manifest.get("rejected_variants", {}).items() if k not in produced}
        manifest["rejected_variants"] = {**earlier, **rejected}
        manifest["quantization"] = info
        manifest.pop("files", None)
        return write_manifest(staging, manifest)


def _link_or_copy(source: str, target: str) -> None:
    """Hard links make the staging copy instant; files are replaced, never edited in place, so sharing is safe."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
