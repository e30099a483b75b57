"""Procedural datasets with pixel-exact labels: ``faces`` (face parsing), ``people`` (clothes parsing)
and ``expressions`` (facial-emotion classification).

Every shape is drawn twice with the same geometry: its colour on the RGB image and its class id on
the label map. ImageDraw never antialiases, so both rasterize exactly the same pixels. Camera effects
(lighting, blur, noise) are applied to the RGB image afterwards; the labels stay exact.

A sample depends only on (seed, kind, index), so one can be made on its own, in any order, in any
process: ``make_sample`` is what on-the-fly training data calls; ``write_dataset`` writes a folder in
the layout of the real datasets (CelebAMask-HQ/ATR-like image + label PNG pairs, or one folder per
class for expressions).

Left/right convention (faces and people): "left" is the *person's* left, which is the *image right*
when they face the camera, as in anatomy and ATR. In the local drawing coordinates below, +x is the
image right, so every ``l_*``/``Left-*`` part is drawn at +x.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from edgeforge.atomic import atomic_directory
from edgeforge.errors import EdgeforgeError
from edgeforge.zoo.reference import label_names

KINDS = ("faces", "people", "expressions")
REFERENCE_FOR_KIND = {"faces": "face-parsing", "people": "clothes-parsing", "expressions": "facial-emotions"}
#: Bump when a change makes the same (seed, index) draw a different picture.
GENERATOR_VERSION = 3
MIN_SIZE = 32

Colour = tuple[int, int, int]

FACE = {name: i for i, name in enumerate(label_names("face-parsing"))}
PERSON = {name: i for i, name in enumerate(label_names("clothes-parsing"))}
EMOTIONS = tuple(label_names("facial-emotions"))

SKIN_TONES: tuple[Colour, ...] = (
    (255, 224, 196), (241, 194, 167), (224, 172, 138), (198, 134, 99),
    (161, 102, 69), (120, 74, 48), (87, 55, 38), (62, 40, 29),
)
HAIR_COLOURS: tuple[Colour, ...] = (
    (20, 17, 15), (45, 30, 22), (85, 55, 35), (130, 90, 55), (190, 150, 90),
    (225, 200, 140), (150, 60, 30), (160, 160, 160),
)
IRIS_COLOURS: tuple[Colour, ...] = ((70, 45, 25), (110, 75, 40), (70, 110, 160), (80, 120, 80), (100, 100, 110))
JEWEL_COLOURS: tuple[Colour, ...] = ((212, 175, 55), (192, 192, 200), (235, 230, 220), (180, 40, 60))


def label_names_for(kind: str) -> list[str]:
    """Class names of a kind's label set, ordered by class id."""
    _check_kind(kind)
    return label_names(REFERENCE_FOR_KIND[kind])


def make_sample(
    kind: str, index: int, seed: int = 0, size: int = 256, *, camera_effects: bool = True
) -> tuple[Image.Image, np.ndarray | int]:
    """Draw sample ``index`` of the synthetic ``kind`` dataset made with ``seed``.

    Returns an RGB image and its label: a uint8 ``size``x``size`` class-id map for faces/people,
    a class id for expressions. ``camera_effects=False`` skips lighting, blur and noise (the label
    and the drawn scene are the same either way), which makes the drawing itself checkable.
    """
    image, label, _ = _draw(kind, index, seed, size, camera_effects, part_labels=kind != "expressions")
    return image, label


def make_expression_sample(index: int, seed: int = 0, size: int = 256) -> tuple[Image.Image, int, np.ndarray]:
    """Sample ``index`` of the expressions dataset with ``seed`` (the same image and emotion id as
    ``make_sample``) and its face-part label map in the 19 CelebAMask-HQ classes.

    The part map is not part of the dataset (FER-style data has none); training uses it as auxiliary
    supervision (``edgeforge.zoo.training_data``).
    """
    return _draw("expressions", index, seed, size, camera_effects=True, part_labels=True)


def _draw(kind: str, index: int, seed: int, size: int, camera_effects: bool,
          part_labels: bool) -> tuple[Image.Image, np.ndarray | int, np.ndarray | None]:
    _check_arguments(kind, seed, size)
    if index < 0:
        raise EdgeforgeError(f"sample index must be 0 or more, got {index}")
    # Separate streams, so turning camera effects off does not change the scene.
    kind_id = KINDS.index(kind)
    scene_rng = np.random.default_rng([seed, kind_id, index, 0])
    camera_rng = np.random.default_rng([seed, kind_id, index, 1])

    canvas = Canvas(make_background(size, scene_rng), with_labels=part_labels)
    draw_clutter(canvas, scene_rng)
    if kind == "faces":
        expression = expression_for(EMOTIONS[scene_rng.integers(len(EMOTIONS))], scene_rng)
        draw_face_scene(canvas, scene_rng, expression, for_expressions=False)
        label: np.ndarray | int = canvas.label_array()
    elif kind == "people":
        draw_person_scene(canvas, scene_rng)
        label = canvas.label_array()
    else:
        label = index % len(EMOTIONS)  # balanced classes
        draw_face_scene(canvas, scene_rng, expression_for(EMOTIONS[label], scene_rng), for_expressions=True)

    image = apply_camera_effects(canvas.image, camera_rng) if camera_effects else canvas.image
    return image, label, canvas.label_array() if part_labels else None


