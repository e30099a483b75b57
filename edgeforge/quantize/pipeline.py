"""``quantize(artifact_dir, ...)``: make the requested variants, hold each to the accuracy budget, and
record them in the artifact directory (transformers.js names) and its manifest.

All work happens in a temporary directory; the artifact directory is then updated in one swap (a
hard-linked staging copy gets the new files and the manifest, written last), so an interrupted run
leaves the previous complete directory. A variant that cannot meet the budget is not written: the
manifest lists it under ``rejected_variants`` with its drift, and a previous file of that name is removed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from edgeforge.atomic import atomic_directory
from edgeforge.environment import package_versions
from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.budget import Budget, Outcome, fit_to_budget
from edgeforge.quantize.calibration import ImageSet, folder_images, split_images, synthetic_images
from edgeforge.quantize.drift import DriftMeter
from edgeforge.quantize.recipes import (
    COREML_PRECISIONS,
    ONNX_PRECISIONS,
    VARIANTS,
    DynamicInt8Recipe,
    Fp16Recipe,
    HybridInt8Recipe,
    Int4Recipe,
    StaticInt8Recipe,
    Variant,
    parse_precisions,
)
from edgeforge.runtime.artifact import Artifact
from edgeforge.runtime.manifest import read_manifest, write_manifest

DEFAULT_MAX_DRIFT = 0.5  # points of mIoU vs fp32 (segmentation) or of top-1 agreement (classification)
DEFAULT_NUM_IMAGES = 8  # calibration images
#: Drift is measured on images the calibration did not see: a budget checked on the calibration images
#: themselves reads low (measured: 0.49 on them vs 0.56 points on other images for the same variant).
DEFAULT_EVAL_IMAGES = 16
COREML_SOURCE = "coreml/model.mlpackage"
TOOLS = ("onnxruntime", "onnx", "coremltools", "scikit-learn")


def quantize(
    artifact_dir: str | Path,
    precisions=None,
    calibration: str | Path | None = None,
    max_drift: float = DEFAULT_MAX_DRIFT,
    num_images: int = DEFAULT_NUM_IMAGES,
    eval_images: int = DEFAULT_EVAL_IMAGES,
    variants: dict[str, Variant] | None = None,
    sensitivity_images: int = 2,
    max_float_fraction: float = 0.5,
    max_probes: int = 48,
    keep_float: Iterable[str] | Mapping[str, Iterable[str]] = (),
    node_costs: Mapping[str, float] | None = None,
    threads: int | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Make ``precisions`` (default: every ONNX one, plus the Core ML ones when the artifact has a Core ML
    package) of the artifact at ``artifact_dir``; returns the report (also stored in the manifest).

    ``calibration``: a folder of images: the first ``num_images`` readable ones calibrate, the next
    ``eval_images`` measure drift (when the folder has no more, the calibration images do, and the
    manifest says so); without it, synthetic images suited to the model's labels. ``max_drift``: the budget in
    points (see ``drift``). ``variants`` overrides recipes by name (see ``recipes.with_options``).
    ``sensitivity_images``, ``max_float_fraction``, ``max_probes``: the search (see ``budget``); the model
    family's ``quantize_together`` patterns (``edgeforge.families``) set which nodes it decides as one unit.
    ``keep_float``: ONNX node names held in float in every variant whose recipe would quantize them (or a
    mapping precision -> names); the search decides the rest. ``node_costs``: node name -> fp32 ms that the
    search's cost order weighs nodes by (see ``budget``); default: measured here on this graph. Pass the
    times of the model you will ship (another device, or the full-size model a mini stands for) to choose
    the float set that is cheapest there.
    """
    root = Path(artifact_dir)
    artifact = _open_artifact(root)
    names = parse_precisions(precisions) if precisions is not None else _default_precisions(root)
    chosen = {name: (variants or {}).get(name, VARIANTS[name]) for name in names}
    if max_drift < 0:
        raise EdgeforgeError(f"--max-drift must be 0 or more points, not {max_drift}")
    if num_images < 1:
        raise EdgeforgeError(f"the number of calibration images must be at least 1, not {num_images}")
    if eval_images < 0:
        raise EdgeforgeError(f"the number of evaluation images must be 0 or more, not {eval_images}")
    if any(v.format == "coreml" for v in chosen.values()) and not (root / COREML_SOURCE).is_dir():
        raise EdgeforgeError(f"{root} has no {COREML_SOURCE}: build it with --targets onnx,coreml first")
    calibration_set, eval_set = split_images(_images(artifact, calibration, num_images + eval_images, log), num_images)
    budget = Budget(max_drift, sensitivity_images, max_float_fraction, max_probes, _quantized_together(artifact))
    started = time.perf_counter()
    held_out = "held out" if eval_set is not calibration_set else "the calibration images themselves"
    log(f"calibrating on {len(calibration_set.images)} image(s), measuring drift on {len(eval_set.images)} "
        f"({held_out}) from {eval_set.source}")
    meter = DriftMeter(root, eval_set.images, threads=threads)
    fp32_size = (root / artifact.variant_file("fp32")).stat().st_size
    produced, rejected = {}, {}
    with tempfile.TemporaryDirectory(prefix="edgeforge-quantize-") as work:
        work = Path(work)
        context = _BuildContext(root / artifact.variant_file("fp32"), meter.preprocessor(calibration_set.images),
                                meter.input_name, work, threads)
        held_float = _held_float(keep_float, chosen, context)
        if node_costs is not None:
            context.use_node_costs(_checked_costs(node_costs, context))
        for name, variant in chosen.items():
            step_started = time.perf_counter()
            log(f"[{name}] {variant.precision} ({variant.recipe.kind})")
            if variant.format == "coreml":
                path, entry = _make_coreml(root, variant, meter, work)
            else:
                outcome = fit_to_budget(context.quantizer(variant), meter, budget, work, name, log,
                                        held_float.get(name, frozenset()), costs=context.node_costs)
                path, entry = outcome.path, _onnx_entry(variant, outcome, budget, fp32_size)
                entry["search"]["held_float_as_asked"] = sorted(held_float.get(name, ()))
            entry["build_seconds"] = round(time.perf_counter() - step_started, 1)
            if path is None:
                rejected[name] = entry
                log(f"[{name}] REJECTED: drift {entry['drift']['drift_points']:.3f} points > budget {max_drift}")
            else:
                produced[name] = (path, entry)
                log(f"[{name}] {_summary(entry)}")
        info = _quantization_info(calibration_set, eval_set, budget, time.perf_counter() - started,
                                  node_costs is not None)
        manifest = _commit(root, produced, rejected, info)
    return {"artifact": str(root), **info, "variants": {n: manifest["variants"][n] for n in produced},
            "rejected": rejected}


