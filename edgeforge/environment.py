"""Facts about the installed tools and quiet library loggers, shared by every stage (standard library only)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from importlib import metadata


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Python's and each installed package's version; packages not installed are left out."""
    found = {"python": sys.version.split()[0]}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@contextlib.contextmanager
def quiet_logger(name: str, level: int = logging.ERROR) -> Iterator[None]:
    """Raise a library logger's level for a block: converters and quantizers log a line per node."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(previous)
