"""ViT's rewritten torch modules (see ``edgeforge.families.vit`` for what each computes)."""

from __future__ import annotations

import math

import torch
from torch import nn


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
