"""Differentiation as a graph-to-graph pass: `grad` (reverse mode), `hvp`, and (from
`symdl.forward`) `jvp`, `jacobian` and `hessian`.

Reverse mode visits the nodes between the target and the ``wrt`` leaves in reverse topological
order, calls each op's derivative rule on the accumulated adjoint, and sums contributions. The
rules return ordinary IR, so the result can be simplified, printed, derived step by step and
differentiated again. Nothing is traced or evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import overload

from .errors import GradientError, NoDerivativeError
from .forward import hessian, jacobian, jvp
from .ir import Expr, toposort
from .ops import api
from .ops.base import GradientOf, label
from .provenance import strip_labels
from .types import format_shape, is_float

__all__ = [
    "Walk", "adjoints", "grad", "hessian", "hvp", "jacobian", "jvp", "jvp_by_reverse",
    "reverse_walk",
]


def _check_wrt(wrt: Sequence[Expr]) -> None:
    seen: set[int] = set()
    for w in wrt:
        if not isinstance(w, Expr) or not w.is_leaf or w.op.name == "constant":
            what = repr(w) if isinstance(w, Expr) else type(w).__name__
            raise GradientError(
                f"grad: wrt must be placeholders or parameters, got {what}; to differentiate "
                "with respect to an intermediate value, make it a placeholder"
            )
        if not is_float(w.dtype):
            raise GradientError(f"grad: cannot differentiate with respect to {w.name!r} of dtype "
                                f"{w.dtype}; only float32 and float64 leaves have gradients")
        if id(w) in seen:
            raise GradientError(f"grad: {w.name!r} appears twice in wrt")
        seen.add(id(w))


def _accumulate(contributions: list[Expr]) -> Expr:
    total = contributions[0]
    for c in contributions[1:]:
        total = total + c
    return total


@dataclass
class Walk:
    """One reverse-mode walk over a target's graph: what `grad`, `derive`, `trace` and the
    provenance of generated code all read, so they cannot disagree.

    ``adjoints`` maps each node on a path from ``wrt`` to the target to its accumulated adjoint
    (nodes that got no contribution are absent); ``sent`` lists, per visited node, what its
    rule sent to each input (``(input, cotangent)``, in input order); ``built`` maps each node a
    rule built to the forward node whose rule built it (the first one, in walk order).
    """

    y: Expr
    order: list[Expr]
    adjoints: dict[Expr, Expr] = field(default_factory=dict)
    sent: dict[Expr, list[tuple[Expr, Expr]]] = field(default_factory=dict)
    built: dict[Expr, Expr] = field(default_factory=dict)


def reverse_walk(y: Expr, wrt: Sequence[Expr]) -> Walk:
    """Visit the nodes between ``wrt`` and ``y`` in reverse topological order, apply each op's
    derivative rule to the accumulated adjoint and sum the contributions.

    ``y`` must carry no labels (see `symdl.provenance.strip_labels`). A pure function of the
    graph: walking the same target again builds the same (hash-consed) nodes.
    """
    order = toposort([y])
    targets = {id(w) for w in wrt}
    on_path: set[int] = set()
    for node in order:
        if id(node) in targets or any(id(i) in on_path for i in node.inputs):
            on_path.add(id(node))

    walk = Walk(y, order)
    seed = api.constant(1.0, y.dtype)
    pending: dict[Expr, list[Expr]] = {y: [seed]}
    # Nodes this walk has accounted for: the forward graph, the contributions in `pending`, and
    # every node a rule built. What a rule's cotangents reach beyond them, that rule built; the
    # nodes may exist already (hash-consing shares them with other graphs), which is why they
    # are found by walking this graph, not by their creation time.
    seen: set[Expr] = {*order, seed}
    for node in reversed(order):
        if id(node) not in on_path or node not in pending:
            continue
        g = _accumulate(pending.pop(node))
        walk.adjoints[node] = g
        if node.is_leaf or not node.op.differentiable:
            continue
        if node.op.vjp is None:
            raise NoDerivativeError(
                f"grad: op {node.op.name!r} (shape {format_shape(node.shape)}) has no derivative "
                "rule, but the target depends on wrt through it; express it with differentiable "
                "ops or wrap the branch so the gradient does not flow through it"
            )
        cotangents = node.op.vjp(g, node, *node.inputs, **node.kwargs)
        live = [ct if ct is not None and id(x) in on_path else None
                for x, ct in zip(node.inputs, cotangents)]
        for new in _built(live, seen):
            walk.built[new] = node
        sent = walk.sent.setdefault(node, [])
        for x, ct in zip(node.inputs, live):
            if ct is None:
                continue
            if ct.shape != x.shape:
                raise GradientError(
                    f"internal error: the derivative rule of {node.op.name!r} returned shape "
                    f"{format_shape(ct.shape)} for an input of shape {format_shape(x.shape)}"
                )
            sent.append((x, ct))
            contribution = api.cast(ct, x.dtype)
            seen.add(contribution)
            pending.setdefault(x, []).append(contribution)
    return walk


def adjoints(y: Expr, wrt: Sequence[Expr]) -> dict[Expr, Expr]:
    """The adjoint (d y / d node) of every node on a path from ``wrt`` to ``y``, keyed by node.

    A named value and the value it names share one adjoint. Nodes on the path that get no
    contribution (all routes pass through non-differentiable ops) are absent.
    """
    memo: dict[Expr, Expr] = {}
    (bare,) = strip_labels([y], memo)
    table = reverse_walk(bare, wrt).adjoints
    return {node: table[memo[node]] for node in reversed(memo) if memo[node] in table}


def _built(cotangents: Sequence[Expr | None], seen: set[Expr]) -> list[Expr]:
    """The nodes the cotangents reach that are not in ``seen``, which then holds them too."""
    found: list[Expr] = []
    stack = [c for c in cotangents if c is not None and c not in seen]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        found.append(n)
        stack.extend(i for i in n.inputs if i not in seen)
    return found


@overload
def grad(y: Expr, wrt: Expr, *, allow_unused: bool = False) -> Expr: ...
@overload
def grad(y: Expr, wrt: Sequence[Expr], *, allow_unused: bool = False) -> list[Expr]: ...


def grad(
    y: Expr, wrt: Expr | Sequence[Expr], *, allow_unused: bool = False
) -> Expr | list[Expr]:
    """Gradient of the scalar ``y`` with respect to one leaf, or a list of leaves.

    Each gradient has its leaf's shape and is an ordinary expression (named ``W_grad`` for a leaf
    ``W`` in generated code). A leaf that ``y`` does not depend on raises `GradientError`, or gives
    zeros with ``allow_unused=True``. Gradients of gradients work (Hessian-vector products).
    """
    if not isinstance(y, Expr):
        raise GradientError(f"grad: the target must be a symdl expression, got {type(y).__name__}")
    single = isinstance(wrt, Expr)
    targets = [wrt] if single else list(wrt)  # type: ignore[list-item]
    _check_wrt(targets)
    if y.shape != ():
        raise GradientError(
            f"grad: the target must be a scalar, got shape {format_shape(y.shape)}; reduce it "
            "first (sd.sum or sd.mean), or use sd.jvp for a directional derivative"
        )
    if not is_float(y.dtype):
        raise GradientError(f"grad: the target must be float32 or float64, got {y.dtype}")
    reached = {id(n) for n in toposort([y])}
    for w in targets:
        if id(w) not in reached and not allow_unused:
            raise GradientError(
                f"grad: the target does not depend on {w.op.name} {w.name!r}; remove it from "
                "wrt, or pass allow_unused=True to get zeros"
            )
    # Differentiate the stable form: -sum(y * log(softmax(z))) as softmax cross-entropy, so the
    # gradient is softmax(z) - y rather than a division by a softmax that may underflow to 0.
    from .simplify import stabilize

    (bare,) = strip_labels([y])
    table = reverse_walk(stabilize([bare])[0], targets).adjoints
    of = GradientOf(y, tuple(targets))
    results = []
    for w in targets:
        g = table.get(w)
        if g is None:
            g = api.zeros_like(w)
        results.append(label(g, f"{w.name}_grad", of))
    return results[0] if single else results


def hvp(y: Expr, wrt: Expr, v: Expr) -> Expr:
    """Hessian-vector product of the scalar ``y``: d/d wrt of <grad(y, wrt), v>, named
    ``<wrt>_hvp`` in generated code (it has ``wrt``'s shape, but is not its gradient)."""
    g = grad(y, wrt)
    return label(grad(api.sum(g * v), wrt), f"{wrt.name}_hvp")


def jvp_by_reverse(y: Expr, wrt: Expr, v: Expr) -> Expr:
    """Directional derivative of ``y`` along ``v`` from two reverse passes: J v.

    The VJP is linear in its cotangent ``u``, so differentiating <vjp(u), v> with respect to
    ``u`` gives J v. `jvp` (forward mode, `symdl.forward`) computes the same from the ops'
    native rules; this construction is kept as the reference it is tested against.
    """
    if v.shape != wrt.shape:
        raise GradientError(
            f"jvp: the tangent has shape {format_shape(v.shape)} but wrt has "
            f"{format_shape(wrt.shape)}"
        )
    u = api.placeholder("_jvp_cotangent", y.shape, y.dtype)
    g = grad(api.sum(y * u), wrt, allow_unused=True)
    return grad(api.sum(g * v), u, allow_unused=True)
