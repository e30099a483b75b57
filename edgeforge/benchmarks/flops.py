"""FLOPs of one forward pass, counted once per model with torch's own FlopCounterMode.

Why this way: FLOPs depend on the architecture and the input size, not on the weights, so the model
is built from the artifact's ``config.json`` on PyTorch's ``meta`` device (shapes only: no memory, no
weights, no checkpoint needed) and run once under ``torch.utils.flop_counter.FlopCounterMode``, which
knows the FLOP formula of every matmul, convolution and attention kernel PyTorch dispatches. This is
the computation the ONNX graph was traced from; counting the ONNX graph instead would mean writing
per-operator formulas by hand. Convention: one multiply-add = 2 FLOPs; element-wise work (norms,
activations, softmax, resizes) is not counted, as usual for GFLOP/s figures.
"""

from __future__ import annotations

import json
from pathlib import Path


def count_flops(artifact_dir: str | Path, height: int, width: int) -> dict:
    """FLOPs of one image at ``height`` x ``width`` through the model described by ``config.json``."""
    import torch
    import transformers
    from torch.utils.flop_counter import FlopCounterMode

    config_dict = json.loads((Path(artifact_dir) / "config.json").read_text())
    config = transformers.AutoConfig.for_model(**config_dict)
    model_class = getattr(transformers, config.architectures[0])
    with torch.device("meta"):
        model = model_class(config).eval()
        pixel_values = torch.zeros(1, config.num_channels, height, width)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(pixel_values=pixel_values)
    by_operator = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {
        "flops_per_image": int(counter.get_total_flops()),
        "input_size": [height, width],
        "method": "torch.utils.flop_counter.FlopCounterMode on the config's architecture (meta device); "
                  "1 multiply-add = 2 FLOPs; element-wise ops not counted",
        "by_operator": by_operator,
    }
