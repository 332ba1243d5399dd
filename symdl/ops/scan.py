"""Running sums and products (`cumsum`, `cumprod`) and the product reduction `prod`.

`prod` lives with the scans because its derivative is one: the derivative of a product with
respect to one factor is the product of all the others, which is computed exactly, zeros
included, as the running product from the left times the running product from the right,
never as ``prod / x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import NoDerivativeError, ShapeError
from ..ir import ConstValue, Expr
from ..types import Shape, format_shape, normalize_axes, size_of
from . import elementwise as _ew
from . import reduce as _reduce
from . import shape as _shape
from .base import Latex, Op, as_expr, latex_call, register

Axis = int | Sequence[int] | None


def _scan_shape(x: Expr, axis: int | None) -> Shape:
    if axis is None:
        return (size_of(x.shape)[0],)
    return x.shape


def _accumulated_dtype(x: Expr) -> str:
    # numpy accumulates bools and narrow ints in the default int.
    return "int64" if x.dtype in ("bool", "int32") else x.dtype


@register
class Cumsum(Op):
    """np.cumsum(x, axis): running sums along an axis (axis None: of the flattened array)"""

    name = "cumsum"
    hint, latex = "cumsum_{0}", latex_call(r"\operatorname{cumsum}")
    latex_rule = (r"c_j = \textstyle\sum_{i \le j} a_i \;\Rightarrow\; \bar{a}_i = "
                  r"\textstyle\sum_{j \ge i} \bar{c}_j \text{ (a cumsum from the end)}")

    @classmethod
    def infer(cls, x: Expr, *, axis: int | None) -> tuple[Shape, str]:
        return _scan_shape(x, axis), _accumulated_dtype(x)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: int | None) -> tuple[Expr]:
        # Entry i feeds every running sum from i on: the cotangent summed from the end.
        along = 0 if axis is None else axis
        reverse = _shape.flip(Cumsum.make(_shape.flip(g, along), axis=along), along)
        return (_shape.reshape(reverse, x.shape),)


@register
class Cumprod(Op):
    """np.cumprod(x, axis): running products along an axis (the gradient of `prod` uses it)"""

    name = "cumprod"
    hint, latex = "cumprod_{0}", latex_call(r"\operatorname{cumprod}")
    latex_rule = (r"c_j = \textstyle\prod_{i \le j} a_i \;\Rightarrow\; \bar{a}_i = "
                  r"\textstyle\sum_{j \ge i} \bar{c}_j \prod_{k \le j, k \ne i} a_k")

    @classmethod
    def infer(cls, x: Expr, *, axis: int) -> tuple[Shape, str]:
        return x.shape, _accumulated_dtype(x)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: int) -> tuple[Expr]:
        # Exact where x has zeros, so not revcumsum(g * out) / x: running product j is the
        # product over row j of T[j, k] = (x_k if k <= j else 1), and its derivative with
        # respect to x_k is the product of the rest of that row (`prod`'s rule). Costs K^2 for
        # an axis of size K (a prod's gradient needs it only when differentiated again).
        k = x.shape[axis]
        if isinstance(k, str):
            raise NoDerivativeError(
                f"cumprod: the derivative of a running product over the symbolic axis {k!r} "
                f"(shape {format_shape(x.shape)}) is not supported"
            )
        last = _shape.transpose(x, _move_last(x.ndim, axis))
        g_last = _shape.transpose(g, _move_last(x.ndim, axis))
        lower = as_expr(np.tril(np.ones((k, k), dtype=bool)))  # [j, k]: k <= j
        rows = _ew.where(lower, _shape.expand_dims(last, -2), 1.0)
        others = _exclusive_products(rows, (rows.ndim - 1,))
        grad_last = _reduce.sum(
            _ew.where(lower, others * _shape.expand_dims(g_last, -1), 0.0), axis=-2
        )
        back = tuple(int(a) for a in np.argsort(_move_last(x.ndim, axis)))
        return (_shape.transpose(grad_last, back),)


@register
class Shift(Op):
    """x moved one place along an axis (forward: toward the end), ``fill`` entering the freed
    place; the size of the axis may be symbolic (an exclusive running product is a shifted one)"""

    name = "shift"
    hint, latex = "{0}_shifted", latex_call(r"\operatorname{shift}")
    latex_rule = (r"c_i = a_{i - 1} \;\Rightarrow\; \bar{a}_i = \bar{c}_{i + 1} "
                  r"\text{ (shifted back, 0 entering)}")

    @classmethod
    def infer(cls, x: Expr, *, axis: int, forward: bool, fill: ConstValue) -> tuple[Shape, str]:
        return x.shape, x.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, x: Expr, *, axis: int, forward: bool, fill: ConstValue
    ) -> tuple[Expr]:
        zero = ConstValue(np.zeros((), dtype=g.dtype))
        return (Shift.make(g, axis=axis, forward=not forward, fill=zero),)


def shift(x: Expr, axis: int, forward: bool = True, fill: float = 0.0) -> Expr:
    """``x`` moved one place along ``axis``, ``fill`` entering at the front (``forward``) or at
    the back; what leaves at the other end is dropped."""
    (a,) = normalize_axes("shift", axis, x.ndim)
    value = ConstValue(np.asarray(fill, dtype=x.dtype))
    return Shift.make(x, axis=a, forward=forward, fill=value)


@register
class Prod(Op):
    """product over axes; the gradient is the product of the other factors (exact with zeros)"""

    name = "prod"
    hint = "prod_{0}"
    latex_rule = (r"c = \textstyle\prod_i a_i \;\Rightarrow\; \bar{a}_i = \bar{c} "
                  r"\textstyle\prod_{k \ne i} a_k")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""``\prod`` with the reduced indices as subscript: ``\prod_{j} x``."""
        return _reduce._reduction_latex(node, r"\textstyle\prod")

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Shape, str]:
        return _reduce._reduced_shape(x.shape, axis, keepdims), _accumulated_dtype(x)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Expr]:
        return (_reduce._expand_back(g, x, axis, keepdims) * _exclusive_products(x, axis),)


