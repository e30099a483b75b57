"""Read segmentation and classification datasets from disk, lazily, in their published layouts.

``open_dataset(path)`` looks at the folder, recognises one of these layouts, and returns a
``Dataset``: ``len()`` is known up front (only file names are listed); images and labels are
decoded one sample at a time while iterating, so memory stays bounded.

=====================  ===========================================================================
format                 layout
=====================  ===========================================================================
``celebamask-hq``      ``CelebA-HQ-img/<i>.jpg`` + ``CelebAMask-HQ-mask-anno/<i // 2000>/<i:05d>_<part>.png``
``atr``                ``JPEGImages/*.jpg`` + ``SegmentationClassAug/*.png``
``lip``                ``[...]/<split>_images/*.jpg`` + ``[...]/<split>_segmentations/*.png``
``image-label-pairs``  ``images/*`` + ``labels/*.png`` matched by file stem (``edgeforge data synth``)
``image-folder``       ``<class_name>/*`` (classification)
``unlabeled``          images directly in the folder, or ``images/`` without ``labels/`` (label None)
=====================  ===========================================================================

Label maps are uint8 class-id arrays (H, W). Value 255 is accepted in any label map as the
conventional "ignore" index (LIP, ATR tooling and Hugging Face's ``semantic_loss_ignore_index`` use
it); any other value at or beyond the number of classes is an error. Images are opened with their
EXIF orientation applied and converted to RGB. ``Dataset.task`` is ``contract.SEGMENTATION``,
``contract.CLASSIFICATION``, or None for unlabeled images (nothing says which).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from edgeforge.contract import CLASSIFICATION, SEGMENTATION
from edgeforge.data.readers import (
    Entry,
    Sample,
    _read_celebamask,
    _read_classified,
    _read_pair,
    _read_unlabeled,
    _reason,
)
from edgeforge.errors import EdgeforgeError

MAX_LISTED_SKIPS = 5  # warning lines naming skipped inputs; the rest are counted
from edgeforge.jsonfile import read_json_object
from edgeforge.references import label_names

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


# CelebAMask-HQ part names in label-id order (ids 1..18; 0 is background), as the official merge
# script (face_parsing/Data_preprocessing/g_mask.py) lists them.
CELEBAMASK_LABELS = tuple(label_names("face-parsing"))
_CELEBAMASK_FILE = re.compile(r"^(\d+)_([a-z_]+)\.png$")


class Dataset:
    """Samples of one dataset folder; ``len()`` is cheap, reading a sample decodes its files."""

    def __init__(
        self,
        root: Path,
        format: str,
        task: str | None,
        entries: Sequence[Entry],
        read: Callable[[Entry, int | None], Sample],
        id2label: dict[int, str] | None,
        has_labels: bool,
    ):
        self.root = root
        self.format = format
        self.task = task
        self.id2label = id2label
        self.has_labels = has_labels
        self._entries = list(entries)
        self._read = read

    def __len__(self) -> int:
        return len(self._entries)

    def __getitem__(self, index: int) -> Sample:
        return self._read(self._entries[index], len(self.id2label) if self.id2label else None)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]

    @property
    def targets(self) -> list[int] | None:
        """Class id of every sample, without reading any image (classification only)."""
        if self.task != CLASSIFICATION or not self.has_labels:
            return None
        return [entry.label for entry in self._entries]  # type: ignore[misc]

    def __repr__(self) -> str:
        return f"Dataset({str(self.root)!r}, format={self.format!r}, task={self.task!r}, n={len(self)})"

    def without_unreadable(self, limit: int | None = None) -> tuple["Dataset", list[str]]:
        """The first ``limit`` samples (all by default) that read, each decoded once, and one line per
        sample that did not. edgeforge's one policy for inputs: check them before the work that uses
        them, then skip what cannot be read with a warning and a count (``warn_skipped``)."""
        kept, skipped = [], []
        for entry in self._entries[:limit]:
            try:
                self._read(entry, len(self.id2label) if self.id2label else None)
            except EdgeforgeError as exc:
                where = entry.image.relative_to(self.root) if entry.image.is_relative_to(self.root) else entry.image
                skipped.append(f"{where}: {str(exc).split(': ', 1)[-1]}")
                continue
            kept.append(entry)
        return Dataset(self.root, self.format, self.task, kept, self._read, self.id2label, self.has_labels), skipped


def warn_skipped(skipped: list[str], log: Callable[[str], None]) -> None:
    """One warning line per skipped input (the first few), then how many more."""
    for line in skipped[:MAX_LISTED_SKIPS]:
        log(f"warning: skipped {line}")
    if len(skipped) > MAX_LISTED_SKIPS:
        log(f"warning: skipped {len(skipped) - MAX_LISTED_SKIPS} more unreadable input(s)")


def open_dataset(path: str | Path, labels: Sequence[str] | None = None, *, split: str | None = None) -> Dataset:
    """Recognise the layout of the dataset folder ``path`` and return a lazy ``Dataset``.

    ``labels`` names the classes by id. It sets ``id2label`` (and so the range label values are
    checked against), the class order of an image folder, and the id of each CelebAMask-HQ part.
    Without it, the label set is taken from the layout when it implies one (CelebAMask-HQ: the 19
    face-parsing classes; ATR: the 18 clothes-parsing classes; ``dataset.json`` of a synthetic
    dataset) and is otherwise unknown (LIP, plain pairs: values are then not range-checked).
    ``split`` picks one LIP split (``train``/``val``) when the folder holds several.
    """
    root = Path(path)
    if not root.exists():
        raise EdgeforgeError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise EdgeforgeError(f"{root} is not a folder; give the dataset's top folder")
    labels = list(labels) if labels is not None else None

    if (root / "CelebA-HQ-img").is_dir() and (root / "CelebAMask-HQ-mask-anno").is_dir():
        return _open_celebamask(root, labels)
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClassAug").is_dir():
        id2label = _id2label(labels or label_names("clothes-parsing"))
        return _open_pairs(root, "atr", root / "JPEGImages", root / "SegmentationClassAug", id2label)
    lip_pairs = _find_lip_pairs(root, split)
    if lip_pairs:
        return _open_lip(root, lip_pairs, labels)
    if (root / "images").is_dir() and (root / "labels").is_dir():
        id2label = _id2label(labels) if labels else _synthetic_id2label(root)
        return _open_pairs(root, "image-label-pairs", root / "images", root / "labels", id2label)
    if (root / "images").is_dir():
        return _open_unlabeled(root / "images", root)
    if _list_images(root):
        return _open_unlabeled(root, root)
    class_dirs = [d for d in _subfolders(root) if _list_images(d)]
    if class_dirs:
        return _open_image_folder(root, labels)
    raise EdgeforgeError(f"no images found in {root}")


# --------------------------------------------------------------------------------------------------
# Layouts


def _open_celebamask(root: Path, labels: list[str] | None) -> Dataset:
    """One label map per image, merged from the per-part masks.

    Parts are written in label-id order, so a later part overwrites an earlier one where they
    overlap (e.g. l_eye over eye_g, hair over skin), as the official merge script does. The label
    map keeps the masks' resolution (512x512) and the image (1024x1024) is downscaled to it:
    upscaling the masks would add blocky edges, not information, and the reference face-parsing
    processor works at 512 anyway.
    """
    names = labels or list(CELEBAMASK_LABELS)
    part_ids = {name: i for i, name in enumerate(names)}
    masks = _celebamask_masks(root / "CelebAMask-HQ-mask-anno", part_ids)
    entries = []
    for image_path in _list_images(root / "CelebA-HQ-img", "CelebA-HQ-img"):
        if not image_path.stem.isdigit():
            raise EdgeforgeError(f"unexpected CelebA-HQ image name {image_path} (expected <number>.jpg)")
        number = int(image_path.stem)
        parts = masks.get(number)
        if not parts:
            expected = root / "CelebAMask-HQ-mask-anno" / str(number // 2000) / f"{number:05d}_<part>.png"
            raise EdgeforgeError(f"image {image_path} has no masks (expected {expected})")
        entries.append((number, Entry(image_path, tuple(sorted(parts)))))
    entries.sort(key=lambda pair: pair[0])
    return Dataset(root, "celebamask-hq", SEGMENTATION, [e for _, e in entries], _read_celebamask,
                   _id2label(names), has_labels=True)


def _celebamask_masks(anno: Path, part_ids: dict[str, int]) -> dict[int, list[tuple[int, Path]]]:
    """image number -> [(class id, mask path)], from one listing of the annotation folders."""
    masks: dict[int, list[tuple[int, Path]]] = {}
    for folder in _subfolders(anno):
        for mask_path in folder.iterdir():
            match = _CELEBAMASK_FILE.match(mask_path.name)
            if match is None:
                continue  # not a mask (e.g. a stray readme)
            number, part = int(match.group(1)), match.group(2)
            if part not in part_ids:
                raise EdgeforgeError(f"mask {mask_path} names part {part!r}, which is not in the label set")
            masks.setdefault(number, []).append((part_ids[part], mask_path))
    return masks


def _find_lip_pairs(root: Path, split: str | None) -> list[tuple[Path, Path]]:
    """LIP ships ``<split>_images`` and ``<split>_segmentations`` folders, possibly one level down
    (``TrainVal_images/train_images``, ``TrainVal_parsing_annotations/train_segmentations``)."""
    candidates = [root, *_subfolders(root)]
    folders = [d for c in candidates for d in _subfolders(c)]
    image_dirs = {d.name.removesuffix("_images"): d for d in folders if d.name.endswith("_images")}
    label_dirs = {d.name.removesuffix("_segmentations"): d for d in folders if d.name.endswith("_segmentations")}
    pairs = [(image_dirs[s], label_dirs[s]) for s in sorted(image_dirs) if s in label_dirs]
    if split is not None and pairs:
        pairs = [(i, l) for i, l in pairs if i.name == f"{split}_images"]
        if not pairs:
            raise EdgeforgeError(f"{root} has no LIP split {split!r} ({split}_images + {split}_segmentations)")
    return pairs


def _open_lip(root: Path, pairs: list[tuple[Path, Path]], labels: list[str] | None) -> Dataset:
    entries = [e for image_dir, label_dir in pairs for e in _pair_entries(image_dir, label_dir)]
    return Dataset(root, "lip", SEGMENTATION, entries, _read_pair, _id2label(labels) if labels else None, True)


def _open_pairs(root: Path, format: str, image_dir: Path, label_dir: Path, id2label: dict[int, str] | None) -> Dataset:
    return Dataset(root, format, SEGMENTATION, _pair_entries(image_dir, label_dir), _read_pair, id2label, True)


def _pair_entries(image_dir: Path, label_dir: Path) -> list[Entry]:
    """Match each image to the label PNG with the same stem; an image without one is an error."""
    label_files = {p.stem: p for p in label_dir.iterdir() if p.suffix.lower() == ".png" and not p.name.startswith(".")}
    entries = []
    for image_path in _list_images(image_dir, image_dir.name):
        label_path = label_files.get(image_path.stem)
        if label_path is None:
            raise EdgeforgeError(f"image {image_path} has no label (expected {label_dir / (image_path.stem + '.png')})")
        entries.append(Entry(image_path, label_path))
    return entries


def _open_image_folder(root: Path, labels: list[str] | None) -> Dataset:
    """Class ids follow ``labels``, else the ``dataset.json`` of a synthetic dataset, else sorted names."""
    folders = {d.name: d for d in _subfolders(root)}
    names = labels or _synthetic_names(root) or sorted(n for n, d in folders.items() if _list_images(d))
    class_ids = {name: i for i, name in enumerate(names)}
    entries = []
    for folder_name, folder in sorted(folders.items()):
        images = _list_images(folder)
        if not images:
            continue
        if folder_name not in class_ids:
            raise EdgeforgeError(f"class folder {folder} is not in the label set ({', '.join(names)})")
        entries.extend(Entry(p, class_ids[folder_name]) for p in images)
    entries.sort(key=lambda e: (e.image.name, e.label))  # interleave classes, stable across runs
    return Dataset(root, "image-folder", CLASSIFICATION, entries, _read_classified, _id2label(names), True)


def _open_unlabeled(image_dir: Path, root: Path) -> Dataset:
    entries = [Entry(p) for p in _list_images(image_dir, image_dir.name)]
    return Dataset(root, "unlabeled", None, entries, _read_unlabeled, None, has_labels=False)


# --------------------------------------------------------------------------------------------------
# Reading one sample


def _list_images(folder: Path, what: str | None = None) -> list[Path]:
    """Image files directly in ``folder``, sorted; with ``what``, an empty folder is an error."""
    with os.scandir(folder) as found:  # scandir knows file types without a stat per file
        images = sorted(Path(e.path) for e in found if e.is_file() and not e.name.startswith(".")
                        and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS)
    if what is not None and not images:
        raise EdgeforgeError(f"no images found in {folder}")
    return images


def _subfolders(folder: Path) -> list[Path]:
    with os.scandir(folder) as found:
        return sorted(Path(e.path) for e in found if e.is_dir() and not e.name.startswith("."))


def _id2label(names: Sequence[str] | None) -> dict[int, str] | None:
    return {i: name for i, name in enumerate(names)} if names else None


def _synthetic_names(root: Path) -> list[str] | None:
    """Class names from the ``dataset.json`` that ``edgeforge data synth`` writes, if there is one."""
    path = root / "dataset.json"
    if not path.is_file():
        return None
    try:
        id2label = read_json_object(path)["id2label"]
        return [id2label[str(i)] for i in range(len(id2label))]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EdgeforgeError(f"cannot read {path}: {_reason(exc)}") from None


def _synthetic_id2label(root: Path) -> dict[int, str] | None:
    return _id2label(_synthetic_names(root))
