"""Each node's fp32 time, from onnxruntime's own profiler: the budget search prefers keeping cheap nodes
in float when that meets the budget too (``budget.fit_to_budget``). Measured, not estimated from FLOPs:
a depthwise convolution or a resize costs far more than its FLOPs say."""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

KERNEL_SUFFIX = "_kernel_time"


def node_times_ms(model_path: str | Path, feeds: dict[str, np.ndarray], runs: int = 3,
                  threads: int | None = None) -> dict[str, float]:
    """Node name -> median kernel time in ms over ``runs`` runs after one warm-up (CPU provider)."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="edgeforge-profile-") as tmp:
        options = ort.SessionOptions()
        # Basic level only: the extended/all levels fuse and rename nodes, and these names must match the graph's.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        for _ in range(1 + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    return median_kernel_times(events, runs)


def median_kernel_times(events: list[dict], runs: int) -> dict[str, float]:
    """Median of each node's last ``runs`` kernel times (ms) in an onnxruntime profile (the warm-up dropped;
    the median, because one run of a small node that the scheduler preempted would swamp a mean)."""
    times: dict[str, list[float]] = defaultdict(list)
    for event in events:
        if event.get("cat") == "Node" and event.get("name", "").endswith(KERNEL_SUFFIX):
            times[event["name"][: -len(KERNEL_SUFFIX)]].append(event["dur"] / 1e3)
    return {name: float(np.median(values[-runs:])) for name, values in times.items()}
