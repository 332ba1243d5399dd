"""The module cache: tampered files are regenerated, never imported; concurrent compiles agree;
unusable directories fall back with a warning; large constants live beside the module."""

from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from codegen.cache import import_file, write_module
from symdl.errors import CacheWarning, CodegenError

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
