"""Statistics built from the reductions: `var`, `std` and `norm`, named and shaped as numpy's.

They are compositions, not ops of their own: each is a few reductions and elementwise ops, so
its gradient, simplification, fusion and derivation come from those ops' facts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..errors import DTypeError, ShapeError
from ..ir import Expr
from ..types import format_shape, is_float, normalize_axes, size_of
from . import elementwise as _ew
from . import reduce as _reduce
from .base import as_expr

Axis = int | Sequence[int] | None


def _float_input(op: str, x: object) -> Expr:
    x = as_expr(x)
    if not is_float(x.dtype):
        raise DTypeError(f"{op}: expected a float32 or float64 input, got {x.dtype}; cast it with "
                         ".astype('float32')")
    return x


def var(x: object, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Expr:
    """Variance over ``axis`` (None: all), as ``np.var``: the mean squared deviation from the
    mean, divided by ``n - ddof`` for ``n`` elements (``ddof=1``: the unbiased estimate)."""
    x = _float_input("var", x)
    axes = normalize_axes("var", axis, x.ndim)
    if not isinstance(ddof, int) or isinstance(ddof, bool) or ddof < 0:
        raise ShapeError(f"var: ddof must be a non-negative int, got {ddof!r}")
    reduced = tuple(x.shape[a] for a in axes)
    deviation = x - _reduce.mean(x, axis=axes, keepdims=True)
    total = _reduce.sum(deviation * deviation, axis=axes, keepdims=keepdims)
    static, symbols = size_of(reduced)
    if not symbols:
        return total / (static - ddof)  # a Python number: the result keeps x's dtype
    n = _reduce.count(reduced)
    # A symbolic size minus ddof is an int64 value, not a size: cast it, or float32 would
    # become float64 (numpy's promotion).
    return total / n if not ddof else total / _ew.cast(n - ddof, x.dtype)


def std(x: object, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Expr:
    """Standard deviation over ``axis``, as ``np.std``: the square root of `var`."""
    return _ew.sqrt(var(x, axis=axis, keepdims=keepdims, ddof=ddof))


def norm(x: object, ord: float | str | None = None, axis: Axis = None,  # noqa: A002
         keepdims: bool = False) -> Expr:
    """Vector or Frobenius norm, as ``np.linalg.norm``.

    ``ord=None`` (and ``"fro"``) is the square root of the sum of squares over ``axis`` (None:
    all elements). Over one axis (or a vector), ``ord`` may also be 2 (the same), 1 (sum of
    absolute values) or ``inf`` (largest absolute value). Matrix norms that need singular
    values (``ord=2`` over two axes, ``"nuc"``) are refused.
    """
    x = _float_input("norm", x)
    axes = normalize_axes("norm", axis, x.ndim)
    vector = len(axes) == 1
    if ord is None or ord == "fro" or (ord == 2 and vector):
        return _ew.sqrt(_reduce.sum(x * x, axis=axes, keepdims=keepdims))
    if vector and ord == 1:
        return _reduce.sum(_ew.abs(x), axis=axes, keepdims=keepdims)
    if vector and isinstance(ord, (int, float)) and math.isinf(ord) and ord > 0:
        return _reduce.max(_ew.abs(x), axis=axes, keepdims=keepdims)
    raise ShapeError(
        f"norm: ord={ord!r} over axes {axes} of a {format_shape(x.shape)} array is not "
        "supported; use ord=None (Frobenius), or 1, 2 or inf over one axis"
    )
