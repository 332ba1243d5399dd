"""Mathematical notation for IR nodes: matrix notation for tensor ops, sympy's LaTeX elementwise.

`latex(expr, names)` prints an expression the way a textbook writes it: ``X W`` for a matrix
product, ``X^\\top`` for a transpose, ``\\odot`` for an elementwise product of two tensors,
``a \\mathbf{1}`` for row sums, ``\\operatorname{softmax}(z)``; broadcasts and reshapes are shown
compactly (as their operand), since they only restore shapes. Nodes in ``names`` appear by their
symbol; everything else is inlined.

`local_derivative` gives the partial derivatives of an elementwise node with respect to its
inputs through sympy (so ``softplus`` shows as ``\\frac{e^{z}}{e^{z} + 1}``), and `rule_latex`
the derivative rule of a tensor op in matrix notation. `to_sympy` turns a graph of scalars into a
sympy expression, for checking a derivation against ``sympy.diff``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from ..errors import OpDefinitionError
from ..ir import Expr, toposort
from ..ops.base import ATOM, POSTFIX, PROD, Latex

if TYPE_CHECKING:
    import sympy
else:
    from ..lazy_imports import sympy  # sympy runs on first use, not on import

__all__ = ["latex", "local_derivative", "name_latex", "rule_latex", "to_sympy", "bar"]

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega",
}



def shown_value(x: Expr) -> Expr:
    """``x`` without the reshapes, broadcasts and casts that math notation does not show (ops
    with `shows_as_operand`): the value a reader sees in its place."""
    while x.op.shows_as_operand and x.inputs:
        x = x.inputs[0]
    return x


def tex_escape(text: str) -> str:
    """Plain text made safe inside TeX: its special characters backslashed."""
    return "".join("\\" + c if c in "#$%&_{}" else c for c in text)

def name_latex(name: str) -> str:
    """A user's name as a math symbol: ``x``, ``x_{1}``, ``\\alpha``, ``\\text{logits}``."""
    match = re.fullmatch(r"([A-Za-z])_?(\d+)", name)
    if match:
        return f"{match[1]}_{{{match[2]}}}"
    if len(name) == 1:
        return name
    if name in GREEK:
        return "\\" + name
    if name in ("lam", "lmbda"):  # how Python code spells lambda, a keyword
        return r"\lambda"
    return r"\text{" + name.replace("_", r"\_") + "}"


def bar(symbol: str) -> str:
    """The adjoint's symbol: ``\\bar{x}`` for one letter, ``\\overline{\\text{logits}}`` else."""
    core = symbol.split("_", 1)[0] if re.fullmatch(r"[A-Za-z]_\{\d+\}", symbol) else symbol
    if len(core) == 1 and core != symbol:  # x_{1} -> \bar{x}_{1}
        return rf"\bar{{{core}}}" + symbol[1:]
    if len(symbol) == 1 or symbol.startswith("\\") and symbol[1:] in GREEK:
        return rf"\bar{{{symbol}}}"
    return rf"\overline{{{symbol}}}"


def latex(expr: Expr, names: Mapping[Expr, str] | None = None, *, top: bool = True) -> str:
    """``expr`` in mathematical notation; nodes in ``names`` (and leaves) appear by symbol.

    Each op's notation is its `latex_form`. The walk is iterative (graphs of thousands of
    layers print without recursion), and each node is written once however often it is used.
    """
    names = names or {}
    done: dict[Expr, Shown] = {}
    stack = [expr]
    while stack:
        x = stack[-1]
        if x in done:
            stack.pop()
            continue
        if (x is not expr or not top) and x in names:
            done[x] = Shown(names[x], ATOM)
        elif x.is_leaf and x.op.name != "constant":
            done[x] = Shown(names.get(x, name_latex(x.name or "?")), ATOM)
        else:
            waiting = [i for i in x.inputs if i not in done]
            if waiting:
                stack.extend(reversed(waiting))
                continue
            done[x] = _notation(x, [done[i] for i in x.inputs])
        stack.pop()
    return done[expr].text


class Shown(NamedTuple):
    """A node in notation: its text, how tightly it binds, and which product it is.

    ``product`` tells the Hadamard product (``"odot"``) from the matrix product and the
    products with a ones vector (``"matrix"``): the two never share a precedence level without
    brackets, so ``p \\odot (\\bar{p} \\mathbf{1})`` cannot be read as ``(p \\odot \\bar{p})
    \\mathbf{1}``.
    """

    text: str
    precedence: int
    product: str = ""


