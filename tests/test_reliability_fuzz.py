"""Fuzzing the image path: whatever comes in, load_image + preprocessing return an RGB image and a finite
float batch, or raise ImageError with one line. Never another exception, never a hang.

Bounded and reproducible: a fixed number of examples per strategy, derandomized, no example database.
"""

import faulthandler
import io
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from edgeforge.runtime import ImageError, load_image
from edgeforge.runtime.preprocess import Preprocessor

EXAMPLES = 200
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
PREPROCESS = Preprocessor(height=32, width=32)
MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "YCbCr", "LAB", "HSV", "I", "F", "I;16", "I;16B", "I;16L", "LA",
         "PA", "RGBX", "RGBa", "La"]


@pytest.fixture(autouse=True)
def watchdog():
    """A hang fails the run loudly (tracebacks, then exit) instead of stalling CI."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def check(source) -> str:
    try:
        image = load_image(source, max_pixels=4_000_000)
    except ImageError as exc:
        assert "\n" not in str(exc)
        return "refused"
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
    pixels = PREPROCESS.one(image)
    assert pixels.shape == (3, 32, 32) and pixels.dtype == np.float32 and np.isfinite(pixels).all()
    return "decoded"


def run(strategy, label: str) -> Counter:
    seen = Counter()

    @FUZZ
    @given(strategy)
    def one(source):
        seen[check(source)] += 1

    one()
    total = sum(seen.values())
    print(f"\nfuzz {label}: {total} examples, {seen['decoded']} decoded, {seen['refused']} refused (nothing else raised)")
    assert total >= EXAMPLES // 2  # the examples really ran
    return seen


def seed_files() -> list[bytes]:
    """Small valid files of several formats and modes, the starting points for mutations."""
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 17, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6
    files = []
    for image, fmt, options in [
        (rgb, "PNG", {}), (rgb.convert("P"), "PNG", {"transparency": 0}), (rgb.convert("L"), "PNG", {}),
        (Image.fromarray(rng.integers(0, 65535, (9, 7), dtype=np.uint16)), "PNG", {}),
        (rgb.convert("RGBA"), "PNG", {}), (rgb, "JPEG", {"exif": exif}), (rgb.convert("CMYK"), "JPEG", {}),
        (rgb, "GIF", {"save_all": True, "append_images": [rgb.rotate(90)]}), (rgb, "BMP", {}), (rgb, "TIFF", {}),
        (rgb, "WEBP", {}),
    ]:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        files.append(buffer.getvalue())
    return files


SEEDS = seed_files()


@st.composite
def mutated_files(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 3))):
        # Headers decide sizes and modes: aim half the mutations at the first 64 bytes.
        position = draw(st.one_of(st.integers(0, min(63, len(data) - 1)), st.integers(0, len(data) - 1)))
        action = draw(st.sampled_from(["flip", "flip", "flip", "overwrite", "overwrite", "insert", "delete", "truncate"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=4))
            data[position : position + len(chunk)] = chunk
        elif action == "truncate":
            del data[max(position, 1):]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[position : position + draw(st.integers(1, 16))]
        if not data:
            break
    return bytes(data)


@st.composite
def images_of_any_mode(draw) -> Image.Image:
    mode = draw(st.sampled_from(MODES))
    size = (draw(st.integers(0, 9)), draw(st.integers(0, 9)))
    needed = len(Image.new(mode, size).tobytes())
    return Image.frombytes(mode, size, draw(st.binary(min_size=needed, max_size=needed)))


ARRAYS = hnp.arrays(
    dtype=st.one_of(hnp.scalar_dtypes(), hnp.unicode_string_dtypes(max_len=2), hnp.byte_string_dtypes(max_len=2)),
    shape=st.one_of(  # half of them image-shaped, so that values and dtypes are exercised, not just shapes
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
        st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 4])),
    ),
)


def test_random_bytes():
    run(st.binary(max_size=4096), "random bytes")


def test_mutated_valid_files():
    seen = run(mutated_files(), "mutated PNG/JPEG/GIF/BMP/TIFF/WebP")
    assert seen["decoded"] > 0 and seen["refused"] > 0  # the mutations reach both outcomes


def test_random_arrays_of_any_dtype_and_shape():
    seen = run(ARRAYS, "random numpy arrays")
    assert seen["decoded"] > 0 and seen["refused"] > 0


def test_pil_images_of_any_mode_and_size():
    seen = run(images_of_any_mode(), "PIL images of 19 modes")
    assert seen["decoded"] > 0
