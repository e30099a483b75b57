"""Synthetic datasets: determinism, label coverage, pixel-exact masks, on-disk layout, CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from edgeforge.cli import data as data_cli
from edgeforge.data import synth
from edgeforge.data.datasets import open_dataset
from edgeforge.data.synth import make_sample, write_dataset
from edgeforge.data.synth.faces import FACE
from edgeforge.errors import EdgeforgeError
from edgeforge.references import label_names

SMALL = 96  # enough pixels for every part to show, small enough to be fast


def files_of(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def label_edges_without_colour_edges(image: Image.Image, label: np.ndarray) -> tuple[int, int]:
    """(label boundaries with no colour change across them, all label boundaries), between 4-neighbours."""
    rgb = np.asarray(image).astype(int)
    unexplained = total = 0
    for axis in (0, 1):
        label_edge = np.diff(label.astype(int), axis=axis) != 0
        colour_edge = np.abs(np.diff(rgb, axis=axis)).sum(axis=-1) != 0
        total += int(label_edge.sum())
        unexplained += int((label_edge & ~colour_edge).sum())
    return unexplained, total


# ---- determinism


@pytest.mark.parametrize("kind", synth.KINDS)
def test_same_seed_same_sample_other_seed_other_sample(kind):
    image_a, label_a = make_sample(kind, 5, seed=1, size=SMALL)
    image_b, label_b = make_sample(kind, 5, seed=1, size=SMALL)
    image_c, _ = make_sample(kind, 5, seed=2, size=SMALL)
    assert image_a.tobytes() == image_b.tobytes()
    assert np.array_equal(label_a, label_b)
    assert image_a.tobytes() != image_c.tobytes()


def test_written_datasets_are_byte_identical_for_the_same_seed(tmp_path):
    write_dataset("faces", 3, tmp_path / "a", seed=7, size=64, progress=False)
    write_dataset("faces", 3, tmp_path / "b", seed=7, size=64, progress=False)
    write_dataset("faces", 3, tmp_path / "c", seed=8, size=64, progress=False)
    a, b, c = (files_of(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["images/00000.jpg"] != c["images/00000.jpg"]
    assert a["labels/00000.png"] != c["labels/00000.png"]


def test_a_sample_does_not_depend_on_the_others():
    """Training code makes samples on the fly, in any order: index i must not depend on i-1."""
    late_first = make_sample("people", 9, seed=3, size=64)[0].tobytes()
    make_sample("people", 0, seed=3, size=64)
    assert make_sample("people", 9, seed=3, size=64)[0].tobytes() == late_first


# ---- label coverage


@pytest.mark.parametrize("kind, reference", [("faces", "face-parsing"), ("people", "clothes-parsing")])
def test_every_class_appears_in_forty_samples(kind, reference):
    seen = set()
    for index in range(40):
        image, label = make_sample(kind, index, seed=0, size=SMALL)
        assert image.mode == "RGB" and image.size == (SMALL, SMALL)
        assert label.dtype == np.uint8 and label.shape == (SMALL, SMALL)
        seen.update(np.unique(label).tolist())
    assert seen == set(range(len(label_names(reference))))


def test_expressions_cover_every_emotion_in_balance():
    labels = [make_sample("expressions", i, size=64)[1] for i in range(14)]
    assert all(isinstance(label, int) for label in labels)
    assert sorted(labels) == sorted(list(range(7)) * 2)


def test_expression_part_maps_come_with_the_same_sample():
    """The training-only part maps: same image and emotion as the dataset's sample, and the face parts an
    emotion is read from (eyes, brows, mouth, lips) drawn in the face-parsing label set."""
    parts_ids = {name: i for i, name in enumerate(label_names("face-parsing"))}
    for index in range(7):
        image, emotion, parts = synth.make_expression_sample(index, seed=3, size=SMALL)
        same_image, same_emotion = make_sample("expressions", index, seed=3, size=SMALL)
        assert emotion == same_emotion and np.array_equal(np.asarray(image), np.asarray(same_image))
        assert parts.shape == (SMALL, SMALL) and parts.dtype == np.uint8
        assert {parts_ids[n] for n in ("skin", "l_eye", "r_eye", "l_brow", "r_brow", "u_lip", "l_lip")} <= set(
            np.unique(parts).tolist())


# ---- pixel-exact masks


@pytest.mark.parametrize("kind", ["faces", "people"])
def test_every_label_boundary_is_a_drawn_colour_boundary(kind):
    """Without camera effects, two neighbouring pixels with different labels were drawn by different
    shapes, which have different colours. A mask shifted or rasterized differently from the image
    by even one pixel puts label boundaries inside flat colour regions."""
    for index in range(12):
        image, label = make_sample(kind, index, seed=0, size=SMALL, camera_effects=False)
        unexplained, total = label_edges_without_colour_edges(image, label)
        assert total > 100
        assert unexplained == 0, f"{kind} sample {index}: {unexplained}/{total} label edges inside flat colour"


def test_the_boundary_check_catches_a_one_pixel_shift():
    image, label = make_sample("faces", 0, seed=0, size=SMALL, camera_effects=False)
    unexplained, total = label_edges_without_colour_edges(image, np.roll(label, 1, axis=1))
    assert unexplained > total / 10


@pytest.mark.parametrize("kind, solid_parts", [
    ("faces", ["skin", "neck"]),
    ("people", ["Pants", "Skirt", "Left-leg", "Right-leg", "Scarf", "Upper-clothes"]),
])
def test_solid_parts_have_exactly_one_colour(kind, solid_parts):
    """These parts are drawn in one flat colour, so their label region must hold exactly one colour:
    no background, neighbouring part or antialiased edge pixel may be labelled as them."""
    ids = {name: i for i, name in enumerate(synth.label_names_for(kind))}
    checked = 0
    for index in range(12):
        image, label = make_sample(kind, index, seed=0, size=SMALL, camera_effects=False)
        pixels = np.asarray(image)
        for part in solid_parts:
            region = pixels[label == ids[part]]
            if len(region):
                assert len(np.unique(region, axis=0)) == 1, f"{kind} sample {index}: {part} is not one colour"
                checked += 1
    assert checked >= 12


def test_camera_effects_change_the_image_but_not_the_labels():
    for index in range(6):
        clean_image, clean_label = make_sample("faces", index, size=SMALL, camera_effects=False)
        image, label = make_sample("faces", index, size=SMALL)
        assert np.array_equal(label, clean_label)
        assert image.tobytes() != clean_image.tobytes()


def test_skin_pixels_keep_the_skin_colour_under_camera_effects():
    """After lighting, blur and noise the skin region is still close to its drawn colour on average."""
    clean_image, label = make_sample("faces", 2, size=SMALL, camera_effects=False)
    image, _ = make_sample("faces", 2, size=SMALL)
    skin = label == FACE["skin"]
    drawn = np.asarray(clean_image)[skin].astype(float).mean(axis=0)
    seen = np.asarray(image)[skin].astype(float).mean(axis=0)
    assert np.abs(seen - drawn).max() < 0.3 * drawn.max() + 10


# ---- on-disk layout


def test_parsing_layout_round_trips_through_the_loader(tmp_path):
    out = tmp_path / "faces"
    summary = write_dataset("faces", 4, out, seed=5, size=64, progress=False)
    assert summary["n"] == 4 and summary["images_per_second"] > 0
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i:05d}.jpg" for i in range(4)]
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["kind"] == "faces" and meta["seed"] == 5 and meta["n"] == 4 and meta["size"] == 64
    assert meta["id2label"]["13"] == "hair" and meta["generator_version"] == synth.GENERATOR_VERSION
    with Image.open(out / "labels" / "00000.png") as label_png:
        assert label_png.mode == "L"

    dataset = open_dataset(out)
    assert dataset.format == "image-label-pairs" and dataset.task == "semantic-segmentation"
    assert dataset.id2label == dict(enumerate(label_names("face-parsing")))
    for index, sample in enumerate(dataset):
        assert np.array_equal(sample.label, make_sample("faces", index, seed=5, size=64)[1])
        assert sample.image.size == (64, 64)


def test_expressions_layout_is_one_folder_per_class(tmp_path):
    out = tmp_path / "expr"
    write_dataset("expressions", 9, out, seed=0, size=48, progress=False)
    names = label_names("facial-emotions")
    assert (out / names[0] / "00000.png").is_file() and (out / names[1] / "00008.png").is_file()
    assert all((out / name).is_dir() for name in names)
    dataset = open_dataset(out)
    assert dataset.format == "image-folder" and dataset.task == "image-classification"
    assert dataset.id2label == dict(enumerate(names))  # dataset.json order, not alphabetical
    assert dataset.targets == [i % 7 for i in range(9)]


def test_refuses_to_replace_a_folder_that_is_not_a_synthetic_dataset(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("do not delete")
    with pytest.raises(EdgeforgeError, match="not an edgeforge synthetic dataset"):
        write_dataset("faces", 1, precious, size=64, progress=False)
    assert (precious / "thesis.tex").read_text() == "do not delete"


def test_replaces_an_earlier_synthetic_dataset(tmp_path):
    write_dataset("faces", 3, tmp_path / "d", size=64, progress=False)
    write_dataset("faces", 1, tmp_path / "d", size=64, progress=False)
    assert len(list((tmp_path / "d" / "images").iterdir())) == 1


def test_an_interrupted_run_leaves_nothing_behind(tmp_path, monkeypatch):
    real = synth.make_sample

    def failing(kind, index, **kwargs):
        if index == 2:
            raise KeyboardInterrupt
        return real(kind, index, **kwargs)

    monkeypatch.setattr(synth.writer, "make_sample", failing)  # the writer draws through its own import
    with pytest.raises(KeyboardInterrupt):
        write_dataset("faces", 5, tmp_path / "out", size=64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(EdgeforgeError, match="unknown synthetic dataset kind"):
        make_sample("cats", 0)
    with pytest.raises(EdgeforgeError, match="too small"):
        make_sample("faces", 0, size=8)


# ---- CLI


def run_cli(*argv):
    parser = argparse.ArgumentParser(prog="edgeforge")
    data_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(list(argv))
    return args.func(args)


def test_cli_synth_and_info(tmp_path, capsys):
    out = tmp_path / "faces"
    assert run_cli("data", "synth", "faces", "-n", "4", "-o", str(out), "--size", "64", "--no-progress") == 0
    assert "images/s" in capsys.readouterr().out
    assert len(list((out / "labels").iterdir())) == 4

    assert run_cli("data", "info", str(out)) == 0
    report = capsys.readouterr().out
    assert "image-label-pairs" in report and "samples: 4" in report and "skin" in report


# ---- sizes: non-square and mixed


@pytest.mark.parametrize("kind", ["faces", "people"])
def test_non_square_samples_have_labels_of_their_size_that_follow_the_pixels(kind):
    for size in ((96, 64), (64, 128)):
        image, label = make_sample(kind, 3, seed=2, size=size, camera_effects=False)
        assert image.size == size and label.shape == (size[1], size[0])
        unexplained, total = label_edges_without_colour_edges(image, label)
        assert total > 0 and unexplained == 0
        present = set(np.unique(label)) - {0}
        assert len(present) >= 5  # the subject is in the picture, not cut away by the new framing


def test_people_in_a_non_square_picture_keep_natural_proportions():
    """A square canvas is an ATR portrait squashed to a square (the person stretched sideways); a tall
    picture is the photo itself: the person narrower relative to its height than in the square one."""

    def width_over_height(label):
        rows, cols = np.nonzero(label)
        return (cols.max() - cols.min() + 1) / (rows.max() - rows.min() + 1)

    square = np.mean([width_over_height(make_sample("people", i, seed=4, size=128)[1]) for i in range(12)])
    tall = np.mean([width_over_height(make_sample("people", i, seed=4, size=(128, 256))[1]) for i in range(12)])
    assert tall < square / 1.2


def test_mixed_sizes_are_drawn_per_sample_and_deterministic():
    sizes = [make_sample("expressions", i, seed=9, size="mixed")[0].size for i in range(40)]
    assert len(set(sizes)) >= 8 and all(size in synth.MIXED_SIZES for size in sizes)
    assert sizes == [make_sample("expressions", i, seed=9, size="mixed")[0].size for i in range(40)]
    # the scene at the picked size is the scene drawn at that size directly
    image, emotion = make_sample("expressions", 5, seed=9, size="mixed")
    direct, same_emotion = make_sample("expressions", 5, seed=9, size=image.size)
    assert emotion == same_emotion and image.tobytes() == direct.tobytes()


def test_sizes_parse_and_bad_ones_are_one_line_errors():
    assert synth.parse_size("256") == 256 and synth.parse_size("384x256") == (384, 256)
    assert synth.parse_size(" Mixed ") == "mixed" and synth.size_text((384, 256)) == "384x256"
    for bad in ("abc", "384x", "1x2x3", "-5"):
        with pytest.raises(EdgeforgeError, match="not a side"):
            synth.parse_size(bad)
    with pytest.raises(EdgeforgeError, match="too small"):
        make_sample("faces", 0, size=(256, 16))


def test_cli_synth_non_square_and_mixed(tmp_path, capsys):
    out = tmp_path / "people"
    assert run_cli("data", "synth", "people", "-n", "3", "-o", str(out), "--size", "96x64", "--no-progress") == 0
    assert {Image.open(p).size for p in (out / "images").iterdir()} == {(96, 64)}
    assert json.loads((out / "dataset.json").read_text())["size"] == [96, 64]
    mixed = tmp_path / "mixed"
    assert run_cli("data", "synth", "faces", "-n", "6", "-o", str(mixed), "--size", "mixed", "--no-progress") == 0
    assert json.loads((mixed / "dataset.json").read_text())["size"] == "mixed"
    for label in (mixed / "labels").iterdir():  # every label map has its image's size
        assert Image.open(label).size == Image.open(mixed / "images" / f"{label.stem}.jpg").size
    with pytest.raises(EdgeforgeError, match="not a side"):
        run_cli("data", "synth", "faces", "-n", "1", "-o", str(tmp_path / "x"), "--size", "big")
    assert not (tmp_path / "x").exists()
