"""The module file cache: content-addressed files, written atomically, imported from disk.

A module lives in ``<cache>/<name>_<hash>.py`` where the hash is that of its source, so two
generations of the same model share one file and a changed model never reuses a stale one. The
file is imported with importlib from disk, so tracebacks, ``inspect.getsource`` and pdb show its
real lines.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import os
import sys
import tempfile
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from symdl.errors import CacheWarning, CodegenError
from symdl.files import write_atomically

DIGEST_LENGTH = 16


def default_cache_dir() -> Path:
    """``$SYMDL_CACHE`` if set, else ``~/.cache/symdl``."""
    env = os.environ.get("SYMDL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "symdl"


def usable_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache directory, created if needed; a temporary one (with a `CacheWarning`) if it
    cannot be created or written."""
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
        probe.close()
        return path
    except OSError as exc:
        fallback = _private_temp_dir()
        warnings.warn(
            f"symdl: cache directory {path} is not usable ({exc.strerror or exc}); "
            f"using {fallback} instead (set $SYMDL_CACHE to choose another)",
            CacheWarning,
            stacklevel=3,
        )
        return fallback


def _private_temp_dir() -> Path:
    """A per-user temporary cache, or a fresh one if that is not this user's private folder."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    shared = Path(tempfile.gettempdir()) / f"symdl-cache-{uid}"
    try:
        shared.mkdir(mode=0o700, exist_ok=True)
        info = shared.lstat()
        # Someone else's folder (or a symlink) could hold modules we did not write: do not use it.
        if shared.is_dir() and not shared.is_symlink() and (
            not hasattr(os, "getuid") or (info.st_uid == uid and not info.st_mode & 0o022)
        ):
            return shared
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="symdl-cache-"))


def digest(source: str) -> str:
    """The content hash that names a module file."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:DIGEST_LENGTH]


def write_module(source: str, name: str, directory: Path,
                 arrays: dict[str, np.ndarray] | None = None) -> Path:
    """Write ``source`` as ``<name>_<hash>.py`` (and each array as its ``.npy`` file beside it)
    unless an identical file is already there; every write is atomic (temporary file + rename),
    so concurrent writers and readers never see a partial file."""
    for fname, array in (arrays or {}).items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        _write_if_changed(directory / fname, buffer.getvalue())
    path = directory / f"{name}_{digest(source)}.py"
    _write_if_changed(path, source.encode("utf-8"))
    return path


def _write_if_changed(path: Path, data: bytes) -> None:
    try:
        current = path.read_bytes()
    except OSError:
        current = None
    if current != data:
        # A missing file, or one whose content no longer matches its name: (re)write it.
        write_atomically(path, data)


def verified_source(path: Path) -> bytes:
    """The file's bytes, after checking they hash to the digest in its name.

    Raises `CodegenError` for a file that was changed after it was written: it must be
    regenerated, never imported.
    """
    data = path.read_bytes()
    expected = path.stem.rpartition("_")[2]
    if digest(data.decode("utf-8", errors="replace")) != expected:
        raise CodegenError(
            f"codegen: cached module {path} does not match its content hash; it was modified "
            "after symdl wrote it. Delete it, or compile again to regenerate it"
        )
    return data


def import_file(path: Path) -> ModuleType:
    """Import a generated module from its file, after verifying its content hash.

    The code executed is compiled from the very bytes that were verified (no second read and no
    ``__pycache__``), with the file's path as its filename, so tracebacks, ``inspect`` and pdb
    show the real lines. A module this process already imported from the same file is reused.
    """
    module_name = f"symdl_generated_{path.stem}"
    existing = sys.modules.get(module_name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    data = verified_source(path)
    module = ModuleType(module_name)
    module.__file__ = str(path)
    code = builtins.compile(data, str(path), "exec", dont_inherit=True)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - our own verified, generated source
    except BaseException:
        del sys.modules[module_name]
        raise
    return module
