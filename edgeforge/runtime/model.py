"""Run any exported variant: pre-process exactly, run the ONNX Runtime session, post-process."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.artifact import SEGMENTATION, Artifact
from edgeforge.runtime.images import ImageInput, load_image
from edgeforge.runtime.manifest import verify_files
from edgeforge.runtime.postprocess import resize_logits_argmax, softmax
from edgeforge.runtime.preprocess import Preprocessor
from edgeforge.runtime.providers import choose_providers
from edgeforge.runtime.results import ClassificationResult, SegmentationResult


class Model:
    """A loaded variant of an artifact directory. Thread-safe: one instance may serve many threads."""

    def __init__(
        self,
        path: str | os.PathLike,
        variant: str = "fp32",
        providers: str | list[str] | None = "auto",
        strict_providers: bool = False,
        threads: int | None = None,
        verify: bool = True,
        model_file: str | os.PathLike | None = None,
    ):
        """``model_file`` runs another ONNX file with this artifact's configs (a candidate being
        evaluated by the build side); it is not checked against the manifest."""
        self.artifact = Artifact.open(path)
        self.variant = variant
        self.task = self.artifact.task
        self.id2label = self.artifact.id2label
        self.preprocessor = Preprocessor.from_config(self.artifact.preprocessor_config)
        if model_file is not None:
            self.model_path = Path(model_file)
        else:
            rel = self.artifact.variant_file(variant)
            if rel.endswith(".mlpackage"):
                raise EdgeforgeError(f"{rel} is a Core ML package: it runs with Core ML on Apple devices, not here")
            if verify and self.artifact.manifest is not None:
                verify_files(self.artifact.root, self.artifact.manifest, self.artifact.files_of(rel))
            self.model_path = self.artifact.root / rel
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3  # warnings from ORT's optimizer are noise to an app
        try:
            self.session = ort.InferenceSession(
                str(self.model_path), options, providers=choose_providers(providers, strict_providers)
            )
        except Exception as exc:  # onnxruntime raises its own exception classes
            if isinstance(exc, EdgeforgeError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgeforgeError(f"{self.model_path}: onnxruntime cannot load it: {first}") from None
        self.input = self.session.get_inputs()[0]
        self.output_name = self.session.get_outputs()[0].name
        self._check_io()

    @property
    def providers(self) -> list[str]:
        return self.session.get_providers()

    # --- the three stages, public so benchmarks can time them apart -------------------------------
    def preprocess(self, images: Sequence[ImageInput]) -> tuple[np.ndarray, list]:
        pil_images = [load_image(image) for image in images]
        return self.preprocessor(pil_images), pil_images

    def forward(self, pixel_values: np.ndarray) -> np.ndarray:
        """Run the session on a preprocessed batch; one image at a time if the batch axis is fixed."""
        if self._fixed_batch and pixel_values.shape[0] != self._fixed_batch:
            return np.concatenate([self.forward(pixel_values[i : i + 1]) for i in range(pixel_values.shape[0])])
        return self.session.run([self.output_name], {self.input.name: pixel_values})[0]

    def postprocess(self, logits: np.ndarray, sizes: Sequence[tuple[int, int]]) -> list:
        """``sizes`` are (width, height) of the original images."""
        if self.task == SEGMENTATION:
            return [
                SegmentationResult(resize_logits_argmax(l.astype(np.float32), h, w), self.id2label)
                for l, (w, h) in zip(logits, sizes)
            ]
        return [ClassificationResult(p, self.id2label) for p in softmax(logits)]

    # --- the one call apps use ---------------------------------------------------------------------
    def predict(self, images: ImageInput | Iterable[ImageInput], batch_size: int = 8):
        """Predict one image (returns one result) or several of any sizes (returns a list)."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        results = []
        for start in range(0, len(batch), batch_size):
            pixel_values, pil_images = self.preprocess(batch[start : start + batch_size])
            logits = self.forward(pixel_values)
            results.extend(self.postprocess(logits, [im.size for im in pil_images]))
        return results[0] if single else results

    def logits(self, images: Sequence[ImageInput]) -> np.ndarray:
        pixel_values, _ = self.preprocess(images)
        return self.forward(pixel_values)

    # ------------------------------------------------------------------------------------------------
    def _check_io(self) -> None:
        shape = self.input.shape
        if len(shape) != 4:
            raise EdgeforgeError(f"{self.model_path}: expected a 4-D image input, got shape {shape}")
        self._fixed_batch = shape[0] if isinstance(shape[0], int) else None
        expected = (self.preprocessor.height, self.preprocessor.width)
        fixed = tuple(shape[2:])
        if all(isinstance(d, int) for d in fixed) and fixed != expected:
            raise EdgeforgeError(
                f"{self.model_path}: takes {fixed[0]}x{fixed[1]} inputs but preprocessor_config.json "
                f"resizes to {expected[0]}x{expected[1]}"
            )
        num_labels = self.session.get_outputs()[0].shape[1]
        if isinstance(num_labels, int) and num_labels != len(self.id2label):
            raise EdgeforgeError(
                f"{self.model_path}: outputs {num_labels} classes but config.json lists {len(self.id2label)} labels"
            )


def load(path: str | os.PathLike, variant: str = "fp32", **options) -> Model:
    """Load ``variant`` of the artifact directory at ``path``. See ``Model`` for the options."""
    return Model(Path(path), variant=variant, **options)
