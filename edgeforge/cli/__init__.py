"""`edgeforge` command line: a thin layer over the Python API.

Each command lives in its own module exposing ``register(subparsers)``, which adds a parser
whose ``func(args)`` does the work. Build-side modules import torch & co. only inside ``func``
so that ``edgeforge run`` works with the runtime dependencies alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from edgeforge import __version__
from edgeforge.atomic import terminate_as_interrupt
from edgeforge.errors import EdgeforgeError

# Order is the order shown in --help.
COMMAND_MODULES = ("zoo", "data", "export", "build", "quantize", "run", "bench", "check_arm64", "serve_web")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgeforge",
        description="Turn a Hugging Face vision checkpoint into edge artifacts (ONNX, ORT-mobile, Core ML), "
        "quantize them within an accuracy budget, run them, and benchmark them.",
    )
    parser.add_argument("--version", action="version", version=f"edgeforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library warnings and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"edgeforge.cli.{name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Before torch is imported by any command: idle OpenMP workers sleep rather than spin. On a shared CPU
    # spinning workers take the time slices their siblings, or the next model in a benchmark round, need
    # (measured: training ran ~3x slower under load with active waiting).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s: %(message)s")
    if not args.verbose:
        _quiet_libraries()
    try:
        # SIGTERM (kill, a CI timeout, a container stop) ends a command like Ctrl-C: every temporary and
        # staging directory is removed on the way out and the exit status is 130.
        with terminate_as_interrupt():
            return int(args.func(args) or 0)
    except EdgeforgeError as exc:
        print(f"edgeforge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgeforge: interrupted; no partial output was kept", file=sys.stderr)
        _forget_interrupt()
        return 130


def _forget_interrupt() -> None:
    """CPython remembers a KeyboardInterrupt that ended any string ``exec``/``eval`` (code that libraries
    generate at run time) even once it is caught, and ``python -m edgeforge`` then ends by SIGINT instead of
    exiting 130 (seen in about one interrupted build in six). A string eval that completes clears the flag."""
    exec("pass")  # noqa: S102 -- a constant string: the point is that it runs as a string eval


def _quiet_libraries() -> None:
    """Third-party converters print pages of warnings that say nothing actionable to a user."""
    import os
    import warnings

    from edgeforge.runtime.providers import ProviderFallbackWarning

    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", category=ProviderFallbackWarning)  # the user must see a CPU fallback
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    for name in ("transformers", "torch", "coremltools", "onnxruntime", "optimum", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
