"""The `Op` base class, the op table, and turning Python values into expressions.

An op is one class holding everything about it: its shape rule (`infer`), its reverse-mode rule
(`vjp`), its forward-mode rule (`jvp`, where present) and how it prints as numpy (`numpy`, a
template over the input names; ops that need more have a `_print_<Op>` method in the printer).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..errors import ConstantError, DTypeError, InvalidNameError
from ..ir import ConstValue, Expr, intern
from ..types import Shape, as_dtype, as_shape

# (g, out, *inputs, **attrs) -> one cotangent (or None) per input
VJP = Callable[..., tuple[Expr | None, ...]]

OPS: dict[str, type[Op]] = {}


class Op:
    """One primitive of the language. Subclasses are never instantiated: the class is the op."""

    name: ClassVar[str]
    is_leaf: ClassVar[bool] = False
    # Non-differentiable ops (comparisons, argmax, one_hot) pass no gradient to their inputs.
    differentiable: ClassVar[bool] = True
    # Template for the generated numpy expression; {0}, {1}, ... are the input names.
    numpy: ClassVar[str | None] = None
    # Infix symbol and precedence for the text dump and comments (None: printed as a call).
    infix: ClassVar[str | None] = None
    precedence: ClassVar[int] = 100
    # Template writing the result into an existing buffer {out} (elementwise ops only), so the
    # code generator can reuse a dead temporary or update a parameter in place.
    inplace: ClassVar[str | None] = None
    vjp: ClassVar[VJP | None] = None
    jvp: ClassVar[Callable[..., Expr] | None] = None

    @classmethod
    def infer(cls, *inputs: Expr, **attrs: Any) -> tuple[Shape, str]:
        """Shape and dtype of the result; raises ShapeError/DTypeError naming the op."""
        raise NotImplementedError(cls.name)

    @classmethod
    def make(cls, *inputs: Expr, **attrs: Any) -> Expr:
        """Check the inputs, infer shape and dtype, and return the (unique) node."""
        shape, dtype = cls.infer(*inputs, **attrs)
        return intern(cls, tuple(inputs), tuple(attrs.items()), shape, dtype)


def register(op: type[Op]) -> type[Op]:
    """Class decorator: add an op to `OPS` under its name (names are unique)."""
    if op.name in OPS:
        raise RuntimeError(f"op {op.name!r} is defined twice")
    OPS[op.name] = op
    return op


# --------------------------------------------------------------------------- constants


@register
class Constant(Op):
    """A fixed value. Python scalars are *weak*: they take the dtype of the other operand."""

    name = "constant"
    is_leaf = True
    differentiable = False

    @classmethod
    def infer(cls, *, value: ConstValue, weak: bool) -> tuple[Shape, str]:
        return tuple(value.array.shape), as_dtype(value.array.dtype)


def constant(value: object, dtype: object = None, *, allow_nonfinite: bool = False) -> Expr:
    """A constant tensor from a Python number or an array-like.

    NaN and inf are refused unless ``allow_nonfinite=True``: they are almost always a bug, and
    they would silently poison every gradient downstream.
    """
    if isinstance(value, Expr):
        return value if dtype is None else value.astype(dtype)
    weak = isinstance(value, (bool, numbers.Number)) and not isinstance(value, np.generic)
    if isinstance(value, complex):
        raise ConstantError(f"complex constants are not supported, got {value!r}")
    try:
        array = np.asarray(value, dtype=None if dtype is None else as_dtype(dtype))
    except (TypeError, ValueError) as exc:
        raise ConstantError(f"cannot make a constant from {value!r}: {exc}") from None
    if array.dtype.kind in "OUSVMmc":
        raise ConstantError(
            f"cannot make a constant from {type(value).__name__} with dtype {array.dtype}; "
            "use numbers or a numeric numpy array"
        )
    if array.dtype.kind == "u" or array.dtype.name in ("int8", "int16", "float16"):
        array = array.astype(np.int64 if array.dtype.kind in "ui" else np.float32)
    if array.dtype.kind == "f" and not allow_nonfinite and not np.all(np.isfinite(array)):
        raise ConstantError(
            "constant contains NaN or inf; pass allow_nonfinite=True if that is intended"
        )
    as_dtype(array.dtype)
    return Constant.make(value=ConstValue(array), weak=weak and dtype is None)


def as_expr(value: object) -> Expr:
    """An expression as is; a Python number or numpy array as a constant."""
    if isinstance(value, Expr):
        return value
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"expected an expression, a number or an array, got {value!r}")
    return constant(value)


def is_weak(x: Expr) -> bool:
    """True for Python-scalar constants and symbolic sizes, which adopt the other dtype."""
    return x.op.is_leaf and x.op.name == "constant" and x.attr("weak") or x.op.name == "size"


def scalar_value(x: Expr) -> float | None:
    """The value of a scalar (or all-equal) constant, else None; used by rewrites and printing."""
    if x.op.name != "constant":
        return None
    array = x.attr("value").array
    if array.size == 0:
        return None
    first = array.flat[0]
    if array.size > 1 and not np.all(array == first):
        return None
    return float(first) if array.dtype.kind in "fb" or math.isfinite(first) else None


def require_float(op: str, x: Expr) -> None:
    """Differentiable math needs floating inputs; say so, naming the op."""
    if x.dtype not in ("float32", "float64"):
        raise DTypeError(
            f"{op}: expected a float32 or float64 input, got {x.dtype}; cast it with .astype()"
        )


# --------------------------------------------------------------------------- inputs


class Leaf(Op):
    """A named input of generated functions."""

    is_leaf = True
    differentiable = False

    @classmethod
    def infer(cls, *, name: str, shape: Shape, dtype: str) -> tuple[Shape, str]:
        return shape, dtype


@register
class Placeholder(Leaf):
    """data fed at run time (inputs, labels)"""

    name = "placeholder"


@register
class Parameter(Leaf):
    """a trainable array (weights, biases)"""

    name = "parameter"


def _leaf(op: type[Leaf], name: object, shape: object, dtype: object) -> Expr:
    if not isinstance(name, str) or not name.strip():
        raise InvalidNameError(f"{op.name}: name must be a non-empty string, got {name!r}")
    where = f"{op.name} {name!r}"
    return op.make(name=name, shape=as_shape(shape, where=where), dtype=as_dtype(dtype))


def placeholder(name: str, shape: object, dtype: object = "float32") -> Expr:
    """Data given at run time, e.g. ``placeholder("x", (None, 784))``; None is the batch size N.

    A leaf is identified by its kind, name, shape and dtype: asking twice gives the same node.
    """
    return _leaf(Placeholder, name, shape, dtype)


def parameter(name: str, shape: object, dtype: object = "float32") -> Expr:
    """A trainable array, e.g. ``parameter("W", (784, 10))``; gradients are taken w.r.t. these."""
    return _leaf(Parameter, name, shape, dtype)


# --------------------------------------------------------------------------- labels


class GradientOf:
    """What a gradient is the gradient of: the target ``y`` and the ``wrt`` leaves of one `grad`.

    Compared by identity of its expressions (which are hash-consed, so identity is structure).
    `symdl.provenance` re-runs that reverse walk to tell, for one generation, which forward
    node's rule built each gradient node.
    """

    __slots__ = ("y", "wrt", "_key")

    def __init__(self, y: Expr, wrt: tuple[Expr, ...]) -> None:
        self.y = y
        self.wrt = wrt
        self._key = (id(y), tuple(id(w) for w in wrt))

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GradientOf) and other.y is self.y and all(
            a is b for a, b in zip(other.wrt, self.wrt)
        ) and len(other.wrt) == len(self.wrt)

    def __repr__(self) -> str:
        return f"<gradient of {self.y!r} wrt {[w.name for w in self.wrt]}>"


@register
class Label(Op):
    """a name for a value (``expr.named("logits")``): the identity, carrying the name in the graph

    A label is part of the graph that uses it, never state on the shared node it names, so a
    name given in one model cannot reach another model's code. Passes strip labels first
    (`symdl.provenance.annotate`) and keep the names as data of that one generation. A label
    made by `grad` also says what its value is the gradient of (``of``).
    """

    name = "label"

    @classmethod
    def infer(cls, x: Expr, *, name: str, of: GradientOf | None) -> tuple[Shape, str]:
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, name: str, of: GradientOf | None) -> tuple[Expr]:
        return (g,)


def label(x: Expr, name: str, of: GradientOf | None = None) -> Expr:
    """``x`` named ``name`` (see `Label`); a leaf keeps its own name and is returned as is,
    unless the label marks a gradient (``of``), which is kept even on a leaf."""
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"named() takes a non-empty string, got {name!r}")
    if x.op.is_leaf and of is None:
        return x
    if x.op is Label and x.attr("name") == name and x.attr("of") == of:
        return x
    return Label.make(x, name=name, of=of)


def unlabeled(x: Expr) -> Expr:
    """``x`` without the labels around it (the value itself)."""
    while x.op is Label:
        x = x.inputs[0]
    return x
