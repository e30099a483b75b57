"""`edgeforge zoo make`: architecture-faithful checkpoints of the reference models."""

from __future__ import annotations

from edgeforge.zoo.reference import REFERENCE_NAMES


def register(sub) -> None:
    zoo = sub.add_parser("zoo", help="make architecture-faithful checkpoints of the reference models")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION")
    zoo_sub.required = True
    make = zoo_sub.add_parser(
        "make",
        help="write a checkpoint (config.json, model.safetensors, preprocessor_config.json)",
        description="Write a checkpoint with the exact architecture, labels and image-processor settings of a "
        "reference model and seeded random weights: full size for size/latency work, --mini for tests.",
    )
    make.add_argument("name", choices=REFERENCE_NAMES, help="reference model")
    make.add_argument("--mini", action="store_true", help="narrow, shallow sibling of the same family (fast tests)")
    make.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    make.add_argument("-o", "--output", required=True, help="output checkpoint directory")
    make.set_defaults(func=_make)


def _make(args) -> int:
    from edgeforge.zoo.checkpoints import make_checkpoint

    path = make_checkpoint(args.name, args.output, mini=args.mini, seed=args.seed)
    print(f"wrote {'mini ' if args.mini else ''}{args.name} checkpoint to {path}")
    return 0
