"""Writing files so that no reader ever sees half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: str | os.PathLike[str], data: bytes, *, suffix: str = ".tmp") -> Path:
    """Write ``data`` to ``path`` through a temporary file beside it and `os.replace`.

    Readers, other processes included, see the old file or the new one, never a partial one;
    the temporary (``.{name}.XXXX{suffix}``) is removed if writing fails. Parent directories
    are created. Returns the path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
