"""Write outputs so that a crash leaves the previous complete output or nothing, never a partial one.

Files go to a temporary sibling and are renamed into place (``os.replace`` is atomic on POSIX);
directories are assembled in a temporary sibling and swapped in when complete. Standard library only,
so the runtime can use it too.

Temporary names are hidden and say what they are: ``.NAME.PID.XXXX.partial`` (``.NAME.PID.old`` for
the previous output during a swap). While a block runs in the main thread, SIGTERM is turned into
KeyboardInterrupt so the temporary is removed, as on Ctrl-C; after a SIGKILL the next directory
written to the same place removes the temporaries of processes that no longer exist (single files
skip that scan: ``edgeforge run`` writes thousands of them into one folder, and sweeps that folder once per
run instead, ``remove_stale_partial_files``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from edgeforge.errors import EdgeforgeError

# Errors that mean "this output cannot be written", whoever raised them inside the block.
_WRITE_ERRNOS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
                 errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                 errno.ENOTDIR: "a part of the path is a file, not a directory",
                 errno.EISDIR: "it is a directory", errno.ENAMETOOLONG: "the name is too long",
                 errno.EEXIST: "a file of that name is in the way"}


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask would set it, racily)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: mkstemp / mkdtemp create owner-only entries; outputs get the mode a plain open() / mkdir() would give.
_FILE_MODE, _DIR_MODE = 0o666 & ~_umask(), 0o777 & ~_umask()


class OutputError(EdgeforgeError):
    """An output could not be written (full disk, quota, read-only); the previous one is unchanged."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cannot write {path}: {reason}; the previous output, if any, is unchanged")
        self.reason = reason


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps ``suffix`` (e.g. ``.onnx``) for tools that look at extensions.
    """
    path = Path(path)
    with _writing(path), terminate_as_interrupt():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=f".partial{suffix}", dir=path.parent)
        os.fchmod(fd, _FILE_MODE)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            raise_if_terminated()
            _fsync(tmp_path)
            os.replace(tmp_path, path)
            _fsync(path.parent)
        finally:
            if tmp_path.exists():
                tmp_path.unlink()


def output_directory(path: str | os.PathLike) -> Path:
    """``path`` as a folder to write files into, made with its parents; one line (not a traceback) when a
    file is in the way or it cannot be made. Files go in one by one (``atomic_path``); nothing is removed."""
    path = Path(path)
    with _writing(path):
        if path.exists() and not path.is_dir():
            raise OutputError(path, "it exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
    return path


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, replaces: str | Callable[[Path], bool],
                     what: str | None = None) -> Iterator[Path]:
    """Yield an empty staging directory; it replaces ``path`` only when the block succeeds.

    Directories cannot be swapped in one system call, so the old output is first renamed aside,
    the new one renamed in, then the old one deleted: at every instant ``path`` is either the
    previous complete directory or the new complete one (or briefly absent), never half-written.
    ``replaces`` says what an earlier output of this writer looks like: a file it always holds, or a
    test of the directory. An existing non-empty directory that is not one is never replaced (so that
    ``-o ~/photos`` cannot wipe a folder of the user's); every writer of a directory must say. ``what``
    names such an output in the error ("an earlier benchmark report").
    """
    path = Path(path).resolve()
    with _writing(path), terminate_as_interrupt():
        check_replaceable(path, replaces, what)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".partial", dir=path.parent))
        os.chmod(staging, _DIR_MODE)
        try:
            yield staging
            raise_if_terminated()
            _plain_modes(staging)
            _fsync_tree(staging)
            _swap_in(staging, path)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging: Path, path: Path) -> None:
    backup = None
    if path.exists():
        backup = path.with_name(f".{path.name}.{os.getpid()}.old")
        os.replace(path, backup)
    try:
        os.replace(staging, path)
    except BaseException:  # interrupted between the two renames: put the previous output back
        if backup is not None and not path.exists():
            os.replace(backup, path)
        raise
    _fsync(path.parent)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporaries beside ``path`` left by processes that no longer run (killed mid-write).

    A ``.old`` backup is put back when ``path`` itself is missing (killed between the two renames
    of a directory swap); otherwise it is deleted. Temporaries of live processes are left alone.
    """
    path = Path(path)
    prefix = f".{path.name}."
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in sorted(path.parent.iterdir()):
        if not candidate.name.startswith(prefix):
            continue
        # Exactly PID.old or PID.RANDOM.partial[SUFFIX] (mkstemp's RANDOM has no dots), so that the
        # temporaries of a sibling named like "NAME.5" are never taken for ours.
        parts = candidate.name[len(prefix):].split(".")
        is_backup = parts[1:] == ["old"]
        is_partial = len(parts) >= 3 and parts[2] == "partial"
        if not (parts[0].isdigit() and (is_backup or is_partial)) or _process_alive(int(parts[0])):
            continue
        if is_backup and not path.exists():
            os.replace(candidate, path)
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)
        removed.append(candidate)
    return removed


