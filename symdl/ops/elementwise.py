"""Elementwise ops with numpy broadcasting: arithmetic, comparisons, `where`, unary math.

Each op is one class: shape rule, derivative rule (`vjp`, written with symdl ops so gradients are
again IR), its numpy template, and its other facts (`symdl.ops.base.Op`): its scalar form in
sympy, the ufunc that writes it into a buffer, its constant folding, the name of an unnamed value,
its math notation. Cotangents of broadcast operands are summed back to the operand's shape with
`sum_to`.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConstantError, DTypeError, ShapeError
from ..ir import Expr
from ..types import Shape, as_dtype, broadcast_shapes, format_shape, is_float, promote
from . import reduce as _reduce
from . import shape as _shape
from .base import (
    ATOM,
    FUNC,
    MAX_HINT,
    NEG,
    POSTFIX,
    PROD,
    SUM,
    Latex,
    Op,
    as_expr,
    is_weak,
    latex_call,
    register,
    require_float,
    scalar_value,
)

if TYPE_CHECKING:
    import sympy
else:
    from ..lazy_imports import sympy  # sympy runs on first use, not on import


def _sympy_codegen(module: str, name: str) -> Callable[..., sympy.Expr]:
    """The function ``name`` of ``sympy.codegen.<module>`` (log1p, expm1: the forms numpy
    computes without cancelling), imported on its first call, when sympy itself runs."""

    def call(*args: sympy.Expr) -> sympy.Expr:
        return getattr(importlib.import_module(f"sympy.codegen.{module}"), name)(*args)

    call.__name__ = name
    return call


_logaddexp = _sympy_codegen("numpy_nodes", "logaddexp")

# --------------------------------------------------------------------------- shared rules


class BinaryOp(Op):
    """Two operands, broadcast together; numeric dtypes promoted as numpy does."""

    broadcasts = True

    @classmethod
    def infer(cls, x: Expr, y: Expr) -> tuple[Shape, str]:
        shape = broadcast_shapes(cls.name, x.shape, y.shape)
        return shape, _promote(cls.name, x, y)


def _promote(op: str, *xs: Expr) -> str:
    strong = [x.dtype for x in xs if not is_weak(x)]
    weak = [x.dtype for x in xs if is_weak(x)]
    return promote(strong, weak)


def _binary(op: type[Op], x: object, y: object) -> Expr:
    x, y = as_expr(x, op.name), as_expr(y, op.name)
    if x.dtype == "bool" and y.dtype == "bool" and not op.bool_ok:
        raise DTypeError(f"{op.name}: both operands are bool; cast one with .astype('float32')")
    _check_weak_ints_fit(op.name, x, y)
    return op.make(x, y)


def _check_weak_ints_fit(op: str, *xs: Expr) -> None:
    """A Python int takes the other operand's integer dtype (NEP 50), so it must fit it.

    Otherwise numpy raises OverflowError only when the generated code runs (``k_int32 + 2**40``).
    """
    dtype = _promote(op, *xs)
    if np.dtype(dtype).kind not in "iu":
        return
    info = np.iinfo(dtype)
    for x in xs:
        if x.op.name == "constant" and x.attr("weak") and x.dtype in ("int32", "int64"):
            value = int(x.attr("value").array)
            if not info.min <= value <= info.max:
                raise ConstantError(
                    f"{op}: the Python int {value} does not fit {dtype}, the dtype of the other "
                    f"operand (numpy would raise when the code runs); cast that operand with "
                    f".astype('int64') or use a smaller number"
                )


class UnaryOp(Op):
    """One float operand; same shape and dtype out."""

    elementwise_math = True

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        require_float(cls.name, x)
        return x.shape, x.dtype

    @classmethod
    def jvp(cls, t: tuple[Expr], out: Expr, x: Expr, **attrs: Any) -> Expr | None:
        """The VJP rule on the tangent: a unary op's Jacobian is diagonal, so multiplying by it
        from the left or the right is the same product (the primals lifted to the batch)."""
        nb = _shape.batch_rank(t[0], x)
        return cls.vjp(t[0], _shape.with_batch(out, nb), _shape.with_batch(x, nb), **attrs)[0]


def sum_to(g: Expr, shape: Shape) -> Expr:
    """Sum a broadcast cotangent back to an operand's ``shape`` (the adjoint of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    ones = tuple(lead + i for i, d in enumerate(shape) if d == 1 and g.shape[lead + i] != 1)
    if not ones:
        return _reduce.sum(g, axis=tuple(range(lead)))
    summed = _reduce.sum(g, axis=tuple(range(lead)) + ones, keepdims=True)
    return summed if summed.shape == shape else _shape.reshape(summed, shape)


def _plus(a: Expr | None, b: Expr | None) -> Expr | None:
    """a + b where None stands for a zero tangent."""
    if a is None:
        return b
    return a if b is None else a + b


