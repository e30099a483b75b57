"""The machine's measured fp32 peak: a large square MatMul through onnxruntime, at a given thread count.

onnxruntime rather than numpy: its MatMul runs on the same MLAS kernels and the same intra-op thread
pool (set per session) as the models being benchmarked, whereas numpy's BLAS fixes its thread count
at import time. The figure is what the models *could* reach on this machine in this run, so their
achieved GFLOP/s can be read as a fraction of it.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SIZE = 2048  # 2 * 2048^3 = 17.2 GFLOP per product: long enough to time, short enough to repeat
ONNX_IR_VERSION = 8  # onnx 1.23 writes IR 14 by default; onnxruntime 1.31 loads at most 13


def matmul_model_bytes(size: int) -> bytes:
    """A one-node graph ``C = A @ B`` on (size, size) fp32 inputs."""
    import onnx
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size, size]) for name in ("A", "B")]
    output = helper.make_tensor_value_info("C", TensorProto.FLOAT, [size, size])
    graph = helper.make_graph([helper.make_node("MatMul", ["A", "B"], ["C"])], "peak_matmul", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    return model.SerializeToString()


def measure_peak_gflops(threads: int, size: int = DEFAULT_SIZE, runs: int = 5, warmup: int = 1) -> dict:
    """Best-of-``runs`` fp32 GFLOP/s of one (size x size) @ (size x size) product with ``threads`` threads.

    The best run, not the median: a peak is what the hardware can do when nothing else interferes.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="edgeforge-peak-") as tmp:
        path = Path(tmp) / "matmul.onnx"
        path.write_bytes(matmul_model_bytes(size))
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((size, size), dtype=np.float32) for name in ("A", "B")}
    for _ in range(warmup):
        session.run(None, feeds)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        seconds.append(time.perf_counter() - start)
    flop = 2.0 * size ** 3
    return {
        "threads": threads,
        "matmul_size": size,
        "runs": runs,
        "gflops": flop / min(seconds) / 1e9,
        "median_gflops": flop / float(np.median(seconds)) / 1e9,
    }
