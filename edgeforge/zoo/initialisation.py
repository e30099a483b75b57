"""Initial weights for minis trained from scratch.

transformers initialises every checkpoint as if pre-training or fine-tuning from a pre-trained model
would follow: linear and convolution weights with a fixed std of 0.02 (sized for 768-wide layers),
ViT position embeddings as noise. The minis are 16..160 wide and trained for minutes from scratch,
where that start costs most of the budget (measured: a from-scratch ViT mini sat at chance level for
its first ~500 steps). Written here because no library offers these initialisations for transformers
models; each is a published recipe, cited below.
"""

from __future__ import annotations

import math

import numpy as np


def initialise(model, seed: int) -> None:
    """Re-initialise ``model`` in place for training from scratch (deterministic for ``seed``)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    fan_in_scaled(model)
    if model.config.model_type == "vit":
        mimetic_attention(model, generator)
        sincos_position_embeddings(model)


def describe(model_type: str) -> str:
    """One line for the model card."""
    text = "fan-in scaled linear and convolution weights (PyTorch's defaults)"
    if model_type == "vit":
        text += ", mimetic attention (Trockman & Kolter 2023), 2-D sine-cosine position embeddings (as MAE)"
    return text


def fan_in_scaled(model) -> None:
    """PyTorch's own defaults (weights ~ U(+-1/sqrt(fan_in))) for every linear and convolution layer."""
    import torch

    for module in model.modules():
        if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
            module.reset_parameters()


def mimetic_attention(model, generator, qk=(0.7, 0.7), vo=(0.4, 0.4)) -> None:
    """Mimetic initialisation (Trockman & Kolter, ICML 2023): W_q^T W_k ~ a*Z + b*I and W_v^T W_o^T ~
    a*Z - b*I with Z random, the structure pre-trained ViTs show. With 2-D position embeddings,
    tokens then start out attending to their neighbours, as a convolution would."""
    import torch

    width = model.config.hidden_size

    def factors(alpha: float, beta: float):
        z = torch.randn(width, width, generator=generator) / math.sqrt(width)
        u, s, vh = torch.linalg.svd(alpha * z + beta * torch.eye(width))
        root = s.sqrt()
        return u * root, root[:, None] * vh  # left @ right == alpha*z + beta*I

    with torch.no_grad():
        for layer in model.vit.encoder.layer:
            attention, output = layer.attention.attention, layer.attention.output
            left, right = factors(*qk)  # scores = x W_q^T (x W_k^T)^T = x (W_q^T W_k) x^T
            attention.query.weight.copy_(left.T)
            attention.key.weight.copy_(right)
            left, right = factors(vo[0], -vo[1])  # out = x W_v^T W_o^T
            attention.value.weight.copy_(left.T)
            output.dense.weight.copy_(right.T)


def sincos_position_embeddings(model) -> None:
    """Fixed-pattern 2-D sine-cosine position embeddings (as in MAE, He et al. 2022) as the start of the
    learned ones: nearby patches start out similar, which mimetic attention turns into locality."""
    import torch

    embeddings = model.vit.embeddings.position_embeddings  # (1, 1 + grid*grid, width); index 0 = [CLS]
    width = embeddings.shape[-1]
    grid = int(round(math.sqrt(embeddings.shape[1] - 1)))
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    table = np.concatenate([_sincos(width // 2, rows.ravel()), _sincos(width - width // 2, cols.ravel())], axis=1)
    table = np.concatenate([np.zeros((1, width)), table])
    with torch.no_grad():
        embeddings.copy_(torch.tensor(table, dtype=embeddings.dtype)[None])


def _sincos(width: int, positions: np.ndarray) -> np.ndarray:
    frequencies = 1.0 / 10000 ** (np.arange(width // 2) / (width / 2))
    angles = np.outer(positions, frequencies)
    table = np.concatenate([np.sin(angles), np.cos(angles)], axis=1)
    return np.pad(table, ((0, 0), (0, width - table.shape[1])))  # odd widths: one zero column
