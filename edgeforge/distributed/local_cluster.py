"""A Ray cluster of several nodes on this machine, listening on 127.0.0.1 only: what the tests and the
scaling benchmark run on (a real cluster: one GCS, one raylet per node, started by Ray's `ray start`).

Two things are added to `ray start`:
- Loopback only. Ray 2.60's `ray start` replaces ``--node-ip-address=127.0.0.1`` by the machine's routable
  address, and its GCS and raylets then listen on every interface (seen with ``ss -ltnp``). Run through
  ``LAUNCHER``, which keeps the address as given, every server of every node listens on 127.0.0.1 only
  (the tests check it).
- Stopping this cluster only. `ray stop` ends every Ray process of the machine, other people's included;
  ``stop`` ends the processes whose command line names this cluster's temporary folder, and their children,
  by pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LAUNCHER = ("import sys, ray._private.services as services; "
            "services.resolve_ip_for_localhost = lambda host: host; "
            "from ray.scripts.scripts import main; sys.exit(main())")
LOOPBACK = "127.0.0.1"
#: The GCS declares a silent node dead after 3 missed 1-second health checks (Ray's default waits ~30 s):
#: a fault test should see the lost node's work rerun in seconds.
QUICK_FAILURE_DETECTION = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                           "RAY_health_check_failure_threshold": "3"}


class LocalCluster:
    """``with LocalCluster() as cluster: cluster.add_node(); ... cluster.address``: a head, then nodes."""

    def __init__(self, cpus_per_node: int = 1, object_store_mb: int = 256):
        self.cpus_per_node = cpus_per_node
        self.object_store_bytes = object_store_mb * 2 ** 20
        self.temp_dir = Path(tempfile.mkdtemp(prefix="efray-", dir="/tmp"))  # short: Ray's socket paths live here
        self.port = _free_port()
        self.address = f"{LOOPBACK}:{self.port}"
        self.nodes: list[set[int]] = []  # the pids each node started (index 0: the head)

    def __enter__(self) -> "LocalCluster":
        self.start_head()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_head(self, resources: dict | None = None) -> None:
        self._start(["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp_dir}"],
                    resources)

    def add_node(self, resources: dict | None = None) -> int:
        """Join one more node; returns its index."""
        self._start([f"--address={self.address}"], resources)
        return len(self.nodes) - 1

    def _start(self, args: list[str], resources: dict | None) -> None:
        before = self.pids()
        command = [sys.executable, "-c", LAUNCHER, "start", *args, f"--node-ip-address={LOOPBACK}",
                   f"--num-cpus={self.cpus_per_node}", f"--object-store-memory={self.object_store_bytes}",
                   "--disable-usage-stats", f"--resources={json.dumps(resources or {})}"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120,
                                env={**os.environ, **QUICK_FAILURE_DETECTION, "RAY_USAGE_STATS_ENABLED": "0"})
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed: {(result.stderr or result.stdout).strip().splitlines()[-1:]}")
        self.nodes.append(self.pids() - before)

    def pids(self) -> set[int]:
        """Every process of this cluster: those naming its folder, and all their descendants."""
        parents = _parent_map()
        roots = {pid for pid in parents if str(self.temp_dir) in _cmdline(pid)}
        found, frontier = set(roots), list(roots)
        while frontier:
            pid = frontier.pop()
            children = [child for child, parent in parents.items() if parent == pid and child not in found]
            found.update(children)
            frontier += children
        return found

    def raylet(self, node: int) -> int:
        """The pid of node ``node``'s raylet."""
        return next(pid for pid in self.nodes[node] if Path(_cmdline(pid).split(" ")[0]).name == "raylet")

    def gcs(self) -> int:
        return next(pid for pid in self.nodes[0] if Path(_cmdline(pid).split(" ")[0]).name == "gcs_server")

    def listening(self) -> list[str]:
        """Local addresses this cluster's processes listen on (TCP), from /proc."""
        inodes = set()
        for pid in self.pids():
            try:
                for fd in Path(f"/proc/{pid}/fd").iterdir():
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
            except OSError:
                continue
        addresses = []
        for table, decode in (("/proc/net/tcp", _ipv4), ("/proc/net/tcp6", _ipv6)):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    host, port = fields[1].split(":")
                    addresses.append(f"{decode(host)}:{int(port, 16)}")
        return addresses

    def stop(self) -> None:
        """End this cluster's processes (TERM, then KILL after 3 s) and remove its folder."""
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and any(_running(pid) for pid in pids):
                time.sleep(0.2)
            pids = {pid for pid in pids if _running(pid)}
            if not pids:
                break
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _parent_map() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed daemon whose parent is gone may linger as one until reaped)."""
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except (OSError, IndexError):
        return False


def _ipv4(hex_host: str) -> str:
    return socket.inet_ntop(socket.AF_INET, bytes.fromhex(hex_host)[::-1])


def _ipv6(hex_host: str) -> str:
    raw = bytes.fromhex(hex_host)
    return socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
