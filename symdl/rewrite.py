"""Rebuilding graphs: the one mechanism under lowering and simplification.

`rebuild` walks a graph inputs-first, rebuilds each node on its (possibly replaced) inputs and
offers it to a replacement function. Labels met on the way (a rule or an expansion may return a
named value) are stripped into the call's `Notes`; with ``known`` given, names and gradient
provenance move to each replacement (`Notes.carry`), so generated code keeps its names and
``# grad of:`` comments after any pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .ir import Expr, toposort
from .ops.base import Label, label
from .provenance import Notes

Replace = Callable[[Expr], "Expr | None"]


def rebuild(
    outputs: Sequence[Expr], replace: Replace, notes: Notes | None = None,
    known: set[Expr] | None = None, final: Callable[[Expr], bool] | None = None,
) -> list[Expr]:
    """Rebuild ``outputs`` bottom-up; ``replace(node)`` returns a substitute or None to keep it.

    ``known`` (the nodes of the graph before the pass) switches on carrying names and origins
    to replacements; nested rebuilds of one replacement pass ``notes`` alone, to record names.
    A node for which ``final`` is true is kept as it is, with everything below it, unvisited:
    a pass rebuilding what one rewrite built passes the nodes it has finished, so that its cost
    is that of the new nodes, not of the whole graph below them.
    """
    memo: dict[Expr, Expr] = {}
    for node in toposort(outputs, final):
        if final is not None and final(node):
            memo[node] = node
            continue
        if node.op is Label:
            bare = memo[node.inputs[0]]
            memo[node] = bare
            if notes is not None:
                notes.label(bare, node.attr("name"))
            continue
        inputs = tuple(memo[i] for i in node.inputs)
        changed = any(a is not b for a, b in zip(inputs, node.inputs))
        new = node.op.make(*inputs, **node.kwargs) if changed else node
        if notes is not None and known is not None and new is not node:
            notes.carry(node, new, known)  # before `replace`: rules ask whether it is derived
        sub = replace(new)
        result = new if sub is None else sub
        if notes is not None and known is not None:
            notes.carry(node, result, known)
        memo[node] = result
    return [memo[o] for o in outputs]


def rewrite(outputs: Sequence[Expr], replace: Replace, notes: Notes | None = None) -> list[Expr]:
    """`rebuild` as a pass over a whole graph: names and origins follow the replacements."""
    known = set(toposort(outputs)) if notes is not None else None
    return rebuild(outputs, replace, notes, known)


def lower(outputs: Sequence[Expr], notes: Notes | None = None) -> list[Expr]:
    """Expand composite ops (softmax, logsumexp, cross-entropy) into stable primitives.

    An expansion may contain composites itself (cross-entropy uses logsumexp); those are expanded
    at once, in the same walk, so forward values keep their forward position. Hash-consing then
    shares the common pieces (one ``exp`` for the softmax and logsumexp of the same logits).
    """
    fallback: list[tuple[Expr, str]] = []  # names for expansions the user left unnamed

    finished: set[Expr] = set()  # nodes the walk kept: no composite at or below them

    def expand(node: Expr) -> Expr | None:
        if not hasattr(node.op, "expand"):
            finished.add(node)
            return None
        # An expansion sees its inputs under their names, so it can name what it builds
        # (``logits_shifted``); the nested rebuild strips those labels into the notes.
        inputs = [_named(i, notes) for i in node.inputs]
        expansion = node.op.expand(*inputs, **node.kwargs)
        result = rebuild([expansion], expand, notes, final=finished.__contains__)[0]
        source = notes.name(node.inputs[0]) if notes is not None else None
        if source is not None:
            fallback.append((result, f"{node.op.name}_{source}"))  # readable: softmax_logits
        return result

    lowered = rewrite(outputs, expand, notes)
    if notes is not None:
        for node, name in fallback:
            notes.label(node, name)  # after the pass: a name the user gave comes first
    return lowered


def _named(x: Expr, notes: Notes | None) -> Expr:
    name = None if notes is None or x.is_leaf else notes.labels.get(x)
    return x if name is None else label(x, name)
