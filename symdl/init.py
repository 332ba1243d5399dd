"""Initializers: functions ``(shape, rng, dtype) -> numpy array`` with explicit seeding.

Every initializer takes a `numpy.random.Generator`, never the global numpy state, so a model
initialized from the same seed is the same array to the bit. Weight shapes follow symdl's dense
convention ``(fan_in, fan_out)`` (``y = x @ W``); for other ranks the fans are those of PyTorch's
``_calculate_fan_in_and_fan_out`` with the receptive field taken from the trailing dimensions.

    rng = np.random.default_rng(0)
    W = sd.init.he_normal((784, 256), rng)        # N(0, 2 / 784), float32
    values = sd.init.initialize(inits, seed=0)   # {name: array} for {parameter: initializer}
    values = sd.init.initialize([W, b], seed=0)  # defaults: Glorot uniform weights, zero biases
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from .errors import ShapeError
from .ir import Expr


class Initializer(Protocol):
    """What every initializer is: ``init(shape, rng, dtype) -> array of that shape and dtype``."""

    def __call__(
        self, shape: tuple[int, ...], rng: np.random.Generator, dtype: str = "float32"
    ) -> np.ndarray: ...


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of ``shape``: ``(in, out)`` for a dense ``(in, out)``."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[2:])
    return shape[0] * receptive, shape[1] * receptive


def zeros(shape: tuple[int, ...], rng: np.random.Generator | None = None,
          dtype: str = "float32") -> np.ndarray:
    """All zeros (``rng`` is accepted for a uniform signature and not used)."""
    return np.zeros(shape, dtype=dtype)


def ones(shape: tuple[int, ...], rng: np.random.Generator | None = None,
         dtype: str = "float32") -> np.ndarray:
    """All ones (``rng`` unused)."""
    return np.ones(shape, dtype=dtype)


def normal(std: float = 0.01, mean: float = 0.0) -> Initializer:
    """An initializer drawing from ``N(mean, std**2)``."""

    def init(shape: tuple[int, ...], rng: np.random.Generator,
             dtype: str = "float32") -> np.ndarray:
        return rng.normal(mean, std, size=shape).astype(dtype)

    init.__name__ = f"normal(std={std}, mean={mean})"
    return init


def uniform(low: float = -0.05, high: float = 0.05) -> Initializer:
    """An initializer drawing from ``U(low, high)``."""

    def init(shape: tuple[int, ...], rng: np.random.Generator,
             dtype: str = "float32") -> np.ndarray:
        return rng.uniform(low, high, size=shape).astype(dtype)

    init.__name__ = f"uniform(low={low}, high={high})"
    return init


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator,
                   dtype: str = "float32") -> np.ndarray:
    """Glorot/Xavier uniform: ``U(-a, a)`` with ``a = sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def glorot_normal(shape: tuple[int, ...], rng: np.random.Generator,
                  dtype: str = "float32") -> np.ndarray:
    """Glorot/Xavier normal: ``N(0, 2 / (fan_in + fan_out))``."""
    fan_in, fan_out = fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / (fan_in + fan_out)), size=shape).astype(dtype)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator,
              dtype: str = "float32") -> np.ndarray:
    """He/Kaiming normal for ReLU layers: ``N(0, 2 / fan_in)``."""
    fan_in, _ = fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape).astype(dtype)


def he_uniform(shape: tuple[int, ...], rng: np.random.Generator,
               dtype: str = "float32") -> np.ndarray:
    """He/Kaiming uniform for ReLU layers: ``U(-a, a)`` with ``a = sqrt(6 / fan_in)``."""
    fan_in, _ = fans(shape)
    limit = math.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_normal = he_normal
kaiming_uniform = he_uniform


def hwio(initializer: Initializer) -> Initializer:
    """``initializer`` for a convolution filter in HWIO layout ``(KH, KW, C, O)`` (TensorFlow's).

    `fans` reads a 4-d shape as ``(in, out, KH, KW)``; this draws the filter in that layout and
    moves the axes, so He and Glorot see the filter's true fans (fan-in ``KH * KW * C``).
    """
    return _filter_layout(initializer, "hwio", lambda kh, kw, c, o: (c, o, kh, kw), (2, 3, 0, 1))


def oihw(initializer: Initializer) -> Initializer:
    """``initializer`` for a convolution filter in OIHW layout ``(O, C, KH, KW)`` (PyTorch's);
    see `hwio`."""
    return _filter_layout(initializer, "oihw", lambda o, c, kh, kw: (c, o, kh, kw), (1, 0, 2, 3))