class _BuildContext:
    """What several recipes share, made once per run: the pre-processed graph and the calibration cache."""

    def __init__(self, fp32_path: Path, calibration_pixel_values, input_name: str, work: Path,
                 threads: int | None = None):
        self.fp32_path, self.work, self.threads = fp32_path, work, threads
        self.calibration_pixel_values, self.input_name = calibration_pixel_values, input_name
        self._prepared: Path | None = None
        self._node_costs: dict[str, float] | None = None
        self._node_names: set[str] | None = None

    @property
    def prepared(self) -> Path:
        if self._prepared is None:
            from edgeforge.quantize.onnx_int8 import prepare

            self._prepared = prepare(self.fp32_path, self.work / "prepared.onnx")
        return self._prepared

    def use_node_costs(self, costs: dict[str, float]) -> None:
        """The caller's node times, used instead of measuring them here."""
        self._node_costs = costs

    def node_costs(self) -> dict[str, float]:
        """Each node's fp32 time (ms): the caller's, or measured on one calibration image once per run when a
        search needs it."""
        if self._node_costs is None:
            from edgeforge.quantize.costs import node_times_ms

            feeds = {self.input_name: self.calibration_pixel_values[:1]}
            self._node_costs = node_times_ms(self.prepared, feeds, threads=self.threads)
        return self._node_costs

    def require_nodes(self, names, what: str) -> None:
        """Refuse node names the graph lacks (``what`` says which option named them)."""
        if self._node_names is None:
            from edgeforge.quantize.onnx_graph import load_model

            self._node_names = {node.name for node in load_model(self.prepared).graph.node}
        unknown = sorted(set(names) - self._node_names)
        if unknown:
            more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
            raise EdgeforgeError(f"{what}: no node named {', '.join(unknown[:3])}{more} in the graph")

    def quantizer(self, variant: Variant):
        from edgeforge.quantize import onnx_int4, onnx_int8
        from edgeforge.quantize.onnx_fp16 import Fp16Converter

        recipe = variant.recipe
        calibration = (self.calibration_pixel_values, self.input_name, self.work)
        if isinstance(recipe, Fp16Recipe):
            return Fp16Converter(self.prepared, recipe)
        if isinstance(recipe, DynamicInt8Recipe):
            return onnx_int8.DynamicInt8Quantizer(self.prepared, recipe)
        if isinstance(recipe, StaticInt8Recipe):
            return onnx_int8.StaticInt8Quantizer(self.prepared, recipe, *calibration)
        if isinstance(recipe, HybridInt8Recipe):
            return onnx_int8.HybridInt8Quantizer(self.prepared, recipe, *calibration)
        if isinstance(recipe, Int4Recipe):
            return onnx_int4.Int4Quantizer(self.prepared, recipe)
        raise EdgeforgeError(f"no ONNX quantizer for recipe {recipe.kind}")


