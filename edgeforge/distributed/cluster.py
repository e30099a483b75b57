"""Connecting to a running Ray cluster, and the checks that turn the usual mistakes into one line.

A wrong address would have ``ray.init`` retry for minutes; a node that cannot see the artifact would fail
inside a worker, deep in a traceback. So, before any work: the head's port must answer (a plain TCP
connect, seconds), Ray must be installed here (the ``ray`` extra), and every alive node must see the same
artifact (its manifest's sha256) and be able to write the output folder -- checked by a task pinned to
each node. The result is used as a context manager; leaving it disconnects (the cluster keeps running).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from edgeforge.errors import EdgeforgeError

RAY_EXTRA = "pip install 'edgeforge[ray]'"
PROBE_SECONDS = 5.0
NODE_CHECK_SECONDS = 120.0


class ClusterError(EdgeforgeError):
    """The cluster cannot do the work: not reachable, Ray missing, a node that cannot see the files."""


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClusterError(f"--ray needs Ray on this machine and every node: {RAY_EXTRA}") from None
    return ray


def parse_address(address: str) -> tuple[str, int]:
    """HOST:PORT of the head's GCS (what `ray start --head` prints), as a pair."""
    host, _, port = address.rpartition(":")
    if address.startswith("ray://"):
        raise ClusterError(f"{address}: give the head's HOST:PORT (as `ray start --head` prints it); "
                           "Ray Client addresses (ray://) are not supported")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"{address!r} is not a Ray address: give the head's HOST:PORT, e.g. 10.0.0.5:6379")
    return host, int(port)


def probe(host: str, port: int, timeout: float = PROBE_SECONDS) -> str | None:
    """None if something accepts TCP connections at host:port, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


def preflight(address: str) -> tuple[str, int]:
    """Seconds-long checks before any work: the address parses, something answers there, Ray is installed."""
    host, port = parse_address(address)
    reason = probe(host, port)
    if reason is not None:
        raise ClusterError(f"no Ray cluster answers at {address} ({reason}); start one with "
                           "`ray start --head --port PORT` and pass that head's HOST:PORT")
    try:
        import importlib.util

        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ClusterError(f"--ray needs Ray on this machine and every node: {RAY_EXTRA}")
    return host, port


@contextlib.contextmanager
def connected(address: str) -> Iterator[object]:
    """Connect this process to the cluster whose head is at ``address``; yields the ``ray`` module."""
    host, port = preflight(address)
    if _is_loopback(host):
        # Ray rewrites a loopback address to this machine's routable one before connecting, and a cluster
        # started on 127.0.0.1 (listening there only) is then unreachable; this variable -- read when ray is
        # imported -- keeps 127.0.0.1 as given.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray = import_ray()
    ray.init(address=f"{host}:{port}", logging_level=logging.ERROR, log_to_driver=False,
             include_dashboard=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def alive_nodes(ray, resource: str | None = None) -> list[dict]:
    """The cluster's alive nodes (with ``resource`` among their resources, when given), head first."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if resource is not None:
        nodes = [n for n in nodes if n.get("Resources", {}).get(resource, 0) > 0]
    return sorted(nodes, key=lambda n: (not n.get("Resources", {}).get("node:__internal_head__"), n["NodeID"]))


def node_label(node: dict) -> str:
    return f"{node['NodeManagerAddress']} ({node['NodeID'][:8]})"


def actor_slots(ray, threads: int) -> int:
    """How many actors of ``threads`` CPUs each the cluster holds at once (at least one)."""
    return max(1, int(ray.cluster_resources().get("CPU", 1)) // threads)


def pinned(node: dict, **options):
    """Remote options that run a task on ``node`` and nowhere else."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False), **options}


def check_nodes(ray, artifact: Path, writable: Path | None = None, resource: str | None = None) -> list[dict]:
    """Every alive node sees ``artifact`` with this machine's manifest and can write ``writable``; returns
    the nodes. Raises ClusterError naming the first node that cannot."""
    manifest = artifact / "manifest.json"
    expected = _sha256(manifest) if manifest.is_file() else None
    nodes = alive_nodes(ray, resource)
    if not nodes:
        raise ClusterError("the cluster has no alive node" + (f" with the resource {resource!r}" if resource else ""))
    look = ray.remote(num_cpus=0)(_look_around)
    refs = [look.options(**pinned(node)).remote(str(artifact), expected, str(writable) if writable else None)
            for node in nodes]
    for node, ref in zip(nodes, refs):
        try:
            problem = ray.get(ref, timeout=NODE_CHECK_SECONDS)
        except Exception as exc:  # noqa: BLE001 -- whatever Ray raises, the user needs the node and the first line
            cause = _first_line(exc)
            if "ModuleNotFoundError" in cause or "No module named" in cause:
                problem = f"cannot import edgeforge there ({RAY_EXTRA} on every node)"
            else:
                problem = f"did not answer the check ({cause})"
        if problem:
            raise ClusterError(f"node {node_label(node)} {problem}")
    return nodes


def _look_around(artifact: str, manifest_sha256: str | None, writable: str | None) -> str | None:
    """Runs on a node: what it cannot see or write, or None."""
    import edgeforge  # noqa: F401 -- fails here, on the node, when edgeforge is not installed there

    manifest = Path(artifact) / "manifest.json"
    if not manifest.is_file():
        return (f"cannot see the artifact {artifact} (no manifest.json there): put artifacts and inputs on a path "
                "every node sees (a shared file system)")
    if manifest_sha256 is not None and _sha256(manifest) != manifest_sha256:
        return f"has another artifact at {artifact} (its manifest.json differs from this machine's)"
    if writable is not None and not (Path(writable).is_dir() and os.access(writable, os.W_OK | os.X_OK)):
        return f"cannot write the output folder {writable}: it must be on a path every node sees and can write"
    return None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line and not line.startswith(("File ", "Traceback"))]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__)[:300]
