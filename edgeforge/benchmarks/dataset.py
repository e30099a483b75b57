"""The images drift is measured on: the user's dataset, or a small synthetic one made to match the model.

Ground truth is used only when it speaks the model's language: same task and the same class names
(in any order: the folder is then re-read with the model's ids). Otherwise drift against fp32 is
still measured and the report says why ground truth was left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgeforge.contract import SEGMENTATION
from edgeforge.errors import EdgeforgeError


@dataclass
class BenchDataset:
    samples: object  # iterable of edgeforge.data.datasets.Sample
    dataset: object  # the Dataset (random access, for re-reading the worst image)
    count: int
    use_labels: bool
    info: dict


def open_bench_dataset(path: str | Path | None, task: str, label_names: list[str], work_dir: Path,
                       synthetic_samples: int, synthetic_size: int, max_samples: int | None,
                       progress: bool, log=print) -> BenchDataset:
    """``path``'s samples (the first ``max_samples``), each checked to read before any timing: unreadable
    ones are skipped with a warning and counted (``Dataset.without_unreadable``), not found at the end."""
    from edgeforge.data.datasets import open_dataset, warn_skipped

    if path is None:
        return _synthetic(task, label_names, work_dir, synthetic_samples, synthetic_size, progress)
    dataset = open_dataset(path)
    if dataset.task is not None and dataset.task != task:
        raise EdgeforgeError(f"dataset {path} is for {dataset.task} but the model does {task}")
    use_labels, note = dataset.has_labels, None
    names = [dataset.id2label[i] for i in sorted(dataset.id2label)] if dataset.id2label else None
    if use_labels and names is not None and names != label_names:
        if sorted(names) == sorted(label_names):
            dataset = open_dataset(path, labels=label_names)  # same classes, another id order
        else:
            use_labels = False
            note = "the dataset's classes differ from the model's: drift against fp32 only, no ground truth"
    total = len(dataset)
    dataset, skipped = dataset.without_unreadable(max_samples)
    warn_skipped(skipped, log)
    count = len(dataset)
    if count == 0:
        raise EdgeforgeError(f"dataset {path} has no readable images" + (f" ({len(skipped)} unreadable)" if skipped else ""))
    info = {"path": str(path), "format": dataset.format, "samples": count, "of": total,
            "skipped_unreadable": len(skipped), "labelled": use_labels, "synthetic": False}
    if note:
        info["note"] = note
    return BenchDataset(iter(dataset), dataset, count, use_labels, info)


def _synthetic(task: str, label_names: list[str], work_dir: Path, n: int, size: int, progress: bool) -> BenchDataset:
    """``edgeforge.data.synth`` images of the kind whose label set is the model's (labelled), or of the
    task's default kind (drift only) when no synthetic kind matches."""
    from edgeforge.data.datasets import open_dataset
    from edgeforge.data.synth import KINDS, label_names_for, write_dataset

    matching = [kind for kind in KINDS if label_names_for(kind) == label_names]
    kind = matching[0] if matching else ("faces" if task == SEGMENTATION else "expressions")
    folder = work_dir / f"synthetic-{kind}"
    write_dataset(kind, n, folder, seed=0, size=size, progress=progress)
    dataset = open_dataset(folder)
    info = {"path": None, "format": "synthetic", "kind": kind, "samples": n, "of": n, "size": size, "seed": 0,
            "labelled": bool(matching), "synthetic": True,
            "generator": f"edgeforge.data.synth.write_dataset({kind!r}, n={n}, seed=0, size={size})"}
    if not matching:
        info["note"] = "no synthetic kind has the model's label set: drift against fp32 only"
    return BenchDataset(iter(dataset), dataset, n, bool(matching), info)