def _held_float(keep_float, chosen: dict[str, Variant], context: _BuildContext) -> dict[str, frozenset[str]]:
    """precision -> node names to hold float (ONNX variants only); names the graph lacks are refused."""
    onnx_names = [name for name, variant in chosen.items() if variant.format == "onnx"]
    if isinstance(keep_float, Mapping):
        wanted = {name: frozenset(keep_float.get(name, ())) for name in onnx_names}
    else:
        wanted = dict.fromkeys(onnx_names, frozenset(keep_float))
    asked = frozenset().union(*wanted.values()) if wanted else frozenset()
    if asked:
        context.require_nodes(asked, "--keep-float")
    return {name: nodes for name, nodes in wanted.items() if nodes}


def _checked_costs(node_costs: Mapping[str, float], context: _BuildContext) -> dict[str, float]:
    """The caller's node costs, checked: numbers of 0 ms or more, for nodes the graph has."""
    costs = {}
    for name, value in node_costs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise EdgeforgeError(f"node costs: {name!r} has {value!r}; costs are milliseconds, 0 or more")
        costs[str(name)] = float(value)
    context.require_nodes(costs, "node costs")
    return costs


def _onnx_entry(variant: Variant, outcome: Outcome, budget: Budget, fp32_size: int) -> dict:
    entry = {
        "file": variant.file,
        "format": "onnx",
        "precision": variant.precision,
        "recipe": variant.recipe.to_json(),
        "drift": outcome.drift.to_json(budget.max_drift),
        "nodes_kept_float": outcome.kept_float,
        "search": {
            "candidate_nodes": outcome.candidates,
            "drift_all_quantized": outcome.initial_drift.to_json(budget.max_drift),
            "builds": outcome.builds,
            "kept_float_by": outcome.kept_by,
            "most_sensitive": [{"node": n, "kl": round(s, 8)} for n, s in outcome.sensitivity[:10]],
        },
    }
    if outcome.path is not None:
        size = outcome.path.stat().st_size
        entry.update(size_bytes=size, size_vs_fp32=round(size / fp32_size, 4))
    return entry


