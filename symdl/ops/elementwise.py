"""Elementwise ops with numpy broadcasting: arithmetic, comparisons, `where`, unary math.

Each op is one class: shape rule, derivative rule (`vjp`, written with symdl ops so gradients are
again IR), and its numpy template. Cotangents of broadcast operands are summed back to the
operand's shape with `sum_to`.
"""

from __future__ import annotations

from ..errors import DTypeError
from ..ir import Expr
from ..types import Shape, as_dtype, broadcast_shapes, format_shape, is_float, promote
from . import reduce as _reduce
from . import shape as _shape
from .base import Op, as_expr, is_weak, register, require_float, scalar_value

# --------------------------------------------------------------------------- shared rules


class BinaryOp(Op):
    """Two operands, broadcast together; numeric dtypes promoted as numpy does."""

    @classmethod
    def infer(cls, x: Expr, y: Expr) -> tuple[Shape, str]:
        shape = broadcast_shapes(cls.name, x.shape, y.shape)
        return shape, _promote(cls.name, x, y)


def _promote(op: str, *xs: Expr) -> str:
    strong = [x.dtype for x in xs if not is_weak(x)]
    weak = [x.dtype for x in xs if is_weak(x)]
    return promote(strong, weak)


def _binary(op: type[Op], x: object, y: object) -> Expr:
    x, y = as_expr(x), as_expr(y)
    if x.dtype == "bool" and y.dtype == "bool" and op.name not in _BOOL_OK:
        raise DTypeError(f"{op.name}: both operands are bool; cast one with .astype('float32')")
    return op.make(x, y)


_BOOL_OK = {"multiply", "equal", "not_equal", "maximum", "minimum"}


class UnaryOp(Op):
    """One float operand; same shape and dtype out."""

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        require_float(cls.name, x)
        return x.shape, x.dtype


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


# --------------------------------------------------------------------------- arithmetic


@register
class Add(BinaryOp):
    """x + y"""

    name = "add"
    numpy = "{0} + {1}"
    inplace = "np.add({0}, {1}, out={out})"
    infix, precedence = "+", 10

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g, x.shape), sum_to(g, y.shape)


@register
class Subtract(BinaryOp):
    """x - y"""

    name = "subtract"
    numpy = "{0} - {1}"
    inplace = "np.subtract({0}, {1}, out={out})"
    infix, precedence = "-", 10

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g, x.shape), sum_to(-g, y.shape)


@register
class Multiply(BinaryOp):
    """x * y"""

    name = "multiply"
    numpy = "{0} * {1}"
    inplace = "np.multiply({0}, {1}, out={out})"
    infix, precedence = "*", 20

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g * y, x.shape), sum_to(g * x, y.shape)


@register
class Divide(BinaryOp):
    """x / y (true division: integer operands give float64, as in numpy)"""

    name = "divide"
    numpy = "{0} / {1}"
    inplace = "np.divide({0}, {1}, out={out})"
    infix, precedence = "/", 20

    @classmethod
    def infer(cls, x: Expr, y: Expr) -> tuple[Shape, str]:
        shape, dtype = super().infer(x, y)
        return shape, dtype if is_float(dtype) else "float64"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        return sum_to(g / y, x.shape), sum_to(-g * out / y, y.shape)


def _py_number(value: float, dtype: str) -> int | float:
    """``value`` as the Python number a user would write for a constant of ``dtype``."""
    return int(value) if dtype.startswith("int") else float(value)


@register
class Power(BinaryOp):
    """x ** y"""

    name = "power"
    numpy = "{0} ** {1}"
    inplace = "np.power({0}, {1}, out={out})"
    infix, precedence = "**", 40

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        # A Python-number exponent stays one: `x ** (2 - 1)` with a strong int64 1 would make a
        # float32 gradient float64 (numpy's promotion) and cost a cast back.
        exponent = scalar_value(y) if is_weak(y) else None
        lowered = as_expr(_py_number(exponent - 1, y.dtype)) if exponent is not None else y - 1
        return sum_to(g * y * x**lowered, x.shape), sum_to(g * out * log(x), y.shape)


@register
class Maximum(BinaryOp):
    """np.maximum(x, y); ties send the gradient to x"""

    name = "maximum"
    numpy = "np.maximum({0}, {1})"
    inplace = "np.maximum({0}, {1}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        x_wins = greater_equal(x, y)
        return sum_to(where(x_wins, g, 0), x.shape), sum_to(where(x_wins, 0, g), y.shape)


