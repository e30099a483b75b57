"""Reliability v2: no data loss on any write path, one line (never a traceback or a hang) on any input, output
modes a normal write would give, and one policy for unreadable inputs. Each class is tried with several members."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import rng_image

from edgeforge.cli import main


def run(capsys, *argv) -> tuple[int, str]:
    """The CLI in this process: (exit status, stderr). A traceback would fail the test by itself."""
    status = main([str(a) for a in argv])
    return status, capsys.readouterr().err


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("edgeforge: error:")]
    assert len(lines) == 1, err
    return lines[0]


def snapshot(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def users_folder(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"a photo of the user's")
    return folder


# --- no write path replaces a directory that is not its own output ---------------------------------------
def test_every_command_that_takes_an_output_refuses_a_foreign_directory(capsys, users_folder, mini_checkpoints,
                                                                        mini_artifacts, tmp_path):
    before = snapshot(users_folder)
    commands = [
        ("zoo", "make", "face-parsing", "--mini", "-o", users_folder),
        ("zoo", "make", "face-parsing", "--mini", "--trained", "-o", users_folder),
        ("zoo", "train", "facial-emotions", "--steps", "1", "-o", users_folder),
        ("data", "synth", "faces", "-n", "1", "--size", "64", "--no-progress", "-o", users_folder),
        ("export", mini_checkpoints["facial-emotions"], "-o", users_folder),
        ("build", mini_checkpoints["facial-emotions"], "-o", users_folder, "--targets", "onnx", "--bench", "none"),
        ("build", mini_checkpoints["facial-emotions"], "-o", tmp_path / "art", "--targets", "onnx",
         "--precisions", "none", "--report", users_folder),
        ("bench", mini_artifacts["facial-emotions"], "--report", users_folder),
    ]
    for argv in commands:
        status, err = run(capsys, *argv)
        assert status == 2, (argv, err)
        assert "refusing to replace it" in one_line(err), argv
        assert snapshot(users_folder) == before, argv
    assert not (tmp_path / "art").exists()  # the report directory was refused before the build started


def test_an_output_path_that_is_a_file_is_one_line(capsys, mini_checkpoints, mini_artifacts, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me")
    image = tmp_path / "in.png"
    rng_image(0).save(image)
    commands = [
        ("zoo", "make", "face-parsing", "--mini", "-o", a_file),
        ("data", "synth", "faces", "-n", "1", "--size", "64", "--no-progress", "-o", a_file),
        ("build", mini_checkpoints["facial-emotions"], "-o", a_file, "--targets", "onnx", "--bench", "none"),
        ("build", mini_checkpoints["facial-emotions"], "-o", a_file / "below", "--targets", "onnx", "--bench", "none"),
        ("bench", mini_artifacts["facial-emotions"], "--report", a_file),
        ("run", mini_artifacts["facial-emotions"], image, "-o", a_file),
    ]
    for argv in commands:
        status, err = run(capsys, *argv)
        assert status == 2, (argv, err)
        one_line(err)
        assert a_file.read_text() == "keep me", argv


# --- inputs: JSON, preprocessing settings, special files, budgets, URLs ----------------------------------
def _artifact_copy(mini_artifacts, tmp_path, name="facial-emotions") -> Path:
    return Path(shutil.copytree(mini_artifacts[name], tmp_path / name))


@pytest.mark.parametrize("content", ["{not json", "[" * 100_000 + "]" * 100_000, "\xff\xfe", "[1, 2]", ""])
def test_malformed_or_nested_configs_are_one_line(content, capsys, mini_artifacts, mini_checkpoints, tmp_path):
    image = tmp_path / "in.png"
    rng_image(0).save(image)
    artifact = _artifact_copy(mini_artifacts, tmp_path)
    (artifact / "config.json").write_bytes(content.encode("utf-8", "surrogateescape") if content != "\xff\xfe"
                                           else b"\xff\xfe{}")
    status, err = run(capsys, "run", artifact, image, "-o", tmp_path / "out", "--no-verify")
    assert status == 2 and "config.json" in one_line(err)
    (artifact / "manifest.json").write_text(content if content != "\xff\xfe" else "{}")
    status, err = run(capsys, "run", artifact, image, "-o", tmp_path / "out")
    assert status == 2 and "manifest.json" in one_line(err)
    checkpoint = Path(shutil.copytree(mini_checkpoints["facial-emotions"], tmp_path / "ckpt"))
    (checkpoint / "preprocessor_config.json").write_text(content if content != "\xff\xfe" else "[]")
    status, err = run(capsys, "export", checkpoint, "-o", tmp_path / "exported")
    assert status == 2 and "preprocessor_config.json" in one_line(err)
    assert not (tmp_path / "exported").exists()


@pytest.mark.parametrize("change", [{"size": {"height": 0, "width": 64}}, {"size": {"height": 64, "width": -3}},
                                    {"size": {"height": 10 ** 9, "width": 64}}, {"image_std": [0.5, 0, 0.5]},
                                    {"image_mean": [0.5, 0.5]}, {"rescale_factor": "NaN"}, {"size": 7}])
def test_impossible_preprocessing_settings_are_one_line(change, capsys, mini_artifacts, tmp_path):
    image = tmp_path / "in.png"
    rng_image(0).save(image)
    artifact = _artifact_copy(mini_artifacts, tmp_path)
    config = json.loads((artifact / "preprocessor_config.json").read_text())
    config.update({k: (float("nan") if v == "NaN" else v) for k, v in change.items()})
    (artifact / "preprocessor_config.json").write_text(json.dumps(config))
    status, err = run(capsys, "run", artifact, image, "-o", tmp_path / "out", "--no-verify")
    assert status == 2 and "preprocessor_config.json" in one_line(err)


def test_special_files_given_as_images_fail_alone_without_hanging(mini_artifacts, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    good = tmp_path / "good.png"
    rng_image(1).save(good)
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "edgeforge", "run", str(mini_artifacts["facial-emotions"]),
                             str(fifo), "/dev/zero", str(good), "-o", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120)
    assert time.monotonic() - started < 60
    assert result.returncode == 1, result.stderr  # one bad input fails alone; the good one is written
    assert "Traceback" not in result.stderr
    assert sum("not a regular file" in line for line in result.stderr.splitlines()) == 2, result.stderr
    assert (tmp_path / "out" / "good.json").is_file()


@pytest.mark.parametrize("budget", ["nan", "inf", "-inf", "-1"])
def test_a_budget_that_is_not_a_finite_number_is_refused_before_any_work(budget, capsys, mini_checkpoints,
                                                                         mini_artifacts, tmp_path):
    status, err = run(capsys, "build", mini_checkpoints["facial-emotions"], "-o", tmp_path / "art",
                      f"--max-drift={budget}", "--bench", "none")
    assert status == 2 and "budget" in one_line(err) and not (tmp_path / "art").exists()
    artifact = _artifact_copy(mini_artifacts, tmp_path)
    before = snapshot(artifact)
    status, err = run(capsys, "quantize", artifact, "--precisions", "uint8", f"--max-drift={budget}")
    assert status == 2 and "budget" in one_line(err) and snapshot(artifact) == before


def test_serve_web_answers_urls_the_file_system_refuses(mini_artifacts, tmp_path):
    from edgeforge.cli.serve_web import make_server, server_url

    page = tmp_path / "page"
    page.mkdir()
    (page / "index.html").write_text("<html></html>")
    server = make_server([mini_artifacts["facial-emotions"]], page_dir=page, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = server_url(server)
        name = next(iter(server.models))
        for path in ("models/%s/%%00" % name, "%00", "models/%s/config.json%%00.png" % name, "a%00/../index.html",
                     "models/%s/%s" % (name, "x" * 5000)):
            with pytest.raises(urllib.error.HTTPError) as answer:
                urllib.request.urlopen(base + path, timeout=10)
            assert answer.value.code == 404, path
        assert urllib.request.urlopen(base + f"models/{name}/config.json", timeout=10).status == 200  # still serving
    finally:
        server.shutdown()
        server.server_close()


def test_a_mistyped_local_path_is_reported_at_once(tmp_path, monkeypatch):
    (tmp_path / "artifacts").mkdir()
    image = tmp_path / "in.png"
    rng_image(0).save(image)
    for mistyped in ("artifacts/face-parsin", "artefacts/face-parsing", "./nowhere", "nowhere/a/b", "model.safetensors"):
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "edgeforge", "run", mistyped, str(image), "-o", "out"],
                                capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert time.monotonic() - started < 20, mistyped  # not 30-40 s of retries against the hub
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert sum(line.startswith("edgeforge: error:") for line in result.stderr.splitlines()) == 1, result.stderr
        assert "WARNING" not in result.stderr, result.stderr


# --- killed at any stage: the previous artifact, byte for byte ----------------------------------------------
def _start(argv: list, log: Path, env=None) -> subprocess.Popen:
    with open(log, "w") as stderr:
        return subprocess.Popen([sys.executable, "-m", "edgeforge", *map(str, argv)], stdout=subprocess.DEVNULL,
                                stderr=stderr, env=env)


def _wait_for(process: subprocess.Popen, log: Path, text: str, timeout: float = 400) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"ended before '{text}':\n{log.read_text()}")
        time.sleep(0.02)
    process.kill()
    pytest.fail(f"never reached '{text}'")


def test_a_build_killed_while_quantizing_leaves_the_previous_artifact(mini_artifacts, tmp_path):
    from edgeforge.runtime import load
    from edgeforge.zoo.shipped import trained_checkpoint

    for how in (signal.SIGKILL, signal.SIGTERM):
        previous = Path(shutil.copytree(mini_artifacts["facial-emotions"], tmp_path / how.name / "out"))
        before = snapshot(previous)
        log = tmp_path / f"{how.name}.log"
        process = _start(["build", trained_checkpoint("facial-emotions"), "-o", previous, "--targets", "onnx",
                          "--precisions", "quantized,q4", "--bench", "none"], log)
        _wait_for(process, log, "[quantized]")
        process.send_signal(how)
        status = process.wait(timeout=120)
        assert status == (-signal.SIGKILL if how == signal.SIGKILL else 130), log.read_text()
        assert snapshot(previous) == before, how.name
        load(previous)  # still verifies
        if how == signal.SIGTERM:
            assert "Traceback" not in log.read_text()
            assert [p.name for p in previous.parent.iterdir()] == ["out"]  # nothing staged is left


def test_a_terminated_bench_leaves_no_temporary_directory(mini_artifacts, tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    log = tmp_path / "bench.log"
    process = _start(["bench", mini_artifacts["facial-emotions"], "--quick", "--report", tmp_path / "report"], log,
                     env={**os.environ, "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 300
    while not list(scratch.glob("edgeforge-bench-*")):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130, log.read_text()
    # (onnxruntime leaves a `.ses` session-id file in TMPDIR when imported: not ours to remove)
    assert list(scratch.glob("edgeforge-*")) == [] and not (tmp_path / "report").exists()


# --- one policy for unreadable inputs; output modes -------------------------------------------------------
def test_unreadable_dataset_images_are_skipped_counted_and_reported_up_front(capsys, mini_artifacts, tmp_path):
    from edgeforge.data.synth import write_dataset

    dataset = tmp_path / "faces"
    write_dataset("faces", 4, dataset, size=64, progress=False)
    (dataset / "images" / "00001.jpg").write_bytes(b"\xff\xd8 truncated")
    status, err = run(capsys, "data", "info", dataset)
    assert status == 0 and "warning: skipped images/00001.jpg" in err
    report = tmp_path / "report"
    status, err = run(capsys, "bench", mini_artifacts["face-parsing"], "--quick", "--dataset", dataset,
                      "--report", report)
    assert status == 0, err
    assert "warning: skipped images/00001.jpg" in err
    data = json.loads((report / "report.json").read_text())["models"][0]["dataset"]
    assert data["samples"] == 3 and data["skipped_unreadable"] == 1 and data["of"] == 4


def test_outputs_get_the_modes_a_plain_write_would(capsys, mini_artifacts, tmp_path):
    image = tmp_path / "in.png"
    rng_image(0).save(image)
    previous = os.umask(0o022)
    try:
        artifact = _artifact_copy(mini_artifacts, tmp_path)
        status, err = run(capsys, "quantize", artifact, "--precisions", "uint8", "--max-drift", "100",
                          "--num-images", "1", "--eval-images", "1")
        assert status == 0, err
        status, err = run(capsys, "run", artifact, image, "-o", tmp_path / "out")
        assert status == 0, err
        paths = [artifact, artifact / "manifest.json", artifact / "onnx" / "model_uint8.onnx",
                 tmp_path / "out" / "in.json"]
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}
        assert modes == {artifact.name: 0o755, "manifest.json": 0o644, "model_uint8.onnx": 0o644, "in.json": 0o644}
        # save_pretrained writes model.safetensors through an owner-only temporary file
        status, err = run(capsys, "zoo", "make", "face-parsing", "--mini", "-o", tmp_path / "checkpoint")
        assert status == 0, err
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "checkpoint").iterdir()}
        assert modes and set(modes.values()) == {0o644}, modes
    finally:
        os.umask(previous)
