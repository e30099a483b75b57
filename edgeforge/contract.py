"""The artifact contract: the vocabulary every stage and the runtime share, declared once.

Tasks, file formats, variant names and their files (the layout Optimum's ORTModel classes and
transformers.js load), precision labels, transformers.js dtypes, the ONNX IR cap, the default accuracy
budget, and the typed manifest entry of one variant. Standard library only: the runtime, the build side,
the benchmarks and the web server all read it, and none keeps a private copy.

Adding a target's variants means adding ``Variant`` rows here (names and files are part of what an app
relies on); everything about *making* them lives in the target's module (``edgeforge.targets``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from edgeforge.errors import EdgeforgeError

# --- tasks -----------------------------------------------------------------------------------------
SEGMENTATION = "semantic-segmentation"
CLASSIFICATION = "image-classification"
TASKS = (SEGMENTATION, CLASSIFICATION)
#: task -> the architecture class suffix transformers gives its models
ARCHITECTURE_SUFFIX = {SEGMENTATION: "ForSemanticSegmentation", CLASSIFICATION: "ForImageClassification"}
#: task -> the Hugging Face pipeline tag (transformers.js ``pipeline()`` name, model-card metadata)
PIPELINE_TAG = {SEGMENTATION: "image-segmentation", CLASSIFICATION: "image-classification"}


def task_of_architectures(architectures: list[str]) -> str | None:
    """The task of a transformers config's ``architectures``, or None for one edgeforge does not run."""
    for architecture in architectures:
        for task, suffix in ARCHITECTURE_SUFFIX.items():
            if str(architecture).endswith(suffix):
                return task
    return None


# --- graph and budget constants --------------------------------------------------------------------
#: onnx 1.23 writes IR 14 by default, onnxruntime 1.31 loads at most 13; IR 10 (onnx 1.16) covers int4 tensors
#: and loads in onnxruntime >= 1.18 and the pinned onnxruntime-web. Every graph edgeforge saves is capped here.
MAX_IR_VERSION = 10
#: The accuracy budget, in points: 100 x (1 - mIoU against fp32's label maps) for segmentation,
#: 100 x (1 - top-1 agreement with fp32) for classification.
DEFAULT_MAX_DRIFT = 0.5


def check_budget(points) -> float:
    """A drift budget as a finite number of points, 0 or more (NaN or infinity would pass every variant)."""
    if isinstance(points, bool) or not isinstance(points, (int, float)) or not math.isfinite(points) or points < 0:
        raise EdgeforgeError(f"the accuracy budget must be a finite number of points, 0 or more, not {points!r}")
    return float(points)


# --- formats and variants --------------------------------------------------------------------------
@dataclass(frozen=True)
class Format:
    name: str
    suffix: str  # of the file (or package directory) in the artifact
    directory: bool = False  # an .mlpackage is a directory


FORMATS = {f.name: f for f in (
    Format("onnx", ".onnx"),
    Format("ort", ".ort"),
    Format("coreml", ".mlpackage", directory=True),
    Format("openvino", ".xml"),  # with its weights in the .bin of the same name
    Format("tflite", ".tflite"),  # LiteRT (TensorFlow Lite)
)}


