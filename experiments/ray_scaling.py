"""Does `edgeforge run --ray` scale? Throughput of 1 worker against 2 workers on a 2-node Ray cluster.

Starts a real local cluster (``LocalCluster``: two raylets, 1 CPU each, loopback only), draws N synthetic
images of the artifact's kind, and runs ``predict_on_cluster`` with 1 and with 2 workers (one actor per
node, each with 1 intra-op thread) in interleaved rounds, each into a fresh output folder. Every run is timed
end to end as a user sees it (connect, node check, actors loading the model, all images written) and also
from its first result to its last (the steady rate, without the start-up). Checks that both give the same
bytes as each other.

    python experiments/ray_scaling.py ARTIFACT [-n 480] [--rounds 3] [-o results.json]
"""

from __future__ import annotations

import argparse
import filecmp
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from edgeforge.benchmarks.machine import machine_info
from edgeforge.jsonfile import print_result
from edgeforge.distributed.local_cluster import LocalCluster
from edgeforge.distributed.predict import ClusterRun, predict_on_cluster


def draw_images(artifact: Path, count: int, folder: Path) -> list[str]:
    from edgeforge.data.synth import write_dataset
    from edgeforge.quantize.calibration import synthetic_kind
    from edgeforge.runtime.artifact import Artifact

    opened = Artifact.open(artifact, verify=False)
    kind = synthetic_kind(opened.task, list(opened.id2label.values()))
    write_dataset(kind, count, folder, seed=4242, size=256, progress=False)
    return sorted(str(p) for p in (folder / "images").iterdir())


def timed_run(artifact: Path, images: list[str], out: Path, address: str, workers: int) -> dict:
    started, cpu = time.perf_counter(), time.process_time()
    outcomes = predict_on_cluster(artifact, images, out, ClusterRun(address, threads=1, workers=workers),
                                  progress=False)
    wall, driver_cpu = time.perf_counter() - started, time.process_time() - cpu
    written = sum(o.status == "written" for o in outcomes)
    if written != len(images):
        raise SystemExit(f"{len(images) - written} image(s) not written with {workers} worker(s)")
    stamps = sorted(p.stat().st_mtime for p in out.glob("*.json"))
    steady = stamps[-1] - stamps[0]
    return {"workers": workers, "wall_s": wall, "driver_cpu_s": driver_cpu, "images_per_s": len(images) / wall,
            "steady_images_per_s": (len(images) - 1) / steady if steady > 0 else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifact", type=Path)
    parser.add_argument("-n", "--images", type=int, default=480)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("-o", "--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ray-scaling-") as tmp, LocalCluster(cpus_per_node=1) as cluster:
        work = Path(tmp)
        cluster.add_node()
        images = draw_images(args.artifact.resolve(), args.images, work / "images")
        runs = []
        for round_number in range(args.rounds):
            for workers in ((1, 2) if round_number % 2 == 0 else (2, 1)):
                out = work / f"out-{round_number}-{workers}"
                runs.append({"round": round_number, **timed_run(args.artifact, images, out, cluster.address, workers)})
                print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
        same = not filecmp.dircmp(work / "out-0-1", work / "out-0-2").diff_files
    summary = {}
    for workers in (1, 2):
        mine = [r for r in runs if r["workers"] == workers]
        summary[workers] = {"median_images_per_s": statistics.median(r["images_per_s"] for r in mine),
                            "median_steady_images_per_s": statistics.median(r["steady_images_per_s"] for r in mine)}
    result = {
        "artifact": str(args.artifact), "images": args.images, "rounds": args.rounds, "machine": machine_info(),
        "cluster": "2 nodes on this machine (ray start, loopback), 1 CPU each; actors with 1 intra-op thread",
        "runs": runs, "summary": summary, "outputs_identical_1_vs_2_workers": same,
        "speedup_end_to_end": summary[2]["median_images_per_s"] / summary[1]["median_images_per_s"],
        "speedup_steady": summary[2]["median_steady_images_per_s"] / summary[1]["median_steady_images_per_s"],
    }
    print_result(result, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
