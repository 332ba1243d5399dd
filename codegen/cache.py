"""The module file cache: content-addressed files, written atomically, imported from disk.

A module lives in ``<cache>/<name>_<hash>.py`` where the hash is that of its source, so two
generations of the same model share one file and a changed model never reuses a stale one. The
file is imported with importlib from disk, so tracebacks, ``inspect.getsource`` and pdb show its
real lines.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

DIGEST_LENGTH = 16


def default_cache_dir() -> Path:
    """``$SYMDL_CACHE`` if set, else ``~/.cache/symdl``."""
    env = os.environ.get("SYMDL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "symdl"


def usable_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache directory, created if needed; a temporary one (with a warning) if unusable."""
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
        probe.close()
        return path
    except OSError as exc:
        fallback = Path(tempfile.gettempdir()) / f"symdl-cache-{os.getuid() if hasattr(os, 'getuid') else 0}"
        fallback.mkdir(parents=True, exist_ok=True)
        warnings.warn(
            f"symdl: cache directory {path} is not writable ({exc.strerror or exc}); "
            f"using {fallback} instead (set $SYMDL_CACHE to choose another)",
            RuntimeWarning,
            stacklevel=3,
        )
        return fallback


def digest(source: str) -> str:
    """The content hash that names a module file."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_module(source: str, name: str, directory: Path,
                 arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``source`` as ``<name>_<hash>.py`` unless an identical file is already there."""
    path = directory / f"{name}_{digest(source)}.py"
    data = source.encode("utf-8")
    try:
        current = path.read_bytes()
    except OSError:
        current = None
    if current != data:
        # A missing file, or one whose content no longer matches its name: (re)write it.
        _atomic_write(path, data)
    return path


def import_file(path: Path) -> ModuleType:
    """Import a generated module from its file (reusing it if this process has it already)."""
    module_name = f"symdl_generated_{path.stem}"
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py path always has a loader
        raise ImportError(f"cannot import generated module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
