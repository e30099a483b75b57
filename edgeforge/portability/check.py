"""The ARM64 check: every variant of some artifacts, run on this machine and in an emulated aarch64
Python with the thin runtime only, held side by side (``compare``), with the verdicts written as a report
and, on request, into each artifact's manifest (``platforms.aarch64`` of every variant).

A variant that runs on aarch64 and clears its bar is ``portable``; one that cannot run there is
``x86-only`` with the reason (an op or transformation the aarch64 build lacks, a CPU feature ARM does not
have); one that runs on neither -- a tampered file, say -- is ``broken``; one that runs but disagrees beyond
its bar ``differs``. The check fails (``ArmCheckFailed``) on ``broken`` and ``differs``.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edgeforge.contract import CLASSIFICATION
from edgeforge.errors import EdgeforgeError
from edgeforge.portability.arm64 import Arm64Environment
from edgeforge.portability.compare import VariantVerdict, compare, table
from edgeforge.portability.probe import probe, read_probe

#: (width, height) of the probe images: square and non-square, smaller and larger than the models' input
IMAGE_SIZES = ((256, 256), (384, 256), (200, 320))
#: A classifier's drift is 100 / N points per flipped top-1, so N must reach 100 / budget to say anything about
#: a 0.5-point budget; a segmenter's three images give ~200 000 pixels.
CLASSIFIER_IMAGES = 200
IMAGE_SEED = 913  # not a seed the calibration or held-out sets use
REPORT_NAME = "arm64-check"


class ArmCheckFailed(EdgeforgeError):
    """A variant is broken on both platforms or disagrees on aarch64 beyond its bar."""


@dataclass
class CheckResult:
    verdicts: list[VariantVerdict]
    platforms: dict  # "x86": the host probe's facts, "aarch64": the emulated one's
    runtime_install: list[str]  # what `pip install edgeforge` pulled into the aarch64 root
    broken: list[str]  # variants that ran on neither platform, with the reason

    def table(self) -> str:
        return table(self.verdicts, self.platforms["aarch64"]["machine"])

    def to_json(self) -> dict:
        return {"platforms": self.platforms, "runtime_install": self.runtime_install, "broken": self.broken,
                "verdicts": [v.to_json() for v in self.verdicts]}


def probe_images(artifact: Path, folder: Path) -> list[Path]:
    """Synthetic images of the kind the artifact's labels call for, at ``IMAGE_SIZES`` in turn (a classifier
    gets ``CLASSIFIER_IMAGES`` of them), as PNG (lossless, so both platforms decode the same pixels)."""
    from edgeforge.data.synth import make_sample
    from edgeforge.quantize.calibration import synthetic_kind
    from edgeforge.runtime.artifact import Artifact

    opened = Artifact.open(artifact, verify=False)
    kind = synthetic_kind(opened.task, list(opened.id2label.values()))
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    count = CLASSIFIER_IMAGES if opened.task == CLASSIFICATION else len(IMAGE_SIZES)
    for index, (width, height) in ((i, IMAGE_SIZES[i % len(IMAGE_SIZES)]) for i in range(count)):
        image = make_sample(kind, index, seed=IMAGE_SEED, size=max(width, height))[0].resize((width, height))
        image.save(folder / f"{kind}-{index}.png")
        files.append(folder / f"{kind}-{index}.png")
    return files


def check_arm64(artifacts: list[Path], environment: Arm64Environment, project: Path, log=print,
                timeout: float = 3600, threads: int = 2) -> CheckResult:
    """Probe ``artifacts`` here and on emulated aarch64, and compare. ``project``: edgeforge's source tree,
    whose wheel is what gets installed in the aarch64 root."""
    from edgeforge.runtime.artifact import Artifact

    names = _names(artifacts)
    environment.prepare(project, log)
    with tempfile.TemporaryDirectory(prefix="edgeforge-arm64-") as tmp:
        work = Path(tmp)
        images = {name: probe_images(root, work / "images" / name) for name, root in names.items()}
        plan = {name: {"root": str(root.resolve()), "images": [str(f) for f in images[name]]} for name, root in names.items()}
        (work / "plan.json").write_text(json.dumps(plan))
        log(f"probing {len(names)} artifact(s) on this machine")
        here = probe(names, images, work / "x86", threads)
        log("probing them on aarch64 under qemu (minutes: emulation is slow; its speed is never reported)")
        exit_status, lines = environment.run(["-m", "edgeforge.portability.probe", "--plan", str(work / "plan.json"),
                                              "-o", str(work / "aarch64"), "--threads", str(threads)],
                                             on_line=lambda line: log(f"  aarch64: {line}"), timeout=timeout)
        if exit_status != 0 or not (work / "aarch64" / "probe.json").is_file():
            said = [line for line in lines if line.strip()]
            raise EdgeforgeError(f"the aarch64 probe failed (exit {exit_status}): {said[-1] if said else 'no output'}")
        there = read_probe(work / "aarch64")
        opened = {name: Artifact.open(root, verify=False) for name, root in names.items()}
        verdicts = compare(work / "x86", work / "aarch64", there,
                           {n: len(a.id2label) for n, a in opened.items()},
                           {n: _budget(a.manifest) for n, a in opened.items()})
    broken = [f"{name}/{variant}: {status.get('error')}" for name, statuses in here["artifacts"].items()
              for variant, status in statuses.items() if not status["ran"]]
    return CheckResult(verdicts, {"x86": here["platform"], "aarch64": there["platform"]},
                       environment.installed("core"), broken)


def record_in_manifests(result: CheckResult, artifacts: list[Path]) -> None:
    """Write each verdict into its artifact's manifest as ``variants[V].platforms.aarch64`` (the files'
    hashes are unchanged; the manifest is rewritten atomically)."""
    from edgeforge.runtime.manifest import read_manifest, write_manifest

    facts = result.platforms["aarch64"]
    checked_with = f"onnxruntime {facts['onnxruntime']}, openvino {facts.get('openvino') or '-'}, " \
                   f"{facts['machine']} under qemu ({__name__})"
    for name, root in _names(artifacts).items():
        manifest = read_manifest(root)
        for verdict in (v for v in result.verdicts if v.artifact == name):
            entry = manifest["variants"][verdict.variant]
            record = {"status": "portable" if verdict.portable else ("x86-only" if verdict.error else "differs"),
                      **{k: v for k, v in verdict.to_json().items() if k not in ("artifact", "variant", "portable")},
                      "checked_with": checked_with}
            entry.setdefault("platforms", {})["aarch64"] = record
        write_manifest(root, {k: v for k, v in manifest.items() if k not in ("format", "files")})


def failures(result: CheckResult) -> list[str]:
    """One line per variant that makes the check fail: broken everywhere, or different beyond its bar."""
    lines = [f"{b} (fails on x86 as well)" for b in result.broken]
    for v in result.verdicts:
        if not v.portable and not v.error:
            lines.append(f"{v.artifact}/{v.variant}: aarch64 differs from x86 beyond its bar "
                         f"({100 * v.agreement:.4f} % agreement, {v.drift_points:.4f} points)")
    return lines


def _names(artifacts: list[Path]) -> dict[str, Path]:
    names = {}
    for root in artifacts:
        name = Path(root).resolve().name
        if name in names:
            raise EdgeforgeError(f"two artifacts are named {name!r}; give each its own folder name")
        names[name] = Path(root)
    return names


def _budget(manifest: dict | None) -> float | None:
    quantization = (manifest or {}).get("quantization") or {}
    return quantization.get("max_drift_points")