def _notation(x: Expr, args: list[Shown]) -> Shown:
    """``x`` in notation, given its operands' notation and precedence."""
    if x.op.shows_as_operand:
        return _shape_notation(x, args[0])
    one = _identity_operand(x)
    if one is not None:  # ``1.0 \, v`` and ``v / 1`` at batch size 1 read as ``v``
        return args[one]
    if x.op.name == "transpose" and _vector_row(x.inputs[0]) is not None:
        return _unrow(args[0])
    over = _over_scalar(x, args)
    if over is not None:
        return over
    form = x.op.latex_form(x)
    if x.op.name == "matmul" and x.inputs[0].ndim == 1 and x.inputs[1].ndim == 2:
        form = Latex(r"{{{0}}}^\top \, {1}", PROD, (ATOM, PROD + 1))  # x^T W: vectors are columns
    if form is None:
        raise OpDefinitionError(
            f"latex: op {x.op.name!r} has no math notation; give its class a `latex` "
            "(or `latex_form`)"
        )
    product = ""
    if form.precedence == PROD:
        product = "odot" if r"\odot" in form.template else (
            "matrix" if x.op.name in ("matmul", "sum") else "scalar")
    if x.op.elementwise_math:  # a column against a matrix: written out, as a broadcast is
        args = [_column_spread(i, a, x.shape) for i, a in zip(x.inputs, args)]
    least = form.operands + (0,) * (len(args) - len(form.operands))
    shown = [_wrap(a, m, product) for a, m in zip(args, least)]
    return Shown(form.template.format(*shown), form.precedence, product)


def _over_scalar(x: Expr, args: list[Shown]) -> Shown | None:
    """A matrix product over a number or size as by hand, ``\\frac{1}{N} X^\\top r``, not a
    fraction bar over a product of matrices."""
    if x.op.name != "divide" or x.inputs[1].shape != () or x.inputs[1].op.name not in (
            "size", "constant"):
        return None
    if args[0].product == "matrix":
        return Shown(rf"\frac{{1}}{{{args[1].text}}} \, {args[0].text}", PROD, "matrix")
    return None


def _wrap(arg: Shown, min_prec: int, product: str = "") -> str:
    mixed = (arg.precedence == PROD and {arg.product, product} == {"odot", "matrix"})
    if arg.precedence >= min_prec and not mixed:
        return arg.text
    if product == "scalar" and arg.precedence == PROD:
        return arg.text  # a number times any product: 2 X^T r, associative either way
    return rf"\left({arg.text}\right)"


def _identity_operand(x: Expr) -> int | None:
    """The operand ``x`` equals when it multiplies by one or divides by one, else None."""
    if x.op.name not in ("multiply", "divide"):
        return None
    for k, other in enumerate(x.inputs):
        if x.op.name == "divide" and k == 0:
            continue
        if _is_one(other):
            kept = x.inputs[1 - k]
            return 1 - k if kept.shape == x.shape and kept.dtype == x.dtype else None
    return None


def _is_one(x: Expr) -> bool:
    x = shown_value(x)
    if x.op.name == "size":
        return x.attr("static") == 1 and not x.attr("symbols")
    if x.op.name != "constant":
        return False
    array = x.attr("value").array
    return bool(array.size == 1 and array.reshape(-1)[0] == 1)


def _vector_row(x: Expr) -> Expr | None:
    """The vector ``v`` if ``x`` is ``v`` of shape (n,) reshaped to a row (1, n), else None."""
    if x.op.name != "reshape" or x.ndim != 2 or x.shape[0] != 1 or x.inputs[0].ndim != 1:
        return None
    return x.inputs[0] if x.shape[1] != 1 else None


def _unrow(row: Shown) -> Shown:
    """The column a transposed row reads as: ``(v^\\top)^\\top`` is ``v``."""
    text = row.text.removesuffix("^\\top")
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    return Shown(text, ATOM if row.precedence >= POSTFIX else row.precedence)


def _ones(size: object) -> str:
    return rf"\mathbf{{1}}_{{{size}}}"


def _shape_notation(x: Expr, arg: Shown) -> Shown:
    """Reshapes read as their operand, except a vector made a row (``v^\\top``, vectors are
    columns); a broadcast of a scalar or of a column is written out with ones vectors
    (``\\bar{v} \\mathbf{1}_N``, ``\\bar{v} \\mathbf{1}_{10}^\\top``): the transpose of
    the sum it undoes. A row broadcast (the bias in ``x W + b``) stays implicit, as in numpy.
    """
    if _vector_row(x) is not None:
        return Shown(rf"{{{_wrap(arg, ATOM)}}}^\top", POSTFIX)
    if x.op.name != "broadcast_to":
        return arg
    inner = shown_value(x.inputs[0])
    if all(d == 1 for d in inner.shape) and x.ndim in (1, 2):
        ones = _ones(x.shape[0]) + ("" if x.ndim == 1 else rf" \, {_ones(x.shape[1])}^\top")
        return Shown(rf"{_wrap(arg, PROD)} \, {ones}", PROD, "matrix" if x.ndim == 2 else "")
    return _column_spread(x.inputs[0], arg, x.shape)


