"""ai-edge-quantizer (LiteRT's post-training quantizer) on a ``.tflite``, as a ``budget.Quantizer``: its
candidates are the ops that carry weights (convolutions, fully connected layers, batched matmuls), named by
their output tensor as the quantizer's recipes name them, and the float set the budget search picks becomes
recipe entries that quantize nothing (``NO_QUANTIZE``), which override the global entry for those ops."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.recipes import LiteRTRecipe

#: the ops that carry weights: the candidates of a recipe that quantizes every supported op
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")


def ops_of(interpreter, op_types: tuple[str, ...]) -> list[tuple[str, str]]:
    """(op type, output tensor name) of each op of ``op_types`` in a LiteRT interpreter's graph, in execution
    order; the name is how the quantizer's recipes address the op. Read before any delegate replaces ops."""
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [(op["op_name"], tensors[op["outputs"][0]]) for op in interpreter._get_ops_details()
            if op["op_name"] in op_types]


class LiteRTQuantizer:
    suffix = ".tflite"

    def __init__(self, model_path: str | Path, recipe: LiteRTRecipe, pixel_values: np.ndarray):
        from ai_edge_litert.interpreter import Interpreter

        self.model_path, self.recipe = Path(model_path), recipe
        interpreter = Interpreter(model_path=str(self.model_path))
        self.op_types = recipe.op_types or WEIGHTED_OPS
        self.candidates = [name for _, name in ops_of(interpreter, self.op_types)]
        if not self.candidates:
            raise EdgeforgeError(f"{self.model_path.name}: no {', '.join(self.op_types)} ops to quantize")
        signature, inputs = next(iter(interpreter.get_signature_list().items()))
        self._calibration = {signature: [{inputs["inputs"][0]: pixel_values[i : i + 1]}
                                         for i in range(len(pixel_values))]}
        self._ranges = None  # calibration is the same for every float set: measured once

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        from ai_edge_quantizer import quantizer

        engine = quantizer.Quantizer(str(self.model_path), self._recipe(keep_float))
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if engine.need_calibration and self._ranges is None:
                self._ranges = engine.calibrate(self._calibration)
            result = engine.quantize(self._ranges if engine.need_calibration else None, enable_progress_report=False)
        out_path = Path(out_path)
        result.export_model(str(out_path), overwrite=True)  # 0755; the output's commit makes it a plain file
        return out_path

    def _recipe(self, keep_float: frozenset[str]):
        from ai_edge_quantizer import qtyping, recipe_manager
        from ai_edge_quantizer.algorithm_manager import AlgorithmName

        every = qtyping.TFLOperationName.ALL_SUPPORTED
        ops = [qtyping.TFLOperationName(op) for op in self.recipe.op_types] if self.recipe.op_types else [every]
        manager = recipe_manager.RecipeManager()
        for op in ops:
            if self.recipe.mode == "dynamic-int8":
                manager.add_dynamic_config(regex=".*", operation_name=op, num_bits=8)
            elif self.recipe.mode == "static-int8":
                manager.add_static_config(regex=".*", operation_name=op, activation_num_bits=8, weight_num_bits=8)
            else:  # fp16 weights, computed in float
                manager.add_quantization_config(
                    regex=".*", operation_name=op, algorithm_key=AlgorithmName.FLOAT_CASTING,
                    op_config=qtyping.OpQuantizationConfig(
                        weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
                        compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True))
        for name in sorted(keep_float):  # later entries win: these ops quantize nothing
            manager.add_quantization_config(regex=f"^{re.escape(name)};", operation_name=every,  # scope: "NAME;"
                                            algorithm_key=AlgorithmName.NO_QUANTIZE)
        return manager.get_quantization_recipe()
