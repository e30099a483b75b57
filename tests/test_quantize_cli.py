"""`edgeforge quantize`: a thin layer over the API, with one-line errors (exit 2) for bad input."""

import json
import shutil

import pytest

import edgeforge.cli as cli


@pytest.fixture
def edgeforge(monkeypatch, capsys):
    """Run the CLI in-process (the command module is registered here if the CLI does not list it yet)."""
    if "quantize" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "quantize"))

    def run(*args):
        code = cli.main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("edgeforge: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_quantize_writes_variant_and_report(edgeforge, mini_artifacts, tmp_path):
    root = tmp_path / "art"
    shutil.copytree(mini_artifacts["facial-emotions"], root)
    code, out, err = edgeforge("quantize", root, "--precisions", "uint8,q4", "--max-drift", "100",
                               "--num-images", "2", "--eval-images", "3", "--block-size", "64",
                               "--json", tmp_path / "report.json")
    assert code == 0, err
    assert "onnx/model_uint8.onnx" in out and "onnx/model_q4.onnx" in out and "of fp32" in out
    assert "[uint8]" in err  # progress goes to stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["variants"]["q4"]["recipe"]["block_size"] == 64
    assert report["calibration_set"]["num_images"] == 2 and report["eval_set"]["num_images"] == 3
    assert "drift on 3 held-out image(s)" in out
    assert "within the 100-point budget on 3 held-out image(s)" in out + err  # said, not left to be inferred
    assert (root / "onnx" / "model_q4.onnx").is_file()


@pytest.mark.parametrize("args, message", [
    (("--precisions", "fp16,int3"), "unknown precision(s) int3"),
    (("--precisions", "uint8", "--calibration", "{tmp}/nowhere"), "does not exist"),
    (("--precisions", "uint8", "--calibration", "{tmp}/empty"), "is empty"),
    (("--precisions", "coreml-palette4"), "no coreml/model.mlpackage"),
    (("--precisions", "uint8", "--num-images", "0"), "at least 1"),
    (("--precisions", "uint8", "--eval-images", "-1"), "0 or more"),
    (("--precisions", "quantized", "--keep-float", "/nowhere/Conv"), "no node named /nowhere/Conv"),
    (("--precisions", "q4", "--block-size", "24"), "block size"),
    (("--precisions", "quantized", "--node-costs", "{tmp}/nowhere.json"), "cannot read"),
    (("--precisions", "quantized", "--node-costs", "{tmp}/list.json"), "one JSON object"),
    (("--precisions", "quantized", "--node-costs", "{tmp}/costs.json"), "no node named /nowhere/Conv"),
])
def test_bad_input_is_one_line_exit_2(args, message, edgeforge, mini_artifacts, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "costs.json").write_text(json.dumps({"/nowhere/Conv": 3.0}))
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    code, _, err = edgeforge("quantize", mini_artifacts["face-parsing"], *args)
    assert code == 2 and message in error_line(err)
    assert sorted(p.name for p in (mini_artifacts["face-parsing"] / "onnx").iterdir()) == ["model.onnx"]


def test_missing_artifact_is_one_line(edgeforge, tmp_path):
    code, _, err = edgeforge("quantize", tmp_path / "nope")
    assert code == 2 and "is not an artifact directory" in error_line(err)
