"""Benchmarks: every variant of an artifact measured next to its baselines, in one run, on one machine.

    from edgeforge.benchmarks import bench
    report = bench("artifacts/face-parsing", dataset=None, report_dir="reports/face-parsing")

Kept import-free: the peak-memory child processes import ``edgeforge.benchmarks.memory``, and this
package must not load onnxruntime or torch into them before they measure their baseline.
"""


def bench(*args, **kwargs) -> dict:
    """See ``edgeforge.benchmarks.run.bench``."""
    from edgeforge.benchmarks.run import bench as run_bench

    return run_bench(*args, **kwargs)


__all__ = ["bench"]
