"""Architecture and label facts of the three reference checkpoints (JSON only, no torch).

The ground floor under ``data`` (synthetic scenes label with these names) and ``zoo`` (checkpoints are
built from these facts): neither imports the other for them.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from edgeforge.errors import EdgeforgeError

_DIR = Path(__file__).parent

#: reference name -> file stem; the names are what `edgeforge zoo make` accepts.
REFERENCE_NAMES = ("face-parsing", "clothes-parsing", "facial-emotions")
#: reference name -> the synthetic dataset kind (``edgeforge data synth KIND``) drawn with its labels.
SYNTHETIC_KIND = {"face-parsing": "faces", "clothes-parsing": "people", "facial-emotions": "expressions"}
#: synthetic dataset kind -> reference name
REFERENCE_FOR_KIND = {kind: name for name, kind in SYNTHETIC_KIND.items()}


@lru_cache(maxsize=None)
def load_reference(name: str) -> dict:
    """Return the facts of a reference checkpoint (architecture, image processor, id2label)."""
    if name not in REFERENCE_NAMES:
        raise EdgeforgeError(f"unknown reference model {name!r}; choose one of {', '.join(REFERENCE_NAMES)}")
    return json.loads((_DIR / f"{name}.json").read_text())


def label_names(name: str) -> list[str]:
    """Class names of a reference checkpoint, ordered by class id."""
    id2label = load_reference(name)["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]
