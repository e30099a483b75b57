"""LiteRT speed of edgeforge's .tflite files against the stock litert-torch conversion, one interleaved run.

Times each given .tflite with the runtime's LiteRT engine (ai-edge-litert's interpreter, XNNPACK, the same
thread count for all) on one random input of the model's shape, round-robin with the order rotated each round,
so a shared machine's noise lands on every file alike; prints p50 and the ratio to the first file (the peer).

    python experiments/litert_speed.py stock.tflite edgeforge.tflite [more.tflite ...] [--rounds 20] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from edgeforge.runtime.engines import EngineOptions, LiteRTEngine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="the peer first, then edgeforge's files")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    engines = {path.name: LiteRTEngine(path, EngineOptions(threads=args.threads)) for path in args.files}
    x = np.random.default_rng(0).standard_normal(next(iter(engines.values())).input.shape).astype(np.float32)
    for engine in engines.values():  # warm-up: XNNPACK packs weights on the first run
        engine.run(x)
    times = {name: [] for name in engines}
    names = list(engines)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names):] + names[: round_ % len(names)]:
            start = time.perf_counter()
            engines[name].run(x)
            times[name].append(1000 * (time.perf_counter() - start))
    peer = statistics.median(times[names[0]])
    results = {name: {"p50_ms": round(statistics.median(t), 1), "speedup_vs_peer": round(peer / statistics.median(t), 2),
                      "size_mb": round(Path(engines[name].model_path).stat().st_size / 1e6, 1)} for name, t in times.items()}
    print(json.dumps(results, indent=1))
    if args.json:
        flags = sorted({f for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
                        for f in line.split(":")[1].split() if f.startswith(("avx", "amx"))})
        args.json.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "cpu_flags": flags,
                                         "threads": args.threads, "rounds": args.rounds, "results": results}, indent=1))


if __name__ == "__main__":
    main()
