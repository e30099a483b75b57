"""`edgeforge check-arm64`: prove that artifacts built here run on aarch64 and agree with this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgeforge.errors import EdgeforgeError


def register(sub) -> None:
    check = sub.add_parser(
        "check-arm64",
        help="run every variant of artifacts on an emulated aarch64 runtime and compare with this machine",
        description="Builds (once, cached) a Debian arm64 root with mmdebstrap, installs edgeforge's runtime "
        "there from PyPI's manylinux aarch64 wheels (numpy + onnxruntime + Pillow; openvino and ai-edge-litert "
        "for the IR and .tflite variants; at this machine's versions), runs every variant of each artifact there under "
        "qemu-aarch64-static and here on the same images, and compares: float variants must agree on >= 99.99 % "
        "of pixels (every top-1 for classifiers), the others must stay within the artifact's accuracy budget "
        "of their x86 selves. Prints a table; a variant that cannot run on aarch64 is listed x86-only with the "
        "reason. Exit status 1 if a variant fails on both platforms or differs beyond its bar, 2 for bad input. "
        "Needs Debian's mmdebstrap and qemu-user-static. Timings under emulation mean nothing and are not shown.",
    )
    check.add_argument("artifacts", nargs="+", help="artifact directories (built on this machine)")
    check.add_argument("-o", "--output", help="also write the report here (arm64-check.md and .json)")
    check.add_argument("--record", action="store_true",
                       help="write each verdict into the artifact's manifest.json (variants.V.platforms.aarch64)")
    check.add_argument("--cache", help="where the aarch64 root and wheels are kept (default ~/.cache/edgeforge/arm64)")
    check.set_defaults(func=_check)


def _check(args) -> int:
    from edgeforge.atomic import atomic_directory, check_replaceable
    from edgeforge.portability import arm64
    from edgeforge.portability.check import check_arm64, failures, record_in_manifests
    from edgeforge.runtime.manifest import read_manifest

    artifacts = [Path(a) for a in args.artifacts]
    for root in artifacts:
        if not root.is_dir() or read_manifest(root) is None:
            raise EdgeforgeError(f"{root} is not an artifact directory with a manifest.json")
    if args.output:
        check_replaceable(args.output, "arm64-check.json", "an earlier ARM64 check report")
    project = Path(__file__).resolve().parents[2]
    if not (project / "pyproject.toml").is_file():
        raise EdgeforgeError("check-arm64 installs edgeforge's own wheel in the aarch64 root and needs its "
                             "source tree: run it from a checkout (pip install -e .)")
    environment = arm64.Arm64Environment(Path(args.cache) if args.cache else arm64.DEFAULT_CACHE)
    result = check_arm64(artifacts, environment, project, log=lambda line: print(line, file=sys.stderr))
    facts = result.platforms["aarch64"]
    report = (f"aarch64 runtime, proven from inside the emulated interpreter: platform.machine() = "
              f"{facts['machine']}, Python {facts['python']}, onnxruntime {facts['onnxruntime']}, "
              f"openvino {facts.get('openvino') or '-'}; build side imported: {facts['build_side_imported'] or 'nothing'}\n"
              f"`pip install edgeforge` (no extras) installed: {', '.join(result.runtime_install)}\n\n{result.table()}\n")
    print(report)
    if args.record:
        record_in_manifests(result, artifacts)
    if args.output:
        with atomic_directory(args.output, replaces="arm64-check.json") as staging:
            (staging / "arm64-check.md").write_text(report)
            (staging / "arm64-check.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    problems = failures(result)
    for line in problems:
        print(f"edgeforge: check-arm64: {line}", file=sys.stderr)
    return 1 if problems else 0
