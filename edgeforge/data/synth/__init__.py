"""Procedural datasets with pixel-exact labels: ``faces`` (face parsing), ``people`` (clothes parsing)
and ``expressions`` (facial-emotion classification).

Every shape is drawn twice with the same geometry: its colour on the RGB image and its class id on
the label map. ImageDraw never antialiases, so both rasterize exactly the same pixels. Camera effects
(lighting, blur, noise) are applied to the RGB image afterwards; the labels stay exact.

A sample depends only on (seed, kind, index), so one can be made on its own, in any order, in any
process: ``make_sample`` is what on-the-fly training data calls; ``write_dataset`` writes a folder in
the layout of the real datasets (CelebAMask-HQ/ATR-like image + label PNG pairs, or one folder per
class for expressions).

Left/right convention (faces and people): "left" is the *person's* left, which is the *image right*
when they face the camera, as in anatomy and ATR. In the local drawing coordinates below, +x is the
image right, so every ``l_*``/``Left-*`` part is drawn at +x.
"""

from edgeforge.data.synth import writer  # noqa: F401 -- the module, for tests that patch it
from edgeforge.data.synth.samples import (
                                          GENERATOR_VERSION,
                                          KINDS,
                                          MIN_SIZE,
                                          MIXED,
                                          MIXED_SIZES,
                                          Size,
                                          label_names_for,
                                          make_expression_sample,
                                          make_sample,
                                          parse_size,
                                          sample_size,
                                          size_text,
)
from edgeforge.data.synth.writer import dataset_description, write_dataset

__all__ = ["GENERATOR_VERSION", "KINDS", "MIN_SIZE", "MIXED", "MIXED_SIZES", "Size", "dataset_description",
           "label_names_for", "make_expression_sample", "make_sample", "parse_size", "sample_size", "size_text",
           "write_dataset"]
