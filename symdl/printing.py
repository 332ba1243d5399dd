"""Two text views of a graph: a line-per-node dump and infix formulas.

`dump` is the stable, diffable view (``%logits = add(%x_W, %b) : (N, 10) float32``); `formula`
renders an expression the way a user wrote it (``x @ W + b``), inlining unnamed subexpressions.
Generated code uses `formula` for its provenance comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from .ir import Expr, toposort
from .types import format_shape


def _attr_text(key: str, value: object) -> str:
    if key == "axis" and isinstance(value, tuple) and len(value) == 1:
        return str(value[0])
    return repr(value)


def constant_text(x: Expr) -> str:
    """A short, exact text for a constant: ``0.5``, ``[1.0, 2.0]`` or ``<float32 (3, 4)>``."""
    array = x.attr("value").array
    if array.ndim == 0:
        item = array.item()
        return repr(item)
    if array.size <= 6:
        return repr(array.tolist())
    return f"<{array.dtype} {format_shape(array.shape)}>"


def dump(outputs: Sequence[Expr]) -> str:
    """One line per node, inputs first: ``%name = op(%a, %b, attr=...) : shape dtype``."""
    names: dict[Expr, str] = {}
    used: set[str] = set()
    lines = []
    counter = 0
    for node in toposort(outputs):
        base = node.name
        if base is None or base in used:
            base = str(counter)
            counter += 1
        names[node] = base
        used.add(base)
        facts = f"{format_shape(node.shape)} {node.dtype}"
        if node.op.name == "constant":
            lines.append(f"%{base} = constant {constant_text(node)} : {facts}")
        elif node.is_leaf:
            lines.append(f"%{base} = {node.op.name} : {facts}")
        else:
            args = [f"%{names[i]}" for i in node.inputs]
            args += [f"{k}={_attr_text(k, v)}" for k, v in node.attrs]
            lines.append(f"%{base} = {node.op.name}({', '.join(args)}) : {facts}")
    return "\n".join(lines)


def show(*outputs: Expr | Iterable[Expr]) -> str:
    """The text dump of one or more expressions (also what ``str(expr)`` gives)."""
    flat: list[Expr] = []
    for o in outputs:
        flat.extend([o] if isinstance(o, Expr) else o)
    return dump(flat)


def _readable(x: Expr) -> str | None:
    """A float scalar to 15 digits, as sympy shows it: ``1 - 0.9`` reads ``0.1`` in formulas."""
    array = x.attr("value").array
    if array.ndim != 0 or array.dtype.kind != "f" or not np.isfinite(array):
        return None
    return repr(float(f"{array.item():.15g}"))


def formula(x: Expr, names: Mapping[Expr, str], *, top: bool = True) -> str:
    """``x`` as an infix formula; nodes in ``names`` (and leaves) appear by name."""
    return _formula(x, names, top)[0]


def _formula(x: Expr, names: Mapping[Expr, str], top: bool) -> tuple[str, int]:
    if not top and x in names:
        return names[x], 100
    if x.op.name == "constant":
        text = _readable(x) or constant_text(x)
        return text, (100 if not text.startswith("-") else 35)
    if x.is_leaf:
        return names.get(x, x.name or "?"), 100
    op = x.op
    args = [_formula(i, names, False) for i in x.inputs]
    if op.infix is not None and len(args) == 2:
        (a, pa), (b, pb) = args
        right_assoc = op.infix == "**"
        a = a if pa > op.precedence or (pa == op.precedence and not right_assoc) else f"({a})"
        b = b if pb > op.precedence or (pb == op.precedence and right_assoc) else f"({b})"
        return f"{a} {op.infix} {b}", op.precedence
    if op.infix is not None and len(args) == 1:
        a, pa = args[0]
        return f"{op.infix}{a if pa > op.precedence else f'({a})'}", op.precedence
    parts = [a for a, _ in args]
    special = op.text_form(x, parts)
    if special is not None:
        return special
    for key, value in x.attrs:
        if key in ("body", "symbols"):
            continue
        if key == "value" or (key == "keepdims" and value is False):
            continue
        parts.append(f"{key}={_attr_text(key, value)}")
    return f"{op.name}({', '.join(parts)})", 100


def size_text(x: Expr) -> str:
    """``N`` or ``784 * N`` for a symbolic size node."""
    static, symbols = x.attr("static"), x.attr("symbols")
    factors = ([str(static)] if static != 1 else []) + list(symbols)
    return " * ".join(factors)


def index_text(index: tuple[tuple[object, ...], ...]) -> str:
    """numpy index text for a normalized index: ``:, 0`` or ``None, 1:3``."""
    parts = []
    for entry in index:
        if entry[0] == "new":
            parts.append("None")
        elif entry[0] == "int":
            parts.append(str(entry[1]))
        else:
            start, stop, step = entry[1:]
            text = f"{'' if start is None else start}:{'' if stop is None else stop}"
            if step is not None:
                text += f":{step}"
            parts.append(text)
    return ", ".join(parts)


def array_repr(array: np.ndarray) -> str:
    """Exact Python text for a small array's values (floats round-trip through repr)."""
    return repr(array.tolist())
