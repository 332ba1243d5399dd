"""The module file cache: content-addressed files, written atomically, imported from disk.

A module lives in ``<cache>/<name>_<hash>.py`` where the hash is that of its source, so two
generations of the same model share one file and a changed model never reuses a stale one. The
file is imported with importlib from disk, so tracebacks, ``inspect.getsource`` and pdb show its
real lines.

What is checked, and what happens when a check fails:

- the module file is verified against the hash in its name before it is compiled, from the very
  bytes that were verified; each ``.npy`` constant beside it is verified by the module itself when
  it loads it (`codegen.module.LOADER_SOURCE`). A file that changed after it was written, even in
  the middle of an import, is a cache miss: it is written again and the import retried.
- a cache directory that cannot be written, or that another user owns or may write to, is
  replaced by a private one (with a `CacheWarning`): importing from it would run whatever another
  user put there.
- a write that fails (a full disk, no permission) falls back to the private directory, with a
  `CacheWarning` naming the file and the reason; if that fails too, `CacheError` names both.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import marshal
import os
import stat
import sys
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

import numpy as np

from symdl.errors import CacheError, CacheWarning, CodegenError
from symdl.files import write_atomically

DIGEST_LENGTH = 16
# Imports retried when the files changed under them; a writer that keeps changing them for this
# long is not a race but interference, and the private directory is used instead.
ATTEMPTS = 3


def default_cache_dir() -> Path:
    """``$SYMDL_CACHE`` if set, else ``~/.cache/symdl``."""
    env = os.environ.get("SYMDL_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "symdl"


def usable_cache_dir(cache_dir: str | os.PathLike[str] | None) -> Path:
    """The cache directory, created if needed; a private temporary one (with a `CacheWarning`)
    if it cannot be created or written, or if another user owns it or may write to it."""
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
        unsafe = _unsafe(path)
        if unsafe is None:
            probe = tempfile.NamedTemporaryFile(dir=path, prefix=".probe-", delete=True)
            probe.close()
            return path
    except OSError as exc:
        fallback = _private_temp_dir()
        _warn(f"symdl: cache directory {path} is not usable ({exc.strerror or exc}); using "
              f"{fallback} instead (set $SYMDL_CACHE to choose another)")
        return fallback
    fallback = _private_temp_dir()
    _warn(f"symdl: cache directory {path} {unsafe}, who could change the modules symdl imports "
          f"from it; using {fallback} instead (set $SYMDL_CACHE to a directory of your own)")
    return fallback


def _unsafe(path: Path) -> str | None:
    """Why another user could put files in ``path`` (pip refuses such a cache too), or None.

    Group write counts unless the group is the user's own: with one private group per user
    (Debian's and Fedora's default), umask 002 makes every directory group-writable, and that
    group holds the user alone.
    """
    if not hasattr(os, "getuid"):
        return None  # Windows guards folders with ACLs, not mode bits: nothing cheap to check
    info = path.stat()
    mode = stat.filemode(info.st_mode)
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & stat.S_IWOTH:
        return f"is writable by every user ({mode})"
    if info.st_mode & stat.S_IWGRP and info.st_gid != os.getgid():
        return f"is writable by the users of group {info.st_gid} ({mode})"
    return None


# The warning points at the first line outside these packages: the user's, that compiled the
# model (through `compile`, `compile_train_step` or `symdl.tf`, however deep).
_OWN_CODE = tuple(
    os.path.join(os.path.dirname(os.path.dirname(__file__)), package, "")
    for package in ("codegen", "symdl")
)


def _warn(message: str) -> None:
    level, frame = 1, sys._getframe(0)
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_CODE):
        level, frame = level + 1, frame.f_back
    warnings.warn(message, CacheWarning, stacklevel=level)


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
    so concurrent writers and readers never see a partial file.

    Raises:
        OSError: when a file cannot be written; its ``filename`` names the file.
    """
    for fname, array in (arrays or {}).items():
        _write_if_changed(directory / fname, _npy_bytes(array))
    path = directory / f"{name}_{digest(source)}.py"
    _write_if_changed(path, source.encode("utf-8"))
    return path


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _write_if_changed(path: Path, data: bytes) -> None:
    if _read(path) != data:
        # A missing file, or one whose content no longer matches its name: (re)write it. Not
        # fsynced: a cache file that a crash lost or tore is found by its hash and rewritten.
        try:
            write_atomically(path, data, durable=False)
        except OSError as exc:
            if exc.filename is None:  # what write() raises for a full disk names no file
                exc.filename = str(path)
            raise


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _changed_files(path: Path, source: str, arrays: dict[str, np.ndarray]) -> list[Path]:
    """The module's files that no longer hold what `write_module` wrote."""
    expected = {path: source.encode("utf-8")}
    expected.update({path.parent / fname: _npy_bytes(a) for fname, a in arrays.items()})
    return [p for p, data in expected.items() if _read(p) != data]


