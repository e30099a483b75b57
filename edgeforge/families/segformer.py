"""SegFormer (MiT-b0..b5 encoders, all-MLP decode head): face parsing and clothes / human parsing.

Rewrites (torch modules in ``segformer_modules``, imported when a rewrite runs):

- ``segformer-decode-head``: SegFormer's head is linear up to its ReLU: per stage a Linear C_i -> D,
  a bilinear upsample to 1/4 resolution, a concatenation (in *reverse* stage order), a 1x1 conv
  4D -> D (``linear_fuse``) and an eval-mode BatchNorm. Linear maps commute with the resize (per-
  channel weights that sum to 1), so the fuse conv and the BatchNorm fold into each stage's
  projection *before* upsampling::

      W_i' = s * (F_i @ W_i)            F_i: linear_fuse's column block of stage i, s: BN scale
      b'   = s * sum_i (F_i @ b_i) + t  one bias for all stages (t: BN shift), added at stage 0

  which removes the 1x1 conv at 1/4 resolution: 121 -> 44 GFLOPs for SegFormer-b2 at 512x512.
- ``segformer-mix-ffn-nchw`` (ONNX): Mix-FFN's Linear -> depthwise conv -> GELU -> Linear, computed in NCHW
  with 1x1 convs, so only the C-channel input and output are transposed instead of the 4C-channel
  hidden state twice (those transposes were ~12 % of b2's time after folding).
- ``segformer-litert-attention`` (LiteRT): the attention scores Q·K^T as an einsum. litert-torch lowers a
  one-head ``matmul`` (stage 1 of every MiT) to FULLY_CONNECTED with K as run-time weights, which XNNPACK's
  default delegate does not take (its dynamic fully connected flag is off by default, in Python as on
  Android): each fell back to TFLite's own kernel and split the graph (b2: 4 XNNPACK partitions). As an
  einsum it lowers to BATCH_MATMUL, which XNNPACK runs: 1 partition, b2 164 -> 127 ms. (Its sequence
  reduction conv goes by way of NHWC, as below.)
- ``segformer-litert-channels-last`` (LiteRT): the token <-> image reshapes around every conv (patch
  embeddings, sequence reduction, Mix-FFN's depthwise conv) go by way of NHWC, so they cancel against the
  NCHW <-> NHWC transposes litert-torch puts around each conv (b2: 178 -> 54 TRANSPOSE ops). With no
  transposes left to save, LiteRT keeps Mix-FFN's dense layers as they are: FULLY_CONNECTED, which XNNPACK's
  dynamic int8 quantizes and runs on both x86 and ARM alike (its dynamic CONV_2D does not: see ARM64), so
  ``segformer-mix-ffn-nchw`` is for ONNX only. b2's dynamic int8 .tflite: 124 -> 89 ms.
"""

from __future__ import annotations

from edgeforge.contract import SEGMENTATION
from edgeforge.families.base import (
    Family,
    FusionProfile,
    Rewrite,
    register,
    replace_modules,
)


def fold_decode_head(model) -> None:
    from edgeforge.families.segformer_modules import FoldedSegformerDecodeHead

    model.decode_head = FoldedSegformerDecodeHead(model.decode_head)


def litert_attention(model) -> None:
    from edgeforge.families.segformer_modules import LiteRTSelfAttention

    replace_modules(model, "SegformerEfficientSelfAttention", LiteRTSelfAttention)


def litert_channels_last(model) -> None:
    from edgeforge.families.segformer_modules import LiteRTDWConv, LiteRTPatchEmbeddings

    replace_modules(model, "SegformerOverlapPatchEmbeddings", LiteRTPatchEmbeddings)
    replace_modules(model, "SegformerDWConv", LiteRTDWConv)


def mix_ffn_nchw(model) -> None:
    from edgeforge.families.segformer_modules import NCHWMixFFN

    replace_modules(model, "SegformerMixFFN", NCHWMixFFN)


SEGFORMER = register(Family(
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
    rewrites=(Rewrite("segformer-decode-head", fold_decode_head),
              Rewrite("segformer-mix-ffn-nchw", mix_ffn_nchw, targets=("onnx",)),
              Rewrite("segformer-litert-attention", litert_attention, targets=("litert",)),
              Rewrite("segformer-litert-channels-last", litert_channels_last, targets=("litert",))),
    # Attention fires only in the last stage (sequence-reduction ratio 1: plain self-attention). onnxruntime
    # has no fusion for the reduced-K/V attention of the others (its attention fusion needs Q, K and V from
    # one input). SkipLayerNormalization: fires, but measured 9-13 % slower end to end on b2 (onnxruntime
    # 1.31 CPU, 2 threads) than the Add + LayerNormalization it replaces.
    fusion=FusionProfile("segformer", "vit", disabled=("enable_skip_layer_norm",), expected=("Attention", "Gelu")),
    # The head's convolutions feed one resize/add/ReLU chain that onnxruntime's CPU provider runs in its
    # blocked (NCHWc) layout only when they are all float: one int8 projection among float ones put that
    # chain back in NCHW (b2: +12 ms of resize and reorders for < 1 ms that int8 saved).
    quantize_together=(r"/decode_head/",),
))
