"""The one way edgeforge reads a JSON file it did not just write: configs, manifests, reports, node costs.

Bounded and one-line on failure: a file over ``MAX_BYTES``, a special file (a FIFO would block), bytes that
are not UTF-8, malformed or pathologically nested JSON (Python's parser raises RecursionError), or a value
that is not an object each become one ``EdgeforgeError`` naming the file. Standard library only.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path

from edgeforge.errors import EdgeforgeError

#: Config files, manifests and reports are kilobytes to a few megabytes; nothing legitimate is larger.
MAX_BYTES = 64 << 20


def finite(value):
    """JSON has no NaN/Infinity: an undefined figure is written as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def dumps_strict(value) -> str:
    """JSON that strict parsers (browsers, jq, Go, Rust) read: NaN and infinities are written as null."""
    return json.dumps(finite(value), indent=2, allow_nan=False)


def read_json_object(path: str | os.PathLike, max_bytes: int = MAX_BYTES) -> dict:
    """The JSON object in ``path``; FileNotFoundError propagates (callers say what a missing file means)."""
    path = Path(path)
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise EdgeforgeError(f"{path} is not a regular file")
    if info.st_size > max_bytes:
        raise EdgeforgeError(f"{path} is {info.st_size:,} bytes, over the {max_bytes:,}-byte limit for a JSON file")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise EdgeforgeError(f"{path} is not valid JSON: nested too deeply") from None
    except UnicodeDecodeError:
        raise EdgeforgeError(f"{path} is not valid JSON: not UTF-8 text") from None
    except ValueError as exc:
        raise EdgeforgeError(f"{path} is not valid JSON: {exc}") from None
    except OSError as exc:
        raise EdgeforgeError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise EdgeforgeError(f"{path} does not hold a JSON object")
    return data


def print_result(value, path: str | os.PathLike | None = None) -> None:
    """A measuring script's result: printed, and written (atomically, strict JSON) to ``path`` when given."""
    text = dumps_strict(value)
    if path is not None:
        from edgeforge.atomic import write_text

        write_text(path, text + "\n")
    print(text)