def load_module(source: str, name: str, arrays: dict[str, np.ndarray],
                cache_dir: str | os.PathLike[str] | None) -> ModuleType:
    """Write the module ``name`` (and its ``.npy`` constants) to the cache and import it.

    The cache is ``cache_dir`` (see `usable_cache_dir`); when writing there fails, or its files
    keep changing while they are imported, the private temporary directory is used instead,
    with a `CacheWarning` saying why.

    Raises:
        CacheError: when the private directory fails too; it names both directories, the files
            and the reasons.
    """
    directory = usable_cache_dir(cache_dir)
    try:
        return _write_and_import(source, name, arrays, directory)
    except CacheError as exc:
        fallback = _private_temp_dir()
        if fallback == directory:
            raise
        reason = str(exc).removeprefix("codegen: ")
        _warn(f"symdl: {reason}; using {fallback} instead (set $SYMDL_CACHE to choose another)")
        try:
            return _write_and_import(source, name, arrays, fallback)
        except CacheError as again:
            raise CacheError(
                f"{exc}; and in the fallback: {str(again).removeprefix('codegen: ')}. Free some "
                "disk space, or set $SYMDL_CACHE to a writable directory"
            ) from again


def _write_and_import(source: str, name: str, arrays: dict[str, np.ndarray],
                      directory: Path) -> ModuleType:
    changed: list[Path] = []
    for _ in range(ATTEMPTS):
        try:
            path = write_module(source, name, directory, arrays)
        except OSError as exc:
            raise CacheError(
                f"codegen: cannot write {exc.filename or directory} in the cache directory "
                f"{directory} ({exc.strerror or exc})"
            ) from exc
        try:
            return import_file(path)
        except Exception:
            # A file rewritten by someone else between our write and the import (the module
            # refuses a constant that does not match its hash) is a cache miss: write it again.
            # A genuine error of the module raises again on the last attempt.
            changed = _changed_files(path, source, arrays)
            if not changed:
                raise
    names = ", ".join(p.name for p in changed)
    raise CacheError(
        f"codegen: {names} in the cache directory {directory} changed while module {name} was "
        f"imported, {ATTEMPTS} times in a row: another process is rewriting them"
    )


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


def _compiled(path: Path, data: bytes) -> CodeType:
    """The code object of the verified source ``data``: from the bytecode file beside it when
    that holds the code of exactly these bytes for this interpreter, else compiled (and the
    bytecode file written, best effort). A deep model's module takes longer to compile than
    everything else a warm start does.

    The bytecode file ``<stem>.<cache tag>.code`` starts with the sha256 of the source it was
    compiled from and of its own payload: a file torn or left from other bytes is ignored.
    """
    code_path = path.with_name(f"{path.stem}.{sys.implementation.cache_tag}.code")
    source_hash = hashlib.sha256(data).digest()
    stored = _read(code_path)
    if stored is not None and stored[:32] == source_hash and (
        hashlib.sha256(stored[64:]).digest() == stored[32:64]
    ):
        try:
            code = marshal.loads(stored[64:])
            if isinstance(code, CodeType):
                return code
        except (EOFError, ValueError, TypeError):
            pass
    code = builtins.compile(data, str(path), "exec", dont_inherit=True)
    payload = marshal.dumps(code)
    try:
        write_atomically(code_path, source_hash + hashlib.sha256(payload).digest() + payload,
                         durable=False)
    except OSError:
        pass  # only the next import's time depends on it
    return code


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
    code = _compiled(path, data)
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - our own verified, generated source
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


