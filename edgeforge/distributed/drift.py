"""`edgeforge bench ART --dataset DS --ray ADDRESS`: the drift and accuracy figures over a whole dataset, on
a Ray cluster.

The dataset's images are cut into consecutive shards. A pool of Ray actors (``ray.util.ActorPool``), each
holding fp32 and every variant (loaded once per actor), folds its shards into ``DriftTally``s -- confusion
matrices, boundary counts and per-image KL terms, not averages -- and the driver merges them in image order
(``DriftTally.merge``), so every figure equals what a local run prints for the same images.
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgeforge.distributed.cluster import actor_slots, check_nodes, connected

SHARD = 16  # images per task: a few seconds of work for a mini, enough to amortise a task's overhead
PROVIDERS = ["cpu"]  # the figures are the CPU execution's, as the local bench's CPU rows


def drift_on_cluster(address: str, artifact: Path, dataset, variants: list[str], use_labels: bool,
                     threads: int = 1, progress: bool = True, description: str = "drift") -> dict:
    """``measure_drift``'s result for fp32 against each of ``variants`` over every image of ``dataset`` (an
    ``edgeforge.data.datasets.Dataset`` on a path every node sees), computed on the cluster."""
    from tqdm import tqdm

    artifact = Path(artifact).resolve()
    with connected(address) as ray:
        from ray.util import ActorPool

        check_nodes(ray, artifact)
        shards = [(start, min(start + SHARD, len(dataset))) for start in range(0, len(dataset), SHARD)]
        slots = actor_slots(ray, threads)
        worker = ray.remote(num_cpus=threads)(_DriftWorker)
        actors = [worker.remote(str(artifact), variants, threads, use_labels, dataset)
                  for _ in range(min(slots, len(shards)))]
        total = None
        with tqdm(total=len(dataset), unit="img", desc=f"{description} (cluster)", disable=not progress,
                  file=sys.stderr, leave=False) as bar:
            # ActorPool.map returns the shards' tallies in shard order, whatever order they finish in.
            for tally in ActorPool(actors).map(lambda actor, shard: actor.tally.remote(*shard), shards):
                if total is None:
                    total = tally
                else:
                    total.merge(tally)
                bar.update(tally.count)
        return total.summary()


class _DriftWorker:
    """One per actor: fp32 and the candidate variants, and the dataset (read from the shared path)."""

    def __init__(self, artifact: str, variants: list[str], threads: int, use_labels: bool, dataset):
        from edgeforge.runtime import load

        self.reference = load(artifact, variant="fp32", providers=PROVIDERS, threads=threads)
        self.candidates = {v: load(artifact, variant=v, providers=PROVIDERS, threads=threads).forward for v in variants}
        self.use_labels, self.dataset = use_labels, dataset

    def tally(self, start: int, stop: int):
        from edgeforge.tally import new_tally

        tally = new_tally(self.reference, list(self.candidates), self.use_labels)
        for index in range(start, stop):
            tally.add(index, self.dataset[index], self.reference, self.candidates)
        return tally
