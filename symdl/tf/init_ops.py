"""Initializers for `tf.get_variable` (``tf.zeros_initializer()``, ...): each is called with a
shape and a dtype and returns the initial value, drawn once when the variable is made (as a
variable's initial value is in TensorFlow)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .dtypes import as_dtype
from .graph import get_default_graph


class Initializer:
    """Base class: ``init(shape, dtype)`` returns a numpy array."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        raise NotImplementedError


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
    def __init__(self, seed: int | None = None, dtype: Any = None) -> None:
        self.seed, self.dtype = seed, dtype

    def _rng(self) -> np.random.Generator:
        return get_default_graph().rng(self.seed)


class random_normal_initializer(_Random):  # noqa: N801 - TensorFlow's name
    """Normal samples with ``mean`` and ``stddev``."""

    def __init__(self, mean: float = 0.0, stddev: float = 1.0, seed: int | None = None,
                 dtype: Any = None) -> None:
        super().__init__(seed, dtype)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        draw = self._rng().normal(self.mean, self.stddev, shape)
        return draw.astype(as_dtype(self.dtype or dtype))


class truncated_normal_initializer(random_normal_initializer):  # noqa: N801
    """Normal samples redrawn until within two standard deviations of the mean."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        rng = self._rng()
        values = rng.normal(0.0, 1.0, shape)
        bad = np.abs(values) > 2.0
        while bad.any():
            values[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
            bad = np.abs(values) > 2.0
        return (self.mean + self.stddev * values).astype(as_dtype(self.dtype or dtype))


class random_uniform_initializer(_Random):  # noqa: N801 - TensorFlow's name
    """Uniform samples in [minval, maxval)."""

    def __init__(self, minval: float = 0.0, maxval: float = 1.0, seed: int | None = None,
                 dtype: Any = None) -> None:
        super().__init__(seed, dtype)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        draw = self._rng().uniform(self.minval, self.maxval, shape)
        return draw.astype(as_dtype(self.dtype or dtype))


class glorot_uniform_initializer(_Random):  # noqa: N801 - TensorFlow's name
    """Uniform in +-sqrt(6 / (fan_in + fan_out)): `tf.get_variable`'s default."""

    def __call__(self, shape: tuple[int, ...], dtype: Any = "float32",
                 partition_info: object = None) -> np.ndarray:
        if len(shape) == 0:
            fan_in = fan_out = 1
        elif len(shape) == 1:
            fan_in = fan_out = shape[0]
        else:
            receptive = math.prod(shape[:-2])
            fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = math.sqrt(6.0 / max(1, fan_in + fan_out))
        draw = self._rng().uniform(-limit, limit, shape)
        return draw.astype(as_dtype(self.dtype or dtype))


__all__ = [
    "Initializer", "constant_initializer", "glorot_uniform_initializer", "ones_initializer",
    "random_normal_initializer", "random_uniform_initializer", "truncated_normal_initializer",
    "zeros_initializer",
]
