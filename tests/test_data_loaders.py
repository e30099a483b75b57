"""Dataset loaders: every layout from tiny fixtures, and a one-line error naming the file for bad data."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image

from edgeforge.data.datasets import open_dataset
from edgeforge.errors import EdgeforgeError
from edgeforge.references import label_names


def save_image(path, size=(16, 16), colour=(200, 120, 40), fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, fmt)
    return path


def save_label(path, values, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(values, dtype=np.uint8), mode=mode).save(path)
    return path


def save_mask(path, rows, cols, size=16, mode="L"):
    """A CelebAMask-HQ part mask: white where the part is."""
    mask = np.zeros((size, size), np.uint8)
    mask[rows, cols] = 255
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(mask).convert(mode).save(path)


def read_all(path, **kwargs):
    return list(open_dataset(path, **kwargs))


# ---- CelebAMask-HQ


def make_celebamask(root):
    """Two images at twice the masks' resolution; image 2001 lives in mask folder 1 (2001 // 2000)."""
    save_image(root / "CelebA-HQ-img" / "0.jpg", (32, 32))
    save_image(root / "CelebA-HQ-img" / "2001.jpg", (32, 32))
    anno = root / "CelebAMask-HQ-mask-anno"
    save_mask(anno / "0" / "00000_skin.png", slice(2, 14), slice(2, 14))
    save_mask(anno / "0" / "00000_nose.png", slice(6, 10), slice(7, 9))
    save_mask(anno / "0" / "00000_eye_g.png", slice(4, 7), slice(3, 13))
    save_mask(anno / "0" / "00000_l_eye.png", slice(5, 6), slice(9, 12))
    save_mask(anno / "0" / "00000_hair.png", slice(0, 4), slice(0, 16), mode="RGB")  # some masks are RGB
    save_mask(anno / "1" / "02001_neck.png", slice(12, 16), slice(5, 11))


def test_celebamask_parts_merge_in_label_id_order(tmp_path):
    make_celebamask(tmp_path)
    dataset = open_dataset(tmp_path)
    assert dataset.format == "celebamask-hq" and dataset.task == "semantic-segmentation" and len(dataset) == 2
    assert dataset.id2label == dict(enumerate(label_names("face-parsing")))
    first, second = dataset

    # Written out by hand: rows 0-3 hair (13) over skin; eye_g (3) rows 4-6 cols 3-12 over skin,
    # except rows 0-3 (hair wins); l_eye (4) at row 5 cols 9-11 over eye_g; nose (2) rows 6-9 cols 7-8
    # under eye_g at row 6 (3 > 2); skin (1) rows 2-13 cols 2-13; the rest background.
    B, S, N, G, L, H = 0, 1, 2, 3, 4, 13
    expected = np.array([
        [H] * 16,
        [H] * 16,
        [H] * 16,
        [H] * 16,
        [B, B, S, G, G, G, G, G, G, G, G, G, G, S, B, B],
        [B, B, S, G, G, G, G, G, G, L, L, L, G, S, B, B],
        [B, B, S, G, G, G, G, G, G, G, G, G, G, S, B, B],
        [B, B, S, S, S, S, S, N, N, S, S, S, S, S, B, B],
        [B, B, S, S, S, S, S, N, N, S, S, S, S, S, B, B],
        [B, B, S, S, S, S, S, N, N, S, S, S, S, S, B, B],
        [B, B, S, S, S, S, S, S, S, S, S, S, S, S, B, B],
        [B, B, S, S, S, S, S, S, S, S, S, S, S, S, B, B],
        [B, B, S, S, S, S, S, S, S, S, S, S, S, S, B, B],
        [B, B, S, S, S, S, S, S, S, S, S, S, S, S, B, B],
        [B] * 16,
        [B] * 16,
    ], dtype=np.uint8)
    assert np.array_equal(first.label, expected)
    assert first.image.size == (16, 16)  # downscaled to the masks' resolution
    assert first.path.name == "0.jpg"

    assert second.path.name == "2001.jpg"
    assert set(np.unique(second.label).tolist()) == {0, 17}  # neck only


def test_celebamask_image_without_masks_is_an_error(tmp_path):
    make_celebamask(tmp_path)
    save_image(tmp_path / "CelebA-HQ-img" / "7.jpg", (32, 32))
    with pytest.raises(EdgeforgeError, match=r"7\.jpg has no masks"):
        open_dataset(tmp_path)


