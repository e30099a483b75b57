"""The machine's measured peaks: one large square matrix product per (engine, arithmetic), at a thread count.

Each engine's own kernels rather than numpy's: onnxruntime's MatMul (fp32) and MatMulInteger (u8 x s8, the
kernel its dynamic int8 quantization runs) on MLAS with the session's intra-op threads; OpenVINO's CPU
FullyConnected in f32, bf16 (where the CPU has it) and int8 (quantized by NNCF's default recipe, as its
int8 variants are). The figures are what the models *could* reach on this machine in this run, so each
variant's achieved GFLOP/s can be read as a share of the peak of the arithmetic it runs in.
"""

from __future__ import annotations

import json
import subprocess
import sys
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
    """Best-of-``runs`` GOP/s of one (size x size) @ (size x size) product with ``threads`` threads, on every
    kernel this machine has (``kernels``: "engine arithmetic" -> GOP/s); ``gflops`` is onnxruntime fp32's.

    The best run, not the median: a peak is what the hardware can do when nothing else interferes.
    """
    kernels, medians = _measure(IN_PROCESS_KERNELS, threads, size, runs, warmup)
    child = subprocess.run([sys.executable, "-m", __name__, str(threads), str(size), str(runs), str(warmup)],
                           capture_output=True, text=True, timeout=600)
    peak = {"threads": threads, "matmul_size": size, "runs": runs}
    if child.returncode == 0:  # OpenVINO (or NNCF) not installed: its kernels are simply absent
        measured = json.loads(child.stdout.strip().splitlines()[-1])
        kernels.update(measured["best"])
        medians.update(measured["median"])
    else:
        peak["child_error"] = (child.stderr.strip().splitlines() or [f"exit status {child.returncode}"])[-1]
    return {**peak, "gflops": kernels["onnxruntime fp32"], "median_gflops": medians["onnxruntime fp32"],
            "kernels": kernels}


def _measure(makers: dict, threads: int, size: int, runs: int, warmup: int) -> tuple[dict, dict]:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    best, median = {}, {}
    for name, make in makers.items():
        run = make(a, b, threads)
        if run is None:  # the engine is not installed, or the CPU lacks the arithmetic
            continue
        for _ in range(warmup):
            run()
        seconds = []
        for _ in range(runs):
            start = time.perf_counter()
            run()
            seconds.append(time.perf_counter() - start)
        flop = 2.0 * size ** 3
        best[name], median[name] = flop / min(seconds) / 1e9, flop / float(np.median(seconds)) / 1e9
    return best, median


def _onnxruntime_session(model_bytes: bytes, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="edgeforge-peak-") as tmp:
        path = Path(tmp) / "matmul.onnx"
        path.write_bytes(model_bytes)
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _onnxruntime_fp32(a: np.ndarray, b: np.ndarray, threads: int):
    session = _onnxruntime_session(matmul_model_bytes(a.shape[0]), threads)
    return lambda: session.run(None, {"A": a, "B": b})


def _onnxruntime_int8(a: np.ndarray, b: np.ndarray, threads: int):
    """MatMulInteger on u8 activations and s8 weights: the kernel of onnxruntime's dynamic quantization."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = a.shape[0]
    weights = numpy_helper.from_array(np.clip(np.round(b * 32), -127, 127).astype(np.int8), "B")
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B"], ["C"])], "peak_matmul_integer",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [size, size])],
        [helper.make_tensor_value_info("C", TensorProto.INT32, [size, size])], initializer=[weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = ONNX_IR_VERSION
    onnx.checker.check_model(model)
    session = _onnxruntime_session(model.SerializeToString(), threads)
    activations = np.clip(np.round(a * 32 + 128), 0, 255).astype(np.uint8)
    return lambda: session.run(None, {"A": activations})


def _openvino(precision: str):
    def make(a: np.ndarray, b: np.ndarray, threads: int):
        try:
            import openvino as ov
            from openvino import opset13 as ops
        except ImportError:
            return None
        from edgeforge.runtime.engines import openvino_cpu_has_bf16

        if precision == "bf16" and not openvino_cpu_has_bf16():
            return None
        activations = ops.parameter(list(a.shape), ov.Type.f32, name="A")
        model = ov.Model([ops.matmul(activations, ops.constant(b), False, False)], [activations], "peak_fc")
        if precision == "int8":
            try:
                import nncf
            except ImportError:
                return None
            model = nncf.quantize(model, nncf.Dataset([a]), subset_size=1)
        compute = "f32" if precision == "int8" else precision  # int8 layers run int8; the hint is for the rest
        compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": compute,
                                                          "PERFORMANCE_HINT": "LATENCY",
                                                          "INFERENCE_NUM_THREADS": str(threads)})
        request = compiled.create_infer_request()
        return lambda: request.infer({0: a})

    return make


#: "engine arithmetic" -> a function (a, b, threads) returning a callable that computes a @ b once, or None
#: where this machine cannot (engine not installed, no bf16). The names match ``Variant.compute``.
IN_PROCESS_KERNELS = {
    "onnxruntime fp32": _onnxruntime_fp32,
    "onnxruntime int8": _onnxruntime_int8,
}
#: Timed in a child process: OpenVINO's CPU plugin keeps its thread pool for the life of the process, and a
#: bench process that had one crashed (SIGSEGV) instead of ending cleanly on SIGTERM.
CHILD_KERNELS = {
    "openvino fp32": _openvino("f32"),
    "openvino bf16": _openvino("bf16"),
    "openvino int8": _openvino("int8"),
}

if __name__ == "__main__":  # the child: THREADS SIZE RUNS WARMUP -> one JSON line
    best, median = _measure(CHILD_KERNELS, *(int(arg) for arg in sys.argv[1:5]))
    print(json.dumps({"best": best, "median": median}))
