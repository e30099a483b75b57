"""Image loading that never surprises: EXIF orientation honoured, every mode converted to RGB."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Union

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from edgeforge.errors import EdgeforgeError

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]

#: Refuse images above this many pixels (a decompression bomb guard; PIL's own default is 89 MP).
MAX_PIXELS = 64_000_000


class ImageError(EdgeforgeError):
    """An input image could not be read; the message names it."""


def load_image(source: ImageInput, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Return ``source`` as an RGB PIL image, upright according to its EXIF orientation.

    Anything that is not a readable image raises ImageError with one line naming the input; no
    other exception escapes, whatever the bytes (decoders raise many types on hostile data).
    """
    name = _display_name(source)
    with _as_image_error(name):
        if isinstance(source, Image.Image):
            _check_size(source.width, source.height, name, max_pixels)
            return to_rgb(_upright(source), name)
        if isinstance(source, np.ndarray):
            return _array_to_rgb(source, name, max_pixels)
        return _decode(_open_argument(source, name), name, max_pixels)


def read_image_file(path: str | os.PathLike, name: str | None = None) -> bytes:
    """The bytes of an image file (to hash them, then decode them with ``load_image``), with load_image's
    one-line errors: no such file, a directory, a pipe or device (never read: it may not end)."""
    name = name or str(path)
    with _as_image_error(name):
        return Path(_open_argument(path, name)).read_bytes()


@contextlib.contextmanager
def _as_image_error(name: str) -> Iterator[None]:
    try:
        yield
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory, not an image") from None
    except PermissionError:
        raise ImageError(f"{name}: permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name}: too large ({_first_line(exc)})") from None
    except (OSError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise ImageError(f"{name}: unreadable or truncated image ({_first_line(exc)})") from None
    except Exception as exc:  # decoder bugs on hostile input (struct.error, IndexError, ...): still a bad image
        raise ImageError(f"{name}: corrupt image ({type(exc).__name__}: {_first_line(exc)})") from None


def _decode(handle, name: str, max_pixels: int) -> Image.Image:
    with Image.open(handle) as image:
        # Image.open reads the header only: the size is checked before any pixel is decoded.
        _check_size(image.width, image.height, name, max_pixels)
        image.seek(0)  # animated formats: the first frame
        image.load()
        # exif_transpose's result is a copy, which outlives the file being closed here.
        return to_rgb(ImageOps.exif_transpose(image), name)


def _upright(image: Image.Image) -> Image.Image:
    """``image`` turned upright by its EXIF orientation; an image already upright is returned as it is
    (Pillow's exif_transpose would copy it: a megabyte per call at 512x512)."""
    if image.getexif().get(ExifTags.Base.Orientation, 1) == 1:
        return image
    return ImageOps.exif_transpose(image)


def _open_argument(source, name: str):
    if isinstance(source, (bytes, bytearray, memoryview)):
        return io.BytesIO(source)
    if isinstance(source, (str, os.PathLike)):
        mode = os.stat(source).st_mode  # FileNotFoundError / PermissionError: reported by the caller
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(source)
        if not stat.S_ISREG(mode):  # a FIFO would block the read forever; devices never end
            raise ImageError(f"{name}: not a regular file (a pipe, socket or device); refusing to read it")
        return source
    if hasattr(source, "read"):
        return source
    raise ImageError(f"{name}: not an image (give a path, bytes, a file object, a PIL image or a numpy array)")


def _check_size(width: int, height: int, name: str, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise ImageError(f"{name}: empty image ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(f"{name}: {width}x{height} exceeds the {max_pixels:,}-pixel limit")


def to_rgb(image: Image.Image, name: str = "<image>") -> Image.Image:
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
        return _array_to_rgb(np.asarray(image), name)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def _array_to_rgb(array: np.ndarray, name: str = "<ndarray>", max_pixels: int = MAX_PIXELS) -> Image.Image:
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ImageError(f"{name}: array of shape {array.shape} is not an HxW, HxWx1, HxWx3 or HxWx4 image")
    _check_size(array.shape[1], array.shape[0], name, max_pixels)
    if array.dtype.kind not in "biuf":  # bool, ints, unsigned, floats
        raise ImageError(f"{name}: array of dtype {array.dtype} is not an image (use uint8, other ints, floats or bool)")
    array, source_dtype = array[..., :3], array.dtype
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are refused just below
            array = array.astype(np.float64)
        if not np.isfinite(array).all():
            raise ImageError(f"{name}: array holds NaN or infinite values")
        if np.issubdtype(source_dtype, np.floating) and array.max(initial=0) <= 1.0:
            array = array * 255.0  # floats in [0, 1]
        array = np.clip(np.round(array), 0, 255).astype(np.uint8)
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return Image.fromarray(np.ascontiguousarray(array))


def _display_name(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return str(source)
    name = getattr(source, "name", None)  # open file objects know their path
    return name if isinstance(name, str) else f"<{type(source).__name__}>"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def image_name(source: ImageInput) -> str:
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return f"<{type(source).__name__}>"
