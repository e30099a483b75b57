"""Post-processing: logits -> label maps, masks, overlays; logits -> class scores.

The bilinear resize is written here because no runtime dependency offers torch's exact
``interpolate(mode="bilinear", align_corners=False)`` (Pillow antialiases when shrinking), and
matching it is what keeps label maps identical to transformers' ``post_process_semantic_segmentation``.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# Rows of the output label map computed at once: bounds memory to C x ROWS x W floats per image.
ROWS_PER_CHUNK = 128


def _source_index(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour indices and weights of torch's half-pixel bilinear sampling along one axis."""
    scale = in_size / out_size
    src = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    lower = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    upper = np.minimum(lower + 1, in_size - 1)
    weight = (src - lower).astype(np.float32)
    return lower, upper, weight


def resize_logits_argmax(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(C, h, w) logits -> (height, width) label map, upsampling bilinearly (align_corners=False)."""
    c0, c1, wc = _source_index(width, logits.shape[2])
    horizontal = logits[:, :, c0] * (1 - wc) + logits[:, :, c1] * wc  # (C, h, width)
    r0, r1, wr = _source_index(height, logits.shape[1])
    label_map = np.empty((height, width), dtype=np.int64)
    for start in range(0, height, ROWS_PER_CHUNK):
        rows = slice(start, min(start + ROWS_PER_CHUNK, height))
        w = wr[rows, None]
        block = horizontal[:, r0[rows], :] * (1 - w) + horizontal[:, r1[rows], :] * w
        label_map[rows] = block.argmax(axis=0)
    return label_map


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def palette(num_classes: int) -> np.ndarray:
    """Distinct, stable colours per class id (the PASCAL VOC bit-interleaving scheme)."""
    colours = np.zeros((max(num_classes, 1), 3), dtype=np.uint8)
    for class_id in range(num_classes):
        value, r, g, b = class_id, 0, 0, 0
        for bit in range(8):
            r |= ((value >> 0) & 1) << (7 - bit)
            g |= ((value >> 1) & 1) << (7 - bit)
            b |= ((value >> 2) & 1) << (7 - bit)
            value >>= 3
        colours[class_id] = (r, g, b)
    return colours


def colour_overlay(image: Image.Image, label_map: np.ndarray, background_ids: tuple[int, ...], alpha: float = 0.5):
    """Blend class colours over ``image``; background pixels keep the original image."""
    colours = palette(int(label_map.max(initial=0)) + 1)[label_map]
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = base * (1 - alpha) + colours.astype(np.float32) * alpha
    keep = np.isin(label_map, background_ids)
    blended[keep] = base[keep]
    return Image.fromarray(np.clip(np.round(blended), 0, 255).astype(np.uint8))
