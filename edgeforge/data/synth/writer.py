"""Writing a synthetic dataset folder in the layout of the real datasets."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from edgeforge.atomic import atomic_directory
from edgeforge.contract import CLASSIFICATION, SEGMENTATION
from edgeforge.data.synth.samples import (
    GENERATOR_VERSION,
    Size,
    check_arguments,
    label_names_for,
    make_sample,
)
from edgeforge.errors import EdgeforgeError
from edgeforge.jsonfile import read_json_object
from edgeforge.references import REFERENCE_FOR_KIND


def write_dataset(
    kind: str, n: int, out_dir: str | Path, seed: int = 0, size: Size = 256, *, progress: bool = True
) -> dict:
    """Write ``n`` samples to ``out_dir`` in the layout of the real datasets; return a summary.

    Parsing kinds: ``images/00000.jpg`` (JPEG q95, as CelebAMask-HQ and ATR ship) and
    ``labels/00000.png`` (mode L, class ids). Expressions: ``<class_name>/00000.png``.
    Always ``dataset.json``. The folder is assembled aside and swapped in only when complete.
    """
    check_arguments(kind, seed, size)
    if n < 1:
        raise EdgeforgeError(f"the number of samples must be at least 1, got {n}")
    out_dir = Path(out_dir)
    names = label_names_for(kind)
    start = time.perf_counter()
    with atomic_directory(out_dir, replaces=_is_synthetic_dataset, what="an edgeforge synthetic dataset") as staging:
        _make_layout(staging, kind, names)
        for index in _progress(range(n), total=n, enabled=progress, desc=f"synth {kind}"):
            image, label = make_sample(kind, index, seed=seed, size=size)
            _save_sample(staging, index, image, label, names)
        description = dataset_description(kind, n=n, seed=seed, size=size)
        (staging / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
    seconds = time.perf_counter() - start
    return {"path": str(out_dir), "kind": kind, "n": n, "seconds": seconds, "images_per_second": n / seconds}


def dataset_description(kind: str, *, n: int, seed: int, size: Size) -> dict:
    """The ``dataset.json`` contents: enough to regenerate the folder exactly."""
    names = label_names_for(kind)
    return {
        "generator": "edgeforge.data.synth",
        "generator_version": GENERATOR_VERSION,
        "kind": kind,
        "task": CLASSIFICATION if kind == "expressions" else SEGMENTATION,
        "reference": REFERENCE_FOR_KIND[kind],
        "id2label": {str(i): name for i, name in enumerate(names)},
        "seed": seed,
        "n": n,
        "size": list(size) if isinstance(size, tuple) else size,  # side, [width, height] or "mixed"
    }




def _is_synthetic_dataset(directory: Path) -> bool:
    try:
        return read_json_object(directory / "dataset.json").get("generator") == "edgeforge.data.synth"
    except (OSError, EdgeforgeError):
        return False


def _make_layout(root: Path, kind: str, names: Sequence[str]) -> None:
    if kind == "expressions":
        for name in names:  # empty class folders too, so every class is visible
            (root / name).mkdir()
    else:
        (root / "images").mkdir()
        (root / "labels").mkdir()


def _save_sample(root: Path, index: int, image: Image.Image, label: np.ndarray | int, names: Sequence[str]) -> None:
    stem = f"{index:05d}"
    if isinstance(label, np.ndarray):
        image.save(root / "images" / f"{stem}.jpg", quality=95)
        Image.fromarray(label, mode="L").save(root / "labels" / f"{stem}.png", compress_level=1)
    else:
        image.save(root / names[label] / f"{stem}.png", compress_level=1)


def _progress(items: Iterable, *, total: int, enabled: bool, desc: str) -> Iterable:
    if not enabled:
        return items
    try:
        from tqdm import tqdm
    except ImportError:  # the bar is a nicety, not a requirement
        return items
    return tqdm(items, total=total, desc=desc, unit="img")


