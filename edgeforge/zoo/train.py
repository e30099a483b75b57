"""Train a mini checkpoint on its synthetic dataset to real accuracy, and write it with a model card.

Accuracy drift of a quantized model against fp32 only means something if fp32 is accurate, so the
minis that tests and demos use are trained here: architecture from ``checkpoint_config(name, mini=True)``,
data drawn by ``edgeforge.data.synth`` at mixed sizes and aspects (a training pool from one seed, a held-out
split from another; the card also scores each of ``CARD_SIZES`` apart),
AdamW with warm-up + cosine decay, PyTorch on CPU. Inputs go through the runtime's ``Preprocessor``,
which mirrors the checkpoint's image processor exactly, so the model sees at inference what it saw in
training. The output is a standard Hugging Face checkpoint directory, written atomically.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from edgeforge.atomic import atomic_directory, check_replaceable
from edgeforge.data.synth import GENERATOR_VERSION, MIXED, MIXED_SIZES, size_text
from edgeforge.environment import package_versions
from edgeforge.errors import EdgeforgeError
from edgeforge.references import REFERENCE_NAMES, SYNTHETIC_KIND
from edgeforge.runtime.preprocess import Preprocessor
from edgeforge.zoo.checkpoints import CHECKPOINT_MARK
from edgeforge.zoo.heldout import evaluate, headline_metric, is_segmentation
from edgeforge.zoo.initialisation import initialise
from edgeforge.zoo.model_card import write_model_card
from edgeforge.zoo.training_data import draw_samples, mirror_table
from edgeforge.zoo.training_loop import Phase, fit, torch_logits

#: Seed of the held-out split the model card reports. Training data is drawn with the training seed,
#: which must differ; the tests draw yet another split (their own seed).
HELDOUT_SEED = 1000
#: The input sizes the model card scores separately (a mini must hold at each; the headline is on
#: mixed sizes). Parsing is not asked to hold at 64 px: the parts of a 64-px face are a pixel or two.
CARD_SIZES = {"segmentation": (128, 256, 512, (384, 256), (256, 512)),
              "classification": (64, 128, 256, 512, (384, 256), (256, 512))}


@dataclass(frozen=True)
class TrainSettings:
    """What one training run does; ``train_mini`` applies it."""

    steps: int
    batch_size: int
    learning_rate: float
    pool_size: int  # training samples drawn once, then iterated over in epochs (with mirroring)
    heldout_size: int
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    max_grad_norm: float = 1.0
    mirror: bool = True
    dropout: bool = False  # dropout and stochastic depth during training (see training_loop.without_dropout)
    # Segmentation only, cheaper steps first (a 128-pixel input costs a quarter of a 256 one):
    # progressive resizing: whole samples scaled down to low_res_size (the layout, at half scale), ...
    low_res_fraction: float = 0.0
    low_res_size: int = 128
    low_res_batch_size: int = 16
    # ... then windows of crop_size at full scale, mostly on the subject (the thin parts), ...
    crop_fraction: float = 0.0
    crop_size: int = 128
    crop_batch_size: int = 16
    # ... and the remaining steps on whole samples at full size, in batches of batch_size.
    class_weighting: bool = True  # segmentation: ENet class weights in the cross-entropy
    dice_weight: float = 0.0  # segmentation: weight of a soft Dice term added to the cross-entropy
    # Expressions: weight of the auxiliary face-part loss on the patch tokens (training_loop.PartHead);
    # 0 draws no part maps and trains on the emotion labels alone.
    part_loss_weight: float = 0.0
    part_cells: int = 4  # part labels per patch side
    seed: int = 0  # weights, batch order, mirroring, and the training data's seed
    threads: int = 2
    # The sizes the training pictures are drawn at (a side, or "mixed": edgeforge.data.synth.MIXED_SIZES),
    # each then resized by the image processor as at inference: a model trained at one size only is lost
    # at another (the emotions mini trained at 64 px alone scored 0.68 on 256-px drawings).
    draw_size: int | str = MIXED


#: Tuned on the held-out split (mIoU / top-1 at 200 / 280 samples; the experiments are in the closing
#: notes of issues 3 and 21). Segmentation: a fifth of the steps at low resolution, then crops, then whole
#: samples; soft Dice on top of cross-entropy lifted both parsers by ~0.05-0.09 mIoU. Expressions: the
#: auxiliary part loss is what gets the ViT off chance level on a few thousand samples. Drawn at mixed
#: sizes, the minis need more steps than at one size (issue 21): emotions at 64 px went 0.74 -> 0.84 from
#: 3000 to 6000 steps (0.91 at 9000), face parsing at 1:2 portraits 0.60 -> 0.65 from 1800 to 3000 (0.76 at
#: 4000), people in 3:2 landscapes 0.68 -> 0.70 from 3000 to 4000 -> 0.74-0.75 at 6000 (three fresh seeds).
DEFAULT_SETTINGS = {
    "face-parsing": TrainSettings(steps=4000, batch_size=8, learning_rate=1e-2, pool_size=1500, heldout_size=200,
                                  low_res_fraction=0.2, crop_fraction=0.6, dice_weight=1.0),
    "clothes-parsing": TrainSettings(steps=6000, batch_size=8, learning_rate=1e-2, pool_size=4000, heldout_size=200,
                                     low_res_fraction=0.2, crop_fraction=0.4, crop_size=192, crop_batch_size=8,
                                     dice_weight=1.0),
    "facial-emotions": TrainSettings(steps=9000, batch_size=32, learning_rate=2e-3, pool_size=16000, heldout_size=280,
                                     weight_decay=0.05, part_loss_weight=1.0),
}


def settings_for(name: str, **overrides) -> TrainSettings:
    """The default settings of ``name`` with the given fields replaced (``None`` keeps the default)."""
    if name not in REFERENCE_NAMES:
        raise EdgeforgeError(f"unknown reference model {name!r}; choose one of {', '.join(REFERENCE_NAMES)}")
    settings = replace(DEFAULT_SETTINGS[name], **{k: v for k, v in overrides.items() if v is not None})
    if min(settings.steps, settings.batch_size, settings.pool_size, settings.heldout_size, settings.threads) < 1:
        raise EdgeforgeError("steps, batch size, pool size, held-out size and threads must all be at least 1")
    if settings.low_res_fraction < 0 or settings.crop_fraction < 0 or settings.low_res_fraction + settings.crop_fraction > 1:
        raise EdgeforgeError("the low-resolution and crop fractions must be 0 or more and add up to at most 1")
    segmentation = is_segmentation(name)  # only segmentation has the low-resolution and crop phases
    used_batches = [settings.batch_size]
    used_batches += [settings.low_res_batch_size] if segmentation and settings.low_res_fraction else []
    used_batches += [settings.crop_batch_size] if segmentation and settings.crop_fraction else []
    if settings.pool_size < max(used_batches):
        raise EdgeforgeError(f"the training pool ({settings.pool_size}) is smaller than one batch")
    if settings.part_loss_weight and SYNTHETIC_KIND[name] != "expressions":
        raise EdgeforgeError("the part loss needs part maps, which only the expressions dataset draws")
    if settings.seed < 0 or settings.seed == HELDOUT_SEED:
        raise EdgeforgeError(f"the training seed must be 0 or more and not {HELDOUT_SEED} (the held-out split's)")
    return settings


def train_mini(name: str, out_dir: str | Path, steps: int | None = None, seed: int = 0, *,
               progress: bool = True, log=print, **overrides) -> dict:
    """Train the mini ``name`` and write it to ``out_dir``; return the run's record (scores included).

    ``overrides`` replace other ``TrainSettings`` fields (batch_size, learning_rate, pool_size, ...).
    """
    import torch

    settings = settings_for(name, steps=steps, seed=seed, **overrides)
    check_replaceable(out_dir, CHECKPOINT_MARK)  # before minutes of training, not after
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(name, Path(out_dir), settings, progress, log)
    finally:
        torch.set_num_threads(previous_threads)


def phases(settings: TrainSettings, full_size: int, segmentation: bool) -> list[Phase]:
    """The run's phases: low resolution, crops, whole samples (the first two for segmentation only:
    ViT's position grid is fixed to the full input size)."""
    low_steps = round(settings.low_res_fraction * settings.steps) if segmentation else 0
    crop_steps = round(settings.crop_fraction * settings.steps) if segmentation else 0
    plan = [Phase(low_steps, settings.low_res_size, settings.low_res_batch_size),
            Phase(crop_steps, settings.crop_size, settings.crop_batch_size, crop=True),
            Phase(settings.steps - low_steps - crop_steps, full_size, settings.batch_size)]
    return [phase for phase in plan if phase.steps > 0]


