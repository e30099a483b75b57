"""Which engine runs each artifact format (``edgeforge.contract.FORMATS``), and why a format cannot run
here. The runtime, the benchmark and the CLI read this one table; a target whose files onnxruntime does
not run adds its engine here."""

from __future__ import annotations

#: format -> the engine the runtime opens it with
ENGINES = {"onnx": "onnxruntime", "ort": "onnxruntime"}
#: format -> why the runtime does not run it (its size is still measured)
NOT_RUNNABLE = {"coreml": "needs macOS (Core ML runs on Apple platforms only); size measured, speed not"}


def runnable(fmt: str) -> bool:
    return fmt in ENGINES


def why_not_runnable(fmt: str) -> str:
    return NOT_RUNNABLE.get(fmt, f"format {fmt!r} has no engine in edgeforge.runtime")