def _filter_layout(initializer: Initializer, layout: str, drawn: Callable[..., tuple[int, ...]],
                   axes: tuple[int, ...]) -> Initializer:
    def init(shape: tuple[int, ...], rng: np.random.Generator,
             dtype: str = "float32") -> np.ndarray:
        if len(shape) != 4:
            raise ShapeError(f"{layout}: expected a 4-d filter shape, got {shape}")
        return np.ascontiguousarray(initializer(drawn(*shape), rng, dtype).transpose(axes))

    init.__name__ = f"{layout}_{getattr(initializer, '__name__', 'init')}"
    return init


def default_initializer(param: Expr) -> Initializer:
    """The initializer `initialize` uses for a parameter given without one.

    Glorot uniform for a weight (two or more dimensions), zeros for a bias or a scalar: the
    defaults of Keras's ``Dense``, and what suits the usual ``x @ W + b``.
    """
    return glorot_uniform if len(param.shape) >= 2 else zeros


def initialize(
    params: Mapping[Expr, Callable[..., np.ndarray]] | Sequence[Expr],
    seed: int | np.random.Generator = 0,
) -> dict[str, np.ndarray]:
    """Values for parameters: ``{parameter name: array}``.

    ``params`` is a ``{parameter: initializer}`` mapping (what `symdl.layers` helpers return),
    or a list of parameters, each then initialized by `default_initializer` (Glorot uniform
    for weights, zeros for biases). The forms `symdl.optim.compile_train_step` takes for its
    ``params``, so the same value serves both:

        values = sd.init.initialize({W: sd.init.he_normal, b: sd.init.zeros}, seed=0)
        values = sd.init.initialize([W, b], seed=0)

    Parameters are drawn in the given order from one `numpy.random.Generator` (``seed`` or a
    generator you pass), so the same seed gives the same arrays.

    Raises:
        TypeError: if an entry is not an `sd.parameter`, or an initializer is not callable.
        ShapeError: if a parameter has a symbolic dimension (its size is unknown), or an
            initializer returns an array of another shape or dtype.
    """
    if isinstance(params, Mapping):
        pairs = list(params.items())
    elif isinstance(params, (set, frozenset)):
        raise TypeError(
            "initialize: params is a set, whose order (and so which parameter gets which "
            "random draws) changes between runs; pass a list or a {parameter: initializer} dict"
        )
    elif isinstance(params, Sequence) and not isinstance(params, (str, bytes)):
        pairs = [(p, None) for p in params]
    else:
        hint = "; put a single parameter in a list" if isinstance(params, Expr) else ""
        raise TypeError(
            f"initialize: params must be a {{parameter: initializer}} dict or a list of "
            f"parameters, got {type(params).__name__}{hint}"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    values: dict[str, np.ndarray] = {}
    for param, given in pairs:
        if not isinstance(param, Expr) or param.op.name != "parameter":
            raise TypeError(
                f"initialize: expected sd.parameter leaves, got {param!r}; initialize the "
                "parameters a model trains (placeholders are fed, not initialized)"
            )
        init = default_initializer(param) if given is None else given
        if not callable(init):
            raise TypeError(
                f"initialize: the initializer of {param.name!r} must be a function "
                f"(shape, rng, dtype) -> array such as sd.init.he_normal, got {init!r}"
            )
        if not all(isinstance(d, int) for d in param.shape):
            raise ShapeError(
                f"initialize: parameter {param.name!r} has shape {param.shape} with a symbolic "
                "dimension; give parameters concrete sizes"
            )
        array = np.asarray(init(tuple(param.shape), rng, param.dtype))
        if array.shape != tuple(param.shape) or array.dtype != np.dtype(param.dtype):
            raise ShapeError(
                f"initialize: the initializer of {param.name!r} returned {array.shape} "
                f"{array.dtype}, expected {tuple(param.shape)} {param.dtype}"
            )
        values[param.name] = array
    return values


__all__ = [
    "Initializer", "default_initializer", "fans", "glorot_normal", "glorot_uniform", "he_normal",
    "he_uniform", "hwio", "initialize", "kaiming_normal", "kaiming_uniform", "normal", "oihw",
    "ones", "uniform",
    "xavier_normal", "xavier_uniform", "zeros",
]