@register
class Minimum(BinaryOp):
    """np.minimum(x, y); ties send the gradient to x"""

    name = "minimum"
    numpy = "np.minimum({0}, {1})"
    inplace = "np.minimum({0}, {1}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, y: Expr) -> tuple[Expr, Expr]:
        x_wins = less_equal(x, y)
        return sum_to(where(x_wins, g, 0), x.shape), sum_to(where(x_wins, 0, g), y.shape)


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


@register
class LessEqual(Comparison):
    """x <= y"""

    name, numpy, infix = "less_equal", "{0} <= {1}", "<="


@register
class Greater(Comparison):
    """x > y"""

    name, numpy, infix = "greater", "{0} > {1}", ">"


@register
class GreaterEqual(Comparison):
    """x >= y"""

    name, numpy, infix = "greater_equal", "{0} >= {1}", ">="


@register
class Equal(Comparison):
    """x == y (elementwise; Python's ``==`` on expressions keeps its usual meaning)"""

    name, numpy, infix = "equal", "{0} == {1}", "=="


@register
class NotEqual(Comparison):
    """x != y (elementwise)"""

    name, numpy, infix = "not_equal", "{0} != {1}", "!="


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


def where(cond: object, x: object, y: object) -> Expr:
    """Elementwise choice, as ``np.where(cond, x, y)``; differentiable in x and y."""
    return Where.make(as_expr(cond), as_expr(x), as_expr(y))


# --------------------------------------------------------------------------- unary math


@register
class Negative(UnaryOp):
    """-x"""

    name = "negative"
    numpy = "-{0}"
    inplace = "np.negative({0}, out={out})"
    infix, precedence = "-", 35

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
    inplace = "np.exp({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * out,)


@register
class Log(UnaryOp):
    """natural logarithm"""

    name, numpy = "log", "np.log({0})"
    inplace = "np.log({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / x,)


@register
class Log1p(UnaryOp):
    """log(1 + x), accurate for small x"""

    name, numpy = "log1p", "np.log1p({0})"
    inplace = "np.log1p({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / (x + 1),)


@register
class Sqrt(UnaryOp):
    """square root"""

    name, numpy = "sqrt", "np.sqrt({0})"
    inplace = "np.sqrt({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g / (out * 2),)


@register
class Square(UnaryOp):
    """x ** 2"""

    name, numpy = "square", "np.square({0})"
    inplace = "np.square({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * x * 2,)


@register
class Sin(UnaryOp):
    """sine"""

    name, numpy = "sin", "np.sin({0})"
    inplace = "np.sin({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * cos(x),)


@register
class Cos(UnaryOp):
    """cosine"""

    name, numpy = "cos", "np.cos({0})"
    inplace = "np.cos({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (-(g * sin(x)),)


@register
class Tanh(UnaryOp):
    """hyperbolic tangent"""

    name, numpy = "tanh", "np.tanh({0})"
    inplace = "np.tanh({0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * (1 - out * out),)


@register
class Sigmoid(UnaryOp):
    """1 / (1 + e ** -x), computed through tanh so no exp can overflow"""

    name, numpy = "sigmoid", "0.5 + 0.5 * np.tanh(0.5 * {0})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * out * (1 - out),)


@register
class Softplus(UnaryOp):
    """log(1 + e ** x), computed as np.logaddexp(0, x) so it never overflows"""

    name, numpy = "softplus", "np.logaddexp(0, {0})"
    inplace = "np.logaddexp(0, {0}, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * sigmoid(x),)


@register
class Relu(UnaryOp):
    """max(x, 0)"""

    name, numpy = "relu", "np.maximum({0}, 0)"
    inplace = "np.maximum({0}, 0, out={out})"

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        # A multiply by the boolean mask is several times faster than np.where.
        return (g * greater(x, 0),)


@register
class Abs(UnaryOp):
    """|x|; the derivative at 0 is taken as 0"""

    name, numpy = "abs", "np.abs({0})"
    inplace = "np.abs({0}, out={out})"

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

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, x.dtype


@register
class Cast(Op):
    """x.astype(dtype); the gradient flows between float dtypes only"""

    name = "cast"

    @classmethod
    def infer(cls, x: Expr, *, dtype: str) -> tuple[Shape, str]:
        return x.shape, dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, dtype: str) -> tuple[Expr | None]:
        return (cast(g, x.dtype) if is_float(x.dtype) and is_float(dtype) else None,)


def _unary(op: type[Op], x: object) -> Expr:
    return op.make(as_expr(x))


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
    x = as_expr(x)
    name = as_dtype(dtype)
    return x if x.dtype == name else Cast.make(x, dtype=name)


