"""`--ray` on a real Ray cluster: a head and a second node started by `ray start` on this machine (loopback
only), stopped by their own pids at the end. Run and bench on the cluster must give what the local path
gives; faults (a node's raylet killed, the head killed) and bad input must end as promised."""

from __future__ import annotations

import filecmp
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import one_line_error

pytest.importorskip("ray", reason="the ray extra is not installed")

from edgeforge.distributed.local_cluster import LAUNCHER, LocalCluster  # noqa: E402


def edgeforge(*args, timeout=600, **popen):
    return subprocess.run([sys.executable, "-m", "edgeforge", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **popen)


def start(*args):
    return subprocess.Popen([sys.executable, "-m", "edgeforge", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(cpus_per_node=1) as running:
        running.add_node(resources={"edgeforge-test-board": 1})
        yield running


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Synthetic people (clothes parsing) and expressions, as files a run is given."""
    from edgeforge.data.synth import write_dataset

    root = tmp_path_factory.mktemp("ray-inputs")
    write_dataset("people", 24, root / "people", seed=31, size=256, progress=False)
    write_dataset("expressions", 40, root / "expressions", seed=32, size=128, progress=False)
    return {"people": sorted((root / "people" / "images").iterdir()),
            "expressions": sorted((root / "expressions").glob("*/*.png"))}  # class folders


def same_tree(left: Path, right: Path) -> bool:
    comparison = filecmp.dircmp(left, right)
    files = sorted(p.name for p in left.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(left, right, files, shallow=False)
    return not (comparison.left_only or comparison.right_only or mismatch or errors)


def test_cluster_has_two_nodes_listening_on_loopback_only(cluster):
    assert len(cluster.nodes) == 2 and all(cluster.nodes)
    listening = cluster.listening()
    assert listening, "the cluster listens nowhere?"
    assert all(address.rsplit(":", 1)[0] in ("127.0.0.1", "::ffff:127.0.0.1") for address in listening), listening


@pytest.mark.parametrize("name,kind", [("clothes-parsing", "people"), ("facial-emotions", "expressions")])
def test_run_on_cluster_writes_the_local_bytes_and_a_rerun_keeps_them(cluster, trained_artifacts, inputs, tmp_path,
                                                                     name, kind):
    artifact, images = trained_artifacts[name], inputs[kind]
    local = edgeforge("run", artifact, *images, "-o", tmp_path / "local", "--threads", "1")
    assert local.returncode == 0, local.stderr
    remote = edgeforge("run", artifact, *images, "-o", tmp_path / "ray", "--threads", "1", "--ray", cluster.address,
                       "--no-progress")
    assert remote.returncode == 0, remote.stderr
    assert "Traceback" not in remote.stderr
    assert f"{len(images)} image(s) predicted" in remote.stdout
    assert same_tree(tmp_path / "local", tmp_path / "ray")
    per_image = 3 if kind == "people" else 1
    assert len(list((tmp_path / "ray").iterdir())) == per_image * len(images)

    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()}
    again = edgeforge("run", artifact, *images, "-o", tmp_path / "ray", "--threads", "1", "--ray", cluster.address,
                      "--no-progress")
    assert again.returncode == 0, again.stderr
    assert f"{len(images)} of {len(images)} image(s) were done before" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "ray").iterdir()} == before


def _drift_figures(report: Path) -> dict:
    model = json.loads((report / "report.json").read_text())["models"][0]
    figures = {name: dict(entry["drift"]) for name, entry in model["variants"].items() if entry.get("drift")}
    for drift in figures.values():
        if drift.get("worst_image"):
            drift["worst_image"] = {k: v for k, v in drift["worst_image"].items() if k != "path"}  # absolute on --ray
    return figures


@pytest.fixture(scope="module")
def quantized_artifacts(trained_artifacts, tmp_path_factory):
    """The trained clothes and emotions minis with three quantized variants each (drift to measure)."""
    import shutil

    from edgeforge.stages import quantize

    root = tmp_path_factory.mktemp("ray-quantized")
    made = {}
    for name in ("clothes-parsing", "facial-emotions"):
        shutil.copytree(trained_artifacts[name], root / name)
        quantize(root / name, precisions="fp16,quantized,uint8", budget=100, log=lambda *_: None)
        made[name] = root / name
    return made


@pytest.mark.parametrize("name,kind,count", [("clothes-parsing", "people", 10), ("facial-emotions", "expressions", 48)])
def test_bench_drift_on_cluster_equals_local(cluster, quantized_artifacts, tmp_path, name, kind, count):
    from edgeforge.data.synth import write_dataset

    write_dataset(kind, count, tmp_path / "data", seed=33, size=192, progress=False)
    common = ["--dataset", tmp_path / "data", "--quick", "--no-baselines", "--no-memory", "--threads", "1",
              "--no-progress"]
    local = edgeforge("bench", quantized_artifacts[name], *common, "--report", tmp_path / "local")
    assert local.returncode == 0, local.stderr
    remote = edgeforge("bench", quantized_artifacts[name], *common, "--report", tmp_path / "ray", "--ray",
                       cluster.address)
    assert remote.returncode == 0, remote.stderr
    here, there = _drift_figures(tmp_path / "local"), _drift_figures(tmp_path / "ray")
    assert set(here) == set(there) == {"fp32", "fp16", "quantized", "uint8"}
    assert here == there  # every figure, to the last bit: confusion matrices and counts, reduced in image order
    drift = json.loads((tmp_path / "ray" / "report.json").read_text())["models"][0]["drift"]
    assert drift["samples"] == count and drift["computed_on"] == f"Ray cluster {cluster.address}"


def test_bench_on_each_node_writes_one_section_per_node(cluster, trained_artifacts, tmp_path):
    result = edgeforge("bench", trained_artifacts["facial-emotions"], "--ray", cluster.address, "--on-each-node",
                       "--quick", "--no-baselines", "--no-memory", "--no-progress", "--report", tmp_path / "farm")
    assert result.returncode == 0, result.stderr
    farm = json.loads((tmp_path / "farm" / "report.json").read_text())
    assert farm["format"] == "edgeforge-bench-farm/1"
    sections = farm["nodes"]
    assert len(sections) == 2 and len({s["node"]["id"] for s in sections}) == 2
    for number, section in enumerate(sections, 1):
        report = section["report"]
        assert report["machine"]["cpu"] and report["versions"]["onnxruntime"]
        (model,) = report["models"]
        assert model["name"].endswith(f"@ node {number}") and model["threads"] == [1]  # the node's 1 Ray CPU
        assert model["variants"]["fp32"]["latency"]["1"]["p50_ms"] > 0
    markdown = (tmp_path / "farm" / "report.md").read_text()
    assert "## Node 1:" in markdown and "## Node 2:" in markdown
    assert all((tmp_path / "farm" / plot).is_file() for s in sections for plot in s["report"]["models"][0]["plots"])


def test_bench_on_nodes_with_a_resource_only(cluster, trained_artifacts, tmp_path):
    result = edgeforge("bench", trained_artifacts["facial-emotions"], "--ray", cluster.address, "--node-resource",
                       "edgeforge-test-board", "--quick", "--no-baselines", "--no-memory", "--no-progress",
                       "--report", tmp_path / "farm")
    assert result.returncode == 0, result.stderr
    (section,) = json.loads((tmp_path / "farm" / "report.json").read_text())["nodes"]
    assert section["node"]["resources"].get("edgeforge-test-board") == 1
    missing = edgeforge("bench", trained_artifacts["facial-emotions"], "--ray", cluster.address, "--node-resource",
                        "no-such-board", "--quick", "--report", tmp_path / "none")
    assert missing.returncode == 2 and "no alive node with the resource" in one_line_error(missing)
    assert not (tmp_path / "none").exists()


def test_a_local_run_never_imports_ray(trained_artifacts, inputs, tmp_path):
    check = ("import sys; from edgeforge.cli import main; status = main(sys.argv[1:]); "
             "sys.exit(3 if 'ray' in sys.modules else status)")
    result = subprocess.run([sys.executable, "-c", check, "run", str(trained_artifacts["facial-emotions"]),
                             str(inputs["expressions"][0]), "-o", str(tmp_path / "out")], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


# --- faults and bad input -------------------------------------------------------------------------------
def _wait_for_results(folder: Path, count: int, process, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while len(list(folder.glob("*.json"))) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no results came"
        time.sleep(0.1)


def _check_outputs(folder: Path, images: list[Path], swept: bool = True) -> set[str]:
    """Every record in ``folder`` is whole, with its label maps; when ``swept``, no temporary is left (a worker
    killed with the head may leave the hidden temporary it was writing, until the next run sweeps it).
    Returns the stems."""
    stems = set()
    for record in folder.glob("*.json"):
        data = json.loads(record.read_text())
        assert data["input_sha256"] and data["variant"] == "fp32"
        assert (folder / f"{record.stem}.labels.png").is_file() and (folder / f"{record.stem}.overlay.png").is_file()
        stems.add(record.stem)
    hidden = [p for p in folder.iterdir() if p.name.startswith(".")]
    assert not hidden if swept else all(".partial" in p.name for p in hidden), hidden
    assert stems <= {p.stem for p in images}
    return stems


@pytest.fixture(scope="module")
def many_people(tmp_path_factory):
    from edgeforge.data.synth import write_dataset

    root = tmp_path_factory.mktemp("ray-many")
    write_dataset("people", 160, root / "people", seed=34, size=256, progress=False)
    return sorted((root / "people" / "images").iterdir())


@pytest.fixture(scope="module")
def local_outputs(trained_artifacts, many_people, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray-local-outputs")
    result = edgeforge("run", trained_artifacts["clothes-parsing"], *many_people, "-o", out, "--threads", "1")
    assert result.returncode == 0, result.stderr
    return out


def test_a_node_killed_mid_run_loses_no_image(trained_artifacts, many_people, local_outputs, tmp_path):
    with LocalCluster(cpus_per_node=1) as faulty:
        faulty.add_node()
        run = start("run", trained_artifacts["clothes-parsing"], *many_people, "-o", tmp_path / "out", "--threads",
                    "1", "--ray", faulty.address, "--no-progress")
        _wait_for_results(tmp_path / "out", 20, run)
        os.kill(faulty.raylet(1), signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=300)
    assert run.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert len(_check_outputs(tmp_path / "out", many_people)) == len(many_people)
    assert same_tree(local_outputs, tmp_path / "out")  # each image once, as the local run wrote it


def test_head_killed_ends_with_one_line_and_a_rerun_finishes(trained_artifacts, many_people, local_outputs, tmp_path):
    with LocalCluster(cpus_per_node=1) as doomed:
        run = start("run", trained_artifacts["clothes-parsing"], *many_people, "-o", tmp_path / "out", "--threads",
                    "1", "--ray", doomed.address, "--no-progress")
        _wait_for_results(tmp_path / "out", 20, run)
        for pid in (doomed.gcs(), doomed.raylet(0)):
            os.kill(pid, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 3
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("edgeforge: error:")]
    assert len(lines) == 1 and "lost the Ray cluster" in lines[0] and "run the same command again" in lines[0]
    done = _check_outputs(tmp_path / "out", many_people, swept=False)
    assert 20 <= len(done) < len(many_people)

    with LocalCluster(cpus_per_node=1) as fresh:
        rerun = edgeforge("run", trained_artifacts["clothes-parsing"], *many_people, "-o", tmp_path / "out",
                          "--threads", "1", "--ray", fresh.address, "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(done)} of {len(many_people)} image(s) were done before" in rerun.stdout
    assert f"{len(many_people) - len(done)} image(s) predicted" in rerun.stdout
    _check_outputs(tmp_path / "out", many_people)
    assert same_tree(local_outputs, tmp_path / "out")


def test_wrong_address_is_one_line_exit_2(trained_artifacts, inputs, tmp_path):
    from edgeforge.distributed.local_cluster import _free_port

    for address, expected in ((f"127.0.0.1:{_free_port()}", "no Ray cluster answers"),
                              ("nonsense", "is not a Ray address")):
        result = edgeforge("run", trained_artifacts["facial-emotions"], inputs["expressions"][0], "-o",
                           tmp_path / "out", "--ray", address, timeout=60)
        assert result.returncode == 2 and expected in one_line_error(result)
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_without_the_ray_extra_is_one_line_exit_2(cluster, trained_artifacts, inputs, tmp_path):
    hide_ray = ("import sys; sys.modules['ray'] = None; from edgeforge.cli import main; "
                "sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", hide_ray, "run", str(trained_artifacts["facial-emotions"]),
                             str(inputs["expressions"][0]), "-o", str(tmp_path / "out"), "--ray", cluster.address],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "pip install 'edgeforge[ray]'" in one_line_error(result)


def test_an_artifact_a_node_cannot_see_is_one_line_exit_2(cluster, trained_artifacts, inputs, tmp_path):
    """A third node whose file system hides the artifact's folder (a private mount namespace with an empty
    tmpfs over it): what a node without the shared volume sees."""
    artifact = trained_artifacts["facial-emotions"]
    hide = (f"mount -t tmpfs tmpfs {artifact} && exec {sys.executable} -c \"$LAUNCHER\" start "
            f"--address={cluster.address} --node-ip-address=127.0.0.1 --num-cpus=1 "
            "--object-store-memory=100000000 --disable-usage-stats")
    before = cluster.pids()
    joined = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", hide], capture_output=True,
                            text=True, timeout=120, env={**os.environ, "LAUNCHER": LAUNCHER})
    if joined.returncode != 0 and "unshare" in joined.stderr:
        pytest.skip(f"no mount namespaces here: {joined.stderr.strip()[:200]}")
    assert joined.returncode == 0, joined.stderr
    third = cluster.pids() - before
    try:
        result = edgeforge("run", artifact, inputs["expressions"][0], "-o", tmp_path / "out", "--ray",
                           cluster.address, timeout=300)
        line = one_line_error(result)
        assert result.returncode == 2 and "cannot see the artifact" in line and "node 127.0.0.1" in line
        assert not list((tmp_path / "out").glob("*.json"))
    finally:
        for pid in third:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
