"""The `Op` base class, the op table, and turning Python values into expressions.

An op is one class holding every fact about it: its shape rule (`infer`), its reverse-mode rule
(`vjp`), its forward-mode rule (`jvp`, where present), how it prints as numpy (`numpy`, a
template over the input names; ops that need more have a `_print_<Op>` method in the printer),
its scalar form in sympy (for fusion and derivations), whether it prints as a view, the name of
an unnamed value, its math notation, whether it folds. Passes read these facts from the op; no
other module keeps a table of op names. `register` refuses an op that leaves out a fact its
category needs (`missing_facts`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import ConstantError, DTypeError, InvalidNameError, OpDefinitionError
from ..ir import ConstValue, Expr, intern
from ..printing import constant_text
from ..types import Shape, as_dtype, as_shape

if TYPE_CHECKING:
    import sympy
else:
    from ..lazy_imports import sympy  # sympy runs on first use, not on import

# (g, out, *inputs, **attrs) -> one cotangent (or None) per input
VJP = Callable[..., tuple[Expr | None, ...]]
# (tangents, out, *inputs, **attrs) -> the tangent of out (None: zero); see `Op.jvp`
JVP = Callable[..., Expr | None]
# (*inputs as sympy expressions, **attrs) -> the op's scalar value as a sympy expression
SympyForm = Callable[..., "sympy.Expr"]

OPS: dict[str, type[Op]] = {}

# Precedences in math notation: a bigger number binds tighter (a product binds tighter than a
# sum, so ``(a + b) c`` keeps its parentheses and ``a b + c`` needs none).
SUM, NEG, PROD, FUNC, POSTFIX, ATOM = 10, 15, 20, 80, 90, 100

# A generated name longer than this reads worse than the op's own name (`matmul`).
MAX_HINT = 28


@dataclass(frozen=True)
class Latex:
    r"""How an op reads in math notation: a LaTeX template over its operands.

    ``template`` is a `str.format` template in which ``{0}``, ``{1}``, ... stand for the
    operands and literal braces are doubled (``\frac{{{0}}}{{{1}}}``). ``precedence`` says how
    tightly the result binds (`SUM` for ``a + b``, `FUNC` for a call, `ATOM` for a symbol);
    ``operands[i]`` is the least precedence operand ``i`` may have without parentheses (0, the
    default for operands not listed: never parenthesized, as inside ``\frac{}{}``).
    """

    template: str
    precedence: int
    operands: tuple[int, ...] = ()


def latex_call(command: str) -> Latex:
    r"""The notation of a function of one operand: ``\log\left(x\right)`` for ``\log``."""
    return Latex(latex_literal(command).template + r"\left({0}\right)", FUNC)


def latex_literal(text: str, precedence: int = ATOM) -> Latex:
    """A notation with no operands: ``text`` as it is (its braces escaped for the template)."""
    return Latex(text.replace("{", "{{").replace("}", "}}"), precedence)


class Op:
    """One primitive of the language. Subclasses are never instantiated: the class is the op.

    The attributes below are the op's facts, each with a default that suits ops that lack the
    feature. Which facts an op must declare depends on its category (`missing_facts`).
    """

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
    jvp: ClassVar[JVP | None] = None
    """The forward-mode rule, optional: ``(tangents, out, *inputs, **attrs) -> tangent | None``
    with one tangent (or None for zero) per input, written with symdl ops. A tangent has its
    input's shape plus trailing batch axes (none for `symdl.autodiff.jvp`, one for the batched
    JVP of `symdl.forward`), so a rule lifts the primal values it uses with
    `symdl.ops.shape.with_batch` and keeps its axes counted from the front. An op without one
    gets its local JVP from two reverse passes (unbatched only; `symdl.forward`)."""

    # ----------------------------------------------------------------- elementwise math

    elementwise_math: ClassVar[bool] = False
    """The category of scalar float math applied elementwise (exp, add, relu): such an op must
    give `sympy_form`, and fusion merges chains of them into one statement with a sympy body."""

    sympy_form: ClassVar[SympyForm | None] = None
    """The scalar function the op computes, as ``(*inputs, **attrs) -> sympy.Expr`` over one
    sympy expression per input. The one mathematical form: derivations take its derivative with
    ``sympy.diff`` (the local derivative of a step), and fusion computes it unless
    `sympy_stable` gives another form. None: the op is not scalar math."""

    sympy_stable: ClassVar[SympyForm | None] = None
    """The form generated code computes instead of `sympy_form`, where that one would overflow
    or lose precision: sigmoid through ``tanh``, softplus as ``logaddexp(0, x)``, ``log1p``."""

    ufunc: ClassVar[str | None] = None
    """The numpy ufunc computing the op (``"np.exp"``); it takes ``out=``, so a fused statement
    whose outermost operation is this op can write into a dead buffer."""

    fold: ClassVar[Callable[..., Any] | None] = None
    """The numpy function computing the op on constant inputs, for constant folding; None: the
    op is never folded."""

    bool_ok: ClassVar[bool] = False
    """Whether both operands may be bool (``mask * mask``); else building it is a DTypeError."""

    broadcasts: ClassVar[bool] = False
    """Whether numpy broadcasts the inputs against each other when it computes the op, so that
    an explicit ``broadcast_to`` of an input can be left out."""

    # ----------------------------------------------------------------- code generation

    is_view: ClassVar[bool] = False
    """Whether the value prints as a numpy view of its first input (``x.T``, ``x[1:]``): it
    shares the input's memory, so buffer reuse never writes into it."""

    free: ClassVar[bool] = False
    """Whether its generated statement does no arithmetic (a view, a symbolic size); the
    report's count of operations leaves it out."""

    hidden_attrs: ClassVar[tuple[str, ...]] = ()
    """Attributes that are part of the node's identity but never printed, in code, dumps or
    comments: a random draw's serial keeps two draws of the same shape two nodes, and printing
    it would make the text depend on what else the process built."""

    hint: ClassVar[str | None] = None
    """The variable name of an unnamed value: a template over the inputs' names ``{0}``,
    ``{1}``, ... and the static attributes by name (``"{0}_T"`` names ``x.T`` ``x_T``)."""

    needs: ClassVar[tuple[str, ...]] = ()
    """The modules beyond numpy that the op's generated code calls (``("scipy.special",)`` for
    erf, which numpy lacks): a module using the op imports them, and its header says so."""

    # ----------------------------------------------------------------- math notation

    latex: ClassVar[Latex | None] = None
    """How the op reads in math notation (see `latex_form` for notations that depend on the
    node)."""

    shows_as_operand: ClassVar[bool] = False
    """Whether math notation shows the value as its operand: the op only restores a shape or a
    dtype (reshape, broadcast_to, cast), which a reader of a derivation does not care about."""

    latex_rule: ClassVar[str | None] = None
    """The derivative rule in matrix notation, shown in a derivation's step where sympy gives no
    local derivative (the op has no `sympy_form`): ``C = A B => A_bar = C_bar B^T, ...``."""

    labels: ClassVar[str | None] = None
    """For a loss whose derivative rule holds only for labels (input 1) of one kind: ``"one_hot"``
    (rows summing to 1: softmax cross-entropy's ``p - y``). `symdl.derive.check` draws such
    labels so, since other labels would fail a gradient that is right for the op's domain."""

    @classmethod
    def infer(cls, *inputs: Expr, **attrs: Any) -> tuple[Shape, str]:
        """Shape and dtype of the result; raises ShapeError/DTypeError naming the op."""
        raise NotImplementedError(cls.name)

    @classmethod
    def make(cls, *inputs: Expr, **attrs: Any) -> Expr:
        """Check the inputs, infer shape and dtype, and return the (unique) node."""
        shape, dtype = cls.infer(*inputs, **attrs)
        return intern(cls, tuple(inputs), tuple(attrs.items()), shape, dtype)

    @classmethod
    def latex_form(cls, node: Expr) -> Latex | None:
        """The notation of ``node``: `latex`, unless the op's notation depends on the node."""
        return cls.latex

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int] | None:
        """``node`` as infix text with its precedence, where the generic ``op(x, attr=...)``
        form does not fit (``x[1:]``); None for the generic form."""
        return None

    @classmethod
    def name_hint(cls, inputs: Sequence[str], attrs: Mapping[str, Any]) -> str:
        """The variable name of an unnamed value, from its inputs' names (`hint`).

        The op's name where the hint is missing, needs an input the value does not have, or
        would be longer than `MAX_HINT`.
        """
        if cls.hint is None:
            return cls.name
        try:
            text = cls.hint.format(*inputs, **attrs)
        except (IndexError, KeyError):
            return cls.name
        return text if len(text) <= MAX_HINT else cls.name


