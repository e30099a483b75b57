#!/usr/bin/env python3
"""Retrain the shipped minis into edgeforge/zoo/trained/<name>-mini/, one after another.

    python scripts/train_minis.py                  # all three, the tuned default settings
    python scripts/train_minis.py face-parsing     # just one

Each is the same as `edgeforge zoo train NAME -o edgeforge/zoo/trained/NAME-mini`.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    # Before torch is imported: spinning OpenMP workers waste a shared CPU (see edgeforge/cli/zoo.py).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from edgeforge.errors import EdgeforgeError
    from edgeforge.references import REFERENCE_NAMES
    from edgeforge.zoo.shipped import TRAINED_DIR, trained_dir_name
    from edgeforge.zoo.train import train_mini

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"reference models to retrain (default: all of {', '.join(REFERENCE_NAMES)})")
    parser.add_argument("--seed", type=int, default=0, help="training seed (default 0, the shipped minis')")
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in REFERENCE_NAMES]
    if unknown:
        parser.error(f"unknown reference model(s) {', '.join(unknown)}; choose from {', '.join(REFERENCE_NAMES)}")
    records = []
    try:
        for name in args.names or REFERENCE_NAMES:
            records.append(train_mini(name, TRAINED_DIR / trained_dir_name(name), seed=args.seed))
    except EdgeforgeError as exc:
        print(f"train_minis: error: {exc}", file=sys.stderr)
        return 2
    for record in records:
        metric = record["metric"]
        print(f"{record['name']:<22} {metric} {record['scores'][metric]:.4f}  "
              f"{record['settings']['steps']} steps  {record['seconds']['total']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
