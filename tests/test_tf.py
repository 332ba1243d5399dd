"""Tests of symdl.tf: each function against hand-written numpy, gradients against finite
differences, feed and fetch structures, state across runs, the errors, and Session.source."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest

import symdl.tf as tf
from symdl.errors import GradientError, ShapeError, SymdlError
from symdl.tf.errors import FailedPreconditionError, InvalidArgumentError

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def fresh_graph(monkeypatch: pytest.MonkeyPatch, symdl_cache: Path) -> None:
    """Each test starts from an empty default graph and compiles into the test cache."""
    monkeypatch.setenv("SYMDL_CACHE", str(symdl_cache))
    tf.reset_default_graph()


def data(*shape: int, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return RNG.uniform(lo, hi, shape).astype(np.float32)


def evaluate(build, *arrays: np.ndarray):  # type: ignore[no-untyped-def]
    """Run ``build(*placeholders)`` fed with ``arrays``."""
    phs = [tf.placeholder(tf.as_dtype(a.dtype), a.shape) for a in arrays]
    with tf.Session() as sess:
        return sess.run(build(*phs), feed_dict=dict(zip(phs, arrays, strict=True)))


# --------------------------------------------------------------------------- dtypes and leaves


def test_dtypes_are_numpy_names_with_tensorflow_reprs() -> None:
    assert tf.float32 == "float32" and np.dtype(tf.float32) == np.float32
    assert repr(tf.int64) == "tf.int64" and tf.float64.is_floating and tf.int32.is_integer
    assert tf.as_dtype(np.float64) is not None and tf.as_dtype(np.float64) == tf.float64
    with pytest.raises(TypeError, match="unsupported dtype"):
        tf.as_dtype("complex64")


def test_names_are_unique_per_graph_like_tensorflow() -> None:
    a, b = tf.placeholder(tf.float32, [None, 3]), tf.placeholder(tf.float32, [None, 3])
    v, w = tf.Variable(tf.zeros([2])), tf.Variable(tf.zeros([2]), name="w")
    assert (a.name, b.name, v.name, w.name) == ("Placeholder", "Placeholder_1", "Variable", "w")
    assert a is not b and a.shape == ("N", 3)
    assert tf.placeholder(tf.float32).shape is None  # shape=None: taken from the feed (issue 14)
    tf.reset_default_graph()
    assert tf.placeholder(tf.float32, [4]).name == "Placeholder"
    assert tf.global_variables() == []


def test_variable_dtype_follows_tensorflow_defaults() -> None:
    assert tf.Variable(1.5).dtype == "float32"
    assert tf.Variable([1, 2]).dtype == "int32"
    assert tf.Variable(np.zeros(3)).dtype == "float64"
    assert tf.Variable(np.zeros(3), dtype=tf.float32).dtype == "float32"
    v = tf.Variable(tf.ones([2]), trainable=False)
    assert v not in tf.trainable_variables() and v in tf.global_variables()


# --------------------------------------------------------------------------- math


UNARY = [
    (tf.exp, np.exp, (-2, 2)),
    (tf.log, np.log, (0.1, 3)),
    (tf.sqrt, np.sqrt, (0.1, 3)),
    (tf.tanh, np.tanh, (-2, 2)),
    (tf.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-3, 3)),
    (tf.relu, lambda x: np.maximum(x, 0), (-2, 2)),
    (tf.nn.relu, lambda x: np.maximum(x, 0), (-2, 2)),
    (tf.nn.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-3, 3)),
    (tf.nn.tanh, np.tanh, (-2, 2)),
    (tf.square, np.square, (-2, 2)),
    (tf.abs, np.abs, (-2, 2)),
    (lambda x: -x, np.negative, (-2, 2)),
]


@pytest.mark.parametrize(("fn", "ref", "domain"), UNARY, ids=lambda p: getattr(p, "__name__", ""))
def test_unary(fn, ref, domain) -> None:  # type: ignore[no-untyped-def]
    x = data(3, 4, lo=domain[0], hi=domain[1])
    np.testing.assert_allclose(evaluate(fn, x), ref(x), rtol=1e-6, atol=1e-7)


BINARY = [
    (lambda a, b: a + b, np.add),
    (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply),
    (lambda a, b: a / b, np.divide),
    (lambda a, b: a ** b, np.power),
    (tf.maximum, np.maximum),
    (tf.minimum, np.minimum),
]


@pytest.mark.parametrize(("fn", "ref"), BINARY)
def test_binary_with_tensors_scalars_and_arrays_on_either_side(fn, ref) -> None:  # type: ignore
    a, b = data(3, 4, lo=0.5, hi=2), data(4, lo=0.5, hi=2)
    np.testing.assert_allclose(evaluate(fn, a, b), ref(a, b), rtol=1e-6)
    np.testing.assert_allclose(evaluate(lambda x: fn(x, b), a), ref(a, b), rtol=1e-6)
    np.testing.assert_allclose(evaluate(lambda y: fn(a, y), b), ref(a, b), rtol=1e-6)
    np.testing.assert_allclose(evaluate(lambda x: fn(x, 1.5), a), ref(a, np.float32(1.5)),
                               rtol=1e-6)
    np.testing.assert_allclose(evaluate(lambda x: fn(1.5, x), a), ref(np.float32(1.5), a),
                               rtol=1e-6)


def test_matmul_operator_and_transposes() -> None:
    a, b = data(3, 4), data(4, 2)
    np.testing.assert_allclose(evaluate(lambda x, y: x @ y, a, b), a @ b, rtol=1e-5)
    np.testing.assert_allclose(evaluate(lambda x: x @ b, a), a @ b, rtol=1e-5)
    np.testing.assert_allclose(evaluate(lambda y: a @ y, b), a @ b, rtol=1e-5)
    got = evaluate(lambda x, y: tf.matmul(x, y, transpose_a=True, transpose_b=True), a.T, b.T)
    np.testing.assert_allclose(got, a @ b, rtol=1e-5)


def test_where_equal_cast_argmax_reshape_transpose() -> None:
    a, b = data(3, 4), data(3, 4)
    np.testing.assert_array_equal(evaluate(lambda x, y: tf.where(x > y, x, y), a, b),
                                  np.where(a > b, a, b))
    with pytest.raises(ShapeError, match="pass both x and y"):
        tf.where(tf.placeholder(tf.bool, [3]))
    eq = evaluate(lambda x: tf.cast(tf.equal(tf.argmax(x, 1), 2), tf.float32), a)
    np.testing.assert_array_equal(eq, (np.argmax(a, 1) == 2).astype(np.float32))
    assert eq.dtype == np.float32
    np.testing.assert_array_equal(evaluate(lambda x: tf.argmax(x), a), np.argmax(a, 0))
    np.testing.assert_array_equal(evaluate(lambda x: tf.reshape(x, [2, -1]), a), a.reshape(2, 6))
    np.testing.assert_array_equal(evaluate(lambda x: tf.transpose(x), a), a.T)
    c = data(2, 3, 4)
    np.testing.assert_array_equal(evaluate(lambda x: tf.transpose(x, [1, 2, 0]), c),
                                  c.transpose(1, 2, 0))


@pytest.mark.parametrize(("fn", "ref"), [(tf.reduce_sum, np.sum), (tf.reduce_mean, np.mean),
                                         (tf.reduce_max, np.max), (tf.reduce_min, np.min)])
def test_reductions_take_axis_reduction_indices_and_both_keepdims(fn, ref) -> None:  # type: ignore
    a = data(3, 4, 5)
    np.testing.assert_allclose(evaluate(fn, a), ref(a), rtol=1e-5)
    np.testing.assert_allclose(evaluate(lambda x: fn(x, 1), a), ref(a, 1), rtol=1e-5)
    np.testing.assert_allclose(evaluate(lambda x: fn(x, reduction_indices=[1]), a), ref(a, 1),
                               rtol=1e-5)
    got = evaluate(lambda x: fn(x, axis=[0, 2], keepdims=True), a)
    np.testing.assert_allclose(got, ref(a, (0, 2), keepdims=True), rtol=1e-5)
    got = evaluate(lambda x: fn(x, reduction_indices=[2], keep_dims=True), a)
    np.testing.assert_allclose(got, ref(a, 2, keepdims=True), rtol=1e-5)
    with pytest.raises(ShapeError, match="not both"):
        fn(tf.placeholder(tf.float32, [3]), axis=0, reduction_indices=0)


def test_constants_and_initializers() -> None:
    assert tf.constant(1.5).dtype == "float32" and tf.constant(3).dtype == "int32"
    v = tf.Variable(tf.constant(2.0, shape=[2, 3]))
    r1 = tf.Variable(tf.random_normal([400, 50], mean=1.0, stddev=2.0, seed=3))
    r2 = tf.Variable(tf.random_normal([400, 50], mean=1.0, stddev=2.0, seed=3))
    u = tf.Variable(tf.random_uniform([1000], -1.0, 3.0, seed=1))
    t = tf.Variable(tf.truncated_normal([1000], stddev=0.5, seed=1))
    n = tf.Variable(tf.normal([2000], 0.1, seed=1))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        vv, a, b, uu, tt, nn = sess.run([v, r1, r2, u, t, n])
    np.testing.assert_array_equal(vv, np.full((2, 3), 2.0, np.float32))
    np.testing.assert_array_equal(a, b)  # same seed, same values
    # seed=3 draws numpy's numbers from default_rng(3), in float32 (fresh on every run)
    np.testing.assert_array_equal(
        a, 1.0 + 2.0 * np.random.default_rng(3).standard_normal((400, 50), dtype=np.float32))
    assert a.dtype == np.float32 and abs(a.mean() - 1.0) < 0.05 and abs(a.std() - 2.0) < 0.05
    assert uu.min() >= -1.0 and uu.max() < 3.0 and abs(uu.mean() - 1.0) < 0.1
    assert np.abs(tt).max() <= 1.0
    assert abs(nn.std() - 0.1) < 0.01


def test_graph_seed_makes_unseeded_initializers_reproducible() -> None:
    def draw() -> np.ndarray:
        tf.reset_default_graph()
        tf.set_random_seed(7)
        v = tf.Variable(tf.random_normal([5]))
        w = tf.Variable(tf.random_normal([5]))
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            return np.stack(sess.run([v, w]))

    first, second = draw(), draw()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[0], first[1])


def test_variable_initialized_from_another_variable() -> None:
    a = tf.Variable(np.arange(3, dtype=np.float32))
    b = tf.Variable(a * 2 + 1)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(b), [1, 3, 5])


# --------------------------------------------------------------------------- nn


def np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_nn_softmax_family_and_losses() -> None:
    z = data(5, 4)
    labels = np_softmax(data(5, 4))
    ids = RNG.integers(0, 4, 5)
    np.testing.assert_allclose(evaluate(tf.nn.softmax, z), np_softmax(z), rtol=1e-5)
    np.testing.assert_allclose(evaluate(tf.nn.log_softmax, z), np.log(np_softmax(z)), rtol=1e-5)
    np.testing.assert_allclose(evaluate(lambda x: tf.nn.softmax(x, dim=0), z),
                               np_softmax(z.T).T, rtol=1e-5)
    ce = evaluate(lambda x, y: tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=x),
                  z, labels)
    np.testing.assert_allclose(ce, -(labels * np.log(np_softmax(z))).sum(1), rtol=1e-5)
    sparse = evaluate(
        lambda x, y: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x), z, ids)
    np.testing.assert_allclose(sparse, -np.log(np_softmax(z))[np.arange(5), ids], rtol=1e-5)
    np.testing.assert_allclose(evaluate(tf.nn.l2_loss, z), (z ** 2).sum() / 2, rtol=1e-5)
    with pytest.raises(ShapeError, match="keywords"):
        tf.nn.softmax_cross_entropy_with_logits(tf.placeholder(tf.float32, [2, 3]))
    with pytest.raises(ShapeError, match="int32 or int64"):
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.placeholder(tf.float32, [2]), logits=tf.placeholder(tf.float32, [2, 3]))


# --------------------------------------------------------------------------- gradients


def fd_directional(f, x: np.ndarray, v: np.ndarray, eps: float = 1e-6) -> float:  # type: ignore
    return float((f(x + eps * v) - f(x - eps * v)) / (2 * eps))


def test_gradients_match_finite_differences_in_float64() -> None:
    x0 = RNG.uniform(-1, 1, (4, 3))
    w0 = RNG.uniform(-1, 1, (3, 2))
    x = tf.placeholder(tf.float64, [None, 3])
    w = tf.Variable(w0)
    loss = tf.reduce_mean(tf.tanh(tf.matmul(x, w)) ** 2 + tf.sigmoid(x @ w) * 3.0)
    gw, gx = tf.gradients(loss, [w, x])

    def ref(xv: np.ndarray, wv: np.ndarray) -> float:
        z = xv @ wv
        return float(np.mean(np.tanh(z) ** 2 + 3.0 / (1 + np.exp(-z))))

    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        gw_val, gx_val = sess.run([gw, gx], {x: x0})
    v = RNG.normal(size=w0.shape)
    assert np.isclose((gw_val * v).sum(), fd_directional(lambda w_: ref(x0, w_), w0, v),
                      rtol=1e-6)
    u = RNG.normal(size=x0.shape)
    assert np.isclose((gx_val * u).sum(), fd_directional(lambda x_: ref(x_, w0), x0, u),
                      rtol=1e-6)


def test_gradients_of_nonscalar_ys_grad_ys_and_unconnected() -> None:
    a0 = RNG.uniform(-1, 1, (3, 2))
    a = tf.placeholder(tf.float64, [3, 2])
    b = tf.placeholder(tf.float64, [2])
    y = tf.exp(a)
    (g_sum,) = tf.gradients(y, [a])  # the gradient of sum(y)
    weights = RNG.uniform(-1, 1, (3, 2))
    (g_weighted,) = tf.gradients(y, a, grad_ys=weights)
    g_two = tf.gradients([y, tf.square(a)], [a, b])
    assert g_two[1] is None  # b is not used: None, as in TensorFlow
    with tf.Session() as sess:
        s, w, t = sess.run([g_sum, g_weighted, g_two[0]], {a: a0})
    np.testing.assert_allclose(s, np.exp(a0), rtol=1e-12)
    np.testing.assert_allclose(w, weights * np.exp(a0), rtol=1e-12)
    np.testing.assert_allclose(t, np.exp(a0) + 2 * a0, rtol=1e-12)
    with pytest.raises(GradientError, match="grad_ys"):
        tf.gradients([y, y], [a], grad_ys=[weights])


def test_grad_of_grad() -> None:
    x0 = RNG.uniform(0.5, 1.5, (4,))
    x = tf.placeholder(tf.float64, [4])
    w = tf.Variable(np.ones(4))
    (g,) = tf.gradients(tf.reduce_sum(x ** 3 * w), [x])  # 3 x^2 w
    (h,) = tf.gradients(g, [x])  # sum over outputs: 6 x w
    (hw,) = tf.gradients(g, [w])  # 3 x^2
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        gv, hv, hwv = sess.run((g, h, hw), {x: x0})
    np.testing.assert_allclose(gv, 3 * x0 ** 2, rtol=1e-12)
    np.testing.assert_allclose(hv, 6 * x0, rtol=1e-12)
    np.testing.assert_allclose(hwv, 3 * x0 ** 2, rtol=1e-12)


# --------------------------------------------------------------------------- assignments, state


def test_assign_returns_new_value_and_state_persists() -> None:
    v = tf.Variable(np.array([1.0, 2.0], np.float32))
    inc = tf.assign_add(v, [1.0, 1.0])
    with tf.Session() as sess:
        sess.run(tf.initialize_all_variables())
        np.testing.assert_array_equal(sess.run(inc), [2, 3])
        np.testing.assert_array_equal(sess.run(inc), [3, 4])
        np.testing.assert_array_equal(sess.run(tf.assign_sub(v, 0.5)), [2.5, 3.5])
        np.testing.assert_array_equal(sess.run(tf.assign(v, [0.0, 9.0])), [0, 9])
        np.testing.assert_array_equal(sess.run(v), [0, 9])
        sess.run(tf.global_variables_initializer())  # re-initializing resets
        np.testing.assert_array_equal(sess.run(v), [1, 2])
    with tf.Session() as other:  # each session has its own state
        with pytest.raises(FailedPreconditionError, match="'Variable'"):
            other.run(v)


def test_values_of_one_run_see_the_variables_before_its_updates() -> None:
    w = tf.Variable(np.arange(4, dtype=np.float32).reshape(2, 2))
    step = tf.assign(w, w * 10)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        old, old_t, old_sum, new = sess.run([w, tf.transpose(w), tf.reduce_sum(w), step])
        np.testing.assert_array_equal(old, [[0, 1], [2, 3]])
        np.testing.assert_array_equal(old_t, [[0, 2], [1, 3]])
        assert old_sum == 6
        np.testing.assert_array_equal(new, [[0, 10], [20, 30]])
        fetched = sess.run(w)
        sess.run(step)
        np.testing.assert_array_equal(fetched, [[0, 10], [20, 30]])  # a copy, not the state


def test_group_runs_all_updates_and_returns_none() -> None:
    a, b = tf.Variable(1.0), tf.Variable(2.0)
    swap = tf.group(tf.assign(a, b), tf.assign(b, a))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(swap) is None
        assert sess.run([a, b]) == [2.0, 1.0]
        assert sess.run(tf.no_op()) is None
    with pytest.raises(ShapeError, match="assigned twice"):
        tf.group(tf.assign(a, 1.0), tf.assign(a, 2.0))
    with pytest.raises(ShapeError, match="tf.Variable"):
        tf.assign(tf.placeholder(tf.float32), 1.0)


# --------------------------------------------------------------------------- fetch structures


def test_fetch_structures_come_back_in_shape() -> None:
    x = tf.placeholder(tf.float32, [None, 2])
    s, m = tf.reduce_sum(x), tf.reduce_mean(x)
    v = tf.Variable(tf.zeros([2]))
    pair = collections.namedtuple("pair", "total mean")
    x0 = np.array([[1, 2], [3, 4]], np.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        out = sess.run({"s": s, "nested": [m, (s, tf.assign_add(v, [1.0, 1.0]))],
                        "p": pair(s, m), "init": tf.no_op()}, feed_dict={x: x0})
        assert out["s"] == 10 and out["nested"][0] == 2.5 and out["init"] is None
        assert isinstance(out["nested"][1], tuple) and out["nested"][1][0] == 10
        np.testing.assert_array_equal(out["nested"][1][1], [1, 1])
        assert isinstance(out["p"], pair) and out["p"].mean == 2.5
        assert sess.run([s, s], {x: x0}) == [10, 10]
        assert isinstance(sess.run(s, {x: x0}), np.floating)
        with pytest.raises(InvalidArgumentError, match="cannot fetch"):
            sess.run([s, 3], {x: x0})


# --------------------------------------------------------------------------- errors


def test_feed_errors_name_the_placeholder() -> None:
    x = tf.placeholder(tf.float32, [None, 3], name="images")
    labels = tf.placeholder(tf.int32, [None], name="labels")
    loss = tf.reduce_sum(x) + tf.cast(tf.reduce_sum(labels), tf.float32)
    ok_x, ok_y = np.ones((2, 3), np.float32), np.array([1, 2], np.int64)
    with tf.Session() as sess:
        assert sess.run(loss, {x: ok_x, labels: ok_y}) == 9  # int64 ids that fit: accepted
        assert sess.run(loss, {x: ok_x.astype(np.float64).tolist(), labels: [0, 0]}) == 6
        with pytest.raises(InvalidArgumentError, match="feed a value for placeholder 'labels'"):
            sess.run(loss, {x: ok_x})
        with pytest.raises(InvalidArgumentError, match="'images'.*axis 1 must be 3"):
            sess.run(loss, {x: np.ones((2, 4), np.float32), labels: ok_y})
        with pytest.raises(InvalidArgumentError, match="'images'.*rank 2"):
            sess.run(loss, {x: np.ones(3, np.float32), labels: ok_y})
        with pytest.raises(InvalidArgumentError, match="float64 values to placeholder 'labels'"):
            sess.run(loss, {x: ok_x, labels: np.array([1.0, 2.0])})
        with pytest.raises(InvalidArgumentError, match="do not fit"):
            sess.run(loss, {x: ok_x, labels: np.array([2 ** 40, 0])})
        with pytest.raises(InvalidArgumentError, match="'labels'.*N.*'images'"):
            sess.run(loss, {x: ok_x, labels: np.array([1, 2, 3])})
        with pytest.raises(InvalidArgumentError, match="keys must be placeholders"):
            sess.run(loss, {x: ok_x, labels: ok_y, loss: 1.0})
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(FailedPreconditionError, SymdlError)


def test_uninitialized_variable_and_closed_session() -> None:
    w = tf.Variable(tf.zeros([2]), name="weights")
    sess = tf.Session()
    with pytest.raises(FailedPreconditionError, match="uninitialized variable 'weights'"):
        sess.run(w * 2)
    sess.close()
    with pytest.raises(FailedPreconditionError, match="closed"):
        sess.run(w)
    tf.reset_default_graph()
    with tf.Session() as fresh, pytest.raises(InvalidArgumentError, match="not a variable"):
        fresh.run(w * 2)


# --------------------------------------------------------------------------- generated code


def test_source_is_the_code_run_and_modules_are_reused() -> None:
    x = tf.placeholder(tf.float32, [None, 3])
    w = tf.Variable(np.full((3, 2), 0.5, np.float32))
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
    step = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    x0 = data(4, 3)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        code = sess.source([step, loss])
        plan = sess._plans[(step, loss)]
        assert Path(plan.module.__file__).read_text() == code
        assert "def run(" in code and "import numpy as np" in code
        # Executing the text on copies of the state does exactly what sess.run does.
        namespace: dict[str, object] = {}
        exec(compile(code, "<source>", "exec"), namespace)  # noqa: S102 - our generated code
        w_copy = sess.run(w)
        (expected_loss,) = namespace["run"](x0, w_copy)
        _, got_loss = sess.run([step, loss], {x: x0})
        assert got_loss == expected_loss
        np.testing.assert_array_equal(sess.run(w), w_copy)
        assert sess._plans[(step, loss)] is plan  # reused, not regenerated
        assert sess.source(tf.global_variables_initializer()) == ""