def missing_facts(op: type[Op]) -> list[str]:
    """The facts ``op``'s category needs that it does not declare (empty when it is complete).

    Every op needs a ``name`` and a shape rule (``infer``); every op that is not a leaf needs a
    name for its values (``hint``) and a math notation (``latex``, ``latex_form`` or
    ``shows_as_operand``); a differentiable one needs a ``vjp`` and, where sympy cannot give
    its local derivative (a tensor op: no ``sympy_form``), its rule in matrix notation
    (``latex_rule``); elementwise math needs a ``sympy_form``; an op writing with a ``ufunc``
    needs an ``inplace`` template calling it.
    """
    missing = []
    if not isinstance(getattr(op, "name", None), str):
        missing.append("name")
    if _inherited(op, "infer", Op):
        missing.append("infer")
    if op.is_leaf:
        return missing
    if op.hint is None and _inherited(op, "name_hint", Op):
        missing.append("hint")
    if op.latex is None and not op.shows_as_operand and _inherited(op, "latex_form", Op):
        missing.append("latex")
    if op.differentiable and op.vjp is None:
        missing.append("vjp")
    if op.elementwise_math and op.sympy_form is None:
        missing.append("sympy_form")
    if op.differentiable and not op.elementwise_math and op.sympy_form is None and (
        op.latex_rule is None
    ):
        missing.append("latex_rule")
    if op.ufunc is not None and not (op.inplace or "").startswith(op.ufunc + "("):
        missing.append("inplace")
    return missing


