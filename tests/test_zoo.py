"""Checkpoints: faithful to the reference facts, loaded safely."""

import json

import pytest
import torch

from edgeforge.errors import EdgeforgeError
from edgeforge.families import family_for
from edgeforge.references import REFERENCE_NAMES, load_reference
from edgeforge.zoo.checkpoints import (
    checkpoint_config,
    load_checkpoint,
    make_checkpoint,
)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_full_size_matches_reference_architecture(name):
    ref = load_reference(name)
    config = checkpoint_config(name)
    family = family_for(ref["model_type"])
    for key in family.architecture_keys:
        assert getattr(config, key) == ref[key], key
    assert {str(k): v for k, v in config.id2label.items()} == ref["id2label"]
    with torch.device("meta"):  # parameter count without allocating 85M weights
        model = family.transformers_class("model_class")(config)
    millions = sum(p.numel() for p in model.parameters()) / 1e6
    assert millions == pytest.approx(ref["parameters_million"], rel=0.01)


@pytest.mark.parametrize("name", REFERENCE_NAMES)
def test_mini_checkpoint_layout_and_settings(name, mini_checkpoints):
    path = mini_checkpoints[name]
    assert {p.name for p in path.iterdir()} == {"config.json", "model.safetensors", "preprocessor_config.json"}
    ref = load_reference(name)
    processor = json.loads((path / "preprocessor_config.json").read_text())
    assert processor["image_mean"] == ref["image_processor"]["image_mean"]
    assert processor["image_std"] == ref["image_processor"]["image_std"]
    assert processor["resample"] == 2  # PIL bilinear
    config = json.loads((path / "config.json").read_text())
    assert config["id2label"] == ref["id2label"]
    checkpoint = load_checkpoint(path)
    assert checkpoint.family.task == ref["task"]
    assert sum(p.numel() for p in checkpoint.model.parameters()) < 2_000_000


def test_same_seed_same_weights(tmp_path):
    a = make_checkpoint("facial-emotions", tmp_path / "a", mini=True, seed=3)
    b = make_checkpoint("facial-emotions", tmp_path / "b", mini=True, seed=3)
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()


def _pickle_checkpoint(tmp_path, mini_checkpoints):
    source = load_checkpoint(mini_checkpoints["facial-emotions"])
    target = tmp_path / "pickled"
    source.model.save_pretrained(target, safe_serialization=False)
    source.image_processor.save_pretrained(target)
    assert (target / "pytorch_model.bin").exists() and not list(target.glob("*.safetensors"))
    return target


def test_pickle_refused_without_trust(tmp_path, mini_checkpoints):
    target = _pickle_checkpoint(tmp_path, mini_checkpoints)
    with pytest.raises(EdgeforgeError, match="pickle"):
        load_checkpoint(target)
    assert load_checkpoint(target, trust_pickle=True).family.model_type == "vit"


@pytest.mark.parametrize("name", ["model.pt", "weights.pth", "pytorch_model.bin"])
def test_pickle_file_path_refused(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(EdgeforgeError, match="pickle"):
        load_checkpoint(path)


def test_missing_and_corrupt_checkpoints(tmp_path, mini_checkpoints):
    with pytest.raises(EdgeforgeError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    for f in mini_checkpoints["face-parsing"].iterdir():
        (corrupt / f.name).write_bytes(f.read_bytes())
    (corrupt / "model.safetensors").write_bytes(b"this is not safetensors")
    with pytest.raises(EdgeforgeError, match="corrupt|cannot load"):
        load_checkpoint(corrupt)
    (corrupt / "config.json").write_text("{not json")
    with pytest.raises(EdgeforgeError):
        load_checkpoint(corrupt)
