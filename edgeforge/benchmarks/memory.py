"""Peak memory (and cold start) of one variant, measured in a fresh child process.

Each measurement runs ``python -c`` in a new interpreter that imports only what an app would (the
runtime, or torch + transformers for the PyTorch baseline), loads the model, runs it a few times and
reports its peak resident set size: variants never share a heap, an allocator arena or a
page cache of each other's weights. The child also times import, load and first inference: a true
cold start of a new process (the OS file cache may still hold the files).
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = "import sys; from edgeforge.benchmarks.memory import child_main; child_main(sys.argv[1])"
TIMEOUT_S = 1800


def measure_in_child(spec: dict, timeout: float = TIMEOUT_S) -> dict:
    """Run ``spec`` (see ``child_main``) in a fresh interpreter; its report, or {"error": one line}."""
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        errors = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"error": errors[-1] if errors else f"child exited with status {done.returncode}"}
    return json.loads(lines[-1])


def runtime_spec(artifact: str, threads: int, input_shape: list[int], variant: str | None = None,
                 model_file: str | None = None, runs: int = 3) -> dict:
    return {"kind": "runtime", "artifact": str(artifact), "variant": variant, "model_file": model_file,
            "threads": threads, "input_shape": input_shape, "runs": runs}


def pytorch_spec(checkpoint: str, threads: int, input_shape: list[int], runs: int = 3) -> dict:
    return {"kind": "pytorch", "checkpoint": str(checkpoint), "threads": threads, "input_shape": input_shape,
            "runs": runs}


# --- in the child ----------------------------------------------------------------------------------
def _peak_rss_bytes() -> int:
    """This process's peak resident set size.

    Linux: ``VmHWM`` from /proc/self/status, the high-water mark of this address space. Not
    ``ru_maxrss``: Linux carries it over ``execve`` from the forked parent, so a child of a big
    benchmark process would report the parent's size. Elsewhere ``ru_maxrss`` (macOS: bytes)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


def child_main(spec_json: str) -> None:
    """Import, load, run ``runs`` times; print one JSON line with peak RSS and timings."""
    import time

    spec = json.loads(spec_json)
    started = time.perf_counter()
    if spec["kind"] == "runtime":
        import numpy as np

        from edgeforge.runtime import load

        imported = time.perf_counter()
        after_import = _peak_rss_bytes()
        model = load(spec["artifact"], variant=spec["variant"] or "fp32", model_file=spec["model_file"],
                     threads=spec["threads"], verify=spec["model_file"] is None)
        loaded = time.perf_counter()
        pixel_values = np.zeros(spec["input_shape"], dtype=np.float32)
        run = lambda: model.forward(pixel_values)  # noqa: E731
    elif spec["kind"] == "pytorch":
        import numpy as np
        import torch

        from edgeforge.zoo.checkpoints import load_checkpoint

        torch.set_num_threads(spec["threads"])
        imported = time.perf_counter()
        after_import = _peak_rss_bytes()
        checkpoint = load_checkpoint(spec["checkpoint"])
        loaded = time.perf_counter()
        pixel_values = torch.from_numpy(np.zeros(spec["input_shape"], dtype=np.float32))

        def run():
            with torch.inference_mode():
                return checkpoint.model(pixel_values=pixel_values).logits
    else:
        raise SystemExit(f"unknown kind {spec['kind']!r}")
    first_start = time.perf_counter()
    run()
    first = time.perf_counter() - first_start
    for _ in range(max(spec["runs"] - 1, 0)):
        run()
    peak = _peak_rss_bytes()
    print(json.dumps({
        "peak_rss_mb": peak / 2 ** 20,
        "rss_after_import_mb": after_import / 2 ** 20,
        "model_rss_mb": (peak - after_import) / 2 ** 20,
        "import_s": imported - started,
        "load_s": loaded - imported,
        "first_inference_s": first,
        "threads": spec["threads"],
        "runs": spec["runs"],
    }))
