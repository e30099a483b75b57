"""What a prediction returns: a label map with helpers, or class scores with names."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgeforge.contract import CLASSIFICATION, SEGMENTATION
from edgeforge.runtime.postprocess import colour_overlay, palette


@dataclass
class SegmentationResult:
    label_map: np.ndarray  # (H, W) class ids at the input image's size
    id2label: dict[int, str]

    def masks(self) -> dict[str, np.ndarray]:
        """Boolean mask per label present in the image."""
        return {self.id2label[int(i)]: self.label_map == i for i in np.unique(self.label_map)}

    def pixel_shares(self) -> dict[str, float]:
        """Fraction of the image's pixels per label present, largest first."""
        ids, counts = np.unique(self.label_map, return_counts=True)
        shares = {self.id2label[int(i)]: float(c) / self.label_map.size for i, c in zip(ids, counts)}
        return dict(sorted(shares.items(), key=lambda item: -item[1]))

    def label_image(self) -> Image.Image:
        """The label map as a single-channel PNG-ready image (class id per pixel)."""
        return Image.fromarray(self.label_map.astype(np.uint8))

    def overlay(self, image: Image.Image, alpha: float = 0.5) -> Image.Image:
        background = tuple(i for i, name in self.id2label.items() if name.lower() == "background")
        return colour_overlay(image, self.label_map, background, alpha)

    def legend(self) -> dict[str, list[int]]:
        colours = palette(len(self.id2label))
        return {self.id2label[i]: colours[i].tolist() for i in sorted(self.id2label)}

    def to_json(self) -> dict:
        return {"task": SEGMENTATION, "size": list(self.label_map.shape), "labels": self.pixel_shares()}


@dataclass
class ClassificationResult:
    probabilities: np.ndarray  # (num_labels,) softmax scores
    id2label: dict[int, str]

    @property
    def label(self) -> str:
        return self.id2label[int(self.probabilities.argmax())]

    def scores(self) -> dict[str, float]:
        """Label -> probability, highest first."""
        order = np.argsort(-self.probabilities, kind="stable")
        return {self.id2label[int(i)]: float(self.probabilities[i]) for i in order}

    def to_json(self) -> dict:
        return {"task": CLASSIFICATION, "label": self.label, "scores": self.scores()}
