"""How a precision is made: one frozen dataclass per kind of recipe, every parameter recorded in the
manifest. Each target declares which recipe its precisions use by default (``edgeforge.targets``); the
names and files are the contract's (``edgeforge.contract.VARIANTS``). The defaults:

- ``fp16`` -> onnx/model_fp16.onnx: float16 weights, fp32 arithmetic on every platform (half the file;
  ``onnx_fp16`` says why not fp16 arithmetic); normalisation parameters (LayerNormalization, ...) kept fp32.
- ``quantized`` (the default q8) -> onnx/model_quantized.onnx, chosen for speed on x86 CPUs: Conv
  static QDQ (calibrated u8 activations x s8 per-channel weights; onnxruntime runs QLinearConv) and
  MatMul/Gemm/Attention dynamic (s8 weights; MatMulInteger, QAttention). Dynamic Conv (ConvInteger)
  is slower than fp32 there, static MatMul loses more accuracy than dynamic.
- ``int8`` -> onnx/model_int8.onnx: static QDQ, all signed: s8 activations (calibrated) x s8
  per-channel weights on Conv/MatMul/Gemm (the portable QDQ form NPU and mobile providers take).
- ``uint8`` -> onnx/model_uint8.onnx: dynamic, no calibration: u8 (unsigned) weights on
  MatMul/Gemm/Attention, activations quantized at run time (transformers.js' classic ``uint8``);
  Conv stays fp32.
- ``q4`` -> onnx/model_q4.onnx: MatMulNBits 4-bit blocks on MatMul weights; Conv/Gemm weights stored
  4-bit blockwise (8-bit where a block does not fit) and dequantized to float; fused Attention int8
  (QAttention).
- ``coreml-int8`` -> coreml/model_int8.mlpackage: int8 linear-symmetric per-channel weights.
- ``coreml-palette4`` / ``coreml-palette6`` -> coreml/model_palette{4,6}.mlpackage: 4-/6-bit
  k-means palettized weights (one table per tensor).

Nothing here imports onnx or coremltools: the CLI reads these names to parse its arguments.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

from edgeforge.errors import EdgeforgeError

#: Ops whose float parameters the fp16 recipe keeps in fp32: normalisation scales and shifts are small and
#: set the statistics every later layer sees.
FP16_KEEP_FLOAT_OPS = (
    "LayerNormalization", "SkipLayerNormalization", "SimplifiedLayerNormalization",
    "SkipSimplifiedLayerNormalization", "Softmax", "ReduceMean", "Pow", "Resize",
)
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
QUANT_TYPES = ("int8", "uint8")


@dataclass(frozen=True)
class Recipe:
    kind: ClassVar[str] = ""
    format: ClassVar[str] = "onnx"
    needs_calibration: ClassVar[bool] = False

    def to_json(self) -> dict:
        return {"kind": self.kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}}


@dataclass(frozen=True)
class Fp16Recipe(Recipe):
    kind: ClassVar[str] = "onnx-fp16-weights"
    keep_float_ops: tuple[str, ...] = FP16_KEEP_FLOAT_OPS
    # Ops whose weights the accuracy budget may keep in fp32 (any op that reads a weight or bias).
    searchable_ops: tuple[str, ...] = ("MatMul", "Gemm", "Conv", "Add", "Mul", "Div", "Sub", "Erf", "Gelu",
                                       "BiasGelu", "FastGelu", "Attention", "MultiHeadAttention")


@dataclass(frozen=True)
class DynamicInt8Recipe(Recipe):
    """``onnxruntime.quantization.quantize_dynamic``; MatMul/Gemm only by default: Conv would become
    ConvInteger, which is slower than fp32 Conv on x86 CPUs (no fused int8 conv kernel)."""

    kind: ClassVar[str] = "onnx-int8-dynamic"
    weight_type: str = "int8"
    op_types: tuple[str, ...] = ("MatMul", "Gemm", "Attention")  # Attention: onnxruntime's fused op -> QAttention
    per_channel: bool = False
    reduce_range: bool = False


@dataclass(frozen=True)
class StaticInt8Recipe(Recipe):
    """``onnxruntime.quantization.quantize_static`` in QDQ format after ``quant_pre_process``."""

    kind: ClassVar[str] = "onnx-int8-static-qdq"
    needs_calibration: ClassVar[bool] = True
    activation_type: str = "uint8"
    weight_type: str = "int8"
    op_types: tuple[str, ...] = ("Conv", "MatMul", "Gemm")
    per_channel: bool = True
    reduce_range: bool = False
    calibration_method: str = "minmax"
    percentile: float = 99.999  # used by the percentile method only
    # Attention's activation x activation MatMuls (softmax probabilities x values) lose the most in 8 bits;
    # True keeps them float (onnxruntime's MatMulConstBOnly option is honoured by its QOperator path only).
    matmul_const_b_only: bool = True


@dataclass(frozen=True)
class HybridInt8Recipe(Recipe):
    """Static QDQ for ``static_op_types`` (calibrated), then dynamic quantization of ``dynamic_op_types``."""

    kind: ClassVar[str] = "onnx-int8-static-conv-dynamic-matmul"
    needs_calibration: ClassVar[bool] = True
    static_op_types: tuple[str, ...] = ("Conv",)
    dynamic_op_types: tuple[str, ...] = ("MatMul", "Gemm", "Attention")
    activation_type: str = "uint8"  # static part; dynamic activations are always uint8 in onnxruntime
    weight_type: str = "int8"
    per_channel: bool = True  # static part
    reduce_range: bool = False
    calibration_method: str = "minmax"
    percentile: float = 99.999

    def static_part(self) -> "StaticInt8Recipe":
        return StaticInt8Recipe(activation_type=self.activation_type, weight_type=self.weight_type,
                                op_types=self.static_op_types, per_channel=self.per_channel,
                                reduce_range=self.reduce_range, calibration_method=self.calibration_method,
                                percentile=self.percentile)

    def dynamic_part(self) -> "DynamicInt8Recipe":
        return DynamicInt8Recipe(weight_type=self.weight_type, op_types=self.dynamic_op_types,
                                 reduce_range=self.reduce_range)


@dataclass(frozen=True)
class Int4Recipe(Recipe):
    """onnxruntime's MatMulNBitsQuantizer (4-bit blocks along K) for MatMul weights."""

    kind: ClassVar[str] = "onnx-int4-weight-only"
    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int | None = None  # MatMulNBits attribute; None = onnxruntime's default (fp32 compute)
    # Weights of these ops have no 4-bit kernel: stored weight-only (DequantizeLinear -> float op), in
    # ``other_weight_bits`` blocks of ``block_size`` along the input channels (8 bits per channel where
    # a block does not fit).
    other_weight_ops: tuple[str, ...] = ("Conv", "Gemm")
    other_weight_bits: int = 4
    # Fused Attention has an int8 kernel (QAttention) but no 4-bit one: its weights go to int8 through
    # dynamic quantization. Stored 4-bit they are dequantized at every run, which made ViT-base's q4 slower
    # than the plain fp32 export (0.80-0.88x); int8 costs a quarter of the weights 4 bits more.
    dynamic_int8_ops: tuple[str, ...] = ("Attention",)

    def dynamic_part(self) -> "DynamicInt8Recipe":
        return DynamicInt8Recipe(op_types=self.dynamic_int8_ops)


