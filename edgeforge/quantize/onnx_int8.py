"""8-bit ONNX variants with onnxruntime.quantization: dynamic (weights only known ahead) and static QDQ
(activation ranges calibrated on images).

Both start from the graph ``prepare`` writes once per run: ``quant_pre_process`` (symbolic shape
inference + onnxruntime's basic graph optimizations), as onnxruntime recommends before quantizing.
``DefaultTensorType`` lets the quantizers handle graphs after onnxruntime's transformer optimizer,
whose com.microsoft ops carry no type information for onnx's shape inference.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader
from tqdm import tqdm

from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.onnx_graph import (
    load_model,
    require_candidates,
    save_model,
    unshare_weights,
    weighted_nodes,
)
from edgeforge.quantize.recipes import (
    DynamicInt8Recipe,
    HybridInt8Recipe,
    StaticInt8Recipe,
)


def prepare(fp32_path: str | Path, out_path: str | Path) -> Path:
    """onnxruntime's recommended pre-processing; names every node (quantizers select nodes by name) and gives
    each weighted node its own weights (``unshare_weights``: a node kept float must not share a tensor the
    quantizer rewrites).

    Symbolic shape inference runs only for graphs with com.microsoft (fused) ops, the ones onnx's own
    shape inference cannot type: on plain exports it adds nothing the quantizers use and costs 10x the
    rest (sympy simplifying the dynamic height/width expressions of every Resize).
    """
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out_path = Path(out_path)
    symbolic = has_contrib_ops(onnx.load(str(fp32_path), load_external_data=False))
    try:
        quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=not symbolic, auto_merge=True)
    except Exception as exc:  # shape inference raises many types; the first line says which node failed
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EdgeforgeError(f"onnxruntime's quantization pre-processing failed on {fp32_path}: {first}") from None
    model = load_model(out_path)
    unshare_weights(model)
    save_model(model, out_path)
    return out_path


def has_contrib_ops(model: onnx.ModelProto) -> bool:
    return any(node.domain not in ("", "ai.onnx") for node in model.graph.node)


def quant_type(name: str):
    from onnxruntime.quantization import QuantType

    return {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}[name]


def base_extra_options() -> dict:
    return {"DefaultTensorType": onnx.TensorProto.FLOAT}


class DynamicInt8Quantizer:
    """``quantize_dynamic``: weights int8/uint8 ahead of time, activations quantized per run."""

    def __init__(self, prepared_path: str | Path, recipe: DynamicInt8Recipe):
        self.source = Path(prepared_path)
        self.recipe = recipe
        model = load_model(self.source)
        self.candidates = require_candidates(weighted_nodes(model, recipe.op_types), "dynamic int8", recipe.op_types)

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        return self.quantize(self.source, out_path, self.recipe, keep_float)

    @staticmethod
    def quantize(source: Path, out_path: str | Path, recipe: DynamicInt8Recipe, keep_float: frozenset[str]) -> Path:
        from onnxruntime.quantization import quantize_dynamic

        quantize_dynamic(
            str(source), str(out_path),
            op_types_to_quantize=list(recipe.op_types),
            per_channel=recipe.per_channel,
            reduce_range=recipe.reduce_range,
            weight_type=quant_type(recipe.weight_type),
            nodes_to_exclude=sorted(keep_float),
            extra_options={**base_extra_options(), "MatMulConstBOnly": True},
        )
        return Path(out_path)


class StaticInt8Quantizer:
    """``quantize_static`` in QDQ format; calibrates once, then re-quantizes from the cached ranges."""

    def __init__(self, prepared_path: str | Path, recipe: StaticInt8Recipe, pixel_values: np.ndarray,
                 input_name: str, cache_dir: str | Path):
        self.source = Path(prepared_path)
        self.recipe = recipe
        self.pixel_values = pixel_values
        self.input_name = input_name
        model = load_model(self.source)
        weighted = weighted_nodes(model, recipe.op_types)
        other_matmuls = [n.name for n in model.graph.node
                         if n.op_type == "MatMul" and "MatMul" in recipe.op_types and n.name not in weighted]
        # Activation x activation MatMuls are excluded by name: the QDQ quantizer ignores MatMulConstBOnly.
        self.always_float = frozenset(other_matmuls if recipe.matmul_const_b_only else ())
        candidates = weighted if recipe.matmul_const_b_only else weighted + other_matmuls
        self.candidates = require_candidates(candidates, "static int8", recipe.op_types)
        self.cache = Path(cache_dir) / f"calibration-{self._calibration_key()}.json"

    def _calibration_key(self) -> str:
        """Ranges depend on the model, the method, the tensors observed (op types) and the images only."""
        stat = self.source.stat()
        text = repr((str(self.source.resolve()), stat.st_size, stat.st_mtime_ns, self.recipe.calibration_method,
                     self.recipe.percentile, sorted(self.recipe.op_types), self.pixel_values.shape))
        digest = hashlib.sha256(text.encode() + self.pixel_values.tobytes()).hexdigest()[:16]
        return f"{self.recipe.calibration_method}-{digest}"

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        from onnxruntime.quantization import (
            CalibrationMethod,
            QuantFormat,
            quantize_static,
        )

        method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                  "percentile": CalibrationMethod.Percentile}[self.recipe.calibration_method]
        # (MinMax calibration keeps only per-tensor min/max per image; onnxruntime 1.31's
        # CalibMaxIntermediateOutputs would discard them instead of merging, so it is not used.)
        extra = base_extra_options()
        if self.recipe.calibration_method == "percentile":
            extra["CalibPercentile"] = self.recipe.percentile
        reader = None if self.cache.is_file() else PixelValuesReader(
            self.input_name, self.pixel_values, f"calibrating ({self.recipe.calibration_method})")
        quantize_static(
            str(self.source), str(out_path), reader,
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(self.recipe.op_types),
            per_channel=self.recipe.per_channel,
            reduce_range=self.recipe.reduce_range,
            activation_type=quant_type(self.recipe.activation_type),
            weight_type=quant_type(self.recipe.weight_type),
            nodes_to_exclude=sorted(keep_float | self.always_float),
            calibrate_method=method,
            calibration_cache_path=str(self.cache),
            extra_options=extra,
        )
        return Path(out_path)


class HybridInt8Quantizer:
    """Static QDQ for Conv (onnxruntime fuses it into QLinearConv), then dynamic for MatMul/Gemm."""

    def __init__(self, prepared_path: str | Path, recipe: HybridInt8Recipe, pixel_values: np.ndarray,
                 input_name: str, cache_dir: str | Path):
        self.recipe = recipe
        self.static = StaticInt8Quantizer(prepared_path, recipe.static_part(), pixel_values, input_name, cache_dir)
        self.dynamic_recipe = recipe.dynamic_part()
        dynamic = weighted_nodes(load_model(prepared_path), self.dynamic_recipe.op_types)
        self.candidates = self.static.candidates + [n for n in dynamic if n not in self.static.candidates]

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        return dynamic_on_top(lambda path: self.static.write(path, keep_float), out_path, self.dynamic_recipe,
                              keep_float)


def dynamic_on_top(write_first: Callable[[Path], Path], out_path: str | Path, recipe: DynamicInt8Recipe,
                   keep_float: frozenset[str]) -> Path:
    """Two-stage recipes: ``write_first(path)`` writes the first stage, dynamic int8 quantization of
    ``recipe.op_types`` on top of it goes to ``out_path``; the intermediate file is removed."""
    out_path = Path(out_path)
    halfway = out_path.with_name(out_path.stem + ".first-stage.onnx")
    write_first(halfway)
    try:
        return DynamicInt8Quantizer.quantize(halfway, out_path, recipe, keep_float)
    finally:
        halfway.unlink(missing_ok=True)


class PixelValuesReader(CalibrationDataReader):
    """onnxruntime calibration data reader over pre-processed images, one image per batch, with a progress bar."""

    def __init__(self, input_name: str, pixel_values: np.ndarray, description: str = "calibrating"):
        self.input_name = input_name
        self.pixel_values = pixel_values
        self.index = 0
        self.bar = tqdm(total=len(pixel_values), desc=description, unit="image", leave=False)

    def get_next(self) -> dict | None:
        if self.index >= len(self.pixel_values):
            self.bar.close()
            return None
        batch = {self.input_name: self.pixel_values[self.index : self.index + 1]}
        self.index += 1
        self.bar.update(1)
        return batch

    def __len__(self) -> int:
        return len(self.pixel_values)

