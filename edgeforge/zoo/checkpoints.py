"""Architecture-faithful checkpoints (made here) and safe loading of any checkpoint (local or hub).

Made checkpoints use the standard Hugging Face layout (config.json, model.safetensors,
preprocessor_config.json), so everything downstream goes through ``from_pretrained`` exactly as it
would for the real hub checkpoint.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge.atomic import atomic_directory
from edgeforge.errors import EdgeforgeError
from edgeforge.families import Family, family_for
from edgeforge.references import load_reference

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")


@dataclass
class Checkpoint:
    """A loaded checkpoint: the PyTorch model in eval mode, its image processor and its family."""

    source: str
    model: Any
    image_processor: Any
    family: Family

    @property
    def config(self):
        return self.model.config


def checkpoint_config(name: str, mini: bool = False):
    """The transformers config of a reference checkpoint (or its mini sibling), labels included."""
    ref = load_reference(name)
    family = family_for(ref["model_type"])
    arch = {key: ref[key] for key in family.architecture_keys}
    if mini:
        arch.update(family.mini_architecture)
        if "image_size" in arch:
            arch["image_size"] = family.mini_image_size
    id2label = {int(k): v for k, v in ref["id2label"].items()}
    config_class = family.transformers_class("config_class")
    return config_class(
        **arch,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
        architectures=[family.model_class],
    )


def checkpoint_image_processor(name: str, mini: bool = False):
    ref = load_reference(name)
    family = family_for(ref["model_type"])
    settings = ref["image_processor"]
    size = dict(settings["size"])
    if mini:
        size = {"height": family.mini_image_size, "width": family.mini_image_size}
    processor_class = family.transformers_class("image_processor_class")
    from PIL import Image

    return processor_class(
        do_resize=True,
        size=size,
        resample=Image.Resampling[settings["resample"].upper()],
        do_rescale=True,
        rescale_factor=settings["rescale_factor"],
        do_normalize=True,
        image_mean=settings["image_mean"],
        image_std=settings["image_std"],
    )


def make_checkpoint(name: str, out_dir: str | Path, mini: bool = False, seed: int = 0) -> Path:
    """Write an architecture-faithful checkpoint with seeded random weights to ``out_dir``."""
    import torch

    config = checkpoint_config(name, mini)
    family = family_for(config.model_type)
    torch.manual_seed(seed)
    model = family.transformers_class("model_class")(config).eval()
    processor = checkpoint_image_processor(name, mini)
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, must_contain="config.json") as staging:
        model.save_pretrained(staging, safe_serialization=True)
        processor.save_pretrained(staging)
    return out_dir


def load_checkpoint(source: str | Path, trust_pickle: bool = False) -> Checkpoint:
    """Load a checkpoint from a local directory or a hub id, safetensors only unless ``trust_pickle``.

    Pickle weights can run arbitrary code when unpickled, so they are refused by default; a
    checkpoint's own Python code (``auto_map`` in config.json) is never run (trust_remote_code=False:
    transformers would otherwise ask on a terminal). Even with ``trust_pickle``, transformers unpickles
    with torch's weights_only loader, which refuses pickles that call arbitrary functions.
    """
    source = str(source)
    local = Path(source)
    if local.exists():
        _check_local_checkpoint(local, trust_pickle)
    elif source.startswith((".", "/", "~")) or source.count("/") > 1:
        raise EdgeforgeError(f"checkpoint {source!r} does not exist")
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise EdgeforgeError(f"cannot read the config of checkpoint {source!r}: {_first_line(exc)}") from None
    family = family_for(config.model_type)
    model_class = family.transformers_class("model_class")
    try:
        model = model_class.from_pretrained(
            source, use_safetensors=None if trust_pickle else True, trust_remote_code=False
        )
        processor = transformers.AutoImageProcessor.from_pretrained(source, use_fast=False, trust_remote_code=False)
    except (OSError, ValueError, RuntimeError, EnvironmentError, pickle.UnpicklingError) as exc:
        raise EdgeforgeError(f"cannot load checkpoint {source!r}: {_first_line(exc)}") from None
    except Exception as exc:  # safetensors raises its own error types for corrupt files
        if type(exc).__module__.startswith("safetensors"):
            raise EdgeforgeError(f"checkpoint {source!r} has corrupt weights: {_first_line(exc)}") from None
        raise
    return Checkpoint(source=source, model=model.eval(), image_processor=processor, family=family)


def _check_local_checkpoint(path: Path, trust_pickle: bool) -> None:
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise EdgeforgeError(
                f"{path} is a pickle file; pass the checkpoint directory (config.json + weights) instead"
            )
        raise EdgeforgeError(f"{path} is a file; a checkpoint is a directory with config.json and weights")
    if not (path / "config.json").is_file():
        raise EdgeforgeError(f"{path} is not a checkpoint: no config.json")
    has_safetensors = any(path.glob("*.safetensors"))
    pickles = sorted(p.name for p in path.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if not has_safetensors and pickles and not trust_pickle:
        raise EdgeforgeError(
            f"{path} holds only pickle weights ({', '.join(pickles)}), which can execute code when loaded; "
            "convert them to safetensors, or pass --trust-pickle if you trust their origin"
        )
    if not has_safetensors and not pickles:
        raise EdgeforgeError(f"{path} has no weights (model.safetensors)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
