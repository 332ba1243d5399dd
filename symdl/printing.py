"""Two text views of a graph: a line-per-node dump and infix formulas.

`dump` is the stable, diffable view (``%logits = add(%x_W, %b) : (N, 10) float32``); `formula`
renders an expression the way a user wrote it (``x @ W + b``), inlining unnamed subexpressions.
Generated code uses `formula` for its provenance comments.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence

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
    """One line per node, inputs first: ``%name = op(%a, %b, attr=...) : shape dtype``.

    Labels are shown as the names of the values they name, not as nodes of their own; in a
    gradient, the forward values keep the names the differentiated graph gave them.
    """
    from .provenance import annotate

    bare, notes = annotate(list(outputs))
    names: dict[Expr, str] = {}
    used: set[str] = set()
    lines = []
    counter = 0
    for node in toposort(bare):
        base = notes.name(node)
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
            args += [f"{k}={_attr_text(k, v)}" for k, v in node.attrs
                     if k not in node.op.hidden_attrs]
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


# What an expression too long to show reads as in a formula.
ELIDED = "..."


def formula(
    x: Expr, names: Mapping[Expr, str], *, top: bool = True, limit: int | None = None
) -> str:
    """``x`` as an infix formula; nodes in ``names`` (and leaves) appear by name.

    With ``limit``, the formula is written out only as deep as fits in ``limit`` characters,
    and what lies deeper reads ``...``: a comment on a layer deep in a network shows
    ``relu(relu(... @ W8 + b8) @ W9 + b9)``, not the whole network, and costs the same at any
    depth. Iterative, so graph depth is not bounded by Python's stack.
    """
    root_named = not top and x in names

    def known(n: Expr) -> tuple[str, int] | None:
        """The text of a node printed without looking at its inputs, if it is one."""
        if n in names and (n is not x or root_named):
            return names[n], 100
        if n.op.name == "constant":
            text = _readable(n) or constant_text(n)
            return text, (100 if not text.startswith("-") else 35)
        if n.is_leaf:
            return names.get(n, n.name or "?"), 100
        return None

    # How far each node to write out lies from x (breadth-first); with a limit, no further
    # than `limit` nodes, as no more can fit in `limit` characters.
    level: dict[Expr, int] = {}
    queue: deque[tuple[Expr, int]] = deque([(x, 0)])
    while queue and (limit is None or len(level) < limit):
        n, depth = queue.popleft()
        if n in level or known(n) is not None:
            continue
        level[n] = depth
        queue.extend((i, depth + 1) for i in n.inputs if i not in level)
    if limit is None:
        return _render(x, known, level, len(level))
    shown = _render(x, known, level, 0)
    for depth in range(1, max(level.values(), default=0) + 1):
        deeper = _render(x, known, level, depth)
        if len(deeper) > limit:
            break
        shown = deeper
    return shown


def _render(
    x: Expr, known: Callable[[Expr], tuple[str, int] | None], level: Mapping[Expr, int],
    depth: int,
) -> str:
    """The formula of ``x`` with the nodes of ``level`` up to ``depth`` written out."""
    texts: dict[Expr, tuple[str, int]] = {}
    stack: list[tuple[Expr, bool]] = [(x, False)]
    while stack:
        n, ready = stack.pop()
        if n in texts:
            continue
        text = known(n)
        if text is None and level.get(n, depth + 1) > depth:
            text = ELIDED, 100
        if text is None and not ready:
            stack.append((n, True))
            stack.extend((i, False) for i in reversed(n.inputs) if i not in texts)
            continue
        texts[n] = text if text is not None else _compose(n, [texts[i] for i in n.inputs])
    return texts[x][0]


def _compose(x: Expr, args: list[tuple[str, int]]) -> tuple[str, int]:
    """The text and precedence of ``x`` applied to its inputs' texts and precedences."""
    op = x.op
    if op.shows_as_operand and len(args) == 1:
        return args[0]  # a reshape, broadcast or cast reads as its operand, not an IR dump
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
        if key in ("body", "symbols") or key in op.hidden_attrs:
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
