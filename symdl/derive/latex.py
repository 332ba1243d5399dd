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

import re
from collections.abc import Mapping

import sympy

from ..errors import OpDefinitionError
from ..ir import Expr, toposort
from ..ops.base import ATOM

__all__ = ["latex", "local_derivative", "name_latex", "rule_latex", "to_sympy", "bar"]

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega",
}


def name_latex(name: str) -> str:
    """A user's name as a math symbol: ``x``, ``x_{1}``, ``\\alpha``, ``\\text{logits}``."""
    match = re.fullmatch(r"([A-Za-z])_?(\d+)", name)
    if match:
        return f"{match[1]}_{{{match[2]}}}"
    if len(name) == 1:
        return name
    if name in GREEK:
        return "\\" + name
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
    done: dict[Expr, tuple[str, int]] = {}
    stack = [expr]
    while stack:
        x = stack[-1]
        if x in done:
            stack.pop()
            continue
        if (x is not expr or not top) and x in names:
            done[x] = names[x], ATOM
        elif x.is_leaf and x.op.name != "constant":
            done[x] = names.get(x, name_latex(x.name or "?")), ATOM
        else:
            waiting = [i for i in x.inputs if i not in done]
            if waiting:
                stack.extend(reversed(waiting))
                continue
            done[x] = _notation(x, [done[i] for i in x.inputs])
        stack.pop()
    return done[expr][0]


def _notation(x: Expr, args: list[tuple[str, int]]) -> tuple[str, int]:
    """``x`` in notation, given its operands' notation and precedence."""
    if x.op.shows_as_operand:
        return args[0]
    form = x.op.latex_form(x)
    if form is None:
        raise OpDefinitionError(
            f"latex: op {x.op.name!r} has no math notation; give its class a `latex` "
            "(or `latex_form`)"
        )
    least = form.operands + (0,) * (len(args) - len(form.operands))
    return form.template.format(*map(_wrap, args, least)), form.precedence


def _wrap(text_prec: tuple[str, int], min_prec: int) -> str:
    text, prec = text_prec
    return text if prec >= min_prec else rf"\left({text}\right)"


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
        result.append((i, sympy.latex(d, symbol_names=shown)))
    return result


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
