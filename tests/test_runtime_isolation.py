"""The runtime stays thin: importing and running it never imports the build side."""

import subprocess
import sys

BUILD_SIDE = {"torch", "transformers", "onnx", "coremltools", "optimum", "edgeforge.export", "edgeforge.zoo.checkpoints"}


def test_runtime_import_pulls_no_build_dependency():
    code = "import edgeforge.runtime, sys; print(sorted(set(sys.modules) & %r))" % BUILD_SIDE
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_running_a_model_pulls_no_build_dependency(mini_artifacts, photos, tmp_path):
    image = tmp_path / "cat.png"
    photos["chelsea"].save(image)
    code = (
        "import sys; from edgeforge.runtime import load; "
        f"r = load({str(mini_artifacts['face-parsing'])!r}).predict({str(image)!r}); "
        "print(r.label_map.shape, sorted(set(sys.modules) & %r))" % BUILD_SIDE
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(300, 451) []"


def test_cli_parser_pulls_no_build_dependency():
    """`edgeforge run` must work on an install with the runtime dependencies only."""
    code = "import sys; from edgeforge.cli import build_parser; build_parser(); print(sorted(set(sys.modules) & %r))"
    out = subprocess.run([sys.executable, "-c", code % BUILD_SIDE], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
