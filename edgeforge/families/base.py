"""What a model family declares: the ``Family`` record, its exact torch ``Rewrite`` s and its ONNX
``FusionProfile``. The zoo, the exporter and the quantizers read these; none branches on a family.

Nothing here imports torch: a rewrite's function imports its torch modules when it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeforge.contract import TASKS
from edgeforge.errors import EdgeforgeError


@dataclass(frozen=True)
class Rewrite:
    """An exact rewrite of a transformers model, applied in place to a copy before export: the same function
    (up to float rounding) as a graph that runs faster or that onnxruntime's fusions recognise. Build
    validation compares the rewritten graph with the stock model, so a wrong rewrite cannot ship."""

    name: str  # recorded in the manifest
    apply: Callable[[Any], None]  # model -> None, edits the (copied) model in place
    # The targets (``Target.name``) whose export it is for; empty: every target that exports from torch. A
    # rewrite that helps one converter's lowering can hurt another's (an einsum is a MatMul pattern to
    # litert-torch, an Einsum op that onnxruntime's attention fusion does not match).
    targets: tuple[str, ...] = ()

    def applies_to(self, target: str) -> bool:
        return not self.targets or target in self.targets


@dataclass(frozen=True)
class FusionProfile:
    """How onnxruntime's transformer optimizer treats the family's exported graph (``export.optimize``)."""

    name: str  # recorded in the manifest
    optimizer_model_type: str  # onnxruntime.transformers.optimizer model_type whose fusions match
    disabled: tuple[str, ...] = ()  # FusionOptions switches turned off
    expected: tuple[str, ...] = ()  # fused op types this family's graph must gain (tests check they fire)


@dataclass(frozen=True)
class Family:
    model_type: str  # config.model_type in transformers
    task: str
    config_class: str  # transformers class names, resolved lazily (transformers is a build-side import)
    model_class: str
    image_processor_class: str
    ort_model_class: str  # optimum.onnxruntime class that loads the exported directory
    architecture_keys: tuple[str, ...]  # reference-JSON fields that go into the transformers config
    mini_architecture: dict[str, Any]  # overrides that make the narrow, shallow test model
    mini_image_size: int
    # ONNX I/O: axis index -> symbolic name. Spatial axes are dynamic where the architecture allows it.
    input_axes: dict[int, str] = field(default_factory=dict)
    output_axes: dict[int, str] = field(default_factory=dict)
    output_name: str = "logits"
    input_name: str = "pixel_values"
    rewrites: tuple[Rewrite, ...] = ()  # applied in order at export (``--no-fold`` skips them)
    fusion: FusionProfile | None = None  # onnxruntime fusions (``--no-optimize`` skips them)
    # Quantization: each pattern (a regex on ONNX node names) makes one unit that the budget search keeps
    # float or quantizes as a whole (edgeforge.quantize.budget.group_candidates), for nodes whose mixed
    # precision costs more in layout conversions at run time than int8 saves.
    quantize_together: tuple[str, ...] = ()

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"family {self.model_type}: unknown task {self.task!r}; known: {', '.join(TASKS)}")
        names = [rewrite.name for rewrite in self.rewrites]
        if len(set(names)) != len(names):
            raise ValueError(f"family {self.model_type}: rewrite names repeat: {names}")

    def rewrites_for(self, target: str) -> tuple[Rewrite, ...]:
        """The rewrites an export for ``target`` applies, in declaration order."""
        return tuple(rewrite for rewrite in self.rewrites if rewrite.applies_to(target))

    def transformers_class(self, which: str):
        import transformers

        return getattr(transformers, getattr(self, which))


#: model_type -> Family, filled by ``register`` as the family modules are imported.
FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Make ``family`` known to every stage (by its ``model_type``); returns it, for ``NAME = register(...)``."""
    if family.model_type in FAMILIES:
        raise ValueError(f"family {family.model_type!r} is registered already")
    FAMILIES[family.model_type] = family
    return family


def family_for(model_type: str) -> Family:
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise EdgeforgeError(
            f"model type {model_type!r} is not supported; supported: {', '.join(sorted(FAMILIES))}"
        ) from None


def replace_modules(model, class_name: str, make: Callable[[Any], Any]) -> None:
    """Replace every submodule whose class is ``class_name`` by ``make(module)``; at least one must exist
    (a rewrite that finds nothing to rewrite means the transformers model changed under it)."""
    targets = [(name, module) for name, module in model.named_modules() if type(module).__name__ == class_name]
    if not targets:
        raise EdgeforgeError(f"{type(model).__name__} has no {class_name} module to rewrite")
    for name, module in targets:
        parent_name, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attribute, make(module))
