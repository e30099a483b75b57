"""The stages that loop over the target declarations: ``build`` (stage 1, export) and ``quantize`` (stage 2,
precisions within the accuracy budget). Above ``export``/``quantize`` (the implementations) and ``targets``
(the declarations that wire them), so no package imports a stage it serves.
"""

from edgeforge.stages.build import build
from edgeforge.stages.quantize import quantize

__all__ = ["build", "quantize"]