_PARTIAL_FILE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[^.]+\.partial(\.[^.]*)?$")


def remove_stale_partial_files(folder: str | os.PathLike) -> list[Path]:
    """Remove, in one listing of ``folder``, the temporary files of ``atomic_path`` writes whose process no
    longer runs (a worker killed mid-write): for folders of many outputs, where a scan per file would not do."""
    removed = []
    for candidate in sorted(Path(folder).iterdir()) if Path(folder).is_dir() else ():
        found = _PARTIAL_FILE.match(candidate.name)
        if found and candidate.is_file() and not _process_alive(int(found["pid"])):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OverflowError:
        return False
    return True


def check_replaceable(path: str | os.PathLike, replaces: str | Callable[[Path], bool], what: str | None = None) -> None:
    """Raise unless ``path`` is absent, empty, or an earlier output (see ``atomic_directory``); for writers
    that check before minutes of work instead of only when they start writing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EdgeforgeError(f"{path} exists and is not a directory; refusing to replace it")
    if not path.is_dir() or not any(path.iterdir()):
        return
    own = (path / replaces).is_file() if isinstance(replaces, str) else replaces(path)
    if not own:
        if what:
            description = f"that is not {what}"
        elif isinstance(replaces, str):
            description = f"without {replaces}"
        else:
            description = "that is not an earlier output of this command"
        raise EdgeforgeError(f"{path} is a non-empty directory {description}; refusing to replace it "
                             "(choose a new output directory, or empty this one)")


@contextlib.contextmanager
def _writing(path: Path) -> Iterator[None]:
    """Full disk and the like become one clear line naming the output (the temporary is removed).

    Nested writes (a file inside a staging directory) are reported under the outermost output,
    which is the name the user gave, not a temporary one."""
    try:
        yield
    except OutputError as exc:
        raise OutputError(path, exc.reason) from None
    except OSError as exc:
        if exc.errno not in _WRITE_ERRNOS:
            raise
        raise OutputError(path, _WRITE_ERRNOS[exc.errno]) from None


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt (so cleanup runs) instead of killing.

    Only in the main thread (signal handlers cannot be set elsewhere) and only when SIGTERM has its
    default action (an application's own handler is left alone).
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def interrupt(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
        _TERMINATED.set()
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    def unraisable(info):  # the handler's exception inside a finalizer: no traceback, the flag acts for it
        if not (_TERMINATED.is_set() and isinstance(info.exc_value, KeyboardInterrupt)):
            previous_hook(info)

    # Installed again after a termination (the handler put the default back): the flag is the outer block's.
    owns_flag = not _TERMINATED.is_set()
    previous_hook = sys.unraisablehook
    signal.signal(signal.SIGTERM, interrupt)
    sys.unraisablehook = unraisable
    try:
        yield
        raise_if_terminated()
    finally:
        if signal.getsignal(signal.SIGTERM) is interrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if sys.unraisablehook is unraisable:
            sys.unraisablehook = previous_hook
        if owns_flag:
            _TERMINATED.clear()


#: Set by the SIGTERM handler above. Its KeyboardInterrupt is lost when the signal lands in a finalizer
#: (Python only prints exceptions raised in ``__del__``: seen once in CI, a terminated build that went on and
#: exited 0), so outputs check this before they commit, and the handler's block before it ends.
_TERMINATED = threading.Event()


def raise_if_terminated() -> None:
    if _TERMINATED.is_set():
        raise KeyboardInterrupt("terminated by signal 15")


def _fsync(path: Path) -> None:
    """Flush to the disk, so that a power cut after the rename cannot leave an empty file in place."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():  # some systems cannot open a directory; its flush is best effort
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _plain_modes(root: Path) -> None:
    """Everything in a finished output gets a plain write's mode: libraries that write through temporary
    files leave them owner-only (safetensors' ``save_file`` under ``save_pretrained``), others executable
    (ai-edge-quantizer's 0755)."""
    for directory, directories, files in os.walk(root):
        for name in directories:
            os.chmod(Path(directory) / name, _DIR_MODE)
        for name in files:
            if not (Path(directory) / name).is_symlink():
                os.chmod(Path(directory) / name, _FILE_MODE)


def _fsync_tree(root: Path) -> None:
    for directory, _, files in os.walk(root):
        for name in files:
            _fsync(Path(directory) / name)
        _fsync(Path(directory))
