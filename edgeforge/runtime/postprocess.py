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
# Boundary pixels blended at once: numpy's (n, C) temporaries then stay in the CPU's cache. In one pass, the
# ~70k boundary pixels of a random-weight b2 label map at 512x512 took 12 ms; in chunks of 8192, 4.3 ms.
PIXELS_PER_CHUNK = 8192
#: A low-resolution pixel's class is "decided" when it leads the runner-up by more than this share of its
#: largest |logit| (+1): float32 blending errs by a few 1e-7 of that, so a lead of 1e-4 cannot be overturned.
MARGIN = 1e-4


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
    """(C, h, w) logits -> (height, width) label map, upsampling bilinearly (align_corners=False).

    Exact, and fast where the answer is known: an output pixel's logits are a convex combination of its
    four low-resolution neighbours', so where those four share their argmax class (by a margin far above
    float32 rounding) the upsampled argmax is that class. Only the other pixels -- class boundaries, a few
    per cent of a 512x512 map -- are blended, with the same float32 operations in the same order as the
    full computation (``resize_logits_argmax_dense``), so the label map is the same to the pixel.
    """
    logits = np.asarray(logits, dtype=np.float32)
    c0, c1, wc = _source_index(width, logits.shape[2])
    r0, r1, wr = _source_index(height, logits.shape[1])
    pixels = np.ascontiguousarray(logits.transpose(1, 2, 0))  # (h, w, C): a pixel's classes side by side
    winner = pixels.argmax(axis=2)
    if logits.shape[0] > 1:
        # A corner is decided when its best class leads the runner-up by more than rounding can move.
        # (Reductions over the class planes of (C, h, w): numpy is slow along a short last axis.)
        best = logits.max(axis=0)
        runner_up = np.where(logits < best, logits, -np.inf).max(axis=0)
        runner_up = np.where((logits == best).sum(axis=0) > 1, best, runner_up)  # a tie for the lead
        scale = np.maximum(np.abs(best), np.abs(logits.min(axis=0))) + 1.0
        winner = np.where(best - runner_up > MARGIN * scale, winner, -1)  # -1: undecided
    label = winner.astype(np.int16 if logits.shape[0] < 32767 else np.int64)
    rows0, rows1 = label[r0], label[r1]
    corner = rows0[:, c0]
    boundary = (corner < 0) | (corner != rows0[:, c1]) | (corner != rows1[:, c0]) | (corner != rows1[:, c1])
    label_map = corner.astype(np.int64)
    ys, xs = np.nonzero(boundary)
    flat, stride = pixels.reshape(-1, pixels.shape[2]), pixels.shape[1]
    for start in range(0, len(ys), PIXELS_PER_CHUNK):
        y, x = ys[start : start + PIXELS_PER_CHUNK], xs[start : start + PIXELS_PER_CHUNK]
        w, v = wc[x, None], wr[y, None]
        row0, row1, col0, col1 = r0[y] * stride, r1[y] * stride, c0[x], c1[x]
        top = flat.take(row0 + col0, axis=0) * (1 - w) + flat.take(row0 + col1, axis=0) * w  # (n, C)
        bottom = flat.take(row1 + col0, axis=0) * (1 - w) + flat.take(row1 + col1, axis=0) * w
        label_map[y, x] = (top * (1 - v) + bottom * v).argmax(axis=1)
    return label_map


def resize_logits_argmax_dense(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """The full computation every pixel of ``resize_logits_argmax`` agrees with: blend every output pixel."""
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
