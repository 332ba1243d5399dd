"""Writing files so that no reader ever sees half of one, and a crash loses no finished write."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(
    path: str | os.PathLike[str], data: bytes, *, suffix: str = ".tmp", durable: bool = True
) -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it and `os.replace`.

    Readers, other processes included, see the old file or the new one, never a partial one;
    the temporary (``.{name}.XXXX{suffix}``) is removed if writing fails. With ``durable``
    (the default) the temporary is fsynced before the rename and the directory after it, so
    once this returns the new file survives a power loss: without the first, the rename can
    reach the disk before the data and leave an empty file; without the second, the rename
    itself can be lost. Parent directories are created. Returns the path.

    Raises:
        OSError: as the system raised it (a full disk, no permission), with ``filename`` set
            to ``path`` when the system named no file.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        _name(exc, path)
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            _name(exc, path)
        raise
    if durable:
        fsync_directory(path.parent)
    return path


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Flush ``directory``'s entries (a rename into it) to disk; a no-op where directories
    cannot be opened (Windows), whose renames are durable by other means."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temporaries(path: str | os.PathLike[str], *, suffix: str = ".tmp") -> list[Path]:
    """Delete the temporaries that killed `write_atomically` calls for ``path`` left behind.

    Only for a file with one writer at a time (a checkpoint): a temporary of a write still in
    progress elsewhere would be deleted too. Returns the files removed.
    """
    path = Path(path)
    removed = []
    # mkstemp's names: the prefix, 8 random characters, the suffix.
    for stray in path.parent.glob(f".{_glob_escape(path.name)}.{'?' * 8}{suffix}"):
        try:
            stray.unlink()
        except FileNotFoundError:
            continue
        removed.append(stray)
    return removed


def _glob_escape(name: str) -> str:
    """``name`` matched literally by `Path.glob` (``[`` would start a character class)."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _name(exc: OSError, path: Path) -> None:
    # ENOSPC from write() names no file; say which one could not be written.
    if exc.filename is None:
        exc.filename = str(path)