def _lifted(
    tangents: Sequence[Expr | None], inputs: Sequence[Expr], *values: Expr
) -> list[Expr]:
    """``values`` lifted to broadcast against the tangents of ``inputs`` (their batch axes)."""
    nb = next(_shape.batch_rank(t, x) for t, x in zip(tangents, inputs) if t is not None)
    return [_shape.with_batch(v, nb) for v in values]


# --------------------------------------------------------------------------- arithmetic


@register
class Add(BinaryOp):
    """x + y"""

    name = "add"
    numpy = "{0} + {1}"
    ufunc, inplace, fold = "np.add", "np.add({0}, {1}, out={out})", staticmethod(np.add)
    infix, precedence = "+", 10
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: a + b)
    hint = "total"  # not "sum": that names reductions (sum_x), and is a builtin
    latex = Latex("{0} + {1}", SUM, (SUM, SUM))

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g, x.shape), sum_to(g, y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        return _plus(*t)


@register
class Subtract(BinaryOp):
    """x - y"""

    name = "subtract"
    numpy = "{0} - {1}"
    ufunc, inplace = "np.subtract", "np.subtract({0}, {1}, out={out})"
    fold = staticmethod(np.subtract)
    infix, precedence = "-", 10
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: a - b)
    hint = "diff"
    latex = Latex("{0} - {1}", SUM, (SUM, SUM + 1))

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g, x.shape), sum_to(-g, y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        tx, ty = t
        return _plus(tx, None if ty is None else -ty)


@register
class Multiply(BinaryOp):
    """x * y"""

    name = "multiply"
    numpy = "{0} * {1}"
    ufunc, inplace = "np.multiply", "np.multiply({0}, {1}, out={out})"
    fold = staticmethod(np.multiply)
    infix, precedence = "*", 20
    bool_ok = True  # a mask times a mask
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: a * b)
    hint = "prod"

    @classmethod
    def name_hint(cls, inputs: Sequence[str], attrs: Mapping[str, Any]) -> str:
        """``scaled_m`` for a number times ``m`` (Adam's ``0.9 * m``); else ``prod``."""
        named = [a for a in inputs if a != "c" and a.isidentifier()]
        if len(named) == 1 and len(f"scaled_{named[0]}") <= MAX_HINT:
            return f"scaled_{named[0]}"
        return cls.hint

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""A scalar factor first, as by hand (``2 x``); else the Hadamard product ``\odot``."""
        a, b = node.inputs
        if _reads_as_scalar(a):
            return Latex(r"{0} \, {1}", PROD, (PROD, PROD + 1))
        if _reads_as_scalar(b):
            return Latex(r"{1} \, {0}", PROD, (PROD + 1, PROD))
        return Latex(r"{0} \odot {1}", PROD, (PROD, PROD + 1))

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g * y, x.shape), sum_to(g * x, y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        tx, ty = t
        xb, yb = _lifted(t, (x, y), x, y)
        return _plus(None if tx is None else tx * yb, None if ty is None else xb * ty)


def _reads_as_scalar(x: Expr) -> bool:
    """Whether ``x`` reads as a scalar in math notation: one element, or a constant or size."""
    while x.op.shows_as_operand and x.inputs:
        x = x.inputs[0]
    return all(d == 1 for d in x.shape) or x.op.name in ("constant", "size")


@register
class Divide(BinaryOp):
    """x / y (true division: integer operands give float64, as in numpy)"""

    name = "divide"
    numpy = "{0} / {1}"
    ufunc, inplace = "np.divide", "np.divide({0}, {1}, out={out})"
    fold = staticmethod(np.divide)
    infix, precedence = "/", 20
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: a / b)
    hint = "ratio"
    latex = Latex(r"\frac{{{0}}}{{{1}}}", ATOM)

    @classmethod
    def infer(cls, x: Expr, y: Expr) -> tuple[Shape, str]:
        shape, dtype = super().infer(x, y)
        return shape, dtype if is_float(dtype) else "float64"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g / y, x.shape), sum_to(-g * out / y, y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        tx, ty = t
        yb, outb = _lifted(t, (x, y), y, out)
        # (tx - ty * out) / y: one division, whichever tangents there are.
        top = _plus(tx, None if ty is None else -(ty * outb))
        return None if top is None else top / yb


def _py_number(value: float, dtype: str) -> int | float:
    """``value`` as the Python number a user would write for a constant of ``dtype``."""
    return int(value) if dtype.startswith("int") else float(value)


@register
class Power(BinaryOp):
    """x ** y"""

    name = "power"
    numpy = "{0} ** {1}"
    ufunc, inplace = "np.power", "np.power({0}, {1}, out={out})"
    fold = staticmethod(np.power)
    infix, precedence = "**", 40
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: a**b)
    hint = "power"  # numpy's name; "pow" is a builtin, escaped to pow_
    latex = Latex("{{{0}}}^{{{1}}}", POSTFIX, (ATOM, 0))

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        # A Python-number exponent stays one: `x ** (2 - 1)` with a strong int64 1 would make a
        # float32 gradient float64 (numpy's promotion) and cost a cast back.
        exponent = scalar_value(y) if is_weak(y) else None
        lowered = as_expr(_py_number(exponent - 1, y.dtype)) if exponent is not None else y - 1
        return sum_to(g * y * x**lowered, x.shape), sum_to(g * out * log(x), y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        tx, ty = t
        xb, yb, outb = _lifted(t, (x, y), x, y, out)
        exponent = scalar_value(y) if is_weak(y) else None  # as in vjp: keep a Python number
        lowered = as_expr(_py_number(exponent - 1, y.dtype)) if exponent is not None else yb - 1
        return _plus(None if tx is None else tx * (yb * xb**lowered),
                     None if ty is None else ty * (outb * log(xb)))


@register
class Maximum(BinaryOp):
    """np.maximum(x, y); ties send the gradient to x"""

    name = "maximum"
    numpy = "np.maximum({0}, {1})"
    ufunc, inplace = "np.maximum", "np.maximum({0}, {1}, out={out})"
    fold = staticmethod(np.maximum)
    bool_ok = True  # logical or
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: sympy.Max(a, b))
    hint = "maximum_{0}"
    latex = Latex(r"\max\left({0}, {1}\right)", FUNC)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        x_wins = greater_equal(x, y)
        return sum_to(where(x_wins, g, 0), x.shape), sum_to(where(x_wins, 0, g), y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        xb, yb = _lifted(t, (x, y), x, y)
        return _choose(greater_equal(xb, yb), *t)


@register
class Minimum(BinaryOp):
    """np.minimum(x, y); ties send the gradient to x"""

    name = "minimum"
    numpy = "np.minimum({0}, {1})"
    ufunc, inplace = "np.minimum", "np.minimum({0}, {1}, out={out})"
    fold = staticmethod(np.minimum)
    bool_ok = True  # logical and
    elementwise_math, sympy_form = True, staticmethod(lambda a, b: sympy.Min(a, b))
    hint = "minimum_{0}"
    latex = Latex(r"\min\left({0}, {1}\right)", FUNC)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        x_wins = less_equal(x, y)
        return sum_to(where(x_wins, g, 0), x.shape), sum_to(where(x_wins, 0, g), y.shape)

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, x: Expr, y: Expr) -> Expr | None:
        xb, yb = _lifted(t, (x, y), x, y)
        return _choose(less_equal(xb, yb), *t)


def _choose(first: Expr, a: Expr | None, b: Expr | None) -> Expr:
    """The tangent ``a`` where ``first`` holds, else ``b`` (None: zero)."""
    return where(first, 0 if a is None else a, 0 if b is None else b)


def add(x: object, y: object) -> Expr:
    """Elementwise x + y with broadcasting."""
    return _binary(Add, x, y)


def subtract(x: object, y: object) -> Expr:
    """Elementwise x - y with broadcasting."""
    return _binary(Subtract, x, y)


def multiply(x: object, y: object) -> Expr:
    """Elementwise x * y with broadcasting."""
    return _binary(Multiply, x, y)


def divide(x: object, y: object) -> Expr:
    """Elementwise x / y with broadcasting."""
    return _binary(Divide, x, y)


def power(x: object, y: object) -> Expr:
    """Elementwise x ** y with broadcasting."""
    return _binary(Power, x, y)


def maximum(x: object, y: object) -> Expr:
    """Elementwise maximum, as ``np.maximum``."""
    return _binary(Maximum, x, y)


def minimum(x: object, y: object) -> Expr:
    """Elementwise minimum, as ``np.minimum``."""
    return _binary(Minimum, x, y)


# --------------------------------------------------------------------------- comparisons


class Comparison(BinaryOp):
    """Elementwise comparison: bool result, no gradient."""

    differentiable = False
    precedence = 5

    @classmethod
    def infer(cls, x: Expr, y: Expr) -> tuple[Shape, str]:
        return broadcast_shapes(cls.name, x.shape, y.shape), "bool"


@register
class Less(Comparison):
    """x < y"""

    name, numpy, infix = "less", "{0} < {1}", "<"
    hint, latex = "less_{0}", Latex(r"\left[{0} < {1}\right]", ATOM)


@register
class LessEqual(Comparison):
    """x <= y"""

    name, numpy, infix = "less_equal", "{0} <= {1}", "<="
    hint, latex = "less_equal_{0}", Latex(r"\left[{0} \le {1}\right]", ATOM)


@register
class Greater(Comparison):
    """x > y"""

    name, numpy, infix = "greater", "{0} > {1}", ">"
    hint, latex = "greater_{0}", Latex(r"\left[{0} > {1}\right]", ATOM)


@register
class GreaterEqual(Comparison):
    """x >= y"""

    name, numpy, infix = "greater_equal", "{0} >= {1}", ">="
    hint, latex = "greater_equal_{0}", Latex(r"\left[{0} \ge {1}\right]", ATOM)


@register
class Equal(Comparison):
    """x == y (elementwise; Python's ``==`` on expressions keeps its usual meaning)"""

    name, numpy, infix = "equal", "{0} == {1}", "=="
    bool_ok = True
    hint, latex = "equal_{0}", Latex(r"\left[{0} = {1}\right]", ATOM)


@register
class NotEqual(Comparison):
    """x != y (elementwise)"""

    name, numpy, infix = "not_equal", "{0} != {1}", "!="
    bool_ok = True  # exclusive or
    hint, latex = "not_equal_{0}", Latex(r"\left[{0} \ne {1}\right]", ATOM)


def less(x: object, y: object) -> Expr:
    """Elementwise x < y (bool)."""
    return _binary(Less, x, y)


def less_equal(x: object, y: object) -> Expr:
    """Elementwise x <= y (bool)."""
    return _binary(LessEqual, x, y)


def greater(x: object, y: object) -> Expr:
    """Elementwise x > y (bool)."""
    return _binary(Greater, x, y)


def greater_equal(x: object, y: object) -> Expr:
    """Elementwise x >= y (bool)."""
    return _binary(GreaterEqual, x, y)


def equal(x: object, y: object) -> Expr:
    """Elementwise x == y (bool)."""
    return _binary(Equal, x, y)


def not_equal(x: object, y: object) -> Expr:
    """Elementwise x != y (bool)."""
    return _binary(NotEqual, x, y)


# --------------------------------------------------------------------------- where


@register
class Where(Op):
    """np.where(cond, x, y): x where cond holds, else y"""

    name = "where"
    numpy = "np.where({0}, {1}, {2})"
    broadcasts = True
    hint = "where_{0}"
    latex = Latex(
        r"\begin{{cases}} {1} & \text{{if }} {0} \\ {2} & \text{{otherwise}} \end{{cases}}", ATOM
    )
    latex_rule = (
        r"C = \begin{cases} A & \text{if } k \\ B & \text{else}\end{cases} \;\Rightarrow\; "
        r"\bar{A} = [k] \odot \bar{C}, \; \bar{B} = [\lnot k] \odot \bar{C}"
    )

    @classmethod
    def infer(cls, cond: Expr, x: Expr, y: Expr) -> tuple[Shape, str]:
        if cond.dtype != "bool":
            raise DTypeError(
                f"where: the condition must be bool, got {cond.dtype} of shape "
                f"{format_shape(cond.shape)}; build it with a comparison such as x > 0"
            )
        return broadcast_shapes("where", cond.shape, x.shape, y.shape), _promote("where", x, y)

    @staticmethod
    def vjp(g: Expr, out: Expr, cond: Expr, x: Expr, y: Expr) -> tuple[None, Expr, Expr]:
        return None, sum_to(where(cond, g, 0), x.shape), sum_to(where(cond, 0, g), y.shape)

    @staticmethod
    def jvp(
        t: tuple[Expr | None, Expr | None, Expr | None], out: Expr, cond: Expr, x: Expr, y: Expr
    ) -> Expr | None:
        (cond_b,) = _lifted(t, (cond, x, y), cond)  # cond is bool: it has no tangent
        return _choose(cond_b, t[1], t[2])


def where(cond: object, x: object, y: object) -> Expr:
    """Elementwise choice, as ``np.where(cond, x, y)``; differentiable in x and y."""
    x, y = as_expr(x, "where"), as_expr(y, "where")
    _check_weak_ints_fit("where", x, y)
    return Where.make(as_expr(cond, "where"), x, y)


# --------------------------------------------------------------------------- unary math


@register
class Negative(UnaryOp):
    """-x"""

    name = "negative"
    numpy = "-{0}"
    ufunc, inplace = "np.negative", "np.negative({0}, out={out})"
    fold = staticmethod(np.negative)
    infix, precedence = "-", 35
    sympy_form = staticmethod(lambda a: -a)
    hint = "neg_{0}"
    latex = Latex("-{0}", NEG, (PROD,))

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        if x.dtype == "bool":
            raise DTypeError("negative: cannot negate a bool expression; cast it first")
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (-g,)


@register
class Exp(UnaryOp):
    """e ** x"""

    name, numpy = "exp", "np.exp({0})"
    ufunc, inplace, fold = "np.exp", "np.exp({0}, out={out})", staticmethod(np.exp)
    sympy_form = staticmethod(lambda a: sympy.exp(a))
    hint, latex = "exp_{0}", Latex("e^{{{0}}}", POSTFIX)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * out,)


