"""Loading never executes code and never reads outside the artifact.

Checkpoints: safetensors only unless trusted, and even then no pickle that calls functions; a checkpoint's
own Python code is never run. Artifacts: no file outside the directory is read, whatever the ONNX graph
(external-data locations), the manifest or symlinks say, with or without verification.
"""

import json
import os
import pickle
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeforge.errors import EdgeforgeError
from edgeforge.runtime import IntegrityError, load
from edgeforge.runtime.artifact import external_data_files
from edgeforge.runtime.manifest import read_manifest, write_manifest
from edgeforge.zoo.checkpoints import load_checkpoint


class RunsCode:
    """Unpickling this touches a file: the proof that code ran."""

    def __init__(self, sentinel):
        self.sentinel = str(sentinel)

    def __reduce__(self):
        return (os.system, (f"touch {self.sentinel}",))


def copy_checkpoint(source, target, keep=("config.json", "preprocessor_config.json", "model.safetensors")):
    target.mkdir()
    for name in keep:
        shutil.copy(source / name, target / name)
    return target


# --- checkpoints ------------------------------------------------------------------------------------------

def test_malicious_pickle_is_never_unpickled(mini_checkpoints, tmp_path):
    sentinel = tmp_path / "code-ran"
    only_pickle = copy_checkpoint(mini_checkpoints["facial-emotions"], tmp_path / "only-pickle",
                                  keep=("config.json", "preprocessor_config.json"))
    (only_pickle / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCode(sentinel)))
    with pytest.raises(EdgeforgeError, match="only pickle weights.*--trust-pickle"):
        load_checkpoint(only_pickle)
    # Trusted: transformers unpickles with torch's weights_only loader, which refuses function calls.
    with pytest.raises(EdgeforgeError, match="cannot load checkpoint"):
        load_checkpoint(only_pickle, trust_pickle=True)
    # Beside safetensors, the pickle is ignored.
    both = copy_checkpoint(mini_checkpoints["facial-emotions"], tmp_path / "both")
    (both / "pytorch_model.bin").write_bytes(pickle.dumps(RunsCode(sentinel)))
    assert load_checkpoint(both).family.model_type == "vit"
    assert not sentinel.exists()


def test_checkpoint_python_code_is_never_run(mini_checkpoints, tmp_path):
    sentinel = tmp_path / "code-ran"
    checkpoint = copy_checkpoint(mini_checkpoints["facial-emotions"], tmp_path / "remote-code")
    (checkpoint / "custom.py").write_text(f"import pathlib\npathlib.Path({str(sentinel)!r}).touch()\n"
                                          "from transformers import ViTConfig as CustomConfig\n")
    config = json.loads((checkpoint / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "custom.CustomConfig", "AutoModelForImageClassification": "custom.Model"}
    (checkpoint / "config.json").write_text(json.dumps(config))
    assert load_checkpoint(checkpoint).family.model_type == "vit"  # built-in classes, not custom.py
    config["model_type"] = "custom-net"  # a type only custom.py knows: refused, not prompted for
    (checkpoint / "config.json").write_text(json.dumps(config))
    with pytest.raises(EdgeforgeError, match="custom code"):
        load_checkpoint(checkpoint)
    assert not sentinel.exists()


# --- ONNX external data -----------------------------------------------------------------------------------

def add_model(location: str) -> onnx.ModelProto:
    """y = x + w with w stored externally at ``location``."""
    weight = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    set_external(weight, location, offset=0)
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "add",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model


def set_external(tensor: TensorProto, location: str, offset: int) -> bytes:
    data = tensor.raw_data or numpy_helper.to_array(tensor).tobytes()
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(data)))):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    return data


ESCAPES = {
    "parent": lambda root: "../../secret.bin",
    "absolute": lambda root: str(root.parent / "secret.bin"),
    "symlink": lambda root: "link.bin",
}


