"""The layout rules of ``edgeforge/`` (checked, not just written down), and the declarations that make a
family or a target one module: a throwaway family and a throwaway target added through them alone."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "edgeforge"
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _import_graph() -> dict[str, set[str]]:
    """module -> edgeforge modules it imports, at any depth (module level or inside functions): a lazy
    import is a dependency too. ``from package import module`` depends on that module, not on the package."""
    modules = _modules()
    graph = {name: set() for name in modules}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level - 1
                    parts = package.split(".")
                    base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
                submodules = [f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules]
                targets = submodules or [base]
            for target in targets:
                resolved = resolve(target)
                if resolved and resolved != name and resolved.startswith("edgeforge"):
                    graph[name].add(resolved)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_between_modules():
    assert _cycles(_import_graph()) == []


def test_no_import_circle_between_packages():
    """edgeforge's subpackages (and top-level modules) form layers: data and zoo, say, never need each other."""
    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    packages: dict[str, set[str]] = {}
    for name, imports in _import_graph().items():
        packages.setdefault(top(name), set()).update(top(i) for i in imports if top(i) != top(name))
    assert _cycles(packages) == []


def test_the_checks_find_a_circle():
    """The cycle finder is not vacuous."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_is_over_400_lines():
    long = {str(path.relative_to(PACKAGE)): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def _code_strings(tree) -> set[str]:
    """String constants of the code, docstrings left out (a docstring may name a file; code may not)."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings}


def _assigned_names(tree) -> set[str]:
    return {target.id for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)}


def test_each_vocabulary_word_is_defined_once():
    """Task names, variant files, the IR cap and the budget default have one home: edgeforge/contract.py."""
    from edgeforge.contract import TASKS, VARIANTS

    generic = {"model.onnx", "model.ort", "model.mlpackage", "model.xml"}  # also scratch-file names in converters
    words = list(dict.fromkeys([*TASKS, *(v.file for v in VARIANTS.values()),
                                *(Path(v.file).name for v in VARIANTS.values() if Path(v.file).name not in generic)]))
    constants = ["MAX_IR_VERSION", "DEFAULT_MAX_DRIFT", "SEGMENTATION", "CLASSIFICATION", "VARIANTS", "TASKS"]
    homes: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        strings, assigned = _code_strings(tree), _assigned_names(tree)
        for word in words:
            if any(word in text for text in strings):
                homes.setdefault(word, []).append(str(path.relative_to(PACKAGE)))
        for name in constants:
            if name in assigned:
                homes.setdefault(name, []).append(str(path.relative_to(PACKAGE)))
    assert {word: places for word, places in homes.items() if places != ["contract.py"]} == {}
    assert set(homes) >= set(constants) | set(TASKS)


def test_the_runtime_and_declarations_load_without_the_build_side():
    code = ("import sys, edgeforge.runtime, edgeforge.families, edgeforge.targets, edgeforge.contract;"
            "print(sorted({'torch', 'transformers', 'onnx', 'coremltools', 'openvino', 'nncf'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# --- a family and a target added through the declarations alone ----------------------------------------
@pytest.fixture
def deit_family():
    """DeiT (ViT with a distillation token): one declaration, no edits anywhere else."""
    from edgeforge.contract import CLASSIFICATION
    from edgeforge.families import FAMILIES, Family, register

    family = register(Family(
        model_type="deit", task=CLASSIFICATION, config_class="DeiTConfig", model_class="DeiTForImageClassification",
        image_processor_class="DeiTImageProcessor", ort_model_class="ORTModelForImageClassification",
        architecture_keys=(), mini_architecture={}, mini_image_size=32, input_axes={0: "batch_size"},
        output_axes={0: "batch_size"},
    ))
    yield family
    del FAMILIES["deit"]


def test_a_new_family_builds_and_runs_through_its_declaration(deit_family, tmp_path):
    import torch
    import transformers
    from PIL import Image

    from edgeforge.runtime import load
    from edgeforge.stages import build

    config = transformers.DeiTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=2, intermediate_size=64, num_labels=3,
                                     id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2},
                                     architectures=["DeiTForImageClassification"])
    torch.manual_seed(0)
    transformers.DeiTForImageClassification(config).eval().save_pretrained(tmp_path / "ckpt")
    transformers.DeiTImageProcessor(size={"height": 32, "width": 32}, do_center_crop=False).save_pretrained(
        tmp_path / "ckpt")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8))
    manifest = build(tmp_path / "ckpt", tmp_path / "art", targets=("onnx",), validation_images=[image],
                     log=lambda _: None)
    assert manifest["source"]["model_type"] == "deit"
    assert manifest["variants"]["fp32"]["validation"]["top1_agreement"] == 1.0
    assert load(tmp_path / "art").predict(image).label in {"a", "b", "c"}


@pytest.fixture
def gzip_target(monkeypatch):
    """A throwaway target: the fp32 graph stored again under another name, declared as any target is."""
    from edgeforge import contract
    from edgeforge.contract import Variant, VariantEntry
    from edgeforge.targets import TARGETS, Target, register

    monkeypatch.setitem(contract.VARIANTS, "copy", Variant("copy", "copy/model.onnx", "fp32", "fp32"))

    def export(job):
        entry = VariantEntry.of("copy", note="a copy of onnx/model.onnx")
        (job.staging / "copy").mkdir()
        (job.staging / entry.file).write_bytes((job.staging / contract.VARIANTS["fp32"].file).read_bytes())
        return {"copy": entry}

    target = register(Target(name="copy", title="copying the ONNX graph", export=export, base_variant="copy"))
    yield target
    del TARGETS["copy"]


def test_a_new_target_is_built_verified_and_run_through_its_declaration(gzip_target, tmp_path, mini_checkpoints):
    from edgeforge.runtime import load
    from edgeforge.stages import build
    from edgeforge.targets import parse_targets

    assert parse_targets("copy") == ("onnx", "copy")
    manifest = build(mini_checkpoints["facial-emotions"], tmp_path / "art", targets="onnx,copy", log=lambda _: None)
    assert manifest["variants"]["copy"] == {"file": "copy/model.onnx", "format": "onnx", "precision": "fp32",
                                            "note": "a copy of onnx/model.onnx"}
    assert "copy/model.onnx" in json.loads((tmp_path / "art" / "manifest.json").read_text())["files"]
    image = np.zeros((64, 64, 3), dtype=np.uint8)
    copy = load(tmp_path / "art", variant="copy").predict(image)
    assert copy.scores() == load(tmp_path / "art").predict(image).scores()


def test_declarations_refuse_what_the_contract_does_not_know():
    from edgeforge.contract import VariantEntry
    from edgeforge.targets import Target

    with pytest.raises(ValueError, match="not declared"):
        Target(name="x", title="x", export=lambda job: {}, base_variant="nothing")
    with pytest.raises(ValueError, match="is not a ort file"):
        VariantEntry("onnx/model.onnx", "ort", "fp32")


def test_each_target_specific_rewrite_names_a_registered_target():
    from edgeforge.families import FAMILIES
    from edgeforge.targets import TARGETS

    named = {(family.model_type, rewrite.name, target) for family in FAMILIES.values()
             for rewrite in family.rewrites for target in rewrite.targets}
    assert named, "no family declares a target-specific rewrite: this check would check nothing"
    assert {entry for entry in named if entry[2] not in TARGETS} == set()
