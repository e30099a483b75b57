"""The engines that run an artifact's files, one per format (``edgeforge.contract.FORMATS``), behind one small
interface: ``input`` / ``output`` (name, shape, type), ``providers``, and ``run(pixel_values)`` -> logits.

onnxruntime runs ``.onnx`` and ``.ort``; OpenVINO (optional: ``pip install 'edgeforge[openvino]'``) runs its
IR (``.xml`` + ``.bin``); LiteRT's interpreter (optional: ``pip install 'edgeforge[litert]'``) runs ``.tflite``.
The runtime, the benchmark and the CLI read ``ENGINES`` / ``NOT_RUNNABLE``; a target whose files none of them
runs adds its engine here. Engines import their library when first opened.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError

#: why the runtime does not run a format (its size is still measured)
NOT_RUNNABLE = {"coreml": "needs macOS (Core ML runs on Apple platforms only); size measured, speed not"}
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


class EngineUnavailable(EdgeforgeError):
    """The library an engine needs is not installed (an optional extra)."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: list  # ints, or names / None for free dimensions
    type: str  # as onnxruntime writes it: "tensor(float)"

    @property
    def dtype(self):
        return _NUMPY_TYPES.get(self.type)


@dataclass(frozen=True)
class EngineOptions:
    """What the caller asks of every engine; each uses what applies to it."""

    providers: str | list[str] | None = "auto"  # onnxruntime's execution providers, as asked for (choose_providers);
    # OpenVINO runs on its CPU device
    strict_providers: bool = False
    threads: int | None = None
    spinning: bool = True  # onnxruntime: idle workers spin between runs
    single_image: dict[str, int] | None = None  # free dimensions fixed to one image (None: the graph's own)
    inference_precision: str | None = None  # OpenVINO: "f32" or "bf16" (the variant's, from the contract)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _optional_library(module: str, model_path: Path, what: str, extra: str):
    """The library an engine needs, or one line saying which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise EngineUnavailable(f"{model_path.name} is {what}: pip install 'edgeforge[{extra}]' to run it") from None


def _openvino_reason(exc: BaseException, limit: int = 240) -> str:
    """The line of an OpenVINO error that says what failed: its messages open with a stack of
    "Exception from FILE:LINE:" lines; a failed graph pass names itself in brackets before CALLBACK HAS THROWN."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    said = [line for line in lines if not line.startswith("Exception from")] or lines or [type(exc).__name__]
    reason = said[0]
    if "CALLBACK HAS THROWN:" in reason:  # "[PassName] END: node: <a long node dump> CALLBACK HAS THROWN: why"
        pass_name = reason.split("]")[0].lstrip("[") if reason.startswith("[") else "a graph pass"
        reason = f"its {pass_name} pass failed: {reason.split('CALLBACK HAS THROWN:', 1)[1].strip()}"
        if len(said) > 1:
            reason += f" {said[1]}"
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


