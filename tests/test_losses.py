"""Losses: sigmoid_cross_entropy against a float64 reference at extreme logits, its gradient
sigmoid(z) - y (also at z = 0), the textbook binary cross-entropy made stable by a rewrite, and
mse and huber against numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.errors import DTypeError, ShapeError
from symdl.ir import toposort
from symdl.simplify import RewriteLog, stabilize
from tests.helpers import check_grads, compile_functions

Z = np.array([-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4])
Y = np.array([0.0, 0.3, 1.0])


def _grid(dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """Every logit of `Z` against every label of `Y`, as (7, 3) arrays."""
    z, y = np.meshgrid(Z, Y, indexing="ij")
    return z.astype(dtype), y.astype(dtype)


def _reference(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """softplus(z) - z y in float64 (another form than the op's: log(1 + e^z) - z y)."""
    z, y = z.astype(np.float64), y.astype(np.float64)
    return np.logaddexp(0.0, z) - z * y


def _sigmoid(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def _textbook(z: sd.Expr, y: sd.Expr) -> sd.Expr:
    p = sd.sigmoid(z)
    return -(y * sd.log(p) + (1 - y) * sd.log(1 - p))


def _textbook_by_exp(z: sd.Expr, y: sd.Expr) -> sd.Expr:
    p = 1 / (1 + sd.exp(-z))
    return -(y * sd.log(p) + (1 - y) * sd.log(1 - p))


LOSSES = {
    "op": sd.sigmoid_cross_entropy,
    "textbook": _textbook,
    "textbook_by_exp": _textbook_by_exp,
}
TOL = {"float64": 1e-13, "float32": 2e-6}


@pytest.mark.parametrize("how", LOSSES)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_binary_cross_entropy_is_finite_and_exact_at_extremes(
    how: str, dtype: str, symdl_cache: Path
) -> None:
    z = sd.placeholder("z", (7, 3), dtype)
    y = sd.placeholder("y", (7, 3), dtype)
    loss = LOSSES[how](z, y)
    z_grad = sd.grad(sd.sum(loss), z)
    module = compile_functions({"f": ([z, y], [loss, z_grad])}, symdl_cache, f"bce_{how}")
    zs, ys = _grid(dtype)
    value, grad = module.f(zs, ys)
    assert value.dtype == grad.dtype == np.dtype(dtype)
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    expected = _reference(zs, ys)
    np.testing.assert_allclose(value, expected, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(grad, _sigmoid(zs) - ys, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_sigmoid_cross_entropy_gradient_at_zero_is_half_minus_y(
    dtype: str, symdl_cache: Path
) -> None:
    z = sd.placeholder("z", (3,), dtype)
    y = sd.placeholder("y", (3,), dtype)
    g = sd.grad(sd.sum(sd.sigmoid_cross_entropy(z, y)), z)
    module = compile_functions({"g": ([z, y], g)}, symdl_cache, "bce_zero")
    ys = np.array([0.0, 0.25, 1.0], dtype)
    np.testing.assert_array_equal(module.g(np.zeros(3, dtype), ys), 0.5 - ys)  # exactly


def test_sigmoid_cross_entropy_gradients_by_finite_differences(symdl_cache: Path) -> None:
    z = sd.placeholder("z", (None, 4), "float64")
    y = sd.placeholder("y", (4,), "float64")  # broadcast to the logits: summed back
    rng = np.random.default_rng(0)
    values = [rng.uniform(-8, 8, (5, 4)), rng.uniform(0, 1, 4)]
    check_grads(lambda a, b: _reference(a, np.broadcast_to(b, a.shape)), [z, y],
                sd.sigmoid_cross_entropy(z, y), values, cache_dir=symdl_cache)


def test_the_textbook_loss_is_rewritten_to_the_op() -> None:
    z = sd.placeholder("z", (None, 3), "float64")
    y = sd.placeholder("y", (None, 3), "float64")
    for build in (_textbook, _textbook_by_exp):
        log = RewriteLog()
        (stable,) = stabilize([build(z, y)], log=log)
        ops = {n.op.name for n in toposort([stable])}
        assert "sigmoid_cross_entropy" in ops, ops
        assert not ops & {"log", "exp", "divide"}, ops
        assert log.fired["binary_cross_entropy_of_sigmoid"] == 1


def test_the_textbook_gradient_prints_as_sigmoid_minus_y() -> None:
    z = sd.placeholder("z", (None, 3), "float64")
    y = sd.placeholder("y", (None, 3), "float64")
    source = sd.generate({"f": ([z, y], sd.grad(sd.sum(_textbook(z, y)), z))}, "bce_grad")
    (line,) = [s.strip() for s in source.splitlines() if s.strip().startswith("z_grad =")]
    # sigmoid(z) - y, with sigmoid through tanh: no log, exp or division left.
    assert line == "z_grad = -y + 0.5 * np.tanh(0.5 * z) + 0.5", line


def test_a_textbook_loss_with_other_terms_is_left_alone() -> None:
    # (1 - y) paired with another label is not the binary cross-entropy: no rewrite.
    z = sd.placeholder("z", (3,), "float64")
    y = sd.placeholder("y", (3,), "float64")
    t = sd.placeholder("t", (3,), "float64")
    p = sd.sigmoid(z)
    (stable,) = stabilize([-(y * sd.log(p) + (1 - t) * sd.log(1 - p))])
    assert "sigmoid_cross_entropy" not in {n.op.name for n in toposort([stable])}


def test_sigmoid_cross_entropy_refuses_labels_that_broadcast_the_logits() -> None:
    z = sd.placeholder("z", (None, 1), "float32")
    with pytest.raises(ShapeError, match=r"\(N, 1\).*\(N, N\)|\(N,\).*\(N, 1\)"):
        sd.sigmoid_cross_entropy(z, sd.placeholder("y", (None,), "float32"))
    with pytest.raises(DTypeError, match="sigmoid_cross_entropy"):
        sd.sigmoid_cross_entropy(z, sd.placeholder("k", (None, 1), "int64"))


# --------------------------------------------------------------------------- mse, huber


def _huber(a: np.ndarray, b: np.ndarray, delta: float) -> np.ndarray:
    r = np.abs(a - b)
    return np.mean(np.where(r <= delta, 0.5 * r * r, delta * (r - 0.5 * delta)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mse_and_huber_against_numpy(dtype: str, symdl_cache: Path) -> None:
    a = sd.placeholder("a", (None, 4), dtype)
    b = sd.placeholder("b", (None, 4), dtype)
    outputs = [sd.mse(a, b), sd.huber(a, b), sd.huber(a, b, delta=0.25)]
    assert all(o.shape == () and o.dtype == dtype for o in outputs)
    module = compile_functions({"f": ([a, b], outputs)}, symdl_cache, "regression")
    rng = np.random.default_rng(1)
    av, bv = (rng.uniform(-3, 3, (6, 4)).astype(dtype) for _ in range(2))
    mse, huber, huber_small = module.f(av, bv)
    a64, b64 = av.astype(np.float64), bv.astype(np.float64)
    tol = 1e-14 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(mse, np.mean((a64 - b64) ** 2), rtol=tol)
    np.testing.assert_allclose(huber, _huber(a64, b64, 1.0), rtol=tol)
    np.testing.assert_allclose(huber_small, _huber(a64, b64, 0.25), rtol=tol)


def test_huber_gradient_is_the_clipped_residual(symdl_cache: Path) -> None:
    a = sd.placeholder("a", (6,), "float64")
    b = sd.placeholder("b", (6,), "float64")
    g = sd.grad(sd.huber(a, b, delta=1.0), a)
    module = compile_functions({"g": ([a, b], g)}, symdl_cache, "huber_grad")
    av = np.array([-3.0, -1.0, -0.5, 0.0, 1.0, 2.5])  # +-1: on the boundary
    np.testing.assert_allclose(module.g(av, np.zeros(6)), np.clip(av, -1, 1) / 6, rtol=1e-15)
    rng = np.random.default_rng(2)
    check_grads(lambda x, t: _huber(x, t, 1.0), [a, b], sd.huber(a, b), [
        rng.uniform(-3, 3, 6), rng.uniform(-3, 3, 6)], cache_dir=symdl_cache)


def test_regression_losses_refuse_bad_input() -> None:
    a = sd.placeholder("a", (None,), "float64")
    with pytest.raises(ShapeError, match=r"mse: .*\(N, 1\).*\(N, N\)"):
        sd.mse(a, sd.placeholder("b", (None, 1), "float64"))
    with pytest.raises(ShapeError, match="delta"):
        sd.huber(a, a, delta=0.0)
    with pytest.raises(DTypeError, match="huber"):
        sd.huber(a, sd.placeholder("k", (None,), "int64"))
