"""Rebuilding graphs: the one mechanism under lowering and simplification.

`rebuild` walks a graph inputs-first, rebuilds each node on its (possibly replaced) inputs and
offers it to a replacement function. Labels and gradient provenance move to the replacement, so
generated code keeps its names and ``# grad of:`` comments after any pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .ir import Expr, label_of, next_serial, origins_of, set_label, set_origin, toposort

Replace = Callable[[Expr], "Expr | None"]


def rebuild(
    outputs: Sequence[Expr], replace: Replace, final: Callable[[Expr], bool] | None = None
) -> list[Expr]:
    """Rebuild ``outputs`` bottom-up; ``replace(node)`` returns a substitute or None to keep it.

    A node for which ``final`` is true is kept as it is, with everything below it, unvisited:
    a pass rebuilding what one rewrite built passes the nodes it has finished, so that its cost
    is that of the new nodes, not of the whole graph below them.
    """
    memo: dict[Expr, Expr] = {}
    for node in toposort(outputs, final):
        if final is not None and final(node):
            memo[node] = node
            continue
        start = next_serial()
        inputs = tuple(memo[i] for i in node.inputs)
        changed = any(a is not b for a, b in zip(inputs, node.inputs))
        new = node.op.make(*inputs, **node.kwargs) if changed else node
        sub = replace(new)
        result = new if sub is None else sub
        carry(node, result, start)
        memo[node] = result
    return [memo[o] for o in outputs]


def carry(old: Expr, new: Expr, start: int | None = None) -> None:
    """Move ``old``'s label and provenance onto ``new`` and the nodes built for it.

    The nodes built for it are those below ``new`` created since serial ``start`` (default:
    ``new`` alone). Inputs are always older than their users, so the walk stops at the first
    older node and never visits the rest of the graph.
    """
    if new is old:
        return
    label = label_of(old)
    if label is not None:
        set_label(new, label)
    origins = origins_of(old)
    if not origins:
        return
    start = new.serial if start is None else start
    stack, seen = [new], set()
    while stack:
        n = stack.pop()
        if n in seen or n.serial < start:
            continue
        seen.add(n)
        for origin in origins:
            set_origin(n, origin)
        stack.extend(n.inputs)


def lower(outputs: Sequence[Expr]) -> list[Expr]:
    """Expand composite ops (softmax, logsumexp, cross-entropy) into stable primitives.

    An expansion may contain composites itself (cross-entropy uses logsumexp); those are expanded
    at once, in the same walk, so forward values keep their forward position. Hash-consing then
    shares the common pieces (one ``exp`` for the softmax and logsumexp of the same logits).
    """

    lowered: set[Expr] = set()  # nodes the walk kept: no composite at or below them

    def expand(node: Expr) -> Expr | None:
        if not hasattr(node.op, "expand"):
            lowered.add(node)
            return None
        expansion = node.op.expand(*node.inputs, **node.kwargs)
        result = rebuild([expansion], expand, lowered.__contains__)[0]
        source = node.inputs[0].name
        if source is not None and label_of(node) is None:
            set_label(result, f"{node.op.name}_{source}")  # a readable name: softmax_logits
        return result

    return rebuild(outputs, expand)
