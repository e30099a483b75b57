"""Exact torch-module rewrites applied to a copy of the model before export (``Family.torch_rewrites``).

Each rewrite computes the same function as the stock module (up to float rounding) with a graph that
runs faster or that onnxruntime's fusions recognise. None of torch, onnx or onnxruntime does these
(the decode-head fold has to see through a resize), hence they are written here. The stock model
stays the numerical reference: build validation compares the exported graph against it.

- ``segformer-decode-head``: SegFormer's head is linear up to its ReLU: per stage a Linear C_i -> D,
  a bilinear upsample to 1/4 resolution, a concatenation (in *reverse* stage order), a 1x1 conv
  4D -> D (``linear_fuse``) and an eval-mode BatchNorm. Linear maps commute with the resize (per-
  channel weights that sum to 1), so the fuse conv and the BatchNorm fold into each stage's
  projection *before* upsampling::

      W_i' = s * (F_i @ W_i)            F_i: linear_fuse's column block of stage i, s: BN scale
      b'   = s * sum_i (F_i @ b_i) + t  one bias for all stages (t: BN shift), added at stage 0

  which removes the 1x1 conv at 1/4 resolution: 121 -> 44 GFLOPs for SegFormer-b2 at 512x512.
- ``segformer-mix-ffn-nchw``: Mix-FFN's Linear -> depthwise conv -> GELU -> Linear, computed in NCHW
  with 1x1 convs, so only the C-channel input and output are transposed instead of the 4C-channel
  hidden state twice (those transposes were ~12 % of b2's time after folding).
- ``vit-fusable-attention``: transformers' ViT attention (SDPA, or eager with ``* scaling``) exports
  to a pattern onnxruntime's attention fusion does not match; scores ``/ sqrt(head_size)`` do.
- ``vit-class-token-last-layer``: the classifier reads the [CLS] token of the last layer only, and
  everything in a ViT layer but attention is per token, so the last layer needs keys and values of
  every token but a query, output projection and MLP for [CLS] alone: ~84 % of that layer's FLOPs
  (ViT-base: 1/12 of the model) are never used. Only the logits are kept (hidden states are not).

Build side only (imports torch).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from edgeforge.errors import EdgeforgeError
from edgeforge.families import SEGMENTATION

#: A rewritten graph must match the stock PyTorch model this closely (float-rounding level)...
REWRITE_MAX_ABS_DIFF = 1e-4
#: ...and give the same label map (segmentation, at the image's size) / top-1 class on this share.
REWRITE_MIN_AGREEMENT = 0.9999


def rewrite_model(model, rewrites: tuple[str, ...] | list[str]):
    """A rewritten copy of ``model`` (eval mode) with ``rewrites`` applied in order; ``model`` is untouched."""
    unknown = [name for name in rewrites if name not in REWRITES]
    if unknown:
        raise EdgeforgeError(f"unknown model rewrite(s) {', '.join(unknown)}; known: {', '.join(sorted(REWRITES))}")
    if model.training:
        raise EdgeforgeError("model rewrites need a model in eval mode (BatchNorm statistics, no dropout)")
    rewritten = copy.deepcopy(model)
    for name in rewrites:
        REWRITES[name](rewritten)
    return rewritten.eval()


# --- SegFormer decode head ------------------------------------------------------------------------
def fold_segformer_decode_head(model) -> None:
    model.decode_head = FoldedSegformerDecodeHead(model.decode_head)


class FoldedSegformerDecodeHead(nn.Module):
    """SegformerDecodeHead with linear_fuse and batch_norm folded into the per-stage projections."""

    def __init__(self, head):
        super().__init__()
        self.reshape_last_stage = head.config.reshape_last_stage
        weights, bias = folded_projections(head)
        self.projections = nn.ModuleList()
        for index, weight in enumerate(weights):
            conv = nn.Conv2d(weight.shape[1], weight.shape[0], kernel_size=1, bias=index == 0)
            conv.weight.data = weight[:, :, None, None].to(torch.float32).contiguous()
            if index == 0:
                conv.bias.data = bias.to(torch.float32)
            self.projections.append(conv)
        self.activation = nn.ReLU()
        self.classifier = copy.deepcopy(head.classifier)  # the dropout before it is the identity in eval

    def forward(self, encoder_hidden_states):
        states = list(encoder_hidden_states)
        last = states[-1]
        if self.reshape_last_stage is False and last.ndim == 3:  # as SegformerDecodeHead does
            side = int(math.sqrt(last.shape[1]))
            states[-1] = last.reshape(last.shape[0], side, side, -1).permute(0, 3, 1, 2)
        size = states[0].shape[2:]
        # Stage 0 is already at the target size, where torch's bilinear resize is the identity.
        hidden = self.projections[0](states[0])
        for state, projection in zip(states[1:], self.projections[1:]):
            hidden = hidden + nn.functional.interpolate(projection(state), size=size, mode="bilinear",
                                                        align_corners=False)
        return self.classifier(self.activation(hidden))


def folded_projections(head) -> tuple[list, "torch.Tensor"]:
    """Per-stage folded weights (D, C_i) and the single folded bias (D,), computed in float64."""
    stages = len(head.linear_c)
    hidden = head.linear_fuse.out_channels
    fuse = head.linear_fuse.weight.detach().double()[:, :, 0, 0]  # (D, stages * D)
    if fuse.shape[1] != stages * hidden or head.linear_fuse.bias is not None:
        raise EdgeforgeError(f"unexpected SegFormer decode head: linear_fuse weight {tuple(fuse.shape)}")
    bn = head.batch_norm
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = bn.bias.detach().double() - bn.running_mean.double() * scale
    weights = []
    for index, mlp in enumerate(head.linear_c):
        # The head concatenates the stages in reverse order (all_hidden_states[::-1]).
        block = fuse[:, (stages - 1 - index) * hidden : (stages - index) * hidden]
        weights.append(scale[:, None] * (block @ mlp.proj.weight.detach().double()))
        bias = bias + scale * (block @ mlp.proj.bias.detach().double())
    return weights, bias


# --- SegFormer Mix-FFN -----------------------------------------------------------------------------
def segformer_mix_ffn_nchw(model) -> None:
    _replace_modules(model, "SegformerMixFFN", NCHWMixFFN)


class NCHWMixFFN(nn.Module):
    """SegformerMixFFN (dense1 -> 3x3 depthwise conv -> GELU -> dense2) with the dense layers as 1x1 convs."""

    def __init__(self, ffn):
        super().__init__()
        self.dense1 = _conv1x1(ffn.dense1)
        self.dwconv = copy.deepcopy(ffn.dwconv.dwconv)
        self.activation = ffn.intermediate_act_fn
        self.dense2 = _conv1x1(ffn.dense2)

    def forward(self, hidden_states, height, width):
        batch_size, _, channels = hidden_states.shape
        x = hidden_states.transpose(1, 2).reshape(batch_size, channels, height, width)
        x = self.dense2(self.activation(self.dwconv(self.dense1(x))))
        return x.flatten(2).transpose(1, 2)


def _conv1x1(linear: nn.Linear) -> nn.Conv2d:
    conv = nn.Conv2d(linear.in_features, linear.out_features, kernel_size=1, bias=linear.bias is not None)
    conv.weight.data = linear.weight.detach().clone()[:, :, None, None]
    if linear.bias is not None:
        conv.bias.data = linear.bias.detach().clone()
    return conv


# --- ViT attention ---------------------------------------------------------------------------------
def vit_fusable_attention(model) -> None:
    _replace_modules(model, "ViTSelfAttention", FusableViTSelfAttention)


class FusableViTSelfAttention(nn.Module):
    """ViTSelfAttention as the classic MatMul -> Div -> Softmax -> MatMul pattern (no mask, eval)."""

    def __init__(self, attention):
        super().__init__()
        self.query, self.key, self.value = attention.query, attention.key, attention.value
        self.heads, self.head_size = attention.num_attention_heads, attention.attention_head_size

    def forward(self, hidden_states, head_mask=None):
        key, value = self.key(hidden_states), self.value(hidden_states)
        return fusable_attention(self.query(hidden_states), key, value, self.heads, self.head_size, head_mask)


def fusable_attention(query, key, value, heads: int, head_size: int, head_mask=None):
    """Multi-head attention over projected (batch, tokens, hidden) tensors as MatMul -> Div -> Softmax ->
    MatMul, the pattern onnxruntime's fusion matches; returns (context (batch, query tokens, hidden), weights).
    ``heads`` and ``head_size`` are Python ints so that the export's reshapes hold constants, as the fusion needs."""
    batch_size = query.shape[0]

    def split(x):
        return x.view(batch_size, -1, heads, head_size).transpose(1, 2)

    key, value, query = split(key), split(value), split(query)
    weights = torch.softmax(torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(head_size), dim=-1)
    if head_mask is not None:
        weights = weights * head_mask
    context = torch.matmul(weights, value).transpose(1, 2)
    return context.reshape(batch_size, -1, heads * head_size), weights


