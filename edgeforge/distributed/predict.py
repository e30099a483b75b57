"""`edgeforge run --ray ADDRESS`: batch prediction over a Ray cluster with Ray Data.

Ray Data streams the inputs' names (not their pixels: every node reads the files from the shared path)
through a pool of actors; each actor loads the runtime model once and writes each image's files with
``edgeforge.predictions.predict_one`` -- the function the local run uses, so the bytes are the same. A
block lost with a node is run again by Ray Data on another actor; images whose files were already written
are then kept (their STEM.json matches), so each image is written once; the temporary file a lost worker was
writing is swept at the end (and at the start of the next run). The driver only counts outcomes.

If the head stops answering, Ray's client would wait a minute and then end the process from C++; a
watchdog ends the run first with one line instead: what was written is complete, and the same command
finishes the rest.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edgeforge.distributed.cluster import actor_slots, check_nodes, connected, parse_address, probe
from edgeforge.predictions import FAILED, Outcome, output_stems

#: Images per Ray Data batch: small enough that a lost node costs little work and progress moves smoothly.
BATCH = 16
#: Seconds without an answer from the head before the run gives up (Ray's own limit is 60 s).
HEAD_LOST_SECONDS = 6.0
LOST_HEAD_EXIT = 3


@dataclass(frozen=True)
class ClusterRun:
    address: str
    threads: int = 1  # intra-op threads per actor; each actor reserves as many CPUs
    workers: int | None = None  # actors; default: the cluster's CPUs // threads


def predict_on_cluster(artifact: str | Path, images: list[str], out_dir: str | Path, cluster: ClusterRun,
                       variant: str = "fp32", providers="auto", verify: bool = True,
                       progress: bool = True) -> list[Outcome]:
    """Predict ``images`` with the artifact's ``variant`` on the cluster; one Outcome per image, in input order."""
    from edgeforge.atomic import output_directory, remove_stale_partial_files

    artifact, out_dir = Path(artifact).resolve(), Path(out_dir).resolve()
    stems = output_stems(images)
    items = [{"index": i, "source": str(path), "file": str(Path(path).resolve()), "stem": stem}
             for i, (path, stem) in enumerate(zip(images, stems))]
    with connected(cluster.address) as ray:
        output_directory(out_dir)  # once the cluster answers: a wrong address leaves nothing behind
        remove_stale_partial_files(out_dir)  # what a killed run was writing
        check_nodes(ray, artifact, writable=out_dir)
        workers = cluster.workers or actor_slots(ray, cluster.threads)
        _quiet_ray_data(ray)
        dataset = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // BATCH)))
        results = dataset.map_batches(
            _Predictor, batch_size=BATCH, num_cpus=cluster.threads, concurrency=(1, workers),
            fn_constructor_kwargs={"artifact": str(artifact), "variant": variant, "providers": providers,
                                   "threads": cluster.threads, "verify": verify, "out_dir": str(out_dir)})
        outcomes: list[Outcome | None] = [None] * len(items)
        with _HeadWatch(cluster.address, outcomes), _bar(len(items), progress) as bar:
            for row in results.iter_rows():
                outcomes[int(row["index"])] = Outcome(str(row["status"]), str(row["line"]))
                bar.update(1)
        remove_stale_partial_files(out_dir)  # a worker lost with its node may have been writing
    return [o or Outcome(FAILED, f"{images[i]}: no result came back") for i, o in enumerate(outcomes)]


class _Predictor:
    """One per Ray Data actor: the runtime model, loaded once, predicting its batches into the output folder."""

    def __init__(self, artifact: str, variant: str, providers, threads: int, verify: bool, out_dir: str):
        from edgeforge.runtime import load

        from edgeforge.predictions import model_sha256

        self.model = load(artifact, variant=variant, providers=providers, threads=threads, verify=verify)
        self.digest = model_sha256(self.model)
        self.out_dir = Path(out_dir)

    def __call__(self, batch: dict) -> dict:
        from edgeforge.predictions import predict_one

        outcomes = [predict_one(self.model, self.digest, source, self.out_dir, stem, file=file)
                    for source, file, stem in zip(batch["source"], batch["file"], batch["stem"])]
        return {"index": batch["index"], "status": [o.status for o in outcomes], "line": [o.line for o in outcomes]}


class _HeadWatch:
    """Ends the process with one line when the head stops accepting connections for HEAD_LOST_SECONDS."""

    def __init__(self, address: str, outcomes: list):
        self.host, self.port = parse_address(address)
        self.address, self.outcomes = address, outcomes
        self.stop = threading.Event()

    def __enter__(self):
        threading.Thread(target=self._watch, daemon=True, name="edgeforge-head-watch").start()
        return self

    def __exit__(self, *exc):
        self.stop.set()

    def _watch(self) -> None:
        lost_since = None
        while not self.stop.wait(1.0):
            if probe(self.host, self.port, timeout=1.0) is None:
                lost_since = None
                continue
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since >= HEAD_LOST_SECONDS:
                done = sum(o is not None for o in self.outcomes)
                print(f"\nedgeforge: error: lost the Ray cluster at {self.address} (its head stopped answering); "
                      f"{done} of {len(self.outcomes)} image(s) were reported done and every file written is "
                      "complete; run the same command again to finish the rest", file=sys.stderr, flush=True)
                os._exit(LOST_HEAD_EXIT)  # Ray's client threads would otherwise hold the process for a minute


def _quiet_ray_data(ray) -> None:
    """Ray Data's own progress bars and execution logs: the run shows one bar of its own."""
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    for name in ("ray.data", "ray"):
        logging.getLogger(name).setLevel(logging.ERROR)


class _bar:
    def __init__(self, total: int, enabled: bool):
        from tqdm import tqdm

        self.tqdm = tqdm(total=total, unit="img", desc="predicting on the cluster", disable=not enabled,
                         file=sys.stderr)

    def __enter__(self):
        return self.tqdm

    def __exit__(self, *exc):
        self.tqdm.close()
