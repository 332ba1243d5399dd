"""The rewrite engine: apply named local rewrites, in list order, until nothing changes.

A rewrite is a function ``rule(node) -> Expr | None`` whose docstring's first line is its
pattern (``x * 1 -> x``). The engine rebuilds the graph inputs-first; each rebuilt node is
offered to the rules in order, and whatever a rule returns is simplified again, so a chain of
rewrites settles in one walk. Whole-graph walks repeat until a walk changes nothing.

A rule marked `assumes_finite` (``x * 0 -> 0``) is exact only for finite inputs and ignores the
sign of zero. The engine offers it a node only when differentiation built that node (it is in
``notes.origins``, or a rule built it while rewriting such a node) or the caller passed
``fast_math=True``: what the user wrote computes what numpy computes, inf, NaN and -0.0 included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..ir import Expr, toposort
from ..provenance import Notes
from ..rewrite import rebuild

Rule = Callable[[Expr], "Expr | None"]


def assumes_finite(rule: Rule) -> Rule:
    """Mark ``rule`` as exact only for finite values and unsigned zeros (see the module)."""
    rule.assumes_finite = True  # type: ignore[attr-defined]
    return rule


def is_finite_only(rule: Rule) -> bool:
    """Whether ``rule`` was marked with `assumes_finite`."""
    return getattr(rule, "assumes_finite", False)


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
    notes: Notes | None = None, *, fast_math: bool = False,
) -> list[Expr]:
    """Rewrite ``outputs`` with ``rules`` to a fixed point; record firings in ``log``.

    With ``notes``, names and gradient origins follow each replacement, and `assumes_finite`
    rules rewrite the nodes differentiation built; ``fast_math`` lets them rewrite any node.
    """

    settled: set[Expr] = set()  # nodes no rule matches (nodes are immutable, so this holds)
    # Nodes no rule matches when the `assumes_finite` rules are off for them: a node the user
    # wrote may meet them again where differentiation built it (hash-consing shares it).
    settled_strict: set[Expr] = set()
    origins = notes.origins if notes is not None else {}
    # The rules a node the user wrote is offered, picked once: the engine offers ~10^4 nodes
    # to ~50 rules each, and asking each rule per node was a tenth of its time.
    strict = [rule for rule in rules if not is_finite_only(rule)]

    def is_settled(node: Expr) -> bool:
        return node in settled or node in settled_strict

    def replace(node: Expr, depth: int = 0, inherited: bool = False) -> Expr | None:
        derived = fast_math or inherited or node in origins
        if node in settled or (not derived and node in settled_strict):
            return None
        for rule in rules if derived else strict:
            result = rule(node)
            if result is None or result is node:
                continue
            if log is not None:
                log.fired[rule.__name__] += 1
            if depth >= MAX_DEPTH:
                return result
            # The replacement may itself match rules (and its new inputs may, too). Settled
            # nodes have settled inputs (a node settles after its inputs): the walk stops there.
            # What a rule built for a derived node is derived too (`Notes.carry` records that
            # after the walk; the nested walk needs it now).
            return rebuild(
                [result], lambda n: replace(n, depth + 1, derived), notes, final=is_settled
            )[0]
        (settled if derived else settled_strict).add(node)
        return None

    current = list(outputs)
    known = set(toposort(current)) if notes is not None else None
    for _ in range(MAX_WALKS):
        new = rebuild(current, replace, notes, known)
        if all(a is b for a, b in zip(new, current)):
            return new
        current = new
    return current
