"""The redesign changed no artifact: each trained mini builds to the same bytes as before it.

``tests/data/build_fingerprints.json`` holds the sha256 of what the code before the one-vocabulary redesign
wrote for each trained mini (fp32 ONNX, and the fp16 and uint8 variants with the float nodes their budget
search kept; fp16 is no longer compared, see below). Bytes are compared when the installed torch / transformers / onnx / onnxruntime / numpy are
the versions that made them (other versions write other bytes); a quantized variant whose search kept a
different float set is a legitimately different file, and the test says so instead of comparing it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from edgeforge.environment import package_versions

FINGERPRINTS = json.loads((Path(__file__).parent / "data" / "build_fingerprints.json").read_text())["models"]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_build_gives_the_same_bytes_as_before_the_redesign(name, trained_artifacts, tmp_path):
    from edgeforge.stages import quantize

    recorded = FINGERPRINTS[name]
    installed = {k: v for k, v in package_versions(tuple(recorded["tools"])).items() if k in recorded["tools"]}
    if installed != recorded["tools"]:
        pytest.skip(f"fingerprints were made with {recorded['tools']}, installed: {installed}")
    root = tmp_path / name
    shutil.copytree(trained_artifacts[name], root)
    fp32 = recorded["variants"]["fp32"]
    assert _sha256(root / fp32["file"]) == fp32["sha256"]
    # fp16 changed on purpose on 2026-12-07 (fp16 weights, fp32 arithmetic: the ARM64 check found the fp16
    # arithmetic file over the budget on aarch64), so its old bytes are not compared.
    report = quantize(root, precisions="fp16,uint8", log=lambda _: None)  # the defaults `edgeforge build` uses
    compared = 0
    for variant in ("uint8",):
        before, now = recorded["variants"][variant], report["variants"][variant]
        assert now["file"] == before["file"]
        if now["nodes_kept_float"] == before["nodes_kept_float"]:
            assert _sha256(root / now["file"]) == before["sha256"], variant
            compared += 1
    assert compared >= 1  # at least one quantized variant was compared byte for byte
