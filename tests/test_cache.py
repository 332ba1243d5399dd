"""The module cache: tampered files are regenerated, never imported; concurrent compiles agree;
unusable, unsafe or full directories fall back with a warning; large constants live beside the
module and are verified when it loads them."""

from __future__ import annotations

import errno
import importlib.util
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import codegen.cache
import symdl as sd
from codegen.cache import import_file, write_module
from symdl.errors import CacheError, CacheWarning, CodegenError
from symdl.files import write_atomically

BIG = np.linspace(-1.0, 1.0, 1200).reshape(40, 30)


def _model() -> dict:
    x = sd.placeholder("x", (None, 30), "float64")
    w = sd.parameter("w", (30,), "float64")
    loss = sd.sum(sd.tanh(x @ sd.constant(BIG.T) @ sd.constant(BIG) * w))
    return {"f": ([x, w], [loss, sd.grad(loss, w)])}


def _expected(xv: np.ndarray, wv: np.ndarray) -> tuple[float, np.ndarray]:
    a = xv @ BIG.T @ BIG
    t = np.tanh(a * wv)
    return float(t.sum()), ((1 - t * t) * a).sum(axis=0)


XV = np.linspace(0, 0.01, 60).reshape(2, 30)
WV = np.linspace(-0.1, 0.1, 30)


def test_large_constants_are_stored_beside_the_module(tmp_path: Path) -> None:
    mod = sd.compile(_model(), "big", cache_dir=tmp_path)
    source = Path(mod.__file__).read_text()
    assert "np.load(" in source and len(source) < 20_000
    assert len(list(tmp_path.glob("big_*.npy"))) == 2  # BIG.T and BIG
    loss, grad = mod.f(XV, WV)
    ref_loss, ref_grad = _expected(XV, WV)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-10)
    # generate() returns self-contained source: the array is printed inline, exactly.
    assert "np.load(" not in sd.generate(_model(), "big")


def test_tampered_module_is_regenerated_not_imported(tmp_path: Path) -> None:
    mod = sd.compile(_model(), "tamper", cache_dir=tmp_path)
    path = Path(mod.__file__)
    original = path.read_bytes()
    path.write_bytes(original + b"\nraise SystemExit('tampered module was imported')\n")
    with pytest.raises(CodegenError, match="content hash"):
        import_file(_fresh_copy(path, tmp_path))
    # compiling again rewrites the file from the model, then imports the verified bytes
    again = sd.compile(_model(), "tamper", cache_dir=tmp_path)
    assert path.read_bytes() == original
    np.testing.assert_allclose(again.f(XV, WV)[0], _expected(XV, WV)[0], rtol=1e-12)


def _fresh_copy(path: Path, directory: Path) -> Path:
    """The tampered file under a new directory, so no earlier import of it can be reused."""
    sub = directory / "copy"
    sub.mkdir()
    target = sub / path.name
    target.write_bytes(path.read_bytes())
    return target


def test_tampered_npy_is_rewritten(tmp_path: Path) -> None:
    sd.compile(_model(), "npy", cache_dir=tmp_path)
    npy = sorted(tmp_path.glob("npy_*.npy"))[0]
    good = npy.read_bytes()
    npy.write_bytes(good[:-8] + b"\x00" * 8)
    write_module("x = 1\n", "other", tmp_path)  # unrelated writes leave it alone
    sd.compile(_model(), "npy", cache_dir=tmp_path)
    assert npy.read_bytes() == good


def _compile_in_child(directory: str) -> tuple[float, list[float]]:
    mod = sd.compile(_model(), "race", cache_dir=directory)
    loss, grad = mod.f(XV, WV)
    return float(loss), grad.tolist()


def test_concurrent_compiles_agree_and_leave_no_temporary_files(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        results = pool.map(_compile_in_child, [str(tmp_path)] * 4)
    assert all(r == results[0] for r in results)
    np.testing.assert_allclose(results[0][0], _expected(XV, WV)[0], rtol=1e-12)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.endswith(".tmp") or n.startswith(".")], names
    assert len([n for n in names if n.endswith(".py")]) == 1


def test_unusable_cache_dir_falls_back_with_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.warns(CacheWarning, match="not usable"):
        mod = sd.compile(_model(), "fallback", cache_dir=blocker / "cache")
    assert not (blocker / "cache").exists()
    assert Path(mod.__file__).exists()
    np.testing.assert_allclose(mod.f(XV, WV)[0], _expected(XV, WV)[0], rtol=1e-12)


def test_missing_cache_dir_is_created_without_warning(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mod = sd.compile(_model(), "missing", cache_dir=target)
    assert Path(mod.__file__).parent == target


# --------------------------------------------------------------------------- .npy constants


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system temporary folder, where the private fallback cache goes, moved under tmp_path."""
    tmp = tmp_path / "systemp"
    tmp.mkdir(mode=0o700)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


def _forget(name: str) -> None:
    """Drop every imported module compiled as ``name``, so the next compile imports again."""
    for key in [k for k in sys.modules if k.startswith(f"symdl_generated_{name}_")]:
        del sys.modules[key]


def _wrong_npy(good: Path) -> bytes:
    """A valid .npy of the right dtype and shape holding other numbers."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.load(good) * 2.0)
    return buffer.getvalue()


def test_module_refuses_a_tampered_npy_on_its_own(tmp_path: Path) -> None:
    mod = sd.compile(_model(), "verify", cache_dir=tmp_path)
    for npy in tmp_path.glob("verify_*.npy"):
        npy.write_bytes(_wrong_npy(npy))
    # Imported as a user would import it, without symdl: the module checks its constants itself.
    spec = importlib.util.spec_from_file_location("standalone_verify", mod.__file__)
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ValueError, match="does not hold the constant symdl wrote"):
        spec.loader.exec_module(module)
    # Garbage is refused the same way, without numpy's advice to load it with pickle.
    npy = sorted(tmp_path.glob("verify_*.npy"))[0]
    npy.write_bytes(b"not an array at all\n" * 10)
    with pytest.raises(ValueError, match="does not hold the constant") as err:
        spec.loader.exec_module(module)
    assert "pickle" not in str(err.value)


