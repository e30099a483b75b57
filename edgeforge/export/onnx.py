"""Checkpoint -> ONNX with torch.onnx, I/O and dynamic axes declared by the model's family."""

from __future__ import annotations

from pathlib import Path

from edgeforge.atomic import atomic_path
from edgeforge.errors import EdgeforgeError
from edgeforge.zoo.checkpoints import Checkpoint

DEFAULT_OPSET = 17  # LayerNormalization is native from 17; every ORT build of the last years runs it.


def logits_module(model):
    """Wrap a transformers model so that it takes ``pixel_values`` and returns the logits tensor only."""
    import torch

    class LogitsOnly(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            return self.inner(pixel_values=pixel_values).logits

    return LogitsOnly(model).eval()


def export_onnx(checkpoint: Checkpoint, out_path: str | Path, opset: int = DEFAULT_OPSET, fold: bool = False) -> Path:
    """Export ``checkpoint`` to ``out_path`` (written atomically) and run onnx's full checker on it.

    ``fold``: export the model with its family's exact rewrites for ONNX (``Family.rewrites_for("onnx")``:
    folded head, fusion-friendly modules) instead of the stock modules.
    """
    import onnx
    import torch

    family = checkpoint.family
    model = checkpoint.model
    rewrites = family.rewrites_for("onnx") if fold else ()
    if rewrites:
        from edgeforge.export.rewrite import rewrite_model

        model = rewrite_model(model, rewrites)
    height, width = input_size(checkpoint.image_processor)
    dummy = torch.zeros(1, checkpoint.config.num_channels, height, width)
    out_path = Path(out_path)
    with atomic_path(out_path, suffix=".onnx") as tmp:
        with torch.no_grad():
            torch.onnx.export(
                logits_module(model),
                (dummy,),
                str(tmp),
                input_names=[family.input_name],
                output_names=[family.output_name],
                dynamic_axes={family.input_name: family.input_axes, family.output_name: family.output_axes},
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,  # the TorchScript exporter handles these models' dynamic H/W without guards
            )
        try:
            onnx.checker.check_model(str(tmp), full_check=True)
        except onnx.checker.ValidationError as exc:
            raise EdgeforgeError(f"exported graph failed onnx's checker: {str(exc).splitlines()[0]}") from None
    return out_path


def input_size(image_processor) -> tuple[int, int]:
    """(height, width) the image processor resizes to."""
    size = image_processor.size
    if "height" in size:
        return int(size["height"]), int(size["width"])
    if "shortest_edge" in size:
        return int(size["shortest_edge"]), int(size["shortest_edge"])
    raise EdgeforgeError(f"unsupported image processor size {size!r}")
