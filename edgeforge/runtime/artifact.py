"""An artifact directory as the runtime sees it: configs, variants, manifest.

Layout (the one Optimum's ORTModel classes and transformers.js load):
    config.json, preprocessor_config.json, manifest.json, and the variant files ``edgeforge.contract`` declares
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from pathlib import Path

from edgeforge.contract import ALIASES, TASKS, VARIANTS, task_of_architectures
from edgeforge.errors import EdgeforgeError
from edgeforge.jsonfile import read_json_object
from edgeforge.runtime.manifest import (
    MANIFEST_NAME,
    IntegrityError,
    inside,
    read_manifest,
    verify_files,
)

CONFIG_FILES = ("config.json", "preprocessor_config.json")


@dataclass
class Artifact:
    root: Path
    config: dict
    preprocessor_config: dict
    manifest: dict | None = None
    task: str = field(init=False)

    def __post_init__(self):
        self.task = task_of(self.config, self.root)

    @classmethod
    def open(cls, root: str | Path, verify: bool = True) -> "Artifact":
        """Read the configs and the manifest; with ``verify``, the configs are checked against the
        manifest before they are used (they decide labels and normalisation, so they count too)."""
        root = Path(root)
        if not root.is_dir():
            raise EdgeforgeError(f"{root} is not an artifact directory")
        manifest = read_manifest(root)
        if verify:
            _verify(root, manifest, list(CONFIG_FILES))
        config, preprocessor_config = (_read_json(inside(root, name)) for name in CONFIG_FILES)
        return cls(root=root, config=config, preprocessor_config=preprocessor_config, manifest=manifest)

    @property
    def id2label(self) -> dict[int, str]:
        try:
            labels = {int(k): str(v) for k, v in self.config.get("id2label", {}).items()}
        except (AttributeError, TypeError, ValueError):
            labels = None
        if labels is None or sorted(labels) != list(range(len(labels))):
            raise EdgeforgeError(f"{self.root / 'config.json'}: id2label ids are not 0..N-1")
        return labels

    def variants(self) -> dict[str, str]:
        """Variant name -> relative file: the manifest's, or (no manifest) the declared files present on disk."""
        if self.manifest and isinstance(self.manifest.get("variants"), dict):
            return {name: v["file"] for name, v in self.manifest["variants"].items()
                    if isinstance(v, dict) and isinstance(v.get("file"), str)}
        return {name: v.file for name, v in VARIANTS.items() if (self.root / v.file).is_file()}

    def variant_file(self, variant: str) -> str:
        variants = self.variants()
        variant = variant if variant in variants else ALIASES.get(variant, variant)  # q8 = quantized
        if variant not in variants:
            known = ", ".join(sorted(variants)) or "none"
            raise EdgeforgeError(f"{self.root} has no variant {variant!r} (available: {known})")
        return variants[variant]

    def variant_path(self, variant: str, verify: bool = True) -> Path:
        """The checked path of ``variant``: inside the directory and, with ``verify``, matching the
        manifest, together with every external-data file the model names."""
        rel = self.variant_file(variant)
        path = inside(self.root, rel)
        if verify:  # the graph first: its hash vouches for the data file names read from it
            _verify(self.root, self.manifest, [rel])
        data = [(Path(rel).parent / name).as_posix() for name in companion_files(path)]
        if verify:
            _verify(self.root, self.manifest, data)
        return path


def _verify(root: Path, manifest: dict | None, relative_paths: list[str]) -> None:
    if manifest is None:
        raise IntegrityError(
            f"{root} has no {MANIFEST_NAME} to verify its files against; "
            "pass verify=False / --no-verify to run an unverified artifact"
        )
    verify_files(root, manifest, relative_paths)


def companion_files(model_path: Path) -> list[str]:
    """The files a model reads beside itself (names relative to its folder): ONNX external data, or the
    weights (``.bin``) of an OpenVINO IR. Verified together with the model."""
    if model_path.suffix == ".xml":
        return [model_path.with_suffix(".bin").name]
    return external_data_files(model_path)


def model_size(model_path: Path) -> int:
    """Bytes of a model file together with the files it reads beside itself."""
    return sum((model_path.parent / name).stat().st_size for name in [model_path.name, *companion_files(model_path)])


def external_data_files(model_path: Path) -> list[str]:
    """The external-data locations an ONNX model names, each checked to stay in the model's folder.

    onnxruntime 1.31 refuses escaping locations itself (tests pin that); checking here as well keeps
    the guarantee on older onnxruntime builds (mobile apps pin old ones), gives a one-line error, and
    tells the integrity check exactly which data files to hash.
    """
    if model_path.suffix != ".onnx" or not model_path.is_file():
        return []
    locations = sorted(set(_onnx_external_locations(model_path)))
    for location in locations:
        inside(model_path.parent, location)
    return locations


# --- the few ONNX protobuf fields that can hold tensors ------------------------------------------------
# The runtime has no `onnx` package (and must not import it), so this walks the protobuf wire format
# by hand, descending only into the messages that can contain a TensorProto. Field numbers: onnx.proto.
_CHILDREN = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},  # external_data: StringStringEntryProto {key = 1, value = 2}
}


def _onnx_external_locations(path: Path) -> list[str]:
    with open(path, "rb") as handle:
        if path.stat().st_size == 0:
            return []
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as view:
            try:
                return _walk(view)
            except (IndexError, ValueError, UnicodeDecodeError):
                raise EdgeforgeError(f"{path} is not a valid ONNX model (malformed protobuf)") from None


def _walk(buf: memoryview) -> list[str]:
    locations, stack = [], [("model", 0, len(buf))]  # explicit stack: nesting depth cannot overflow
    while stack:
        kind, start, end = stack.pop()
        if kind == "entry":
            entry = {number: bytes(buf[a:b]) for number, a, b in _fields(buf, start, end) if a is not None}
            if entry.get(1) == b"location":
                locations.append(entry.get(2, b"").decode("utf-8"))
            continue
        children = _CHILDREN[kind]
        for number, a, b in _fields(buf, start, end):
            if a is not None and number in children:
                stack.append((children[number], a, b))
    return locations


def _fields(buf: memoryview, pos: int, end: int):
    """(field number, start, end) of each length-delimited field; (number, None, None) for the others."""
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
            yield number, None, None
            continue
        if wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ValueError("field runs past its message")
            yield number, pos, pos + length
            pos += length
            continue
        if wire not in (1, 5):
            raise ValueError(f"wire type {wire}")
        pos += 8 if wire == 1 else 4
        if pos > end:
            raise ValueError("field runs past its message")


def _varint(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("bad varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def task_of(config: dict, root: Path) -> str:
    architectures = config.get("architectures") or []
    task = task_of_architectures(architectures if isinstance(architectures, list) else [])
    if task is None:
        raise EdgeforgeError(
            f"{root / 'config.json'}: unknown task for architectures {architectures}; "
            f"edgeforge runs {' and '.join(task.replace('-', ' ') for task in TASKS)} models"
        )
    return task


def _read_json(path: Path) -> dict:
    try:
        return read_json_object(path)
    except FileNotFoundError:
        raise EdgeforgeError(f"{path} is missing; is {path.parent} an edgeforge/Optimum artifact directory?") from None
