"""The trained minis shipped inside the package (``edgeforge/zoo/trained/<name>-mini/``).

Standard library only: finding and copying them needs neither torch nor transformers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from edgeforge.atomic import atomic_directory
from edgeforge.errors import EdgeforgeError
from edgeforge.references import load_reference
from edgeforge.zoo.checkpoints import CHECKPOINT_MARK

TRAINED_DIR = Path(__file__).with_name("trained")
CHECKPOINT_FILES = ("config.json", "model.safetensors", "preprocessor_config.json", "README.md")


def trained_dir_name(name: str) -> str:
    return f"{name}-mini"


def trained_checkpoint(name: str) -> Path:
    """The shipped directory of the trained mini of reference ``name`` (a loadable HF checkpoint)."""
    load_reference(name)  # unknown names fail with the list of known ones
    path = TRAINED_DIR / trained_dir_name(name)
    missing = [f for f in CHECKPOINT_FILES if not (path / f).is_file()]
    if missing:
        raise EdgeforgeError(
            f"the trained {name} mini is not shipped in {path} (missing {', '.join(missing)}); "
            "the trained minis are not shipped in this version"
        )
    return path


def copy_trained_checkpoint(name: str, out_dir: str | Path) -> Path:
    """Write a copy of the shipped trained mini ``name`` to ``out_dir`` (atomically)."""
    source = trained_checkpoint(name)
    out_dir = Path(out_dir)
    with atomic_directory(out_dir, replaces=CHECKPOINT_MARK) as staging:
        for file_name in CHECKPOINT_FILES:
            shutil.copy2(source / file_name, staging / file_name)
    return out_dir
