"""Tampered artifacts are never run silently: every file the runtime uses is checked against manifest.json."""

import json
import shutil
import subprocess
import sys

import onnx
import pytest
from conftest import one_line_error

from edgeforge.runtime import IntegrityError, load
from edgeforge.runtime.manifest import read_manifest, sha256_of, write_manifest


def edgeforge(*args):
    return subprocess.run([sys.executable, "-m", "edgeforge", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def artifact(mini_artifacts, tmp_path):
    return shutil.copytree(mini_artifacts["face-parsing"], tmp_path / "face-parsing")


def flip_byte(path, position=None):
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if position is None else position
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def edit_manifest(root, edit):
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_untouched_artifact_loads(artifact, photos):
    assert load(artifact).predict(photos["chelsea"]).label_map.shape == (300, 451)


@pytest.mark.parametrize("rel", ["onnx/model.onnx", "ort/model.ort", "config.json", "preprocessor_config.json"])
def test_one_flipped_byte_is_caught(rel, artifact):
    variant = "ort" if rel.startswith("ort/") else "fp32"
    flip_byte(artifact / rel, position=None if rel.endswith(("onnx", "ort")) else 5)
    with pytest.raises(IntegrityError, match=f"{rel}.*does not match its sha256"):
        load(artifact, variant=variant)


def test_replaced_model_is_caught(artifact, mini_artifacts):
    """A valid model of another artifact put in its place (what an attacker or a bad copy would do)."""
    shutil.copy(mini_artifacts["clothes-parsing"] / "onnx" / "model.onnx", artifact / "onnx" / "model.onnx")
    with pytest.raises(IntegrityError, match="model.onnx does not match its sha256"):
        load(artifact)


def test_missing_file_is_caught(artifact):
    (artifact / "onnx" / "model.onnx").unlink()
    with pytest.raises(IntegrityError, match="model.onnx is listed in the manifest but missing"):
        load(artifact)


def test_manifest_listing_another_hash_is_caught(artifact):
    edit_manifest(artifact, lambda m: m["files"]["onnx/model.onnx"].update(sha256="0" * 64))
    with pytest.raises(IntegrityError, match="does not match its sha256"):
        load(artifact)


def test_manifest_pointing_a_variant_at_an_unrecorded_file(artifact, mini_artifacts):
    shutil.copy(mini_artifacts["clothes-parsing"] / "onnx" / "model.onnx", artifact / "onnx" / "model_fp16.onnx")
    edit_manifest(artifact, lambda m: m["variants"].update(fp16={"file": "onnx/model_fp16.onnx", "format": "onnx"}))
    with pytest.raises(IntegrityError, match="model_fp16.onnx is not listed"):
        load(artifact, variant="fp16")


def test_missing_manifest_needs_an_explicit_no_verify(artifact, photos):
    (artifact / "manifest.json").unlink()
    with pytest.raises(IntegrityError, match="no manifest.json.*verify=False / --no-verify"):
        load(artifact)
    assert load(artifact, verify=False).predict(photos["chelsea"]).label_map.shape == (300, 451)


def test_no_verify_runs_a_modified_artifact(artifact, photos):
    config = json.loads((artifact / "config.json").read_text())
    config["id2label"] = {k: f"part-{k}" for k in config["id2label"]}
    (artifact / "config.json").write_text(json.dumps(config))
    with pytest.raises(IntegrityError, match="config.json does not match"):
        load(artifact)
    result = load(artifact, verify=False).predict(photos["chelsea"])
    assert all(name.startswith("part-") for name in result.pixel_shares())


def test_external_data_files_are_verified_too(artifact, photos):
    """Weights stored beside the graph (any file name the graph names) are hashed like the graph."""
    model_path = artifact / "onnx" / "model.onnx"
    model = onnx.load(str(model_path))
    onnx.save_model(model, str(model_path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=1024)  # small shape constants must stay inline
    manifest = read_manifest(artifact)
    write_manifest(artifact, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    assert "onnx/weights.bin" in read_manifest(artifact)["files"]
    expected = load(artifact).predict(photos["chelsea"]).label_map  # verified, external data and all
    assert expected.shape == (300, 451)
    flip_byte(artifact / "onnx" / "weights.bin")
    with pytest.raises(IntegrityError, match="weights.bin does not match its sha256"):
        load(artifact)


def test_cli_reports_tampering_in_one_line_and_no_verify_overrides(artifact, photos, tmp_path):
    image = tmp_path / "cat.png"
    photos["chelsea"].save(image)
    config = json.loads((artifact / "config.json").read_text())
    config["id2label"]["1"] = "renamed"
    (artifact / "config.json").write_text(json.dumps(config))
    line = one_line_error(edgeforge("run", artifact, image, "-o", tmp_path / "out"))
    assert "config.json does not match its sha256" in line and "--no-verify" in line
    assert not (tmp_path / "out" / "cat.json").exists()
    result = edgeforge("run", artifact, image, "-o", tmp_path / "out", "--no-verify")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "cat.json").exists()


def test_hashes_recorded_are_the_files_sha256(artifact):
    manifest = read_manifest(artifact)
    for rel, entry in manifest["files"].items():
        assert entry["sha256"] == sha256_of(artifact / rel) and entry["size"] == (artifact / rel).stat().st_size
    assert all(not rel.startswith(("/", "..")) for rel in manifest["files"])