@register
class Log(UnaryOp):
    """natural logarithm"""

    name, numpy = "log", "np.log({0})"
    ufunc, inplace, fold = "np.log", "np.log({0}, out={out})", staticmethod(np.log)
    sympy_form = staticmethod(lambda a: sympy.log(a))
    hint, latex = "log_{0}", latex_call(r"\log")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / x,)


@register
class Log1p(UnaryOp):
    """log(1 + x), accurate for small x"""

    name, numpy = "log1p", "np.log1p({0})"
    ufunc, inplace = "np.log1p", "np.log1p({0}, out={out})"
    sympy_form = staticmethod(lambda a: sympy.log(1 + a))
    # np.log1p: exact for small x, where 1 + x rounds
    sympy_stable = staticmethod(_sympy_codegen("cfunctions", "log1p"))
    hint, latex = "log1p_{0}", latex_call(r"\operatorname{log1p}")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / (x + 1),)


@register
class Expm1(UnaryOp):
    """e ** x - 1, accurate for small x"""

    name, numpy = "expm1", "np.expm1({0})"
    ufunc, inplace, fold = "np.expm1", "np.expm1({0}, out={out})", staticmethod(np.expm1)
    sympy_form = staticmethod(lambda a: sympy.exp(a) - 1)
    # np.expm1: exact for small x, where e**x - 1 cancels
    sympy_stable = staticmethod(_sympy_codegen("cfunctions", "expm1"))
    hint, latex = "expm1_{0}", Latex("e^{{{0}}} - 1", SUM)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * (out + 1),)  # e ** x, from the value already computed


