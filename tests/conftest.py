"""Shared fixtures: mini checkpoints and their artifact directories, built once per test session."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

REFERENCES = ("face-parsing", "clothes-parsing", "facial-emotions")


@pytest.fixture(scope="session")
def mini_checkpoints(tmp_path_factory):
    """reference name -> directory of a mini checkpoint with seeded random weights."""
    from edgeforge.zoo.checkpoints import make_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return {name: make_checkpoint(name, root / name, mini=True, seed=1) for name in REFERENCES}


@pytest.fixture(scope="session")
def mini_artifacts(tmp_path_factory, mini_checkpoints):
    """reference name -> artifact directory (ONNX + ORT) built from the mini checkpoint."""
    from edgeforge.stages import build

    root = tmp_path_factory.mktemp("artifacts")
    artifacts = {}
    for name, checkpoint in mini_checkpoints.items():
        build(checkpoint, root / name, targets=("onnx", "ort"), log=lambda *_: None)
        artifacts[name] = root / name
    return artifacts


@pytest.fixture(scope="session")
def trained_artifacts(tmp_path_factory):
    """reference name -> ONNX artifact directory built from the shipped trained mini (real accuracy, so
    drift means what it says). Tests that add variants copy it first."""
    from edgeforge.stages import build
    from edgeforge.zoo.shipped import trained_checkpoint

    root = tmp_path_factory.mktemp("trained-artifacts")
    for name in REFERENCES:
        build(trained_checkpoint(name), root / name, targets=("onnx",), log=lambda *_: None)
    return {name: root / name for name in REFERENCES}


@pytest.fixture(scope="session")
def photos():
    """Real public-domain photos shipped by scikit-image: a portrait and a cat (parity, not accuracy)."""
    from skimage import data

    return {"astronaut": Image.fromarray(data.astronaut()), "chelsea": Image.fromarray(data.chelsea())}


def one_line_error(result) -> str:
    """Assert a CLI run failed with a single `edgeforge: error:` line and no traceback; return it."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("edgeforge: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def rng_image(seed: int, size=(96, 64)) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (*size[::-1], 3), dtype=np.uint8))