def _train(name: str, out_dir: Path, settings: TrainSettings, progress: bool, log) -> dict:
    import torch

    from edgeforge.families import family_for
    from edgeforge.zoo.checkpoints import checkpoint_config, checkpoint_image_processor

    started = time.perf_counter()
    processor = checkpoint_image_processor(name, mini=True)
    preprocessor = Preprocessor.from_config(processor.to_dict())
    size = preprocessor.height  # the model's input side
    # Drawn before torch runs anything, so the worker processes fork from a thread-free parent. The pool is
    # resized to the input once, as the processor would; the held-out splits keep their own sizes, and
    # label maps are compared at them (what an app gets).
    pool = draw_samples(name, settings.seed, settings.pool_size, settings.draw_size, settings.threads, progress,
                        "training pool", parts=settings.part_loss_weight > 0, fit_to=preprocessor)
    heldout = draw_samples(name, HELDOUT_SEED, settings.heldout_size, MIXED, settings.threads, progress, "held-out")
    by_size = {size_text(card_size): draw_samples(name, HELDOUT_SEED, settings.heldout_size, card_size,
                                                  settings.threads, False)
               for card_size in CARD_SIZES["segmentation" if is_segmentation(name) else "classification"]}
    data_seconds = time.perf_counter() - started

    config = checkpoint_config(name, mini=True)
    torch.manual_seed(settings.seed)
    model = family_for(config.model_type).transformers_class("model_class")(config)
    initialise(model, settings.seed)
    fit_started = time.perf_counter()
    plan = phases(settings, size, is_segmentation(name))
    losses = fit(model, pool, preprocessor, mirror_table(name) if settings.mirror else None, plan, settings,
                 progress)
    train_seconds = time.perf_counter() - fit_started

    model.eval()
    eval_started = time.perf_counter()
    scores = evaluate(name, torch_logits(model), preprocessor, heldout)
    metric = headline_metric(name)
    scores["by_size"] = {text: evaluate(name, torch_logits(model), preprocessor, samples)[metric]
                         for text, samples in by_size.items()}
    eval_seconds = time.perf_counter() - eval_started
    tail = max(1, len(losses) // 20)
    record = {
        "name": f"{name}-mini",
        "reference": name,
        "settings": asdict(settings),
        "phases": [asdict(phase) for phase in plan],
        "architecture": {key: getattr(config, key) for key in family_for(config.model_type).architecture_keys},
        "parameters": sum(p.numel() for p in model.parameters()),
        "data": {"generator": "edgeforge.data.synth", "generator_version": GENERATOR_VERSION,
                 "kind": SYNTHETIC_KIND[name], "size": size, "draw_size": settings.draw_size,
                 "mixed_sizes": [size_text(framing) for framing in MIXED_SIZES],
                 "train_seed": settings.seed, "train_samples": settings.pool_size,
                 "heldout_seed": HELDOUT_SEED, "heldout_samples": settings.heldout_size},
        "loss": {"first": float(np.mean(losses[:tail])), "last": float(np.mean(losses[-tail:])), "history": losses},
        "seconds": {"data": data_seconds, "train": train_seconds, "evaluate": eval_seconds,
                    "total": time.perf_counter() - started},
        "torch_threads": torch.get_num_threads(),
        "versions": package_versions(("torch", "transformers")),
        "metric": metric,
        "scores": scores,
        "command": reproduce_command(name, settings),
    }
    with atomic_directory(out_dir, replaces=CHECKPOINT_MARK) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
        write_model_card(staging / "README.md", record)
    log(f"{name}-mini: {metric} {scores[metric]:.4f} on {settings.heldout_size} held-out samples of mixed sizes "
        f"({', '.join(f'{text} {value:.3f}' for text, value in scores['by_size'].items())}); "
        f"trained {settings.steps} steps in {train_seconds:.0f} s; wrote {out_dir}")
    return record


#: TrainSettings fields that `edgeforge zoo train` takes as options.
CLI_OPTIONS = ("steps", "seed", "batch_size", "learning_rate", "pool_size", "heldout_size", "threads")


def reproduce_command(name: str, settings: TrainSettings) -> str:
    """The shortest call that repeats this run: the CLI when its options can express it, else Python."""
    changed = {key: value for key, value in asdict(settings).items()
               if key in ("steps", "seed") or value != getattr(DEFAULT_SETTINGS[name], key)}
    if set(changed) <= set(CLI_OPTIONS):
        options = " ".join(f"--{key.replace('_', '-')} {value}" for key, value in changed.items())
        return f"edgeforge zoo train {name} -o {name}-mini {options}"
    arguments = ", ".join(f"{key}={value!r}" for key, value in changed.items())
    return f"python -c \"from edgeforge.zoo.train import train_mini; train_mini({name!r}, '{name}-mini', {arguments})\""
