"""Targets: one module each (what it exports, which precisions it offers, how they are made), registered
here by one line, in the order a build runs them (``onnx`` first: the others start from its graph).

Adding a target means declaring its variant files in ``edgeforge.contract``, writing one
module here that registers a ``Target``, and a runtime engine for its format if onnxruntime does not run it.
``tests/test_structure.py`` adds a throwaway target through ``register`` alone.
"""

from __future__ import annotations

from edgeforge.errors import EdgeforgeError
from edgeforge.targets.base import FIRST, TARGETS, ExportJob, Target, register

__all__ = ["TARGETS", "ExportJob", "Target", "default_targets", "parse_precisions", "parse_targets", "precision_names", "register", "target_of_precision"]

def parse_targets(text: str | tuple | list) -> tuple[str, ...]:
    """``"onnx,ort"`` or a list -> validated names in build order; ``onnx`` is always built."""
    names = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    names = [n for n in names if n]
    unknown = [t for t in names if t not in TARGETS]
    if unknown or not names:
        raise EdgeforgeError(f"unknown target(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(TARGETS)}")
    for name in names:
        if TARGETS[name].missing():
            raise EdgeforgeError(f"target {name} needs {', '.join(TARGETS[name].missing())}: "
                                 f"pip install 'edgeforge[{name}]'")
    return tuple(name for name in TARGETS if name in names or name == FIRST)


def default_targets() -> tuple[str, ...]:
    """Every registered target whose optional modules are installed, in build order."""
    return tuple(name for name, target in TARGETS.items() if not target.missing())


def precision_names() -> tuple[str, ...]:
    """Every precision some target can make, in declaration order."""
    return tuple(p for target in TARGETS.values() for p in target.precisions)


def parse_precisions(text: str | list | tuple) -> tuple[str, ...]:
    """``"fp16,quantized"`` or a list -> validated precision names, in the given order, without repeats."""
    names = [n.strip() for n in text.split(",")] if isinstance(text, str) else [str(n).strip() for n in text]
    names = [n for n in names if n]
    known = precision_names()
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise EdgeforgeError(f"unknown precision(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(known)}")
    return tuple(dict.fromkeys(names))


def target_of_precision(name: str) -> Target:
    for target in TARGETS.values():
        if name in target.precisions:
            return target
    raise EdgeforgeError(f"unknown precision {name!r}; choose from {', '.join(precision_names())}")


# The registry, in build order: one line per target module.
from edgeforge.targets import onnx, ort, coreml, openvino, litert  # noqa: E402, F401, I001