def _inherited(op: type[Op], method: str, base: type[Op]) -> bool:
    """Whether ``op`` uses ``base``'s classmethod ``method`` as it is (declares none of its own)."""
    return getattr(op, method).__func__ is getattr(base, method).__func__


def register(op: type[Op]) -> type[Op]:
    """Class decorator: add an op to `OPS` under its name (names are unique).

    Raises OpDefinitionError if the op leaves out a fact its category needs (`missing_facts`),
    so that an incomplete op fails when it is defined, not silently in some pass.
    """
    if op.name in OPS:
        raise RuntimeError(f"op {op.name!r} is defined twice")
    missing = missing_facts(op)
    if missing:
        raise OpDefinitionError(
            f"op {op.name!r} ({op.__name__}) does not declare {', '.join(missing)}; add "
            "them to its class (see symdl.ops.base.missing_facts for what each category needs)"
        )
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

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """A scalar as a number (``2``, ``0.5``); an array as its text (``[1.0, 2.0]``)."""
        array = node.attr("value").array
        if array.ndim == 0:
            value = float(array.item())
            text = str(int(value)) if value.is_integer() else repr(value)
            return latex_literal(text, NEG if text.startswith("-") else ATOM)
        return latex_literal(r"\text{" + constant_text(node).replace("_", r"\_") + "}")


def constant(value: object, dtype: object = None, *, allow_nonfinite: bool = False) -> Expr:
    """A constant tensor from a Python number or an array-like.

    The constant keeps the shape and every value exactly, or is refused: NaN and inf unless
    ``allow_nonfinite=True`` (they are almost always a bug, and they would silently poison every
    gradient downstream), unsigned integers beyond int64 (the widest integer symdl computes
    with), and a ``dtype`` that would change a value (``constant(2**40, "int32")`` wraps,
    ``constant(1.5, "int64")`` truncates, ``constant(1e40, "float32")`` overflows). Rounding a
    float to the float32 you ask for is not a change of value but what float32 means.

    Raises:
        ConstantError: for the values above, complex numbers, strings and objects.
    """
    return _constant(value, dtype, allow_nonfinite=allow_nonfinite, op=None, implicit=False)


def as_expr(value: object, op: str | None = None) -> Expr:
    """An expression as is; a Python number or numpy array as a constant.

    ``op`` is the op receiving ``value`` as an operand: an error about the implicit constant
    names it, since the user never wrote ``sd.constant`` there.
    """
    if isinstance(value, Expr):
        return value
    if value is None or isinstance(value, (str, bytes)):
        where = f"{op}: " if op else ""
        raise TypeError(f"{where}expected an expression, a number or an array, got {value!r}")
    return _constant(value, None, allow_nonfinite=False, op=op, implicit=True)


