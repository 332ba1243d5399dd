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
from symdl.tf.errors import FailedPreconditionError, InvalidArgumentError

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


# --------------------------------------------------------------------------- on issue 13's ops
# Convolution and pooling are checked against naive loops over output pixels, written here
# (not against sd.conv2d, which tf.nn.conv2d calls).


def naive_conv_nhwc(x: np.ndarray, w: np.ndarray, stride: int, pads: tuple[int, int, int, int],
                    ) -> np.ndarray:
    """Cross-correlation by loops: x (N, H, W, C), w (KH, KW, C, O), pads (top, bottom, left,
    right) of zeros."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw, _, o = w.shape
    oh = (xp.shape[1] - kh) // stride + 1
    ow = (xp.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out


def naive_pool_nhwc(x: np.ndarray, k: int, stride: int, pads: tuple[int, int, int, int],
                    kind: str) -> np.ndarray:
    """Max or average pooling by loops; padded pixels never win a max and are not counted in a
    mean (TensorFlow's rule)."""
    top, bottom, left, right = pads
    xp = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=np.nan)
    oh = (xp.shape[1] - k) // stride + 1
    ow = (xp.shape[2] - k) // stride + 1
    out = np.zeros((x.shape[0], oh, ow, x.shape[3]))
    for i in range(oh):
        for j in range(ow):
            window = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j, :] = (np.nanmax if kind == "max" else np.nanmean)(window, axis=(1, 2))
    return out


def test_conv2d_same_and_valid_against_a_naive_loop() -> None:
    x = RNG.normal(size=(2, 5, 6, 3))
    w = RNG.normal(size=(3, 3, 3, 4))
    sess = tf.Session()
    # SAME with stride 2 on 5x6: output 3x3, padding total (2, 1) split as TF does: (1, 1), (0, 1)
    same = tf.nn.conv2d(tf.constant(x), tf.constant(w), strides=[1, 2, 2, 1], padding="SAME")
    np.testing.assert_allclose(sess.run(same), naive_conv_nhwc(x, w, 2, (1, 1, 0, 1)), rtol=1e-10)
    valid = tf.nn.conv2d(tf.constant(x), tf.constant(w), [1, 1, 1, 1], "VALID")
    np.testing.assert_allclose(sess.run(valid), naive_conv_nhwc(x, w, 1, (0, 0, 0, 0)),
                               rtol=1e-10)
    # NCHW input keeps TensorFlow's HWIO filter
    nchw = tf.nn.conv2d(tf.constant(x.transpose(0, 3, 1, 2)), tf.constant(w), [1, 1, 2, 2],
                        "SAME", data_format="NCHW")
    np.testing.assert_allclose(sess.run(nchw),
                               naive_conv_nhwc(x, w, 2, (1, 1, 0, 1)).transpose(0, 3, 1, 2),
                               rtol=1e-10)
    grad_check(lambda a, b: tf.nn.conv2d(a, b, [1, 2, 2, 1], "SAME"),
               lambda a, b: naive_conv_nhwc(a, b, 2, (1, 1, 0, 1)), x, w)
    with pytest.raises(ShapeError, match=r"\[1, h, w, 1\]"):
        tf.nn.conv2d(tf.constant(x), tf.constant(w), [2, 1, 1, 1], "SAME")