def test_tampered_npy_is_a_cache_miss(tmp_path: Path) -> None:
    sd.compile(_model(), "miss", cache_dir=tmp_path)
    good = {p: p.read_bytes() for p in tmp_path.glob("miss_*.npy")}
    for npy in good:
        npy.write_bytes(_wrong_npy(npy))
    _forget("miss")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten in place: no fallback needed
        mod = sd.compile(_model(), "miss", cache_dir=tmp_path)
    assert {p: p.read_bytes() for p in good} == good
    np.testing.assert_allclose(mod.f(XV, WV)[0], _expected(XV, WV)[0], rtol=1e-12)


def _rewrite_until_stopped(path: str, data: bytes, stop: Any) -> None:
    """Another process's writer: swaps ``data`` in at ``path`` again and again (bounded)."""
    swap = f"{path}.swap"
    for _ in range(1_000_000):
        if stop.is_set():
            return
        with open(swap, "wb") as f:
            f.write(data)
        os.replace(swap, path)


def test_npy_rewritten_during_compiles_never_gives_wrong_constants(
    tmp_path: Path, private_tmp: Path
) -> None:
    """Another process keeps swapping a wrong (valid) .npy in while 12 compiles import the
    model: each compile computes with the right constants (rewritten, or from the private
    cache), where unverified loads used the wrong ones in most of them."""
    sd.compile(_model(), "race", cache_dir=tmp_path)
    npy = sorted(tmp_path.glob("race_*.npy"))[0]
    wrong = _wrong_npy(npy)
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    writer = ctx.Process(target=_rewrite_until_stopped, args=(str(npy), wrong, stop))
    writer.start()
    results = []
    try:
        while npy.read_bytes() != wrong:
            assert writer.is_alive(), "the rewriting process died"
            time.sleep(0.01)  # until it has started
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", CacheWarning)  # the private fallback is allowed
            for _ in range(12):
                _forget("race")
                results.append(sd.compile(_model(), "race", cache_dir=tmp_path).f(XV, WV)[0])
    finally:
        stop.set()
        writer.join(timeout=30)
    np.testing.assert_allclose(results, [_expected(XV, WV)[0]] * 12, rtol=1e-12)


# --------------------------------------------------------------------------- unsafe directories


def test_cache_dir_writable_by_others_falls_back(tmp_path: Path, private_tmp: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.warns(CacheWarning, match=f"{shared} is writable by every user") as record:
        mod = sd.compile(_model(), "shared", cache_dir=shared)
    assert record[0].filename == __file__  # the line that compiled, not symdl's
    assert Path(mod.__file__).parent != shared and not list(shared.iterdir())
    assert private_tmp in Path(mod.__file__).parents
    np.testing.assert_allclose(mod.f(XV, WV)[0], _expected(XV, WV)[0], rtol=1e-12)


def test_cache_dir_of_another_user_falls_back(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    owner = theirs.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)  # we are now someone else
    with pytest.warns(CacheWarning, match=f"owned by another user \\(uid {owner}\\)"):
        mod = sd.compile(_model(), "theirs", cache_dir=theirs)
    assert Path(mod.__file__).parent != theirs and not list(theirs.iterdir())


def test_cache_dir_writable_by_own_group_is_used(tmp_path: Path) -> None:
    """umask 002 with a private group per user makes every directory group-writable: fine."""
    mine = tmp_path / "mine"
    mine.mkdir()
    os.chown(mine, -1, os.getgid())
    mine.chmod(0o775)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mod = sd.compile(_model(), "mine", cache_dir=mine)
    assert Path(mod.__file__).parent == mine


# --------------------------------------------------------------------------- full disk


def _full_disk_in(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes into ``directory`` fail as write() does on a full disk (naming no file)."""
    real = codegen.cache.write_atomically

    def writer(path: Path, data: bytes, **kwargs: object) -> Path:
        if Path(path).parent == directory:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, data, **kwargs)

    monkeypatch.setattr(codegen.cache, "write_atomically", writer)


def test_full_cache_disk_falls_back_naming_the_file(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    _full_disk_in(full, monkeypatch)
    with pytest.warns(CacheWarning, match=f"cannot write {full}/full_[0-9a-f]+\\.npy in the "
                      f"cache directory {full} \\(No space left on device\\)"):
        mod = sd.compile(_model(), "full", cache_dir=full)
    assert private_tmp in Path(mod.__file__).parents
    np.testing.assert_allclose(mod.f(XV, WV)[0], _expected(XV, WV)[0], rtol=1e-12)


def test_full_disk_everywhere_is_a_cache_error(
    tmp_path: Path, private_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = tmp_path / "full"
    full.mkdir()

    def writer(path: Path, data: bytes, **kwargs: object) -> Path:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(codegen.cache, "write_atomically", writer)
    with pytest.warns(CacheWarning), pytest.raises(CacheError) as err:
        sd.compile(_model(), "full", cache_dir=full)
    message = str(err.value)
    assert f"cache directory {full} (No space left on device)" in message
    assert f"cache directory {private_tmp}" in message and "Free some disk space" in message
    assert isinstance(err.value, OSError)


def test_write_atomically_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError) as err:
        write_atomically(target, b"new")
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]
