"""benchmarks/run_matrix.py: which rows it runs and with which settings (the run itself is smoke-tested by hand
in quick mode on the minis; the full-size matrix is for the release machine)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from edgeforge.errors import EdgeforgeError

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "run_matrix.py"


@pytest.fixture(scope="module")
def matrix():
    spec = importlib.util.spec_from_file_location("run_matrix", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_cover_every_model_at_full_size_then_as_minis(matrix):
    rows = matrix.matrix_rows(matrix.parse_args([]))
    assert rows == [("full", n) for n in matrix.NAMES] + [("minis", n) for n in matrix.NAMES]
    assert matrix.matrix_rows(matrix.parse_args(["--only", "minis", "--models", "facial-emotions"])) == [
        ("minis", "facial-emotions")]
    with pytest.raises(EdgeforgeError, match="unknown model"):
        matrix.matrix_rows(matrix.parse_args(["--models", "resnet"]))


def test_full_size_rows_skip_drift_and_quick_mode_is_small(matrix):
    full = matrix.options_for("full", matrix.parse_args([]))
    minis = matrix.options_for("minis", matrix.parse_args([]))
    assert not full.accuracy and minis.accuracy  # random full-size weights make drift meaningless
    assert full.runs < minis.runs and len(minis.thread_counts()) >= 1
    quick = matrix.options_for("minis", matrix.parse_args(["--quick", "--no-memory"]))
    assert quick.runs == 5 and not quick.single_thread and not quick.memory and quick.accuracy
    assert matrix.options_for("full", matrix.parse_args(["--quick", "--runs", "2"])).runs == 2


def test_rows_use_random_full_size_weights_and_the_trained_minis(matrix, tmp_path):
    from edgeforge.zoo.shipped import trained_checkpoint

    checkpoint, label = matrix.prepare_checkpoint("minis", "facial-emotions", tmp_path)
    assert checkpoint == trained_checkpoint("facial-emotions") and label == "facial-emotions-mini (trained)"
