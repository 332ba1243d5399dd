"""Initializers for `tf.get_variable` (``tf.zeros_initializer()``, ...): each is called with a
shape and a dtype and returns the initial value. The constant ones return numbers; the random
ones return a random op, drawn when the variable's initializer runs (on every run of
``tf.global_variables_initializer()``, as in TensorFlow), not when the variable is made."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..ir import Expr
from ..ops import api as sd
from .dtypes import DType, as_dtype
from .ops import random_normal, random_uniform, truncated_normal


class Initializer:
    """Base class: ``init(shape, dtype)`` returns a numpy array or a tensor of that shape."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray | Expr:
        raise NotImplementedError


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) as TensorFlow counts them: a filter ``(height, width, in, out)``
    multiplies in and out by its receptive field, height * width."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class zeros_initializer(Initializer):  # noqa: N801 - TensorFlow's name
    """Zeros."""

    def __init__(self, dtype: Any = None) -> None:
        self.dtype = dtype

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        return np.zeros(shape, as_dtype(self.dtype or dtype))


class ones_initializer(zeros_initializer):  # noqa: N801 - TensorFlow's name
    """Ones."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        return np.ones(shape, as_dtype(self.dtype or dtype))


class constant_initializer(Initializer):  # noqa: N801 - TensorFlow's name
    """A constant (a number, broadcast, or an array of the variable's shape)."""

    def __init__(self, value: Any = 0, dtype: Any = None) -> None:
        self.value, self.dtype = value, dtype

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        value = np.asarray(self.value, as_dtype(self.dtype or dtype))
        return np.array(np.broadcast_to(value, shape) if value.size == 1 else
                        value.reshape(shape))


class _Random(Initializer):
    """A random initializer: ``init(shape, dtype)`` returns a random op (`symdl.tf.random_normal`
    and friends), not numbers, so the draw happens when the variable's initializer runs: each
    run of ``tf.global_variables_initializer()`` draws afresh, and the op's seed is fixed when
    `get_variable` calls the initializer, from ``seed`` or the graph seed set by then (as in
    TensorFlow, where a later `set_random_seed` does not reach ops already built)."""

    def __init__(self, seed: int | None = None, dtype: Any = None) -> None:
        self.seed, self.dtype = seed, dtype

    def _dtype(self, dtype: Any) -> DType:
        return as_dtype(self.dtype or dtype)


class random_normal_initializer(_Random):  # noqa: N801 - TensorFlow's name
    """Normal samples with ``mean`` and ``stddev``."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None,
                 dtype: Any = None) -> None:
        super().__init__(seed, dtype)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> Expr:
        return random_normal(shape, self.mean, self.stddev, self._dtype(dtype), self.seed)


class truncated_normal_initializer(random_normal_initializer):  # noqa: N801
    """Normal samples within two standard deviations of the mean (`symdl.tf.truncated_normal`)."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> Expr:
        return truncated_normal(shape, self.mean, self.stddev, self._dtype(dtype), self.seed)


class random_uniform_initializer(_Random):  # noqa: N801 - TensorFlow's name
    """Uniform samples in [minval, maxval); integers in [minval, maxval) for an integer dtype."""

    def __init__(self, minval: float = 0.0, maxval: float | None = None,
                 seed: int | None = None, dtype: Any = None) -> None:
        super().__init__(seed, dtype)
        self.minval, self.maxval = minval, 1.0 if maxval is None else maxval

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> Expr:
        dt = self._dtype(dtype)
        if dt.is_floating:
            return random_uniform(shape, self.minval, self.maxval, dt, self.seed)
        # TensorFlow's integer uniform: floor of a float64 draw in [minval, maxval).
        draw = random_uniform(shape, self.minval, self.maxval, "float64", self.seed)
        return sd.cast(sd.floor(draw), dt)


class glorot_uniform_initializer(_Random):  # noqa: N801 - TensorFlow's name
    """Uniform in +-sqrt(6 / (fan_in + fan_out)): `tf.get_variable`'s default."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> Expr:
        fan_in, fan_out = _fans(shape)
        limit = math.sqrt(6.0 / max(1, fan_in + fan_out))
        return random_uniform(shape, -limit, limit, self._dtype(dtype), self.seed)


def xavier_initializer(uniform: bool = True, seed: int | None = None,
                       dtype: Any = "float32") -> Initializer:
    """``tf.contrib.layers.xavier_initializer``: Glorot's uniform initializer, or with
    ``uniform=False`` a truncated normal of standard deviation sqrt(1.3 * 2 / (fan_in +
    fan_out)) (TensorFlow's variance scaling, whose truncation at two deviations 1.3 undoes)."""
    if uniform:
        return glorot_uniform_initializer(seed, dtype)
    return _GlorotTruncatedNormal(seed, dtype)


class _GlorotTruncatedNormal(_Random):
    """`xavier_initializer(uniform=False)`: truncated normal scaled by the fans."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> Expr:
        fan_in, fan_out = _fans(shape)
        stddev = math.sqrt(1.3 * 2.0 / max(1, fan_in + fan_out))
        return truncated_normal(shape, 0.0, stddev, self._dtype(dtype), self.seed)


__all__ = [
    "Initializer", "constant_initializer", "glorot_uniform_initializer", "ones_initializer",
    "random_normal_initializer", "random_uniform_initializer", "truncated_normal_initializer",
    "xavier_initializer", "zeros_initializer",
]
