"""``BenchOptions``: what a benchmark run measures and how much (one object, checked before any work)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeforge.errors import EdgeforgeError


@dataclass
class BenchOptions:
    """What to measure and how much. ``quick()`` is for smoke tests: few runs, one thread count."""

    runs: int = 30
    warmup: int = 3
    threads: int | None = None  # None: every core this process may use
    single_thread: bool = True  # also measure at 1 thread
    throughput_batch: int = 8
    throughput_runs: int | None = None  # default max(3, runs // 4)
    synthetic_samples: int = 16  # images of the synthetic set made when no dataset is given
    max_samples: int | None = None  # cap on a given dataset
    baselines: bool = True
    # Score the baselines on the build's held-out images with its bound (baseline_budget): seconds for a mini,
    # minutes for a trained full-size model; off in quick runs.
    baseline_budget: bool = True
    memory: bool = True
    accuracy: bool = True
    drift_budget: float | None = None  # None: the manifest's budget if it records one, else 0.5 points
    providers: str = "auto"
    peak_size: int = 2048
    session_repeats: int = 3  # in-process session creations timed per variant
    progress: bool = True
    ray: str | None = None  # a Ray head's HOST:PORT: drift over the dataset is computed on that cluster
    ray_threads: int = 1  # intra-op threads of each Ray actor computing drift

    @classmethod
    def quick(cls, **overrides) -> "BenchOptions":
        settings = dict(runs=5, warmup=1, single_thread=False, throughput_batch=4, throughput_runs=2,
                        synthetic_samples=4, peak_size=1024, session_repeats=1, baseline_budget=False)
        settings.update(overrides)
        return cls(**settings)

    def thread_counts(self) -> list[int]:
        from edgeforge.benchmarks.machine import available_cores

        full = self.threads or available_cores()
        if full < 1:
            raise EdgeforgeError(f"thread count must be at least 1, got {full}")
        return [full, 1] if self.single_thread and full != 1 else [full]

    def check(self) -> None:
        if min(self.runs, self.throughput_batch, self.synthetic_samples, self.session_repeats, self.peak_size) < 1 \
                or self.warmup < 0:
            raise EdgeforgeError("runs, batch, samples, session repeats and peak size must be at least 1, "
                                 "warm-up at least 0")