class OnnxRuntimeEngine:
    name = "onnxruntime"

    def __init__(self, model_path: Path, options: EngineOptions):
        import onnxruntime as ort

        from edgeforge.runtime.providers import (
            ProviderFallbackWarning,
            ProviderUnavailable,
            choose_providers,
        )

        self.model_path = model_path
        providers = choose_providers(options.providers, options.strict_providers)
        session_options = ort.SessionOptions()
        for name, size in (options.single_image or {}).items():  # names the graph lacks are ignored by onnxruntime
            session_options.add_free_dimension_override_by_name(name, size)
        if options.threads:
            session_options.intra_op_num_threads = options.threads
        if not options.spinning:
            session_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session_options.log_severity_level = 3  # warnings from ORT's optimizer are noise to an app
        try:
            self.session = ort.InferenceSession(str(model_path), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception classes
            raise EdgeforgeError(f"{model_path}: onnxruntime cannot load it: {_first_line(exc)}") from None
        # A provider present in the build can still fail to start (no driver, no device): ORT then
        # drops it silently, which a user who demanded it must hear about.
        dropped = [p for p in providers if p not in self.session.get_providers()]
        if dropped and options.strict_providers:
            raise ProviderUnavailable(f"execution provider(s) {', '.join(dropped)} failed to start for {model_path.name}")
        if dropped:
            warnings.warn(f"execution provider(s) {', '.join(dropped)} failed to start; running on "
                          f"{', '.join(self.session.get_providers())}", ProviderFallbackWarning, stacklevel=4)
        first_in, first_out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self.input = TensorInfo(first_in.name, list(first_in.shape), first_in.type)
        self.output = TensorInfo(first_out.name, list(first_out.shape), first_out.type)
        # A failed run is raised as an EdgeforgeError; ORT's own log line would only repeat it on stderr.
        # Read-only during runs, so every thread shares them.
        self._run_options = ort.RunOptions()
        self._run_options.log_severity_level = 4
        # The CPU arena keeps the largest batch's buffers for the session's lifetime; a one-off large batch
        # can hand them back (onnxruntime's arena shrinkage) instead of holding them.
        self._releasing = ort.RunOptions()
        self._releasing.log_severity_level = 4
        self._releasing.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    def run(self, pixel_values: np.ndarray, release_memory: bool = False, into: np.ndarray | None = None) -> np.ndarray:
        """The logits: a fresh array from onnxruntime (``into``, a buffer other engines copy into, is not used)."""
        options = self._releasing if release_memory else self._run_options
        try:
            return self.session.run([self.output.name], {self.input.name: pixel_values}, options)[0]
        except Exception as exc:  # onnxruntime's own exception classes: a failed run, not a crash
            if not type(exc).__module__.startswith("onnxruntime"):
                raise
            raise EdgeforgeError(f"{self.model_path.name}: onnxruntime failed on input "
                                 f"{tuple(pixel_values.shape)}: {_first_line(exc)}") from None


class OpenVINOEngine:
    """OpenVINO's CPU device on an IR. Inference precision is explicit (the CPU plugin would pick bf16 by
    itself on CPUs that have it, which is a different variant): f32 unless the variant says bf16, and bf16
    is refused on a CPU without native bf16 rather than emulated."""

    name = "openvino"

    def __init__(self, model_path: Path, options: EngineOptions):
        ov = _optional_library("openvino", model_path, "an OpenVINO IR", "openvino")
        self.model_path = model_path
        core = ov.Core()
        precision = options.inference_precision or "f32"
        if precision == "bf16" and not openvino_cpu_has_bf16():
            raise EdgeforgeError(f"{model_path.name}: this CPU has no native bf16 (OpenVINO's CPU capabilities: "
                                 f"{', '.join(ov.Core().get_property('CPU', 'OPTIMIZATION_CAPABILITIES'))}); "
                                 "run the f32 variant (openvino) instead")
        try:
            model = core.read_model(str(model_path))
            if options.single_image:  # free batch / height / width fixed, as onnxruntime's overrides do
                axes = {0: "batch_size", 2: "height", 3: "width"}
                dims = _shape(model.inputs[0].get_partial_shape())
                fixed = [d if d is not None else options.single_image.get(axes.get(i, ""), -1) for i, d in enumerate(dims)]
                if fixed != dims:
                    model.reshape({model.inputs[0]: fixed})
            config = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
            if options.threads:
                config["INFERENCE_NUM_THREADS"] = str(options.threads)
            self.compiled = core.compile_model(model, "CPU", config)
        except Exception as exc:  # OpenVINO raises RuntimeError with multi-line messages
            raise EdgeforgeError(f"{model_path}: OpenVINO cannot load it: {_openvino_reason(exc)}") from None
        self.inference_precision = precision
        port_in, port_out = self.compiled.inputs[0], self.compiled.outputs[0]
        self.input = TensorInfo(port_in.get_any_name(), _shape(port_in.get_partial_shape()), "tensor(float)")
        self.output = TensorInfo(port_out.get_any_name(), _shape(port_out.get_partial_shape()), "tensor(float)")
        self._requests = threading.local()  # an infer request serves one thread at a time

    @property
    def providers(self) -> list[str]:
        return [f"OpenVINO CPU ({self.inference_precision})"]

    def run(self, pixel_values: np.ndarray, release_memory: bool = False, into: np.ndarray | None = None) -> np.ndarray:
        """The logits, copied out of the request's output into ``into`` when it fits, else into a fresh array."""
        request = getattr(self._requests, "request", None)
        if request is None:
            request = self._requests.request = self.compiled.create_infer_request()
        try:
            request.infer({0: pixel_values})
        except Exception as exc:
            raise EdgeforgeError(f"{self.model_path.name}: OpenVINO failed on input {tuple(pixel_values.shape)}: "
                                 f"{_openvino_reason(exc)}") from None
        return _copied(request.get_output_tensor(0).data, into)


class LiteRTEngine:
    """LiteRT (TensorFlow Lite) on a ``.tflite`` with ai-edge-litert's interpreter, XNNPACK on (its default CPU
    delegate). Full-integer models take and give int8: the engine quantizes the input and dequantizes the
    output with the tensors' own scale and zero point, as an app does. An interpreter serves one call at a
    time (it owns its tensors), so calls from several threads take turns."""

    name = "litert"

    def __init__(self, model_path: Path, options: EngineOptions):
        litert = _optional_library("ai_edge_litert.interpreter", model_path, "a LiteRT model", "litert")
        self.model_path = model_path
        try:
            self.interpreter = litert.Interpreter(model_path=str(model_path), num_threads=options.threads or None)
            self.interpreter.allocate_tensors()
        except Exception as exc:  # a corrupt flatbuffer, an op this build lacks: ValueError / RuntimeError
            raise EdgeforgeError(f"{model_path}: LiteRT cannot load it: {_first_line(exc)}") from None
        self._in, self._out = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        self.input = TensorInfo(self._in["name"], [int(d) for d in self._in["shape"]], "tensor(float)")
        self.output = TensorInfo(self._out["name"], [int(d) for d in self._out["shape"]], "tensor(float)")
        self._lock = threading.Lock()

    @property
    def providers(self) -> list[str]:
        return ["LiteRT CPU (XNNPACK)"]

    def run(self, pixel_values: np.ndarray, release_memory: bool = False, into: np.ndarray | None = None) -> np.ndarray:
        """The logits, copied out of the interpreter into ``into`` when it fits, else into a fresh array."""
        with self._lock:
            try:
                self.interpreter.set_tensor(self._in["index"], _to_tensor(pixel_values, self._in))
                self.interpreter.invoke()
            except Exception as exc:
                raise EdgeforgeError(f"{self.model_path.name}: LiteRT failed on input {tuple(pixel_values.shape)}: "
                                     f"{_first_line(exc)}") from None
            if np.issubdtype(self._out["dtype"], np.integer):
                return _from_tensor(self.interpreter.get_tensor(self._out["index"]), self._out)
            return _copied(self.interpreter.tensor(self._out["index"])(), into)  # a view, valid until the next run


def _to_tensor(values: np.ndarray, detail: dict) -> np.ndarray:
    """A float array as the tensor ``detail`` describes: quantized with its scale and zero point if integer."""
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(values / scale) + zero_point, info.min, info.max).astype(detail["dtype"])
    return values.astype(detail["dtype"], copy=False)


