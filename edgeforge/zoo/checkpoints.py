"""Architecture-faithful checkpoints (made here) and safe loading of any checkpoint (local or hub).

Made checkpoints use the standard Hugging Face layout (config.json, model.safetensors,
preprocessor_config.json), so everything downstream goes through ``from_pretrained`` exactly as it
would for the real hub checkpoint.
"""

from __future__ import annotations

import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeforge.atomic import atomic_directory
from edgeforge.errors import EdgeforgeError
from edgeforge.families import Family, family_for
from edgeforge.jsonfile import read_json_object
from edgeforge.references import load_reference

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
#: What every checkpoint directory holds: a directory with it may be replaced by a newly made checkpoint.
CHECKPOINT_MARK = "config.json"


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
    with atomic_directory(out_dir, replaces=CHECKPOINT_MARK) as staging:
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
    else:
        _check_hub_id(source)
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


#: A Hugging Face hub id: NAME or OWNER/NAME, letters, digits, '-', '_', '.' (no path-like parts).
_HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")
#: One look-up, then a clear answer: transformers alone retries an unreachable hub for 30-40 s.
HUB_TIMEOUT_S = 5.0


def _check_hub_id(source: str) -> None:
    """A source that is not on disk is taken for a hub id only if it can be one and does not look like a
    mistyped local path (its first part is a local directory, or it has a file suffix); then one short
    look-up, or the hub's local cache, decides before transformers starts its retries."""
    first = Path(source).parts[0] if Path(source).parts else source
    looks_local = (not _HUB_ID.match(source) or Path(first).is_dir() or "\\" in source
                   or Path(source).suffix.lower() in (".json", ".safetensors", *PICKLE_SUFFIXES))
    if looks_local:
        raise EdgeforgeError(f"checkpoint {source!r} does not exist")
    import huggingface_hub

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or isinstance(
            huggingface_hub.try_to_load_from_cache(source, "config.json"), str):
        return  # offline with a cache, or cached: transformers reads the cache
    import urllib.error
    import urllib.request

    # One HEAD request through urllib (huggingface_hub's own client retries with back-off).
    request = urllib.request.Request(huggingface_hub.hf_hub_url(source, "config.json"), method="HEAD")
    try:
        urllib.request.urlopen(request, timeout=HUB_TIMEOUT_S).close()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return  # private or gated: transformers asks again, with the user's token
        raise EdgeforgeError(f"checkpoint {source!r} is not a local directory, and the Hugging Face hub has no "
                             f"such repository (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EdgeforgeError(f"checkpoint {source!r} is not a local directory, and the Hugging Face hub could not "
                             f"be reached to look it up ({reason})") from None


def _check_local_checkpoint(path: Path, trust_pickle: bool) -> None:
    if path.is_file():
        if path.suffix in PICKLE_SUFFIXES:
            raise EdgeforgeError(
                f"{path} is a pickle file; pass the checkpoint directory (config.json + weights) instead"
            )
        raise EdgeforgeError(f"{path} is a file; a checkpoint is a directory with config.json and weights")
    if not (path / "config.json").is_file():
        raise EdgeforgeError(f"{path} is not a checkpoint: no config.json")
    for name in ("config.json", "preprocessor_config.json"):  # bounded, one-line errors before transformers
        if (path / name).exists():
            read_json_object(path / name)
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
