"""Clear errors for what users get wrong: input shapes, unknown tasks, mismatched labels, missing providers."""

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import onnxruntime as ort
import pytest
from conftest import one_line_error

from edgeforge.errors import EdgeforgeError
from edgeforge.runtime import ProviderUnavailable, load
from edgeforge.runtime.manifest import read_manifest, write_manifest
from edgeforge.runtime.providers import ProviderFallbackWarning


def edgeforge(*args):
    return subprocess.run([sys.executable, "-m", "edgeforge", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def edited_copy(source, target, edit_config=None, keep_manifest_consistent=True):
    """Copy an artifact, edit its config.json, and (like a careless tool would) re-record the manifest."""
    shutil.copytree(source, target)
    if edit_config:
        config = json.loads((target / "config.json").read_text())
        edit_config(config)
        (target / "config.json").write_text(json.dumps(config))
        if keep_manifest_consistent:
            manifest = read_manifest(target)
            write_manifest(target, {k: v for k, v in manifest.items() if k not in ("format", "files")})
    return target


# --- low-level forward() with a batch the graph cannot take ----------------------------------------------

@pytest.mark.parametrize("shape, dtype", [
    ((1, 3, 100, 100), np.float32),   # wrong size for a fixed 64x64 ViT (the mini)
    ((3, 64, 64), np.float32),        # missing batch axis
    ((1, 1, 64, 64), np.float32),     # grey, not RGB
    ((0, 3, 64, 64), np.float32),     # empty batch
    ((1, 3, 64, 64), np.uint8),       # raw pixels, not normalised floats
])
def test_fixed_shape_model_rejects_other_inputs_clearly(shape, dtype, mini_artifacts):
    model = load(mini_artifacts["facial-emotions"])
    assert model.input.shape[1:] == [3, 64, 64]
    with pytest.raises(EdgeforgeError) as caught:
        model.forward(np.zeros(shape, dtype=dtype))
    message = str(caught.value)
    assert "(N, 3, 64, 64)" in message and str(shape) in message and "\n" not in message


def test_float64_input_is_cast_not_refused(mini_artifacts, photos):
    model = load(mini_artifacts["facial-emotions"])
    pixel_values, _ = model.preprocess([photos["chelsea"]])
    assert np.array_equal(model.forward(pixel_values.astype(np.float64)), model.forward(pixel_values))


def test_ort_variant_fixed_at_one_image(mini_artifacts, photos):
    model = load(mini_artifacts["face-parsing"], variant="ort")
    assert model.input.shape == [1, 3, 256, 256]
    with pytest.raises(EdgeforgeError, match=r"\(N, 3, 256, 256\).*\(1, 3, 128, 128\)"):
        model.forward(np.zeros((1, 3, 128, 128), dtype=np.float32))
    # A batch of two on a batch-of-one graph runs image by image, same results.
    pixel_values, _ = model.preprocess([photos["astronaut"], photos["chelsea"]])
    together = model.forward(pixel_values)
    apart = np.concatenate([model.forward(pixel_values[:1]), model.forward(pixel_values[1:])])
    assert np.array_equal(together, apart)


def test_single_image_session_matches_the_graphs_own_shapes(mini_artifacts, photos):
    """fixed_shape (the default) pins batch_size/height/width to one image at the preprocessor's size: same
    logits as the dynamic session, batches run image by image, other sizes refused in one line."""
    fixed, dynamic = load(mini_artifacts["face-parsing"]), load(mini_artifacts["face-parsing"], fixed_shape=False)
    assert fixed.input.shape == [1, 3, 256, 256] and dynamic.input.shape == ["batch_size", 3, "height", "width"]
    assert fixed.takes_batches and dynamic.takes_batches
    pixel_values, _ = fixed.preprocess([photos["astronaut"], photos["chelsea"], photos["astronaut"]])
    np.testing.assert_allclose(fixed.forward(pixel_values), dynamic.forward(pixel_values), atol=1e-4, rtol=0)
    with pytest.raises(EdgeforgeError, match=r"\(N, 3, 256, 256\).*\(1, 3, 128, 128\)"):
        fixed.forward(np.zeros((1, 3, 128, 128), dtype=np.float32))
    assert dynamic.forward(np.zeros((1, 3, 128, 128), dtype=np.float32)).shape == (1, 19, 32, 32)


def test_dynamic_model_failing_inside_onnxruntime_is_an_edgeforge_error(mini_artifacts, capfd):
    model = load(mini_artifacts["face-parsing"], fixed_shape=False)
    with pytest.raises(EdgeforgeError, match=r"onnxruntime failed on input \(1, 3, 8, 8\)"):
        model.forward(np.zeros((1, 3, 8, 8), dtype=np.float32))  # too small for SegFormer's strided stages
    assert "onnxruntime" not in capfd.readouterr().err  # no duplicate log line from ORT itself


# --- artifacts that do not make sense ---------------------------------------------------------------------

def test_unknown_task(mini_artifacts, tmp_path):
    def detector(config):
        config["architectures"] = ["DetrForObjectDetection"]

    target = edited_copy(mini_artifacts["face-parsing"], tmp_path / "detr", detector)
    with pytest.raises(EdgeforgeError, match="unknown task.*DetrForObjectDetection.*semantic segmentation"):
        load(target)
    line = one_line_error(edgeforge("run", target, tmp_path / "any.jpg", "-o", tmp_path / "out"))
    assert "unknown task" in line


def test_labels_that_do_not_match_the_model(mini_artifacts, tmp_path):
    def drop_last_label(config):
        config["id2label"].pop(str(len(config["id2label"]) - 1))

    target = edited_copy(mini_artifacts["facial-emotions"], tmp_path / "six", drop_last_label)
    with pytest.raises(EdgeforgeError, match="outputs 7 classes but config.json lists 6 labels"):
        load(target)

    def gap_in_ids(config):
        config["id2label"] = {"0": "a", "2": "b"}

    target = edited_copy(mini_artifacts["facial-emotions"], tmp_path / "gap", gap_in_ids)
    with pytest.raises(EdgeforgeError, match="id2label ids are not 0..N-1"):
        load(target)


def test_segmentation_labels_checked_too(mini_artifacts, tmp_path):
    def extra_label(config):
        config["id2label"][str(len(config["id2label"]))] = "extra"

    target = edited_copy(mini_artifacts["clothes-parsing"], tmp_path / "extra", extra_label)
    with pytest.raises(EdgeforgeError, match="outputs 18 classes but config.json lists 19 labels"):
        load(target)


# --- execution providers ----------------------------------------------------------------------------------

@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here")
def test_missing_provider_falls_back_with_a_warning_or_fails_when_strict(mini_artifacts, tmp_path, photos):
    with pytest.warns(ProviderFallbackWarning, match="CUDAExecutionProvider not available"):
        model = load(mini_artifacts["facial-emotions"], providers=["cuda"])
    assert model.providers == ["CPUExecutionProvider"]
    with pytest.raises(ProviderUnavailable, match="CUDAExecutionProvider not available.*available: "):
        load(mini_artifacts["facial-emotions"], providers="cuda,cpu", strict_providers=True)
    with pytest.raises(ProviderUnavailable, match="TpuExecutionProvider"):
        load(mini_artifacts["facial-emotions"], providers=["TpuExecutionProvider"], strict_providers=True)
    image = tmp_path / "cat.png"
    photos["chelsea"].save(image)
    line = one_line_error(edgeforge("run", mini_artifacts["facial-emotions"], image, "-o", tmp_path / "o",
                                    "--provider", "cuda", "--strict-provider"))
    assert "CUDAExecutionProvider not available" in line
    assert edgeforge("run", mini_artifacts["facial-emotions"], image, "-o", tmp_path / "o",
                     "--provider", "cuda").returncode == 0  # without --strict-provider it runs on CPU


def test_provider_that_fails_to_start_is_reported(mini_artifacts, monkeypatch):
    """A provider compiled in but unable to start (no driver) is dropped by onnxruntime without an error."""
    import edgeforge.runtime.providers as providers

    monkeypatch.setattr(providers.ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # onnxruntime's own warning
        with pytest.raises(ProviderUnavailable, match="CUDAExecutionProvider failed to start"):
            load(mini_artifacts["facial-emotions"], providers="cuda", strict_providers=True)
        with pytest.warns(ProviderFallbackWarning, match="failed to start; running on CPUExecutionProvider"):
            model = load(mini_artifacts["facial-emotions"], providers="cuda")
    assert model.providers == ["CPUExecutionProvider"]
