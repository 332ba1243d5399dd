"""Tests of what TensorFlow-1 programs need from symdl.tf (issue 14): placeholders of unknown
shape, feeds, sessions, scopes, flags, summaries, optimizers, Saver and the added ops, each
against hand-written numpy (gradients against central differences in float64)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import symdl.tf as tf
from symdl.errors import DTypeError, ShapeError
from symdl.tf.errors import FailedPreconditionError, InvalidArgumentError, UnimplementedError

RNG = np.random.default_rng(14)


@pytest.fixture(autouse=True)
def fresh_graph(monkeypatch: pytest.MonkeyPatch, symdl_cache: Path) -> None:
    monkeypatch.setenv("SYMDL_CACHE", str(symdl_cache))
    tf.reset_default_graph()


def grad_check(build, reference, *arrays: np.ndarray, eps: float = 1e-6) -> None:  # type: ignore[no-untyped-def]
    """tf.gradients of sum(build(*xs) * r) against central differences of the numpy
    ``reference``, in float64, in a random direction per input."""
    phs = [tf.placeholder(tf.float64, a.shape) for a in arrays]
    out = build(*phs)
    weights = RNG.normal(size=reference(*arrays).shape)
    grads = tf.gradients(tf.reduce_sum(out * weights), phs)
    got = tf.Session().run(grads, dict(zip(phs, arrays, strict=True)))
    for i, a in enumerate(arrays):
        direction = RNG.normal(size=a.shape)
        plus = [b + eps * direction if j == i else b for j, b in enumerate(arrays)]
        minus = [b - eps * direction if j == i else b for j, b in enumerate(arrays)]
        numeric = np.sum((reference(*plus) - reference(*minus)) * weights) / (2 * eps)
        np.testing.assert_allclose(np.sum(got[i] * direction), numeric, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- item 1


def test_shapeless_placeholder_takes_its_shape_from_the_feed() -> None:
    x = tf.placeholder(tf.float32)
    y = tf.placeholder(tf.float32)
    z = tf.nn.softmax(tf.matmul(x, y) * 2)
    sess = tf.Session()
    a, b = RNG.normal(size=(2, 3)), RNG.normal(size=(3, 4))
    logits = (a.astype(np.float32) @ b.astype(np.float32)) * 2
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(sess.run(z, {x: a, y: b}), e / e.sum(axis=1, keepdims=True),
                               rtol=1e-5)
    first = sess.source(z, {x: a, y: b})
    assert "(2, 3)" in first and "(3, 4)" in first
    # a new fed-shape signature gets its own module; the first is reused
    assert sess.run(z, {x: np.ones((5, 3)), y: b}).shape == (5, 4)
    assert sess.source(z, {x: a, y: b}) == first
    assert len(sess._plans) == 2


def test_partially_known_shape_checks_the_known_sizes() -> None:
    x = tf.placeholder(tf.float32, [None, None, 3], name="images")
    total = tf.reduce_sum(x, axis=[1, 2])
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(total, {x: np.ones((2, 4, 3))}), [12, 12])
        with pytest.raises(InvalidArgumentError, match="'images'.*axis 2 must be 3"):
            sess.run(total, {x: np.ones((2, 4, 5))})
        with pytest.raises(InvalidArgumentError, match="'images'.*rank 3"):
            sess.run(total, {x: np.ones((2, 4))})


def test_lowering_errors_name_the_fed_placeholders() -> None:
    x = tf.placeholder(tf.float32, name="x")
    w = tf.placeholder(tf.float32, name="w")
    y = tf.matmul(x, w)
    with tf.Session() as sess:
        with pytest.raises(ShapeError, match=r"'x': \(2, 3\).*'w': \(4, 5\)"):
            sess.run(y, {x: np.ones((2, 3)), w: np.ones((4, 5))})
        with pytest.raises(InvalidArgumentError, match="feed a value for placeholder 'w'"):
            sess.run(y, {x: np.ones((2, 3))})


def test_gradients_and_training_through_a_shapeless_learning_rate() -> None:
    x = tf.placeholder(tf.float64, [None, 2])
    w = tf.Variable(np.array([[1.0], [2.0]]))
    lr = tf.placeholder(tf.float64)
    loss = tf.reduce_mean(tf.square(tf.matmul(x, w)))
    step = tf.train.MomentumOptimizer(lr, 0.9).minimize(loss)
    x0 = np.array([[1.0, 0.5], [0.0, 2.0]])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {x: x0, lr: 0.1})
        sess.run(step, {x: x0, lr: 0.1})
        w_np, accum = np.array([[1.0], [2.0]]), np.zeros((2, 1))
        for _ in range(2):
            g = 2 * x0.T @ (x0 @ w_np) / 2
            accum = 0.9 * accum + g
            w_np = w_np - 0.1 * accum
        np.testing.assert_allclose(sess.run(w), w_np, rtol=1e-12)


# --------------------------------------------------------------------------- items 2, 3, 7


def test_feeds_are_checked_even_when_unused() -> None:
    x = tf.placeholder(tf.float32, [2, 3], name="unused")
    v = tf.Variable(1.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        with pytest.raises(InvalidArgumentError, match="'unused'.*axis 0 must be 2"):
            sess.run(v * 2, {x: np.ones((5, 7))})
        with pytest.raises(InvalidArgumentError, match="'unused'.*rank 2"):
            sess.run(v * 2, {x: np.ones(3)})


def test_assign_initializes_but_reading_still_needs_a_value() -> None:
    x = tf.Variable(tf.zeros([2, 3]), name="x")
    y = tf.Variable(tf.zeros([2]), name="y")
    sess = tf.Session()
    np.testing.assert_array_equal(sess.run(tf.assign(x, tf.ones([2, 3]))), np.ones((2, 3)))
    np.testing.assert_array_equal(sess.run(x), np.ones((2, 3)))
    with pytest.raises(FailedPreconditionError, match="uninitialized variable 'y'"):
        sess.run(tf.assign_add(y, [1.0, 1.0]))  # reads y


def test_feeding_a_variable_overrides_it_for_one_run() -> None:
    w = tf.Variable(np.array([1.0, 2.0]))
    doubled = w * 2
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(doubled, {w: [5.0, 6.0]}), [10.0, 12.0])
        np.testing.assert_array_equal(sess.run(doubled), [2.0, 4.0])
        # an update in the same run starts from the fed value and is kept
        sess.run(tf.assign_add(w, [1.0, 1.0]), {w: [10.0, 10.0]})
        np.testing.assert_array_equal(sess.run(w), [11.0, 11.0])
        with pytest.raises(InvalidArgumentError, match="shape"):
            sess.run(doubled, {w: [1.0, 2.0, 3.0]})


def test_rmsprop_and_adagrad_follow_tensorflows_update_rules() -> None:
    x0 = RNG.normal(size=(6, 3))
    t0 = RNG.normal(size=(6, 1))
    w0 = RNG.normal(size=(3, 1))

    def grad(w: np.ndarray) -> np.ndarray:
        return 2 * x0.T @ (x0 @ w - t0) / t0.size

    def run(optimizer: tf.train.Optimizer) -> np.ndarray:
        tf.reset_default_graph()
        w = tf.Variable(w0)
        loss = tf.reduce_mean(tf.square(tf.matmul(tf.constant(x0), w) - t0))
        step = optimizer.minimize(loss)
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(3):
                sess.run(step)
            return sess.run(w)

    w, ms, mom = w0.copy(), np.ones_like(w0), np.zeros_like(w0)
    for _ in range(3):
        g = grad(w)
        ms = 0.9 * ms + 0.1 * g * g
        mom = 0.5 * mom + 0.01 * g / np.sqrt(ms + 1e-10)
        w = w - mom
    np.testing.assert_allclose(run(tf.train.RMSPropOptimizer(0.01, momentum=0.5)), w,
                               rtol=1e-10)
    w, acc = w0.copy(), np.full_like(w0, 0.1)
    for _ in range(3):
        g = grad(w)
        acc = acc + g * g
        w = w - 0.1 * g / np.sqrt(acc)
    np.testing.assert_allclose(run(tf.train.AdagradOptimizer(0.1)), w, rtol=1e-10)


def test_saver_round_trip_and_refuses_pickles(tmp_path: Path) -> None:
    w = tf.Variable(np.arange(6.0).reshape(2, 3), name="layer1/weights")
    step = tf.train.get_or_create_global_step()
    saver = tf.train.Saver()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        prefix = saver.save(sess, str(tmp_path / "model"), global_step=7)
        assert prefix.endswith("model-7")
        sess.run(tf.assign(w, tf.zeros([2, 3], tf.float64)))
        saver.restore(sess, prefix)
        np.testing.assert_array_equal(sess.run(w), np.arange(6.0).reshape(2, 3))
        assert sess.run(step) == 0
        bad = tmp_path / "bad.npz"
        np.savez(bad, **{"layer1/weights": np.array([object()]), "global_step": 0})
        with pytest.raises(InvalidArgumentError, match="pickled"):
            saver.restore(sess, str(bad))


# --------------------------------------------------------------------------- items 4, 5, 8


def test_default_sessions_eval_and_run() -> None:
    v = tf.Variable(3.0)
    with tf.Session():
        tf.global_variables_initializer().run()
        assert (v * 2).eval() == 6.0
    sess = tf.InteractiveSession()
    tf.global_variables_initializer().run()
    tf.assign(v, 5.0).run()
    assert v.eval() == 5.0 and tf.get_default_session() is sess
    sess.close()
    assert tf.get_default_session() is None


def test_graph_as_default_and_reset() -> None:
    outer = tf.get_default_graph()
    with tf.Graph().as_default() as g:
        v = tf.Variable(1.0, name="inner")
        assert tf.get_default_graph() is g and g.is_variable(v)
        assert tf.Session().graph is g
    assert tf.get_default_graph() is outer and not outer.is_variable(v)


def test_scopes_name_variables_and_generated_code() -> None:
    with tf.name_scope("layer1"):
        w = tf.Variable(np.ones((3, 2), np.float32), name="weights")
    with tf.name_scope("layer1"):
        w2 = tf.Variable(np.ones((3, 2), np.float32), name="weights")
    assert (w.name, w2.name) == ("layer1/weights", "layer1_1/weights")
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.matmul(x, w)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert "layer1_weights" in sess.source(y)


def test_get_variable_reuse_and_initializers() -> None:
    with tf.variable_scope("dense"):
        w = tf.get_variable("w", [2, 3], initializer=tf.constant_initializer(0.5))
        b = tf.get_variable("b", [3], initializer=tf.zeros_initializer())
        g = tf.get_variable("g", [4, 5])  # glorot uniform
    with tf.variable_scope("dense", reuse=True):
        assert tf.get_variable("w", [2, 3]) is w
        with pytest.raises(ValueError, match="does not exist"):
            tf.get_variable("new", [1])
    with tf.variable_scope("dense"), pytest.raises(ValueError, match="already exists"):
        tf.get_variable("w", [2, 3])
    with tf.variable_scope("dense", reuse=tf.AUTO_REUSE):
        assert tf.get_variable("w") is w
        assert tf.get_variable("c", [1]).name == "dense/c"
    assert w.name == "dense/w"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(w), np.full((2, 3), 0.5, np.float32))
        np.testing.assert_array_equal(sess.run(b), np.zeros(3, np.float32))
        limit = np.sqrt(6 / 9)
        assert np.all(np.abs(sess.run(g)) <= limit)


def test_app_run_and_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    from symdl.tf import app

    monkeypatch.setattr(app, "flags", app._FlagsModule())
    flags = app.flags
    flags.DEFINE_integer("max_steps", 2000, "steps")
    flags.DEFINE_float("learning_rate", 0.01, "rate")
    flags.DEFINE_string("train_dir", "data", "dir")
    flags.DEFINE_boolean("fake_data", False, "fake")
    seen = []

    def main(argv: list[str]) -> int:
        seen.append((flags.FLAGS.max_steps, flags.FLAGS.learning_rate, flags.FLAGS.train_dir,
                     flags.FLAGS.fake_data, argv))
        return 0

    with pytest.raises(SystemExit) as done:
        app.run(main, ["prog", "--max_steps", "5", "--fake_data", "--other", "x"])
    assert done.value.code == 0
    assert seen == [(5, 0.01, "data", True, ["prog", "--other", "x"])]
    monkeypatch.setattr(sys, "argv", ["prog", "--learning_rate=0.5"])
    fresh = app._FlagsModule()
    fresh.DEFINE_float("learning_rate", 0.01, "rate")
    assert fresh.FLAGS.learning_rate == 0.5


def test_summaries_go_to_event_files_or_a_csv(tmp_path: Path) -> None:
    x = tf.placeholder(tf.float32, [None])
    tf.summary.scalar("mean", tf.reduce_mean(x))
    tf.summary.histogram("values", x)
    merged = tf.summary.merge_all()
    with tf.Session() as sess:
        summary = sess.run(merged, {x: np.array([1.0, 2.0, 6.0])})
    assert [(tag, kind) for tag, kind, _ in summary.values] == [("mean", "scalar"),
                                                              ("values", "histogram")]
    assert float(summary.values[0][2]) == 3.0
    try:
        import tensorboardX  # noqa: F401
    except ImportError:
        tf.summary.FileWriter._warned = False
        with pytest.warns(UserWarning, match="tensorboardX is not installed"):
            writer = tf.summary.FileWriter(tmp_path)
        writer.add_summary(summary, 3)
        writer.close()
        rows = (tmp_path / "summaries.csv").read_text().splitlines()
        assert rows[0].startswith("step,tag") and rows[1].startswith("3,mean,scalar,3.0")
        assert rows[2].startswith("3,values,histogram,3.0,1.0,6.0,3")
    else:
        writer = tf.summary.FileWriter(tmp_path)
        writer.add_summary(summary, 3)
        writer.close()
        assert list(tmp_path.glob("events.out.tfevents.*"))


# --------------------------------------------------------------------------- items 6, 9, 10


def test_added_ops_against_numpy() -> None:
    a = RNG.normal(size=(4, 3)).astype(np.float32)
    b = RNG.normal(size=(2, 3)).astype(np.float32)
    ids = np.array([2, 0, 1, 2])
    sess = tf.Session()
    np.testing.assert_array_equal(sess.run(tf.concat([a, b], 0)), np.concatenate([a, b]))
    np.testing.assert_array_equal(sess.run(tf.expand_dims(a, 1)), a[:, None])
    np.testing.assert_array_equal(sess.run(tf.squeeze(tf.expand_dims(a, 0), [0])), a)
    np.testing.assert_array_equal(sess.run(tf.one_hot(ids, 3)), np.eye(3, dtype=np.float32)[ids])
    np.testing.assert_array_equal(sess.run(tf.one_hot(ids, 3, on_value=5.0, off_value=-1.0)),
                                  np.where(np.eye(3)[ids] > 0, 5.0, -1.0).astype(np.float32))
    np.testing.assert_array_equal(sess.run(tf.clip_by_value(a, -0.5, 0.5)), np.clip(a, -0.5, 0.5))
    np.testing.assert_array_equal(sess.run(tf.zeros_like(a)), np.zeros_like(a))
    np.testing.assert_array_equal(sess.run(tf.ones_like(a)), np.ones_like(a))
    assert sess.run(tf.to_int64(tf.constant([1, 2]))).dtype == np.int64
    assert sess.run(tf.to_float(tf.constant([1, 2]))).dtype == np.float32
    np.testing.assert_array_equal(sess.run(tf.identity(a)), a)
    np.testing.assert_allclose(sess.run(tf.reduce_logsumexp(a, axis=1)),
                               np.log(np.exp(a).sum(axis=1)), rtol=1e-6)
    np.testing.assert_allclose(sess.run(tf.reduce_logsumexp(a)), np.log(np.exp(a).sum()),
                               rtol=1e-6)
    np.testing.assert_allclose(sess.run(tf.add_n([a, a, a])), 3 * a)
    bias = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(sess.run(tf.nn.bias_add(a, bias)), a + bias)
    mean, var = sess.run(tf.nn.moments(tf.constant(a), axes=[0]))
    np.testing.assert_allclose(mean, a.mean(0), rtol=1e-6)
    np.testing.assert_allclose(var, a.var(0), rtol=1e-5)
    scores = np.array([[0.1, 0.5, 0.5], [3.0, 1.0, 2.0]], np.float32)
    np.testing.assert_array_equal(sess.run(tf.nn.in_top_k(scores, [2, 2], 1)), [True, False])
    np.testing.assert_array_equal(sess.run(tf.nn.in_top_k(scores, [0, 2], 2)), [False, True])


def test_losses_against_numpy() -> None:
    logits = RNG.normal(size=(5, 4))
    ids = np.array([0, 3, 1, 1, 2])
    rows = np.eye(4)[ids]
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    sess = tf.Session()
    np.testing.assert_allclose(
        sess.run(tf.losses.sparse_softmax_cross_entropy(labels=ids, logits=logits)),
        -log_p[np.arange(5), ids].mean(), rtol=1e-12)
    np.testing.assert_allclose(
        sess.run(tf.losses.softmax_cross_entropy(rows, logits, weights=2.0)),
        2 * -(rows * log_p).sum(1).mean(), rtol=1e-12)
    np.testing.assert_allclose(sess.run(tf.losses.mean_squared_error(rows, logits)),
                               ((logits - rows) ** 2).mean(), rtol=1e-12)
    z = (RNG.uniform(size=(5, 4)) > 0.5).astype(np.float64)
    expected = np.log1p(np.exp(-logits)) + (1 - z) * logits
    np.testing.assert_allclose(
        sess.run(tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=logits)), expected,
        rtol=1e-12)
    big = np.array([1000.0, -1000.0])  # the stable form: no overflow, no warning
    np.testing.assert_allclose(
        sess.run(tf.nn.sigmoid_cross_entropy_with_logits(labels=[0.0, 1.0], logits=big)),
        [1000.0, 1000.0])


def test_gradients_of_added_ops_against_finite_differences() -> None:
    a = RNG.normal(size=(4, 3))
    b = RNG.normal(size=(3,))
    z = (RNG.uniform(size=(4, 3)) > 0.5).astype(np.float64)
    grad_check(lambda x, c: tf.nn.bias_add(x, c), lambda x, c: x + c, a, b)
    grad_check(lambda x: tf.nn.sigmoid_cross_entropy_with_logits(labels=z, logits=x),
               lambda x: np.maximum(x, 0) - x * z + np.log1p(np.exp(-np.abs(x))), a)
    grad_check(lambda x: tf.nn.moments(x, [0])[1], lambda x: x.var(0), a)
    grad_check(lambda x: tf.reduce_logsumexp(x, axis=1),
               lambda x: np.log(np.exp(x).sum(1)), a)
    grad_check(lambda x: tf.clip_by_value(x, -0.5, 0.5), lambda x: np.clip(x, -0.5, 0.5),
               np.where(np.abs(a - 0.5) < 0.05, 0.2, a))


def test_bool_reductions_say_cast_in_tensorflows_words() -> None:
    correct = tf.equal(tf.constant([1, 2]), tf.constant([1, 3]))
    with pytest.raises(DTypeError, match=r"reduce_mean.*tf.cast\(x, tf.float32\)"):
        tf.reduce_mean(correct)
    with pytest.raises(DTypeError, match="reduce_sum"):
        tf.reduce_sum(correct)


def test_missing_core_ops_raise_typed_errors() -> None:
    x = tf.placeholder(tf.float32, [None, 28, 28, 1])
    for op in (tf.nn.conv2d, tf.nn.max_pool, tf.nn.avg_pool, tf.nn.dropout):
        with pytest.raises(UnimplementedError, match="ops issue"):
            op(x)
    for op in (tf.stack, tf.split, tf.pad, tf.stop_gradient):
        with pytest.raises(UnimplementedError, match="ops issue"):
            op(x, 1)


def test_tinyflow_linear_and_infer_variable_shapes() -> None:
    x = tf.placeholder(tf.float32)
    label = tf.placeholder(tf.float32)
    fc = tf.nn.linear(x, num_hidden=3, name="fc1")
    loss = tf.nn.mean_sparse_softmax_cross_entropy_with_logits(fc, label)
    shapes = tf.infer_variable_shapes(loss, feed_dict={x: [4, 5], label: [4]})
    assert [(name, shape) for _, name, shape in shapes] == [("fc1_weight", (3, 5)),
                                                           ("fc1_bias", (3,))]
    w0 = RNG.normal(size=(3, 5)).astype(np.float32)
    sess = tf.Session()
    sess.run([tf.assign(shapes[0][0], w0), tf.assign(shapes[1][0], tf.zeros([3]))])
    x0 = RNG.normal(size=(4, 5)).astype(np.float32)
    ids = np.array([0, 2, 1, 1])
    logits = x0 @ w0.T
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    np.testing.assert_allclose(sess.run(loss, {x: x0, label: ids.astype(np.float32)}),
                               -log_p[np.arange(4), ids].mean(), rtol=1e-5)
    flat = tf.nn.flatten_layer(tf.placeholder(tf.float32, [None, 2, 3]))
    assert flat.shape == ("N", 6)


def test_old_positional_softmax_cross_entropy_and_feeding_a_fetched_placeholder() -> None:
    logits = RNG.normal(size=(3, 4))
    rows = np.eye(4)[[0, 3, 1]]
    sess = tf.Session()
    new = sess.run(tf.nn.softmax_cross_entropy_with_logits(labels=rows, logits=logits))
    old = sess.run(tf.nn.softmax_cross_entropy_with_logits(logits, rows))  # TF 0.12's order
    np.testing.assert_array_equal(old, new)
    x = tf.placeholder(tf.float64)
    np.testing.assert_array_equal(sess.run([x, x * 2], {x: [1.0, 2.0]})[0], [1.0, 2.0])


def test_embedding_lookup_against_numpy_indexing() -> None:
    table = RNG.normal(size=(5, 3))
    ids = np.array([[4, 0], [1, 1], [3, 4]])
    got = tf.Session().run(tf.nn.embedding_lookup(tf.constant(table), tf.constant(ids)))
    np.testing.assert_array_equal(got, table[ids])
    grad_check(lambda t: tf.nn.embedding_lookup(t, tf.constant(ids)), lambda t: t[ids], table)