def _constant(
    value: object, dtype: object, *, allow_nonfinite: bool, op: str | None, implicit: bool
) -> Expr:
    """`constant`; ``implicit``: made from an operand (of ``op``, where known), not by the user."""
    if isinstance(value, Expr):
        return value if dtype is None else value.astype(dtype)
    where = f"{op}: " if op else "constant: "
    weak = isinstance(value, (bool, numbers.Number)) and not isinstance(value, np.generic)
    if isinstance(value, complex):
        raise ConstantError(f"{where}complex constants are not supported, got {value!r}")
    target = None if dtype is None else as_dtype(dtype)
    try:
        array = np.asarray(value)
        if array.dtype.kind == "O" and target is not None:
            # Python ints beyond 64 bits: only a float dtype can hold them (rounded).
            array = np.asarray(value, dtype=target)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConstantError(f"{where}cannot make a constant from {value!r}: {exc}") from None
    if array.dtype.kind in "OUSVMmc":
        raise ConstantError(
            f"{where}cannot make a constant from {type(value).__name__} with dtype "
            f"{array.dtype}; use numbers or a numeric numpy array (integers within int64)"
        )
    if target is None:
        # The dtypes symdl lacks widen to one it has: unsigned and narrow ints to int64,
        # float16 to float32. Every value survives that, except uint64's upper half.
        if array.dtype.kind == "u" or array.dtype.name in ("int8", "int16"):
            target = "int64"
        elif array.dtype.name == "float16":
            target = "float32"
        else:
            target = as_dtype(array.dtype)
    array = _exact_cast(array, target, where)
    if array.dtype.kind == "f" and not allow_nonfinite and not np.all(np.isfinite(array)):
        raise ConstantError(_nonfinite_message(value, array, op, implicit))
    return Constant.make(value=ConstValue(array), weak=weak and dtype is None)


def _exact_cast(array: np.ndarray, target: str, where: str) -> np.ndarray:
    """``array`` as ``target``, refused where that would change a value (not just round it)."""
    if array.dtype.name == target:
        return array
    target_dtype = np.dtype(target)
    if target_dtype.kind in "iub" and array.size:
        if target_dtype.kind == "b":
            low, high = 0, 1
        else:
            info = np.iinfo(target_dtype)
            low, high = int(info.min), int(info.max)
        if array.dtype.kind == "f":
            whole = np.isfinite(array) & (array == np.trunc(array))
            if not np.all(whole):
                bad = array[~whole].flat[0]
                raise ConstantError(
                    f"{where}{bad!r} is not a whole number, so it has no {target} value "
                    f"(numpy would truncate it); round it first or keep a float dtype"
                )
        # Compared as Python ints: numpy compares int64 with uint64 through float64.
        lowest, highest = int(array.min()), int(array.max())
        if lowest < low or highest > high:
            bad = lowest if lowest < low else highest
            raise ConstantError(
                f"{where}{bad} does not fit {target} ({low} to {high}), and numpy would wrap "
                f"it silently; use a wider dtype"
                + (" or a float64 constant" if target == "int64" else "")
            )
    with np.errstate(over="ignore"):  # an overflow is reported below, naming the value
        converted = array.astype(target_dtype)
    if target_dtype.kind == "f":
        overflow = np.isinf(converted) & np.isfinite(array)
        if np.any(overflow):
            raise ConstantError(
                f"{where}{array[overflow].flat[0]!r} overflows {target} (its largest value is "
                f"{np.finfo(target_dtype).max}); use float64"
            )
    return converted


def _nonfinite_message(value: object, array: np.ndarray, op: str | None, implicit: bool) -> str:
    """The refusal of a NaN or inf constant, with the spelling that allows it."""
    if not implicit:
        return "constant: contains NaN or inf; pass allow_nonfinite=True if that is intended"
    if array.ndim == 0:
        item = float(array.item())
        spelled = "np.nan" if math.isnan(item) else ("-np.inf" if item < 0 else "np.inf")
    else:
        spelled = "value"
    where = f"{op}: " if op else ""
    return (
        f"{where}the operand {_short(value)} is NaN or infinite, which symdl refuses unless "
        f"asked (it would poison every gradient downstream); if it is intended, pass "
        f"sd.constant({spelled}, allow_nonfinite=True) instead"
    )


def _short(value: object) -> str:
    """A user's operand as a reader recognizes it, without printing a whole array."""
    array = np.asarray(value)
    if array.ndim == 0 or array.size <= 6:
        return repr(array.tolist())
    return f"<{array.dtype} array of shape {array.shape}>"


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
    hint = "{0}"  # never printed: passes strip labels; the name itself is the hint
    shows_as_operand = True  # an identity: math notation shows the value it names
    free = True
    latex_rule = r"C = A \;\Rightarrow\; \bar{A} = \bar{C}"

    @classmethod
    def infer(cls, x: Expr, *, name: str, of: GradientOf | None) -> tuple[Shape, str]:
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, name: str, of: GradientOf | None) -> tuple[Expr]:
        return (g,)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, name: str, of: GradientOf | None) -> Expr:
        return t[0]

    @staticmethod
    def expand(x: Expr, *, name: str, of: GradientOf | None) -> Expr:
        # Never printed: every pass strips labels (see `symdl.rewrite.rebuild`).
        return x


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
