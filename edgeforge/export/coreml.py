"""Checkpoint -> Core ML ML Program (.mlpackage) with coremltools, fp16 compute precision.

Prediction needs macOS; elsewhere the package is validated structurally (spec loads, I/O names and
shapes, labels in metadata, size) and the report says that numerical checks were not run.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.export.onnx import input_size, logits_module
from edgeforge.zoo.checkpoints import Checkpoint


def export_coreml(checkpoint: Checkpoint, out_path: str | Path, compute_precision: str = "fp16") -> Path:
    """Convert ``checkpoint`` to ``out_path`` (an .mlpackage directory) for a fixed batch-1 input."""
    import coremltools as ct
    import torch

    height, width = input_size(checkpoint.image_processor)
    example = torch.zeros(1, checkpoint.config.num_channels, height, width)
    with torch.no_grad():
        traced = torch.jit.trace(logits_module(checkpoint.model), example)
    precision = {"fp16": ct.precision.FLOAT16, "fp32": ct.precision.FLOAT32}[compute_precision]
    try:
        with _progress_bars_hidden():
            mlmodel = ct.convert(
            traced,
                inputs=[ct.TensorType(name=checkpoint.family.input_name, shape=tuple(example.shape),
                                      dtype=np.float32)],
                outputs=[ct.TensorType(name=checkpoint.family.output_name)],
                convert_to="mlprogram",
                compute_precision=precision,
                minimum_deployment_target=ct.target.iOS16,
            )
    except Exception as exc:  # coremltools raises many types; the first line names the unsupported op
        raise EdgeforgeError(f"Core ML conversion failed: {str(exc).strip().splitlines()[0]}") from None
    config = checkpoint.config
    mlmodel.short_description = f"{config.architectures[0]} from {checkpoint.source} (edgeforge)"
    mlmodel.user_defined_metadata["task"] = checkpoint.family.task
    mlmodel.user_defined_metadata["id2label"] = json.dumps({str(k): v for k, v in config.id2label.items()})
    mlmodel.user_defined_metadata["preprocessor"] = json.dumps(checkpoint.image_processor.to_dict(), default=str)
    out_path = Path(out_path)
    if out_path.exists():
        shutil.rmtree(out_path)
    mlmodel.save(str(out_path))
    return out_path


def validate_coreml(path: str | Path, checkpoint: Checkpoint) -> dict:
    """Structural checks everywhere; numerical comparison with PyTorch on macOS only."""
    import coremltools as ct

    path = Path(path)
    spec = ct.utils.load_spec(str(path))
    inputs = {i.name: list(i.type.multiArrayType.shape) for i in spec.description.input}
    outputs = [o.name for o in spec.description.output]
    family = checkpoint.family
    height, width = input_size(checkpoint.image_processor)
    expected_input = [1, checkpoint.config.num_channels, height, width]
    if inputs.get(family.input_name) != expected_input:
        raise EdgeforgeError(f"{path}: input {inputs} differs from {family.input_name}{expected_input}")
    if outputs != [family.output_name]:
        raise EdgeforgeError(f"{path}: outputs {outputs} differ from [{family.output_name!r}]")
    labels = json.loads(spec.description.metadata.userDefined["id2label"])
    if len(labels) != len(checkpoint.config.id2label):
        raise EdgeforgeError(f"{path}: metadata lists {len(labels)} labels, config {len(checkpoint.config.id2label)}")
    report = {
        "spec_version": spec.specificationVersion,
        "inputs": inputs,
        "outputs": outputs,
        "labels": len(labels),
        "size_bytes": sum(f.stat().st_size for f in path.rglob("*") if f.is_file()),
    }
    if platform.system() == "Darwin":
        report.update(_numerical_check(path, checkpoint, expected_input))
    else:
        report["numerical_check"] = "skipped: Core ML prediction runs only on macOS"
    return report


def _numerical_check(path: Path, checkpoint: Checkpoint, shape: list[int]) -> dict:
    import coremltools as ct
    import torch

    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    mlmodel = ct.models.MLModel(str(path))
    predicted = mlmodel.predict({checkpoint.family.input_name: x})[checkpoint.family.output_name]
    with torch.no_grad():
        reference = checkpoint.model(pixel_values=torch.from_numpy(x)).logits.numpy()
    return {
        "numerical_check": "macOS",
        "max_abs_diff": float(np.abs(predicted - reference).max()),
        "argmax_agreement": float((predicted.argmax(1) == reference.argmax(1)).mean()),
    }


def _progress_bars_hidden():
    """coremltools draws a dozen tqdm bars per conversion; the build prints its own step lines."""
    import contextlib
    import io

    return contextlib.redirect_stderr(io.StringIO())
