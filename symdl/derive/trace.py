"""An evaluation trace: the forward primal, forward tangent and reverse adjoint sweeps.

The lecture's table for ``y = ln x1 + x1 x2 - sin x2`` at ``(x1, x2) = (2, 5)``: the inputs are
``v_{-1}, v_0``, the intermediates ``v_1 .. v_5`` (first-level values first), and the reverse
sweep gives each ``\\bar{v}_i`` as the sum of what its users' rules send it. The values come from
a generated numpy module that returns every intermediate value and every adjoint, so the numbers
are the ones the generated code computes.

The forward-mode tangent trace (Baydin et al. 2018, "Automatic differentiation in machine
learning: a survey", Table 2) seeds one direction, ``\\dot{x}_1 = 1`` and the other inputs' dots 0,
and carries ``\\dot{v}_i = \\sum_j (\\partial v_i / \\partial v_j) \\dot{v}_j`` forward. Its values
come from symdl's own `jvp` of each intermediate, compiled into the same module, so a reader
sees forward mode's ``\\dot{y}`` equal reverse mode's ``\\bar{x}_1``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..autodiff import grad, jvp
from ..ir import Expr
from ..printing import formula
from ..provenance import depth_order, strip_labels
from .latex import latex, local_derivative, name_latex
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
    # Forward mode: one row per forward row, ``\dot{v}_i`` along the seeded direction.
    tangent: list[TraceRow] = field(default_factory=list)
    seed: dict[str, float] = field(default_factory=dict)  # leaf name -> its dot (1 or 0)

    def value(self, symbol: str) -> np.ndarray:
        """The row value whose text symbol is ``symbol`` (``v3``, ``v3_bar``, ``v3_dot``)."""
        for row in [*self.forward, *self.reverse, *self.tangent]:
            if row.text == symbol or row.symbol == symbol:
                return row.value
        raise KeyError(symbol)

    def to_markdown(self, digits: int = 4) -> str:
        """Markdown tables: forward primal, forward tangent (if any), reverse adjoint."""
        out = ["**Forward primal trace**", "", "| value | definition | = |", "|---|---|---:|"]
        out += [_row(r, digits) for r in self.forward]
        if self.tangent:
            out += ["", f"**Forward tangent trace** (forward mode, seeded ${self.seed_latex()}$)",
                    "", "| tangent | chain rule | = |", "|---|---|---:|"]
            out += [_row(r, digits) for r in self.tangent]
        out += ["", "**Reverse adjoint trace**", "", "| adjoint | from its users | = |",
                "|---|---|---:|"]
        out += [_row(r, digits) for r in self.reverse]
        return "\n".join(out) + "\n"

    def seed_latex(self) -> str:
        """The tangent's seed as LaTeX: ``\\dot{x}_1 = 1, \\dot{x}_2 = 0``."""
        return ", ".join(rf"\dot{{{_dot_base(name_latex(k))}}}{_dot_sub(name_latex(k))} = {v:g}"
                         for k, v in self.seed.items())

    def to_latex(self, digits: int = 4) -> str:
        """The tables as LaTeX ``tabular`` environments (for the derivation's ``.tex``)."""
        def table(title: str, head: str, rows: list[TraceRow]) -> list[str]:
            body = [rf"${r.symbol}$ & ${r.latex}$ & {_number(r.value, digits)} \\" for r in rows]
            return [rf"\paragraph{{{title}}}", r"\begin{tabular}{llr}", rf"{head} \\ \hline",
                    *body, r"\end{tabular}", ""]

        out = table("Forward primal trace", "value & definition & =", self.forward)
        if self.tangent:
            out += table(f"Forward tangent trace (seeded ${self.seed_latex()}$)",
                         "tangent & chain rule & =", self.tangent)
        out += table("Reverse adjoint trace", "adjoint & from its users & =", self.reverse)
        return "\n".join(out) + "\n"

    def to_text(self, digits: int = 4) -> str:
        """The two tables as plain text."""
        rows = ["forward:"]
        rows += [f"  {r.text:>8} = {r.node.name or ''} {_number(r.value, digits)}"
                 for r in self.forward]
        if self.tangent:
            seed = ", ".join(f"{k}_dot = {v:g}" for k, v in self.seed.items())
            rows += [f"tangent (forward mode, {seed}):"]
            rows += [f"  {r.text:>8} = {_number(r.value, digits)}" for r in self.tangent]
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


