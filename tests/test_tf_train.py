"""Tests of symdl.tf.train (optimizers against numpy references of TensorFlow's update rules),
the codegen fix for values aliasing updated parameters, and the course programs on full MNIST."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
import symdl.tf as tf
from symdl.datasets import SUBSET_DIR
from symdl.errors import GradientError

ROOT = Path(__file__).resolve().parents[1]
FULL_MNIST = ROOT.parent / "shared" / "data" / "mnist"
needs_full = pytest.mark.skipif(
    not (FULL_MNIST / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"full MNIST not found at {FULL_MNIST}",
)


@pytest.fixture(autouse=True)
def fresh_graph(monkeypatch: pytest.MonkeyPatch, symdl_cache: Path) -> None:
    """Each test starts from an empty default graph and compiles into the test cache."""
    monkeypatch.setenv("SYMDL_CACHE", str(symdl_cache))
    tf.reset_default_graph()


# A least-squares problem whose gradient is written by hand: d/dw mean((x w - t)^2).
RNG = np.random.default_rng(1)
X = RNG.normal(size=(8, 3))
T = RNG.normal(size=(8, 2))
W0 = RNG.normal(size=(3, 2))


def np_grad(w: np.ndarray) -> np.ndarray:
    return 2 * X.T @ (X @ w - T) / T.size


def tf_problem() -> tuple:  # type: ignore[type-arg]
    x = tf.placeholder(tf.float64, [None, 3])
    t = tf.placeholder(tf.float64, [None, 2])
    w = tf.Variable(W0)
    unused = tf.Variable(np.zeros(2))
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w) - t))
    return x, t, w, unused, loss


def run_steps(optimizer: tf.train.Optimizer, steps: int) -> np.ndarray:
    x, t, w, unused, loss = tf_problem()
    step = optimizer.minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(steps):
            sess.run(step, {x: X, t: T})
        np.testing.assert_array_equal(sess.run(unused), np.zeros(2))  # not in the loss: untouched
        return sess.run(w)


def test_gradient_descent() -> None:
    w = W0.copy()
    for _ in range(3):
        w = w - 0.1 * np_grad(w)
    np.testing.assert_allclose(run_steps(tf.train.GradientDescentOptimizer(0.1), 3), w,
                               rtol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum(nesterov: bool) -> None:
    w, accum = W0.copy(), np.zeros_like(W0)
    for _ in range(4):
        g = np_grad(w)
        accum = 0.9 * accum + g
        w = w - 0.05 * (g + 0.9 * accum if nesterov else accum)
    got = run_steps(tf.train.MomentumOptimizer(0.05, 0.9, use_nesterov=nesterov), 4)
    np.testing.assert_allclose(got, w, rtol=1e-12)


def test_adam_follows_tensorflows_formula() -> None:
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    lr, b1, b2, eps = 0.01, 0.8, 0.95, 1e-7
    for t in range(1, 6):
        g = np_grad(w)
        lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr_t * m / (np.sqrt(v) + eps)
    got = run_steps(tf.train.AdamOptimizer(lr, b1, b2, eps), 5)
    np.testing.assert_allclose(got, w, rtol=1e-10)


def test_learning_rate_placeholder_global_step_and_var_list() -> None:
    x, t, w, unused, loss = tf_problem()
    lr = tf.placeholder(tf.float64)
    step_count = tf.Variable(0, trainable=False)
    step = tf.train.GradientDescentOptimizer(lr).minimize(loss, global_step=step_count,
                                                          var_list=[w])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {x: X, t: T, lr: 0.5})
        sess.run(step, {x: X, t: T, lr: 0.0})
        np.testing.assert_allclose(sess.run(w), W0 - 0.5 * np_grad(W0), rtol=1e-12)
        assert sess.run(step_count) == 2
    with pytest.raises(GradientError, match="depends on none"):
        tf.train.GradientDescentOptimizer(0.1).minimize(loss, var_list=[unused])


def test_training_state_lives_in_the_session() -> None:
    x, t, w, _, loss = tf_problem()
    step = tf.train.AdamOptimizer(0.1).minimize(loss)
    init = tf.global_variables_initializer()
    with tf.Session() as a, tf.Session() as b:
        a.run(init)
        b.run(init)
        for _ in range(3):
            a.run(step, {x: X, t: T})
        b.run(step, {x: X, t: T})
        assert a.run(loss, {x: X, t: T}) < b.run(loss, {x: X, t: T})
        assert not np.array_equal(a.run(w), b.run(w))


# --------------------------------------------------------------------------- codegen regression


def test_codegen_snapshots_values_aliasing_updated_parameters(symdl_cache: Path) -> None:
    """Regression: outputs that are (views of) updated parameters, and swaps, saw new values."""
    a, b = sd.parameter("a", (2, 2)), sd.parameter("b", (2, 2))
    mod = sd.compile({"run": ([a, b], [a, a.T, b.reshape((4,))], {a: b, b: a})}, "alias_swap",
                     cache_dir=symdl_cache)
    a0 = np.arange(4, dtype=np.float32).reshape(2, 2)
    b0 = -a0 - 1
    av, bv = a0.copy(), b0.copy()
    old_a, old_a_t, old_b = mod.run(av, bv)
    np.testing.assert_array_equal(av, b0)
    np.testing.assert_array_equal(bv, a0)
    np.testing.assert_array_equal(old_a, a0)
    np.testing.assert_array_equal(old_a_t, a0.T)
    np.testing.assert_array_equal(old_b, b0.reshape(4))


# --------------------------------------------------------------------------- the course programs


def load_example(name: str):  # type: ignore[no-untyped-def]
    path = ROOT / "examples" / "course" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"course_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_course_programs_agree_on_a_few_steps() -> None:
    """Fast version of the slow check: the shipped subset, 30 steps, same weights."""
    args = ["--data", str(SUBSET_DIR), "--steps", "30"]
    numpy_version = load_example("numpy_softmax").main(args)
    graph_version = load_example("tinyflow_softmax").main(args)
    np.testing.assert_allclose(graph_version["W"], numpy_version["W"], rtol=1e-4, atol=1e-6)
    assert "def run(" in graph_version["code"]


@pytest.mark.slow
@needs_full
def test_course_softmax_programs_on_full_mnist() -> None:
    args = ["--data", str(FULL_MNIST), "--steps", "1000"]
    numpy_version = load_example("numpy_softmax").main(args)
    graph_version = load_example("tinyflow_softmax").main(args)
    assert numpy_version["accuracy"] >= 0.91
    assert graph_version["accuracy"] >= 0.91
    np.testing.assert_allclose(graph_version["W"], numpy_version["W"], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@needs_full
def test_course_mlp_with_adam_on_full_mnist() -> None:
    result = load_example("tinyflow_mlp").main(["--data", str(FULL_MNIST)])
    assert result["accuracy"] >= 0.97
