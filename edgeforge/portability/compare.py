"""Hold one platform's probe against another's, variant by variant.

The bar a variant must clear on the other platform:
- float compute (fp32 files, the ORT-format file, OpenVINO at f32): the same label map at >= 99.99 % of
  pixels (segmentation) or the same top-1 on every image (classification) -- only summation order may
  differ between kernels;
- every other variant (fp16, int8, int4, bf16 ...): kernels legitimately differ (x86's u8s8 VNNI GEMMs
  against ARM's sdot/i8mm ones), so it must stay within the artifact's own accuracy budget of its x86
  self: 100 x (1 - mIoU) or 100 x (1 - top-1 agreement) <= the budget, in points.
A variant that did not run is ``x86-only`` with the first line of its error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgeforge.contract import DEFAULT_MAX_DRIFT, VARIANTS
from edgeforge.metrics import SegmentationScores
from edgeforge.portability.probe import read_outputs, read_probe

FLOAT_AGREEMENT = 0.9999  # pixels (segmentation); classification: every top-1 the same


@dataclass
class VariantVerdict:
    artifact: str
    variant: str
    bar: str  # "float" or "budget"
    portable: bool
    agreement: float | None = None  # pixel agreement (segmentation) or top-1 agreement (classification)
    drift_points: float | None = None  # 100 x (1 - mIoU or top-1 agreement) against the reference platform
    max_logit_diff: float | None = None
    budget_points: float | None = None
    error: str | None = None  # why it did not run on the checked platform
    fp32_drift_points: dict | None = None  # platform -> the variant's drift from fp32 on that platform (the budget's measure)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def float_compute(variant: str) -> bool:
    """Whether the variant computes in fp32 (fp32 weights, or OpenVINO's fp16-compressed ones decompressed)."""
    declared = VARIANTS.get(variant)
    if declared is None:
        return False
    return declared.numeric == "fp32" or (declared.numeric == "fp16" and declared.inference_precision == "f32")


def agreement_and_drift(ref: dict[str, np.ndarray], got: dict[str, np.ndarray], num_classes: int) -> tuple[float, float]:
    """(agreement, drift in points) of one probe's outputs against another's: pixels and 100 x (1 - mIoU) for
    label maps, top-1 agreement and 100 x (1 - it) for class scores."""
    if any(k.startswith("labels_") for k in ref):
        scores = SegmentationScores(num_classes, ignore_index=None)
        for key in (k for k in ref if k.startswith("labels_")):
            scores.update(ref[key], got[key])
        return scores.pixel_agreement(), 100.0 * (1.0 - scores.miou())
    keys = [k for k in ref if k.startswith("probs_")]
    agreement = float(np.mean([int(ref[k].argmax()) == int(got[k].argmax()) for k in keys]))
    return agreement, 100.0 * (1.0 - agreement)


def compare_variant(artifact: str, variant: str, reference: Path, checked: Path, status: dict,
                    num_classes: int, budget: float | None, fp32_ran: bool = False) -> VariantVerdict:
    """``reference`` and ``checked`` are probe folders; ``status`` is the checked probe's entry for it.
    ``fp32_ran``: fp32 ran on both platforms, so the variant's own drift from fp32 is reported for each."""
    bar = "float" if float_compute(variant) else "budget"
    budget = DEFAULT_MAX_DRIFT if budget is None else budget
    if not status.get("ran"):
        return VariantVerdict(artifact, variant, bar, False, budget_points=budget, error=status.get("error", "did not run"))
    ref, got = read_outputs(reference, artifact, variant), read_outputs(checked, artifact, variant)
    logit_keys = sorted(k for k in ref if k.startswith("logits_"))
    max_diff = max(float(np.abs(ref[k].astype(np.float64) - got[k]).max()) for k in logit_keys)
    agreement, drift = agreement_and_drift(ref, got, num_classes)
    float_ok = agreement >= FLOAT_AGREEMENT if any(k.startswith("labels_") for k in ref) else agreement == 1.0
    portable = float_ok if bar == "float" else drift <= budget + 1e-9  # 1 flip in 200 is 0.5 points, as a float
    verdict = VariantVerdict(artifact, variant, bar, portable, agreement, drift, max_diff, budget)
    if fp32_ran and bar == "budget":  # what the budget itself measures, on each platform
        verdict.fp32_drift_points = {
            platform: agreement_and_drift(read_outputs(folder, artifact, "fp32"), outputs, num_classes)[1]
            for platform, folder, outputs in (("x86", reference, ref), ("aarch64", checked, got))}
    return verdict


def compare(reference: Path, checked: Path, probe_result: dict, num_classes: dict[str, int],
            budgets: dict[str, float | None]) -> list[VariantVerdict]:
    """One verdict per variant the reference platform ran (a variant it could not run is not judged)."""
    ran_on_reference = read_probe(reference)["artifacts"]
    verdicts = []
    for artifact, statuses in probe_result["artifacts"].items():
        for variant, status in statuses.items():
            if not ran_on_reference[artifact].get(variant, {}).get("ran"):
                continue
            fp32_ran = statuses.get("fp32", {}).get("ran") and ran_on_reference[artifact].get("fp32", {}).get("ran")
            verdicts.append(compare_variant(artifact, variant, reference, checked, status,
                                            num_classes[artifact], budgets.get(artifact), bool(fp32_ran)))
    return verdicts


def table(verdicts: list[VariantVerdict], platform: str) -> str:
    """A Markdown table of the verdicts: the README's and the check's printout."""
    rows = [f"| artifact | variant | bar | {platform} | agreement | drift (points) | max abs logit diff | "
            f"drift from fp32, x86 / {platform} |", "|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        if v.error:
            rows.append(f"| {v.artifact} | {v.variant} | {v.bar} | **x86-only**: {v.error} | | | | |")
            continue
        verdict = "portable" if v.portable else "**differs**"
        bar = "float (>= 99.99 %)" if v.bar == "float" else f"budget ({v.budget_points:g})"
        own = " / ".join(f"{d:.4f}" for d in v.fp32_drift_points.values()) if v.fp32_drift_points else ""
        rows.append(f"| {v.artifact} | {v.variant} | {bar} | {verdict} | {100 * v.agreement:.4f} % | "
                    f"{v.drift_points:.4f} | {v.max_logit_diff:.2e} | {own} |")
    return "\n".join(rows)
