"""What `edgeforge run` writes for each image -- the same bytes whether it runs here or on a Ray cluster.

For an input whose file name is STEM.EXT (STEM-2, STEM-3 ... for later inputs of the same stem, in input
order: ``output_stems``), the output folder gets STEM.labels.png and STEM.overlay.png (segmentation), then
STEM.json, each renamed into place whole (``edgeforge.atomic``). STEM.json comes last and records the
sha256 of the input's bytes, the variant and the sha256 of its model file, so it exists only when the image
is complete, and a rerun skips an image whose record matches the same input and model (``is_done``): an
interrupted or crashed run -- local or on a cluster -- is finished by running the same command again, and a
rebuilt model is never mistaken for the one that wrote the old files.

Standard library plus the runtime: a Ray worker imports this and nothing of the build side.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

from edgeforge.atomic import atomic_path, write_text
from edgeforge.contract import SEGMENTATION
from edgeforge.errors import EdgeforgeError
from edgeforge.jsonfile import read_json_object

WRITTEN, DONE_BEFORE, FAILED = "written", "done before", "failed"


@dataclass(frozen=True)
class Outcome:
    status: str  # WRITTEN, DONE_BEFORE or FAILED
    line: str  # what to show the user: a summary of the prediction, or the one-line error


def output_stems(images: list[str]) -> list[str]:
    """The output name of each input, in input order: its stem, with -2, -3 ... for repeated stems."""
    used, stems = set(), []
    for path in images:
        stem, candidate, n = Path(path).stem, Path(path).stem, 1
        while candidate in used:
            n += 1
            candidate = f"{stem}-{n}"
        used.add(candidate)
        stems.append(candidate)
    return stems


def result_files(stem: str, segmentation: bool) -> list[str]:
    """The files of one image, the record last."""
    return ([f"{stem}.labels.png", f"{stem}.overlay.png"] if segmentation else []) + [f"{stem}.json"]


def model_sha256(model) -> str:
    """The sha256 of the model file a runtime ``Model`` runs (once per process: it reads the whole file)."""
    from edgeforge.runtime.manifest import sha256_of

    return sha256_of(model.model_path)


def is_done(out_dir: Path, stem: str, identity: dict, segmentation: bool) -> bool:
    """Whether ``out_dir`` already holds this image's complete result for this ``identity`` (input sha256,
    variant, model sha256)."""
    try:
        record = read_json_object(out_dir / f"{stem}.json")
    except (OSError, EdgeforgeError):
        return False
    return (all(record.get(key) == value for key, value in identity.items())
            and all((out_dir / name).is_file() for name in result_files(stem, segmentation)))


def predict_one(model, model_digest: str, source: str, out_dir: Path, stem: str,
                file: str | Path | None = None) -> Outcome:
    """Predict one input and write its files, unless they are there already for the same bytes and model.

    ``model_digest``: ``model_sha256(model)``. ``source`` is the input as the user named it (recorded in
    STEM.json); ``file`` where this process reads it (an absolute path on a cluster worker), ``source`` when
    not given."""
    from edgeforge.runtime import SegmentationResult, load_image
    from edgeforge.runtime.images import read_image_file

    segmentation = model.task == SEGMENTATION
    try:
        data = read_image_file(file or source, name=str(source))
    except EdgeforgeError as exc:
        return Outcome(FAILED, str(exc))
    identity = {"input_sha256": hashlib.sha256(data).hexdigest(), "variant": model.variant,
                "model_sha256": model_digest}
    if is_done(out_dir, stem, identity, segmentation):
        return Outcome(DONE_BEFORE, f"{source}: done before (same input and model), kept")
    named = io.BytesIO(data)
    named.name = str(source)  # errors name the input, not "<BytesIO>"
    try:
        image = load_image(named)
        result = model.predict(image)
    except EdgeforgeError as exc:
        return Outcome(FAILED, str(exc))
    if isinstance(result, SegmentationResult):
        with atomic_path(out_dir / f"{stem}.labels.png", suffix=".png") as tmp:
            result.label_image().save(tmp, format="PNG")
        with atomic_path(out_dir / f"{stem}.overlay.png", suffix=".png") as tmp:
            result.overlay(image).save(tmp, format="PNG")
        line = ", ".join(f"{k} {v:.1%}" for k, v in list(result.pixel_shares().items())[:4])
    else:
        line = ", ".join(f"{k} {v:.1%}" for k, v in list(result.scores().items())[:3])
    record = {"image": str(source), **identity, **result.to_json()}
    write_text(out_dir / f"{stem}.json", json.dumps(record, indent=2) + "\n")
    return Outcome(WRITTEN, f"{source}: {line}")