@pytest.fixture
def escape_setup(tmp_path):
    """A folder with a secret file beside the artifact and a symlink to it inside onnx/."""
    root = tmp_path / "art"
    (root / "onnx").mkdir(parents=True)
    (tmp_path / "secret.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    (root / "onnx" / "link.bin").symlink_to(tmp_path / "secret.bin")
    return root


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_onnxruntime_itself_refuses_escaping_external_data(escape, escape_setup):
    """Pinned: onnxruntime 1.31 refuses these on its own (the runtime checks too, for older builds)."""
    path = escape_setup / "onnx" / "model.onnx"
    onnx.save_model(add_model(ESCAPES[escape](escape_setup)), str(path))
    with pytest.raises(Exception, match="External data path"):
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def escaping_artifact(source, root, location):
    """The mini artifact with its weights moved to external data named ``location``, data written there."""
    for name in ("config.json", "preprocessor_config.json"):
        shutil.copy(source / name, root / name)
    model = onnx.load(str(source / "onnx" / "model.onnx"))
    blob = bytearray()
    for tensor in model.graph.initializer:
        if len(tensor.raw_data) >= 64:
            blob += set_external(tensor, location, offset=len(blob))
    target = (root / "onnx" / location) if not os.path.isabs(location) else location
    with open(os.path.realpath(target), "wb") as handle:  # a loader that followed it would find real weights
        handle.write(bytes(blob))
    onnx.save_model(model, str(root / "onnx" / "model.onnx"))
    return root


@pytest.mark.parametrize("escape", sorted(ESCAPES))
def test_runtime_refuses_external_data_outside_the_artifact(escape, escape_setup, mini_artifacts):
    root = escaping_artifact(mini_artifacts["face-parsing"], escape_setup, ESCAPES[escape](escape_setup))
    with pytest.raises(IntegrityError, match="outside the artifact directory"):
        load(root, verify=False)
    # Recorded in a manifest, as a malicious publisher would: verification does not make it acceptable.
    write_manifest(root, {"variants": {"fp32": {"file": "onnx/model.onnx", "format": "onnx"}}})
    with pytest.raises(IntegrityError, match="outside the artifact directory"):
        load(root)


def test_external_data_inside_the_folder_is_fine(escape_setup, mini_artifacts, photos):
    root = escaping_artifact(mini_artifacts["face-parsing"], escape_setup, "model.onnx_data")
    expected = load(mini_artifacts["face-parsing"]).predict(photos["chelsea"]).label_map
    assert np.array_equal(load(root, verify=False).predict(photos["chelsea"]).label_map, expected)
    assert external_data_files(root / "onnx" / "model.onnx") == ["model.onnx_data"]


def test_external_data_scan_finds_every_tensor_location(tmp_path):
    """Initializers of subgraphs (If branches) and Constant-node tensors can be external too."""
    def branch(name, location):
        value = numpy_helper.from_array(np.ones(2, dtype=np.float32), f"{name}_value")
        set_external(value, location, 0)
        node = helper.make_node("Constant", [], [f"{name}_out"], value=value)
        return helper.make_graph([node], name, [], [helper.make_tensor_value_info(f"{name}_out", TensorProto.FLOAT, [2])])

    cond = numpy_helper.from_array(np.array(True), "cond")
    weight = numpy_helper.from_array(np.zeros(2, dtype=np.float32), "w")
    set_external(weight, "top.bin", 0)
    node = helper.make_node("If", ["cond"], ["y"], then_branch=branch("then", "then.bin"),
                            else_branch=branch("else", "sub/else.bin"))
    graph = helper.make_graph([node], "g", [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
                              [cond, weight])
    path = tmp_path / "nested.onnx"
    onnx.save_model(helper.make_model(graph), str(path))
    expected = sorted(t.external_data[0].value for t in onnx.external_data_helper._get_all_tensors(onnx.load(
        str(path), load_external_data=False)) if t.external_data)
    assert external_data_files(path) == expected == ["sub/else.bin", "then.bin", "top.bin"]


@pytest.mark.parametrize("content", [b"\x0a\xff\xff\xff\xff\x0f", b"\x3a\x05abc", b"\x0f" * 10])
def test_malformed_onnx_is_an_error_not_a_crash(content, tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(content)
    with pytest.raises(EdgeforgeError, match="not a valid ONNX model"):
        external_data_files(path)


# --- the artifact's own files -----------------------------------------------------------------------------

def test_symlinks_and_manifest_paths_leading_outside_are_refused(mini_artifacts, tmp_path):
    source = mini_artifacts["face-parsing"]
    outside = shutil.copytree(source, tmp_path / "outside")

    linked_model = shutil.copytree(source, tmp_path / "linked-model")
    (linked_model / "onnx" / "model.onnx").unlink()
    (linked_model / "onnx" / "model.onnx").symlink_to(outside / "onnx" / "model.onnx")
    with pytest.raises(IntegrityError, match="model.onnx leads outside the artifact directory"):
        load(linked_model, verify=False)

    linked_config = shutil.copytree(source, tmp_path / "linked-config")
    (linked_config / "config.json").unlink()
    (linked_config / "config.json").symlink_to(outside / "config.json")
    with pytest.raises(IntegrityError, match="config.json leads outside"):
        load(linked_config, verify=False)

    for escape in ("../outside/onnx/model.onnx", str(outside / "onnx" / "model.onnx")):
        redirected = tmp_path / f"redirected-{len(escape)}"
        shutil.copytree(source, redirected)
        manifest = read_manifest(redirected)
        manifest["variants"]["fp32"]["file"] = escape
        (redirected / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(IntegrityError, match="points outside the artifact directory"):
            load(redirected, verify=False)


def test_artifact_directory_reached_through_a_symlink_is_fine(mini_artifacts, tmp_path, photos):
    (tmp_path / "latest").symlink_to(mini_artifacts["face-parsing"], target_is_directory=True)
    assert load(tmp_path / "latest").predict(photos["chelsea"]).label_map.shape == (300, 451)
