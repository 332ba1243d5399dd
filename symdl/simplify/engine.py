"""The rewrite engine: apply named local rewrites, in list order, until nothing changes.

A rewrite is a function ``rule(node) -> Expr | None`` whose docstring's first line is its
pattern (``x * 1 -> x``). The engine rebuilds the graph inputs-first; each rebuilt node is
offered to the rules in order, and whatever a rule returns is simplified again, so a chain of
rewrites settles in one walk. Whole-graph walks repeat until a walk changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..ir import Expr, toposort
from ..provenance import Notes
from ..rewrite import rebuild

Rule = Callable[[Expr], "Expr | None"]
MAX_WALKS = 20
MAX_DEPTH = 50


@dataclass
class RewriteLog:
    """Which rewrites fired and how often (for `symdl generate --report`)."""

    fired: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        """``name x3, other x1`` in the order rules are listed."""
        return ", ".join(f"{name} x{n}" for name, n in self.fired.items()) or "none"


def pattern(rule: Rule) -> str:
    """A rule's pattern: the first line of its docstring."""
    return (rule.__doc__ or rule.__name__).strip().splitlines()[0]


def run_rules(
    outputs: Sequence[Expr], rules: Sequence[Rule], log: RewriteLog | None = None,
    notes: Notes | None = None,
) -> list[Expr]:
    """Rewrite ``outputs`` with ``rules`` to a fixed point; record firings in ``log``.

    With ``notes``, names and gradient origins follow each replacement.
    """

    settled: set[Expr] = set()  # nodes no rule matches (nodes are immutable, so this holds)

    def replace(node: Expr, depth: int = 0) -> Expr | None:
        if node in settled:
            return None
        for rule in rules:
            result = rule(node)
            if result is None or result is node:
                continue
            if log is not None:
                log.fired[rule.__name__] += 1
            if depth >= MAX_DEPTH:
                return result
            # The replacement may itself match rules (and its new inputs may, too). Settled
            # nodes have settled inputs (a node settles after its inputs): the walk stops there.
            return rebuild(
                [result], lambda n: replace(n, depth + 1), notes, final=settled.__contains__
            )[0]
        settled.add(node)
        return None

    current = list(outputs)
    known = set(toposort(current)) if notes is not None else None
    for _ in range(MAX_WALKS):
        new = rebuild(current, replace, notes, known)
        if all(a is b for a, b in zip(new, current)):
            return new
        current = new
    return current
