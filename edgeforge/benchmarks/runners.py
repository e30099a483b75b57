"""What gets timed: one ``Runner`` per (variant or baseline, execution provider, thread count), its identity
a typed ``RunnerKey``; the report names it by ``report_name`` and never parses that name back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeforge.runtime.providers import provider_name

VARIANT, BASELINE = "variant", "baseline"


@dataclass(frozen=True)
class RunnerKey:
    kind: str  # VARIANT or BASELINE
    name: str  # the artifact's variant name, or the baseline's name
    provider: str  # onnxruntime execution provider (baselines: the one they run on)
    threads: int
    qualified: bool = False  # several providers measured: the report name says which

    @property
    def report_name(self) -> str:
        """The report's key: the name, qualified by provider only when several providers are measured."""
        if not self.qualified:
            return self.name
        return f"{self.name} [{provider_name(self.provider).removesuffix('ExecutionProvider').lower()}]"


@dataclass
class Runner:
    key: RunnerKey
    forward: Callable[[np.ndarray], np.ndarray]
    dynamic_batch: bool
    prepare: Callable[[], None] | None = None  # untimed, before each timed call (PyTorch threads)
    # For large throughput batches: a forward that hands its working memory back after the run, so that
    # a dozen sessions of a full-size model do not each keep a batch's worth (b5 at batch 4: out of 24 GB).
    forward_releasing: Callable[[np.ndarray], np.ndarray] | None = None
    reload: Callable[[], object] | None = None  # a fresh model as this runner's was made (cold-start timing)
    engine: str = "pytorch"  # what runs it: onnxruntime, openvino, pytorch


    @property
    def name(self) -> str:
        return self.key.report_name

    @property
    def kind(self) -> str:
        return self.key.kind

    @property
    def threads(self) -> int:
        return self.key.threads

    @property
    def provider(self) -> str:
        return self.key.provider


def runtime_runner(key: RunnerKey, artifact: Path, model_file: Path | None = None, verify: bool = True,
                   variant: str | None = None) -> Runner:
    """A runtime ``Model`` (any engine) for variant ``key.name`` of ``artifact`` or, for a baseline,
    ``model_file`` run with the artifact's configs and the engine settings of ``variant``."""
    variant = key.name if key.kind == VARIANT else variant

    def make():
        return load_model(artifact, key.threads, key.provider, variant, model_file, verify)

    model = make()
    return Runner(key, model.forward, dynamic_batch=model.takes_batches,
                  forward_releasing=lambda pixel_values: model.forward(pixel_values, release_memory=True),
                  reload=make, engine=model.engine.name)


def load_model(artifact: Path, threads: int, provider: str, variant: str | None = None,
               model_file: Path | None = None, verify: bool = True):
    from edgeforge.runtime import load

    # No spinning: variants run in interleaved rounds, and a session whose idle threads spin after its
    # run takes the cores from the next one (measured on ViT-base: the variant after another ran up to
    # 1.3x slower, by position in the round rather than by its own speed).
    return load(artifact, variant=variant or "fp32", model_file=model_file, providers=[provider],
                strict_providers=True, threads=threads, verify=verify and model_file is None, spinning=False)
