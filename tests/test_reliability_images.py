"""Bad and unusual images: each one is processed correctly, or refused with one ImageError line naming it.

In a batch (API or CLI) a bad image fails alone and the others are processed.
"""

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from edgeforge.runtime import ImageError, load, load_image
from edgeforge.runtime.images import MAX_PIXELS
from edgeforge.runtime.results import ClassificationResult, SegmentationResult


def crafted_png(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG whose header claims width x height, followed by a few bytes of pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def quadrants(size=(60, 40)) -> Image.Image:
    """Four flat colours, so orientation and colour mistakes are visible in the pixels."""
    w, h = size
    array = np.zeros((h, w, 3), dtype=np.uint8)
    array[: h // 2, : w // 2] = (220, 30, 30)
    array[: h // 2, w // 2 :] = (30, 200, 40)
    array[h // 2 :, : w // 2] = (20, 40, 210)
    array[h // 2 :, w // 2 :] = (240, 240, 240)
    return Image.fromarray(array)


def save(image: Image.Image, path, **options):
    image.save(path, **options)
    return path


# --- unusual but valid: processed correctly ---------------------------------------------------------------

def test_png_named_jpg_is_read_by_content(tmp_path):
    source = quadrants()
    path = save(source, tmp_path / "photo.jpg", format="PNG")
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(source))


def test_sixteen_bit_png_keeps_its_range(tmp_path):
    grey = np.linspace(0, 65535, 64 * 8, dtype=np.uint16).reshape(8, 64)
    path = save(Image.fromarray(grey), tmp_path / "grey16.png")
    assert Image.open(path).mode.startswith("I")
    rgb = np.asarray(load_image(path))
    assert rgb.shape == (8, 64, 3) and rgb.dtype == np.uint8
    assert rgb[..., 0].min() == 0 and rgb[..., 0].max() == 255  # not clipped to a white sheet
    expected = np.round(grey / 65535 * 255).astype(np.uint8)
    assert np.abs(rgb[..., 0].astype(int) - expected).max() <= 1


def test_cmyk_jpeg_colours(tmp_path):
    source = quadrants()
    path = save(source.convert("CMYK"), tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(path).mode == "CMYK"
    rgb = np.asarray(load_image(path)).astype(int)
    assert np.abs(rgb - np.asarray(source).astype(int)).mean() < 6


def test_palette_with_transparency(tmp_path):
    source = quadrants()
    palette = source.quantize(colors=4)
    palette.info["transparency"] = 0
    path = save(palette, tmp_path / "palette.png", transparency=0)
    assert Image.open(path).mode == "P" and "transparency" in Image.open(path).info
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(palette.convert("RGB")))


@pytest.mark.parametrize("mode", ["L", "LA", "RGBA"])
def test_grey_and_alpha_modes_drop_alpha(mode, tmp_path):
    source = quadrants()
    converted = source.convert(mode)
    path = save(converted, tmp_path / f"{mode}.png")
    rgb = np.asarray(load_image(path))
    assert np.array_equal(rgb, np.asarray(converted.convert("RGB")))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_exif_rotation_is_applied(fmt, tmp_path):
    source = quadrants((60, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = save(source, tmp_path / f"rotated.{fmt.lower()}", format=fmt, exif=exif, quality=95)
    loaded = np.asarray(load_image(path)).astype(int)
    expected = np.asarray(source.transpose(Image.Transpose.ROTATE_270)).astype(int)
    assert loaded.shape == expected.shape == (60, 40, 3)
    assert np.abs(loaded - expected).mean() < 3


def test_animated_gif_gives_the_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(path).n_frames == 3
    assert tuple(np.asarray(load_image(path))[8, 8]) == (255, 0, 0)


def test_open_file_objects_bytes_and_arrays(tmp_path):
    source = quadrants()
    path = save(source, tmp_path / "q.png")
    with open(path, "rb") as handle:
        from_handle = np.asarray(load_image(handle))
    from_bytes = np.asarray(load_image(path.read_bytes()))
    from_array = np.asarray(load_image(np.asarray(source)))
    from_floats = np.asarray(load_image(np.asarray(source) / 255.0))
    for other in (from_handle, from_bytes, from_array, from_floats):
        assert np.array_equal(other, np.asarray(source))


# --- refused with a one-line error naming the file ------------------------------------------------------

def bad_inputs(tmp_path, photos) -> dict:
    """file name -> (path, words expected in the error)."""
    good = tmp_path / "good.jpg"
    photos["chelsea"].save(good)
    png = tmp_path / "good.png"
    photos["chelsea"].save(png)
    cases = {}

    def add(name, data, expected):
        path = tmp_path / name
        path.write_bytes(data)
        cases[name] = (path, expected)

    add("truncated.jpg", good.read_bytes()[: len(good.read_bytes()) // 3], "truncated")
    add("truncated.png", png.read_bytes()[: len(png.read_bytes()) // 2], "truncated")
    add("header-only.jpg", good.read_bytes()[:200], "truncated")
    add("empty.jpg", b"", "not an image")
    add("notes.png", b"this is a text file, not a picture\n", "not an image")
    add("bomb.png", crafted_png(100_000, 100_000), "too large")
    add("big.png", crafted_png(10_000, 10_000), f"{MAX_PIXELS:,}-pixel limit")
    add("zero-width.png", crafted_png(0, 10), "not an image")
    directory = tmp_path / "folder.jpg"
    directory.mkdir()
    cases["folder.jpg"] = (directory, "is a directory")
    cases["missing.jpg"] = (tmp_path / "missing.jpg", "no such file")
    return cases


def test_bad_images_are_refused_with_one_line_naming_them(tmp_path, photos):
    cases = bad_inputs(tmp_path, photos)
    for name, (path, expected) in cases.items():
        with pytest.raises(ImageError) as caught:
            load_image(path)
        message = str(caught.value)
        assert name in message and expected in message, message
        assert "\n" not in message


def test_size_limit_is_checked_from_the_header_before_decoding(monkeypatch):
    decoded = []
    original_load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original_load(self))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # an app that switched Pillow's own guard off
    with pytest.raises(ImageError, match="100000x100000 exceeds"):
        load_image(crafted_png(100_000, 100_000))
    with pytest.raises(ImageError, match="2000x2000 exceeds the 1,000,000-pixel limit"):
        load_image(crafted_png(2000, 2000), max_pixels=1_000_000)
    assert decoded == []  # refused from the header: not one pixel decoded
    assert load_image(crafted_png(4, 4)).size == (4, 4) and (4, 4) in decoded  # the spy does see decoding


def test_arrays_that_are_not_images(tmp_path):
    cases = {
        "shape": np.zeros((4, 4, 2), dtype=np.uint8),
        "dtype": np.zeros((4, 4, 3), dtype=np.complex64),
        "NaN": np.full((4, 4, 3), np.nan, dtype=np.float32),
        "empty": np.zeros((0, 4, 3), dtype=np.uint8),
    }
    for expected, array in cases.items():
        with pytest.raises(ImageError) as caught:
            load_image(array)
        assert expected.lower() in str(caught.value).lower() and "\n" not in str(caught.value)
    with pytest.raises(ImageError, match="not an image"):
        load_image(12345)


# --- batches: one bad image fails alone -------------------------------------------------------------------

def test_predict_many_keeps_going_past_bad_images(mini_artifacts, photos, tmp_path):
    model = load(mini_artifacts["face-parsing"])
    good_path = save(photos["astronaut"].resize((120, 90)), tmp_path / "a.jpg")
    cat = photos["chelsea"].resize((80, 64))
    bad = bad_inputs(tmp_path, photos)
    inputs = [good_path, bad["truncated.jpg"][0], cat, bad["bomb.png"][0], b"garbage", np.asarray(cat), bad["missing.jpg"][0]]
    outcomes = model.predict_many(inputs, batch_size=3)
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["SegmentationResult", "ImageError", "SegmentationResult", "ImageError", "ImageError",
                     "SegmentationResult", "ImageError"]
    assert "truncated.jpg" in str(outcomes[1]) and "bomb.png" in str(outcomes[3]) and "missing.jpg" in str(outcomes[6])
    for index in (0, 2, 5):  # same as predicting each good image on its own
        alone = model.predict(inputs[index])
        assert isinstance(alone, SegmentationResult)
        assert np.array_equal(outcomes[index].label_map, alone.label_map)
    assert model.predict_many([]) == []
    with pytest.raises(ImageError, match="truncated.jpg"):  # predict() itself refuses the whole call
        model.predict([good_path, bad["truncated.jpg"][0]])


def test_cli_batch_one_bad_image_fails_alone(mini_artifacts, photos, tmp_path):
    good = [save(photos["chelsea"], tmp_path / "a.jpg"), save(photos["astronaut"].resize((100, 70)), tmp_path / "c.png")]
    bad = bad_inputs(tmp_path, photos)
    bad_paths = [path for path, _ in bad.values()]
    out = tmp_path / "pred"
    result = subprocess.run(
        [sys.executable, "-m", "edgeforge", "run", str(mini_artifacts["facial-emotions"]), str(good[0]),
         *map(str, bad_paths), str(good[1]), "-o", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("edgeforge: error:")]
    assert len(errors) == len(bad)
    for name in bad:
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert f"{len(bad)} of {len(bad) + 2} image(s) failed" in result.stderr
    for stem in ("a", "c"):
        scores = json.loads((out / f"{stem}.json").read_text())["scores"]
        assert len(scores) == 7 and sum(scores.values()) == pytest.approx(1.0)
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "c.json"]
    print(f"\nCLI batch: {len(bad)} bad inputs refused one line each, {len(good)} good images processed")


def test_classification_results_for_odd_images(mini_artifacts, tmp_path):
    """Every valid-but-odd image above runs through a model end to end."""
    model = load(mini_artifacts["facial-emotions"])
    source = quadrants()
    images = [
        save(source, tmp_path / "png-named.jpg", format="PNG"),
        save(Image.fromarray(np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16)), tmp_path / "g16.png"),
        save(source.convert("CMYK"), tmp_path / "cmyk.jpg"),
        save(source.convert("LA"), tmp_path / "la.png"),
        save(source.convert("RGBA"), tmp_path / "rgba.png"),
        save(source.quantize(colors=4), tmp_path / "p.png", transparency=0),
        io.BytesIO((tmp_path / "rgba.png").read_bytes()),
    ]
    results = model.predict_many(images)
    assert all(isinstance(r, ClassificationResult) for r in results), results
    assert all(r.probabilities.sum() == pytest.approx(1.0) for r in results)
