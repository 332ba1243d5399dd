"""``check=False``: functions without entry checks, for callers in a hot loop. The source has no
check call and no check helper, the module's docstring says checks are off, and the results
are those of the checked module, bit for bit, and of hand-written numpy."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl import init, optim
from tests.test_optim import NumpyAdam, _model, _numpy_loss_and_grads

HEADER = "Entry checks are off (compiled with check=False)"


def _mlp_step(dtype: str) -> dict:
    x = sd.placeholder("x", (None, 5), dtype)
    y = sd.placeholder("y", (None, 3), dtype)
    lr = sd.placeholder("lr", (), dtype)
    W1, b1 = sd.parameter("W1", (5, 4), dtype), sd.parameter("b1", (4,), dtype)
    W2, b2 = sd.parameter("W2", (4, 3), dtype), sd.parameter("b2", (3,), dtype)
    h = sd.relu(x @ W1 + b1).named("h")
    loss = sd.mean(sd.softmax_cross_entropy(h @ W2 + b2, y)).named("loss")
    params = [W1, b1, W2, b2]
    grads = sd.grad(loss, params)
    return {"train_step": ([x, y, *params, lr], loss,
                           {p: p - lr * g for p, g in zip(params, grads)})}


def _calls(source: str) -> list[str]:
    """Names of every function called or defined in ``source``."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            names.append(node.func.id)
        elif isinstance(node, ast.FunctionDef):
            names.append(node.name)
    return names


def _values(dtype: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(7, 5)).astype(dtype)
    y = np.eye(3, dtype=dtype)[rng.integers(0, 3, size=7)]
    params = [rng.normal(scale=0.5, size=s).astype(dtype) for s in [(5, 4), (4,), (4, 3), (3,)]]
    return [x, y], params


def _numpy_step(x, y, params, lr):
    """The same SGD step by hand: relu layer, softmax cross-entropy, mean, plain updates."""
    W1, b1, W2, b2 = params
    a = x @ W1 + b1
    h = np.maximum(a, 0)
    z = h @ W2 + b2
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    loss = -(y * logp).sum() / len(x)
    dz = (np.exp(logp) - y) / len(x)
    dh = dz @ W2.T * (a > 0)
    grads = [x.T @ dh, dh.sum(0), h.T @ dz, dz.sum(0)]
    return loss, [p - lr * g for p, g in zip(params, grads)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_no_checks_same_results(tmp_path: Path, dtype: str) -> None:
    checked = sd.compile(_mlp_step(dtype), "step", cache_dir=tmp_path)
    fast = sd.compile(_mlp_step(dtype), "step", cache_dir=tmp_path, check=False)
    source = Path(fast.__file__).read_text()
    assert not [n for n in _calls(source) if n.startswith("_check_")], source
    assert "_check_" not in source and "_argument_error" not in source
    assert HEADER in ast.get_docstring(ast.parse(source))
    assert HEADER not in Path(checked.__file__).read_text()
    assert "N = x.shape[0]" in source or "x.shape[0]" in source  # sizes are still read
    (x, y), params = _values(dtype)
    lr = np.array(0.1, dtype)[()]
    p_checked = [p.copy() for p in params]
    p_fast = [p.copy() for p in params]
    loss_checked = checked.train_step(x, y, *p_checked, lr)
    loss_fast = fast.train_step(x, y, *p_fast, lr)
    assert loss_fast == loss_checked and np.asarray(loss_fast).dtype == np.dtype(dtype)
    for a, b in zip(p_fast, p_checked):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    ref_loss, ref_params = _numpy_step(x.astype(np.float64), y.astype(np.float64),
                                       [p.astype(np.float64) for p in params], 0.1)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(loss_fast, ref_loss, rtol=tol)
    for got, want in zip(p_fast, ref_params):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_checks_stay_on_by_default(tmp_path: Path) -> None:
    mod = sd.compile(_mlp_step("float32"), "step", cache_dir=tmp_path)
    (x, y), params = _values("float32")
    with pytest.raises(ValueError, match="x"):
        mod.train_step(x.astype(np.float64), y, *params, np.float32(0.1))
    assert "_check_argument" in _calls(Path(mod.__file__).read_text())


def test_generate_says_checks_are_off() -> None:
    x = sd.placeholder("x", (None, 3), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    source = sd.generate({"f": ([x, ids], [sd.sum(x[ids] * 2.0)])}, "g", check=False)
    assert HEADER in source and "_check_" not in source  # no index check either
    namespace: dict = {}
    exec(compile(source, "g.py", "exec"), namespace)  # noqa: S102 - our generated source
    xv = np.arange(6.0).reshape(2, 3)
    assert namespace["f"](xv, np.array([1, 1, 0])) == 2.0 * xv[[1, 1, 0]].sum()


def test_compile_train_step_passes_check_through(tmp_path: Path) -> None:
    x, y, loss, params = _model()
    step = optim.compile_train_step(loss, params, optim.Adam(lr=0.01), [x, y],
                                    cache_dir=tmp_path, check=False)
    assert HEADER in step.source and "_check_" not in step.source
    values = init.initialize(params, seed=1)
    expected = {k: v.copy() for k, v in values.items()}
    state = step.init_state()
    reference = NumpyAdam(0.01)
    rng = np.random.default_rng(2)
    for _ in range(3):
        xb, yb = rng.normal(size=(7, 6)), rng.integers(0, 3, size=7)
        ref_loss, grads = _numpy_loss_and_grads(xb, yb, expected)
        (got_loss,) = step([xb, yb], values, state, 0.01)
        reference.step(expected, grads, 0.01)
        np.testing.assert_allclose(got_loss, ref_loss, rtol=1e-12, atol=0)
        for k in expected:
            np.testing.assert_allclose(values[k], expected[k], rtol=1e-10, atol=1e-13)
