"""Run any exported variant: pre-process exactly, run the ONNX Runtime session, post-process."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from edgeforge.contract import ALIASES, SEGMENTATION, VARIANTS, format_of_file
from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.artifact import Artifact, external_data_files
from edgeforge.runtime.engines import EngineOptions, open_engine, require_engine
from edgeforge.runtime.images import ImageError, ImageInput, load_image
from edgeforge.runtime.postprocess import resize_logits_argmax, softmax
from edgeforge.runtime.preprocess import Preprocessor
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
        spinning: bool = True,
        fixed_shape: bool = True,
    ):
        """``verify`` checks the configs, the variant file and its external data against manifest.json
        (IntegrityError on any difference; an artifact without a manifest needs verify=False).
        ``model_file`` runs another ONNX file with this artifact's configs (a candidate being evaluated
        by the build side); nothing is then checked against the manifest. Whatever ``verify`` says, no
        file outside the artifact directory (``..``, absolute paths, symlinks) is ever read.
        ``strict_providers``: raise ProviderUnavailable instead of falling back to CPU.
        ``spinning=False``: idle worker threads sleep instead of spinning between runs (onnxruntime's
        default keeps them spinning, which costs other sessions or processes on the same cores).
        ``fixed_shape``: an ONNX graph's free input dimensions named ``batch_size``, ``height`` and ``width``
        (the names edgeforge's and Optimum's exporters give) are fixed to one image at the preprocessor's
        size, so onnxruntime plans for static shapes (measured: SegFormer-b2 1.15x, b5 up to 1.13x faster);
        a batch then runs image by image. False keeps the graph's own shapes (other input sizes, batched
        runs in one call). ORT-format models are used as converted."""
        verify = verify and model_file is None
        self.artifact = Artifact.open(path, verify=verify)
        self.variant = variant
        self.task = self.artifact.task
        self.id2label = self.artifact.id2label
        self.preprocessor = Preprocessor.from_config(self.artifact.preprocessor_config)
        if model_file is not None:
            self.model_path = Path(model_file)
            external_data_files(self.model_path)  # confined to the candidate's folder
        else:
            rel = self.artifact.variant_file(variant)
            require_engine(format_of_file(rel), rel)
            self.model_path = self.artifact.variant_path(variant, verify=verify)
        fmt = format_of_file(self.model_path.name)
        # ORT-format models carry the shapes they were converted with (see export.ort_mobile).
        self.fixed_shape = fixed_shape and fmt != "ort"
        single_image = {"batch_size": 1, "height": self.preprocessor.height, "width": self.preprocessor.width}
        declared = VARIANTS.get(ALIASES.get(variant, variant))
        self.engine = open_engine(fmt, self.model_path, EngineOptions(
            providers, strict_providers, threads, spinning, single_image if self.fixed_shape else None,
            declared.inference_precision if declared else None))
        self.input, self.output_name = self.engine.input, self.engine.output.name
        self._input_dtype = self.input.dtype
        self._buffers = threading.local()  # see _run
        self._check_io()

    @property
    def providers(self) -> list[str]:
        return self.engine.providers

    @property
    def takes_batches(self) -> bool:
        """Whether ``forward`` accepts N > 1 images (in one run, or image by image on a fixed-shape session)."""
        return self.fixed_shape or self._fixed_batch is None

    # --- the three stages, public so benchmarks can time them apart -------------------------------
    def preprocess(self, images: Sequence[ImageInput]) -> tuple[np.ndarray, list]:
        pil_images = [load_image(image) for image in images]
        return self.preprocessor(pil_images), pil_images

    def forward(self, pixel_values: np.ndarray, release_memory: bool = False,
                into: np.ndarray | None = None) -> np.ndarray:
        """Run the session on a preprocessed batch; one image at a time if the batch axis is fixed.

        ``release_memory``: return the run's CPU working memory to the system afterwards rather than keep it
        for the next run (for a rare large batch; costs the allocations again next time).
        ``into``: an array of the logits' shape to write them into (OpenVINO and LiteRT; onnxruntime returns its
        own), for a caller that reuses one; it is returned then.
        """
        pixel_values = self._checked_input(pixel_values)
        if self._fixed_batch and pixel_values.shape[0] != self._fixed_batch:
            return np.concatenate([self.forward(pixel_values[i : i + 1], release_memory)
                                   for i in range(pixel_values.shape[0])])
        return self.engine.run(pixel_values, release_memory, into)

    def postprocess(self, logits: np.ndarray, sizes: Sequence[tuple[int, int]]) -> list:
        """``sizes`` are (width, height) of the original images."""
        if self.task == SEGMENTATION:
            return [
                SegmentationResult(resize_logits_argmax(l.astype(np.float32, copy=False), h, w), self.id2label)
                for l, (w, h) in zip(logits, sizes)
            ]
        return [ClassificationResult(p, self.id2label) for p in softmax(logits)]

    # --- the calls apps use --------------------------------------------------------------------------
    def predict(self, images: ImageInput | Iterable[ImageInput], batch_size: int = 8):
        """Predict one image (returns one result) or several of any sizes (returns a list).

        A bad image raises ImageError naming it; ``predict_many`` keeps going instead."""
        single = not isinstance(images, (list, tuple))
        batch = [images] if single else list(images)
        results = []
        for start in range(0, len(batch), batch_size):
            results.extend(self._run([load_image(image) for image in batch[start : start + batch_size]]))
        return results[0] if single else results

    def predict_many(self, images: Iterable[ImageInput], batch_size: int = 8) -> list:
        """One entry per image, in order: its result, or the ImageError that refused it.

        For apps and batch jobs where one unreadable image must not fail the others."""
        outcomes = []
        batch = list(images)
        for start in range(0, len(batch), batch_size):
            loaded = [_load_or_error(image) for image in batch[start : start + batch_size]]
            results = iter(self._run([im for im in loaded if not isinstance(im, ImageError)]))
            outcomes.extend(im if isinstance(im, ImageError) else next(results) for im in loaded)
        return outcomes

    def logits(self, images: Sequence[ImageInput]) -> np.ndarray:
        pixel_values, _ = self.preprocess(images)
        return self.forward(pixel_values)

    def _run(self, pil_images: list) -> list:
        if not pil_images:
            return []
        # The batch is written into this thread's buffer from the previous call: the engine has read it by
        # the time run() returns, and a fresh one can cost page faults on every call (pre-processing at
        # 512x512 measured 3.6 ms with a fresh array, 1.0 ms without the faults).
        buffer = getattr(self._buffers, "pixel_values", None)
        pixel_values = self._buffers.pixel_values = self.preprocessor(pil_images, out=buffer)
        # The logits too (no result keeps them): in a LiteRT process, b2's predict() made ~620 page faults per call
        # with fresh logits and ~30 with reused ones (the time moved within this machine's noise, +-1.5 ms).
        logits = self._buffers.logits = self.forward(pixel_values, into=getattr(self._buffers, "logits", None))
        return self.postprocess(logits, [im.size for im in pil_images])

    # ------------------------------------------------------------------------------------------------
    def _checked_input(self, pixel_values) -> np.ndarray:
        """A clear error for a batch this graph cannot take, instead of onnxruntime's."""
        try:
            array = np.asarray(pixel_values)
        except (TypeError, ValueError):  # ragged nested lists and the like
            array = np.asarray(None)
        expected = ["N", *(d if isinstance(d, int) else "*" for d in self.input.shape[1:])]
        wrong_shape = array.ndim != len(expected) or array.shape[0] == 0 or any(
            isinstance(e, int) and e != a for e, a in zip(expected[1:], array.shape[1:]))
        if wrong_shape or not np.issubdtype(array.dtype, np.floating) or self._input_dtype is None:
            raise EdgeforgeError(
                f"{self.model_path.name}: forward() takes a float batch of shape ({', '.join(map(str, expected))}), "
                f"got {array.dtype} of shape {tuple(array.shape)}"
            )
        return np.ascontiguousarray(array, dtype=self._input_dtype)

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
        output_shape = self.engine.output.shape
        if len(output_shape) != (4 if self.task == SEGMENTATION else 2):
            raise EdgeforgeError(f"{self.model_path}: output {self.output_name} has shape {output_shape}, "
                                 f"which is not what a {self.task} model returns")
        num_labels = output_shape[1]
        if isinstance(num_labels, int) and num_labels != len(self.id2label):
            raise EdgeforgeError(
                f"{self.model_path}: outputs {num_labels} classes but config.json lists {len(self.id2label)} labels"
            )


def load(path: str | os.PathLike, variant: str = "fp32", **options) -> Model:
    """Load ``variant`` of the artifact directory at ``path``. See ``Model`` for the options."""
    return Model(Path(path), variant=variant, **options)


def _load_or_error(image: ImageInput):
    try:
        return load_image(image)
    except ImageError as exc:
        return exc