def write_dataset(
    kind: str, n: int, out_dir: str | Path, seed: int = 0, size: int = 256, *, progress: bool = True
) -> dict:
    """Write ``n`` samples to ``out_dir`` in the layout of the real datasets; return a summary.

    Parsing kinds: ``images/00000.jpg`` (JPEG q95, as CelebAMask-HQ and ATR ship) and
    ``labels/00000.png`` (mode L, class ids). Expressions: ``<class_name>/00000.png``.
    Always ``dataset.json``. The folder is assembled aside and swapped in only when complete.
    """
    _check_arguments(kind, seed, size)
    if n < 1:
        raise EdgeforgeError(f"the number of samples must be at least 1, got {n}")
    out_dir = Path(out_dir)
    _refuse_foreign_directory(out_dir)
    names = label_names_for(kind)
    start = time.perf_counter()
    with atomic_directory(out_dir) as staging:
        _make_layout(staging, kind, names)
        for index in _progress(range(n), total=n, enabled=progress, desc=f"synth {kind}"):
            image, label = make_sample(kind, index, seed=seed, size=size)
            _save_sample(staging, index, image, label, names)
        description = dataset_description(kind, n=n, seed=seed, size=size)
        (staging / "dataset.json").write_text(json.dumps(description, indent=2) + "\n")
    seconds = time.perf_counter() - start
    return {"path": str(out_dir), "kind": kind, "n": n, "seconds": seconds, "images_per_second": n / seconds}


def dataset_description(kind: str, *, n: int, seed: int, size: int) -> dict:
    """The ``dataset.json`` contents: enough to regenerate the folder exactly."""
    names = label_names_for(kind)
    return {
        "generator": "edgeforge.data.synth",
        "generator_version": GENERATOR_VERSION,
        "kind": kind,
        "task": "image-classification" if kind == "expressions" else "semantic-segmentation",
        "reference": REFERENCE_FOR_KIND[kind],
        "id2label": {str(i): name for i, name in enumerate(names)},
        "seed": seed,
        "n": n,
        "size": size,
    }


# --------------------------------------------------------------------------------------------------
# Writing


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise EdgeforgeError(f"unknown synthetic dataset kind {kind!r}; choose one of {', '.join(KINDS)}")


def _check_arguments(kind: str, seed: int, size: int) -> None:
    _check_kind(kind)
    if seed < 0:
        raise EdgeforgeError(f"seed must be 0 or more, got {seed}")
    if size < MIN_SIZE:
        raise EdgeforgeError(f"image size {size} is too small; use at least {MIN_SIZE}")


def _refuse_foreign_directory(out_dir: Path) -> None:
    """Only an empty folder or an earlier synthetic dataset may be replaced: never wipe user data."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise EdgeforgeError(f"{out_dir} exists and is not a directory")
    if any(out_dir.iterdir()) and not _is_synthetic_dataset(out_dir):
        raise EdgeforgeError(
            f"{out_dir} is not empty and is not an edgeforge synthetic dataset; choose another directory")


def _is_synthetic_dataset(directory: Path) -> bool:
    try:
        return json.loads((directory / "dataset.json").read_text()).get("generator") == "edgeforge.data.synth"
    except (OSError, ValueError, AttributeError):
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


# --------------------------------------------------------------------------------------------------
# Drawing primitives


class Canvas:
    """An RGB image and its label map, drawn together so that every shape covers the same pixels."""

    def __init__(self, background: Image.Image, with_labels: bool = True):
        self.image = background
        self.size = background.width
        self._rgb = ImageDraw.Draw(self.image)
        self.label = Image.new("L", background.size, 0) if with_labels else None
        self._ids = ImageDraw.Draw(self.label) if with_labels else None

    def polygon(self, points: list[float], label: int, colour: Colour) -> None:
        self._rgb.polygon(points, fill=colour)
        if self._ids is not None:
            self._ids.polygon(points, fill=label)

    def line(self, points: list[float], width: int, label: int, colour: Colour) -> None:
        self._rgb.line(points, fill=colour, width=width, joint="curve")
        if self._ids is not None:
            self._ids.line(points, fill=label, width=width, joint="curve")

    def label_array(self) -> np.ndarray:
        return np.array(self.label, dtype=np.uint8)


@dataclass(frozen=True)
class Frame:
    """Maps local drawing units to pixels: rotate by ``angle``, scale, stretch the image x axis by
    ``stretch``, then move to (x, y)."""

    x: float
    y: float
    scale: float
    angle: float = 0.0
    stretch: float = 1.0  # > 1: a portrait picture squashed into a square input (see draw_person_scene)

    def to_pixels(self, xs: np.ndarray, ys: np.ndarray) -> list[float]:
        cos, sin = math.cos(self.angle), math.sin(self.angle)
        px = self.x + self.stretch * self.scale * (xs * cos - ys * sin)
        py = self.y + self.scale * (xs * sin + ys * cos)
        return np.column_stack([px, py]).ravel().tolist()

    def child(self, x: float, y: float, scale: float) -> Frame:
        """A frame centred at local (x, y) whose unit is ``scale`` local units, same rotation and stretch."""
        (px, py) = self.to_pixels(np.array([x]), np.array([y]))
        return Frame(px, py, self.scale * scale, self.angle, self.stretch)


class Pen:
    """Draws shapes given in a frame's local units onto a canvas."""

    def __init__(self, canvas: Canvas, frame: Frame):
        self.canvas = canvas
        self.frame = frame

    def at(self, frame: Frame) -> Pen:
        return Pen(self.canvas, frame)

    def polygon(self, xs: Sequence[float], ys: Sequence[float], label: int, colour: Colour) -> None:
        self.canvas.polygon(self.frame.to_pixels(np.asarray(xs, float), np.asarray(ys, float)), label, colour)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, label: int, colour: Colour,
                angle: float = 0.0) -> None:
        # Enough vertices that the outline looks smooth at this pixel size, no more (speed).
        count = int(min(90, max(10, self.frame.scale * max(rx, ry) * 1.2)))
        unit_x, unit_y = _unit_circle(count)
        ex, ey = rx * unit_x, ry * unit_y
        cos, sin = math.cos(angle), math.sin(angle)
        self.polygon(cx + ex * cos - ey * sin, cy + ex * sin + ey * cos, label, colour)

    def line(self, xs: Sequence[float], ys: Sequence[float], width: float, label: int, colour: Colour) -> None:
        pixels = max(1, round(width * self.frame.scale))
        self.canvas.line(self.frame.to_pixels(np.asarray(xs, float), np.asarray(ys, float)), pixels, label, colour)


