"""Drawing primitives shared by the scenes: a canvas that paints colour and class id with the same
geometry, local coordinate frames, colours, backgrounds, clutter and camera effects."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

Colour = tuple[int, int, int]

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


# --------------------------------------------------------------------------------------------------
# Drawing primitives


class Canvas:
    """An RGB image and its label map, drawn together so that every shape covers the same pixels."""

    def __init__(self, background: Image.Image, with_labels: bool = True):
        self.image = background
        self.width, self.height = background.size
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
def _unit_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates centred on the image, in units of its longer side (so the square's run over
    [-0.5, 0.5)), shared by the gradient and lighting fields."""
    side = max(width, height)
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / side
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / side
    return np.meshgrid(x, y)


def make_background(width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """A flat, gradient, striped or blotchy backdrop (all labelled background)."""
    a, b = random_colour(rng), random_colour(rng)
    style = rng.integers(4)
    size = (width, height)
    if style == 0:
        return Image.new("RGB", size, a)
    if style == 3:
        cells = rng.integers(0, 256, (int(rng.integers(3, 9)),) * 2 + (3,), dtype=np.uint8)
        return Image.fromarray(cells).resize(size, Image.Resampling.BICUBIC)
    xx, yy = _unit_grid(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    if style == 1:  # linear gradient from a to b
        weight = np.clip((along + 0.5) * 255, 0, 255)
    else:  # stripes of a and b
        weight = ((along / rng.uniform(0.03, 0.2)) % 2 < 1) * 255.0
    mask = Image.fromarray(weight.astype(np.uint8))
    return Image.composite(Image.new("RGB", size, b), Image.new("RGB", size, a), mask)


def draw_clutter(canvas: Canvas, rng: np.random.Generator) -> None:
    """Random background objects, so the model cannot segment 'anything not flat'."""
    # Local x and y both run over 0..1 across the image (unit = its height, x stretched to its width).
    pen = Pen(canvas, Frame(0, 0, canvas.height, stretch=canvas.width / canvas.height))
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
    width, height = image.size
    if rng.random() < 0.5:
        # A box blur looks like defocus as much as a Gaussian does, at a third of the cost.
        image = image.filter(ImageFilter.BoxBlur(rng.uniform(0.3, 1.5) * min(width, height) / 256))
    xx, yy = _unit_grid(width, height)
    angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.6)
    light = rng.uniform(0.75, 1.15) * (1 + strength * (xx * math.cos(angle) + yy * math.sin(angle)))
    pixels = np.asarray(image, dtype=np.float32)
    pixels *= light[..., None]
    pixels *= (1 + rng.normal(0, 0.04, 3)).astype(np.float32)  # colour cast
    if rng.random() < 0.7:
        pixels += _noise_patch(width, height, rng) * np.float32(rng.uniform(1, 9))
    pixels += 0.5  # round, not truncate
    np.clip(pixels, 0, 255, out=pixels)
    return Image.fromarray(pixels.astype(np.uint8))


@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Unit Gaussian noise, twice the image side: a random window of it is as good as fresh noise
    and much cheaper to get than drawing a new normal variate per pixel."""
    return np.random.default_rng(0).standard_normal((2 * size, 2 * size, 1), dtype=np.float32)


def _noise_patch(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """Luminance noise (shared by the channels), a window of the noise bank at a random offset."""
    side = max(width, height)
    x, y = rng.integers(0, side, 2)
    return _noise_bank(side)[y : y + height, x : x + width]