@register
class Sqrt(UnaryOp):
    """square root"""

    name, numpy = "sqrt", "np.sqrt({0})"
    ufunc, inplace, fold = "np.sqrt", "np.sqrt({0}, out={out})", staticmethod(np.sqrt)
    sympy_form = staticmethod(lambda a: sympy.sqrt(a))
    hint, latex = "sqrt_{0}", Latex(r"\sqrt{{{0}}}", ATOM)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / (out * 2),)


@register
class Square(UnaryOp):
    """x ** 2"""

    name, numpy = "square", "np.square({0})"
    ufunc, inplace, fold = "np.square", "np.square({0}, out={out})", staticmethod(np.square)
    sympy_form = staticmethod(lambda a: a**2)
    hint, latex = "square_{0}", Latex("{{{0}}}^{{2}}", POSTFIX, (ATOM,))

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * x * 2,)


@register
class Sin(UnaryOp):
    """sine"""

    name, numpy = "sin", "np.sin({0})"
    ufunc, inplace = "np.sin", "np.sin({0}, out={out})"
    sympy_form = staticmethod(lambda a: sympy.sin(a))
    hint, latex = "sin_{0}", latex_call(r"\sin")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * cos(x),)


@register
class Cos(UnaryOp):
    """cosine"""

    name, numpy = "cos", "np.cos({0})"
    ufunc, inplace = "np.cos", "np.cos({0}, out={out})"
    sympy_form = staticmethod(lambda a: sympy.cos(a))
    hint, latex = "cos_{0}", latex_call(r"\cos")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (-(g * sin(x)),)


