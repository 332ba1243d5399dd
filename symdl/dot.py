"""Graphviz views of expression graphs: forward and gradient graphs, shared values marked.

`to_dot` returns DOT text (deterministic: node ids follow the graph's topological order, never
object ids). Each node is labeled with its op (or name) and shape; a value used by more than one
node (a shared subexpression, computed once thanks to hash-consing) is drawn bold and filled;
nodes built by the differentiation pass are drawn dashed in a second colour, with the forward
node whose rule built them in their tooltip. `to_svg` and `render` lay the graph out through the
``graphviz`` Python package and its ``dot`` program, when both are installed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SymdlError
from .ir import Expr, toposort
from .printing import constant_text, formula
from .provenance import Notes, annotate
from .types import format_shape

if TYPE_CHECKING:
    from .derive import Derivation


__all__ = ["GraphvizError", "render", "to_dot", "to_svg"]

SHARED_STYLE = 'style="filled,bold", fillcolor="#fff2cc", penwidth=2'
GRAD_STYLE = 'color="#b03a2e", fontcolor="#b03a2e", style="dashed"'
LEAF_STYLE = 'shape=box, style="rounded,filled", fillcolor="#e8f0fe"'


class GraphvizError(SymdlError, RuntimeError):
    """The graphviz package or its ``dot`` program is missing or failed."""


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _symbol_map(symbols: Mapping[Expr, str] | Derivation | None) -> Mapping[Expr, str]:
    """``symbols`` as a map; a derivation gives its text symbols (``v1``, ``logits``, ``p``)."""
    if symbols is None:
        return {}
    if isinstance(symbols, Mapping):
        return symbols
    return {f.node: f.text_symbol for f in symbols.forward}


def _label(node: Expr, notes: Notes, symbols: Mapping[Expr, str]) -> str:
    shape = format_shape(node.shape)
    symbol = symbols.get(node)
    if symbol is not None and not node.is_leaf:
        # As on the derivation's page: the value's symbol, then what computes it.
        head = node.op.name if node.op.name != "elementwise" else node.attr("fname")
        return f"{symbol} = {head}\n{shape} {node.dtype}"
    if node.op.name == "constant":
        return f"{constant_text(node)}\n{shape}"
    if node.is_leaf:
        return f"{node.name}\n{node.op.name} {shape}"
    head = node.op.name if node.op.name != "elementwise" else node.attr("fname")
    name = notes.name(node)
    if name:
        head = f"{name} = {head}"
    return f"{head}\n{shape} {node.dtype}"


def to_dot(outputs: Expr | Iterable[Expr], *, name: str = "symdl",
           symbols: Mapping[Expr, str] | Derivation | None = None,
           simplified: bool = False) -> str:
    """DOT text for the graph of ``outputs`` (one expression or several).

    Shared subexpressions (values with more than one user in this graph) are bold and filled;
    gradient nodes (built by a derivative rule) are dashed and red; leaves are boxes; outputs
    get a double border.

    ``symbols`` labels nodes by name: a `Derivation` (``sd.derive(loss, [W, b])``) labels
    each forward value with its symbol on the derivation's page (``v1 = matmul``), or pass
    ``{node: "name"}``. ``simplified`` draws the graph after `symdl.simplify.simplify`, as the
    generated code computes it (``to_dot([loss, *sd.grad(loss, [W])], simplified=True)``: the
    simplified gradient graph).
    """
    outs, notes = annotate([outputs] if isinstance(outputs, Expr) else list(outputs))
    if simplified:
        from .simplify import simplify

        outs = simplify(outs, notes=notes)
    shown = _symbol_map(symbols)
    order = toposort(outs)
    ids = {node: f"n{k}" for k, node in enumerate(order)}
    users: dict[Expr, int] = {}
    for node in order:
        for i in node.inputs:  # x * x uses x twice: it is still computed once
            users[i] = users.get(i, 0) + 1
    out_set = set(outs)
    lines = [f"digraph {_quote(name)} {{", "  rankdir=BT;",
             '  node [fontname="Helvetica", fontsize=11, shape=ellipse];',
             '  edge [color="#555555", arrowsize=0.7];']
    for node in order:
        attrs = [f"label={_quote(_label(node, notes, shown))}"]
        if node.is_leaf:
            attrs.append(LEAF_STYLE)
        origin = notes.origins.get(node)
        if origin is not None:
            attrs.append(GRAD_STYLE)
            attrs.append(f"tooltip={_quote('grad of: ' + formula(origin, notes.labels))}")
        if users.get(node, 0) > 1 and node.op.name != "constant":
            attrs.append(SHARED_STYLE if origin is None else 'penwidth=2, style="dashed,bold"')
        if node in out_set:
            attrs.append("peripheries=2")
        lines.append(f"  {ids[node]} [{', '.join(attrs)}];")
    for node in order:
        for k, i in enumerate(node.inputs):
            edge = f"  {ids[i]} -> {ids[node]}"
            lines.append(edge + (f' [label="{k}", fontsize=9];' if len(node.inputs) > 1 else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _graphviz_source(dot: str):  # type: ignore[no-untyped-def]
    try:
        import graphviz
    except ImportError as exc:
        raise GraphvizError(
            "rendering needs the graphviz Python package (pip install graphviz) and the "
            "Graphviz `dot` program (apt-get install graphviz); to_dot() needs neither"
        ) from exc
    return graphviz.Source(dot)


def to_svg(outputs: Expr | Iterable[Expr], *,
           symbols: Mapping[Expr, str] | Derivation | None = None,
           simplified: bool = False) -> str:
    """The graph laid out as SVG text (needs the ``graphviz`` package and ``dot``); the
    keywords are `to_dot`'s."""
    return render(outputs, format="svg", symbols=symbols, simplified=simplified).decode("utf-8")


def render(outputs: Expr | Iterable[Expr], format: str = "png",  # noqa: A002 - graphviz's name
           path: str | Path | None = None, *,
           symbols: Mapping[Expr, str] | Derivation | None = None,
           simplified: bool = False) -> bytes:
    """The graph laid out as ``format`` bytes (png, svg, pdf); also written to ``path`` if given.
    The keywords are `to_dot`'s."""
    source = _graphviz_source(to_dot(outputs, symbols=symbols, simplified=simplified))
    try:
        data: bytes = source.pipe(format=format)
    except Exception as exc:  # graphviz raises ExecutableNotFound / CalledProcessError
        raise GraphvizError(f"Graphviz could not render {format}: {exc}") from exc
    if path is not None:
        Path(path).write_bytes(data)
    return data
