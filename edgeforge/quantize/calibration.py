"""Images for calibration and drift: a folder of the user's images, or a synthetic set for the model's task.

Images are pre-processed by the runtime's own ``Preprocessor`` (the one ``edgeforge.runtime`` runs at
inference), so calibration ranges are measured on exactly the tensors the deployed model will see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader
from PIL import Image
from tqdm import tqdm

from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.images import ImageError, load_image

#: Label-map folders of the dataset layouts ``edgeforge data`` reads: their PNGs are class ids, not photos.
LABEL_FOLDERS = ("labels", "SegmentationClassAug", "CelebAMask-HQ-mask-anno")
LABEL_FOLDER_SUFFIXES = ("_segmentations",)
MAX_LISTED_SKIPS = 5


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
    _warn_skipped(skipped, log)
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


def _warn_skipped(skipped: list[str], log: Callable[[str], None]) -> None:
    for line in skipped[:MAX_LISTED_SKIPS]:
        log(f"warning: skipped {line}")
    if len(skipped) > MAX_LISTED_SKIPS:
        log(f"warning: skipped {len(skipped) - MAX_LISTED_SKIPS} more non-image file(s)")


def synthetic_kind(task: str, labels: list[str]) -> str:
    """The ``edgeforge.data.synth`` kind whose pictures suit a model with these labels: the kind with the
    same label set, else by class count (19 face parts -> faces, 18 person parts -> people), faces otherwise."""
    from edgeforge.data.synth import KINDS, label_names_for

    wanted = [label.lower() for label in labels]
    for kind in KINDS:
        if [name.lower() for name in label_names_for(kind)] == wanted:
            return kind
    if task == "image-classification":
        return "expressions"
    return {19: "faces", 18: "people"}.get(len(labels), "faces")


def synthetic_images(task: str, labels: list[str], count: int, seed: int = 20240601, size: int = 256) -> ImageSet:
    """``count`` procedural images of the kind that suits the model (see ``synthetic_kind``)."""
    from edgeforge.data.synth import make_sample

    kind = synthetic_kind(task, labels)
    images = [make_sample(kind, index, seed=seed, size=size)[0] for index in range(count)]
    names = [f"{kind}-{index}" for index in range(count)]
    source = f"synthetic {kind} (edgeforge.data.synth, seed {seed}, {size}x{size}): no calibration folder given"
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


class PixelValuesReader(CalibrationDataReader):
    """onnxruntime calibration data reader over pre-processed images, one image per batch, with a progress bar."""

    def __init__(self, input_name: str, pixel_values: np.ndarray, description: str = "calibrating"):
        self.input_name = input_name
        self.pixel_values = pixel_values
        self.index = 0
        self.bar = tqdm(total=len(pixel_values), desc=description, unit="image", leave=False)

    def get_next(self) -> dict | None:
        if self.index >= len(self.pixel_values):
            self.bar.close()
            return None
        batch = {self.input_name: self.pixel_values[self.index : self.index + 1]}
        self.index += 1
        self.bar.update(1)
        return batch

    def __len__(self) -> int:
        return len(self.pixel_values)

