"""Image loading that never surprises: EXIF orientation honoured, every mode converted to RGB."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from edgeforge.errors import EdgeforgeError

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

#: Refuse images above this many pixels (a decompression bomb guard; PIL's own default is 89 MP).
MAX_PIXELS = 64_000_000


class ImageError(EdgeforgeError):
    """An input image could not be read; the message names it."""


def load_image(source: ImageInput, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Return ``source`` as an RGB PIL image, upright according to its EXIF orientation."""
    if isinstance(source, Image.Image):
        return to_rgb(ImageOps.exif_transpose(source))
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source)
    name = "<bytes>" if isinstance(source, bytes) else str(source)
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        with Image.open(handle) as image:
            # Checked from the header, before any pixel is decoded.
            if image.width * image.height > max_pixels:
                raise ImageError(f"{name}: {image.width}x{image.height} exceeds the {max_pixels:,}-pixel limit")
            image.seek(0)  # animated formats: the first frame
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: too large ({exc})") from None
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt data
        raise ImageError(f"{name}: unreadable or truncated image ({exc})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB the way Hugging Face image processors do (alpha is dropped)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit grey: Pillow's convert would clip at 255; rescale the full range to 8 bits instead.
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        grey = np.clip(np.round(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        return _array_to_rgb(np.asarray(image))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _array_to_rgb(array: np.ndarray) -> Image.Image:
    if array.ndim == 2:
        array = np.stack([array] * 3, axis=-1)
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(f"array of shape {array.shape} is not an HxW, HxWx1, HxWx3 or HxWx4 image")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    array = array[..., :3]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.max(initial=0) <= 1.0:
            array = array * 255.0
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def image_name(source: ImageInput) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return f"<{type(source).__name__}>"
