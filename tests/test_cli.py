"""The CLI end to end: outputs per image, and one-line errors with a non-zero exit for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import one_line_error
from PIL import Image


def edgeforge(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "edgeforge", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_help_lists_commands():
    result = edgeforge("--help")
    assert result.returncode == 0
    for command in ("zoo", "build", "export", "run", "data"):
        assert command in result.stdout


def test_run_writes_masks_overlays_and_json(mini_artifacts, photos, tmp_path):
    image = tmp_path / "astronaut.jpg"
    photos["astronaut"].save(image)
    out = tmp_path / "pred"
    result = edgeforge("run", mini_artifacts["face-parsing"], image, "-o", out)
    assert result.returncode == 0, result.stderr
    labels = np.asarray(Image.open(out / "astronaut.labels.png"))
    assert labels.shape == (512, 512) and labels.max() < 19
    assert Image.open(out / "astronaut.overlay.png").size == (512, 512)
    summary = json.loads((out / "astronaut.json").read_text())
    assert summary["task"] == "semantic-segmentation"
    assert sum(summary["labels"].values()) == pytest.approx(1.0)


def test_run_classification_and_one_bad_image_fails_alone(mini_artifacts, photos, tmp_path):
    good = tmp_path / "cat.png"
    photos["chelsea"].save(good)
    truncated = tmp_path / "truncated.jpg"
    photos["chelsea"].save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    out = tmp_path / "pred"
    result = edgeforge("run", mini_artifacts["facial-emotions"], truncated, good, "-o", out)
    assert result.returncode == 1
    assert "truncated.jpg" in one_line_error(result)
    scores = json.loads((out / "cat.json").read_text())["scores"]
    assert set(scores) == {"sad", "disgust", "angry", "neutral", "fear", "surprise", "happy"}
    assert not (out / "truncated.json").exists()


@pytest.mark.parametrize("content, expected", [
    (b"", "not an image"),
    (b"hello, I am text", "not an image"),
])
def test_run_rejects_non_images(content, expected, mini_artifacts, tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    line = one_line_error(edgeforge("run", mini_artifacts["facial-emotions"], path, "-o", tmp_path / "o"))
    assert expected in line and "photo.png" in line


def test_run_missing_image(mini_artifacts, tmp_path):
    line = one_line_error(edgeforge("run", mini_artifacts["facial-emotions"], tmp_path / "nope.jpg", "-o", tmp_path))
    assert "no such file" in line


def test_build_errors_are_one_line(tmp_path, mini_checkpoints):
    assert "does not exist" in one_line_error(edgeforge("build", tmp_path / "missing", "-o", tmp_path / "out"))
    assert "unknown target" in one_line_error(
        edgeforge("build", mini_checkpoints["face-parsing"], "-o", tmp_path / "out", "--targets", "onnx,tflite"))
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((mini_checkpoints["facial-emotions"] / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"\x80\x04fake")
    assert "--trust-pickle" in one_line_error(edgeforge("export", pickled, "-o", tmp_path / "out"))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{broken")
    (corrupt / "model.safetensors").write_bytes(b"junk")
    one_line_error(edgeforge("export", corrupt, "-o", tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_zoo_make_and_export_cli(tmp_path):
    checkpoint = tmp_path / "ck"
    assert edgeforge("zoo", "make", "facial-emotions", "--mini", "-o", checkpoint).returncode == 0
    result = edgeforge("export", checkpoint, "-o", tmp_path / "art")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "art" / "onnx" / "model.onnx").is_file()
    assert "max |logit diff| vs PyTorch" in result.stderr


def test_build_runs_export_quantize_and_bench(mini_checkpoints, tmp_path):
    """The main job end to end: artifacts, a quantized variant, and the report beside them."""
    out = tmp_path / "emotions"
    result = edgeforge("build", mini_checkpoints["facial-emotions"], "-o", out, "--targets", "onnx",
                       "--precisions", "uint8", "--max-drift", "100", "--bench", "quick")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["variants"]) == {"fp32", "uint8"}
    assert (out / "onnx" / "model_uint8.onnx").is_file()
    assert json.loads((out / "config.json").read_text())["transformers.js_config"] == {"dtype": "fp32"}
    report = json.loads((tmp_path / "emotions-report" / "report.json").read_text())
    assert "uint8" in json.dumps(report) and (tmp_path / "emotions-report" / "report.md").is_file()
