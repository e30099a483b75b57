"""``manifest.json``: what an artifact directory holds, with sizes, sha256 and validation figures.

Standard library only: the runtime reads it to verify files before running them; the build side
writes it last, so a directory whose manifest exists was completed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path, PurePosixPath

from edgeforge.errors import EdgeforgeError
from edgeforge.jsonfile import dumps_strict, read_json_object

MANIFEST_NAME = "manifest.json"
FORMAT = "edgeforge-manifest/1"


class IntegrityError(EdgeforgeError):
    """An artifact's files are not what its manifest recorded, or lead outside its directory."""


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_entry(root: Path, path: Path) -> dict:
    return {"size": path.stat().st_size, "sha256": sha256_of(path)}


def list_files(root: Path) -> list[Path]:
    """Every regular file below ``root`` except the manifest itself, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith("."))


def inside(root: str | Path, rel: str) -> Path:
    """``root / rel``, refusing names that lead outside ``root``: absolute paths, ``..`` parts and
    symlinks (anywhere along the path) that resolve elsewhere. ``root`` itself may be a symlink."""
    root = Path(root)
    parts = PurePosixPath(rel.replace("\\", "/")).parts
    if not rel or Path(rel).is_absolute() or PurePosixPath(rel).is_absolute() or ".." in parts:
        raise IntegrityError(f"{root}: refusing the path {rel!r}, which points outside the artifact directory")
    path = root / rel
    try:
        real, real_root = path.resolve(), root.resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, NUL bytes
        raise IntegrityError(f"{path} cannot be resolved ({exc}); refusing to read it") from None
    if not real.is_relative_to(real_root):
        raise IntegrityError(f"{path} leads outside the artifact directory (to {real}); refusing to read it")
    return path


def read_manifest(root: str | Path) -> dict | None:
    path = inside(root, MANIFEST_NAME)
    if not path.exists():
        return None
    manifest = read_json_object(path)
    if manifest.get("format") != FORMAT:
        found = manifest.get("format")
        raise EdgeforgeError(f"{path} is not an edgeforge manifest (format {found!r})")
    return manifest


def verify_files(root: str | Path, manifest: dict, relative_paths: list[str]) -> None:
    """Check size and sha256 of each named file against the manifest; raise IntegrityError on any mismatch."""
    root = Path(root)
    files = manifest.get("files")
    files = files if isinstance(files, dict) else {}
    for rel in relative_paths:
        entry = files.get(rel)
        if not isinstance(entry, dict) or "size" not in entry or "sha256" not in entry:
            raise IntegrityError(f"{rel} is not listed in {root / MANIFEST_NAME}; refusing to run an unrecorded file")
        path = inside(root, rel)
        if not path.is_file():
            raise IntegrityError(f"{path} is listed in the manifest but missing")
        if path.stat().st_size != entry["size"] or sha256_of(path) != entry["sha256"]:
            raise IntegrityError(
                f"{path} does not match its sha256 in the manifest (modified or corrupt); "
                "rebuild the artifact, or pass verify=False / --no-verify to run it anyway"
            )


def write_manifest(root: str | Path, manifest: dict) -> dict:
    """Record every file below ``root`` (size, sha256) into ``manifest`` and write it atomically, last."""
    from edgeforge.atomic import write_text

    root = Path(root)
    manifest = {"format": FORMAT, **manifest}
    manifest["files"] = {p.relative_to(root).as_posix(): file_entry(root, p) for p in list_files(root)}
    write_text(root / MANIFEST_NAME, dumps_strict(manifest) + "\n")
    return manifest
