"""SegFormer's rewritten torch modules (see ``edgeforge.families.segformer`` for what each computes)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from edgeforge.errors import EdgeforgeError


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


def tokens_to_nchw(tokens, height: int, width: int):
    """(B, H*W, C) -> (B, C, H, W) by way of NHWC: the permute is the inverse of the NCHW -> NHWC transpose
    litert-torch puts before a convolution, so the two cancel (``transpose(1, 2)`` first would not)."""
    return tokens.reshape(tokens.shape[0], height, width, tokens.shape[2]).permute(0, 3, 1, 2)


def nchw_to_tokens(maps):
    """(B, C, H, W) -> (B, H*W, C) by way of NHWC (see ``tokens_to_nchw``)."""
    return maps.permute(0, 2, 3, 1).reshape(maps.shape[0], -1, maps.shape[1])


class LiteRTSelfAttention(nn.Module):
    """SegformerEfficientSelfAttention as litert-torch lowers it well: the scores Q·K^T as an einsum (BATCH_MATMUL
    for any head count) and the sequence reduction's conv between ``tokens_to_nchw`` / ``nchw_to_tokens``.
    Same operations otherwise; the submodules are the copied model's own."""

    def __init__(self, attention):
        super().__init__()
        self.num_attention_heads = attention.num_attention_heads
        self.attention_head_size = attention.attention_head_size
        self.all_head_size = attention.all_head_size
        self.query, self.key, self.value = attention.query, attention.key, attention.value
        self.sr_ratio = attention.sr_ratio
        if self.sr_ratio > 1:
            self.sr, self.layer_norm = attention.sr, attention.layer_norm

    def _heads(self, states):
        return states.view(states.shape[0], -1, self.num_attention_heads, self.attention_head_size).transpose(1, 2)

    def forward(self, hidden_states, height, width, output_attentions=False):
        batch_size, seq_length, _ = hidden_states.shape
        query = self._heads(self.query(hidden_states))
        if self.sr_ratio > 1:
            hidden_states = self.layer_norm(nchw_to_tokens(self.sr(tokens_to_nchw(hidden_states, height, width))))
        key, value = self._heads(self.key(hidden_states)), self._heads(self.value(hidden_states))
        scores = torch.einsum("bhnd,bhmd->bhnm", query, key) / math.sqrt(self.attention_head_size)
        probs = nn.functional.softmax(scores, dim=-1)
        context = torch.matmul(probs, value).permute(0, 2, 1, 3).reshape(batch_size, seq_length, self.all_head_size)
        return (context, probs) if output_attentions else (context,)


class LiteRTPatchEmbeddings(nn.Module):
    """SegformerOverlapPatchEmbeddings with its conv output turned into tokens by way of NHWC."""

    def __init__(self, embeddings):
        super().__init__()
        self.proj, self.layer_norm = embeddings.proj, embeddings.layer_norm

    def forward(self, pixel_values):
        maps = self.proj(pixel_values)
        return self.layer_norm(nchw_to_tokens(maps)), maps.shape[2], maps.shape[3]


class LiteRTDWConv(nn.Module):
    """SegformerDWConv (Mix-FFN's 3x3 depthwise conv on tokens) by way of NHWC."""

    def __init__(self, dwconv):
        super().__init__()
        self.dwconv = dwconv.dwconv

    def forward(self, hidden_states, height, width):
        return nchw_to_tokens(self.dwconv(tokens_to_nchw(hidden_states, height, width)))


def _conv1x1(linear: nn.Linear) -> nn.Conv2d:
    conv = nn.Conv2d(linear.in_features, linear.out_features, kernel_size=1, bias=linear.bias is not None)
    conv.weight.data = linear.weight.detach().clone()[:, :, None, None]
    if linear.bias is not None:
        conv.bias.data = linear.bias.detach().clone()
    return conv
