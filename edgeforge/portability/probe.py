"""Run every variant of some artifacts on the same images and write what they returned, plus the
platform's facts, for ``compare`` to hold against another platform's probe.

Runs inside the interpreter being checked (``python -m edgeforge.portability.probe``): it imports only
the runtime, numpy and the standard library, never the build side. A variant that fails to load or to
run is recorded with its one-line error instead of stopping the rest: "cannot run here" is a result.

Output folder: ``probe.json`` (platform, per-variant status) and one ``ARTIFACT/VARIANT.npz`` per variant
that ran, holding ``logits_<i>`` (the model's raw output) and ``labels_<i>`` (segmentation: the label map
at the image's size) or ``probs_<i>`` (classification) for image ``i``. Arrays only: read back with
``allow_pickle=False``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

PROBE_FILE = "probe.json"


def platform_facts() -> dict:
    """What this interpreter runs on, as the check reports it: proven from inside, not assumed."""
    import onnxruntime

    facts = {"machine": platform.machine(), "system": platform.system(), "python": platform.python_version(),
             "numpy": np.__version__, "onnxruntime": onnxruntime.__version__,
             "onnxruntime_providers": onnxruntime.get_available_providers()}
    try:
        import openvino
        facts["openvino"] = openvino.get_version()
    except ImportError:
        facts["openvino"] = None
    facts["build_side_imported"] = sorted(
        {"torch", "transformers", "onnx", "coremltools", "nncf"} & {m.split(".")[0] for m in sys.modules})
    return facts


def probe_artifact(root: Path, images: list[Path], out: Path, threads: int = 1) -> dict:
    """Run each variant the manifest lists on ``images``; write ``out/VARIANT.npz``; return the statuses."""
    from edgeforge.runtime import load
    from edgeforge.runtime.artifact import Artifact

    out.mkdir(parents=True, exist_ok=True)
    statuses = {}
    variants = Artifact.open(root, verify=False).variants()
    for index, variant in enumerate(variants, 1):
        print(f"{root.name}/{variant} ({index}/{len(variants)}, {len(images)} image(s))", file=sys.stderr, flush=True)
        try:
            model = load(root, variant=variant, threads=threads)
            arrays = {}
            for i, image in enumerate(images):
                pixel_values, loaded = model.preprocess([image])
                logits = model.forward(pixel_values)  # once: predict() would run the model again
                arrays[f"logits_{i}"] = logits[0].astype(np.float32)
                result = model.postprocess(logits, [loaded[0].size])[0]
                if hasattr(result, "label_map"):
                    arrays[f"labels_{i}"] = result.label_map
                else:
                    arrays[f"probs_{i}"] = result.probabilities.astype(np.float32)
            np.savez(out / f"{variant}.npz", **arrays)
            statuses[variant] = {"ran": True, "providers": model.providers}
        except Exception as exc:  # noqa: BLE001 -- every failure is a finding, reported as its first line
            text = str(exc).replace(f"{root}/", "").strip().splitlines()  # paths relative to the artifact
            statuses[variant] = {"ran": False, "error": f"{type(exc).__name__}: {text[0] if text else ''}"}
    return statuses


def probe(artifacts: dict[str, Path], images: dict[str, list[Path]], out: Path, threads: int = 1) -> dict:
    """Probe each named artifact on its images; write ``out/probe.json`` last and return its content."""
    result = {"platform": platform_facts(), "artifacts": {}}
    for name, root in artifacts.items():
        result["artifacts"][name] = probe_artifact(root, images[name], out / name, threads)
    result["platform"]["build_side_imported"] = platform_facts()["build_side_imported"]
    (out / PROBE_FILE).write_text(json.dumps(result, indent=1))
    return result


def read_probe(folder: Path) -> dict:
    return json.loads((folder / PROBE_FILE).read_text())


def read_outputs(folder: Path, artifact: str, variant: str) -> dict[str, np.ndarray]:
    with np.load(folder / artifact / f"{variant}.npz", allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plan", required=True, type=Path,
                        help="JSON: {artifact name: {'root': DIR, 'images': [FILE, ...]}}")
    parser.add_argument("-o", "--output", required=True, type=Path)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    plan = json.loads(args.plan.read_text())
    probe({name: Path(p["root"]) for name, p in plan.items()},
          {name: [Path(f) for f in p["images"]] for name, p in plan.items()}, args.output, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
