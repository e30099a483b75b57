"""The label map's fast path (only class-boundary pixels blended) is the full bilinear computation to the pixel."""

from __future__ import annotations

import numpy as np
import pytest

from edgeforge.runtime.postprocess import (
    CANDIDATES,
    _candidates,
    resize_logits_argmax,
    resize_logits_argmax_dense,
)


def _cases(rng):
    for trial in range(240):
        classes, h, w = int(rng.integers(1, 20)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        kind = trial % 4
        if kind == 0:  # noise: boundaries everywhere
            logits = rng.standard_normal((classes, h, w))
        elif kind == 1:  # exact ties between classes (argmax takes the first)
            logits = np.round(rng.standard_normal((classes, h, w)) * 2)
        elif kind == 2:  # near-ties far below float32 resolution of the values
            logits = rng.standard_normal((classes, 1, 1)) * 5 + rng.standard_normal((classes, h, w)) * 1e-6
        else:  # smooth regions, as a segmentation head gives
            yy, xx = np.mgrid[0:h, 0:w]
            logits = np.stack([np.sin(xx / (3 + k) + k) * np.cos(yy / (2 + k)) * 8 for k in range(classes)])
        yield logits.astype(np.float32), int(rng.integers(1, 160)), int(rng.integers(1, 160))


def test_fast_path_equals_the_dense_computation():
    rng = np.random.default_rng(7)
    for logits, height, width in _cases(rng):
        fast, dense = resize_logits_argmax(logits, height, width), resize_logits_argmax_dense(logits, height, width)
        assert fast.dtype == dense.dtype and fast.shape == dense.shape == (height, width)
        assert np.array_equal(fast, dense), (logits.shape, height, width)


@pytest.mark.parametrize("factor", [4, 1])
def test_fast_path_on_a_model_sized_map(factor):
    """128x128 logits of 18 classes to 512x512 (SegFormer at 512x512), and the identity size."""
    yy, xx = np.mgrid[0:128, 0:128]
    logits = np.stack([np.sin(xx / (9 + k)) * np.cos(yy / (7 + k)) * 6 for k in range(18)]).astype(np.float32)
    side = 128 * factor
    assert np.array_equal(resize_logits_argmax(logits, side, side), resize_logits_argmax_dense(logits, side, side))


def test_a_noisy_map_equals_the_dense_computation():
    """Random logits (a random-weight model's): boundaries nearly everywhere, ties for the lead included."""
    rng = np.random.default_rng(11)
    logits = rng.standard_normal((18, 160, 160)).astype(np.float32)
    logits[3, ::7, ::5] = logits[:, ::7, ::5].max(axis=0)  # exact ties for the lead
    # Cells where 2, 3, ... CANDIDATES classes can win, and more (each blended as its own group), all occur.
    top_left = (np.arange(159)[:, None] * 160 + np.arange(159)).ravel()
    corners = np.stack([top_left, top_left + 1, top_left + 160, top_left + 161])
    _, count = _candidates(logits.reshape(18, -1).take(corners, axis=1))
    counts = set(np.minimum(count, CANDIDATES + 1).tolist())
    assert set(range(2, CANDIDATES + 2)) <= counts, counts
    assert np.array_equal(resize_logits_argmax(logits, 640, 640), resize_logits_argmax_dense(logits, 640, 640))


def test_reused_scratch_never_reaches_a_result():
    """Temporaries are written into per-thread arrays reused from call to call: a label map already returned does
    not change when the next call (another map, another size) reuses them, and threads do not share them."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    inputs = [(rng.standard_normal((18, 64, 64)).astype(np.float32), 256, 200),
              (rng.standard_normal((7, 40, 50)).astype(np.float32), 160, 330)]
    expected = [resize_logits_argmax_dense(logits, h, w) for logits, h, w in inputs]
    first = resize_logits_argmax(*inputs[0])
    second = resize_logits_argmax(*inputs[1])
    assert np.array_equal(first, expected[0]) and np.array_equal(second, expected[1])
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda k: resize_logits_argmax(*inputs[k % 2]), range(40)))
    assert all(np.array_equal(result, expected[k % 2]) for k, result in enumerate(results))
