"""Post-processing: logits -> label maps, masks, overlays; logits -> class scores.

The bilinear resize is written here because no runtime dependency offers torch's exact
``interpolate(mode="bilinear", align_corners=False)`` (Pillow antialiases when shrinking), and
matching it is what keeps label maps identical to transformers' ``post_process_semantic_segmentation``.
"""

from __future__ import annotations

import threading

import numpy as np
from PIL import Image

# Rows of the output label map computed at once: bounds memory to C x ROWS x W floats per image.
ROWS_PER_CHUNK = 128
# Output pixels searched for boundary pixels at once (128 rows at 512 wide): the band's index and (K, n) blending
# temporaries then stay small. Fresh megabytes on every call cost page faults once the allocator has handed
# freed memory back to the system (measured in a process running LiteRT: 1,190 faults, 2 ms, per label map).
PIXELS_PER_BAND = 65536
#: Classes blended per pixel of a class-boundary cell, at most (the ones that can win there); a cell where
#: more can win blends every class.
CANDIDATES = 4
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

    Exact, and fast where the answer is known. Every output pixel lies in a cell of four low-resolution
    pixels, and its logits are a convex combination of theirs: a class whose highest value at the four
    corners is below another class's lowest (by more than float32 rounding can move) cannot win there.

    - Where one class is left, every output pixel of the cell has it (most of a segmentation map).
    - In a class-boundary cell, only the classes left are blended (up to ``CANDIDATES``; all of them beyond).

    Blending uses the same float32 operations in the same order as the full computation
    (``resize_logits_argmax_dense``), and ties go to the lower class id as there, so the label map is the
    same to the pixel.
    """
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    classes, h, w = logits.shape
    (r0, _, wr), (c0, _, wc) = _source_index(height, h), _source_index(width, w)
    label = _decided_class(logits)
    # The cell at (i, j) has corners (i, j), (i, right[j]), (below[i], j), (below[i], right[j]), clamped at
    # the edges as the sampling clamps them. Cheap first pass: the four corners agree, each by a clear lead.
    below, right = np.minimum(np.arange(h) + 1, h - 1), np.minimum(np.arange(w) + 1, w - 1)
    mixed = (label < 0) | (label != label[:, right]) | (label != label[below]) | (label != label[below][:, right])
    i, j = np.nonzero(mixed)
    corners = np.stack([i * w + j, i * w + right[j], below[i] * w + j, below[i] * w + right[j]])
    corner_logits = logits.reshape(classes, -1).take(  # (C, 4, cells); "clip": indices are valid, no buffering
        corners, axis=1, out=_scratch("corner_logits", (classes, *corners.shape), np.float32), mode="clip")
    ids, count = _candidates(corner_logits)
    code = label.astype(np.int64)
    one = count == 1
    code[i[one], j[one]] = ids[one, 0]
    # The cells still to blend, grouped by how many classes can win there (2 .. K, then more: every class),
    # are numbered -1, -2, ... in the label map, one group after the other, until blended.
    groups, numbered = [], 0
    for k in range(2, ids.shape[1] + 2):
        cells = np.flatnonzero(count == k if k <= ids.shape[1] else count >= k)
        if len(cells):
            code[i[cells], j[cells]] = -1 - numbered - np.arange(len(cells))
            groups.append(_Cells(corner_logits, cells, ids[cells, :k] if k <= ids.shape[1] else None, numbered))
            numbered += len(cells)
    rows = code.take(r0, axis=0, out=_scratch("rows", (height, w), np.int64), mode="clip")
    label_map = rows.take(c0, axis=1)  # the caller's: fresh
    out = label_map.reshape(-1)
    band = max(1, PIXELS_PER_BAND // width) * width
    for start in range(0, out.size, band):
        todo = np.flatnonzero(out[start : start + band] < 0)
        if len(todo):
            todo += start
            cell = -1 - out[todo]
            for group in groups:
                mine = (cell >= group.first) & (cell < group.first + group.count)
                if mine.any():
                    pixels = todo[mine]
                    y, x = np.divmod(pixels, width)
                    out[pixels] = group.blend(cell[mine] - group.first, wr[y], wc[x])
    return label_map


#: Per-thread arrays that temporaries of the label map are written into, reused from call to call.
_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """This thread's array for the temporary ``name`` (never returned to a caller), grown when too small."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buffer = getattr(_SCRATCH, name, None)
    if buffer is None or buffer.nbytes < size:
        buffer = np.empty(size, dtype=np.uint8)
        setattr(_SCRATCH, name, buffer)
    return buffer[:size].view(dtype).reshape(shape)


