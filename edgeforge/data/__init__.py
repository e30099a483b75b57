"""Datasets: procedural ones with pixel-exact labels (``synth``) and readers for real layouts (``datasets``).

Numpy and Pillow only (tqdm optional, for progress bars).
"""

from edgeforge.data.datasets import Dataset, open_dataset
from edgeforge.data.readers import Sample, read_image, read_label_map
from edgeforge.data.synth import (
    KINDS,
    dataset_description,
    label_names_for,
    make_sample,
    write_dataset,
)

__all__ = [
    "KINDS",
    "Dataset",
    "Sample",
    "dataset_description",
    "label_names_for",
    "make_sample",
    "open_dataset",
    "read_image",
    "read_label_map",
    "write_dataset",
]
