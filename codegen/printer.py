"""The numpy printer: one `_print_<Op>` method per op that needs more than its template.

`NumpyPrinter.statement(node, args)` gives the right-hand side of the statement computing
``node`` from its inputs' names (or a list of lines, with ``{out}`` for the node's own name,
for the few ops that need more than one). An op with neither a method here nor a ``numpy``
template raises `CodegenError` naming it: there is no silent fallback.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from symdl.errors import CodegenError
from symdl.ir import Expr
from symdl.ops.base import Op
from symdl.ops.custom import special_functions
from symdl.ops.special import polygamma_text
from symdl.printing import index_text, size_text
from symdl.types import Shape, format_shape

Lines = list[str]


def dtype_text(dtype: str) -> str:
    """``np.float32`` for ``"float32"``."""
    return "np.bool_" if dtype == "bool" else f"np.{dtype}"


def shape_text(shape: Shape) -> str:
    """A Python tuple expression for a shape; symbolic sizes are the names bound on entry."""
    return format_shape(shape)


def scalar_literal(value: object, dtype: str | None = None) -> str:
    """Exact Python text for a scalar: floats round-trip through repr; inf and nan spelled out.

    With ``dtype="float32"`` (a Python number that numpy will cast to float32, as it does next
    to a float32 array), the shortest text with the same float32 value: ``1 - 0.9`` prints as
    ``0.1``, not ``0.09999999999999998``, and computes exactly the same.
    """
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    value = float(value)  # type: ignore[arg-type]
    if math.isnan(value):
        return "np.nan"
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    if dtype == "float32" and abs(value) < float(np.finfo(np.float32).max):
        short = float(str(np.float32(value)))
        if np.float32(short) == np.float32(value):
            return repr(short)
    return repr(value)


def _axis_text(axis: tuple[int, ...] | int | None) -> str:
    if isinstance(axis, tuple) and len(axis) == 1:
        return str(axis[0])
    return repr(axis)


class _SympyNumpy(NumPyPrinter):
    """sympy's numpy printer, writing ``np.`` and mapping symbols to argument names."""

    def __init__(self, names: dict[sympy.Symbol, str], dtype: str | None = None) -> None:
        super().__init__({"fully_qualified_modules": False, "inline": True})
        self._arg_names = names
        self._dtype = dtype

    def _module_format(self, fqn: str, register: bool = True) -> str:
        head, _, tail = fqn.partition(".")
        if head in ("numpy", "np"):
            return "np." + tail
        # sympy falls back to the `math` module (math.erf, math.gamma), which fails on arrays
        # at call time; generated modules import numpy only.
        raise CodegenError(
            f"codegen: an elementwise body needs {fqn}, which numpy does not have; write the "
            "body with functions numpy supports (exp, log, sqrt, tanh, ...)"
        )

    def _print_Symbol(self, expr: sympy.Symbol) -> str:  # noqa: N802 - sympy's naming
        return self._arg_names[expr]

    def _print_Float(self, expr: sympy.Float) -> str:  # noqa: N802
        # Exact (sympy's own printing rounds to 15 digits); shortest in a float32 body.
        return scalar_literal(float(expr), self._dtype)

    def _print_Rational(self, expr: sympy.Rational) -> str:  # noqa: N802
        return str(expr.p) if expr.q == 1 else scalar_literal(float(expr), self._dtype)

    def _print_Max(self, expr: sympy.Max) -> str:  # noqa: N802
        return self._fold("np.maximum", expr.args)

    def _print_Min(self, expr: sympy.Min) -> str:  # noqa: N802
        # min(max(x, lo), hi) with number bounds is what np.clip computes (clip, Huber's
        # gradient), and how one writes it by hand.
        bounds = [a for a in expr.args if a.is_number]
        inner = [a for a in expr.args if isinstance(a, sympy.Max)]
        if len(expr.args) == 2 and len(bounds) == 1 and len(inner) == 1:
            lows = [a for a in inner[0].args if a.is_number]
            if len(inner[0].args) == 2 and len(lows) == 1:
                (x,) = [a for a in inner[0].args if not a.is_number]
                return (f"np.clip({self._print(x)}, {self._print(lows[0])}, "
                        f"{self._print(bounds[0])})")
        return self._fold("np.minimum", expr.args)

    def _print_Abs(self, expr: sympy.Abs) -> str:  # noqa: N802
        return f"np.abs({self._print(expr.args[0])})"

    # Functions numpy lacks, printed as the op computing them does (``scipy.special.erf``);
    # sympy's own printer would write ``math.erf``, which fails on arrays.

    def _print_erf(self, expr: sympy.Function) -> str:
        return self._special(expr)

    def _print_erfc(self, expr: sympy.Function) -> str:
        return self._special(expr)

    def _print_loggamma(self, expr: sympy.Function) -> str:
        return self._special(expr)

    def _print_polygamma(self, expr: sympy.Function) -> str:
        order, x = expr.args
        if not (order.is_Integer and order >= 0):
            raise CodegenError(f"codegen: polygamma of order {order} has no numpy form")
        text = polygamma_text(int(order), self._print(x))
        # A multiple of zeta: parenthesized as an operand (`ast.unparse` drops what is spare).
        return text if text.startswith("scipy.") else f"({text})"

    def _special(self, expr: sympy.Function) -> str:
        op = special_functions()[type(expr)]
        return op.numpy.format(*(self._print(a) for a in expr.args))

    def _fold(self, ufunc: str, args: tuple[sympy.Expr, ...]) -> str:
        # sympy orders arguments with numbers first; numpy reads best with the array first.
        ordered = sorted(args, key=lambda a: a.is_number)
        text = self._print(ordered[0])
        for a in ordered[1:]:
            text = f"{ufunc}({text}, {self._print(a)})"
        return text

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:  # noqa: N802
        if expr.is_number and self._dtype == "float32":
            # np.sqrt(2) is a float64 scalar, which would make a float32 statement float64
            # (GELU's erf(z / sqrt(2))); its value as a Python number takes the array's dtype.
            return scalar_literal(float(expr), self._dtype)
        if expr.exp == -1:
            return f"1 / {self.parenthesize(expr.base, 50)}"
        if expr.exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(expr.base)})"
        if expr.exp.is_Integer and expr.exp < 0:
            return f"1 / {self.parenthesize(expr.base ** -expr.exp, 50)}"
        return super()._print_Pow(expr, rational=rational)


