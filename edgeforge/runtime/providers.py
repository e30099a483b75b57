"""Execution-provider choice: what the user asked for, among what this onnxruntime build offers."""

from __future__ import annotations

import warnings

import onnxruntime as ort

from edgeforge.errors import EdgeforgeError

# Accelerated providers first; CPU is always the last resort.
PREFERRED = (
    "CUDAExecutionProvider",
    "CoreMLExecutionProvider",
    "NnapiExecutionProvider",
    "XnnpackExecutionProvider",
    "CPUExecutionProvider",
)
SHORT_NAMES = {name.removesuffix("ExecutionProvider").lower(): name for name in PREFERRED}


class ProviderUnavailable(EdgeforgeError):
    """A provider the user required is not in this onnxruntime build (or failed to start)."""


class ProviderFallbackWarning(RuntimeWarning):
    """A requested provider is missing and the model runs on the others (CPU at least)."""


def provider_name(name: str) -> str:
    """Accept 'cpu', 'coreml', 'CoreMLExecutionProvider', ..."""
    return SHORT_NAMES.get(name.lower(), name)


def choose_providers(requested: str | list[str] | None = "auto", strict: bool = False) -> list[str]:
    """Return the providers to hand to an InferenceSession.

    ``"auto"``/None: every accelerated provider present, then CPU. A list (or "cuda,cpu"): those
    present, then CPU; a missing one is a ProviderFallbackWarning, or ProviderUnavailable when ``strict``.
    """
    available = ort.get_available_providers()
    if requested in (None, "auto"):
        return [p for p in PREFERRED if p in available]
    names = [provider_name(n.strip()) for n in (requested.split(",") if isinstance(requested, str) else requested)]
    missing = [n for n in names if n not in available]
    if missing:
        message = f"execution provider(s) {', '.join(missing)} not available in this onnxruntime build " \
                  f"(available: {', '.join(available)})"
        if strict:
            raise ProviderUnavailable(message)
        warnings.warn(message + "; falling back to CPUExecutionProvider", ProviderFallbackWarning, stacklevel=3)
    chosen = [n for n in names if n in available]
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")
    return chosen
