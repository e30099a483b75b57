"""One small declaration per model family; the generic zoo, exporter and quantizers read it.

Adding a family (say, DeiT or Mask2Former) means adding a ``Family`` here, not editing a pipeline.
Build side: nothing here imports torch at module level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeforge.errors import EdgeforgeError

SEGMENTATION = "semantic-segmentation"
CLASSIFICATION = "image-classification"


@dataclass(frozen=True)
class Family:
    model_type: str  # config.model_type in transformers
    task: str
    config_class: str  # transformers class names, resolved lazily
    model_class: str
    image_processor_class: str
    ort_model_class: str  # optimum.onnxruntime class that loads the exported directory
    architecture_keys: tuple[str, ...]  # reference-JSON fields that go into the transformers config
    mini_architecture: dict[str, Any]  # overrides that make the narrow, shallow test model
    mini_image_size: int
    # ONNX I/O: axis index -> symbolic name. Spatial axes are dynamic where the architecture allows it.
    input_axes: dict[int, str] = field(default_factory=dict)
    output_axes: dict[int, str] = field(default_factory=dict)
    output_name: str = "logits"
    input_name: str = "pixel_values"
    # Exact speed-ups at export: torch-module rewrites (edgeforge.export.fold.REWRITES, in order) and
    # the onnxruntime transformer-optimizer profile (edgeforge.export.optimize.FUSION_PROFILES).
    torch_rewrites: tuple[str, ...] = ()
    fusion_profile: str | None = None
    # Quantization: each pattern (a regex on ONNX node names) makes one unit that the budget search keeps
    # float or quantizes as a whole (edgeforge.quantize.budget.group_candidates), for nodes whose mixed
    # precision costs more in layout conversions at run time than int8 saves.
    quantize_together: tuple[str, ...] = ()

    def transformers_class(self, which: str):
        import transformers

        return getattr(transformers, getattr(self, which))


SEGFORMER = Family(
    model_type="segformer",
    task=SEGMENTATION,
    config_class="SegformerConfig",
    model_class="SegformerForSemanticSegmentation",
    image_processor_class="SegformerImageProcessor",
    ort_model_class="ORTModelForSemanticSegmentation",
    architecture_keys=(
        "num_channels", "num_encoder_blocks", "depths", "hidden_sizes", "num_attention_heads",
        "sr_ratios", "patch_sizes", "strides", "mlp_ratios", "decoder_hidden_size",
    ),
    # Same four-stage MiT layout (strides, patch sizes, reduction ratios), ~1/4 width, one block per stage.
    mini_architecture={"depths": [1, 1, 1, 1], "hidden_sizes": [16, 32, 64, 128], "num_attention_heads": [1, 1, 2, 4],
                       "decoder_hidden_size": 64},
    mini_image_size=256,
    # SegFormer is fully convolutional up to the head: any H, W (multiples of 32 keep stages aligned).
    input_axes={0: "batch_size", 2: "height", 3: "width"},
    output_axes={0: "batch_size", 2: "logits_height", 3: "logits_width"},
    torch_rewrites=("segformer-decode-head", "segformer-mix-ffn-nchw"),
    fusion_profile="segformer",
    # The head's convolutions feed one resize/add/ReLU chain that onnxruntime's CPU provider runs in its
    # blocked (NCHWc) layout only when they are all float: one int8 projection among float ones put that
    # chain back in NCHW (b2: +12 ms of resize and reorders for < 1 ms that int8 saved).
    quantize_together=(r"/decode_head/",),
)

VIT = Family(
    model_type="vit",
    task=CLASSIFICATION,
    config_class="ViTConfig",
    model_class="ViTForImageClassification",
    image_processor_class="ViTImageProcessor",
    ort_model_class="ORTModelForImageClassification",
    architecture_keys=(
        "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "patch_size",
        "image_size", "qkv_bias", "layer_norm_eps",
    ),
    # 64x64 input in 8x8 patches (an 8x8 token grid; FER-style expression crops are 48x48), ~1/8 width, 4 layers.
    mini_architecture={"hidden_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 384,
                       "patch_size": 8},
    mini_image_size=64,
    # Position embeddings are learned for one grid: only the batch is dynamic.
    input_axes={0: "batch_size"},
    output_axes={0: "batch_size"},
    torch_rewrites=("vit-fusable-attention", "vit-class-token-last-layer"),
    fusion_profile="vit",
)

FAMILIES = {f.model_type: f for f in (SEGFORMER, VIT)}


def family_for(model_type: str) -> Family:
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise EdgeforgeError(
            f"model type {model_type!r} is not supported; supported: {', '.join(sorted(FAMILIES))}"
        ) from None
