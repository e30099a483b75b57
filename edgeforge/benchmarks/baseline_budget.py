"""The baselines held to the rule the variants were built under.

A quantized variant exists only if the 95 % upper bound of its drift, on the held-out images its build
measured (64 mixed-size images for segmentation, ~2100 for classification), is within the budget. The bench's
own drift of a baseline is an estimate on a few images, and for classification too coarse to judge a 0.5-point
budget (one flip in 16 images is 6 points). So, where the build's held-out split can be made again (the
synthetic images ``edgeforge quantize`` draws when no folder is given), each baseline is scored on that split
with the same bound: the head-to-head then compares edgeforge's fastest variant within the budget with the
fastest baseline within the same budget, judged the same way (``recommend.head_to_head``).
"""

from __future__ import annotations

from pathlib import Path

#: The record field that holds a baseline's drift on the build's held-out split (``Drift.to_json``).
BUDGET_CHECK = "budget_check"


def held_out_split(artifact):
    """The images the build checked its budget on, made again (same generator, seed and count: the same images);
    None (with why) when they cannot be: images from a folder are not kept with the artifact."""
    from edgeforge.quantize.calibration import split_images, synthetic_images

    info = (artifact.manifest or {}).get("quantization") or {}
    calibration, held_out = info.get("calibration_set") or {}, info.get("eval_set") or {}
    if not held_out.get("held_out") or not held_out.get("num_images"):
        return None, "the build measured no held-out split"
    labels = [artifact.id2label[i] for i in sorted(artifact.id2label)]
    images = synthetic_images(artifact.task, labels, calibration["num_images"] + held_out["num_images"])
    _, remade = split_images(images, calibration["num_images"])
    if remade.source != held_out.get("source") or remade.names != held_out.get("images"):
        return None, "the build's held-out images came from a folder (not kept) or other synthetic data"
    return remade, None


def check_baselines(entry: dict, root: Path, baseline_info: dict, budget: float, log) -> None:
    """Score the plain export and each peer of ``baseline_info`` (``run._prepare_baselines``) on the build's
    held-out split against the artifact's fp32 predictions, with the build's bound, into
    ``entry["baselines"][name][BUDGET_CHECK]``. PyTorch is the model fp32 was validated against: not scored."""
    from edgeforge.quantize.confidence import DEFAULT_CONFIDENCE
    from edgeforge.quantize.drift import DriftMeter, run_logits
    from edgeforge.runtime import load
    from edgeforge.runtime.artifact import Artifact

    artifact = Artifact.open(root)
    held_out, why = held_out_split(artifact)
    if held_out is None:
        entry["notes"].append(f"baselines judged by this run's drift estimate only: {why}")
        return
    confidence = ((artifact.manifest or {}).get("quantization") or {}).get("confidence", DEFAULT_CONFIDENCE)
    meter = DriftMeter(root, held_out.images, confidence=confidence)
    plain = baseline_info["plain_onnx"]
    files = [(plain.name, plain.path, "fp32")] + [(p.name, p.path, p.variant) for p in baseline_info["peers"]]
    for name, path, variant in files:
        if name not in entry["baselines"]:
            continue
        drift = meter.score(run_logits(load(root, variant=variant, model_file=path), meter.pixel_values))
        entry["baselines"][name][BUDGET_CHECK] = drift.to_json(budget)
        log(f"      {name}: drift {drift.describe()} on the build's {len(held_out.images)} held-out image(s)")
