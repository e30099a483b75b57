"""Face scenes: portraits for face parsing and expression crops for emotion classification."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from edgeforge.data.synth.drawing import (
    HAIR_COLOURS,
    IRIS_COLOURS,
    JEWEL_COLOURS,
    SKIN_TONES,
    Canvas,
    Colour,
    Frame,
    Pen,
    mix,
    pick,
    random_blob,
    random_colour,
    shade,
)
from edgeforge.references import label_names

FACE = {name: i for i, name in enumerate(label_names("face-parsing"))}
EMOTIONS = tuple(label_names("facial-emotions"))


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
    width, height = canvas.width, canvas.height
    if for_expressions:
        half, cx, cy = rng.uniform(0.27, 0.33), rng.uniform(0.45, 0.55), rng.uniform(0.43, 0.52)
    else:
        half, cx, cy = rng.uniform(0.16, 0.25), rng.uniform(0.4, 0.6), rng.uniform(0.38, 0.52)
    # Sized by the picture's mean side (geometric): the face covers the same share of the picture's area
    # whatever its aspect, as in a square one.
    frame = Frame(cx * width, cy * height, half * math.sqrt(width * height), angle=math.radians(rng.uniform(-12, 12)))
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