# ---- ATR, LIP, plain pairs


def test_atr_palette_labels_are_read_as_class_ids(tmp_path):
    values = np.array([[0, 1, 2, 3], [4, 17, 255, 0], [1, 1, 1, 1], [0, 0, 0, 0]], np.uint8)  # 255 = ignore
    save_image(tmp_path / "JPEGImages" / "997_1.jpg", (4, 4))
    label = Image.fromarray(values, mode="P")
    label.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0] + [60, 60, 60] * 252)
    (tmp_path / "SegmentationClassAug").mkdir()
    label.save(tmp_path / "SegmentationClassAug" / "997_1.png")

    dataset = open_dataset(tmp_path)
    assert dataset.format == "atr" and dataset.id2label == dict(enumerate(label_names("clothes-parsing")))
    (sample,) = dataset
    assert sample.label.dtype == np.uint8 and np.array_equal(sample.label, values)
    assert sample.image.mode == "RGB" and sample.image.size == (4, 4)


def make_lip(root):
    for split, name in (("train", "a"), ("val", "b")):
        save_image(root / "TrainVal_images" / f"{split}_images" / f"{name}.jpg", (5, 3))
        save_label(root / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{name}.png",
                   np.full((3, 5), 19))


def test_lip_split_folders(tmp_path):
    make_lip(tmp_path)
    dataset = open_dataset(tmp_path)
    assert dataset.format == "lip" and len(dataset) == 2 and dataset.id2label is None
    assert [s.path.name for s in dataset] == ["a.jpg", "b.jpg"]
    (val,) = open_dataset(tmp_path, split="val")
    assert val.path.name == "b.jpg" and val.label.shape == (3, 5) and int(val.label[0, 0]) == 19


def test_lip_with_a_label_set_checks_the_values(tmp_path):
    make_lip(tmp_path)
    with pytest.raises(EdgeforgeError, match=r"a\.png has values 19"):
        read_all(tmp_path, labels=[f"class{i}" for i in range(10)])


def test_image_label_pairs_match_by_stem(tmp_path):
    for stem, value in (("x", 1), ("y", 2)):
        save_image(tmp_path / "images" / f"{stem}.png", (6, 4), fmt="PNG")
        save_label(tmp_path / "labels" / f"{stem}.png", np.full((4, 6), value))
    dataset = open_dataset(tmp_path, labels=["bg", "one", "two"])
    assert dataset.format == "image-label-pairs" and dataset.has_labels
    assert dataset.id2label == {0: "bg", 1: "one", 2: "two"}
    assert [int(s.label[0, 0]) for s in dataset] == [1, 2]


# ---- classification and unlabeled


def test_image_folder_classes_follow_labels_then_sorted_names(tmp_path):
    save_image(tmp_path / "cat" / "1.png", fmt="PNG")
    save_image(tmp_path / "dog" / "2.png", fmt="PNG")
    save_image(tmp_path / "dog" / "3.jpg")
    alphabetical = open_dataset(tmp_path)
    assert alphabetical.format == "image-folder" and alphabetical.task == "image-classification"
    assert alphabetical.id2label == {0: "cat", 1: "dog"}
    assert sorted((s.path.name, s.label) for s in alphabetical) == [("1.png", 0), ("2.png", 1), ("3.jpg", 1)]

    ordered = open_dataset(tmp_path, labels=["dog", "bird", "cat"])
    assert ordered.id2label == {0: "dog", 1: "bird", 2: "cat"}
    assert sorted(ordered.targets) == [0, 0, 2]


def test_image_folder_with_an_unknown_class_is_an_error(tmp_path):
    save_image(tmp_path / "cat" / "1.png", fmt="PNG")
    save_image(tmp_path / "zebra" / "2.png", fmt="PNG")
    with pytest.raises(EdgeforgeError, match="zebra"):
        open_dataset(tmp_path, labels=["cat", "dog"])