def _column_spread(source: Expr, arg: Shown, shape: tuple[object, ...]) -> Shown:
    """``source``, a column (n, 1), spread over ``shape`` (n, K) as
    ``v \\mathbf{1}_K^\\top``; anything else as it is."""
    column = len(shape) == 2 and source.ndim == 2 and source.shape[1] == 1 and shape[1] != 1
    if not column:
        return arg
    return Shown(rf"{_wrap(arg, PROD)} \, {_ones(shape[1])}^\top", PROD, "matrix")


# --------------------------------------------------------------------------- sympy bridge


def local_derivative(node: Expr, names: Mapping[Expr, str]) -> list[tuple[Expr, str]] | None:
    """``[(input, latex of d node / d input)]`` through sympy for an elementwise node, else None.

    Inputs that are constants get no entry. The derivative is elementwise: a reader multiplies
    it (Hadamard) with the incoming adjoint and sums over broadcast axes.
    """
    form = node.op.sympy_form
    if form is None:
        return None
    symbols = [sympy.Symbol(f"a{i}", real=True) for i in range(len(node.inputs))]
    body = form(*symbols, **node.kwargs)
    shown = {s: latex(i, names, top=False) for s, i in zip(symbols, node.inputs)}
    result = []
    for s, i in zip(symbols, node.inputs):
        if i.op.name == "constant" or i.op.name == "size":
            continue
        d = sympy.simplify(sympy.diff(body, s))
        settings: dict[str, object] = {"symbol_names": shown}
        if any(dim != 1 for dim in node.shape):  # over tensors a product is elementwise
            settings["mul_symbol"] = r" \odot "
        text = _printer_class()(settings).doprint(d)
        result.append((i, re.sub(r"(?<![\w}])(\d+(?:\.\d+)?) \\odot ", r"\1 \\, ", text)))
    return result


@functools.cache
def _printer_class() -> type[sympy.printing.latex.LatexPrinter]:
    """sympy's LaTeX with the step function as an Iverson bracket, ``[a > 0]``: the notation
    the comparison ops print (a page never shows both ``\\theta(a)`` and ``[a > 0]``). Made on
    first use: sympy runs only when a derivation is shown."""
    from sympy.printing.latex import LatexPrinter

    class Printer(LatexPrinter):
        def _print_Heaviside(self, expr: sympy.Heaviside, exp: str | None = None) -> str:
            text = rf"\left[{self._print(expr.args[0])} > 0\right]"
            return text if exp is None else rf"{text}^{{{exp}}}"

    return Printer


def to_sympy(expr: Expr, symbols: Mapping[Expr, sympy.Symbol] | None = None) -> sympy.Expr:
    """A graph of scalars (and shape-only ops on them) as a sympy expression.

    Leaves become real symbols named after them (or as given in ``symbols``). Raises
    ValueError for a node that is not elementwise over scalars.
    """
    table: dict[Expr, sympy.Expr] = dict(symbols or {})
    for node in toposort([expr]):
        if node in table:
            continue
        op = node.op
        if op.name == "constant":
            table[node] = sympy.nsimplify(float(node.attr("value").array.reshape(-1)[0]))
            if node.attr("value").array.size != 1:
                raise ValueError(f"to_sympy: a constant of shape {node.shape} is not a scalar")
        elif node.is_leaf:
            table[node] = sympy.Symbol(node.name or "x", real=True)
        elif op.shows_as_operand or (op.name == "sum" and all(node.inputs[0].shape[a] == 1
                                                               for a in node.attr("axis"))):
            table[node] = table[node.inputs[0]]
        elif op.name == "size" and not node.attr("symbols"):
            table[node] = sympy.Integer(node.attr("static"))
        else:
            if op.sympy_form is None or any(d != 1 for d in node.shape):
                raise ValueError(
                    f"to_sympy: op {op.name!r} of shape {node.shape} is not scalar math"
                )
            table[node] = op.sympy_form(*(table[i] for i in node.inputs), **node.kwargs)
    return table[expr]


def rule_latex(node: Expr) -> str | None:
    """The derivative rule of ``node``'s op in matrix notation, if it is a tensor op."""
    return node.op.latex_rule
