"""What the figures were measured on: CPU, instruction-set flags, memory, load, library versions."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from edgeforge.environment import package_versions

#: The instruction-set extensions that decide which kernels onnxruntime / PyTorch can use.
INTERESTING_FLAGS = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
    "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
    "asimd", "asimddp", "sve", "i8mm", "bf16",  # Arm (Linux reports them under "Features")
)
PACKAGES = ("edgeforge", "numpy", "onnxruntime", "onnx", "torch", "transformers", "optimum", "optimum-onnx",
            "Pillow", "matplotlib", "zstandard", "psutil")


def available_cores() -> int:
    """Cores this process may run on (the container / affinity limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpuinfo(path: str | Path = "/proc/cpuinfo") -> dict:
    """CPU model name and the interesting flags, from /proc/cpuinfo (empty on systems without it)."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {"model": platform.processor() or platform.machine(), "flags": []}
    model, flags = None, set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return {"model": model or platform.processor() or platform.machine(),
            "flags": [f for f in INTERESTING_FLAGS if f in flags]}


def machine_info() -> dict:
    import psutil

    info = cpuinfo()
    return {
        "cpu": info["model"],
        "flags": info["flags"],
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "available_cores": available_cores(),
        "ram_gib": round(psutil.virtual_memory().total / 2 ** 30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "system": f"{platform.system()} {platform.release()}",
        "machine": platform.machine(),
        "python": sys.version.split()[0],
    }


def versions() -> dict:
    found = package_versions(PACKAGES)
    try:
        import onnxruntime

        found["onnxruntime_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        pass
    return found
