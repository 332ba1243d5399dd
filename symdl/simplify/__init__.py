"""Simplification: small named rewrites run in a fixed order until nothing changes.

`simplify` runs every rule in `rules.RULES`; `stabilize` runs the subset that makes naive losses
numerically stable (`rules.STABILIZE`), which `grad` applies before differentiating so that
``-sum(y * log(softmax(z)))`` is differentiated as softmax cross-entropy: ``softmax(z) - y``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ir import Expr
from ..provenance import Notes
from .engine import RewriteLog, pattern, run_rules
from .rules import RULES, STABILIZE, TIDY


def simplify(
    outputs: Sequence[Expr] | Expr, log: RewriteLog | None = None, notes: Notes | None = None
) -> list[Expr]:
    """Equivalent, shorter and numerically stable forms of ``outputs`` (a list, or one Expr).

    Labels are stripped (into ``notes``, when given): the results are the bare values.
    """
    exprs = [outputs] if isinstance(outputs, Expr) else list(outputs)
    return run_rules(exprs, RULES, log, notes)


def tidy(
    outputs: Sequence[Expr], log: RewriteLog | None = None, notes: Notes | None = None
) -> list[Expr]:
    """The rules that keep primitive ops primitive, for graphs after composites are lowered."""
    return run_rules(list(outputs), TIDY, log, notes)


def stabilize(
    outputs: Sequence[Expr], notes: Notes | None = None, log: RewriteLog | None = None
) -> list[Expr]:
    """Only the stabilizing rewrites (``log(softmax(z)) -> log_softmax(z)`` and friends)."""
    return run_rules(list(outputs), STABILIZE, log, notes)


__all__ = ["RULES", "STABILIZE", "TIDY", "RewriteLog", "pattern", "simplify", "stabilize", "tidy"]