@register
class Tanh(UnaryOp):
    """hyperbolic tangent"""

    name, numpy = "tanh", "np.tanh({0})"
    ufunc, inplace = "np.tanh", "np.tanh({0}, out={out})"
    sympy_form = staticmethod(lambda a: sympy.tanh(a))
    hint, latex = "tanh_{0}", latex_call(r"\tanh")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * (1 - out * out),)


@register
class Sigmoid(UnaryOp):
    """1 / (1 + e ** -x), computed through tanh so no exp can overflow"""

    name, numpy = "sigmoid", "0.5 + 0.5 * np.tanh(0.5 * {0})"
    sympy_form = staticmethod(lambda a: 1 / (1 + sympy.exp(-a)))
    # Through tanh, which never overflows (exp(-x) does for x < -88 in float32).
    sympy_stable = staticmethod(
        lambda a: sympy.Float(0.5) + sympy.Float(0.5) * sympy.tanh(a / 2)
    )
    hint, latex = "sigmoid_{0}", latex_call(r"\sigma")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * out * (1 - out),)


@register
class Softplus(UnaryOp):
    """log(1 + e ** x), computed as np.logaddexp(0, x) so it never overflows"""

    name, numpy = "softplus", "np.logaddexp(0, {0})"
    ufunc, inplace = "np.logaddexp", "np.logaddexp(0, {0}, out={out})"
    sympy_form = staticmethod(lambda a: sympy.log(1 + sympy.exp(a)))
    # np.logaddexp(0, x): log(1 + exp(x)) without computing exp(x), which overflows
    sympy_stable = staticmethod(lambda a: _logaddexp(0, a))
    hint, latex = "softplus_{0}", latex_call(r"\operatorname{softplus}")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * sigmoid(x),)


