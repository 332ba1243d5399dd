"""Optimizers: the generated update against hand-written numpy updates (float64, several steps)."""

from __future__ import annotations

import ast

import numpy as np
import pytest

import symdl as sd
from symdl import init, layers, optim
from symdl.errors import InvalidNameError, ShapeError

STEPS = 5


def _model(dtype: str = "float64"):
    """A small softmax regression with a hidden tanh layer: two weight shapes, two biases."""
    x = sd.placeholder("x", (None, 6), dtype=dtype)
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = layers.mlp(x, [5, 3], activation=sd.tanh, name="opt")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    return x, y, loss, params


def _numpy_loss_and_grads(xb, yb, P):
    """Forward and backward of `_model` written by hand."""
    W0, b0, W1, b1 = P["opt0_W"], P["opt0_b"], P["opt1_W"], P["opt1_b"]
    a = xb @ W0 + b0
    h = np.tanh(a)
    z = h @ W1 + b1
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(yb)
    loss = -np.log(p[np.arange(n), yb]).mean()
    dz = p.copy()
    dz[np.arange(n), yb] -= 1
    dz /= n
    dh = dz @ W1.T
    da = dh * (1 - h**2)
    return loss, {"opt0_W": xb.T @ da, "opt0_b": da.sum(0), "opt1_W": h.T @ dz, "opt1_b": dz.sum(0)}


class NumpySGD:
    """torch.optim.SGD (dampening 0), written out."""

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr, self.mu, self.nesterov, self.wd = lr, momentum, nesterov, weight_decay
        self.buf = {}

    def step(self, P, G, lr):
        for k in P:
            g = G[k] + self.wd * P[k]
            if self.mu:
                self.buf[k] = self.mu * self.buf.get(k, 0.0) + g
                g = g + self.mu * self.buf[k] if self.nesterov else self.buf[k]
            P[k] = P[k] - lr * g


class NumpyAdam:
    """torch.optim.Adam / AdamW, written out in the textbook form (eps outside the sqrt)."""

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        self.b1, self.b2 = betas
        self.eps, self.wd, self.decoupled = eps, weight_decay, decoupled
        self.m, self.v, self.t = {}, {}, 0

    def step(self, P, G, lr):
        self.t += 1
        for k in P:
            g = G[k]
            if self.decoupled:
                P[k] = P[k] * (1 - lr * self.wd)
            else:
                g = g + self.wd * P[k]
            self.m[k] = self.b1 * self.m.get(k, 0.0) + (1 - self.b1) * g
            self.v[k] = self.b2 * self.v.get(k, 0.0) + (1 - self.b2) * g * g
            m_hat = self.m[k] / (1 - self.b1**self.t)
            v_hat = self.v[k] / (1 - self.b2**self.t)
            P[k] = P[k] - lr * m_hat / (np.sqrt(v_hat) + self.eps)


