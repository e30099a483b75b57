"""NNCF post-training int8 of an OpenVINO IR, as a ``budget.Quantizer``: its candidates are the ops NNCF puts
quantizers in front of (``NNCFInt8Recipe.op_types``), and the float set the budget search picks becomes NNCF's
``ignored_scope``.
The family's ``quantize_together`` patterns still apply: OpenVINO keeps the ONNX node names it converted."""

from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError
from edgeforge.quantize.recipes import NNCFInt8Recipe


class NNCFInt8Quantizer:
    suffix = ".xml"

    def __init__(self, ir_path: str | Path, recipe: NNCFInt8Recipe, pixel_values: np.ndarray, input_name: str,
                 work: Path):
        import openvino as ov

        self.recipe = recipe
        self.model = ov.Core().read_model(str(ir_path))
        self.samples = [pixel_values[i : i + 1] for i in range(len(pixel_values))]
        self.candidates = [op.get_friendly_name() for op in self.model.get_ordered_ops()
                           if op.get_type_name() in recipe.op_types]
        if not self.candidates:
            raise EdgeforgeError(f"{Path(ir_path).name}: no {', '.join(recipe.op_types)} ops for NNCF to quantize")

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        import nncf
        import openvino as ov

        options = dict(subset_size=len(self.samples), preset=nncf.QuantizationPreset(self.recipe.preset),
                       fast_bias_correction=self.recipe.fast_bias_correction,
                       ignored_scope=nncf.IgnoredScope(names=sorted(keep_float), validate=False))
        if self.recipe.model_type:
            options["model_type"] = nncf.ModelType(self.recipe.model_type)
        with quiet_nncf():
            quantized = nncf.quantize(self.model.clone(), nncf.Dataset(self.samples), **options)
        out_path = Path(out_path)
        ov.save_model(quantized, str(out_path), compress_to_fp16=True)
        return out_path


@contextlib.contextmanager
def quiet_nncf():
    """NNCF prints progress bars and INFO lines for every call; the search makes dozens of calls."""
    logger = logging.getLogger("nncf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)