@lru_cache(maxsize=128)
def _unit_circle(count: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.cos(t), np.sin(t)


def shade(colour: Colour, factor: float) -> Colour:
    return tuple(min(255, max(0, round(c * factor))) for c in colour)  # type: ignore[return-value]


def mix(a: Colour, b: Colour, t: float) -> Colour:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def pick(rng: np.random.Generator, palette: Sequence[Colour], jitter: int = 10) -> Colour:
    base = np.array(palette[rng.integers(len(palette))])
    jittered = np.clip(base + rng.integers(-jitter, jitter + 1, 3), 0, 255)
    return tuple(int(v) for v in jittered)  # type: ignore[return-value]


def random_colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> Colour:
    return tuple(int(v) for v in rng.integers(low, high, 3))  # type: ignore[return-value]


def distinct_colour(rng: np.random.Generator, other: Colour, min_distance: float = 90.0) -> Colour:
    """A random colour at least ``min_distance`` (RGB Euclidean) from ``other``."""
    while True:
        colour = random_colour(rng)
        if math.dist(colour, other) >= min_distance:
            return colour


def random_blob(rng: np.random.Generator, cx: float, cy: float, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """A lumpy star-shaped polygon: reads as 'some object' rather than a clean geometric shape."""
    count = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, count))
    radii = radius * rng.uniform(0.6, 1.0, count)
    return cx + radii * np.cos(angles), cy + radii * np.sin(angles)


# --------------------------------------------------------------------------------------------------
# Background and camera


@lru_cache(maxsize=8)
def _unit_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates scaled to [-0.5, 0.5), shared by the gradient and lighting fields."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
    return np.meshgrid(axis, axis)


def make_background(size: int, rng: np.random.Generator) -> Image.Image:
    """A flat, gradient, striped or blotchy backdrop (all labelled background)."""
    a, b = random_colour(rng), random_colour(rng)
    style = rng.integers(4)
    if style == 0:
        return Image.new("RGB", (size, size), a)
    if style == 3:
        cells = rng.integers(0, 256, (int(rng.integers(3, 9)),) * 2 + (3,), dtype=np.uint8)
        return Image.fromarray(cells).resize((size, size), Image.Resampling.BICUBIC)
    xx, yy = _unit_grid(size)
    angle = rng.uniform(0, 2 * np.pi)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    if style == 1:  # linear gradient from a to b
        weight = np.clip((along + 0.5) * 255, 0, 255)
    else:  # stripes of a and b
        weight = ((along / rng.uniform(0.03, 0.2)) % 2 < 1) * 255.0
    mask = Image.fromarray(weight.astype(np.uint8))
    return Image.composite(Image.new("RGB", (size, size), b), Image.new("RGB", (size, size), a), mask)


def draw_clutter(canvas: Canvas, rng: np.random.Generator) -> None:
    """Random background objects, so the model cannot segment 'anything not flat'."""
    pen = Pen(canvas, Frame(0, 0, canvas.size))  # unit = image side
    for _ in range(int(rng.integers(1, 8))):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.04, 0.25)
        colour, shape = random_colour(rng), rng.integers(4)
        if shape == 0:
            pen.ellipse(cx, cy, r, r * rng.uniform(0.3, 1), 0, colour, angle=rng.uniform(0, np.pi))
        elif shape == 1:
            w, h = r, r * rng.uniform(0.2, 1.5)
            pen.polygon([cx - w, cx + w, cx + w, cx - w], [cy - h, cy - h, cy + h, cy + h], 0, colour)
        elif shape == 2:
            pen.polygon(*random_blob(rng, cx, cy, r), 0, colour)
        else:
            pen.line([cx - r, cx + r], [cy, cy + rng.uniform(-r, r)], rng.uniform(0.005, 0.03), 0, colour)