def _from_tensor(values: np.ndarray, detail: dict) -> np.ndarray:
    """An integer output tensor dequantized with its scale and zero point."""
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * np.float32(scale)


def _copied(values: np.ndarray, into: np.ndarray | None) -> np.ndarray:
    """``values`` (an engine's own output memory) copied into ``into`` if it has their shape, else into a fresh
    float32 array. ``predict()`` passes the previous call's logits: a fresh array of megabytes costs page faults
    on every call once the allocator has handed freed memory back to the system."""
    if into is not None and into.shape == values.shape and into.dtype == np.float32 and into.flags.writeable:
        np.copyto(into, values)
        return into
    return np.array(values, dtype=np.float32)


def litert_op_set(model_path: Path) -> dict:
    """The ops a ``.tflite`` uses, and how many XNNPACK partitions the interpreter makes of it (1: XNNPACK runs
    the whole graph; each op it does not take splits it once more). ai-edge-litert's Python API does not list
    which ops fell back, so the count of partitions is what the manifest records."""
    from collections import Counter

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    plain = Interpreter(model_path=str(model_path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = Counter(op["op_name"] for op in plain._get_ops_details())
    delegated = Interpreter(model_path=str(model_path))
    delegated.allocate_tensors()
    partitions = sum(op["op_name"] == "DELEGATE" for op in delegated._get_ops_details())
    return {"ops": dict(ops.most_common()), "xnnpack_partitions": partitions}


def openvino_cpu_has_bf16() -> bool:
    """Whether OpenVINO's CPU device computes bf16 natively here (AVX512_BF16 or AMX)."""
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _shape(partial_shape) -> list:
    return [d.get_length() if d.is_static else None for d in partial_shape]


#: format -> the engine the runtime opens it with
ENGINES = {"onnx": OnnxRuntimeEngine, "ort": OnnxRuntimeEngine, "openvino": OpenVINOEngine, "tflite": LiteRTEngine}


def runnable(fmt: str) -> bool:
    return fmt in ENGINES


def why_not_runnable(fmt: str) -> str:
    return NOT_RUNNABLE.get(fmt, f"format {fmt!r} has no engine in edgeforge.runtime")


def require_engine(fmt: str, name: str) -> None:
    """One line for a file whose format nothing here runs (checked before its file is hashed or opened)."""
    if fmt not in ENGINES:
        raise EdgeforgeError(f"{name} ({fmt}) cannot run here: {why_not_runnable(fmt)}")


def open_engine(fmt: str, model_path: Path, options: EngineOptions):
    require_engine(fmt, model_path.name)
    return ENGINES[fmt](model_path, options)
