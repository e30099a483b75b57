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


def label_names_for(kind: str) -> list[str]:
    """Class names of a kind's label set, ordered by class id."""
    check_kind(kind)
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
    check_arguments(kind, seed, size)
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




def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise EdgeforgeError(f"unknown synthetic dataset kind {kind!r}; choose one of {', '.join(KINDS)}")


def check_arguments(kind: str, seed: int, size: int) -> None:
    check_kind(kind)
    if seed < 0:
        raise EdgeforgeError(f"seed must be 0 or more, got {seed}")
    if size < MIN_SIZE:
        raise EdgeforgeError(f"image size {size} is too small; use at least {MIN_SIZE}")

