"""Simplification: small named rewrites run in a fixed order until nothing changes.

Rules marked `assumes_finite` (``x * 0 -> 0``, ``x - x -> 0``) rewrite only what differentiation
built, unless ``fast_math=True``: see `rules`.

`simplify` runs every rule in `rules.RULES`; `stabilize` runs the subset that makes naive losses
numerically stable (`rules.STABILIZE`), which `grad` applies before differentiating so that
``-sum(y * log(softmax(z)))`` is differentiated as softmax cross-entropy: ``softmax(z) - y``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir import Expr
from ..provenance import Notes
from .engine import RewriteLog, assumes_finite, is_finite_only, pattern, run_rules
from .rules import RULES, STABILIZE, TIDY


def simplify(
    outputs: Sequence[Expr] | Expr, log: RewriteLog | None = None, notes: Notes | None = None,
    *, fast_math: bool = False,
) -> list[Expr]:
    """Equivalent, shorter and numerically stable forms of ``outputs`` (a list, or one Expr).

    Labels are stripped (into ``notes``, when given): the results are the bare values.
    ``fast_math`` lets the `assumes_finite` rules rewrite what the user wrote, too.
    """
    exprs = [outputs] if isinstance(outputs, Expr) else list(outputs)
    return run_rules(exprs, RULES, log, notes, fast_math=fast_math)


def tidy(
    outputs: Sequence[Expr], log: RewriteLog | None = None, notes: Notes | None = None,
    *, fast_math: bool = False,
) -> list[Expr]:
    """The rules that keep primitive ops primitive, for graphs after composites are lowered."""
    return run_rules(list(outputs), TIDY, log, notes, fast_math=fast_math)


def stabilize(
    outputs: Sequence[Expr], notes: Notes | None = None, log: RewriteLog | None = None,
    *, fast_math: bool = False,
) -> list[Expr]:
    """Only the stabilizing rewrites (``log(softmax(z)) -> log_softmax(z)`` and friends)."""
    return run_rules(list(outputs), STABILIZE, log, notes, fast_math=fast_math)


__all__ = [
    "RULES", "STABILIZE", "TIDY", "RewriteLog", "assumes_finite", "is_finite_only", "pattern",
    "simplify", "stabilize", "tidy",
]