def vit_class_token_last_layer(model) -> None:
    if type(model).__name__ != "ViTForImageClassification":  # its head reads sequence_output[:, 0] only
        raise EdgeforgeError(f"vit-class-token-last-layer needs ViTForImageClassification, not {type(model).__name__}")
    layers = model.vit.encoder.layer
    layers[-1] = ClassTokenViTLayer(layers[-1], model.config.num_attention_heads)


class ClassTokenViTLayer(nn.Module):
    """The last ViTLayer computed for the [CLS] token only: returns (batch, 1, hidden)."""

    def __init__(self, layer, heads: int):
        super().__init__()
        attention = layer.attention.attention
        self.query, self.key, self.value = attention.query, attention.key, attention.value
        self.heads, self.head_size = heads, self.query.out_features // heads
        self.attention_output = layer.attention.output.dense
        self.layernorm_before, self.layernorm_after = layer.layernorm_before, layer.layernorm_after
        self.intermediate, self.output = layer.intermediate, layer.output

    def forward(self, hidden_states, head_mask=None):
        normed = self.layernorm_before(hidden_states)
        key, value = self.key(normed), self.value(normed)
        context, _ = fusable_attention(self.query(normed[:, :1]), key, value, self.heads, self.head_size, head_mask)
        token = self.attention_output(context) + hidden_states[:, :1]
        return self.output(self.intermediate(self.layernorm_after(token)), token)


