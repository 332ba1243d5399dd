"""An evaluation trace: the forward and reverse sweeps of reverse mode, with numbers.

The lecture's table for ``y = ln x1 + x1 x2 - sin x2`` at ``(x1, x2) = (2, 5)``: the inputs are
``v_{-1}, v_0``, the intermediates ``v_1 .. v_5`` (first-level values first), and the reverse
sweep gives each ``\\bar{v}_i`` as the sum of what its users' rules send it. The values come from
a generated numpy module that returns every intermediate value and every adjoint, so the numbers
are the ones the generated code computes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..autodiff import grad
from ..ir import Expr
from ..printing import formula
from ..provenance import depth_order, strip_labels
from .latex import latex, name_latex
from .steps import adjoint_standin, plus, rule_sends, stable_walk

__all__ = ["Trace", "TraceRow", "trace"]


@dataclass
class TraceRow:
    """One row of the table: ``symbol = definition = value``."""

    node: Expr
    symbol: str
    latex: str
    text: str
    value: np.ndarray


@dataclass
class Trace:
    """The forward rows (inputs first) and the reverse rows (output first) of an evaluation."""

    forward: list[TraceRow]
    reverse: list[TraceRow]

    def value(self, symbol: str) -> np.ndarray:
        """The value in the row whose text symbol is ``symbol`` (``v3``, ``v-1_bar``)."""
        for row in [*self.forward, *self.reverse]:
            if row.text == symbol or row.symbol == symbol:
                return row.value
        raise KeyError(symbol)

    def to_markdown(self, digits: int = 4) -> str:
        """Two Markdown tables, forward then reverse, values rounded to ``digits``."""
        out = ["**Forward evaluation trace**", "", "| value | definition | = |", "|---|---|---:|"]
        out += [_row(r, digits) for r in self.forward]
        out += ["", "**Reverse adjoint trace**", "", "| adjoint | from its users | = |",
                "|---|---|---:|"]
        out += [_row(r, digits) for r in self.reverse]
        return "\n".join(out) + "\n"

    def to_text(self, digits: int = 4) -> str:
        """The two tables as plain text."""
        rows = ["forward:"]
        rows += [f"  {r.text:>8} = {r.node.name or ''} {_number(r.value, digits)}"
                 for r in self.forward]
        rows += ["reverse:"]
        rows += [f"  {r.text:>8} = {_number(r.value, digits)}" for r in self.reverse]
        return "\n".join(rows) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        """The tables in a notebook: self-contained HTML (see `render.trace_notebook_html`)."""
        from .render import trace_notebook_html

        return trace_notebook_html(self)


def _row(r: TraceRow, digits: int) -> str:
    return f"| ${r.symbol}$ | ${r.latex}$ | {_number(r.value, digits)} |"


def _number(value: np.ndarray, digits: int) -> str:
    array = np.asarray(value)
    if array.ndim == 0:
        return f"{float(array):.{digits}f}"
    return np.array2string(array, precision=digits, separator=", ").replace("\n", " ")


def trace(y: Expr, wrt: Sequence[Expr], values: Mapping[Expr, object]) -> Trace:
    """Evaluate ``y`` and its adjoints at ``values`` ({leaf: array}) and tabulate both sweeps.

    Symbols follow the lecture: the ``m`` leaves are ``v_{1-m} .. v_0``, the other values
    ``v_1 ..`` in depth order, and each adjoint row is the sum of what the users' rules sent.
    """
    from codegen import compile as compile_module

    wrt = list(wrt)
    grad(y, wrt)  # checks y and wrt, with its error messages
    walk = stable_walk(strip_labels([y])[0], wrt)
    y, table = walk.y, walk.adjoints
    nodes = [n for n in depth_order(walk.order) if n.op.name not in ("constant", "size")]
    leaves = [n for n in nodes if n.is_leaf]
    tex: dict[Expr, str] = {}
    text: dict[Expr, str] = {}
    for k, n in enumerate(leaves):
        index = k + 1 - len(leaves)
        tex[n], text[n] = f"v_{{{index}}}", f"v{index}"
    for k, n in enumerate([n for n in nodes if not n.is_leaf], start=1):
        tex[n], text[n] = f"v_{{{k}}}", f"v{k}"

    # Reverse rows: each node's adjoint as the sum of what its users' rules sent it.
    sent: dict[Expr, list[tuple[str, str]]] = {}
    reverse_nodes = [n for n in reversed(nodes) if n in table]
    reverse_text: dict[Expr, tuple[str, str]] = {}
    for n in reverse_nodes:
        got = sent.get(n, [])
        reverse_text[n] = (
            ("1", "1") if n is y else (plus(a for a, _ in got), plus(b for _, b in got))
        )
        if n.is_leaf or not n.op.differentiable:
            continue
        standin = adjoint_standin(table[n])  # the adjoint by its symbol, even if it is a constant
        names = {**tex, standin: rf"\bar{{v}}{tex[n][1:]}"}
        text_names = {**text, standin: f"{text[n]}_bar"}
        here = walk.sent.get(n, [])
        for (x, _), ct in zip(here, rule_sends(n, standin, here)):
            shown = (names[ct], text_names[ct]) if ct in names else (
                latex(ct, names), formula(ct, text_names))
            sent.setdefault(x, []).append(shown)

    inputs = [n for n in leaves if n in values]
    missing = [n.name for n in leaves if n not in values]
    if missing:
        raise ValueError(f"trace: no value given for {missing}; pass {{leaf: array}} for each")
    outputs = nodes + [table[n] for n in reverse_nodes]
    module = compile_module({"trace": (inputs, outputs)}, "trace")
    args = [np.asarray(values[n], dtype=n.dtype) for n in inputs]
    results = module.trace(*args)
    forward_values = results[: len(nodes)]
    reverse_values = results[len(nodes):]

    forward_rows = [
        TraceRow(n, tex[n], n.name if n.is_leaf else latex(n, tex),
                 text[n], np.asarray(v))
        for n, v in zip(nodes, forward_values)
    ]
    for row in forward_rows:
        if row.node.is_leaf:
            row.latex = name_latex(row.node.name or "?")
    reverse_rows = [
        TraceRow(n, rf"\bar{{v}}{tex[n][1:]}", reverse_text[n][0], f"{text[n]}_bar", np.asarray(v))
        for n, v in zip(reverse_nodes, reverse_values)
    ]
    return Trace(forward_rows, reverse_rows)