@register
class Relu(UnaryOp):
    """max(x, 0)"""

    name, numpy = "relu", "np.maximum({0}, 0)"
    ufunc, inplace = "np.maximum", "np.maximum({0}, 0, out={out})"
    sympy_form = staticmethod(lambda a: sympy.Max(a, 0))
    hint, latex = "relu_{0}", latex_call(r"\operatorname{relu}")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        # A multiply by the boolean mask is several times faster than np.where. The mask is
        # taken from the output (relu(x) > 0 exactly where x > 0, NaN and -0.0 included), so
        # the pre-activation is dead after the forward pass and relu can overwrite it.
        return (g * greater(out, 0),)


@register
class Abs(UnaryOp):
    """|x|; the derivative at 0 is taken as 0"""

    name, numpy = "abs", "np.abs({0})"
    ufunc, inplace = "np.abs", "np.abs({0}, out={out})"
    sympy_form = staticmethod(lambda a: sympy.Abs(a))
    hint, latex = "abs_{0}", Latex(r"\left|{0}\right|", ATOM)

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * sign(x),)


@register
class Sign(UnaryOp):
    """-1, 0 or 1 (no gradient)"""

    name, numpy = "sign", "np.sign({0})"
    inplace = "np.sign({0}, out={out})"
    differentiable = False
    elementwise_math = False  # a step function: nothing to fuse or differentiate
    hint, latex = "sign_{0}", latex_call(r"\operatorname{sign}")

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, x.dtype


@register
class Cast(Op):
    """x.astype(dtype); the gradient flows between float dtypes only"""

    name = "cast"
    # Not fused (a sympy body computes in one dtype) but a derivation shows d x / d x = 1.
    sympy_form = staticmethod(lambda a, *, dtype: a)
    hint, shows_as_operand = "{0}", True

    @classmethod
    def infer(cls, x: Expr, *, dtype: str) -> tuple[Shape, str]:
        return x.shape, dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, dtype: str) -> tuple[Expr | None]:
        return (cast(g, x.dtype) if is_float(x.dtype) and is_float(dtype) else None,)

    @staticmethod
    def jvp(t: tuple[Expr | None], out: Expr, x: Expr, *, dtype: str) -> Expr | None:
        return cast(t[0], dtype) if is_float(x.dtype) and is_float(dtype) else None


def _unary(op: type[Op], x: object) -> Expr:
    return op.make(as_expr(x, op.name))


def negative(x: object) -> Expr:
    """Elementwise -x."""
    return _unary(Negative, x)


def exp(x: object) -> Expr:
    """Elementwise e ** x."""
    return _unary(Exp, x)


def log(x: object) -> Expr:
    """Elementwise natural logarithm."""
    return _unary(Log, x)


def log1p(x: object) -> Expr:
    """Elementwise log(1 + x), accurate for small x."""
    return _unary(Log1p, x)


def expm1(x: object) -> Expr:
    """Elementwise e ** x - 1, accurate for small x (as ``np.expm1``)."""
    return _unary(Expm1, x)


def sqrt(x: object) -> Expr:
    """Elementwise square root."""
    return _unary(Sqrt, x)


def square(x: object) -> Expr:
    """Elementwise x ** 2."""
    return _unary(Square, x)


def sin(x: object) -> Expr:
    """Elementwise sine."""
    return _unary(Sin, x)


def cos(x: object) -> Expr:
    """Elementwise cosine."""
    return _unary(Cos, x)


def tanh(x: object) -> Expr:
    """Elementwise hyperbolic tangent."""
    return _unary(Tanh, x)


def sigmoid(x: object) -> Expr:
    """Elementwise logistic function 1 / (1 + e ** -x), computed stably."""
    return _unary(Sigmoid, x)


def softplus(x: object) -> Expr:
    """Elementwise log(1 + e ** x), computed stably."""
    return _unary(Softplus, x)


def relu(x: object) -> Expr:
    """Elementwise max(x, 0)."""
    return _unary(Relu, x)


def abs(x: object) -> Expr:  # noqa: A001 - numpy's name
    """Elementwise absolute value."""
    return _unary(Abs, x)


def sign(x: object) -> Expr:
    """Elementwise sign (-1, 0, 1); not differentiable."""
    return _unary(Sign, x)


def cast(x: object, dtype: object) -> Expr:
    """Convert to ``dtype`` (``x.astype(dtype)``); a no-op when the dtype already matches."""
    x = as_expr(x, "cast")
    name = as_dtype(dtype)
    return x if x.dtype == name else Cast.make(x, dtype=name)


# --------------------------------------------------------------------------- more unary math
# log2, tan, arctan; floor and round (zero gradient, as in JAX); clip; stop_gradient.


