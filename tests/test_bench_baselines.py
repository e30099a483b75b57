"""Baselines: PyTorch eager and Optimum's plain ONNX export (offline, from a local checkpoint), and the
torch.onnx fallback, each computing the same logits as the artifact's fp32 variant."""

from __future__ import annotations

import numpy as np
import pytest

from edgeforge.benchmarks import baselines
from edgeforge.errors import EdgeforgeError


@pytest.fixture(scope="module")
def pixel_values():
    from edgeforge.data.synth import make_sample
    from edgeforge.runtime.preprocess import Preprocessor

    image, _ = make_sample("faces", 0, seed=3, size=256)
    return Preprocessor(256, 256, image_mean=(0.485, 0.456, 0.406), image_std=(0.229, 0.224, 0.225))([image])


def _fp32_logits(artifact, pixel_values):
    from edgeforge.runtime import load

    return load(artifact).forward(pixel_values)


def _candidate_logits(artifact, model_file, batch):
    from edgeforge.runtime import load

    model = load(artifact, model_file=model_file, fixed_shape=False)
    assert not isinstance(model.input.shape[0], int), "the baseline export keeps a dynamic batch axis"
    return model.forward(batch)


def test_optimum_export_offline_matches_fp32(mini_checkpoints, mini_artifacts, tmp_path, pixel_values, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    source = str(mini_checkpoints["face-parsing"])
    plain = baselines.export_plain_onnx(source, "semantic-segmentation", tmp_path)
    assert plain.name == baselines.OPTIMUM and plain.note is None
    expected = _fp32_logits(mini_artifacts["face-parsing"], pixel_values)
    batch = np.concatenate([pixel_values, pixel_values])
    logits = _candidate_logits(mini_artifacts["face-parsing"], plain.path, batch)
    np.testing.assert_allclose(logits, np.concatenate([expected, expected]), atol=1e-4)


def test_pytorch_baseline_matches_fp32_and_follows_the_thread_setting(mini_checkpoints, mini_artifacts, pixel_values):
    import torch

    checkpoint = baselines.load_pytorch(str(mini_checkpoints["face-parsing"]))
    logits = baselines.pytorch_forward(checkpoint)(pixel_values)
    np.testing.assert_allclose(logits, _fp32_logits(mini_artifacts["face-parsing"], pixel_values), atol=1e-4)
    before = torch.get_num_threads()
    try:
        baselines.pytorch_threads(1)()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_fallback_to_torch_onnx_is_labelled_when_optimum_fails(mini_checkpoints, mini_artifacts, tmp_path, pixel_values):
    source = str(mini_checkpoints["face-parsing"])
    checkpoint = baselines.load_pytorch(source)
    plain = baselines.export_plain_onnx(source, "no-such-task", tmp_path, checkpoint)  # Optimum refuses the task
    assert plain.name == baselines.TORCH_ONNX
    assert plain.note.startswith("Optimum's exporter failed:") and "torch.onnx" in plain.note
    assert "failed" in baselines.LABELS[baselines.TORCH_ONNX]
    np.testing.assert_allclose(_candidate_logits(mini_artifacts["face-parsing"], plain.path, pixel_values),
                               _fp32_logits(mini_artifacts["face-parsing"], pixel_values), atol=1e-4)


def test_missing_checkpoint_is_an_edgeforge_error(tmp_path):
    with pytest.raises(EdgeforgeError, match="does not exist"):
        baselines.load_pytorch(str(tmp_path / "gone"))


def test_a_baseline_is_scored_on_the_builds_held_out_images_with_the_builds_bound(trained_artifacts, tmp_path):
    """The check must give a baseline exactly the figure the build gave a variant: scored as a "baseline", the
    build's own uint8 variant gets the drift and bound its manifest records."""
    import shutil

    from edgeforge.benchmarks.baseline_budget import BUDGET_CHECK, check_baselines
    from edgeforge.runtime.manifest import read_manifest, write_manifest
    from edgeforge.stages import quantize

    root = tmp_path / "clothes"
    shutil.copytree(trained_artifacts["clothes-parsing"], root)
    quantize(root, precisions="uint8", log=lambda *_: None)
    built = read_manifest(root)["variants"]["uint8"]
    info = {"plain_onnx": baselines.PlainOnnx(baselines.OPTIMUM, root / "onnx" / "model.onnx"),
            "peers": [baselines.Peer("as-built", root / built["file"], "fp32")]}
    entry = {"baselines": {baselines.OPTIMUM: {}, "as-built": {}}, "notes": []}
    check_baselines(entry, root, info, 0.5, lambda *_: None)
    checked = entry["baselines"]["as-built"][BUDGET_CHECK]
    assert checked["num_images"] == built["drift"]["num_images"] == 64
    assert checked["drift_points"] == built["drift"]["drift_points"]
    assert checked["drift_bound_points"] == built["drift"]["drift_bound_points"] and checked["passed"]
    assert entry["baselines"][baselines.OPTIMUM][BUDGET_CHECK]["drift_points"] == 0.0  # fp32 itself
    # held-out images from a folder are not kept: no check, and the report says why
    manifest = read_manifest(root)
    manifest["quantization"]["eval_set"]["source"] = "photos/ (12 images)"
    write_manifest(root, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    entry = {"baselines": {"as-built": {}}, "notes": []}
    check_baselines(entry, root, info, 0.5, lambda *_: None)
    assert BUDGET_CHECK not in entry["baselines"]["as-built"] and "from a folder" in entry["notes"][0]
