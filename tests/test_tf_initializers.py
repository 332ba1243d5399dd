"""Random initializers of `tf.get_variable` draw when the initializer runs (issue 14).

TensorFlow builds a random op for each and runs it with ``tf.global_variables_initializer()``:
every run draws afresh, and seeds follow TensorFlow's rules, measured with TensorFlow 2.21.0's
``tf.compat.v1`` (graph mode): a graph seed set before `get_variable` makes a new session repeat
the values; one set after it does not reach the variable's op. Values are checked against the
distributions' moments (wide bounds: 10**4 or more samples).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import symdl.tf as tf

# The standard deviation of a standard normal truncated to [-2, 2]:
# sqrt(1 - 2 * 2 * phi(2) / (Phi(2) - Phi(-2))).
_PHI_2 = math.exp(-2.0) / math.sqrt(2 * math.pi)
_WIDTH = math.erf(2 / math.sqrt(2))
TRUNCATED_STD = math.sqrt(1 - 4 * _PHI_2 / _WIDTH)


@pytest.fixture(autouse=True)
def fresh_graph(monkeypatch: pytest.MonkeyPatch, symdl_cache: Path) -> None:
    monkeypatch.setenv("SYMDL_CACHE", str(symdl_cache))
    tf.reset_default_graph()


def initialized_twice(variable: object) -> tuple[np.ndarray, np.ndarray]:
    """The variable's value after each of two runs of the initializer in one session."""
    init = tf.global_variables_initializer()
    sess = tf.Session()
    sess.run(init)
    first = sess.run(variable)
    np.testing.assert_array_equal(sess.run(variable), first)  # reading does not redraw
    sess.run(init)
    return first, sess.run(variable)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_random_normal_initializer(dtype: tf.DType) -> None:
    w = tf.get_variable("w", [100, 200], dtype=dtype,
                        initializer=tf.random_normal_initializer(mean=1.0, stddev=2.0))
    first, second = initialized_twice(w)
    assert first.dtype == np.dtype(str(dtype)) and first.shape == (100, 200)
    assert not np.array_equal(first, second)
    for value in (first, second):
        assert abs(value.mean() - 1.0) < 0.1 and abs(value.std() - 2.0) < 0.1


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_truncated_normal_initializer(dtype: tf.DType) -> None:
    w = tf.get_variable("w", [100, 200], dtype=dtype,
                        initializer=tf.truncated_normal_initializer(mean=0.5, stddev=0.1))
    first, second = initialized_twice(w)
    assert first.dtype == np.dtype(str(dtype))
    assert not np.array_equal(first, second)
    for value in (first, second):
        assert value.min() >= 0.3 and value.max() <= 0.7  # within two standard deviations
        assert abs(value.mean() - 0.5) < 0.005
        assert abs(value.std() - 0.1 * TRUNCATED_STD) < 0.005


def test_random_uniform_initializer() -> None:
    w = tf.get_variable("w", [20_000], initializer=tf.random_uniform_initializer(-1.0, 3.0))
    first, second = initialized_twice(w)
    assert not np.array_equal(first, second)
    for value in (first, second):
        assert value.min() >= -1.0 and value.max() < 3.0
        assert abs(value.mean() - 1.0) < 0.05 and abs(value.var() - 16 / 12) < 0.1


def test_random_uniform_initializer_of_integers() -> None:
    w = tf.get_variable("w", [20_000], dtype=tf.int32,
                        initializer=tf.random_uniform_initializer(0, 5))
    first, second = initialized_twice(w)
    assert first.dtype == np.int32 and not np.array_equal(first, second)
    np.testing.assert_array_equal(np.unique(first), [0, 1, 2, 3, 4])
    assert abs(first.mean() - 2.0) < 0.1


def glorot_limit(fan_in: int, fan_out: int) -> float:
    return math.sqrt(6 / (fan_in + fan_out))