def _replace_modules(model, class_name: str, make) -> None:
    """Replace every submodule whose class is ``class_name`` by ``make(module)``; at least one must exist."""
    targets = [(name, module) for name, module in model.named_modules() if type(module).__name__ == class_name]
    if not targets:
        raise EdgeforgeError(f"{type(model).__name__} has no {class_name} module to rewrite")
    for name, module in targets:
        parent_name, _, attribute = name.rpartition(".")
        setattr(model.get_submodule(parent_name), attribute, make(module))


# --- validation of a rewritten graph against the stock model -----------------------------------------
def validate_against_stock(checkpoint, onnx_path, images: list) -> dict:
    """ONNX Runtime on the rewritten/optimised graph vs the *stock* PyTorch model on ``images`` (PIL):
    max abs logit difference and label-map (or top-1) agreement; raises beyond the thresholds above."""
    from edgeforge.export.validate import compare_logits, onnx_logits, reference_logits
    from edgeforge.runtime.postprocess import resize_logits_argmax

    pixel_values = checkpoint.image_processor(images, return_tensors="np")["pixel_values"].astype(np.float32)
    reference, candidate = reference_logits(checkpoint, pixel_values), onnx_logits(onnx_path, pixel_values)
    figures = compare_logits(reference, candidate, checkpoint.family.task)
    figures.update(images=len(images), reference="stock PyTorch model")
    if checkpoint.family.task == SEGMENTATION:
        figures["label_map_agreement"] = min(
            float((resize_logits_argmax(ref, h, w) == resize_logits_argmax(cand, h, w)).mean())
            for ref, cand, (w, h) in zip(reference, candidate, (image.size for image in images))
        )
        agreement = figures["label_map_agreement"]
    else:
        agreement = figures["top1_agreement"]
    if figures["max_abs_diff"] > REWRITE_MAX_ABS_DIFF or agreement < REWRITE_MIN_AGREEMENT:
        raise EdgeforgeError(
            f"rewritten graph of {checkpoint.source} differs from the stock PyTorch model (max |logit diff| "
            f"{figures['max_abs_diff']:.2e}, agreement {agreement:.4%}; limits {REWRITE_MAX_ABS_DIFF:.0e}, "
            f"{REWRITE_MIN_AGREEMENT:.2%}); export again with --no-fold --no-optimize and report it"
        )
    return figures


#: Family.torch_rewrites names -> in-place rewrite of a model copy.
REWRITES = {
    "segformer-decode-head": fold_segformer_decode_head,
    "segformer-mix-ffn-nchw": segformer_mix_ffn_nchw,
    "vit-fusable-attention": vit_fusable_attention,
    "vit-class-token-last-layer": vit_class_token_last_layer,
}
