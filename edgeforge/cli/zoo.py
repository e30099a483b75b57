"""`edgeforge zoo make` / `edgeforge zoo train`: checkpoints of the reference models, random or trained."""

from __future__ import annotations

from edgeforge.errors import EdgeforgeError
from edgeforge.references import REFERENCE_NAMES


def register(sub) -> None:
    zoo = sub.add_parser("zoo", help="make architecture-faithful checkpoints of the reference models")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", metavar="ACTION")
    zoo_sub.required = True
    _register_make(zoo_sub)
    _register_train(zoo_sub)


def _register_make(zoo_sub) -> None:
    make = zoo_sub.add_parser(
        "make",
        help="write a checkpoint (config.json, model.safetensors, preprocessor_config.json)",
        description="Write a checkpoint with the exact architecture, labels and image-processor settings of a "
        "reference model and seeded random weights: full size for size/latency work, --mini for tests. "
        "--mini --trained writes the shipped mini trained on edgeforge's synthetic data instead.",
    )
    make.add_argument("name", choices=REFERENCE_NAMES, help="reference model")
    make.add_argument("--mini", action="store_true", help="narrow, shallow sibling of the same family (fast tests)")
    make.add_argument("--trained", action="store_true",
                      help="with --mini: the shipped mini trained on synthetic data (real accuracy), not random weights")
    make.add_argument("--seed", type=int, default=None, help="weight initialisation seed (default 0)")
    make.add_argument("-o", "--output", required=True, help="output checkpoint directory")
    make.set_defaults(func=_make)


def _register_train(zoo_sub) -> None:
    train = zoo_sub.add_parser(
        "train",
        help="train the mini of a reference model on synthetic data and write it with a model card",
        description="Train the mini architecture of a reference model on edgeforge's synthetic dataset for its "
        "task (drawn on the fly, a held-out split from another seed), on CPU, and write a checkpoint "
        "(config.json, model.safetensors, preprocessor_config.json, README.md model card with held-out scores).",
    )
    train.add_argument("name", choices=REFERENCE_NAMES, help="reference model")
    train.add_argument("-o", "--output", required=True, help="output checkpoint directory")
    train.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the model's tuned value)")
    train.add_argument("--seed", type=int, default=0, help="seed of weights, batch order and training data (default 0)")
    train.add_argument("--batch-size", type=int, default=None, help="default: the model's tuned value")
    train.add_argument("--learning-rate", type=float, default=None, help="peak AdamW learning rate")
    train.add_argument("--pool-size", type=int, default=None, help="training samples drawn once and iterated over")
    train.add_argument("--heldout-size", type=int, default=None, help="held-out samples scored for the model card")
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads (default 2)")
    train.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(func=_train)


def _make(args) -> int:
    if args.trained:
        if not args.mini:
            raise EdgeforgeError("--trained needs --mini: only the mini checkpoints are trained (on synthetic data)")
        if args.seed is not None:
            raise EdgeforgeError("--seed sets random initial weights; --trained copies the shipped trained weights")
        from edgeforge.zoo.shipped import copy_trained_checkpoint

        path = copy_trained_checkpoint(args.name, args.output)
        print(f"wrote trained mini {args.name} checkpoint to {path}")
        return 0
    from edgeforge.zoo.checkpoints import make_checkpoint

    path = make_checkpoint(args.name, args.output, mini=args.mini, seed=args.seed or 0)
    print(f"wrote {'mini ' if args.mini else ''}{args.name} checkpoint to {path}")
    return 0


def _train(args) -> int:
    from edgeforge.zoo.train import (
        train_mini,  # OMP_WAIT_POLICY is set by the CLI's main
    )

    train_mini(args.name, args.output, steps=args.steps, seed=args.seed, batch_size=args.batch_size,
               learning_rate=args.learning_rate, pool_size=args.pool_size, heldout_size=args.heldout_size,
               threads=args.threads, progress=not args.no_progress)
    return 0
