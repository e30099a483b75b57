"""ViT (image classification): facial emotions.

Rewrites (torch modules in ``vit_modules``, imported when a rewrite runs):

- ``vit-fusable-attention``: transformers' ViT attention (SDPA, or eager with ``* scaling``) exports
  to a pattern onnxruntime's attention fusion does not match; scores ``/ sqrt(head_size)`` do.
- ``vit-class-token-last-layer``: the classifier reads the [CLS] token of the last layer only, and
  everything in a ViT layer but attention is per token, so the last layer needs keys and values of
  every token but a query, output projection and MLP for [CLS] alone: ~84 % of that layer's FLOPs
  (ViT-base: 1/12 of the model) are never used. Only the logits are kept (hidden states are not).
"""

from __future__ import annotations

from edgeforge.contract import CLASSIFICATION
from edgeforge.errors import EdgeforgeError
from edgeforge.families.base import (
    Family,
    FusionProfile,
    Rewrite,
    register,
    replace_modules,
)


def fusable_attention(model) -> None:
    from edgeforge.families.vit_modules import FusableViTSelfAttention

    replace_modules(model, "ViTSelfAttention", FusableViTSelfAttention)


def class_token_last_layer(model) -> None:
    from edgeforge.families.vit_modules import ClassTokenViTLayer

    if type(model).__name__ != "ViTForImageClassification":  # its head reads sequence_output[:, 0] only
        raise EdgeforgeError(f"vit-class-token-last-layer needs ViTForImageClassification, not {type(model).__name__}")
    layers = model.vit.encoder.layer
    layers[-1] = ClassTokenViTLayer(layers[-1], model.config.num_attention_heads)


VIT = register(Family(
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
    rewrites=(Rewrite("vit-fusable-attention", fusable_attention),
              Rewrite("vit-class-token-last-layer", class_token_last_layer)),
    # SkipLayerNormalization: fires, but measured ~3 % slower on ViT-base than Add + LayerNormalization.
    fusion=FusionProfile("vit", "vit", disabled=("enable_skip_layer_norm",), expected=("Attention", "BiasGelu")),
))
