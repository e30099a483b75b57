"""Model families: one module each, registered here by one line.

Adding a family (say DeiT, or another SegFormer checkpoint layout) means writing one module that declares a
``Family`` -- its transformers classes, ONNX I/O, mini size, and as objects its exact rewrites, fusion
profile and quantization units -- and importing it below. The zoo, exporter and quantizers only read
declarations; ``tests/test_structure.py`` adds a throwaway family through ``register`` alone.
"""

from __future__ import annotations

from edgeforge.families.base import (
    FAMILIES,
    Family,
    FusionProfile,
    Rewrite,
    family_for,
    register,
)

__all__ = ["FAMILIES", "Family", "FusionProfile", "Rewrite", "family_for", "register"]

# The registry: one line per family module.
from edgeforge.families import segformer, vit  # noqa: E402, F401