def test_unlabeled_folder(tmp_path):
    save_image(tmp_path / "b.jpg")
    save_image(tmp_path / "a.png", fmt="PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    dataset = open_dataset(tmp_path)
    assert dataset.format == "unlabeled" and not dataset.has_labels and dataset.task is None
    assert [(s.path.name, s.label) for s in dataset] == [("a.png", None), ("b.jpg", None)]


def test_images_without_labels_folder_is_unlabeled(tmp_path):
    save_image(tmp_path / "images" / "a.jpg")
    dataset = open_dataset(tmp_path)
    assert dataset.format == "unlabeled" and len(dataset) == 1


def test_exif_orientation_is_applied_and_images_become_rgb(tmp_path):
    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("L", (20, 10), 128).save(path, exif=exif.tobytes())
    (sample,) = open_dataset(tmp_path)
    assert sample.image.mode == "RGB" and sample.image.size == (10, 20)


def test_a_pil_image_is_turned_upright_and_an_upright_one_is_not_copied(tmp_path):
    from edgeforge.runtime.images import load_image

    path = tmp_path / "photo.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    Image.new("RGB", (20, 10), (200, 10, 10)).save(path, exif=exif.tobytes())
    with Image.open(path) as rotated:
        assert load_image(rotated).size == (10, 20)
    upright = Image.new("RGB", (20, 10))
    assert load_image(upright) is upright  # nothing to turn: the caller's image, not a megabyte-per-call copy


def test_iteration_is_lazy(tmp_path):
    """Listing must not decode: a corrupt file only fails when its sample is read."""
    save_image(tmp_path / "a.png", fmt="PNG")
    (tmp_path / "b.png").write_bytes(b"not a png")
    dataset = open_dataset(tmp_path)
    assert len(dataset) == 2
    assert dataset[0].image.size == (16, 16)
    with pytest.raises(EdgeforgeError):
        dataset[1]


# ---- bad data: one line naming the file


def test_mask_of_another_size_than_its_image(tmp_path):
    save_image(tmp_path / "images" / "a.png", (8, 8), fmt="PNG")
    save_label(tmp_path / "labels" / "a.png", np.zeros((6, 8)))
    with pytest.raises(EdgeforgeError, match=r"labels/a\.png is 8x6 but its image a\.png is 8x8"):
        read_all(tmp_path)


def test_label_values_outside_the_label_set(tmp_path):
    save_image(tmp_path / "JPEGImages" / "a.jpg", (4, 4))
    save_label(tmp_path / "SegmentationClassAug" / "a.png", np.full((4, 4), 30))
    with pytest.raises(EdgeforgeError, match=r"SegmentationClassAug/a\.png has values 30 outside the 18 classes"):
        read_all(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(EdgeforgeError, match=f"no images found in {re.escape(str(tmp_path))}$"):
        open_dataset(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    with pytest.raises(EdgeforgeError, match="no images found in .*images"):
        open_dataset(tmp_path)


def test_missing_folder(tmp_path):
    with pytest.raises(EdgeforgeError, match="does not exist"):
        open_dataset(tmp_path / "nope")


def test_corrupt_image(tmp_path):
    save_label(tmp_path / "labels" / "a.png", np.zeros((4, 4)))
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    with pytest.raises(EdgeforgeError, match=r"cannot read image .*images/a\.jpg"):
        read_all(tmp_path)


def test_truncated_label(tmp_path):
    save_image(tmp_path / "images" / "a.png", (4, 4), fmt="PNG")
    good = save_label(tmp_path / "labels" / "a.png", np.zeros((4, 4)))
    good.write_bytes(good.read_bytes()[:30])
    with pytest.raises(EdgeforgeError, match=r"cannot read label .*labels/a\.png"):
        read_all(tmp_path)


def test_image_without_a_mask(tmp_path):
    for stem in ("a", "b"):
        save_image(tmp_path / "images" / f"{stem}.png", (4, 4), fmt="PNG")
    save_label(tmp_path / "labels" / "a.png", np.zeros((4, 4)))
    with pytest.raises(EdgeforgeError, match=r"image .*images/b\.png has no label"):
        open_dataset(tmp_path)


def test_colour_label_png_is_rejected(tmp_path):
    save_image(tmp_path / "images" / "a.png", (2, 2), fmt="PNG")
    colour = np.array([[[255, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 0, 0]]], np.uint8)
    save_label(tmp_path / "labels" / "a.png", colour, mode="RGB")
    with pytest.raises(EdgeforgeError, match=r"labels/a\.png is a RGB colour image"):
        read_all(tmp_path)


def test_errors_are_one_line(tmp_path):
    (tmp_path / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(EdgeforgeError) as caught:
        read_all(tmp_path)
    assert "\n" not in str(caught.value) and "a.jpg" in str(caught.value)