def sympy_printer(
    names: dict[sympy.Symbol, str], dtype: str | None = None
) -> Callable[[sympy.Expr], str]:
    """sympy's numpy printer over the given argument names, as a function of the expression.

    ``dtype`` is that of the statement: float literals print as their float32 value in a
    float32 one (see `scalar_literal`).
    """
    printer = _SympyNumpy({s: _operand(n) for s, n in names.items()}, dtype)
    # sympy writes ``lr*W_grad``; `ast.unparse` spaces operators as the rest of the module does
    # (and keeps float literals exact: they print by repr).
    return lambda expr: ast.unparse(ast.parse(printer.doprint(expr), mode="eval"))


class NumpyPrinter:
    """Prints one IR node as numpy, given the names (or literals) of its inputs."""

    @classmethod
    def prints(cls, op: type[Op]) -> bool:
        """Whether nodes of ``op`` can be printed: a ``_print_<Op>`` method or a template."""
        return hasattr(cls, f"_print_{op.__name__}") or op.numpy is not None

    def statement(self, node: Expr, args: Sequence[str]) -> str | Lines:
        """The expression computing ``node``, or statement lines using ``{out}``."""
        method = getattr(self, f"_print_{node.op.__name__}", None)
        if method is not None:
            return method(node, list(args))
        template = node.op.numpy
        if template is None:
            raise CodegenError(
                f"codegen: op {node.op.name!r} has no numpy printing (no template and no "
                f"_print_{node.op.__name__} method); composite ops must be lowered first"
            )
        return template.format(*(_operand(a) for a in args))

    # ----------------------------------------------------------------- reductions

    def _print_Sum(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "sum", node.attr("axis"), node.attr("keepdims"), node)

    def _print_Max(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "max", node.attr("axis"), node.attr("keepdims"), node)

    def _print_Argmax(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        return f"np.argmax({args[0]})" if axis is None else f"np.argmax({args[0]}, axis={axis})"

    def _print_Size(self, node: Expr, args: list[str]) -> str:
        return size_text(node)

    # ----------------------------------------------------------------- shapes

    def _print_Reshape(self, node: Expr, args: list[str]) -> str:
        source, target = node.inputs[0].shape, node.attr("shape")
        inserted = _inserted_axes(source, target)
        if inserted is not None:
            parts = ["None" if i in inserted else ":" for i in range(len(target))]
            while parts and parts[-1] == ":":
                parts.pop()
            return f"{args[0]}[{', '.join(parts)}]"
        return f"{args[0]}.reshape({shape_text(target)})"

    def _print_Transpose(self, node: Expr, args: list[str]) -> str:
        axes = node.attr("axes")
        if axes == tuple(reversed(range(len(axes)))):
            return f"{args[0]}.T"
        return f"np.transpose({args[0]}, {axes!r})"

    def _print_BroadcastTo(self, node: Expr, args: list[str]) -> str:
        return f"np.broadcast_to({args[0]}, {shape_text(node.shape)})"

    def _print_Concatenate(self, node: Expr, args: list[str]) -> str:
        return f"np.concatenate([{', '.join(args)}], axis={node.attr('axis')})"

    def _print_Index(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}[{index_text(node.attr('index'))}]"

    def _print_Unindex(self, node: Expr, args: list[str]) -> Lines:
        return [
            f"{{out}} = np.zeros({shape_text(node.shape)}, dtype={dtype_text(node.dtype)})",
            f"{{out}}[{index_text(node.attr('index'))}] = {args[0]}",
        ]

    def _print_Zeros(self, node: Expr, args: list[str]) -> str:
        return f"np.zeros({shape_text(node.shape)}, dtype={dtype_text(node.dtype)})"

    # ----------------------------------------------------------------- dtypes and labels

    def _print_Cast(self, node: Expr, args: list[str]) -> str:
        if node.shape == ():
            # A scalar may be a Python number at run time (``N - 1`` from a size), which has
            # no ``.astype``; numpy's scalar type converts numbers and numpy scalars alike.
            return f"{dtype_text(node.dtype)}({args[0]})"
        return f"{_operand(args[0])}.astype({dtype_text(node.dtype)})"

    def _print_OneHot(self, node: Expr, args: list[str]) -> str:
        return f"np.eye({node.attr('depth')}, dtype={dtype_text(node.dtype)})[{args[0]}]"

    def _print_Pick(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        return f"np.take_along_axis({args[0]}, {args[1]}[..., None], axis={axis})[..., 0]"

    # ----------------------------------------------------------------- elementwise

    def _print_Clip(self, node: Expr, args: list[str]) -> str:
        # Call arguments need no parentheses: ``np.clip(x, -1.0, 1.0)``, not ``(-1.0)``.
        return f"np.clip({', '.join(args)})"

    # ----------------------------------------------------------------- special functions

    def _print_Polygamma(self, node: Expr, args: list[str]) -> str:
        return polygamma_text(node.attr("n"), _operand(args[0]))

    # ----------------------------------------------------------------- sympy bodies

    def _print_Elementwise(self, node: Expr, args: list[str]) -> str:
        try:
            names = dict(zip(node.attr("symbols"), args))
            return sympy_printer(names, node.dtype)(node.attr("body"))
        except NotImplementedError as exc:  # sympy: PrintMethodNotImplementedError
            raise CodegenError(
                f"codegen: elementwise {node.attr('fname')!r} uses a function numpy does not "
                f"have ({exc.args[0].splitlines()[0]}); rewrite the body with sympy functions "
                "that numpy supports"
            ) from None


def _operand(text: str) -> str:
    """Parenthesize negative literals so templates like ``{0} ** {1}`` stay correct."""
    return f"({text})" if text.startswith("-") else text


def _method_call(arg: str, method: str, axis: tuple[int, ...], keepdims: bool, node: Expr) -> str:
    full = axis == tuple(range(node.inputs[0].ndim))
    params = [] if full and not keepdims else [f"axis={_axis_text(axis)}"]
    if keepdims:
        params.append("keepdims=True")
    target = arg if _is_primary(arg) else f"np.asarray({arg})"
    return f"{target}.{method}({', '.join(params)})"


def _is_primary(text: str) -> bool:
    """Whether ``text`` (a name, or a view inlined at its use: ``x.T``, ``x[:, None]``) takes a
    method call as it is; a literal (``1.0``, ``-x``) needs ``np.asarray`` first."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(tree, (ast.Name, ast.Attribute, ast.Subscript, ast.Call))


def _inserted_axes(source: Shape, target: Shape) -> set[int] | None:
    """Positions of size-1 axes ``target`` inserts into ``source``, if that is all it does."""
    if len(target) <= len(source):
        return None
    inserted: set[int] = set()
    i = 0
    for j, d in enumerate(target):
        if i < len(source) and source[i] == d:
            i += 1
        elif d == 1:
            inserted.add(j)
        else:
            return None
    return inserted if i == len(source) else None