class _Cells:
    """Class-boundary cells and the classes blended in each: a table of (4 corners x K classes, cells) logits,
    so a pixel's values are one gather from its cell's column."""

    def __init__(self, corner_logits: np.ndarray, cells: np.ndarray, ids: np.ndarray | None, first: int):
        classes, _, total = corner_logits.shape
        self.first, self.count = first, len(cells)
        if ids is None:  # every class
            ids = np.broadcast_to(np.arange(classes), (self.count, classes))
        self.ids, self.classes = np.ascontiguousarray(ids).reshape(-1), ids.shape[1]
        # table[q * K + k, n] = corner_logits[ids[n, k], q, cells[n]]
        flat = (ids.T[None] * 4 + np.arange(4)[:, None, None]) * total + cells  # (4, K, cells)
        self.table = corner_logits.reshape(-1).take(flat).reshape(4 * self.classes, -1)

    def blend(self, cells: np.ndarray, v: np.ndarray, u: np.ndarray) -> np.ndarray:
        """The winning class at pixels of ``cells`` (numbered from ``first``) at vertical / horizontal weights
        v, u: a * (1 - u) + b * u along the rows, then the same down the column (the dense computation's
        float32 operations in its order), with (K, n) arrays so numpy's loops run along the pixels."""
        a, b, c, d = self.table.take(cells, axis=1).reshape(4, self.classes, -1)
        top = a * (1 - u) + b * u
        bottom = c * (1 - u) + d * u
        return self.ids[cells * self.classes + _first_max(top * (1 - v) + bottom * v)]


def _candidates(corner_logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(C, 4, cells) logits at each cell's corners -> the classes that can win inside each cell, as
    (cells, K) class ids in ascending order, K = min(C, CANDIDATES), and how many there are per cell (a row's
    entries past its count are 0: the blending groups take the first count of them).

    Inside a cell every class's value lies between its lowest and highest corner value (give or take
    rounding), so a class whose highest is below some class's lowest, by more than ``MARGIN``, cannot win."""
    classes, _, cells = corner_logits.shape
    lowest = corner_logits.min(axis=1, out=_scratch("lowest", (classes, cells), np.float32))  # (C, cells) each
    highest = corner_logits.max(axis=1, out=_scratch("highest", (classes, cells), np.float32))
    scale = np.maximum(highest.max(axis=0), -lowest.min(axis=0)) + 1.0  # the cell's largest |logit| + 1
    can_win = highest >= lowest.max(axis=0) - MARGIN * scale
    count = can_win.sum(axis=0)
    cell, cls = np.nonzero(can_win.T)  # by cell, then by class id
    rank = np.arange(len(cell)) - (np.cumsum(count) - count)[cell]
    keep = rank < CANDIDATES
    ids = np.zeros((len(count), min(len(can_win), CANDIDATES)), dtype=np.intp)
    ids[cell[keep], rank[keep]] = cls[keep]
    return ids, count


def _decided_class(logits: np.ndarray) -> np.ndarray:
    """(h, w) int16: each low-resolution pixel's class, or -1 where no class leads every other by more than
    rounding can move (a tie included): decided where exactly one class is within ``MARGIN`` of the best.
    Plane by plane: no (C, h, w) temporaries."""
    best = logits.max(axis=0)
    threshold = best - MARGIN * (np.maximum(np.abs(best), np.abs(logits.min(axis=0))) + 1.0)
    dtype = np.int16 if len(logits) < 32767 else np.int64
    near = np.zeros(best.shape, dtype=dtype)  # classes within the margin of the best
    winner = np.zeros(best.shape, dtype=dtype)  # the last of them: the only one where near == 1
    for k, plane in enumerate(logits):
        close = plane >= threshold
        near += close
        np.copyto(winner, k, where=close)
    return np.where(near == 1, winner, dtype(-1))


def _first_max(values: np.ndarray) -> np.ndarray:
    """The index of the first maximum along axis 0 (numpy's argmax, which is slow along a short axis; this
    runs along the long ones): first = under0 * (1 + under1 * (1 + ...)), under_k: row k is below the maximum."""
    best = values.max(axis=0)
    first = np.zeros(best.shape, dtype=np.intp)
    for k in range(len(values) - 2, -1, -1):
        first += 1
        first *= values[k] < best
    return first


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
