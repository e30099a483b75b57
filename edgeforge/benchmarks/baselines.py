"""What the user would otherwise run, measured in the same run: PyTorch eager through transformers
(their starting point), the plain ONNX export of the same checkpoint as Optimum's exporter gives it, and,
where OpenVINO is installed, that export run the optimum-intel way: OpenVINO f32, bf16 (where the CPU has
it) and NNCF's default post-training int8.

The checkpoint is the one the artifact was built from (manifest ``source.checkpoint``). When it
cannot be loaded (moved, a hub id while offline) the baselines are skipped with a note, never faked.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeforge.errors import EdgeforgeError

PYTORCH = "pytorch"
OPTIMUM = "optimum-onnx"
TORCH_ONNX = "torch-onnx"  # the fallback when Optimum's exporter fails; labelled as what it is
OV_F32, OV_BF16, OV_INT8 = "openvino-f32-plain", "openvino-bf16-plain", "openvino-nncf-int8-plain"
LITERT_STOCK = "litert-torch-stock"

LABELS = {
    PYTORCH: "PyTorch eager (transformers)",
    OPTIMUM: "ONNX as Optimum exports it (optimum.exporters.onnx.main_export)",
    TORCH_ONNX: "ONNX plain torch.onnx export (Optimum's exporter failed here)",
    OV_F32: "OpenVINO IR of the plain export, f32 compute",
    OV_BF16: "OpenVINO IR of the plain export, bf16 compute",
    OV_INT8: "OpenVINO IR of the plain export, NNCF default int8 (f32 elsewhere)",
    LITERT_STOCK: "LiteRT .tflite of the stock model (litert_torch.convert, no rewrites), XNNPACK",
}


@dataclass
class Peer:
    """A baseline run from a file with the artifact's configs; ``variant`` names its engine settings
    (OpenVINO's compute precision) in ``edgeforge.contract``."""

    name: str
    path: Path
    variant: str = "fp32"
    provider: str = "OpenVINO CPU"  # the label its runner gets


@dataclass
class PlainOnnx:
    name: str  # OPTIMUM, or TORCH_ONNX when Optimum failed
    path: Path
    note: str | None = None


def load_pytorch(checkpoint_source: str):
    """The source checkpoint as transformers loads it (EdgeforgeError if it cannot be loaded)."""
    from edgeforge.zoo.checkpoints import load_checkpoint

    with _quiet():
        return load_checkpoint(checkpoint_source)


def pytorch_forward(checkpoint):
    """pixel_values (numpy) -> logits (numpy), eager, no autograd: what a PyTorch user runs."""
    import torch

    model = checkpoint.model

    def forward(pixel_values: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(pixel_values=torch.from_numpy(pixel_values)).logits.numpy()

    return forward


def pytorch_threads(threads: int):
    """A ``prepare`` hook: PyTorch's intra-op thread count is process-wide, so it is set before each
    timed PyTorch call (a no-op when already right) rather than once for the whole run."""
    import torch

    def prepare() -> None:
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    return prepare


def export_plain_onnx(checkpoint_source: str, task: str, out_dir: Path, checkpoint=None) -> PlainOnnx:
    """Export with Optimum's ``main_export`` (offline for a local directory); on failure, fall back to a
    plain ``torch.onnx`` export of the loaded ``checkpoint`` and say so."""
    out_dir = Path(out_dir)
    try:
        from optimum.exporters.onnx import main_export

        with _quiet():
            main_export(checkpoint_source, out_dir / "optimum", task=task, do_validation=False,
                        local_files_only=Path(checkpoint_source).exists())
        return PlainOnnx(OPTIMUM, out_dir / "optimum" / "model.onnx")
    except Exception as exc:  # Optimum raises many kinds; any failure means "use the fallback"
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if checkpoint is None:
        raise EdgeforgeError(f"Optimum's ONNX exporter failed ({reason}) and no checkpoint is loaded to fall back on")
    from edgeforge.export.onnx import export_onnx

    with _quiet():
        path = export_onnx(checkpoint, out_dir / "torch-onnx" / "model.onnx")
    return PlainOnnx(TORCH_ONNX, path, f"Optimum's exporter failed: {reason}; plain torch.onnx export used instead")


def openvino_peers(plain: PlainOnnx, calibration: np.ndarray, out_dir: Path) -> tuple[list[Peer], str | None]:
    """The plain export as an optimum-intel user runs it: converted to OpenVINO IR (fp16-compressed weights,
    as ``save_model`` writes by default), at f32 and bf16 compute, and NNCF's ``quantize`` with its defaults
    on ``calibration``. (peers, note): no peers and a note when OpenVINO or NNCF is missing."""
    import importlib.util

    if importlib.util.find_spec("openvino") is None or importlib.util.find_spec("nncf") is None:
        return [], "OpenVINO peers not measured: pip install 'edgeforge[openvino]'"
    import openvino as ov

    from edgeforge.quantize.openvino_int8 import quiet_nncf
    from edgeforge.runtime.engines import openvino_cpu_has_bf16

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ir = out_dir / "plain.xml"
    ov.save_model(ov.convert_model(str(plain.path)), str(ir))
    peers = [Peer(OV_F32, ir, "openvino")]
    note = None
    if openvino_cpu_has_bf16():
        peers.append(Peer(OV_BF16, ir, "openvino-bf16"))
    else:
        note = "OpenVINO bf16 peer not measured: this CPU has no native bf16"
    import nncf

    with quiet_nncf():
        quantized = nncf.quantize(ov.Core().read_model(str(ir)),
                                  nncf.Dataset([calibration[i : i + 1] for i in range(len(calibration))]),
                                  subset_size=len(calibration))
    ov.save_model(quantized, str(out_dir / "plain_int8.xml"))
    peers.append(Peer(OV_INT8, out_dir / "plain_int8.xml", "openvino-int8"))
    return peers, note


def litert_peers(checkpoint, out_dir: Path) -> tuple[list[Peer], str | None]:
    """The stock model as a LiteRT user converts it: ``litert_torch.convert`` of the unmodified transformers
    model, run by the same interpreter and threads as edgeforge's .tflite. (peers, note)."""
    import importlib.util

    if importlib.util.find_spec("litert_torch") is None:
        return [], "LiteRT peer not measured: pip install 'edgeforge[litert]'"
    from edgeforge.targets.litert import convert_checkpoint

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with _quiet():
        convert_checkpoint(checkpoint, checkpoint.model, out_dir / "stock.tflite")
    return [Peer(LITERT_STOCK, out_dir / "stock.tflite", "litert", "LiteRT CPU (XNNPACK)")], None


@contextlib.contextmanager
def _quiet():
    """Exporters log pages of tracer warnings that say nothing about the benchmark."""
    loggers = [logging.getLogger(name) for name in ("optimum", "transformers", "torch", "root")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
