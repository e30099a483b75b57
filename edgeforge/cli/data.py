"""`edgeforge data`: make synthetic datasets, and describe dataset folders."""

from __future__ import annotations

import argparse
import sys

from edgeforge.contract import CLASSIFICATION

# Kept here rather than imported, so that building the parser does not import numpy/Pillow.
SYNTH_KINDS = ("faces", "people", "expressions")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "data", help="make synthetic datasets and inspect dataset folders",
        description="Make synthetic datasets with pixel-exact labels, and inspect dataset folders.")
    commands = parser.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    commands.required = True

    synth = commands.add_parser(
        "synth", help="draw a synthetic dataset with exact labels",
        description="Draw a procedural dataset: faces (face parsing, 19 classes), people (clothes parsing, "
        "18 classes) or expressions (7 facial emotions). The same seed gives byte-identical files.")
    synth.add_argument("kind", choices=SYNTH_KINDS)
    synth.add_argument("-n", "--count", type=_positive_int, default=100, help="number of images (default 100)")
    synth.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write (replaced atomically)")
    synth.add_argument("--seed", type=_non_negative_int, default=0, help="random seed (default 0)")
    synth.add_argument("--size", default="256", metavar="SIZE",
                       help="a square's side (256, the default), WIDTHxHEIGHT (384x256: a person or face framed in "
                       "a landscape or portrait picture), or 'mixed': each image at one of 14 sizes from 64x64 to "
                       "512x512, square and not, as real inputs come")
    synth.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    synth.set_defaults(func=_run_synth)

    info = commands.add_parser("info", help="describe a dataset folder: format, size, classes present",
                               description="Detect a dataset folder's format and report its size and label coverage.")
    info.add_argument("path", metavar="DIR")
    info.add_argument("--labels", help="comma-separated class names, in id order")
    info.add_argument("--max-samples", type=_positive_int, default=200,
                      help="label maps to read for the coverage of segmentation data (default 200)")
    info.set_defaults(func=_run_info)


def _run_synth(args: argparse.Namespace) -> int:
    from edgeforge.data.synth import parse_size, write_dataset

    summary = write_dataset(args.kind, args.count, args.output, seed=args.seed, size=parse_size(args.size),
                            progress=not args.no_progress)
    print(f"wrote {summary['n']} {args.kind} images to {args.output} in {summary['seconds']:.1f} s "
          f"({summary['images_per_second']:.1f} images/s)")
    return 0


def _run_info(args: argparse.Namespace) -> int:
    from edgeforge.data.datasets import open_dataset, warn_skipped

    labels = [name.strip() for name in args.labels.split(",")] if args.labels else None
    dataset = open_dataset(args.path, labels)
    listed = len(dataset)
    dataset, skipped = dataset.without_unreadable(args.max_samples)
    warn_skipped(skipped, lambda line: print(line, file=sys.stderr))
    print(f"format:  {dataset.format}")
    print(f"task:    {dataset.task or 'unknown (no labels)'}")
    checked = min(listed, args.max_samples)
    print(f"samples: {listed} listed; {len(dataset)} readable, {len(skipped)} unreadable (skipped)"
          + (f" among the first {checked} checked" if checked < listed else ""))
    if dataset.id2label is None:
        print("labels:  unknown (pass --labels to name them)" if dataset.has_labels else "labels:  none")
    if not dataset.has_labels:
        return 0
    counts, scanned = _class_counts(dataset, args.max_samples)
    names = dataset.id2label or {i: str(i) for i in sorted(counts)}
    present = sum(1 for i in names if counts.get(i))
    what = "samples" if dataset.task == CLASSIFICATION else f"of the first {scanned} label maps"
    print(f"classes: {present}/{len(names)} present ({what})")
    for class_id, name in names.items():
        print(f"  {class_id:3d} {name:<16} {counts.get(class_id, 0)}")
    return 0


def _class_counts(dataset, max_samples: int) -> tuple[dict[int, int], int]:
    """Classification: samples per class (from file names). Segmentation: label maps containing each class."""
    import numpy as np

    if dataset.targets is not None:
        return {i: dataset.targets.count(i) for i in set(dataset.targets)}, len(dataset)
    counts: dict[int, int] = {}
    scanned = min(max_samples, len(dataset))
    for index in range(scanned):
        for class_id in np.unique(dataset[index].label).tolist():
            counts[class_id] = counts.get(class_id, 0) + 1
    return counts, scanned


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value
