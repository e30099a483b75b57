"""An artifact directory as the runtime sees it: configs, variants, manifest.

Layout (the one Optimum's ORTModel classes and transformers.js load):
    config.json, preprocessor_config.json, manifest.json, onnx/model*.onnx, ort/model.ort, coreml/*.mlpackage
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from edgeforge.errors import EdgeforgeError
from edgeforge.runtime.manifest import read_manifest

SEGMENTATION = "semantic-segmentation"
CLASSIFICATION = "image-classification"

# transformers.js dtype names -> file names in onnx/ (used when no manifest names the variant).
VARIANT_FILES = {
    "fp32": "onnx/model.onnx",
    "fp16": "onnx/model_fp16.onnx",
    "quantized": "onnx/model_quantized.onnx",
    "q8": "onnx/model_quantized.onnx",
    "int8": "onnx/model_int8.onnx",
    "uint8": "onnx/model_uint8.onnx",
    "q4": "onnx/model_q4.onnx",
    "ort": "ort/model.ort",
}


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
    def open(cls, root: str | Path) -> "Artifact":
        root = Path(root)
        if not root.is_dir():
            raise EdgeforgeError(f"{root} is not an artifact directory")
        return cls(
            root=root,
            config=_read_json(root / "config.json"),
            preprocessor_config=_read_json(root / "preprocessor_config.json"),
            manifest=read_manifest(root),
        )

    @property
    def id2label(self) -> dict[int, str]:
        labels = {int(k): v for k, v in self.config.get("id2label", {}).items()}
        if sorted(labels) != list(range(len(labels))):
            raise EdgeforgeError(f"{self.root / 'config.json'}: id2label ids are not 0..N-1")
        return labels

    def variants(self) -> dict[str, str]:
        """Variant name -> relative file, for the variants present on disk."""
        if self.manifest and self.manifest.get("variants"):
            return {name: v["file"] for name, v in self.manifest["variants"].items()}
        return {name: rel for name, rel in VARIANT_FILES.items() if (self.root / rel).is_file()}

    def variant_file(self, variant: str) -> str:
        variants = self.variants()
        if variant not in variants:
            known = ", ".join(sorted(variants)) or "none"
            raise EdgeforgeError(f"{self.root} has no variant {variant!r} (available: {known})")
        return variants[variant]

    def files_of(self, rel: str) -> list[str]:
        """The variant file plus its external-data files, as recorded by the manifest."""
        entry = (self.manifest or {}).get("files", {})
        data = [k for k in entry if k.startswith(rel + ".") and k != rel]  # model.onnx.data and the like
        return [rel, *data]


def task_of(config: dict, root: Path) -> str:
    architectures = config.get("architectures") or []
    for arch in architectures:
        if arch.endswith("ForSemanticSegmentation"):
            return SEGMENTATION
        if arch.endswith("ForImageClassification"):
            return CLASSIFICATION
    raise EdgeforgeError(
        f"{root / 'config.json'}: unknown task for architectures {architectures}; "
        "edgeforge runs semantic segmentation and image classification models"
    )


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgeforgeError(f"{path} is missing; is {path.parent} an edgeforge/Optimum artifact directory?") from None
    except (OSError, ValueError) as exc:
        raise EdgeforgeError(f"{path} is not valid JSON: {exc}") from None
