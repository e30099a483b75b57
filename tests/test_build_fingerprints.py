"""Builds are reproducible: each trained mini builds to the recorded bytes.

``tests/data/build_fingerprints.json`` holds the sha256 of what edgeforge wrote for each shipped trained mini
(fp32 ONNX, and the uint8 variant with the float nodes its budget search kept) when the minis were last
retrained; ``python tests/test_build_fingerprints.py`` rewrites it (do that only on purpose: retrained minis, or
an export change you mean). Bytes are compared when the installed torch / transformers / onnx / onnxruntime /
numpy are the versions that made them (other versions write other bytes); a quantized variant whose search kept
a different float set is a legitimately different file, and the test says so instead of comparing it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from edgeforge.environment import package_versions

FINGERPRINTS_FILE = Path(__file__).parent / "data" / "build_fingerprints.json"
FINGERPRINTS = json.loads(FINGERPRINTS_FILE.read_text())["models"]
PRECISIONS = "fp16,uint8"
TOOLS = ("torch", "transformers", "onnx", "onnxruntime", "numpy")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_build_gives_the_recorded_bytes(name, trained_artifacts, tmp_path):
    from edgeforge.stages import quantize

    recorded = FINGERPRINTS[name]
    installed = {k: v for k, v in package_versions(tuple(recorded["tools"])).items() if k in recorded["tools"]}
    if installed != recorded["tools"]:
        pytest.skip(f"fingerprints were made with {recorded['tools']}, installed: {installed}")
    root = tmp_path / name
    shutil.copytree(trained_artifacts[name], root)
    fp32 = recorded["variants"]["fp32"]
    assert _sha256(root / fp32["file"]) == fp32["sha256"]
    report = quantize(root, precisions=PRECISIONS, log=lambda _: None)  # the defaults `edgeforge build` uses
    compared = 0
    for variant in set(recorded["variants"]) - {"fp32"}:
        before, now = recorded["variants"][variant], report["variants"].get(variant)
        assert now is not None, f"{variant} was accepted when the fingerprints were made, and is rejected now"
        assert now["file"] == before["file"]
        if now["nodes_kept_float"] == before["nodes_kept_float"]:
            assert _sha256(root / now["file"]) == before["sha256"], variant
            compared += 1
    assert compared >= 1  # at least one quantized variant was compared byte for byte


def regenerate(work: Path) -> None:
    """Rebuild every shipped trained mini as the test does and record its bytes."""
    import subprocess

    from edgeforge.stages import build, quantize
    from edgeforge.zoo.shipped import trained_checkpoint

    models = {}
    for name in ("face-parsing", "clothes-parsing", "facial-emotions"):
        root = work / name
        build(trained_checkpoint(name), root, targets=("onnx",), log=lambda _: None)
        report = quantize(root, precisions=PRECISIONS, log=lambda _: None)
        variants = {"fp32": {"file": "onnx/model.onnx", "sha256": _sha256(root / "onnx" / "model.onnx"),
                             "nodes_kept_float": []}}
        for variant, entry in report["variants"].items():  # the accepted ones
            variants[variant] = {"file": entry["file"], "sha256": _sha256(root / entry["file"]),
                                 "nodes_kept_float": entry["nodes_kept_float"]}
        models[name] = {"tools": package_versions(TOOLS), "variants": variants}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    about = (f"sha256 of the shipped trained minis' build outputs (`build(CKPT, ART, targets=('onnx',))` then "
             f"`quantize(ART, precisions='{PRECISIONS}')`, the defaults), written by `python "
             f"tests/test_build_fingerprints.py` on top of commit {commit}; the test rebuilds and compares")
    FINGERPRINTS_FILE.write_text(json.dumps({"about": about, "models": models}, indent=1) + "\n")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as work:
        regenerate(Path(work))
    print(f"wrote {FINGERPRINTS_FILE}")