def _make_coreml(root: Path, variant: Variant, meter: DriftMeter, work: Path) -> tuple[Path, dict]:
    from edgeforge.quantize.coreml import NOT_MEASURED, can_measure, compress_coreml, coreml_logits, package_size

    out = compress_coreml(root / COREML_SOURCE, work / Path(variant.file).name, variant.recipe)
    entry = {"file": variant.file, "format": "coreml", "precision": variant.precision,
             "recipe": variant.recipe.to_json(), "size_bytes": package_size(out),
             "size_vs_fp16_package": round(package_size(out) / package_size(root / COREML_SOURCE), 4),
             "nodes_kept_float": []}
    if can_measure():
        drift = meter.score(coreml_logits(out, meter.pixel_values, meter.input_name))
        entry["drift"] = {**drift.to_json(), "status": "measured with Core ML"}
    else:
        entry["drift"] = {"status": NOT_MEASURED, "num_images": 0}
    return out, entry


def _summary(entry: dict) -> str:
    drift = entry.get("drift", {})
    size = f"{entry['size_bytes'] / 1e6:.2f} MB"
    if "size_vs_fp32" in entry:
        size += f" ({entry['size_vs_fp32']:.1%} of fp32)"
    figure = f"drift {drift['drift_points']:.3f} points" if "drift_points" in drift else drift.get("status", "")
    kept = f", {len(entry['nodes_kept_float'])} node(s) kept float" if entry.get("nodes_kept_float") else ""
    return f"{entry['file']}: {size}, {figure}{kept}"


def _open_artifact(root: Path) -> Artifact:
    artifact = Artifact.open(root)
    if artifact.manifest is None:
        raise EdgeforgeError(f"{root} has no manifest.json: quantize an artifact directory made by `edgeforge build`")
    fp32 = root / artifact.variant_file("fp32")
    if not fp32.is_file():
        raise EdgeforgeError(f"{fp32} is missing: the fp32 ONNX model is the reference every variant is made from")
    return artifact


def _quantized_together(artifact: Artifact) -> tuple[str, ...]:
    """The family's units for the search (``Family.quantize_together``); none for a model type not declared."""
    from edgeforge.families import FAMILIES

    family = FAMILIES.get(artifact.config.get("model_type"))
    return family.quantize_together if family else ()


def _default_precisions(root: Path) -> tuple[str, ...]:
    return ONNX_PRECISIONS + (COREML_PRECISIONS if (root / COREML_SOURCE).is_dir() else ())


def _images(artifact: Artifact, calibration, count: int, log) -> ImageSet:
    if calibration is not None:
        return folder_images(calibration, count, log)
    labels = [artifact.id2label[i] for i in sorted(artifact.id2label)]
    return synthetic_images(artifact.task, labels, count)


def _quantization_info(calibration_set: ImageSet, eval_set: ImageSet, budget: Budget, seconds: float,
                       costs_given: bool) -> dict:
    tools = package_versions(TOOLS)
    return {
        "calibration_set": {"source": calibration_set.source, "num_images": len(calibration_set.images),
                            "images": calibration_set.names, "skipped_files": len(calibration_set.skipped)},
        "eval_set": {"source": eval_set.source, "num_images": len(eval_set.images), "images": eval_set.names,
                     "held_out": eval_set is not calibration_set,
                     "reference": "the fp32 ONNX model's own predictions on these images"},
        "max_drift_points": budget.max_drift,
        "search": {"sensitivity_images": budget.sensitivity_images, "max_float_fraction": budget.max_float_fraction,
                   "max_probes": budget.max_probes, "quantized_together": list(budget.together),
                   "node_costs": "given by the caller" if costs_given else "measured on this graph (fp32, one "
                                 "calibration image)"},
        "tools": tools,
        "seconds": round(seconds, 1),
    }


def _commit(root: Path, produced: dict, rejected: dict, info: dict) -> dict:
    """Swap in a copy of ``root`` holding the new files, with the manifest rewritten last."""
    with atomic_directory(root) as staging:
        shutil.copytree(root, staging, dirs_exist_ok=True, copy_function=_link_or_copy)
        manifest = read_manifest(staging)
        variants = manifest.setdefault("variants", {})
        for name, (path, entry) in produced.items():
            target = staging / entry["file"]
            _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), str(target))
            variants[name] = entry
        for name in rejected:
            previous = variants.pop(name, None)
            if previous is not None:
                _remove(staging / previous["file"])
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
