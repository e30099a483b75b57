"""One sample of a synthetic dataset: depends only on (seed, kind, index)."""


from __future__ import annotations

import numpy as np
from PIL import Image

from edgeforge.data.synth.drawing import (
    Canvas,
    apply_camera_effects,
    draw_clutter,
    make_background,
)
from edgeforge.data.synth.faces import EMOTIONS, draw_face_scene, expression_for
from edgeforge.data.synth.people import draw_person_scene
from edgeforge.errors import EdgeforgeError
from edgeforge.references import REFERENCE_FOR_KIND, label_names

KINDS = ("faces", "people", "expressions")
#: Bump when a change makes the same (seed, index) draw a different picture.
GENERATOR_VERSION = 3
MIN_SIZE = 32

Size = int | tuple[int, int] | str  # a square's side, (width, height), or "mixed"
MIXED = "mixed"
#: The (width, height) framings of ``size="mixed"``: small to large squares, and portrait and landscape
#: pictures, as real inputs come -- what the minis train on and the budget is checked on.
MIXED_SIZES = ((64, 64), (128, 128), (192, 192), (256, 256), (384, 384), (512, 512),
               (192, 256), (256, 384), (256, 512), (192, 384),  # portrait, down to 1:2
               (320, 240), (384, 256), (512, 384), (512, 256))  # landscape, up to 2:1


def sample_size(kind: str, index: int, seed: int, size: Size) -> tuple[int, int]:
    """The (width, height) sample ``index`` is drawn at; ``"mixed"`` picks one of ``MIXED_SIZES`` from a
    stream of its own, so the scene drawn at a given size is the same whichever size was picked."""
    if size == MIXED:
        pick = np.random.default_rng([seed, KINDS.index(kind), index, 2]).integers(len(MIXED_SIZES))
        return MIXED_SIZES[pick]
    return (size, size) if isinstance(size, int) else tuple(size)


def parse_size(text: str) -> Size:
    """``"256"``, ``"384x256"`` (width x height) or ``"mixed"``, as the CLI takes it."""
    text = text.strip().lower()
    if text == MIXED:
        return MIXED
    parts = text.replace("×", "x").split("x")
    if len(parts) in (1, 2) and all(part.strip().isdigit() for part in parts):
        numbers = [int(part) for part in parts]
        return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])
    raise EdgeforgeError(f"image size {text!r} is not a side (256), a width x height (384x256) or 'mixed'")


def size_text(size: Size) -> str:
    """How a size reads in messages and dataset descriptions: 256x256, 384x256 or mixed."""
    if size == MIXED:
        return MIXED
    width, height = (size, size) if isinstance(size, int) else size
    return f"{width}x{height}"


def label_names_for(kind: str) -> list[str]:
    """Class names of a kind's label set, ordered by class id."""
    check_kind(kind)
    return label_names(REFERENCE_FOR_KIND[kind])


def make_sample(
    kind: str, index: int, seed: int = 0, size: Size = 256, *, camera_effects: bool = True
) -> tuple[Image.Image, np.ndarray | int]:
    """Draw sample ``index`` of the synthetic ``kind`` dataset made with ``seed``.

    ``size``: the side of a square image, a (width, height) pair, or ``"mixed"`` (``MIXED_SIZES``, one
    per sample, chosen by (seed, kind, index)). Returns an RGB image and its label: a uint8 class-id map
    of the image's size for faces/people, a class id for expressions. ``camera_effects=False`` skips lighting, blur and noise (the label
    and the drawn scene are the same either way), which makes the drawing itself checkable.
    """
    image, label, _ = _draw(kind, index, seed, size, camera_effects, part_labels=kind != "expressions")
    return image, label


def make_expression_sample(index: int, seed: int = 0, size: Size = 256) -> tuple[Image.Image, int, np.ndarray]:
    """Sample ``index`` of the expressions dataset with ``seed`` (the same image and emotion id as
    ``make_sample``) and its face-part label map in the 19 CelebAMask-HQ classes.

    The part map is not part of the dataset (FER-style data has none); training uses it as auxiliary
    supervision (``edgeforge.zoo.training_data``).
    """
    return _draw("expressions", index, seed, size, camera_effects=True, part_labels=True)


def _draw(kind: str, index: int, seed: int, size: Size, camera_effects: bool,
          part_labels: bool) -> tuple[Image.Image, np.ndarray | int, np.ndarray | None]:
    check_arguments(kind, seed, size)
    if index < 0:
        raise EdgeforgeError(f"sample index must be 0 or more, got {index}")
    # Separate streams, so turning camera effects off does not change the scene.
    kind_id = KINDS.index(kind)
    scene_rng = np.random.default_rng([seed, kind_id, index, 0])
    camera_rng = np.random.default_rng([seed, kind_id, index, 1])
    width, height = sample_size(kind, index, seed, size)

    canvas = Canvas(make_background(width, height, scene_rng), with_labels=part_labels)
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




def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise EdgeforgeError(f"unknown synthetic dataset kind {kind!r}; choose one of {', '.join(KINDS)}")


def check_arguments(kind: str, seed: int, size: Size) -> None:
    check_kind(kind)
    if seed < 0:
        raise EdgeforgeError(f"seed must be 0 or more, got {seed}")
    if size == MIXED:
        return
    sides = (size,) if isinstance(size, int) else tuple(size) if isinstance(size, (tuple, list)) else ()
    if len(sides) not in (1, 2) or not all(isinstance(side, int) and not isinstance(side, bool) for side in sides):
        raise EdgeforgeError(f"image size {size!r} is not a side, a (width, height) pair or 'mixed'")
    if min(sides) < MIN_SIZE:
        raise EdgeforgeError(f"image size {size_text(size)} is too small; use at least {MIN_SIZE} pixels a side")

