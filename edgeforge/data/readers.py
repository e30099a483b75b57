"""Reading one sample of a dataset: the image (RGB, upright) and its label (class-id map, CelebAMask-HQ part
masks, or class id), each problem one ``EdgeforgeError`` line naming the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps

from edgeforge.errors import EdgeforgeError

Label = Union[np.ndarray, int, None]
IGNORE_INDEX = 255  # label value for pixels no class claims (void), as in ATR/LIP


@dataclass(frozen=True)
class Sample:
    path: Path  # the image file
    image: Image.Image  # RGB
    label: Label  # uint8 class-id map (segmentation), class id (classification) or None


@dataclass(frozen=True)
class Entry:
    image: Path
    label: object = None  # a label file, CelebAMask-HQ part masks, a class id, or None


def _read_pair(entry: Entry, num_classes: int | None) -> Sample:
    image = read_image(entry.image)
    label_path: Path = entry.label  # type: ignore[assignment]
    label = read_label_map(label_path)
    if label.shape != (image.height, image.width):
        raise EdgeforgeError(f"label {label_path} is {label.shape[1]}x{label.shape[0]} but its image "
                             f"{entry.image.name} is {image.width}x{image.height}")
    _check_label_values(label, num_classes, label_path)
    return Sample(entry.image, image, label)


def _read_celebamask(entry: Entry, num_classes: int | None) -> Sample:
    parts: tuple[tuple[int, Path], ...] = entry.label  # type: ignore[assignment]
    label: np.ndarray | None = None
    for class_id, mask_path in parts:  # sorted by class id: later parts overwrite earlier ones
        mask = _read_part_mask(mask_path)
        if label is None:
            label = np.zeros(mask.shape, dtype=np.uint8)
        elif mask.shape != label.shape:
            raise EdgeforgeError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but the other masks of "
                                 f"{entry.image.name} are {label.shape[1]}x{label.shape[0]}")
        label[mask] = class_id
    assert label is not None  # entries always have at least one part
    image = read_image(entry.image)
    height, width = label.shape
    if image.size != (width, height):
        if image.width * height != image.height * width:  # not the same picture at another scale
            raise EdgeforgeError(f"masks of {entry.image} are {width}x{height}, which does not match the image's "
                                 f"{image.width}x{image.height}")
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    return Sample(entry.image, image, label)


def _read_classified(entry: Entry, num_classes: int | None) -> Sample:
    return Sample(entry.image, read_image(entry.image), entry.label)  # type: ignore[arg-type]


def _read_unlabeled(entry: Entry, num_classes: int | None) -> Sample:
    return Sample(entry.image, read_image(entry.image), None)


def read_image(path: Path) -> Image.Image:
    """Decode an image file as RGB, upright as its EXIF orientation says."""
    try:
        with Image.open(path) as opened:
            upright = ImageOps.exif_transpose(opened)
            return upright.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise EdgeforgeError(f"cannot read image {path}: {_reason(exc)}") from None


def read_label_map(path: Path) -> np.ndarray:
    """Decode a label PNG as a uint8 class-id map.

    Palette ('P') PNGs store class ids as palette indices: they are read as indices, never mapped
    to their display colours. A grey image saved as RGB is accepted; a truly coloured one is not.
    """
    try:
        with Image.open(path) as opened:
            opened.load()
            values = np.array(opened)
            mode = opened.mode
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise EdgeforgeError(f"cannot read label {path}: {_reason(exc)}") from None
    if values.ndim == 3:
        if mode in ("RGB", "RGBA") and np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(
                values[..., 0], values[..., 2]):
            values = values[..., 0]
        else:
            raise EdgeforgeError(f"label {path} is a {mode} colour image; expected one channel of class ids")
    if values.dtype != np.uint8:  # 16/32-bit grey or 1-bit
        if values.size and (values.min() < 0 or values.max() > 255):
            raise EdgeforgeError(f"label {path} has values above 255; expected 8-bit class ids")
        values = values.astype(np.uint8)
    return values


def _read_part_mask(path: Path) -> np.ndarray:
    """A CelebAMask-HQ part mask: white (non-zero in the first channel) where the part is."""
    try:
        with Image.open(path) as opened:
            values = np.array(opened.getchannel(0) if len(opened.getbands()) > 1 else opened)
    except (OSError, SyntaxError, ValueError) as exc:
        raise EdgeforgeError(f"cannot read mask {path}: {_reason(exc)}") from None
    return values != 0


def _check_label_values(label: np.ndarray, num_classes: int | None, path: Path) -> None:
    if num_classes is None or int(label.max(initial=0)) < num_classes:
        return
    bad = np.unique(label[(label >= num_classes) & (label != IGNORE_INDEX)])
    if bad.size:
        shown = ", ".join(str(v) for v in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise EdgeforgeError(f"label {path} has values {shown} outside the {num_classes} classes "
                             f"(0..{num_classes - 1}, or {IGNORE_INDEX} = ignore)")


# --------------------------------------------------------------------------------------------------
# Helpers


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message, so the error stays on one line."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
