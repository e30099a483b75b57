"""`edgeforge bench ART --ray ADDRESS --on-each-node`: the latency, size and memory bench on every node of a
cluster -- a device farm -- in one report with a section per node.

Latency is a property of a device, so nothing is averaged across nodes: each node runs the whole local bench
(``bench_model``, the same code as `edgeforge bench`) in a Ray task pinned to it that reserves all the node's
CPUs, and the nodes take turns, so no other work of this run shares a node's cores while it is timed. Each
section carries its node's CPU model and flags, thread counts and runtime versions, as measured there.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from edgeforge.distributed.cluster import check_nodes, connected, node_label, pinned


def bench_each_node(address: str, artifact: Path, options, name: str | None = None, checkpoint: str | None = None,
                    resource: str | None = None, log=print) -> tuple[dict, dict[str, bytes]]:
    """The farm report (``report.write_farm_report`` writes it) and its figures."""
    from edgeforge.benchmarks.report import farm_report

    artifact = Path(artifact).resolve()
    name = name or artifact.name
    with connected(address) as ray:
        nodes = check_nodes(ray, artifact, resource=resource)
        sections, assets = [], {}
        for number, node in enumerate(nodes, 1):
            cpus = max(1, int(node["Resources"].get("CPU", 1)))
            here = dataclasses.replace(options, threads=options.threads or cpus, progress=False)
            started = time.perf_counter()
            log(f"node {number} of {len(nodes)}: {node_label(node)}, {cpus} CPU(s) reserved, "
                f"{here.threads} thread(s)")
            task = ray.remote(_bench_here).options(**pinned(node, num_cpus=cpus, max_retries=0))
            report, figures = ray.get(task.remote(str(artifact), here, f"{name} @ node {number}", checkpoint))
            log(f"node {number} of {len(nodes)}: done in {time.perf_counter() - started:.0f} s")
            sections.append({"node": {"number": number, "id": node["NodeID"], "address": node["NodeManagerAddress"],
                                      "ray_cpus": cpus, "resources": node["Resources"]}, "report": report})
            assets.update(figures)
    return farm_report(address, sections), assets


def _bench_here(artifact: str, options, name: str, checkpoint: str | None) -> tuple[dict, dict[str, bytes]]:
    """Runs on the node: the local bench of one artifact, as a report of its own (this node's machine)."""
    from edgeforge.benchmarks.plots import model_plots
    from edgeforge.benchmarks.report import slug
    from edgeforge.benchmarks.run import bench_model, start_report

    report = start_report(options, log=lambda line: None)
    entry, figures = bench_model(artifact, None, options, name=name, checkpoint=checkpoint, log=lambda line: None)
    report["models"].append(entry)
    figures.update(model_plots(entry, slug(entry["name"])))
    return report, figures