def trace(y: Expr, wrt: Sequence[Expr], values: Mapping[Expr, object],
          tangent: Mapping[Expr, float] | None = None) -> Trace:
    """Evaluate ``y``, its tangents and its adjoints at ``values`` ({leaf: array}) and tabulate
    the three sweeps.

    Symbols follow the lecture: the ``m`` leaves are ``v_{1-m} .. v_0``, the other values
    ``v_1 ..`` in depth order, and each adjoint row is the sum of what the users' rules sent.
    ``tangent`` seeds forward mode ({leaf: dot}); by default the first of ``wrt`` gets 1 and
    every other input 0, as in Baydin et al.'s Table 2 (``\\dot{y} = \\partial y/\\partial x_1``).
    """
    from codegen import compile as compile_module

    from .steps import cut_at

    y, wrt = cut_at(y, list(wrt))  # a named value (logits) becomes a leaf, as in `derive`
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
    seed = _seed(inputs, wrt, tangent)
    dots, tangent_outputs = _tangents(nodes, inputs, seed)
    outputs = nodes + [table[n] for n in reverse_nodes]
    extra = [n for n in _leaves_of(tangent_outputs)
             if n not in inputs and n not in dots.values()]  # jvp's stand-ins
    module = compile_module(
        {"trace": ([*inputs, *dots.values(), *extra], [*outputs, *tangent_outputs])}, "trace")
    args = [np.asarray(values[n], dtype=n.dtype) for n in inputs]
    args += [np.full(np.shape(a), seed.get(n, 0.0), dtype=n.dtype) for n, a in zip(inputs, args)
             if n in dots]
    # The stand-in cotangent of `jvp` drops out of J v (J v is linear in it): any value works.
    args += [np.ones(_concrete(n), n.dtype) for n in extra]
    results = module.trace(*args)
    forward_values = results[: len(nodes)]
    reverse_values = results[len(nodes): len(outputs)]
    tangent_values = results[len(outputs):]

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
    dot_tex = {n: _dot(tex[n]) for n in nodes}
    tangent_rows = []
    computed = iter(tangent_values)
    for n in nodes:
        if n.is_leaf:
            value = np.asarray(seed.get(n, 0.0)) if n in dots else np.asarray(0.0)
            shown = f"{seed.get(n, 0.0):g}"
        else:
            value = np.asarray(next(computed))
            shown = _chain_rule(n, tex, dot_tex)
        tangent_rows.append(TraceRow(n, dot_tex[n], shown, f"{text[n]}_dot", value))
    return Trace(forward_rows, reverse_rows, tangent_rows,
                 {n.name or "?": float(seed.get(n, 0.0)) for n in inputs if n in dots})


def _dot_base(symbol: str) -> str:
    return symbol.split("_", 1)[0]


def _dot_sub(symbol: str) -> str:
    return "_" + symbol.split("_", 1)[1] if "_" in symbol else ""


def _dot(symbol: str) -> str:
    """``v_{3}`` -> ``\\dot{v}_{3}``: the dot on the letter, not on the subscript."""
    return rf"\dot{{{_dot_base(symbol)}}}{_dot_sub(symbol)}"


def _seed(inputs: list[Expr], wrt: list[Expr],
          tangent: Mapping[Expr, float] | None) -> dict[Expr, float]:
    """Each float input's dot: ``tangent`` as given, else 1 for the first of ``wrt``."""
    if tangent is None:
        tangent = {wrt[0]: 1.0} if wrt else {}
    unknown = [getattr(k, "name", k) for k in tangent if k not in inputs]
    if unknown:
        raise ValueError(f"trace: tangent seeds {unknown} are not inputs of y; seed the leaves "
                         f"{[n.name for n in inputs]}")
    return {n: float(tangent.get(n, 0.0)) for n in inputs if n.dtype.startswith("float")}


def _tangents(nodes: list[Expr], inputs: list[Expr],
              seed: dict[Expr, float]) -> tuple[dict[Expr, Expr], list[Expr]]:
    """Placeholders for the inputs' dots and each intermediate's tangent, ``sum_x J_x x_dot``,
    by `jvp` (so the numbers are what symdl's forward mode computes)."""
    from ..ops import api

    dots = {n: api.placeholder(f"{n.name}_dot", n.shape, n.dtype) for n in inputs if n in seed}
    out = []
    for n in nodes:
        if n.is_leaf:
            continue
        terms = [jvp(n, x, d) for x, d in dots.items()]
        total = terms[0] if terms else api.zeros_like(n)
        for t in terms[1:]:
            total = total + t
        out.append(total)
    return dots, out


def _leaves_of(outputs: list[Expr]) -> list[Expr]:
    from ..ir import leaves

    return leaves(outputs)


def _concrete(n: Expr) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else 1 for d in n.shape)


def _chain_rule(n: Expr, tex: dict[Expr, str], dot_tex: dict[Expr, str]) -> str:
    """``\\dot{v}_i`` as the chain rule writes it: ``sum_j (d v_i / d v_j) \\dot{v}_j``."""
    local = local_derivative(n, tex)
    if local is None:  # a tensor op: its Jacobian by name
        local = [(i, rf"\frac{{\partial {tex[n]}}}{{\partial {tex[i]}}}")
                 for i in n.inputs if i in tex]
    terms = []
    for i, d in local:
        if i not in dot_tex:
            continue
        if d in ("1", "1.0"):
            terms.append(dot_tex[i])
        elif d in ("-1", "-1.0"):
            terms.append("-" + dot_tex[i])
        elif d in ("0", "0.0"):
            continue
        else:
            # a sum is bracketed before it multiplies the dot; a product or a function is not
            factor = rf"\left({d}\right)" if _is_sum(d) else d
            terms.append(f"{factor} \\, {dot_tex[i]}")
    return plus(terms)


def _is_sum(tex: str) -> bool:
    """Whether ``tex`` has a ``+`` or ``-`` outside braces and brackets (``v_{-1}`` has not)."""
    depth = 0
    for k, c in enumerate(tex):
        if c in "{(":
            depth += 1
        elif c in "})":
            depth -= 1
        elif c in "+-" and depth == 0 and k > 0:
            return True
    return False