def _move_last(ndim: int, axis: int) -> tuple[int, ...]:
    """The permutation moving ``axis`` to the end."""
    return tuple(a for a in range(ndim) if a != axis) + (axis,)


def _exclusive_products(x: Expr, axes: tuple[int, ...]) -> Expr:
    """For each element, the product of the other elements over ``axes`` (same shape as x).

    Along one axis, the product of the others at position i is (product of 0..i-1) * (product
    of i+1..K-1): running products from the left and from the right, each shifted by one place
    (a 1 entering). Over several axes, one axis at a time: the others in my row along the last
    axis, times the others among the rows' products over the remaining axes. No division, so one
    zero or several give the exact derivative, and symbolic sizes (N) need no reshape.
    """
    *outer, last = axes
    others = _others_along(x, last)
    for along in reversed(outer):
        # The rows' products over the axes done so far; the others among them along this one.
        x = prod(x, axis=last, keepdims=True)
        others = others * _others_along(x, along)
        last = along
    return others


def _others_along(x: Expr, along: int) -> Expr:
    """The product of the other elements along one axis, for each element."""
    left = shift(Cumprod.make(x, axis=along), along, forward=True, fill=1.0)
    # The same from the other end: running products of the reversed axis, reversed back.
    flipped = Cumprod.make(_shape.flip(x, along), axis=along)
    return left * _shape.flip(shift(flipped, along, forward=True, fill=1.0), along)


# --------------------------------------------------------------------------- public functions


def cumsum(x: object, axis: int | None = None) -> Expr:
    """Running sums along ``axis`` (None: of the flattened array), as ``np.cumsum``."""
    x = as_expr(x, "cumsum")
    if axis is None:
        static, symbols = size_of(x.shape)
        if symbols:
            raise ShapeError(
                f"cumsum: cannot flatten {format_shape(x.shape)}, whose size is symbolic; "
                "give the axis to sum along"
            )
        return Cumsum.make(x, axis=None if x.ndim != 1 else 0)
    (a,) = normalize_axes("cumsum", axis, x.ndim)
    return Cumsum.make(x, axis=a)


def cumprod(x: object, axis: int | None = None) -> Expr:
    """Running products along ``axis`` (None: of the flattened array), as ``np.cumprod``.

    Its gradient is exact where ``x`` has zeros, and costs K^2 for an axis of size K (K by K
    products; `prod`'s gradient runs in K and needs this only for second derivatives).
    """
    x = as_expr(x, "cumprod")
    if axis is None:
        if size_of(x.shape)[1]:
            raise ShapeError(
                f"cumprod: cannot flatten {format_shape(x.shape)}, whose size is symbolic; "
                "give the axis to multiply along"
            )
        x, axis = _shape.reshape(x, (-1,)), 0
    (a,) = normalize_axes("cumprod", axis, x.ndim)
    return Cumprod.make(x, axis=a)


def prod(x: object, axis: Axis = None, keepdims: bool = False) -> Expr:
    """Product of elements over ``axis`` (None: all), as ``np.prod``."""
    x = as_expr(x, "prod")
    axes = normalize_axes("prod", axis, x.ndim)
    if not axes:
        return x
    return Prod.make(x, axis=axes, keepdims=bool(keepdims))
