"""The README.md model card of a trained mini: Hugging Face card metadata (``model-index`` results,
read back by ``huggingface_hub.ModelCard.load``) and a human-readable account of data, settings and scores."""

from __future__ import annotations

from pathlib import Path

from edgeforge.contract import PIPELINE_TAG
from edgeforge.references import load_reference
from edgeforge.zoo.initialisation import describe

METRIC_NAMES = {"mean_iou": "mean IoU", "accuracy": "top-1 accuracy"}


def write_model_card(path: str | Path, record: dict) -> None:
    """Write the card of the training run ``record`` (as ``train_mini`` returns it) to ``path``."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    reference = load_reference(record["reference"])
    data, scores, metric = record["data"], record["scores"], record["metric"]
    task = PIPELINE_TAG[reference["task"]]
    result = EvalResult(
        task_type=task,
        dataset_type=f"edgeforge-synthetic-{data['kind']}",
        dataset_name=f"edgeforge synthetic {data['kind']} (held-out, seed {data['heldout_seed']})",
        dataset_split=f"seed {data['heldout_seed']}, {data['heldout_samples']} samples",
        metric_type=metric,
        metric_name=METRIC_NAMES[metric],
        metric_value=round(scores[metric], 4),
    )
    card_data = ModelCardData(
        model_name=record["name"],
        library_name="transformers",
        pipeline_tag=task,
        license="apache-2.0",
        tags=["edgeforge", "synthetic-data", reference["model_type"], "mini"],
        eval_results=[result],
    )
    card = ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{card_body(record, reference)}")
    card.save(path)


def card_body(record: dict, reference: dict) -> str:
    data, settings, seconds = record["data"], record["settings"], record["seconds"]
    metric, scores = record["metric"], record["scores"]
    arch = ", ".join(f"{k} {v}" for k, v in record["architecture"].items())
    lines = [
        f"# {record['name']}",
        "",
        f"A small {reference['architectures'][0]} with the labels and image-processor settings of "
        f"`{reference['hub_id']}` (input {data['size']}x{data['size']}), trained by edgeforge on its own synthetic "
        f"`{data['kind']}` images so that accuracy and quantization drift can be measured offline. It has learnt "
        "the synthetic drawings, not real photos: do not use it on real images.",
        "",
        "## Held-out scores",
        "",
        f"On {data['heldout_samples']} samples of `edgeforge.data.synth` `{data['kind']}` drawn with seed "
        f"{data['heldout_seed']} (never seen in training) at mixed sizes ({', '.join(data['mixed_sizes'])}), "
        "PyTorch fp32, runtime pre- and post-processing (label maps compared at each image's own size):",
        "",
        "| metric | value |",
        "|---|---|",
        f"| **{METRIC_NAMES[metric]}** | **{scores[metric]:.4f}** |",
    ]
    if "pixel_accuracy" in scores:
        lines.append(f"| pixel accuracy | {scores['pixel_accuracy']:.4f} |")
    if scores.get("by_size"):
        lines += ["", "### By input size", "",
                  f"Scores on {data['heldout_samples']} samples drawn at each size "
                  "(seed {}, the image processor resizes them to the input):".format(data["heldout_seed"]), "",
                  "| drawn at (width x height) | " + " | ".join(scores["by_size"]) + " |",
                  "|---|" + "---|" * len(scores["by_size"]),
                  f"| {METRIC_NAMES[metric]} | " + " | ".join(f"{v:.4f}" for v in scores["by_size"].values()) + " |"]
    per_class_key, heading = (("per_class_iou", "IoU") if "per_class_iou" in scores
                              else ("per_class_accuracy", "accuracy (recall)"))
    lines += ["", f"### Per-class {heading}", "", f"| id | class | {heading} |", "|---|---|---|"]
    for class_id, (name, value) in enumerate(scores[per_class_key].items()):
        lines.append(f"| {class_id} | {name} | {'absent' if value is None else f'{value:.4f}'} |")
    lines += [
        "",
        "## Training",
        "",
        "| | |",
        "|---|---|",
        f"| data | `edgeforge.data.synth` `{data['kind']}` (generator version {data['generator_version']}), "
        f"{data['train_samples']} samples drawn with seed {data['train_seed']} at {drawn_at(data)}, each resized "
        f"to the {data['size']}x{data['size']} input by the image processor, "
        f"iterated in epochs{', half of each batch mirrored (left/right classes swapped)' if settings['mirror'] else ''} |",
        f"| held-out split | {data['heldout_samples']} samples, seed {data['heldout_seed']} |",
        f"| architecture | {arch} ({record['parameters']:,} parameters) |",
        f"| seed | {settings['seed']} (weights, batch order, mirroring, training data) |",
        f"| steps | {settings['steps']}: {phase_text(record['phases'])} |",
        f"| initialisation | seeded; {describe(reference['model_type'])} |",
        f"| optimizer | AdamW, peak learning rate {settings['learning_rate']:g}, weight decay {settings['weight_decay']:g}, "
        f"linear warm-up over {settings['warmup_fraction']:.0%} of the steps then cosine decay, "
        f"gradient norm clipped at {settings['max_grad_norm']:g}"
        f"{'' if settings['dropout'] else '; dropout and stochastic depth off'} |",
        f"| loss | {loss_text(record)}: {record['loss']['first']:.3f} (first 5 % of steps) -> "
        f"{record['loss']['last']:.3f} (last 5 %) |",
        f"| wall time | {seconds['total']:.0f} s: drawing data {seconds['data']:.0f} s, training {seconds['train']:.0f} s, "
        f"evaluation {seconds['evaluate']:.0f} s (CPU, {record['torch_threads']} torch threads) |",
        "",
        "## Reproduce",
        "",
        "```",
        record["command"],
        "```",
        "",
    ]
    return "\n".join(lines)


def drawn_at(data: dict) -> str:
    if data.get("draw_size", data["size"]) == "mixed":
        return f"mixed sizes (one of {', '.join(data['mixed_sizes'])} each)"
    side = data.get("draw_size", data["size"])
    return f"{side}x{side}"


def phase_text(phases: list[dict]) -> str:
    return ", then ".join(
        f"{p['steps']} on {'crops' if p['crop'] else 'whole samples'} at {p['size']}x{p['size']} in batches of {p['batch_size']}"
        for p in phases)


def loss_text(record: dict) -> str:
    settings = record["settings"]
    if record["metric"] != "mean_iou":
        if not settings["part_loss_weight"]:
            return "cross-entropy (transformers' own)"
        return (f"cross-entropy of the [CLS] prediction + {settings['part_loss_weight']:g} x an auxiliary face-part "
                f"loss (each patch token predicts the generator's part labels at {settings['part_cells']}x"
                f"{settings['part_cells']} points of its patch, through a linear head used in training only)")
    weighted = " with ENet class weights 1/ln(1.02 + pixel frequency)" if settings["class_weighting"] else ""
    dice = (f" + {settings['dice_weight']:g} x soft Dice (mean over the classes present; it lifts the small parts "
            f"that cross-entropy lets the large ones outvote)") if settings["dice_weight"] else ""
    return (f"cross-entropy on logits upsampled bilinearly to the label size (transformers' SegFormer loss)"
            f"{weighted}{dice}")
