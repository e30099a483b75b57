"""People scenes for clothes / human parsing (ATR-like framing)."""

from __future__ import annotations

import math

import numpy as np

from edgeforge.data.synth.drawing import (
    HAIR_COLOURS,
    JEWEL_COLOURS,
    SKIN_TONES,
    Canvas,
    Colour,
    Frame,
    Pen,
    distinct_colour,
    pick,
    random_blob,
    random_colour,
    shade,
)
from edgeforge.data.synth.faces import draw_hair_top, draw_hat
from edgeforge.references import label_names

PERSON = {name: i for i, name in enumerate(label_names("clothes-parsing"))}


# --------------------------------------------------------------------------------------------------
# People (local unit: one eighth of the figure's height; head top at y=0, soles at y=8)


def draw_person_scene(canvas: Canvas, rng: np.random.Generator) -> None:
    """A full figure the picture's height nearly holds. A square canvas stands for an ATR portrait photo
    (width 0.65-0.8 of its height) already resized to a square, as the model sees it after the image
    processor, which stretches the person sideways by 1 / aspect; any other canvas is the photo itself,
    the person at natural proportions (the processor then stretches it by whatever the aspect is)."""
    width, height = canvas.width, canvas.height
    figure_height = rng.uniform(0.82, 0.97) * height
    photo_aspect = rng.uniform(0.65, 0.8)  # drawn for every canvas, so a square one stays as it always was
    stretch = 1 / photo_aspect if width == height else 1.0
    cx = rng.uniform(0.4, 0.6) * width
    top = rng.uniform(0.1, 0.9) * (height - figure_height)
    # Rotate about the figure's middle: the frame origin is the head top, so shift the centre.
    angle = math.radians(rng.uniform(-5, 5))
    unit = figure_height / 8
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
