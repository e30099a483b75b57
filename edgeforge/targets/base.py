"""What a target declares: the files stage 1 writes for it, the precisions stage 2 can make of it, and
how each is made. The build and quantize stages (``edgeforge.stages``) loop over
declarations; the runtime opens the files by their format (``runtime.engines``), the benchmark times
what the runtime can open. Nothing here imports torch, onnx or coremltools.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeforge.contract import VARIANTS, VariantEntry


@dataclass
class ExportJob:
    """What stage 1 hands each target: the loaded checkpoint, the staging directory it writes into (paths
    as in the artifact), a scratch directory, validation images and the export options."""

    checkpoint: Any  # edgeforge.zoo.checkpoints.Checkpoint
    staging: Path
    work: Path
    images: list  # PIL images every target validates on
    opset: int
    fold: bool
    optimize: bool
    postprocess_in_graph: bool
    log: Callable[[str], None]
    #: the exported graph before onnxruntime's fusions (set by the onnx target, which always runs first):
    #: ORT-mobile converts it, since NNAPI / Core ML providers take standard ops only
    exported_onnx: Path | None = None


@dataclass(frozen=True)
class Target:
    name: str  # as in ``--targets``
    title: str  # the progress line of its export step
    export: Callable[[ExportJob], dict[str, VariantEntry]]  # writes its files into job.staging
    base_variant: str  # the variant its export writes; an artifact holding it "has" this target
    #: variant name -> default recipe (``edgeforge.quantize.recipes``) of the precisions stage 2 makes from it
    precisions: Mapping[str, Any] = field(default_factory=dict)
    #: (job, variant name, recipe) -> (the made file or None if over budget, its manifest details)
    make_precision: Callable[[Any, str, Any], tuple[Path | None, dict]] | None = None
    #: Python modules it needs beyond the build side's (an optional extra, ``pip install 'edgeforge[NAME]'``);
    #: a target whose modules are missing is left out of the default set and refused when asked for
    requires: tuple[str, ...] = ()
    #: precision name -> why this machine cannot make it, or None (say, bf16 compute on a CPU without bf16)
    unavailable: Callable[[str], str | None] = lambda name: None

    def missing(self) -> list[str]:
        import importlib.util

        return [module for module in self.requires if importlib.util.find_spec(module) is None]

    def __post_init__(self):
        undeclared = [name for name in (self.base_variant, *self.precisions) if name not in VARIANTS]
        if undeclared:
            raise ValueError(f"target {self.name}: variants {undeclared} are not declared in edgeforge.contract")
        if self.precisions and self.make_precision is None:
            raise ValueError(f"target {self.name} offers precisions but has no make_precision")


#: name -> Target, in build order
TARGETS: dict[str, Target] = {}
FIRST = "onnx"  # the reference graph every other target and every quantized variant starts from


def register(target: Target) -> Target:
    if target.name in TARGETS:
        raise ValueError(f"target {target.name!r} is registered already")
    taken = {p: t.name for t in TARGETS.values() for p in t.precisions}
    clash = [p for p in target.precisions if p in taken]
    if clash:
        raise ValueError(f"target {target.name}: precisions {clash} belong to another target")
    TARGETS[target.name] = target
    return target
