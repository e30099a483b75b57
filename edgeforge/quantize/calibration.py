"""Images for calibration and drift: a folder of the user's images, or a synthetic set for the model's task.

Images are pre-processed by the runtime's own ``Preprocessor`` (the one ``edgeforge.runtime`` runs at
inference), so calibration ranges are measured on exactly the tensors the deployed model will see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from edgeforge.contract import CLASSIFICATION
from edgeforge.data.datasets import warn_skipped
from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.images import ImageError, load_image

#: Label-map folders of the dataset layouts ``edgeforge data`` reads: their PNGs are class ids, not photos.
LABEL_FOLDERS = ("labels", "SegmentationClassAug", "CelebAMask-HQ-mask-anno")
LABEL_FOLDER_SUFFIXES = ("_segmentations",)


DEFAULT_NUM_IMAGES = 8  # calibration images
#: Drift is measured on images the calibration did not see: a budget checked on the calibration images
#: themselves reads low (measured: 0.49 on them vs 0.56 points on other images for the same variant).
#: How many: ``confidence.default_eval_images`` (enough for the bound); this many when no bound is asked.
DEFAULT_EVAL_IMAGES = 16


@dataclass(frozen=True)
class Calibration:
    """Which images calibrate and which check the budget: the first ``num_images`` readable images of
    ``folder`` calibrate, the next ``eval_images`` are held out for drift; no folder: synthetic images
    suited to the model's labels."""

    folder: str | Path | None = None
    num_images: int = DEFAULT_NUM_IMAGES
    eval_images: int | None = None  # None: as many as the budget's bound needs (confidence.default_eval_images)

    def __post_init__(self):
        if isinstance(self.num_images, bool) or not isinstance(self.num_images, int) or self.num_images < 1:
            raise EdgeforgeError(f"the number of calibration images must be at least 1, not {self.num_images}")
        if self.eval_images is None:
            return
        if isinstance(self.eval_images, bool) or not isinstance(self.eval_images, int) or self.eval_images < 0:
            raise EdgeforgeError(f"the number of evaluation images must be 0 or more, not {self.eval_images}")


@dataclass
class ImageSet:
    images: list[Image.Image]  # RGB
    names: list[str]
    source: str  # where they came from, for the report and the manifest
    skipped: list[str]  # files that were not usable images


def folder_images(folder: str | Path, count: int, log: Callable[[str], None] = print) -> ImageSet:
    """The first ``count`` readable images below ``folder`` (sorted, recursive); other files are skipped
    with a warning, and a folder with no usable image is refused."""
    root = Path(folder)
    if not root.exists():
        raise EdgeforgeError(f"calibration folder {root} does not exist")
    if not root.is_dir():
        raise EdgeforgeError(f"calibration path {root} is not a folder of images")
    files = candidate_files(root)
    if not files:
        raise EdgeforgeError(f"calibration folder {root} is empty")
    images, names, skipped = [], [], []
    for path in files:
        if len(images) == count:
            break
        try:
            images.append(load_image(path))
        except ImageError as exc:
            skipped.append(f"{path.relative_to(root)}: {str(exc).split(': ', 1)[-1]}")
            continue
        names.append(str(path.relative_to(root)))
    warn_skipped(skipped, log)
    if not images:
        raise EdgeforgeError(f"calibration folder {root} has no usable image ({len(skipped)} other file(s) skipped)")
    return ImageSet(images, names, f"folder {root}", skipped)


def candidate_files(root: Path) -> list[Path]:
    """Non-hidden files below ``root`` outside label-map folders, in a stable order."""
    files = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") for p in parts) or not path.is_file():
            continue
        if any(p in LABEL_FOLDERS or p.endswith(LABEL_FOLDER_SUFFIXES) for p in parts[:-1]):
            continue
        files.append(path)
    return files


def synthetic_kind(task: str, labels: list[str]) -> str:
    """The ``edgeforge.data.synth`` kind whose pictures suit a model with these labels: the kind with the
    same label set, else by class count (19 face parts -> faces, 18 person parts -> people), faces otherwise."""
    from edgeforge.data.synth import KINDS, label_names_for

    wanted = [label.lower() for label in labels]
    for kind in KINDS:
        if [name.lower() for name in label_names_for(kind)] == wanted:
            return kind
    if task == CLASSIFICATION:
        return "expressions"
    return {19: "faces", 18: "people"}.get(len(labels), "faces")


def synthetic_images(task: str, labels: list[str], count: int, seed: int = 20240601, size="mixed") -> ImageSet:
    """``count`` procedural images of the kind that suits the model (see ``synthetic_kind``), by default at
    mixed sizes and aspects (``edgeforge.data.synth.MIXED_SIZES``): a budget checked at one size says little
    about another."""
    from edgeforge.data.synth import make_sample, size_text

    kind = synthetic_kind(task, labels)
    images = [make_sample(kind, index, seed=seed, size=size)[0] for index in range(count)]
    names = [f"{kind}-{index}" for index in range(count)]
    source = f"synthetic {kind} (edgeforge.data.synth, seed {seed}, {size_text(size)}): no calibration folder given"
    return ImageSet(images, names, source, [])


def split_images(images: ImageSet, calibration_count: int) -> tuple[ImageSet, ImageSet]:
    """(calibration set, evaluation set): the first ``calibration_count`` images, then the rest; when no
    image is left over, the evaluation set *is* the calibration set (the same object)."""
    head = ImageSet(images.images[:calibration_count], images.names[:calibration_count], images.source, images.skipped)
    if len(images.images) <= calibration_count:
        return head, head
    return head, ImageSet(images.images[calibration_count:], images.names[calibration_count:], images.source, [])


def pixel_values_of(preprocessor, images: list[Image.Image]) -> np.ndarray:
    """(N, 3, H, W) float32 exactly as the runtime feeds the model."""
    return preprocessor(images)
