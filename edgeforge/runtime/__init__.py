"""The embeddable runtime: numpy + onnxruntime + Pillow, nothing from the build side.

    from edgeforge.runtime import load
    model = load("artifacts/face-parsing", variant="fp16")
    result = model.predict("portrait.jpg")
    result.label_map, result.pixel_shares(), result.overlay(image)
"""

from edgeforge.runtime.images import ImageError, load_image
from edgeforge.runtime.manifest import IntegrityError
from edgeforge.runtime.model import Model, load
from edgeforge.runtime.providers import (
    ProviderFallbackWarning,
    ProviderUnavailable,
    choose_providers,
)
from edgeforge.runtime.results import ClassificationResult, SegmentationResult

__all__ = [
    "ClassificationResult",
    "ImageError",
    "IntegrityError",
    "Model",
    "ProviderFallbackWarning",
    "ProviderUnavailable",
    "SegmentationResult",
    "choose_providers",
    "load",
    "load_image",
]