@register
class Log2(UnaryOp):
    """base-2 logarithm"""

    name, numpy = "log2", "np.log2({0})"
    ufunc, inplace, fold = "np.log2", "np.log2({0}, out={out})", staticmethod(np.log2)
    sympy_form = staticmethod(lambda a: sympy.log(a) / sympy.log(2))
    # np.log2: exact for powers of two
    sympy_stable = staticmethod(_sympy_codegen("cfunctions", "log2"))
    hint, latex = "log2_{0}", latex_call(r"\log_2")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / (x * math.log(2)),)


@register
class Tan(UnaryOp):
    """tangent"""

    name, numpy = "tan", "np.tan({0})"
    ufunc, inplace, fold = "np.tan", "np.tan({0}, out={out})", staticmethod(np.tan)
    sympy_form = staticmethod(lambda a: sympy.tan(a))
    hint, latex = "tan_{0}", latex_call(r"\tan")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * (1 + out * out),)  # sec(x) ** 2, from the value already computed


@register
class Arctan(UnaryOp):
    """inverse tangent"""

    name, numpy = "arctan", "np.arctan({0})"
    ufunc, inplace, fold = "np.arctan", "np.arctan({0}, out={out})", staticmethod(np.arctan)
    sympy_form = staticmethod(lambda a: sympy.atan(a))
    hint, latex = "arctan_{0}", latex_call(r"\arctan")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / (1 + x * x),)


@register
class Floor(UnaryOp):
    """the largest integer <= x, as a float (zero gradient, as in JAX)"""

    name, numpy = "floor", "np.floor({0})"
    ufunc, inplace, fold = "np.floor", "np.floor({0}, out={out})", staticmethod(np.floor)
    # A step function: its derivative is 0 almost everywhere, so no gradient flows (JAX's
    # convention); it still fuses (`np.floor(x * 4) / 4` is one statement).
    differentiable = False
    sympy_form = staticmethod(lambda a: sympy.floor(a))
    hint, latex = "floor_{0}", Latex(r"\lfloor {0} \rfloor", ATOM)


@register
class Round(UnaryOp):
    """x rounded to the nearest integer, halves to even (as np.round); zero gradient"""

    name, numpy = "round", "np.round({0})"
    inplace, fold = "np.round({0}, out={out})", staticmethod(np.round)
    differentiable = False
    # sympy has no round-half-to-even function, so a rounding is a statement of its own.
    elementwise_math = False
    hint, latex = "round_{0}", latex_call(r"\operatorname{round}")


@register
class Clip(Op):
    """np.clip(x, lo, hi): min(max(x, lo), hi)

    The gradient goes to x where lo <= x <= hi (both ends included, as torch.clamp; JAX splits
    a tie between x and the bound), to lo where x < lo, and to hi where x > hi (or lo > hi,
    where numpy's result is hi).
    """

    name = "clip"
    numpy = "np.clip({0}, {1}, {2})"
    broadcasts = True
    elementwise_math = True
    sympy_form = staticmethod(lambda a, lo, hi: sympy.Min(sympy.Max(a, lo), hi))
    hint = "clip_{0}"
    latex = Latex(r"\operatorname{{clip}}\left({0}, {1}, {2}\right)", FUNC)

    @classmethod
    def infer(cls, x: Expr, lo: Expr, hi: Expr) -> tuple[Shape, str]:
        for v in (x, lo, hi):
            if v.dtype == "bool":
                raise DTypeError(
                    f"clip: operands must be numbers, got a bool of shape "
                    f"{format_shape(v.shape)}; cast it with .astype('float32')"
                )
        shape = broadcast_shapes("clip", x.shape, lo.shape, hi.shape)
        return shape, _promote("clip", x, lo, hi)

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, lo: Expr, hi: Expr) -> tuple[Expr, Expr, Expr]:
        inside = logical_and(greater_equal(x, lo), less_equal(x, hi))
        below = logical_and(less(x, lo), less_equal(lo, hi))
        return (
            sum_to(where(inside, g, 0), x.shape),
            sum_to(where(below, g, 0), lo.shape),
            sum_to(where(logical_or(inside, below), 0, g), hi.shape),
        )

    @staticmethod
    def jvp(
        t: tuple[Expr | None, Expr | None, Expr | None], out: Expr, x: Expr, lo: Expr, hi: Expr
    ) -> Expr:
        # The tangent of whichever of x, lo, hi the value is, with the same ties as vjp.
        inside = logical_and(greater_equal(x, lo), less_equal(x, hi))
        below = logical_and(less(x, lo), less_equal(lo, hi))
        inside_b, below_b = _lifted(t, (x, lo, hi), inside, below)
        tx, tlo, thi = (0 if ti is None else ti for ti in t)
        return where(inside_b, tx, where(below_b, tlo, thi))


