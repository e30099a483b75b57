"""What gets timed: one ``Runner`` per (variant or baseline, execution provider, thread count)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeforge.runtime.providers import provider_name

VARIANT, BASELINE = "variant", "baseline"
ONNXRUNTIME_FORMATS = ("onnx", "ort")
#: Formats listed in manifests that cannot run here, and why.
NOT_RUNNABLE = {"coreml": "needs macOS (Core ML runs on Apple platforms only); size measured, speed not"}


@dataclass
class Runner:
    name: str  # report key: variant name, or baseline name
    kind: str  # VARIANT or BASELINE
    threads: int
    provider: str
    forward: Callable[[np.ndarray], np.ndarray]
    dynamic_batch: bool
    prepare: Callable[[], None] | None = None  # untimed, before each timed call (PyTorch threads)
    # For large throughput batches: a forward that hands its working memory back after the run, so that
    # a dozen sessions of a full-size model do not each keep a batch's worth (b5 at batch 4: out of 24 GB).
    forward_releasing: Callable[[np.ndarray], np.ndarray] | None = None


def runner_name(variant: str, provider: str, providers: list[str]) -> str:
    """The variant name, qualified by provider only when several providers are measured."""
    if len(providers) == 1:
        return variant
    short = provider_name(provider).removesuffix("ExecutionProvider").lower()
    return f"{variant} [{short}]"


def onnxruntime_runner(name: str, kind: str, artifact: Path, threads: int, provider: str,
                       variant: str | None = None, model_file: Path | None = None, verify: bool = True) -> Runner:
    """A runtime ``Model`` for a variant of ``artifact`` (or any ONNX file run with its configs)."""
    model = load_model(artifact, threads, provider, variant, model_file, verify)
    return Runner(name, kind, threads, provider, model.forward, dynamic_batch=model.takes_batches,
                  forward_releasing=lambda pixel_values: model.forward(pixel_values, release_memory=True))


def load_model(artifact: Path, threads: int, provider: str, variant: str | None = None,
               model_file: Path | None = None, verify: bool = True):
    from edgeforge.runtime import load

    # No spinning: variants run in interleaved rounds, and a session whose idle threads spin after its
    # run takes the cores from the next one (measured on ViT-base: the variant after another ran up to
    # 1.3x slower, by position in the round rather than by its own speed).
    return load(artifact, variant=variant or "fp32", model_file=model_file, providers=[provider],
                strict_providers=True, threads=threads, verify=verify and model_file is None, spinning=False)
