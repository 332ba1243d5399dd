"""Reductions over axes: `sum`, `max`, `mean`, `argmax`, and symbolic sizes.

Axes are stored normalized (a sorted tuple of non-negative ints), so ``sum(x, 1)`` and
``sum(x, -1)`` on a matrix are the same node.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import DTypeError
from ..ir import Expr
from ..printing import size_text
from ..types import Shape, normalize_axes, size_of
from . import elementwise as _ew
from . import shape as _shape
from .base import PROD, Latex, Op, as_expr, latex_call, latex_literal, register


def _reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _expand_back(g: Expr, x: Expr, axes: tuple[int, ...], keepdims: bool) -> Expr:
    """Reshape a reduced value so it broadcasts against ``x`` again (keepdims form)."""
    return g if keepdims else _shape.reshape(g, _reduced_shape(x.shape, axes, True))


def _reduction_latex(node: Expr, symbol: str) -> Latex:
    """``symbol`` (``\\sum``, ``\\max``) with the reduced indices as subscript: ``\\sum_{n} x``."""
    inner = node.inputs[0]
    dims = [inner.shape[a] for a in node.attr("axis")]
    index = ",".join("n" if isinstance(d, str) else "ijkl"[k % 4] for k, d in enumerate(dims))
    return Latex(symbol + "_{{" + index + "}} {0}", PROD, (PROD,))


@register
class Sum(Op):
    """sum over axes"""

    name = "sum"
    hint = "sum_{0}"
    latex_rule = (r"c = \textstyle\sum_i a_i \;\Rightarrow\; \partial c / \partial a_i = 1: "
                  r"\; \bar{a} = \bar{c} \text{ copied along the summed axes}")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """Row and column sums of a matrix as products with a ones vector; else ``\\sum``."""
        inner, axes = node.inputs[0], node.attr("axis")
        if inner.ndim == 2 and axes == (1,):
            return Latex(r"{0} \, \mathbf{{1}}", PROD, (PROD,))  # row sums
        if inner.ndim in (1, 2) and axes == (0,):  # column sums; a vector's sum, 1^T v
            return Latex(r"\mathbf{{1}}^\top {0}", PROD, (PROD + 1,))
        return _reduction_latex(node, r"\textstyle\sum")

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Shape, str]:
        dtype = "int64" if x.dtype in ("bool", "int32") else x.dtype
        return _reduced_shape(x.shape, axis, keepdims), dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Expr]:
        return (_shape.broadcast_to(_expand_back(g, x, axis, keepdims), x.shape),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> Expr:
        return sum(t[0], axis=axis, keepdims=keepdims)  # axes count from the front: batch last


@register
class Max(Op):
    """maximum over axes; ties share the gradient equally"""

    name = "max"
    hint = "max_{0}"
    latex_rule = (r"c = \max_i a_i \;\Rightarrow\; \bar{a} = \bar{c} \odot "
                  r"[a = c] / \textstyle\sum_i [a_i = c]")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """``\\max`` with the reduced indices as subscript: ``\\max_{j} z``."""
        return _reduction_latex(node, r"\max")

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Shape, str]:
        return _reduced_shape(x.shape, axis, keepdims), x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Expr]:
        hit = _ew.cast(_ew.equal(x, _expand_back(out, x, axis, keepdims)), x.dtype)
        share = hit / sum(hit, axis=axis, keepdims=True)
        return (_expand_back(g, x, axis, keepdims) * share,)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> Expr:
        # The mean of the tangent over the maxima, as vjp shares the cotangent among them.
        hit = _ew.cast(_ew.equal(x, _expand_back(out, x, axis, keepdims)), x.dtype)
        share = hit / sum(hit, axis=axis, keepdims=True)
        nb = _shape.batch_rank(t[0], x)
        return sum(t[0] * _shape.with_batch(share, nb), axis=axis, keepdims=keepdims)


@register
class Argmax(Op):
    """index of the maximum along one axis (int64; no gradient)"""

    name = "argmax"
    differentiable = False
    hint, latex = "argmax_{0}", latex_call(r"\operatorname{argmax}")

    @classmethod
    def infer(cls, x: Expr, *, axis: int | None) -> tuple[Shape, str]:
        if axis is None:
            return (), "int64"
        return tuple(d for i, d in enumerate(x.shape) if i != axis), "int64"


@register
class Argmin(Op):
    """index of the minimum along one axis (int64; no gradient)"""

    name = "argmin"
    differentiable = False
    hint, latex = "argmin_{0}", latex_call(r"\operatorname{argmin}")

    @classmethod
    def infer(cls, x: Expr, *, axis: int | None) -> tuple[Shape, str]:
        return Argmax.infer(x, axis=axis)


@register
class AnyOf(Op):
    """whether any element over axes is true (nonzero), as a bool; no gradient"""

    name = "any"
    differentiable = False
    hint = "any_{0}"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """``\bigvee`` with the reduced indices as subscript."""
        return _reduction_latex(node, r"\textstyle\bigvee")

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Shape, str]:
        return _reduced_shape(x.shape, axis, keepdims), "bool"


@register
class AllOf(Op):
    """whether every element over axes is true (nonzero), as a bool; no gradient"""

    name = "all"
    differentiable = False
    hint = "all_{0}"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """``\bigwedge`` with the reduced indices as subscript."""
        return _reduction_latex(node, r"\textstyle\bigwedge")

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Shape, str]:
        return _reduced_shape(x.shape, axis, keepdims), "bool"


@register
class Size(Op):
    """the number of elements of a shape with symbolic sizes, as a (weak) integer scalar"""

    name = "size"
    is_leaf = False
    differentiable = False
    free = True
    hint = "size"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """The product of the sizes, juxtaposed: ``2 N``."""
        static, symbols = node.attr("static"), node.attr("symbols")
        return latex_literal(" ".join(([str(static)] if static != 1 else []) + list(symbols)), PROD)

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """``N`` or ``2 * N``: a product, so ``v / (2 * N)`` keeps its parentheses."""
        text = size_text(node)
        return text, (20 if " * " in text else 100)

    @classmethod
    def infer(cls, *, static: int, symbols: tuple[str, ...]) -> tuple[Shape, str]:
        return (), "int64"


def count(shape: Shape) -> Expr:
    """Number of elements of ``shape``: a constant if static, else a symbolic size like ``N``."""
    static, symbols = size_of(shape)
    if not symbols:
        return as_expr(static)
    return Size.make(static=static, symbols=symbols)


def _check_reducible(op: str, x: Expr) -> None:
    if x.dtype == "bool" and op != "sum":
        raise DTypeError(f"{op}: cannot reduce a bool expression; cast it with .astype() first")


def sum(  # noqa: A001 - numpy's name
    x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False
) -> Expr:
    """Sum of elements over ``axis`` (None: all), as ``np.sum``."""
    x = as_expr(x)
    axes = normalize_axes("sum", axis, x.ndim)
    if not axes:
        return x
    return Sum.make(x, axis=axes, keepdims=bool(keepdims))


def max(  # noqa: A001 - numpy's name
    x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False
) -> Expr:
    """Maximum over ``axis`` (None: all), as ``np.max``."""
    x = as_expr(x)
    _check_reducible("max", x)
    axes = normalize_axes("max", axis, x.ndim)
    if not axes:
        return x
    return Max.make(x, axis=axes, keepdims=bool(keepdims))


def min(  # noqa: A001 - numpy's name
    x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False
) -> Expr:
    """Minimum over ``axis`` (None: all), as ``np.min``; built as ``-max(-x)``."""
    return -max(-as_expr(x), axis=axis, keepdims=keepdims)


def mean(x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
    """Mean over ``axis`` (None: all), as ``np.mean``; divides by ``N`` for a batch axis."""
    x = as_expr(x)
    _check_reducible("mean", x)
    axes = normalize_axes("mean", axis, x.ndim)
    total = sum(x, axis=axes, keepdims=keepdims)
    return total / count(tuple(x.shape[a] for a in axes))


def argmax(x: object, axis: int | None = None) -> Expr:
    """Index of the maximum along ``axis`` (None: of the flattened array), as ``np.argmax``."""
    x = as_expr(x)
    if axis is not None:
        (axis,) = normalize_axes("argmax", axis, x.ndim)
    return Argmax.make(x, axis=axis)


def argmin(x: object, axis: int | None = None) -> Expr:
    """Index of the minimum along ``axis`` (None: of the flattened array), as ``np.argmin``."""
    x = as_expr(x)
    if axis is not None:
        (axis,) = normalize_axes("argmin", axis, x.ndim)
    return Argmin.make(x, axis=axis)


def any(  # noqa: A001 - numpy's name
    x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False
) -> Expr:
    """Whether any element over ``axis`` (None: all) is true, as ``np.any`` (a bool result)."""
    x = as_expr(x, "any")
    axes = normalize_axes("any", axis, x.ndim)
    return AnyOf.make(x, axis=axes, keepdims=bool(keepdims))


def all(  # noqa: A001 - numpy's name
    x: object, axis: int | Sequence[int] | None = None, keepdims: bool = False
) -> Expr:
    """Whether every element over ``axis`` (None: all) is true, as ``np.all`` (a bool result)."""
    x = as_expr(x, "all")
    axes = normalize_axes("all", axis, x.ndim)
    return AllOf.make(x, axis=axes, keepdims=bool(keepdims))
