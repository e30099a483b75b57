"""What the two fp16 forms cost on this CPU: fp16 arithmetic (what edgeforge made until 2026-12-07, onnxruntime's
float16 converter) against fp16 weights with fp32 arithmetic (``quantize/onnx_fp16.py``), beside fp32.

Writes both forms of one fp32 ONNX graph and times the three in one interleaved run (onnxruntime CPU provider),
with each file's size and the largest logit difference from fp32.

    python experiments/fp16_forms.py MODEL.onnx [--size 512] [--rounds 15] [--threads 2] [-o results.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeforge.benchmarks.machine import machine_info
from edgeforge.jsonfile import print_result
from edgeforge.quantize.onnx_fp16 import Fp16Converter
from edgeforge.quantize.onnx_graph import load_model, save_model
from edgeforge.quantize.recipes import FP16_KEEP_FLOAT_OPS, Fp16Recipe


def fp16_arithmetic(source: Path, out: Path) -> Path:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST
    from onnxruntime.transformers.onnx_model import OnnxModel

    wrapper = OnnxModel(load_model(source))
    wrapper.convert_float_to_float16(use_symbolic_shape_infer=True, keep_io_types=True,
                                     op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP16_KEEP_FLOAT_OPS)))
    return save_model(wrapper.model, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="fp16-forms-") as tmp:
        files = {"fp32": args.model,
                 "fp16 arithmetic (until 2026-12-07)": fp16_arithmetic(args.model, Path(tmp) / "arith.onnx"),
                 "fp16 weights, fp32 arithmetic (now)": Fp16Converter(args.model, Fp16Recipe()).write(
                     Path(tmp) / "weights.onnx")}
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {name: ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    for name, path in files.items()}
        pixels = np.random.default_rng(0).standard_normal((1, 3, args.size, args.size)).astype(np.float32)
        feed = lambda s: {s.get_inputs()[0].name: pixels}  # noqa: E731
        outputs = {name: s.run(None, feed(s))[0] for name, s in sessions.items()}
        times = {name: [] for name in sessions}
        for round_number in range(args.rounds):
            order = list(sessions)[round_number % 3:] + list(sessions)[:round_number % 3]
            for name in order:
                started = time.perf_counter()
                sessions[name].run(None, feed(sessions[name]))
                times[name].append(1e3 * (time.perf_counter() - started))
        fp32_ms = statistics.median(times["fp32"])
        result = {"model": str(args.model), "size": args.size, "threads": args.threads, "rounds": args.rounds,
                  "machine": machine_info(), "forms": {
                      name: {"p50_ms": statistics.median(times[name]),
                             "vs_fp32": statistics.median(times[name]) / fp32_ms,
                             "bytes": Path(files[name]).stat().st_size,
                             "max_abs_logit_diff_vs_fp32": float(np.abs(outputs[name] - outputs["fp32"]).max())}
                      for name in sessions}}
    print_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