@pytest.mark.parametrize(("make", "shape", "fans"), [
    (tf.glorot_uniform_initializer, (300, 100), (300, 100)),
    (tf.glorot_uniform_initializer, (5, 5, 32, 64), (800, 1600)),  # receptive field 5 * 5
    (None, (300, 100), (300, 100)),  # get_variable's default
    (tf.contrib.layers.xavier_initializer, (5, 5, 32, 64), (800, 1600)),
])
def test_glorot_uniform_initializer(make: Callable[[], object] | None, shape: tuple[int, ...],
                                    fans: tuple[int, int]) -> None:
    w = tf.get_variable("w", shape, initializer=None if make is None else make())
    first, second = initialized_twice(w)
    assert not np.array_equal(first, second)
    limit = glorot_limit(*fans)
    for value in (first, second):
        assert value.shape == shape and np.abs(value).max() <= limit
        assert abs(value.mean()) < 0.05 * limit and abs(value.var() / (limit**2 / 3) - 1) < 0.05


def test_xavier_initializer_normal() -> None:
    """``uniform=False``: a truncated normal of standard deviation sqrt(2.6 / (fan_in + fan_out))
    before truncation (TensorFlow's variance scaling)."""
    w = tf.get_variable("w", [300, 100],
                        initializer=tf.contrib.layers.xavier_initializer(uniform=False))
    first, second = initialized_twice(w)
    assert not np.array_equal(first, second)
    scale = math.sqrt(2.6 / 400)
    assert np.abs(first).max() <= 2 * scale
    assert abs(first.std() / (scale * TRUNCATED_STD) - 1) < 0.03


def test_variables_initializer_redraws_only_its_variables() -> None:
    w = tf.get_variable("w", [1000], initializer=tf.random_normal_initializer())
    v = tf.get_variable("v", [1000], initializer=tf.random_normal_initializer())
    sess = tf.Session()
    sess.run(tf.global_variables_initializer())
    w0, v0 = sess.run([w, v])
    sess.run(tf.variables_initializer([w]))
    w1, v1 = sess.run([w, v])
    assert not np.array_equal(w0, w1)
    np.testing.assert_array_equal(v0, v1)


def draws(seed_before: int | None = None, seed_between: int | None = None,
          seed_after: int | None = None, op_seed: int | None = None) -> list[np.ndarray]:
    """Build a graph with the seeds set where named, initialize it in two sessions and
    return the two values (before, between: before and after making the initializer object;
    after: after `get_variable`, before the session runs)."""
    tf.reset_default_graph()
    if seed_before is not None:
        tf.set_random_seed(seed_before)
    init = tf.random_normal_initializer(seed=op_seed)
    if seed_between is not None:
        tf.set_random_seed(seed_between)
    w = tf.get_variable("w", [50], initializer=init)
    b = tf.get_variable("b", [50], initializer=tf.truncated_normal_initializer(seed=op_seed))
    if seed_after is not None:
        tf.set_random_seed(seed_after)
    values = []
    for _ in range(2):
        sess = tf.Session()
        sess.run(tf.global_variables_initializer())
        values.append(np.concatenate(sess.run([w, b])))
    return values


def test_graph_seed_set_before_get_variable_repeats_across_sessions() -> None:
    first, second = draws(seed_before=3)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[:50], first[50:])  # the two ops draw different numbers
    again, _ = draws(seed_before=3)
    np.testing.assert_array_equal(again, first)  # and a rebuilt graph repeats them
    other, _ = draws(seed_before=4)
    assert not np.array_equal(other, first)


def test_graph_seed_is_read_when_get_variable_calls_the_initializer() -> None:
    # Set after the initializer object is made but before get_variable: it counts.
    first, second = draws(seed_between=3)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, draws(seed_before=3)[0])
    # Set after get_variable: the ops are built, so (as in TensorFlow) it does not reach them.
    first, second = draws(seed_after=3)
    assert not np.array_equal(first, second)


def test_op_seed_repeats_without_a_graph_seed() -> None:
    first, second = draws(op_seed=11)
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(draws(op_seed=11)[0], first)


def test_without_seeds_every_session_draws_afresh() -> None:
    first, second = draws()
    assert not np.array_equal(first, second)