@dataclass(frozen=True)
class Variant:
    """One file an artifact directory may hold, as apps name it."""

    name: str  # edgeforge's name (``load(dir, variant=NAME)``, ``--variant``, ``--precisions``)
    file: str  # relative to the artifact directory
    precision: str  # a short description for the manifest and the report
    numeric: str  # the number format the weights are stored in: fp32, fp16, int8, uint8, int4, palette
    dtype: str | None = None  # the transformers.js ``dtype`` that loads the same file, if it does
    inference_precision: str | None = None  # OpenVINO: the compute precision the runtime asks for (f32, bf16)
    # The arithmetic most of its FLOPs run in on a CPU (fp32, bf16, int8): the measured peak it is held to.
    # fp16 and int4 weights are widened to fp32 for compute on x86 CPUs.
    compute: str = "fp32"

    def __post_init__(self):
        suffix = PurePosixPath(self.file).suffix
        if not any(f.suffix == suffix for f in FORMATS.values()):
            raise ValueError(f"variant {self.name}: {self.file} has no known format")

    @property
    def format(self) -> str:
        suffix = PurePosixPath(self.file).suffix
        return next(f.name for f in FORMATS.values() if f.suffix == suffix)


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    # transformers.js dtype names, files in onnx/
    Variant("fp32", "onnx/model.onnx", "fp32", "fp32", dtype="fp32"),
    Variant("fp16", "onnx/model_fp16.onnx", "fp16", "fp16", dtype="fp16"),
    Variant("quantized", "onnx/model_quantized.onnx", "int8 (Conv static, MatMul/Gemm dynamic)", "int8", dtype="q8",
            compute="int8"),
    Variant("int8", "onnx/model_int8.onnx", "int8 static QDQ (s8 activations, s8 weights)", "int8", dtype="int8",
            compute="int8"),
    Variant("uint8", "onnx/model_uint8.onnx", "int8 dynamic (u8 weights)", "uint8", dtype="uint8", compute="int8"),
    Variant("q4", "onnx/model_q4.onnx", "int4 weight-only", "int4", dtype="q4"),
    # resize + argmax inside the graph (--postprocess-in-graph): takes an output size, returns labels
    Variant("labels", "onnx/model_labels.onnx", "fp32", "fp32"),
    # ONNX Runtime Mobile
    Variant("ort", "ort/model.ort", "fp32", "fp32"),
    # Core ML (Apple platforms)
    Variant("coreml", "coreml/model.mlpackage", "fp16", "fp16"),
    Variant("coreml-int8", "coreml/model_int8.mlpackage", "int8 weights", "int8"),
    Variant("coreml-palette4", "coreml/model_palette4.mlpackage", "4-bit palettized weights", "palette"),
    Variant("coreml-palette6", "coreml/model_palette6.mlpackage", "6-bit palettized weights", "palette"),
    # OpenVINO IR (Intel CPUs and edge boxes): fp16-compressed weights, computed in f32 or bf16
    Variant("openvino", "openvino/model.xml", "fp16 weights, f32 compute", "fp16", inference_precision="f32"),
    Variant("openvino-bf16", "openvino/model.xml", "fp16 weights, bf16 compute", "fp16", inference_precision="bf16",
            compute="bf16"),
    Variant("openvino-int8", "openvino/model_int8.xml", "int8 (NNCF post-training, f32 elsewhere)", "int8",
            inference_precision="f32", compute="int8"),
    # LiteRT / TensorFlow Lite (Android, Linux boards): NCHW float input, logits out
    Variant("litert", "litert/model.tflite", "fp32", "fp32"),
    Variant("litert-fp16", "litert/model_fp16.tflite", "fp16 weights, f32 compute", "fp16"),
    Variant("litert-dynamic-int8", "litert/model_dynamic_int8.tflite", "int8 weights, dynamic-range int8 compute",
            "int8", compute="int8"),
    Variant("litert-int8", "litert/model_int8.tflite", "int8 static (calibrated) on Conv/FC, float elsewhere", "int8",
            compute="int8"),
)}
#: Other names apps use for a variant (transformers.js calls the default int8 file ``q8``).
ALIASES = {"q8": "quantized"}
#: transformers.js dtype -> variant, for the variants transformers.js loads
VARIANT_OF_DTYPE = {v.dtype: v.name for v in VARIANTS.values() if v.dtype}
#: The variant every artifact has and every other variant is measured against.
REFERENCE_VARIANT = "fp32"


def variant(name: str) -> Variant:
    """The declared variant ``name`` (or an alias of one); EdgeforgeError for an unknown name."""
    try:
        return VARIANTS[ALIASES.get(name, name)]
    except KeyError:
        raise EdgeforgeError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


def format_of_file(rel: str) -> str | None:
    suffix = PurePosixPath(rel).suffix
    return next((f.name for f in FORMATS.values() if f.suffix == suffix), None)


# --- the manifest's record of one variant ------------------------------------------------------------
@dataclass
class VariantEntry:
    """``manifest.json``'s ``variants[NAME]``: where the file is, its format and precision, and what the
    stage that made it measured (validation, recipe, drift, ...) under ``details``. Checked on construction."""

    file: str
    format: str
    precision: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; known: {', '.join(FORMATS)}")
        if format_of_file(self.file) != self.format:
            raise ValueError(f"{self.file} is not a {self.format} file")
        clash = {"file", "format", "precision"} & set(self.details)
        if clash:
            raise ValueError(f"details must not repeat {', '.join(sorted(clash))}")

    @classmethod
    def of(cls, name: str, **details) -> "VariantEntry":
        """The entry of declared variant ``name``, with its file, format and precision from the contract."""
        declared = variant(name)
        return cls(declared.file, declared.format, declared.precision, details)

    def to_json(self) -> dict:
        return {"file": self.file, "format": self.format, "precision": self.precision, **self.details}

    @classmethod
    def from_json(cls, data: dict) -> "VariantEntry":
        rest = {k: v for k, v in data.items() if k not in ("file", "format", "precision")}
        return cls(data["file"], data["format"], data["precision"], rest)