def apply_camera_effects(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Blur, a lighting gradient with a colour cast, and sensor noise: image only, never labels."""
    size = image.width
    if rng.random() < 0.5:
        # A box blur looks like defocus as much as a Gaussian does, at a third of the cost.
        image = image.filter(ImageFilter.BoxBlur(rng.uniform(0.3, 1.5) * size / 256))
    xx, yy = _unit_grid(size)
    angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.6)
    light = rng.uniform(0.75, 1.15) * (1 + strength * (xx * math.cos(angle) + yy * math.sin(angle)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels *= light[..., None]
    pixels *= (1 + rng.normal(0, 0.04, 3)).astype(np.float32)  # colour cast
    if rng.random() < 0.7:
        pixels += _noise_patch(size, rng) * np.float32(rng.uniform(1, 9))
    pixels += 0.5  # round, not truncate
    np.clip(pixels, 0, 255, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8))


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Unit Gaussian noise, twice the image side: a random window of it is as good as fresh noise
    and much cheaper to get than drawing a new normal variate per pixel."""
    return np.random.default_rng(0).standard_normal((2 * size, 2 * size, 1), dtype=np.float32)


def _noise_patch(size: int, rng: np.random.Generator) -> np.ndarray:
    """Luminance noise (shared by the channels), a window of the noise bank at a random offset."""
    x, y = rng.integers(0, size, 2)
    return _noise_bank(size)[y : y + size, x : x + size]


# --------------------------------------------------------------------------------------------------
# Faces (local unit: half the head width; head centre at the origin; y points down)


@dataclass(frozen=True)
class Expression:
    """The face parts an emotion moves. Distances are in head half-widths."""

    mouth_width: float = 0.31
    mouth_bend: float = 0.0  # > 0 corners up (smile), < 0 corners down
    mouth_open: float = 0.0  # gap between the lips at the centre
    mouth_tilt: float = 0.0  # one corner higher than the other
    mouth_wave: float = 0.0
    teeth: bool = False
    lip_scale: float = 1.0  # < 1: pressed lips
    brow_lift: float = 0.0  # both brows up (+) or down (-)
    brow_inner: float = 0.0  # inner ends up (+, sad/fear) or down (-, angry)
    brow_arch: float = 0.03
    brow_drop_one: float = 0.0  # disgust: one brow pulled down
    eye_open: float = 1.0
    nose_wrinkle: bool = False


def expression_for(name: str, rng: np.random.Generator) -> Expression:
    """The cues of one emotion, jittered so that no two faces are the same."""

    def u(low: float, high: float) -> float:
        return float(rng.uniform(low, high))

    if name == "happy":
        open_ = u(0.05, 0.12) if rng.random() < 0.6 else 0.0
        return Expression(mouth_width=u(0.38, 0.46), mouth_bend=u(0.12, 0.18), mouth_open=open_, teeth=open_ > 0,
                          eye_open=u(0.65, 0.85), brow_lift=u(0, 0.04))
    if name == "sad":
        return Expression(mouth_width=u(0.27, 0.33), mouth_bend=u(-0.16, -0.11), brow_inner=u(0.1, 0.15),
                          brow_arch=0.0, eye_open=u(0.7, 0.85))
    if name == "angry":
        clenched = rng.random() < 0.4
        return Expression(mouth_width=u(0.27, 0.33), mouth_bend=u(-0.06, -0.02), mouth_open=0.05 if clenched else 0.0,
                          teeth=clenched, lip_scale=0.55, brow_lift=u(-0.08, -0.04), brow_inner=u(-0.17, -0.12),
                          brow_arch=0.0, eye_open=u(0.45, 0.6))
    if name == "surprise":
        return Expression(mouth_width=u(0.13, 0.17), mouth_open=u(0.26, 0.34), brow_lift=u(0.12, 0.17),
                          brow_arch=u(0.05, 0.08), eye_open=u(1.4, 1.6))
    if name == "fear":
        return Expression(mouth_width=u(0.36, 0.42), mouth_bend=u(-0.07, -0.03), mouth_open=u(0.13, 0.18), teeth=True,
                          brow_lift=u(0.09, 0.12), brow_inner=u(0.04, 0.07), brow_arch=0.0, eye_open=u(1.3, 1.5))
    if name == "disgust":
        return Expression(mouth_width=u(0.29, 0.34), mouth_bend=u(-0.04, 0.0),
                          mouth_tilt=u(0.07, 0.11) * rng.choice([-1, 1]), mouth_wave=u(0.025, 0.04),
                          brow_drop_one=u(0.08, 0.12) * rng.choice([-1, 1]),
                          eye_open=u(0.6, 0.75), nose_wrinkle=True)
    if name == "neutral":
        return Expression(mouth_width=u(0.28, 0.34), mouth_bend=u(-0.01, 0.01), eye_open=u(0.9, 1.05))
    raise ValueError(f"unknown expression {name!r}")


@dataclass(frozen=True)
class FaceLook:
    skin: Colour
    hair: Colour
    brow: Colour
    lips: Colour
    iris: Colour
    sclera: Colour
    cloth: Colour


def random_face_look(rng: np.random.Generator) -> FaceLook:
    skin = pick(rng, SKIN_TONES)
    hair = random_colour(rng, 20, 240) if rng.random() < 0.1 else pick(rng, HAIR_COLOURS)  # 10 % dyed
    return FaceLook(
        skin=skin,
        hair=hair,
        brow=shade(hair, 0.7) if sum(hair) > 120 else mix(hair, (0, 0, 0), 0.3),
        lips=mix(skin, (170, 40, 60), rng.uniform(0.35, 0.6)),
        iris=pick(rng, IRIS_COLOURS),
        sclera=pick(rng, [(236, 236, 230)], 8),
        cloth=random_colour(rng),
    )


def draw_face_scene(canvas: Canvas, rng: np.random.Generator, expression: Expression, *, for_expressions: bool) -> None:
    """A head-and-shoulders portrait: aligned like CelebA-HQ, or a tight crop like FER for expressions."""
    size = canvas.size
    if for_expressions:
        half, cx, cy = rng.uniform(0.27, 0.33), rng.uniform(0.45, 0.55), rng.uniform(0.43, 0.52)
    else:
        half, cx, cy = rng.uniform(0.16, 0.25), rng.uniform(0.4, 0.6), rng.uniform(0.38, 0.52)
    frame = Frame(cx * size, cy * size, half * size, angle=math.radians(rng.uniform(-12, 12)))
    pen = Pen(canvas, frame)
    draw_portrait(pen, rng, random_face_look(rng), expression, for_expressions=for_expressions)
    if rng.random() < 0.3:
        draw_face_occluder(pen, rng, for_expressions=for_expressions)


def draw_portrait(pen: Pen, rng: np.random.Generator, look: FaceLook, ex: Expression, *, for_expressions: bool) -> None:
    """Back to front. Inside the face, overlaps resolve as CelebAMask-HQ's merge does (the larger
    class id wins): eyes over eyeglasses, brows over eyes, lips over mouth, hair over everything."""
    yaw = rng.uniform(-0.1, 0.1)  # head turn: features slide sideways, ears change size
    has_hair = rng.random() < 0.88
    if has_hair and rng.random() < 0.4:
        draw_long_hair(pen, rng, look.hair)
    draw_neck_and_cloth(pen, rng, look)
    if rng.random() < 0.4:
        draw_necklace(pen, rng)
    ear_y = rng.uniform(-0.05, 0.15)
    for side, ear in ((1, FACE["l_ear"]), (-1, FACE["r_ear"])):
        draw_ear(pen, look.skin, ear, side, ear_y, width=1 - 2 * side * yaw)
    pen.ellipse(0, 0, rng.uniform(0.92, 1.02), 1.3, FACE["skin"], look.skin)

    draw_nose(pen, rng, look.skin, ex, x=1.5 * yaw)
    glasses = rng.random() < 0.4
    # Sunglasses hide the eyes; an expression needs them, so expression faces get clear lenses only.
    sunglasses = glasses and not for_expressions and rng.random() < 0.3
    if glasses:
        draw_glasses(pen, rng, look.skin, x=yaw, dark=sunglasses)
    gaze = rng.uniform(-0.03, 0.03)
    if not sunglasses:
        for side, eye in ((1, FACE["l_eye"]), (-1, FACE["r_eye"])):
            draw_eye(pen, look, ex, eye, x=side * 0.38 + yaw, gaze=gaze)
    drop_side = 1 if ex.brow_drop_one > 0 else -1
    for side, brow in ((1, FACE["l_brow"]), (-1, FACE["r_brow"])):
        drop = abs(ex.brow_drop_one) if side == drop_side else 0.0
        draw_brow(pen, rng, look.brow, ex, brow, side, x_shift=yaw, drop=drop)
    draw_mouth(pen, look.lips, ex, x=yaw, y=rng.uniform(0.68, 0.76))
    if has_hair:
        # An expression's brows must stay visible, so its fringe stays higher.
        draw_hair_top(pen, rng, look.hair, fringe=rng.uniform(-0.1, 0.05 if for_expressions else 0.15))
    if rng.random() < 0.4:
        draw_earrings(pen, rng, ear_y)
    if rng.random() < 0.35:
        draw_hat(pen, rng, random_colour(rng))


def draw_long_hair(pen: Pen, rng: np.random.Generator, colour: Colour) -> None:
    bottom, spread = rng.uniform(1.2, 2.6), rng.uniform(1.15, 1.5)
    pen.polygon([-1.05, 1.05, spread, -spread], [-0.5, -0.5, bottom, bottom], FACE["hair"], colour)


def draw_neck_and_cloth(pen: Pen, rng: np.random.Generator, look: FaceLook) -> None:
    pen.polygon([-0.45, 0.45, 0.5, -0.5], [0.7, 0.7, 2.3, 2.3], FACE["neck"], shade(look.skin, 0.85))
    shoulder = rng.uniform(1.65, 1.95)
    dip = rng.choice([0.05, 0.3, 0.6])  # high, round or V neckline
    neck_x = np.linspace(0.5, -0.5, 9)
    neck_y = shoulder + dip * (1 - np.abs(neck_x / 0.5) ** (1 if dip > 0.5 else 2))
    xs = np.concatenate([[-2.3, -1.3], neck_x[::-1], [1.3, 2.3, 3.0, -3.0]])
    ys = np.concatenate([[shoulder + 0.5, shoulder + 0.1], neck_y[::-1], [shoulder + 0.1, shoulder + 0.5, 5, 5]])
    pen.polygon(xs, ys, FACE["cloth"], look.cloth)


def draw_necklace(pen: Pen, rng: np.random.Generator) -> None:
    colour, depth = pick(rng, JEWEL_COLOURS), rng.uniform(0.2, 0.45)
    x = np.linspace(-0.44, 0.44, 15)
    y = rng.uniform(1.35, 1.5) + depth * (1 - (x / 0.44) ** 2)
    pen.line(x, y, rng.uniform(0.035, 0.06), FACE["neck_l"], colour)
    if rng.random() < 0.5:  # pendant
        pen.ellipse(0, y[7] + 0.06, 0.06, 0.08, FACE["neck_l"], colour)


def draw_ear(pen: Pen, skin: Colour, label: int, side: int, y: float, width: float) -> None:
    pen.ellipse(side * 1.0, y, 0.18 * width, 0.3, label, shade(skin, 0.93), angle=side * 0.15)
    pen.ellipse(side * 1.04, y, 0.08 * width, 0.17, label, shade(skin, 0.78), angle=side * 0.15)  # inner ear


def draw_earrings(pen: Pen, rng: np.random.Generator, ear_y: float) -> None:
    colour, radius = pick(rng, JEWEL_COLOURS), rng.uniform(0.04, 0.07)
    sides = (1, -1) if rng.random() < 0.8 else (rng.choice([1, -1]),)
    for side in sides:
        pen.ellipse(side * 1.07, ear_y + 0.3, radius, radius * 1.4, FACE["ear_r"], colour)


def draw_nose(pen: Pen, rng: np.random.Generator, skin: Colour, ex: Expression, x: float) -> None:
    length, width = rng.uniform(0.38, 0.48), rng.uniform(0.13, 0.19)
    xs = np.array([-0.05, 0.05, width, width * 0.7, -width * 0.7, -width]) + x
    ys = np.array([-0.08, -0.08, length - 0.06, length, length, length - 0.06])
    pen.polygon(xs, ys, FACE["nose"], shade(skin, 0.9))
    for side in (1, -1):  # nostrils
        pen.ellipse(x + side * width * 0.45, length - 0.04, 0.035, 0.02, FACE["nose"], shade(skin, 0.55))
    if ex.nose_wrinkle:
        for y in (0.0, 0.06, 0.12):
            pen.line([x - 0.09, x, x + 0.09], [y, y - 0.03, y], 0.022, FACE["nose"], shade(skin, 0.62))


def draw_glasses(pen: Pen, rng: np.random.Generator, skin: Colour, x: float, dark: bool) -> None:
    frame_colour = random_colour(rng, 0, 120) if rng.random() < 0.7 else pick(rng, JEWEL_COLOURS)
    lens = (25, 25, 30) if dark else mix(skin, (200, 220, 235), 0.25)
    rx, ry, thickness = rng.uniform(0.25, 0.3), rng.uniform(0.17, 0.22), rng.uniform(0.03, 0.06)
    t = np.linspace(0, 2 * np.pi, 24)
    for side in (1, -1):
        cx = x + side * 0.38
        pen.ellipse(cx, -0.05, rx, ry, FACE["eye_g"], lens)
        pen.line(cx + rx * np.cos(t), -0.05 + ry * np.sin(t), thickness, FACE["eye_g"], frame_colour)
        pen.line([cx + side * rx, side * 0.99], [-0.1, -0.06], thickness, FACE["eye_g"], frame_colour)  # temple
    pen.line([x - 0.38 + rx, x, x + 0.38 - rx], [-0.1, -0.14, -0.1], thickness, FACE["eye_g"], frame_colour)


def draw_eye(pen: Pen, look: FaceLook, ex: Expression, label: int, x: float, gaze: float) -> None:
    rx, ry, y = 0.19, 0.095 * ex.eye_open, -0.05
    pen.ellipse(x, y, rx, ry, label, look.sclera)
    iris = 0.062 if ex.eye_open > 1.2 else 0.075  # wide-open eyes show white around the iris
    pen.ellipse(x + gaze, y, iris, min(iris, 0.8 * ry), label, look.iris)
    pen.ellipse(x + gaze, y, iris * 0.45, min(iris * 0.45, 0.5 * ry), label, (15, 12, 10))
    t = np.linspace(-1, 1, 12)
    pen.line(x + rx * t, y - ry * np.sqrt(1 - t**2), 0.03, label, mix(look.brow, (0, 0, 0), 0.5))  # upper lid


def draw_brow(pen: Pen, rng: np.random.Generator, colour: Colour, ex: Expression, label: int, side: int,
              x_shift: float, drop: float) -> None:
    t = np.linspace(0, 1, 10)  # 0 at the inner end (near the nose), 1 at the outer end
    x = side * (0.14 + 0.46 * t) + x_shift
    base = -0.32 - ex.brow_lift + drop
    y = base - ex.brow_inner * (1 - t) + 0.3 * ex.brow_inner * t - ex.brow_arch * np.sin(np.pi * t)
    half = rng.uniform(0.035, 0.055) * (1 - 0.5 * t)  # tapers towards the temple
    pen.polygon(np.concatenate([x, x[::-1]]), np.concatenate([y - half, (y + half)[::-1]]), label, colour)


def draw_mouth(pen: Pen, lips: Colour, ex: Expression, x: float, y: float) -> None:
    t = np.linspace(-1, 1, 25)
    xs = x + ex.mouth_width * t
    roundness = np.sqrt(1 - t**2)
    middle = y + ex.mouth_bend * (0.5 - t**2) + ex.mouth_tilt * t + ex.mouth_wave * np.sin(3 * np.pi * t)
    gap = ex.mouth_open * roundness
    upper_inner, lower_inner = middle - gap / 2, middle + gap / 2
    upper_outer = upper_inner - 0.07 * ex.lip_scale * roundness**0.6
    lower_outer = lower_inner + 0.09 * ex.lip_scale * roundness**0.6
    outline_x = np.concatenate([xs, xs[::-1]])
    if ex.mouth_open > 0.01:
        pen.polygon(outline_x, np.concatenate([upper_inner, lower_inner[::-1]]), FACE["mouth"], (70, 20, 25))
        if ex.teeth:
            inside = np.abs(t) < 0.8
            teeth_x = xs[inside]
            teeth_bottom = np.minimum(upper_inner + 0.07, middle)[inside]
            pen.polygon(np.concatenate([teeth_x, teeth_x[::-1]]),
                        np.concatenate([upper_inner[inside], teeth_bottom[::-1]]), FACE["mouth"], (235, 232, 220))
    pen.polygon(outline_x, np.concatenate([upper_outer, upper_inner[::-1]]), FACE["u_lip"], shade(lips, 0.9))
    pen.polygon(outline_x, np.concatenate([lower_inner, lower_outer[::-1]]), FACE["l_lip"], lips)
    if ex.mouth_open <= 0.01:  # the dark seam between closed lips
        pen.line(xs, middle, 0.018, FACE["mouth"], (60, 20, 25))


def draw_hair_top(pen: Pen, rng: np.random.Generator, colour: Colour, fringe: float, label: int = FACE["hair"]) -> None:
    """A cap from one side of the head over the top to the other, ending at a hairline."""
    side = rng.uniform(0.15, 0.55)  # how far down the sides the hair reaches
    t = np.linspace(np.pi - side, 2 * np.pi + side, 40)
    outer_x, outer_y = 1.08 * np.cos(t), -0.03 + 1.38 * np.sin(t)
    parting = rng.uniform(-0.08, 0.08)
    hairline_x = np.array([0.9, 0.7, 0.3, 0.0, -0.3, -0.7, -0.9])
    hairline_y = np.array([-0.2, -0.55, -0.68 + parting, -0.7, -0.68 - parting, -0.55, -0.2]) + fringe * np.array(
        [0, 0.5, 1, 1, 1, 0.5, 0])
    pen.polygon(np.concatenate([outer_x, hairline_x]), np.concatenate([outer_y, hairline_y]), label, colour)


def draw_hat(pen: Pen, rng: np.random.Generator, colour: Colour, label: int = FACE["hat"]) -> None:
    brim_y, height = rng.uniform(-0.95, -0.7), rng.uniform(0.7, 1.0)
    t = np.linspace(np.pi, 2 * np.pi, 20)
    pen.polygon(1.06 * np.cos(t), brim_y + height * np.sin(t), label, colour)
    if rng.random() < 0.6:  # brimmed hat rather than a beanie
        pen.ellipse(0, brim_y, rng.uniform(1.3, 1.7), rng.uniform(0.1, 0.2), label, shade(colour, 0.85))
    pen.line([-1.04, 1.04], [brim_y - 0.12, brim_y - 0.12], 0.1, label, shade(colour, 0.6))  # band


def draw_face_occluder(pen: Pen, rng: np.random.Generator, *, for_expressions: bool) -> None:
    """Something in front of the face, labelled as what it is: an object (background) or a collar (cloth).

    Expression faces only get objects at the upper edge of the head, so the cues stay visible.
    """
    if not for_expressions and rng.random() < 0.4:
        top, tilt = rng.uniform(0.9, 1.3), rng.uniform(-0.2, 0.2)
        pen.polygon([-1.6, 1.6, 3, -3], [top - tilt, top + tilt, 5, 5], FACE["cloth"], random_colour(rng))
        return
    angle = rng.uniform(-np.pi - 0.3, 0.3) if for_expressions else rng.uniform(0, 2 * np.pi)
    distance = rng.uniform(1.25, 1.5) if for_expressions else rng.uniform(0.9, 1.4)
    pen.polygon(*random_blob(rng, distance * math.cos(angle), 1.2 * distance * math.sin(angle), rng.uniform(0.3, 0.6)),
                FACE["background"], random_colour(rng))


# --------------------------------------------------------------------------------------------------
# People (local unit: one eighth of the figure's height; head top at y=0, soles at y=8)


def draw_person_scene(canvas: Canvas, rng: np.random.Generator) -> None:
    """A full figure framed as ATR frames people: a portrait picture (width 0.65-0.8 of its height) the
    person nearly fills, as the model sees it after the image processor resizes it to the square input,
    which stretches it sideways by 1 / aspect."""
    size = canvas.size
    height = rng.uniform(0.82, 0.97) * size
    stretch = 1 / rng.uniform(0.65, 0.8)
    cx = rng.uniform(0.4, 0.6) * size
    top = rng.uniform(0.1, 0.9) * (size - height)
    # Rotate about the figure's middle: the frame origin is the head top, so shift the centre.
    angle = math.radians(rng.uniform(-5, 5))
    unit = height / 8
    frame = Frame(cx + stretch * 4 * unit * math.sin(angle), top + 4 * unit * (1 - math.cos(angle)), unit, angle,
                  stretch)
    pen = Pen(canvas, frame)
    draw_person(pen, rng)
    if rng.random() < 0.3:
        draw_person_occluder(pen, rng)


def draw_person(pen: Pen, rng: np.random.Generator) -> None:
    """A standing figure facing the camera, drawn back to front."""
    skin, hair = pick(rng, SKIN_TONES), pick(rng, HAIR_COLOURS)
    has_hair = rng.random() < 0.9
    if has_hair and rng.random() < 0.35:  # long hair behind the shoulders
        bottom = rng.uniform(2.2, 3.2)
        pen.polygon([-0.42, 0.42, 0.6, -0.6], [0.4, 0.4, bottom, bottom], PERSON["Hair"], hair)

    garment = rng.choice(["pants", "shorts", "skirt", "dress"], p=[0.35, 0.15, 0.25, 0.25])
    top_label = PERSON["Dress"] if garment == "dress" else PERSON["Upper-clothes"]
    top_colour = random_colour(rng)
    ankle_spread = rng.uniform(0.0, 0.4)
    draw_legs_and_shoes(pen, rng, skin, ankle_spread)
    if garment in ("pants", "shorts"):
        draw_pants(pen, rng, ankle_spread, long=garment == "pants")
    elif garment == "skirt":
        # A dress is one colour from shoulder to hem; a top and a skirt of nearly the same colour would
        # be a dress in the picture and not in the labels, so the skirt is told apart from the top.
        draw_skirt(pen, rng, PERSON["Skirt"], top=3.9, colour=distinct_colour(rng, top_colour))

    draw_arms(pen, rng, skin, top_label, top_colour)
    # ATR has no neck class; the neck is labelled Face.
    pen.polygon([-0.17, 0.17, 0.19, -0.19], [0.95, 0.95, 1.7, 1.7], PERSON["Face"], shade(skin, 0.88))
    draw_torso(pen, rng, top_label, top_colour)
    if garment == "dress":
        draw_skirt(pen, rng, top_label, top=3.6, colour=top_colour)
    if rng.random() < 0.35:
        belt = random_colour(rng, 0, 110)
        pen.polygon([-0.78, 0.78, 0.78, -0.78], [3.88, 3.88, 4.08, 4.08], PERSON["Belt"], belt)
        pen.polygon([-0.09, 0.09, 0.09, -0.09], [3.86, 3.86, 4.1, 4.1], PERSON["Belt"], pick(rng, JEWEL_COLOURS))

    draw_person_head(pen, rng, skin, hair, has_hair)
    if rng.random() < 0.3:
        draw_scarf(pen, rng)
    if rng.random() < 0.35:
        draw_bag(pen, rng)


def draw_legs_and_shoes(pen: Pen, rng: np.random.Generator, skin: Colour, spread: float) -> None:
    shoe = random_colour(rng, 0, 200)
    sides = ((1, PERSON["Left-leg"], PERSON["Left-shoe"]), (-1, PERSON["Right-leg"], PERSON["Right-shoe"]))
    for side, leg, foot in sides:
        hip, ankle = side * 0.38, side * (0.42 + spread)
        pen.polygon([hip - 0.3, hip + 0.3, ankle + 0.14, ankle - 0.14], [4.0, 4.0, 7.6, 7.6], leg, skin)
        pen.polygon([ankle - 0.2, ankle + 0.2, ankle + 0.26, ankle - 0.26], [7.45, 7.45, 8.0, 8.0], foot, shoe)


def draw_pants(pen: Pen, rng: np.random.Generator, spread: float, long: bool) -> None:
    colour, bottom = random_colour(rng), rng.uniform(7.2, 7.45) if long else rng.uniform(4.9, 5.6)
    label = PERSON["Pants"]
    pen.polygon([-0.76, 0.76, 0.8, -0.8], [3.85, 3.85, 4.7, 4.7], label, colour)
    for side in (1, -1):
        hip = side * 0.38
        ankle = hip + (side * (0.42 + spread) - hip) * (bottom - 4.0) / 3.6  # follows the leg
        pen.polygon([hip - 0.38, hip + 0.38, ankle + 0.22, ankle - 0.22], [4.0, 4.0, bottom, bottom], label, colour)


def draw_skirt(pen: Pen, rng: np.random.Generator, label: int, top: float, colour: Colour | None = None) -> None:
    bottom, flare = rng.uniform(5.0, 6.6), rng.uniform(1.0, 1.5)
    pen.polygon([-0.74, 0.74, flare, -flare], [top, top, bottom, bottom], label, colour or random_colour(rng))


def draw_arms(pen: Pen, rng: np.random.Generator, skin: Colour, sleeve_label: int, sleeve_colour: Colour) -> None:
    sleeve = rng.choice(["none", "short", "long"], p=[0.25, 0.4, 0.35])
    for side, label in ((1, PERSON["Left-arm"]), (-1, PERSON["Right-arm"])):
        out, bend = math.radians(rng.uniform(5, 30)), math.radians(rng.uniform(-10, 25))
        shoulder = (side * 0.92, 1.75)
        elbow = (shoulder[0] + side * 1.45 * math.sin(out), shoulder[1] + 1.45 * math.cos(out))
        hand = (elbow[0] + side * 1.3 * math.sin(out - bend), elbow[1] + 1.3 * math.cos(out - bend))
        xs, ys = [shoulder[0], elbow[0], hand[0]], [shoulder[1], elbow[1], hand[1]]
        pen.line(xs, ys, 0.32, label, skin)
        pen.ellipse(hand[0], hand[1] + 0.1, 0.15, 0.2, label, skin)  # ATR counts hands as arms
        if sleeve == "short":
            pen.line(xs[:2], [ys[0], ys[0] + 0.6 * (ys[1] - ys[0])], 0.42, sleeve_label, sleeve_colour)
        elif sleeve == "long":
            pen.line(xs, ys[:2] + [ys[2] - 0.1], 0.4, sleeve_label, sleeve_colour)


def draw_torso(pen: Pen, rng: np.random.Generator, label: int, colour: Colour) -> None:
    hem, dip = rng.uniform(4.0, 4.35), rng.choice([0.1, 0.3, 0.6])
    neck_x = np.linspace(0.3, -0.3, 7)
    neck_y = 1.55 + dip * (1 - np.abs(neck_x / 0.3) ** (1 if dip > 0.5 else 2))
    xs = np.concatenate([[-0.98, -0.72, -0.8, 0.8, 0.72, 0.98], neck_x])
    ys = np.concatenate([[1.62, 2.9, hem, hem, 2.9, 1.62], neck_y])
    pen.polygon(xs, ys, label, colour)


def draw_person_head(pen: Pen, rng: np.random.Generator, skin: Colour, hair: Colour, has_hair: bool) -> None:
    head = pen.at(pen.frame.child(0, 0.6, 0.42))  # unit: half the head width, as for faces
    head.ellipse(0, 0, 1.0, 1.3, PERSON["Face"], skin)
    features = shade(skin, 0.45)  # ATR has no eye/brow/mouth classes: they are part of Face
    for side in (1, -1):
        head.ellipse(side * 0.38, -0.05, 0.13, 0.07, PERSON["Face"], (30, 25, 20))
        head.line([side * 0.2, side * 0.55], [-0.3, -0.32], 0.06, PERSON["Face"], features)
    bend = rng.uniform(-0.1, 0.15)
    head.line([-0.28, 0, 0.28], [0.7 - bend / 2, 0.7 + bend / 2, 0.7 - bend / 2], 0.07, PERSON["Face"], (120, 40, 45))
    if has_hair:
        draw_hair_top(head, rng, hair, fringe=rng.uniform(-0.1, 0.15), label=PERSON["Hair"])
    if rng.random() < 0.3:
        for side in (1, -1):
            head.ellipse(side * 0.4, -0.05, 0.3, 0.2, PERSON["Sunglasses"], (20, 20, 25))
        head.line([-0.12, 0.12], [-0.08, -0.08], 0.06, PERSON["Sunglasses"], (20, 20, 25))
    if rng.random() < 0.35:
        draw_hat(head, rng, random_colour(rng), label=PERSON["Hat"])


def draw_scarf(pen: Pen, rng: np.random.Generator) -> None:
    colour, label = random_colour(rng), PERSON["Scarf"]
    pen.polygon([-0.36, 0.36, 0.4, -0.4], [1.35, 1.35, 1.8, 1.8], label, colour)
    tail = rng.choice([-1, 1]) * rng.uniform(0.05, 0.3)
    end = rng.uniform(2.6, 3.4)
    pen.polygon([tail - 0.14, tail + 0.14, tail + 0.17, tail - 0.17], [1.7, 1.7, end, end], label, colour)


def draw_bag(pen: Pen, rng: np.random.Generator) -> None:
    colour, side, label = random_colour(rng), rng.choice([-1, 1]), PERSON["Bag"]
    x, y = side * rng.uniform(0.7, 1.3), rng.uniform(3.4, 4.2)
    pen.line([-side * 0.7, x], [1.7, y], 0.1, label, shade(colour, 0.7))  # strap across the chest
    w, h = rng.uniform(0.3, 0.5), rng.uniform(0.3, 0.5)
    pen.polygon([x - w, x + w, x + w, x - w], [y, y, y + 2 * h, y + 2 * h], label, colour)


def draw_person_occluder(pen: Pen, rng: np.random.Generator) -> None:
    """An object in front of the figure: a bag held at hand height (Bag) or anything else (Background).

    The held bag always has a handle and a clasp, so which label a pixel gets follows from what is
    drawn; an unmarked blob that is Bag one time in three would only teach the model to guess.
    """
    if rng.random() < 0.3:
        colour, label = random_colour(rng), PERSON["Bag"]
        cx, top = rng.uniform(-1.4, 1.4), rng.uniform(4.2, 5.2)
        w, h = rng.uniform(0.35, 0.6), rng.uniform(0.5, 0.8)
        pen.line([cx - 0.7 * w, cx - 0.5 * w, cx + 0.5 * w, cx + 0.7 * w], [top, top - 0.5, top - 0.5, top],
                 0.09, label, shade(colour, 0.7))
        pen.polygon([cx - w, cx + w, cx + 1.1 * w, cx - 1.1 * w], [top, top, top + h, top + h], label, colour)
        pen.ellipse(cx, top + 0.12, 0.08, 0.06, label, pick(rng, JEWEL_COLOURS))
        return
    cx, cy = rng.uniform(-1.5, 1.5), rng.uniform(2.0, 8.0)
    if rng.random() < 0.5:
        pen.polygon(*random_blob(rng, cx, cy, rng.uniform(0.5, 1.2)), PERSON["Background"], random_colour(rng))
    else:
        w = rng.uniform(0.3, 1.5)
        pen.polygon([cx - w, cx + w, cx + w, cx - w], [cy, cy, 9.0, 9.0], PERSON["Background"], random_colour(rng))
