"""NNCF post-training int8 of an OpenVINO IR, as a ``budget.Quantizer``: its candidates are the ops NNCF puts
quantizers in front of (``NNCFInt8Recipe.op_types``), and the float set the budget search picks becomes NNCF's
``ignored_scope``.
The family's ``quantize_together`` patterns still apply: OpenVINO keeps the ONNX node names it converted.

The sensitivity ranking's probes (one op group quantized, the rest float) are cut from one NNCF quantization
instead of one NNCF call each (``write_probe``): a call costs 1.5-2.4 s on a mini, mostly NNCF's graph pattern
matching, and a mini has ~46 candidates. NNCF's own accuracy-control ranking reverts quantizers the same way."""

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
        self._probe_base = None  # made by the first write_probe
        self._feeds: dict[str, set[str]] = {}

    def write(self, out_path: str | Path, keep_float: frozenset[str] = frozenset()) -> Path:
        import openvino as ov

        out_path = Path(out_path)
        ov.save_model(self._quantize(keep_float), str(out_path), compress_to_fp16=True)
        return out_path

    def write_probe(self, out_path: str | Path, quantized: frozenset[str]) -> Path:
        """The model with only the ops ``quantized`` behind quantizers, for ranking sensitivity: NNCF's
        quantization of every candidate (weights kept as FakeQuantize, no bias correction, so removing a
        quantizer restores exactly the float op), without the quantizers that feed none of ``quantized``."""
        import openvino as ov

        if self._probe_base is None:
            self._probe_base = self._quantize(frozenset(), probe=True)
            self._feeds = {op.get_friendly_name(): _ops_fed(op, set(self.candidates))
                           for op in self._probe_base.get_ordered_ops() if op.get_type_name() == "FakeQuantize"}
        model = self._probe_base.clone()
        for op in model.get_ordered_ops():
            if op.get_type_name() == "FakeQuantize" and not self._feeds[op.get_friendly_name()] & quantized:
                op.output(0).replace(op.input_value(0))
        out_path = Path(out_path)
        ov.save_model(model, str(out_path), compress_to_fp16=True)
        return out_path

    def _quantize(self, keep_float: frozenset[str], probe: bool = False):
        import nncf

        options = dict(subset_size=len(self.samples), preset=nncf.QuantizationPreset(self.recipe.preset),
                       fast_bias_correction=self.recipe.fast_bias_correction,
                       ignored_scope=nncf.IgnoredScope(names=sorted(keep_float), validate=False))
        if self.recipe.model_type:
            options["model_type"] = nncf.ModelType(self.recipe.model_type)
        if probe:
            options["advanced_parameters"] = nncf.AdvancedQuantizationParameters(
                disable_bias_correction=True, backend_params={"compress_weights": False})
        with quiet_nncf():
            return nncf.quantize(self.model.clone(), nncf.Dataset(self.samples), **options)


#: ops a quantizer's value passes through unchanged on its way to the op it quantizes (NNCF moves quantizers
#: up through them)
_PASS_THROUGH = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Split", "VariadicSplit", "Concat", "Convert",
                 "StridedSlice", "Gather", "FakeQuantize"}


def _ops_fed(quantizer, candidates: set[str]) -> set[str]:
    """The candidate ops whose inputs ``quantizer`` quantizes, through shape-only ops."""
    fed, todo = set(), [quantizer]
    while todo:
        for output in todo.pop().outputs():
            for target in output.get_target_inputs():
                op = target.get_node()
                if op.get_friendly_name() in candidates:
                    fed.add(op.get_friendly_name())
                elif op.get_type_name() in _PASS_THROUGH:
                    todo.append(op)
    return fed


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