# ------------------------------------------------------------------ warm starts: the input key
#
# `compile` looks a module up by a hash of what it was asked to generate, before generating
# anything: a second process compiling the same graph imports the module written by the first
# and never loads the passes, sympy or the printer. The key is written next to the module as a
# small index file, `<name>_k<key>.idx`, holding the key and the module's file name; the module
# itself is still verified against its content hash when it is imported (`import_file`), and
# its constants by the module. An index that is missing, foreign or points at a file that fails
# verification is a miss: the module is generated, written and indexed again.

INDEX_SUFFIX = ".idx"


class _Unkeyable(Exception):
    """An attribute with no canonical text (a Python object symdl does not know): no key."""


def _code_fingerprint() -> str:
    """Size and mtime of every source file of symdl and codegen: an edited generator (in an
    editable install) must not serve the modules its previous version wrote."""
    global _CODE_FINGERPRINT
    if _CODE_FINGERPRINT is None:
        root = Path(__file__).resolve().parent.parent
        h = hashlib.sha256()
        for package in ("codegen", "symdl"):
            for path in sorted((root / package).rglob("*.py")):
                try:
                    info = path.stat()
                except OSError:
                    continue
                h.update(f"{path.relative_to(root)}:{info.st_size}:{info.st_mtime_ns}\n".encode())
        _CODE_FINGERPRINT = h.hexdigest()
    return _CODE_FINGERPRINT


_CODE_FINGERPRINT: str | None = None


class _Encoder:
    """A canonical, process-independent text of graphs: one line per node, in the order a
    depth-first walk over inputs meets them, inputs and referenced expressions by index.

    A warm start pays for this walk and nothing else that grows with the graph, so it is kept
    lean: the lines are collected and hashed once (the same bytes as hashing each line), and
    the core's classes are looked up once per encoder, not per node.
    """

    def __init__(self) -> None:
        from symdl.ir import ConstValue, Expr
        from symdl.ops.base import OPS, GradientOf

        self._expr, self._const, self._gradient, self._ops = Expr, ConstValue, GradientOf, OPS
        self.index: dict[int, int] = {}  # id(node) -> position; ids only within this call
        # Every gradient label of one `grad` call names the same target and leaves: their text
        # is hashed once and referred to by number after (else a deep network's key would cost
        # depth x parameters).
        self.gradients: dict[object, int] = {}  # GradientOf (hashed by its expressions' ids)
        self.lines: list[str] = []  # the text hashed, in order

    def node(self, root: object) -> int:
        """The index of ``root``, encoding it and every node it reaches that is not yet encoded.
        Iterative over inputs; only attributes that hold expressions (a gradient's target)
        nest, as deep as the order of derivatives."""
        if not isinstance(root, self._expr):
            raise _Unkeyable(type(root).__name__)
        index = self.index
        stack: list[tuple[Any, int]] = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if id(node) in index:
                continue
            inputs = node.inputs
            if i < len(inputs):
                stack.append((node, i + 1))
                child = inputs[i]
                if id(child) not in index:
                    stack.append((child, 0))
                continue
            self._line(node)
        return index[id(root)]

    def _line(self, node: Any) -> None:
        op = node.op
        if self._ops.get(op.name) is not op:
            raise _Unkeyable(op.name)  # an op class not registered under its name
        index = self.index
        attrs = ",".join([f"{k}={self.value(v)}" for k, v in node.attrs])
        ins = ",".join([str(index[id(i)]) for i in node.inputs])
        self.lines.append(f"{op.name}({ins})[{attrs}]{node.shape!r}{node.dtype}\n")
        index[id(node)] = len(index)

    def value(self, v: object) -> str:
        """Canonical text of one attribute value (small: no graph depth in it)."""
        if v is None or isinstance(v, (bool, int, str)):
            return repr(v)
        if isinstance(v, float):
            return f"f{v!r}"  # repr is exact, -0.0, nan and inf included
        if isinstance(v, (tuple, list)):
            return f"{type(v).__name__[0]}(" + ",".join([self.value(x) for x in v]) + ")"
        if isinstance(v, self._const):
            a = v.array
            return f"c({a.dtype.str},{a.shape!r},{hashlib.sha256(a.tobytes()).hexdigest()})"
        if isinstance(v, self._expr):
            return f"e{self.node(v)}"
        if isinstance(v, self._gradient):
            if v not in self.gradients:
                text = f"g({self.node(v.y)};" + ",".join([str(self.node(w)) for w in v.wrt])
                self.lines.append(f"{text})\n")
                self.gradients[v] = len(self.gradients)
            return f"g{self.gradients[v]}"
        if isinstance(v, np.generic):
            return f"n({v.dtype.str},{v.item()!r})"
        if type(v).__module__.split(".")[0] == "sympy":
            import sympy

            return f"s({sympy.srepr(v)})"
        raise _Unkeyable(type(v).__name__)

    def digest(self) -> str:
        """The sha256 of every line so far, in order."""
        return hashlib.sha256("".join(self.lines).encode("utf-8")).hexdigest()


