"""Training data for the minis: synthetic samples drawn once into a pool, served as seeded, mirrored batches."""

from __future__ import annotations

import dataclasses
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image
from tqdm import tqdm

from edgeforge.data.synth import Size, make_expression_sample, make_sample
from edgeforge.references import SYNTHETIC_KIND, label_names
from edgeforge.runtime.preprocess import Preprocessor

#: Classes that swap when an image is mirrored ("left" is the person's left). Declared, not derived
#: from names: face parsing's ``l_lip`` is the *lower* lip and ``ear_r`` an earring.
MIRRORED_CLASSES = {
    "face-parsing": (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")),
    "clothes-parsing": (("Left-shoe", "Right-shoe"), ("Left-leg", "Right-leg"), ("Left-arm", "Right-arm")),
    "facial-emotions": (),  # every expression cue is drawn on a random side, so mirroring keeps the class
}


#: The label set of the expressions' face-part maps (``make_expression_sample``).
PART_LABELS = "face-parsing"


def draw_samples(name: str, seed: int, n: int, size: Size, workers: int = 1, progress: bool = False,
                 desc: str = "drawing", parts: bool = False, fit_to: Preprocessor | None = None) -> list[tuple]:
    """Samples 0..n-1 of ``name``'s synthetic dataset with ``seed`` at ``size`` (a side, (width, height) or
    "mixed"): (PIL image, label) pairs, or with ``parts`` (expressions only) (PIL image, emotion id,
    face-part label map) triples.

    ``fit_to``: each image resized as that image processor resizes it (its label maps by nearest
    neighbour), once at drawing: what the model sees of a 512-pixel drawing without keeping 512-pixel
    drawings in memory, and the processor's own resize of the result is then the identity.
    Drawing is pure Python/Pillow, so ``workers`` processes speed it up nearly linearly.
    """
    kind = SYNTHETIC_KIND[name]
    if parts and kind != "expressions":
        raise ValueError("part maps are drawn for the expressions dataset only")
    fit = (fit_to.width, fit_to.height, int(fit_to.resample)) if fit_to is not None and fit_to.do_resize else None
    jobs = [(kind, index, seed, size, parts, fit) for index in range(n)]
    # fork only: a spawned worker would re-run the caller's __main__ (the CLI has no guard to stop it).
    parallel = workers > 1 and n >= 64 and "fork" in multiprocessing.get_all_start_methods()
    executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) if parallel else None
    try:
        results = executor.map(_draw, jobs, chunksize=16) if executor else map(_draw, jobs)
        return list(tqdm(results, total=n, desc=f"{desc} ({kind}, seed {seed})", unit="img", disable=not progress,
                         dynamic_ncols=True))
    finally:
        if executor:
            executor.shutdown()


def _draw(job: tuple) -> tuple:
    kind, index, seed, size, parts, fit = job
    sample = make_expression_sample(index, seed=seed, size=size) if parts else make_sample(kind, index, seed, size)
    if fit is None:
        return sample
    width, height, resample = fit
    image = sample[0].resize((width, height), resample=resample, reducing_gap=None)
    return (image, *(_resize_label(label, width, height) if isinstance(label, np.ndarray) else label
                     for label in sample[1:]))


def mirror_table(name: str) -> np.ndarray:
    """Class id -> class id of the mirrored image."""
    ids = {label: i for i, label in enumerate(label_names(name))}
    table = np.arange(len(ids))
    for left, right in MIRRORED_CLASSES[name]:
        table[ids[left]], table[ids[right]] = ids[right], ids[left]
    return table


def class_weights(pool: list[tuple], num_classes: int) -> np.ndarray:
    """ENet's class weights 1 / ln(1.02 + frequency) from the pool's label maps (Paszke et al., 2016).

    Mean IoU counts an earring as much as the background; unweighted, the loss barely notices the
    thin classes and a short training run never learns them.
    """
    counts = sum(np.bincount(sample[1].ravel(), minlength=num_classes)[:num_classes] for sample in pool)
    frequency = counts / max(1, counts.sum())
    return (1.0 / np.log(1.02 + frequency)).astype(np.float32)


def batches(pool: list[tuple], preprocessor: Preprocessor, mirror: np.ndarray | None, batch_size: int,
            size: int, rng: np.random.Generator, crop: bool = False):
    """Endless (pixel_values, labels, parts) batches at ``size``: epochs over the pool in a seeded order,
    half mirrored. ``parts`` is the pool's face-part maps (expressions drawn with parts), else None.

    ``crop``: windows of ``size`` cut from the samples at their own scale (segmentation only), most of
    them around the subject; otherwise whole samples resized to ``size`` exactly as the image processor
    would resize them (label maps by nearest neighbour).
    """
    if size != preprocessor.height:
        preprocessor = dataclasses.replace(preprocessor, height=size, width=size)
    segmentation = isinstance(pool[0][1], np.ndarray)
    with_parts = len(pool[0]) == 3
    parts_mirror = mirror_table(PART_LABELS) if with_parts else None
    while True:
        order = rng.permutation(len(pool))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            chosen = [pool[i] for i in order[start : start + batch_size]]
            if crop:
                chosen = [crop_sample(image, label, size, rng) for image, label in chosen]
            pixels = preprocessor([sample[0] for sample in chosen])
            if segmentation:
                labels = np.stack([_resize_label(sample[1], size, size) for sample in chosen])
            else:
                labels = np.array([sample[1] for sample in chosen])
            parts = np.stack([_resize_label(sample[2], size, size) for sample in chosen]) if with_parts else None
            if mirror is not None:
                flip = rng.random(len(chosen)) < 0.5
                # Pre-processing is per pixel, so mirroring after it equals mirroring the image.
                pixels[flip] = pixels[flip][..., ::-1]
                if segmentation:
                    labels[flip] = mirror[labels[flip][..., ::-1]]
                if parts is not None:
                    parts[flip] = parts_mirror[parts[flip][..., ::-1]]
            yield np.ascontiguousarray(pixels), labels.astype(np.int64), parts


def crop_sample(image: Image.Image, label: np.ndarray, size: int, rng: np.random.Generator,
                subject_share: float = 0.8) -> tuple[Image.Image, np.ndarray]:
    """A ``size`` x ``size`` window of a sample, centred on a random non-background pixel with
    probability ``subject_share`` (where the small, hard classes are), anywhere otherwise."""
    height, width = label.shape
    subject = np.flatnonzero(label)
    if subject.size and rng.random() < subject_share:
        y, x = divmod(int(subject[rng.integers(subject.size)]), width)
    else:
        y, x = int(rng.integers(height)), int(rng.integers(width))
    top = min(max(0, y - size // 2), height - size)
    left = min(max(0, x - size // 2), width - size)
    return image.crop((left, top, left + size, top + size)), label[top : top + size, left : left + size]


def _resize_label(label: np.ndarray, width: int, height: int) -> np.ndarray:
    """A class-id map at (width, height), by nearest neighbour (ids must not blend)."""
    if label.shape == (height, width):
        return label
    return np.asarray(Image.fromarray(label).resize((width, height), Image.Resampling.NEAREST))