@dataclass(frozen=True)
class OpenVINOComputeRecipe(Recipe):
    """The artifact's OpenVINO IR run at another compute precision (no new file): bf16 on CPUs with native
    bf16 (AVX512_BF16, AMX), held to the budget like any quantized variant."""

    kind: ClassVar[str] = "openvino-compute-precision"
    format: ClassVar[str] = "openvino"
    inference_precision: str = "bf16"


@dataclass(frozen=True)
class NNCFInt8Recipe(Recipe):
    """``nncf.quantize`` (post-training, calibrated) of the artifact's OpenVINO IR; the budget search keeps
    float what it must through NNCF's ``ignored_scope``."""

    kind: ClassVar[str] = "openvino-nncf-int8"
    format: ClassVar[str] = "openvino"
    needs_calibration: ClassVar[bool] = True
    preset: str = "performance"  # symmetric activations (NNCF's default for CPU)
    # NNCF's transformer rules quantize MatMul / Conv / attention inputs only; its default also quantizes the
    # inputs of Add and MVN (measured on the face mini: 2.3 points of drift all-int8, and no float set of
    # MatMul/Conv within half the candidates could remove what the element-wise quantizers lose).
    model_type: str | None = "transformer"
    fast_bias_correction: bool = True
    # The ops NNCF puts quantizers in front of under those rules: the search can keep any of them float. Interpolate:
    # SegFormer's decode head resizes quantized activations (with every other op float, its 3 quantizers alone
    # kept the clothes mini 1.0 point over the budget).
    op_types: tuple[str, ...] = ("MatMul", "Convolution", "GroupConvolution", "ScaledDotProductAttention", "Interpolate")