def input_key(functions: Mapping[str, tuple], name: str, options: str) -> str | None:
    """The cache key of a module from what it is asked to hold: every function's name, inputs,
    outputs and updates with the graphs below them (op names, attributes, shapes, dtypes,
    names), the module name, the generation options and the generator's version and sources.

    One pass over the graphs, linear in their size, and no checks: ``functions`` is keyed as
    given, and only a mapping that was generated once (so passed `codegen.spec.normalize`) has
    an index to find. None when it has no key: some attribute has no canonical text, or the
    mapping is malformed (then the module is generated, which says what is wrong).
    """
    from symdl._version import __version__
    from symdl.ir import Expr

    encoder = _Encoder()
    encoder.lines.append(f"symdl {__version__} {_code_fingerprint()}\n{name}\n{options}\n")
    try:
        for fname, value in functions.items():
            inputs, outputs, *rest = value
            single = isinstance(outputs, Expr)
            ins = [encoder.node(x) for x in inputs]
            outs = [encoder.node(o) for o in ([outputs] if single else outputs)]
            updates = [(encoder.node(k), encoder.node(v)) for k, v in
                       (dict(rest[0]) if rest else {}).items()]
            encoder.lines.append(f"def {fname!r}{ins}->{outs}{single}{updates}{len(rest)}\n")
    except (_Unkeyable, TypeError, ValueError, AttributeError):
        return None
    return encoder.digest()[:32]


def _index_path(directory: Path, name: str, key: str) -> Path:
    return directory / f"{name}_k{key}{INDEX_SUFFIX}"


def load_indexed(name: str, key: str, directory: Path) -> ModuleType | None:
    """The module the index for ``key`` names, imported after verifying its content hash, or
    None on any miss (no index, a foreign or torn one, a module that fails verification or
    whose constants were changed): the caller then generates it. ``directory`` is what
    `usable_cache_dir` returned."""
    data = _read(_index_path(directory, name, key))
    if data is None:
        return None
    fields = data.decode("utf-8", errors="replace").split()
    if len(fields) < 2:
        return None  # empty or torn
    stored_key, fname, *constants = fields
    # The index names files of this module in this directory, and nothing else.
    if stored_key != key or not all(
        f.startswith(f"{name}_") and "/" not in f and "\\" not in f for f in [fname, *constants]
    ) or not fname.endswith(".py"):
        return None
    path = directory / fname
    try:
        reused = sys.modules.get(f"symdl_generated_{path.stem}")
        if reused is not None:
            # `import_file` reuses it unverified: a file changed since this process imported
            # it is rewritten from the model, as a cold compile would. (A fresh import verifies
            # the source, and its loader the constants, itself.)
            verified_source(path)
            if not all(_npy_intact(directory / f) for f in constants):
                return None
        module = import_file(path)
        module.__symdl_constants__ = constants  # type: ignore[attr-defined]
        return module
    except Exception:  # noqa: BLE001 - any failure of a cached file is a miss, regenerated
        return None


def _npy_intact(path: Path) -> bool:
    """Whether the ``.npy`` file hashes to the digest in its name (`codegen.module.LOADER`'s
    formula)."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return False
    return array_digest(array) == path.name[-20:-4]


def array_digest(value: np.ndarray) -> str:
    """Content hash of an array (dtype, shape and bytes) that names its ``.npy`` file."""
    h = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode())
    h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:DIGEST_LENGTH]


def write_index(module: ModuleType, name: str, key: str, constants: list[str]) -> None:
    """Record that ``key`` is the module ``module`` with the ``.npy`` files ``constants`` beside
    it. Best effort: a cache that cannot take the index only costs the next process a
    generation."""
    path = Path(module.__file__ or "")
    text = " ".join([key, path.name, *constants]) + "\n"
    try:
        _write_if_changed(_index_path(path.parent, name, key), text.encode())
    except OSError:
        pass
