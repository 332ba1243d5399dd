"""Shared test helpers: input domains, compiling small functions, finite-difference checks.

The references are independent of symdl's derivative rules: values come from hand-written numpy,
gradients from central finite differences in float64 of that numpy, taken along a random
direction (the inner-product check JAX's ``check_grads`` uses), so one scalar comparison covers
every entry of every gradient.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

import symdl as sd
from symdl.ir import Expr

SIZES: Mapping[str, int] = {"N": 5, "M": 3}
"""Concrete values for the symbolic sizes tests use."""

Domain = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]


# --------------------------------------------------------------------------- domains


def uniform(lo: float = -2.0, hi: float = 2.0) -> Domain:
    """Uniform values in [lo, hi)."""
    return lambda rng, shape: rng.uniform(lo, hi, size=shape)


def away_from_zero(gap: float = 0.2, hi: float = 2.0) -> Domain:
    """Values with gap <= |x| < hi, so kinks at 0 (relu, abs) are never within eps."""
    return lambda rng, shape: rng.choice([-1.0, 1.0], size=shape) * rng.uniform(gap, hi, shape)


def distinct(lo: float = -2.0, hi: float = 2.0) -> Domain:
    """Values at least (hi - lo) / size apart: no ties, so max/argmax are differentiable."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape))
        return rng.permutation(np.linspace(lo, hi, n)).reshape(shape)

    return draw


def integers(high: int, low: int = 0) -> Domain:
    """int64 values in [low, high)."""
    return lambda rng, shape: rng.integers(low, high, size=shape, dtype=np.int64)


def one_hot_rows() -> Domain:
    """Rows (last axis) that are one-hot."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        ids = rng.integers(0, shape[-1], size=shape[:-1])
        return np.eye(shape[-1])[ids]

    return draw


def probability_rows() -> Domain:
    """Rows (last axis) of positive numbers summing to 1."""

    def draw(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        p = rng.uniform(0.1, 1.0, size=shape)
        return p / p.sum(axis=-1, keepdims=True)

    return draw


# --------------------------------------------------------------------------- shapes and values


def seed_of(text: str) -> int:
    """A stable seed from a test id (Python's hash() changes with PYTHONHASHSEED)."""
    return zlib.crc32(text.encode("utf-8"))


def concrete(shape: Sequence[object], sizes: Mapping[str, int] = SIZES) -> tuple[int, ...]:
    """A leaf's shape with symbolic sizes replaced by their test values."""
    return tuple(d if isinstance(d, int) else sizes[str(d)] for d in shape)


def value_for(leaf: Expr, domain: Domain, rng: np.random.Generator) -> np.ndarray:
    """A random value for ``leaf`` from ``domain``, with the leaf's concrete shape and dtype."""
    array = np.asarray(domain(rng, concrete(leaf.shape)))
    return array.astype(leaf.dtype)


# --------------------------------------------------------------------------- compiling


def compile_functions(
    functions: Mapping[str, tuple], cache_dir: Path | None, name: str = "under_test"
) -> ModuleType:
    """`sd.compile` into ``cache_dir`` (the tests never write to the user's cache)."""
    return sd.compile(functions, name, cache_dir=cache_dir)


def run_one(
    inputs: Sequence[Expr], output: Expr, values: Sequence[np.ndarray], cache_dir: Path | None
) -> np.ndarray:
    """Compile ``output`` as a function of ``inputs`` and call it on ``values``."""
    module = compile_functions({"f": (list(inputs), output)}, cache_dir)
    return module.f(*values)


# --------------------------------------------------------------------------- finite differences


def numeric_directional(
    f: Callable[..., np.ndarray],
    values: Sequence[np.ndarray],
    directions: Sequence[np.ndarray | None],
    eps: float = 1e-6,
) -> np.ndarray:
    """Central difference (f(x + eps v) - f(x - eps v)) / (2 eps), in float64.

    ``directions[i]`` is None for arguments held fixed (integer labels, masks).
    """
    plus, minus = [], []
    for x, v in zip(values, directions, strict=True):
        if v is None:
            plus.append(x)
            minus.append(x)
        else:
            x64 = np.asarray(x, dtype=np.float64)
            plus.append(x64 + eps * v)
            minus.append(x64 - eps * v)
    return (np.asarray(f(*plus), np.float64) - np.asarray(f(*minus), np.float64)) / (2 * eps)


def assert_close(actual: object, expected: object, *, rtol: float, atol: float, what: str) -> None:
    """Same shape and values within tolerance; the message says what was compared."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    )
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=what)


def check_grads(
    fn_numpy: Callable[..., np.ndarray],
    inputs: Sequence[Expr],
    output: Expr,
    values: Sequence[np.ndarray],
    *,
    wrt: Sequence[Expr] | None = None,
    cache_dir: Path | None = None,
    seed: int = 0,
    eps: float = 1e-6,
    rtol: float = 1e-6,
) -> tuple[float, float]:
    """Check symdl's gradients of ``output`` against central differences of ``fn_numpy``.

    ``output`` (any shape) is scalarized with a fixed random cotangent ``c``
    (``sum(output * c)``); symdl's gradient with respect to every float leaf in ``wrt``
    (default: all float ``inputs``) is compiled and its inner product with a random direction
    ``v`` is compared with the central difference of ``sum(fn_numpy(...) * c)`` along ``v``.
    All values must be float64 for the difference to be accurate. Returns (analytic, numeric).
    """
    rng = np.random.default_rng(seed)
    if wrt is None:
        wrt = [x for x in inputs if x.dtype in ("float32", "float64")]
    assert wrt, "check_grads: nothing to differentiate"
    for x in wrt:
        assert x.dtype == "float64", f"check_grads needs float64 leaves, {x.name} is {x.dtype}"
    cot = sd.placeholder("cotangent", output.shape, output.dtype)
    c = rng.standard_normal(concrete(output.shape)).astype(output.dtype)
    objective = sd.sum(output * cot)
    grads = sd.grad(objective, list(wrt))
    module = compile_functions({"grads": ([*inputs, cot], grads)}, cache_dir, "grad_check")
    got = module.grads(*values, c)

    directions: list[np.ndarray | None] = []
    analytic = 0.0
    for x, value in zip(inputs, values, strict=True):
        if any(x is w for w in wrt):
            g = got[[i for i, w in enumerate(wrt) if w is x][0]]
            assert g.shape == np.shape(value) and g.dtype == np.float64, (
                f"gradient of {x.name}: {g.shape} {g.dtype}, expected {np.shape(value)} float64"
            )
            v = rng.standard_normal(np.shape(value))
            analytic += float(np.sum(g * v))
            directions.append(v)
        else:
            directions.append(None)

    def scalar(*args: np.ndarray) -> np.ndarray:
        return np.sum(np.asarray(fn_numpy(*args), np.float64) * c)

    numeric = float(numeric_directional(scalar, values, directions, eps))
    scale = max(1.0, abs(numeric), abs(float(scalar(*values))))
    assert abs(analytic - numeric) <= rtol * scale, (
        f"gradient mismatch: <grad, v> = {analytic!r}, finite difference = {numeric!r}"
    )
    return analytic, numeric