CASES = [
    ("sgd", optim.SGD(lr=0.1), NumpySGD(0.1)),
    ("sgd_wd", optim.SGD(lr=0.1, weight_decay=0.01), NumpySGD(0.1, weight_decay=0.01)),
    ("momentum", optim.SGD(lr=0.1, momentum=0.9), NumpySGD(0.1, momentum=0.9)),
    ("nesterov_wd", optim.SGD(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3),
     NumpySGD(0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    ("adam", optim.Adam(lr=0.01), NumpyAdam(0.01)),
    ("adam_l2", optim.Adam(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     NumpyAdam(0.01, (0.8, 0.99), 1e-6, weight_decay=0.1)),
    ("adamw", optim.AdamW(lr=0.01, weight_decay=0.1),
     NumpyAdam(0.01, weight_decay=0.1, decoupled=True)),
]


@pytest.mark.parametrize("label, opt, reference", CASES, ids=[c[0] for c in CASES])
def test_generated_update_matches_numpy(tmp_path, label, opt, reference):
    x, y, loss, params = _model()
    step = optim.compile_train_step(loss, params, opt, [x, y], name=f"opt_{label}",
                                    cache_dir=tmp_path)
    values = init.initialize(params, seed=1)
    expected = {k: v.copy() for k, v in values.items()}
    state = step.init_state()
    rng = np.random.default_rng(2)
    for i in range(STEPS):
        xb = rng.normal(size=(7, 6))
        yb = rng.integers(0, 3, size=7)
        lr = opt.lr * (1.0 - 0.1 * i)  # a schedule: lr is an input, not a constant
        ref_loss, grads = _numpy_loss_and_grads(xb, yb, expected)
        (got_loss,) = step([xb, yb], values, state, lr)
        reference.step(expected, grads, lr)
        np.testing.assert_allclose(got_loss, ref_loss, rtol=1e-12, atol=0)
        for k in expected:
            np.testing.assert_allclose(values[k], expected[k], rtol=1e-10, atol=1e-13,
                                       err_msg=f"{label}: {k} after step {i + 1}")
    if isinstance(opt, optim.Adam):
        assert state["step"] == STEPS
        np.testing.assert_allclose(state["opt0_W_m"], reference.m["opt0_W"], rtol=1e-10)
        np.testing.assert_allclose(state["opt0_W_v"], reference.v["opt0_W"], rtol=1e-10)


def test_update_rule_is_visible_and_float32_by_default(tmp_path):
    x, y, loss, params = _model("float32")
    step = optim.compile_train_step(loss, params, optim.Adam(), [x, y], cache_dir=tmp_path)
    source = step.source
    func = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))
    args = [a.arg for a in func.args.args]
    assert args[:7] == ["x", "y", "opt0_W", "opt0_b", "opt1_W", "opt1_b", "opt0_W_m"]
    # The rule is printed, not called: the moments' square root and the folded step size.
    assert "np.sqrt(" in source and "step_size" in source and "eps_hat" in source
    doc = ast.get_docstring(func) or ""
    for name in ("opt0_W", "opt0_W_m", "opt0_W_v", "step"):
        assert any(line.strip().startswith(f"{name}: ") and "updated in place" in line
                   for line in doc.splitlines()), name
    assert not any(line.strip().startswith("x: ") and "updated" in line
                   for line in doc.splitlines())
    values = init.initialize(params, seed=0)
    assert values["opt0_W"].dtype == np.float32
    state = step.init_state()
    arrays = {**values, **state}
    before = {k: v.copy() for k, v in arrays.items()}
    xb = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    loss_value, = step([xb, np.array([0, 1, 2, 0])], values, state, 1e-3)
    assert loss_value.dtype == np.float32
    for k, v in arrays.items():  # the same array objects, updated in place
        assert (values | state)[k] is v and v.dtype == before[k].dtype
        assert not np.array_equal(v, before[k]), k


def test_evaluate_does_not_update(tmp_path):
    x, y, loss, params = _model()
    step = optim.compile_train_step(loss, params, optim.SGD(0.1), [x, y], cache_dir=tmp_path)
    values = init.initialize(params, seed=0)
    before = {k: v.copy() for k, v in values.items()}
    xb, yb = np.ones((3, 6)), np.array([0, 1, 2])
    (loss_value,) = step.evaluate([xb, yb], values)
    assert all(np.array_equal(before[k], values[k]) for k in values)
    (train_loss,) = step([xb, yb], values, step.init_state(), 0.1)
    assert train_loss == loss_value
    assert not all(np.array_equal(before[k], values[k]) for k in values)


def test_state_name_clash_is_refused():
    x = sd.placeholder("x", (None, 2), dtype="float64")
    W = sd.parameter("W", (2, 1), dtype="float64")
    W_m = sd.parameter("W_m", (1,), dtype="float64")
    loss = sd.mean(sd.square(x @ W + W_m))
    with pytest.raises(InvalidNameError, match="W_m"):
        optim.train_step_spec(loss, [W, W_m], optim.Adam(), [x])


def test_non_scalar_loss_is_refused():
    x = sd.placeholder("x", (None, 2))
    W = sd.parameter("W", (2, 1))
    with pytest.raises(ShapeError, match="scalar"):
        optim.train_step_spec(x @ W, [W], optim.SGD(), [x])


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="unknown optimizer"):
        optim.make_optimizer("rmsprop")
    assert optim.make_optimizer("nesterov", 0.5).nesterov


def test_initializers_statistics_and_seeding():
    rng = np.random.default_rng(0)
    W = init.he_normal((2000, 300), rng)
    assert W.dtype == np.float32 and abs(W.std() - np.sqrt(2 / 2000)) < 1e-3
    U = init.glorot_uniform((400, 600), rng, "float64")
    limit = np.sqrt(6 / 1000)
    assert U.dtype == np.float64 and U.max() <= limit and U.min() >= -limit
    assert abs(U.std() - limit / np.sqrt(3)) < 1e-3
    assert abs(init.he_uniform((500, 500), rng).std() - np.sqrt(6 / 500) / np.sqrt(3)) < 1e-3
    assert abs(init.glorot_normal((500, 300), rng).std() - np.sqrt(2 / 800)) < 1e-3
    assert abs(init.normal(0.5, 1.0)((300, 300), rng).mean() - 1.0) < 1e-2
    assert not init.zeros((3,)).any()
    x = sd.placeholder("x", (None, 8))
    _, params = layers.mlp(x, [4, 2], activation=sd.relu, name="seeded")
    a, b = init.initialize(params, seed=3), init.initialize(params, seed=3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["seeded0_W"], init.initialize(params, seed=4)["seeded0_W"])
