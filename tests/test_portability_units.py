"""The ARM64 check's parts that need no emulator: the bars of `compare`, the probe's output, error lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeforge.portability.compare import compare, float_compute, table
from edgeforge.portability.probe import read_outputs
from edgeforge.runtime.engines import _openvino_reason


def _probe(folder: Path, arrays: dict[str, dict[str, np.ndarray]], errors: dict[str, str] = {}) -> dict:
    """A probe folder as `probe` writes it, for one artifact named "a"."""
    (folder / "a").mkdir(parents=True)
    statuses = {}
    for variant, data in arrays.items():
        np.savez(folder / "a" / f"{variant}.npz", **data)
        statuses[variant] = {"ran": True}
    statuses.update({v: {"ran": False, "error": e} for v, e in errors.items()})
    result = {"platform": {"machine": folder.name}, "artifacts": {"a": statuses}}
    (folder / "probe.json").write_text(json.dumps(result))
    return result


def _segmentation(labels: np.ndarray) -> dict:
    return {"logits_0": np.zeros((3, 4, 4), np.float32), "labels_0": labels}


def test_float_variants_need_99_99_percent_of_pixels_and_the_others_the_budget(tmp_path):
    reference = np.zeros((100, 100), np.int64)
    reference[:50] = 1
    one_off, two_off = reference.copy(), reference.copy()
    one_off[0, 0] = 2  # 1 pixel of 10 000: 99.99 % agreement
    two_off[0, :2] = 2  # 99.98 %
    x86 = _probe(tmp_path / "x86_64", {v: _segmentation(reference) for v in ("fp32", "ort", "int8", "fp16")})
    arm = _probe(tmp_path / "aarch64", {"fp32": _segmentation(one_off), "ort": _segmentation(two_off),
                                        "int8": _segmentation(two_off)}, errors={"fp16": "EdgeforgeError: no kernel"})
    verdicts = {v.variant: v for v in compare(tmp_path / "x86_64", tmp_path / "aarch64", arm, {"a": 3}, {"a": 0.5})}
    assert x86["artifacts"]["a"]["fp32"]["ran"]
    assert verdicts["fp32"].portable and verdicts["fp32"].bar == "float"
    assert not verdicts["ort"].portable and verdicts["ort"].agreement == pytest.approx(0.9998)
    # int8: 2 pixels of class 2 that x86 never predicts -> IoU of class 2 is 0 -> mIoU drops by a third
    assert verdicts["int8"].bar == "budget" and not verdicts["int8"].portable
    assert verdicts["int8"].drift_points == pytest.approx(100 / 3, abs=0.1)
    assert not verdicts["fp16"].portable and verdicts["fp16"].error == "EdgeforgeError: no kernel"
    text = table(list(verdicts.values()), "aarch64")
    assert "**x86-only**: EdgeforgeError: no kernel" in text and "**differs**" in text


def test_a_classifier_may_flip_one_top1_in_200_at_a_half_point_budget(tmp_path):
    probs = np.tile(np.array([0.6, 0.3, 0.1], np.float32), (200, 1))
    flipped = probs.copy()
    flipped[:2] = [0.3, 0.6, 0.1]

    def outputs(p, n_flipped=0):
        data = {f"probs_{i}": (flipped if i < n_flipped else probs)[i] for i in range(200)}
        return {**data, **{f"logits_{i}": np.zeros(3, np.float32) for i in range(200)}}

    _probe(tmp_path / "x86_64", {"int8": outputs(probs), "uint8": outputs(probs), "fp32": outputs(probs)})
    arm = _probe(tmp_path / "aarch64", {"int8": outputs(probs, 1), "uint8": outputs(probs, 2), "fp32": outputs(probs, 1)})
    verdicts = {v.variant: v for v in compare(tmp_path / "x86_64", tmp_path / "aarch64", arm, {"a": 3}, {"a": 0.5})}
    assert verdicts["int8"].portable and verdicts["int8"].drift_points == pytest.approx(0.5)
    assert not verdicts["uint8"].portable  # 2 flips: 1 point
    assert not verdicts["fp32"].portable  # a float variant keeps every top-1


def test_probe_outputs_are_read_without_pickle(tmp_path):
    (tmp_path / "a").mkdir()
    np.savez(tmp_path / "a" / "objects.npz", x=np.array([{"a": 1}], dtype=object))  # would unpickle on load
    with pytest.raises(ValueError, match="allow_pickle=False"):
        read_outputs(tmp_path, "a", "objects")


def test_float_compute_follows_the_contract():
    assert float_compute("fp32") and float_compute("ort") and float_compute("openvino")
    assert not any(float_compute(v) for v in ("fp16", "quantized", "int8", "uint8", "q4", "openvino-bf16",
                                              "openvino-int8", "no-such-variant"))


def test_openvino_errors_come_down_to_the_line_that_says_why():
    message = ("Exception from src/inference/src/cpp/core.cpp:117:\nException from src/inference/src/dev/plugin.cpp:54:\n"
               "[ConvertFullyConnectedBias] END: node: opset1::FakeQuantize x (a long dump) -> (i8[?,1..,16]) "
               "CALLBACK HAS THROWN: Check 'index < m_inputs.size()' failed at node.cpp:304:\nindex '0' out of range\n")
    assert _openvino_reason(RuntimeError(message)) == ("its ConvertFullyConnectedBias pass failed: Check 'index < "
                                                       "m_inputs.size()' failed at node.cpp:304: index '0' out of range")
    assert _openvino_reason(RuntimeError("Exception from a.cpp:1:\nCannot open x.bin")) == "Cannot open x.bin"
    assert len(_openvino_reason(RuntimeError("x" * 1000))) == 240
