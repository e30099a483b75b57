"""Core ML variants: coremltools weight compression of the artifact's coreml/model.mlpackage, written beside
it and recorded in the manifest; drift is measured on macOS only and never invented elsewhere."""

import platform
import shutil

import numpy as np
import pytest

from edgeforge.quantize.calibration import Calibration
from edgeforge.quantize.coreml import NOT_MEASURED
from edgeforge.runtime.manifest import read_manifest, write_manifest
from edgeforge.stages import quantize

COREML = ("coreml-int8", "coreml-palette4", "coreml-palette6")
QUIET = {"log": lambda _: None}


def small_program_package(path):
    """A two-layer Core ML program (conv + linear, weights above coremltools' 2048-element threshold)."""
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb

    rng = np.random.default_rng(0)
    conv_weight = rng.standard_normal((64, 3, 5, 5)).astype(np.float32)
    linear_weight = rng.standard_normal((128, 64)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 16, 16))], opset_version=ct.target.iOS16)
    def program(pixel_values):
        x = mb.conv(x=pixel_values, weight=conv_weight, pad_type="same")
        return mb.linear(x=mb.reduce_mean(x=x, axes=[2, 3]), weight=linear_weight, name="logits")

    model = ct.convert(program, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS16,
                       compute_precision=ct.precision.FLOAT16)
    model.user_defined_metadata["task"] = "image-classification"
    model.save(str(path))


def program_ops(path) -> list[str]:
    import coremltools as ct

    spec = ct.utils.load_spec(str(path))
    return [op.type for function in spec.mlProgram.functions.values()
            for block in function.block_specializations.values() for op in block.operations]


@pytest.fixture
def artifact_with_coreml(mini_artifacts, tmp_path):
    root = tmp_path / "art"
    shutil.copytree(mini_artifacts["facial-emotions"], root)
    small_program_package(root / "coreml" / "model.mlpackage")
    manifest = read_manifest(root)
    manifest["variants"]["coreml"] = {"file": "coreml/model.mlpackage", "format": "coreml", "precision": "fp16"}
    manifest.pop("files")
    write_manifest(root, manifest)
    return root


def test_coreml_variants_are_compressed_beside_the_package(artifact_with_coreml):
    root = artifact_with_coreml
    report = quantize(root, precisions=COREML, calibration=Calibration(None, 1), **QUIET)
    assert set(report["variants"]) == set(COREML) and report["rejected"] == {}
    manifest = read_manifest(root)
    expected_op = {"coreml-int8": "constexpr_affine_dequantize", "coreml-palette4": "constexpr_lut_to_dense",
                   "coreml-palette6": "constexpr_lut_to_dense"}
    for name in COREML:
        entry = manifest["variants"][name]
        package = root / entry["file"]
        assert package.parent == root / "coreml" and package.suffix == ".mlpackage" and package.is_dir()
        assert any(f.startswith(entry["file"] + "/") for f in manifest["files"])  # hashed file by file
        assert program_ops(package).count(expected_op[name]) == 2  # both weights compressed
        assert entry["size_vs_fp16_package"] < 1.0
        assert entry["recipe"]["kind"].startswith("coreml-")
        if platform.system() != "Darwin":
            assert entry["drift"] == {"status": NOT_MEASURED, "num_images": 0}
    assert manifest["variants"]["coreml-palette4"]["recipe"]["nbits"] == 4
    assert manifest["variants"]["coreml-palette6"]["recipe"]["mode"] == "kmeans"
    import coremltools as ct

    compressed = ct.models.MLModel(str(root / "coreml" / "model_palette4.mlpackage"), skip_model_load=True)
    assert compressed.user_defined_metadata["task"] == "image-classification"  # metadata travels along


def test_uniform_palette_needs_no_kmeans(artifact_with_coreml):
    from edgeforge.quantize.recipes import with_options
    from edgeforge.targets import TARGETS

    variant = with_options(TARGETS["coreml"].precisions["coreml-palette4"], mode="uniform")
    report = quantize(artifact_with_coreml, precisions="coreml-palette4", calibration=Calibration(None, 1), recipes={"coreml-palette4": variant}, **QUIET)
    assert report["variants"]["coreml-palette4"]["recipe"]["mode"] == "uniform"


@pytest.mark.skipif(platform.system() != "Darwin", reason="Core ML prediction runs only on macOS")
def test_coreml_drift_is_measured_on_macos(mini_checkpoints, tmp_path):
    from edgeforge.stages import build

    root = tmp_path / "art"
    build(mini_checkpoints["face-parsing"], root, targets=("onnx", "coreml"), **QUIET)
    report = quantize(root, precisions="coreml-int8", calibration=Calibration(None, 2), budget=100.0, **QUIET)
    drift = report["variants"]["coreml-int8"]["drift"]
    assert drift["status"] == "measured with Core ML" and drift["num_images"] == 2
    assert 0.0 <= drift["drift_points"] <= 100.0
