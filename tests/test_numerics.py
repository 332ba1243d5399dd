"""Losses and gradients stay finite and accurate at extreme logits, in float32 and float64.

References are computed in float64 with max-shifted formulas written here; the suite turns numpy
RuntimeWarnings (overflow, invalid, divide) into errors, so a NaN on the way also fails.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd

LOGITS = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [3.0, 2.0, 1.0], [-1e4, 5e3, 1e4]])
LABELS = np.eye(3)[[1, 0, 2, 1]]  # the first, second and last rows put the label far from the max
TOL = {"float32": 2e-6, "float64": 1e-12}


def _ref_log_softmax(z: np.ndarray) -> np.ndarray:
    s = z - z.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def _ref_loss_and_grad(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    logp = _ref_log_softmax(z)
    n = z.shape[0]
    return float(-(y * logp).sum() / n), (np.exp(logp) - y) / n


def _compile(loss_of, dtype: str, cache: Path):
    z = sd.placeholder("z", (None, 3), dtype)
    y = sd.placeholder("y", (None, 3), dtype)
    loss = loss_of(z, y)
    return sd.compile({"f": ([z, y], [loss, sd.grad(loss, z)])}, "numerics", cache_dir=cache)


def _check(mod, dtype: str) -> None:
    z, y = LOGITS.astype(dtype), LABELS.astype(dtype)
    loss, grad = mod.f(z, y)
    ref_loss, ref_grad = _ref_loss_and_grad(z.astype(np.float64), y.astype(np.float64))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert np.asarray(loss).dtype == np.dtype(dtype) and grad.dtype == np.dtype(dtype)
    np.testing.assert_allclose(loss, ref_loss, rtol=TOL[dtype])
    np.testing.assert_allclose(grad, ref_grad, rtol=TOL[dtype], atol=TOL[dtype] / 4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_at_extreme_logits(dtype: str, symdl_cache: Path) -> None:
    mod = _compile(lambda z, y: sd.mean(sd.softmax_cross_entropy(z, y)), dtype, symdl_cache)
    _check(mod, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_softmax_loss_at_extreme_logits(dtype: str, symdl_cache: Path) -> None:
    mod = _compile(
        lambda z, y: -sd.sum(y * sd.log_softmax(z, axis=1)) / 4, dtype, symdl_cache
    )
    _check(mod, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_naive_course_loss_is_stable(dtype: str, symdl_cache: Path) -> None:
    """The seed's ``-sum(y * log(softmax(z)))``: stable once simplification rewrites
    log(softmax) -> log_softmax."""
    mod = _compile(
        lambda z, y: sd.mean(-sd.sum(y * sd.log(sd.softmax(z)), axis=1)), dtype, symdl_cache
    )
    _check(mod, dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_and_softplus_at_extremes(dtype: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (6,), dtype)
    loss = sd.sum(sd.sigmoid(x) + sd.softplus(x))
    mod = sd.compile({"f": ([x], [loss, sd.grad(loss, x)])}, "sig", cache_dir=symdl_cache)
    xv = np.array([-1e4, -50.0, -1e-3, 0.0, 40.0, 1e4], dtype=dtype)
    got_loss, got_grad = mod.f(xv)
    x64 = xv.astype(np.float64)
    sig = np.exp(-np.logaddexp(0, -x64))
    softplus = np.logaddexp(0, x64)
    assert np.all(np.isfinite(got_grad))
    np.testing.assert_allclose(got_loss, np.sum(sig + softplus), rtol=TOL[dtype])
    np.testing.assert_allclose(got_grad, sig * (1 - sig) + sig, rtol=10 * TOL[dtype],
                               atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_probabilities_near_zero_and_one(dtype: str, symdl_cache: Path) -> None:
    """Binary cross-entropy from logits through softplus: finite for p near 0 and 1."""
    z = sd.placeholder("z", (4,), dtype)
    t = sd.placeholder("t", (4,), dtype)
    loss = sd.sum(sd.softplus(z) - t * z)  # = -t log p - (1 - t) log(1 - p), p = sigmoid(z)
    mod = sd.compile({"f": ([z, t], [loss, sd.grad(loss, z)])}, "bce", cache_dir=symdl_cache)
    zv = np.array([-80.0, -30.0, 30.0, 80.0], dtype=dtype)
    tv = np.array([1.0, 0.0, 1.0, 0.0], dtype=dtype)
    got_loss, got_grad = mod.f(zv, tv)
    z64, t64 = zv.astype(np.float64), tv.astype(np.float64)
    np.testing.assert_allclose(got_loss, np.sum(np.logaddexp(0, z64) - t64 * z64), rtol=TOL[dtype])
    p = np.exp(-np.logaddexp(0, -z64))
    # sigmoid is computed as 0.5 + 0.5 tanh(z / 2): accurate to an absolute epsilon, not
    # relatively in the far tail (sigmoid(-30) = 9.4e-14 is 0 in float32); gradients need the
    # former.
    atol = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(got_grad, p - t64, rtol=TOL[dtype], atol=atol)
