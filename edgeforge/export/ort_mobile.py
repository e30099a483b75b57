"""ONNX -> ORT format for ONNX Runtime Mobile, with the reduced-build operator config and the
NNAPI / Core ML usability report, all from onnxruntime's own tools."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError


#: How the .ort is converted, recorded in the manifest. ONNX Runtime Mobile runs on phones, i.e. on ARM:
#: "Fixed" style (every optimisation applied at conversion, nothing replayed at load) for ARM, which leaves out
#: x86's NCHWc blocked layout. Measured on SegFormer-b2 at 512x512, 2 threads, one interleaved run
#: (experiments/ort_conversion.py, results/2026-12-07): Fixed/arm 1.31x the time of the fused model.onnx on
#: x86, Fixed/amd64 1.02x (67 NCHWc reorders, the whole gap) -- but that file fails on aarch64 (the ARM64
#: check: MLAS has no NCHWc kernels there); Runtime style 1.40x (basic optimisations only; for NNAPI / Core ML
#: partitions, which take the standard ops). On x86, model.onnx is the file to run.
CONVERSION = {
    "optimization_style": "Fixed", "target_platform": "arm", "optimization_level": "all",
    "note": "converted for ARM (ONNX Runtime Mobile's devices): without x86's NCHWc blocked layout, which "
            "onnxruntime gives model.onnx at load on x86 CPUs -- the reason it is slower than model.onnx on x86",
}


def export_ort(onnx_path: str | Path, out_dir: str | Path, input_shape: list[int]) -> dict:
    """Write ``out_dir/model.ort``, ``required_operators.config`` and ``mobile_usability.json``.

    Mobile execution providers (NNAPI, Core ML) only take nodes with fixed shapes, and apps run one
    image at a time: the ORT model is made from the graph with its input fixed to ``input_shape``,
    converted as ``CONVERSION`` says.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import (
        OptimizationStyle,
        convert_onnx_models_to_ort,
    )

    onnx_path, out_dir = Path(onnx_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # The tool converts every .onnx in a directory; give it a directory holding just this model.
        work = Path(tmp) / "in"
        work.mkdir()
        fixed = work / "model.onnx"
        fix_input_shape(onnx_path, fixed, input_shape)
        converted = Path(tmp) / "out"
        _quietly(lambda: convert_onnx_models_to_ort(
            work, converted, optimization_styles=[OptimizationStyle[CONVERSION["optimization_style"]]],
            target_platform=CONVERSION["target_platform"]))
        ort_files = list(converted.glob("*.ort"))
        configs = list(converted.glob("*.config"))
        if len(ort_files) != 1 or len(configs) != 1:
            raise EdgeforgeError(f"ORT conversion of {onnx_path} produced {[p.name for p in converted.iterdir()]}")
        shutil.move(ort_files[0], out_dir / "model.ort")
        shutil.move(configs[0], out_dir / "required_operators.config")
        usability = mobile_usability(fixed)
    (out_dir / "mobile_usability.json").write_text(json.dumps(usability, indent=2))
    return usability


def fix_input_shape(onnx_path: Path, out_path: Path, input_shape: list[int]) -> None:
    import onnx
    from onnxruntime.tools.onnx_model_utils import (
        fix_output_shapes,
        make_input_shape_fixed,
    )

    model = onnx.load(str(onnx_path))
    make_input_shape_fixed(model.graph, model.graph.input[0].name, input_shape)
    fix_output_shapes(model)
    onnx.save(model, str(out_path))


def mobile_usability(onnx_path: str | Path) -> dict:
    """Which nodes the NNAPI and Core ML execution providers would take (onnxruntime's checker)."""
    import onnx
    from onnxruntime.tools.mobile_helpers import usability_checker as checker
    from onnxruntime.tools.onnx_model_utils import optimize_model

    with tempfile.TemporaryDirectory() as tmp:
        # As onnxruntime's checker does: judge the graph after the basic optimisations every session applies.
        optimized = Path(tmp) / "basic.onnx"
        optimize_model(Path(onnx_path), optimized)
        model = onnx.load(str(optimized))
    report = {}
    for name, check in (
        ("NNAPI", lambda m: checker.check_nnapi_partitions(m, require_fixed_input_sizes=False)),
        ("CoreML-MLProgram", lambda m: checker.check_coreml_partitions(m, False, "coreml_supported_mlprogram_ops.md")),
    ):
        info = check(model)
        report[name] = {
            "supported_nodes": info.num_supported_nodes,
            "total_nodes": info.num_nodes,
            "partitions": info.num_partitions,
            "unsupported_ops": sorted(info.unsupported_ops),
            "recommendation": info.suitability().name,  # YES / MAYBE / NO, onnxruntime's own verdict
        }
    return report


def compare_ort_with_onnx(ort_path: Path, onnx_path: Path, pixel_values: np.ndarray) -> float:
    """Max abs difference between the .ort and .onnx models' outputs on the same input."""
    import onnxruntime as ort

    outputs = []
    for path in (ort_path, onnx_path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {session.get_inputs()[0].name: pixel_values})[0])
    return float(np.abs(outputs[0] - outputs[1]).max())


def _quietly(call):
    """The converter prints progress to stdout and its logger; keep the CLI's output to our own lines."""
    import contextlib
    import io
    import logging

    logger = logging.getLogger("ort_format_model.utils")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return call()
    finally:
        logger.setLevel(level)