def test_pooling_against_a_naive_loop() -> None:
    x = RNG.normal(size=(2, 5, 5, 3))
    sess = tf.Session()
    for kind, op in (("max", tf.nn.max_pool), ("avg", tf.nn.avg_pool)):
        same = op(tf.constant(x), ksize=[1, 3, 3, 1], strides=[1, 2, 2, 1], padding="SAME")
        np.testing.assert_allclose(sess.run(same), naive_pool_nhwc(x, 3, 2, (1, 1, 1, 1), kind),
                                   rtol=1e-12)
        valid = op(tf.constant(x), [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
        np.testing.assert_allclose(sess.run(valid), naive_pool_nhwc(x, 2, 2, (0, 0, 0, 0), kind),
                                   rtol=1e-12)
    grad_check(lambda a: tf.nn.avg_pool(a, [1, 3, 3, 1], [1, 2, 2, 1], "SAME"),
               lambda a: naive_pool_nhwc(a, 3, 2, (1, 1, 1, 1), "avg"), x)
    grad_check(lambda a: tf.nn.max_pool(a, [1, 2, 2, 1], [1, 2, 2, 1], "VALID"),
               lambda a: naive_pool_nhwc(a, 2, 2, (0, 0, 0, 0), "max"), x)


def test_dropout_is_fresh_per_run_identity_at_keep_1_and_seeded() -> None:
    def build() -> tuple[object, object, object]:
        tf.reset_default_graph()
        tf.set_random_seed(5)
        x = tf.placeholder(tf.float32, [None, 400])
        keep = tf.placeholder(tf.float32)
        return x, keep, tf.nn.dropout(x, keep)

    x, keep, y = build()
    ones = np.ones((50, 400), np.float32)
    sess = tf.Session()
    first = sess.run(y, {x: ones, keep: 0.5})
    second = sess.run(y, {x: ones, keep: 0.5})
    assert not np.array_equal(first, second)  # a new mask on every run
    assert set(np.unique(first)) == {0.0, 2.0}  # kept entries scaled by 1 / keep_prob
    assert abs((first == 0).mean() - 0.5) < 0.02
    data = RNG.normal(size=(50, 400)).astype(np.float32)
    np.testing.assert_array_equal(sess.run(y, {x: data, keep: 1.0}), data)
    # keep_prob is used as fed: kept entries are x / keep_prob in float32, as in TensorFlow
    seventy = sess.run(y, {x: ones, keep: 0.7})
    assert set(np.unique(seventy)) == {0.0, np.float32(1) / np.float32(0.7)}
    assert abs((seventy == 0).mean() - 0.3) < 0.02
    # the same graph seed repeats the masks in a new session
    x2, keep2, y2 = build()
    again = tf.Session()
    np.testing.assert_array_equal(again.run(y2, {x2: ones, keep2: 0.5}), first)
    # rate=, a number, and a mask drawn per channel (noise_shape)
    z = tf.nn.dropout(tf.constant(ones), rate=0.75, noise_shape=[50, 1])
    got = tf.Session().run(z)
    assert set(np.unique(got)) <= {0.0, 4.0} and (got == got[:, :1]).all()
    with pytest.raises(ValueError, match="keep_prob"):
        tf.nn.dropout(tf.constant(ones), 0.0)


def test_random_ops_are_fresh_per_run_and_once_as_initial_values() -> None:
    u = tf.random_uniform([1000], -1.0, 3.0)
    n = tf.random_normal([2000], mean=1.0, stddev=2.0, dtype=tf.float64)
    v = tf.Variable(tf.random_normal([5, 5]))
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    a, b = sess.run(u), sess.run(u)
    assert not np.array_equal(a, b) and a.dtype == np.float32
    assert a.min() >= -1.0 and a.max() < 3.0 and abs(a.mean() - 1.0) < 0.15
    m = sess.run(n)
    assert m.dtype == np.float64 and abs(m.mean() - 1.0) < 0.15 and abs(m.std() - 2.0) < 0.15
    np.testing.assert_array_equal(sess.run(v), sess.run(v))  # drawn by the initializer only
    # an op seed repeats across sessions, and equals numpy's draws from that seed
    seeded = tf.random_normal([4, 3], mean=1.0, stddev=2.0, seed=9)
    expected = 1.0 + 2.0 * np.random.default_rng(9).standard_normal((4, 3), dtype=np.float32)
    np.testing.assert_array_equal(tf.Session().run(seeded), expected)
    np.testing.assert_array_equal(tf.Session().run(seeded), expected)


def test_truncated_normal_distribution() -> None:
    t = tf.truncated_normal([200_000], mean=1.0, stddev=0.5, seed=3)
    sess = tf.Session()
    a, b = sess.run(t), sess.run(t)
    assert not np.array_equal(a, b) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 2.0  # within two standard deviations of the mean
    # The standard normal truncated to [-2, 2]: mean 0, variance 1 - 2 * 2 phi(2) / Z.
    phi2 = np.exp(-2.0) / np.sqrt(2 * np.pi)
    z = 1 - 2 * 0.5 * math_erfc(2 / np.sqrt(2))
    std = 0.5 * np.sqrt(1 - 4 * phi2 / z)
    assert abs(a.mean() - 1.0) < 0.01 and abs(a.std() - std) < 0.01
    # its quantiles against the truncated CDF: (Phi(z) - Phi(-2)) / Z at the sample quantiles
    q = np.quantile((a.astype(np.float64) - 1.0) / 0.5, [0.1, 0.25, 0.5, 0.75, 0.9])
    cdf = np.array([(0.5 * math_erfc(-v / np.sqrt(2)) - 0.5 * math_erfc(2 / np.sqrt(2))) / z
                    for v in q])
    np.testing.assert_allclose(cdf, [0.1, 0.25, 0.5, 0.75, 0.9], atol=0.01)


def math_erfc(v: float) -> float:
    import math

    return math.erfc(float(v))


def test_stack_split_pad_tile_gather_stop_gradient_against_numpy() -> None:
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(3, 4))
    sess = tf.Session()
    np.testing.assert_array_equal(sess.run(tf.stack([a, b], axis=1)), np.stack([a, b], 1))
    pieces = sess.run(tf.split(tf.constant(a), 2, axis=1))
    np.testing.assert_array_equal(pieces[1], a[:, 2:])
    sized = sess.run(tf.split(tf.constant(a), [1, -1, 2], 1))
    assert [p.shape for p in sized] == [(3, 1), (3, 1), (3, 2)]
    np.testing.assert_array_equal(np.concatenate(sized, 1), a)
    np.testing.assert_array_equal(sess.run(tf.pad(a, [[1, 0], [0, 2]], constant_values=3)),
                                  np.pad(a, ((1, 0), (0, 2)), constant_values=3))
    np.testing.assert_array_equal(sess.run(tf.tile(a, [2, 1])), np.tile(a, (2, 1)))
    ids = np.array([2, 0, 2])
    np.testing.assert_array_equal(sess.run(tf.gather(a, ids)), a[ids])
    np.testing.assert_array_equal(sess.run(tf.gather(a, ids, axis=1)), a[:, ids])
    # shapeless input: split into a deferred list
    x = tf.placeholder(tf.float64)
    parts = tf.split(x, 2, axis=0)
    np.testing.assert_array_equal(sess.run(parts[1], {x: a[:2]}), a[1:2])
    grad_check(lambda p, q: tf.stack([p, q * 2], axis=2), lambda p, q: np.stack([p, q * 2], 2),
               a, b)
    grad_check(lambda p: tf.pad(p, [[0, 1], [2, 0]]), lambda p: np.pad(p, ((0, 1), (2, 0))), a)
    grad_check(lambda p: tf.tile(p, [1, 3]) * tf.gather(p, ids, axis=1)[:, :1],
               lambda p: np.tile(p, (1, 3)) * p[:, ids][:, :1], a)
    # stop_gradient: the value passes, its gradient does not
    y = tf.placeholder(tf.float64, [3, 4])
    loss = tf.reduce_sum(y * tf.stop_gradient(y))
    np.testing.assert_allclose(sess.run(tf.gradients(loss, [y])[0], {y: a}), a)
    with pytest.raises(ShapeError, match="add up"):
        tf.split(tf.constant(a), [1, 1], 1)


def test_tinyflow_conv2d_pool_and_pad_are_nchw_with_torch_padding() -> None:
    import symdl.tf.tinyflow as tiny

    x = tiny.placeholder(tiny.float32)
    conv = tiny.nn.conv2d(x, num_filter=4, ksize=[1, 3, 3, 1], name="c1", no_bias=False)
    pool = tiny.nn.max_pool(conv, ksize=[1, 2, 2, 1], strides=[1, 2, 2, 1])
    shapes = tiny.infer_variable_shapes(pool, feed_dict={x: [2, 3, 6, 6]})
    assert [(n, s) for _, n, s in shapes] == [("c1_weight", (4, 3, 3, 3)), ("c1_bias", (4,))]
    w = RNG.normal(size=(4, 3, 3, 3)).astype(np.float32)
    bias = RNG.normal(size=4).astype(np.float32)
    sess = tiny.Session()
    sess.run([tiny.assign(shapes[0][0], w), tiny.assign(shapes[1][0], bias)])
    data = RNG.normal(size=(2, 3, 6, 6)).astype(np.float32)
    # OIHW filter, "SAME" = (k - 1) // 2 on each side, as Torch's SpatialConvolution
    ref = naive_conv_nhwc(data.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), 1, (1, 1, 1, 1))
    ref = ref + bias
    pooled = naive_pool_nhwc(ref, 2, 2, (0, 0, 0, 0), "max").transpose(0, 3, 1, 2)
    np.testing.assert_allclose(sess.run(pool, {x: data}), pooled, rtol=1e-4, atol=1e-5)
    # pad: |pad| zeros after the axis' entries, before them for a negative pad
    y = tiny.placeholder(tiny.float32)
    padded = sess.run([tiny.pad(y, dim=1, pad=2), tiny.pad(y, dim=1, pad=-1)],
                      {y: np.ones((2, 3), np.float32)})
    np.testing.assert_array_equal(padded[0], np.pad(np.ones((2, 3)), ((0, 0), (0, 2))))
    np.testing.assert_array_equal(padded[1], np.pad(np.ones((2, 3)), ((0, 0), (1, 0))))


def test_set_random_seed_after_a_seeded_op_keeps_its_generator() -> None:
    a = tf.random_normal([50], seed=1)
    tf.set_random_seed(1)  # restarts the graph's op-seed counter, not the ops' generators
    b = tf.random_normal([50])
    first, second = tf.Session().run([a, b])
    np.testing.assert_array_equal(
        first, np.random.default_rng(1).standard_normal(50, dtype=np.float32))
    np.testing.assert_array_equal(
        second, np.random.default_rng([1, 1]).standard_normal(50, dtype=np.float32))


def test_truncated_normal_is_the_inverse_cdf_of_its_uniform_draws() -> None:
    from scipy.special import ndtr, ndtri

    t = tf.truncated_normal([5000], stddev=1.0, dtype=tf.float64, seed=4)
    got = tf.Session().run(t)
    # the same uniform numbers, mapped by scipy's inverse normal CDF on [Phi(-2), Phi(2)]
    u = np.random.default_rng(4).random(5000)
    expected = ndtri(ndtr(-2.0) + (ndtr(2.0) - ndtr(-2.0)) * u)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
