"""An upper confidence bound on drift, so that a variant the budget accepts stays within it on images it
was not checked on.

Drift measured on the held-out images is an estimate: a build that accepted 0.49 points on 16 images
measured 0.59 on 16 others. The budget therefore checks a one-sided upper bound at ``confidence``
(default 95 %) instead of the estimate:

- classification: drift is the share of images whose top-1 class differs from fp32's, a binomial
  proportion; the bound is the exact Clopper-Pearson one (SciPy's beta quantile). With no disagreement at all it is still above 0,
  so certifying a budget of b points takes ``images_to_certify(b)`` images (598 for 0.5 points at 95 %,
  the "rule of three"); a variant that does change a few predictions needs more, and the default is the
  count on which one changing half the budget's share passes (``images_for_half_the_budget``: 2100 for 0.5
  points). Cost: the images -- a full-size ViT-base runs 2100 of them in about 80 s per candidate at 2
  threads and holds their 224x224 pixel values (1.3 GB) for the search; the bound is closed-form.
- segmentation: drift is 100 x (1 - mIoU) over the pooled confusion matrix, which no closed form
  covers (a ratio of sums, rare classes weigh as much as the background). The bound is the percentile
  bootstrap over images: resample the images with replacement ``resamples`` times, pool their per-image
  confusion matrices, take the ``confidence`` quantile of the resampled drifts. Cost: one (n x K^2)
  matrix product per resample batch -- milliseconds -- and K^2 integers kept per image. With few images
  the bootstrap under-states the spread (with one image there is none), so the default held-out split
  is larger than the old 16 (``DEFAULT_SEGMENTATION_IMAGES``).
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000
#: Held-out images a segmentation budget is checked on by default: enough that the bootstrap sees the
#: spread between images (mixed sizes); a b2-sized model measures them in well under a minute per build.
DEFAULT_SEGMENTATION_IMAGES = 64
#: The most held-out images chosen automatically for a classification budget (a budget under 0.45 points
#: would need more; the bound then says how far the images can certify).
MAX_CLASSIFICATION_IMAGES = 2400


def clopper_pearson_upper(failures: int, trials: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """One-sided upper bound on a binomial rate after ``failures`` in ``trials`` (exact, Clopper-Pearson):
    the rate p at which seeing ``failures`` or fewer has probability 1 - ``confidence``, the ``confidence``
    quantile of Beta(failures + 1, trials - failures)."""
    if trials < 1 or failures >= trials:
        return 1.0
    from scipy.stats import beta  # imported here: scipy.stats takes a noticeable while to import

    return float(beta.ppf(confidence, failures + 1, trials - failures))


def images_to_certify(budget_points: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest images on which zero disagreements put the Clopper-Pearson bound within the budget."""
    rate = budget_points / 100.0
    if rate >= 1.0:
        return 1
    if rate <= 0.0:
        return MAX_CLASSIFICATION_IMAGES
    return math.ceil(math.log(1.0 - confidence) / math.log1p(-rate))


def images_for_half_the_budget(budget_points: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """The fewest images (in tens) on which a variant that changes half the budget's share of predictions --
    a typical int8 variant held to the budget -- is accepted when its sample shows just that share. Zero
    disagreements certify the budget on far fewer (``images_to_certify``), but int8 ViTs flip a few near-tied
    images in a thousand, and on too few images no such variant could ever be accepted."""
    rate = budget_points / 100.0
    if rate <= 0.0:
        return MAX_CLASSIFICATION_IMAGES
    for images in range(10, MAX_CLASSIFICATION_IMAGES + 1, 10):
        if clopper_pearson_upper(round(images * rate / 2), images, confidence) <= rate:
            return images
    return MAX_CLASSIFICATION_IMAGES


def classification_bound(disagreements: int, images: int, confidence: float = DEFAULT_CONFIDENCE) -> float:
    """Upper bound on top-1 drift in points."""
    return 100.0 * clopper_pearson_upper(disagreements, images, confidence)


def segmentation_bound(confusions: np.ndarray, confidence: float = DEFAULT_CONFIDENCE,
                       resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> float:
    """Upper bound on mIoU drift in points from per-image confusion matrices (n, K, K) of a candidate's
    label maps against fp32's, by the percentile bootstrap over images (seeded: the same images give the
    same bound)."""
    count, classes = confusions.shape[0], confusions.shape[1]
    flat = confusions.reshape(count, classes * classes).astype(np.float64)
    rng = np.random.default_rng(seed)
    drifts = []
    for start in range(0, resamples, 500):  # bounded memory: 500 x n weights at a time
        batch = min(500, resamples - start)
        weights = rng.multinomial(count, np.full(count, 1.0 / count), size=batch).astype(np.float64)
        pooled = (weights @ flat).reshape(batch, classes, classes)
        drifts.append(100.0 * (1.0 - pooled_miou(pooled)))
    return float(np.quantile(np.concatenate(drifts), confidence))


def pooled_miou(confusions: np.ndarray) -> np.ndarray:
    """mIoU of each pooled confusion matrix (..., K, K), classes absent from both sides left out, as
    ``edgeforge.metrics.SegmentationScores.miou`` counts them."""
    intersection = np.diagonal(confusions, axis1=-2, axis2=-1)
    union = confusions.sum(-2) + confusions.sum(-1) - intersection
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, intersection / union, np.nan)
        return np.nanmean(iou, axis=-1)


def default_eval_images(segmentation: bool, budget_points: float, confidence: float | None) -> int:
    """Held-out images to check a budget on when the caller does not say: enough for the bound to be able
    to certify the budget (classification), or for the bootstrap to see the spread (segmentation)."""
    from edgeforge.quantize.calibration import DEFAULT_EVAL_IMAGES

    if not confidence:
        return DEFAULT_EVAL_IMAGES
    if segmentation:
        return DEFAULT_SEGMENTATION_IMAGES
    return images_for_half_the_budget(budget_points, confidence)