@dataclass(frozen=True)
class LiteRTRecipe(Recipe):
    """ai-edge-quantizer on the artifact's ``.tflite``, the ways LiteRT users quantize: ``fp16`` weights
    (float compute), ``dynamic-int8`` (int8 weights, activations quantized at run time) or ``static-int8``
    (full integer, activations calibrated); the budget search keeps float what it must."""

    kind: ClassVar[str] = "litert-ai-edge-quantizer"
    format: ClassVar[str] = "tflite"
    mode: str = "dynamic-int8"
    #: the TFLite ops quantized (and searched); None: every op the quantizer supports. XNNPACK runs int8
    #: convolutions and fully connected layers fast, but falls back to slow reference kernels for much else
    #: (int8 BATCH_MATMUL, LayerNorm's MEAN/RSQRT, ...): measured on SegFormer-b2 at 512x512, 2 threads, one
    #: interleaved run against stock litert-torch's 400 ms (experiments/results/2026-12-07/litert_b2_recipes.json):
    #: static int8 on every supported op 552 ms, on CONV_2D/DEPTHWISE/FC only 89 ms, the same plus BATCH_MATMUL
    #: 344 ms; dynamic int8 on every op 254 ms, on FC + CONV_2D 168 ms (fp32: 173 ms).
    op_types: tuple[str, ...] | None = None

    @property
    def needs_calibration(self) -> bool:  # type: ignore[override]
        return self.mode == "static-int8"


@dataclass(frozen=True)
class CoreMLLinearRecipe(Recipe):
    """``coremltools.optimize.coreml.linear_quantize_weights``."""

    kind: ClassVar[str] = "coreml-linear-weights"
    format: ClassVar[str] = "coreml"
    mode: str = "linear_symmetric"
    dtype: str = "int8"
    granularity: str = "per_channel"
    weight_threshold: int = 2048  # smaller tensors stay fp16 (coremltools' default)


@dataclass(frozen=True)
class CoreMLPaletteRecipe(Recipe):
    """``coremltools.optimize.coreml.palettize_weights``; per-tensor tables (grouped ones need iOS 18)."""

    kind: ClassVar[str] = "coreml-palettize-weights"
    format: ClassVar[str] = "coreml"
    nbits: int = 4
    mode: str = "kmeans"
    granularity: str = "per_tensor"
    weight_threshold: int = 2048


def with_options(recipe: Recipe, **options) -> Recipe:
    """The recipe with those fields changed; options it does not have (or set to None) are ignored, so one
    set of command-line options can be applied to every requested precision's recipe."""
    known = {f.name for f in fields(recipe)}
    changes = {k: v for k, v in options.items() if k in known and v is not None}
    _check_options(changes)
    return replace(recipe, **changes) if changes else recipe


def _check_options(options: dict) -> None:
    method = options.get("calibration_method")
    if method is not None and method not in CALIBRATION_METHODS:
        raise EdgeforgeError(f"unknown calibration method {method!r}; choose from {', '.join(CALIBRATION_METHODS)}")
    for key in ("weight_type", "activation_type"):
        if key in options and options[key] not in QUANT_TYPES:
            raise EdgeforgeError(f"{key} must be one of {', '.join(QUANT_TYPES)}, not {options[key]!r}")
    block = options.get("block_size")
    if block is not None and (block < 16 or block & (block - 1)):
        raise EdgeforgeError(f"block size must be a power of two of at least 16, not {block}")
    ops = options.get("op_types")
    if ops is not None and not ops:
        raise EdgeforgeError("the op set to quantize is empty")