@register
class StopGradient(Op):
    """x, through which no gradient flows (jax.lax.stop_gradient)

    The op is kept until differentiation is done and lowered to ``x`` itself before printing,
    so generated code computes nothing for it.
    """

    name = "stop_gradient"
    differentiable = False
    hint = "{0}"
    latex = latex_call(r"\operatorname{sg}")

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, x.dtype

    @staticmethod
    def expand(x: Expr) -> Expr:
        return x


def log2(x: object) -> Expr:
    """Elementwise base-2 logarithm (as ``np.log2``)."""
    return _unary(Log2, x)


def tan(x: object) -> Expr:
    """Elementwise tangent (as ``np.tan``)."""
    return _unary(Tan, x)


def arctan(x: object) -> Expr:
    """Elementwise inverse tangent (as ``np.arctan``)."""
    return _unary(Arctan, x)


def floor(x: object) -> Expr:
    """Elementwise floor (as ``np.floor``); its gradient is zero, as in JAX."""
    return _unary(Floor, x)


def round(x: object) -> Expr:  # noqa: A001 - numpy's name
    """Elementwise rounding to the nearest integer, halves to even (as ``np.round`` with
    ``decimals=0``); its gradient is zero, as in JAX."""
    return _unary(Round, x)


def clip(x: object, lo: object, hi: object) -> Expr:
    """Elementwise ``min(max(x, lo), hi)``, as ``np.clip(x, lo, hi)``.

    ``lo`` and ``hi`` are numbers or expressions broadcasting against ``x``; one of them may be
    None (no bound on that side). The gradient reaches ``x`` where ``lo <= x <= hi``, ends
    included (see `Clip`).

    Raises:
        ShapeError: if both bounds are None (numpy raises too), or the shapes do not broadcast.
    """
    if lo is None and hi is None:
        raise ShapeError("clip: lo and hi are both None; give at least one bound")
    x = as_expr(x, "clip")
    if lo is None:
        return minimum(x, hi)
    if hi is None:
        return maximum(x, lo)
    lo, hi = as_expr(lo, "clip"), as_expr(hi, "clip")
    _check_weak_ints_fit("clip", x, lo, hi)
    return Clip.make(x, lo, hi)


def stop_gradient(x: object) -> Expr:
    """``x`` itself, with no gradient flowing through it (as ``jax.lax.stop_gradient``).

    ``grad`` treats the value as a constant; the generated code uses ``x`` as it is.
    """
    return StopGradient.make(as_expr(x, "stop_gradient"))


# --------------------------------------------------------------------------- logic
# Bool results, no gradient: isnan, logical_and, logical_or, logical_not (numpy's, which take any
# numbers and read nonzero as true).


@register
class Isnan(Op):
    """np.isnan(x): whether each entry is NaN"""

    name, numpy = "isnan", "np.isnan({0})"
    fold = staticmethod(np.isnan)
    differentiable = False
    hint, latex = "isnan_{0}", latex_call(r"\operatorname{isnan}")

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, "bool"  # any dtype, as numpy: integers and bools are never NaN


class LogicalBinary(Comparison):
    """np.logical_and / np.logical_or: bool result, any numeric or bool operands."""

    bool_ok = True


@register
class LogicalAnd(LogicalBinary):
    """x and y, elementwise"""

    name, numpy = "logical_and", "np.logical_and({0}, {1})"
    fold = staticmethod(np.logical_and)
    hint, latex = "logical_and_{0}", Latex(r"{0} \land {1}", PROD, (PROD + 1, PROD + 1))


@register
class LogicalOr(LogicalBinary):
    """x or y, elementwise"""

    name, numpy = "logical_or", "np.logical_or({0}, {1})"
    fold = staticmethod(np.logical_or)
    hint, latex = "logical_or_{0}", Latex(r"{0} \lor {1}", SUM, (SUM + 1, SUM + 1))


@register
class LogicalNot(Op):
    """not x, elementwise"""

    name, numpy = "logical_not", "np.logical_not({0})"
    fold = staticmethod(np.logical_not)
    differentiable = False
    hint, latex = "not_{0}", Latex(r"\lnot {0}", NEG, (ATOM,))

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, "bool"


def isnan(x: object) -> Expr:
    """Elementwise test for NaN (bool), as ``np.isnan``."""
    return Isnan.make(as_expr(x, "isnan"))


def logical_and(x: object, y: object) -> Expr:
    """Elementwise logical and (bool), as ``np.logical_and``; numbers read nonzero as true."""
    return _binary(LogicalAnd, x, y)


def logical_or(x: object, y: object) -> Expr:
    """Elementwise logical or (bool), as ``np.logical_or``; numbers read nonzero as true."""
    return _binary(LogicalOr, x, y)


def logical_not(x: object) -> Expr:
    """Elementwise logical not (bool), as ``np.logical_not``; numbers read nonzero as true."""
    return LogicalNot.make(as_expr(x, "logical_not"))
