"""Forward mode as a graph-to-graph pass: `jvp` from each op's native rule, and the batched JVP
behind `jacobian` and `hessian`.

One forward walk visits the nodes between the ``wrt`` leaf and the target in topological order
and calls each op's `jvp` rule (`symdl.ops.base.Op.jvp`) on the tangents of its inputs. A
tangent has its value's shape plus, in the batched walk, one trailing batch axis: ``n``
directions at once, as JAX's ``jacfwd`` is ``vmap(jvp)``. The batch goes last so that numpy
does the batching: a primal value broadcasts against its tangent with one trailing size-1 axis,
reductions and transposes keep their axes, and ``a @ t`` folds the batch into the columns of
one GEMM. A full Hessian is the batched JVP of the gradient along the identity basis: forward
over reverse, one vectorized expression, no loop in the generated code.

An op without a `jvp` rule gets its local JVP from two reverse passes of its own `vjp` (the VJP
is linear in its cotangent ``u``, so the derivative of ``<vjp(u), t>`` with respect to ``u`` is
``J t``); that needs unbatched tangents, so the batched walk refuses such an op by name.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from .errors import GradientError, NoDerivativeError, ShapeError
from .ir import Expr, toposort
from .ops import api
from .ops import shape as _shape
from .ops.base import as_expr, label
from .ops.linalg import basis_product, identity
from .provenance import strip_labels
from .types import format_shape, is_float

__all__ = ["forward_walk", "hessian", "jacobian", "jvp"]


def forward_walk(y: Expr, wrt: Expr, tangent: Expr, *, batched: bool = False,
                 basis: bool = False) -> Expr | None:
    """The tangent of ``y`` when ``wrt`` moves along ``tangent``, or None where it is zero.

    ``tangent`` has ``wrt``'s shape, plus one trailing batch axis when ``batched``; so has the
    result, with ``y``'s shape. ``y`` must carry no labels and be stabilized (see `jvp`).
    ``basis``: ``tangent`` is the identity basis (`jacobian`), so ``a @ wrt`` along it is a
    `basis_product`, zeros with ``a`` on a diagonal, not a GEMM with the identity.
    """
    order = toposort([y])
    tangents: dict[Expr, Expr] = {wrt: tangent}
    batch = tangent.shape[wrt.ndim:]
    for node in order:
        if node.is_leaf or not node.op.differentiable:
            continue
        inputs = tuple(tangents.get(x) for x in node.inputs)
        if all(t is None for t in inputs):
            continue
        if basis and node.op.name == "matmul" and inputs == (None, tangent) and wrt.ndim == 2:
            # a @ W along W's basis: no GEMM with the identity (`basis_product`)
            a = node.inputs[0]
            t = label(basis_product(a, wrt.shape[1]),
                      f"{a.name}_{wrt.name}_tangents" if a.name else "tangents")
        elif node.op.jvp is not None:
            t = node.op.jvp(inputs, node, *node.inputs, **node.kwargs)
        elif batched:
            raise NoDerivativeError(
                f"jacobian: op {node.op.name!r} (shape {format_shape(node.shape)}) has no "
                "forward-mode rule (jvp), so it cannot take a batch of tangents; use sd.hvp "
                "for Hessian-vector products, or sd.jvp one direction at a time"
            )
        else:
            t = _jvp_by_vjp(node, inputs)
        if t is None:
            continue
        expected = (*node.shape, *batch)
        t = api.cast(t, node.dtype)
        if t.shape != expected:
            # A rule may return a tangent that only broadcasts to the value's shape (the
            # tangent of x + c is x's); a rule's shape bug is reported below with its op.
            with contextlib.suppress(ShapeError):
                t = _shape.broadcast_to(t, expected)
        if t.shape != expected:
            raise GradientError(
                f"internal error: the jvp rule of {node.op.name!r} returned shape "
                f"{format_shape(t.shape)} for a value of shape {format_shape(node.shape)} with "
                f"batch {format_shape(batch)}"
            )
        tangents[node] = t
    return tangents.get(y)


def _jvp_by_vjp(node: Expr, tangents: Sequence[Expr | None]) -> Expr | None:
    """``node``'s local JVP from its VJP rule: d/du of sum(vjp(u) * t) (linear in u)."""
    from .autodiff import reverse_walk

    u = api.placeholder("_jvp_cotangent", node.shape, node.dtype)
    cotangents = node.op.vjp(u, node, *node.inputs, **node.kwargs)
    terms = [api.sum(api.cast(ct, t.dtype) * t)
             for ct, t in zip(cotangents, tangents) if ct is not None and t is not None]
    if not terms:
        return None
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return reverse_walk(total, [u]).adjoints.get(u)


def _prepared(y: Expr, wrt: Expr, what: str) -> Expr:
    """``y`` ready for a forward walk: checked, labels stripped, losses in their stable form."""
    from .autodiff import _check_wrt
    from .simplify import stabilize

    if not isinstance(y, Expr):
        raise GradientError(f"{what}: the target must be a symdl expression, got "
                            f"{type(y).__name__}")
    if not isinstance(wrt, Expr):
        raise GradientError(f"{what}: wrt must be one placeholder or parameter, got "
                            f"{type(wrt).__name__}")
    _check_wrt([wrt])
    if not is_float(y.dtype):
        raise GradientError(f"{what}: the target must be float32 or float64, got {y.dtype}")
    (bare,) = strip_labels([y])
    return stabilize([bare])[0]


def jvp(y: Expr, wrt: Expr, v: Expr) -> Expr:
    """Directional derivative of ``y`` along ``v`` (a tangent of ``wrt``'s shape): J v.

    One forward walk with each op's native `jvp` rule; an op without one contributes its local
    JVP through two reverse passes of its VJP, so every differentiable op is supported.
    """
    v = as_expr(v, "jvp")
    if v.shape != wrt.shape:
        raise GradientError(
            f"jvp: the tangent has shape {format_shape(v.shape)} but wrt has "
            f"{format_shape(wrt.shape)}"
        )
    prepared = _prepared(y, wrt, "jvp")
    result = forward_walk(prepared, wrt, api.cast(v, wrt.dtype))
    return api.zeros(y.shape, y.dtype) if result is None else result


def jacobian(y: Expr, wrt: Expr, *, allow_unused: bool = False) -> Expr:
    """The full Jacobian of ``y`` with respect to the leaf ``wrt``, of shape
    ``y.shape + wrt.shape``: ``J[i..., j...] = d y[i...] / d wrt[j...]``.

    One batched forward walk along all ``wrt.size`` basis directions at once (the identity as a
    batch of tangents), so the generated code is one vectorized expression with no loop::

        x = sd.placeholder("x", (5,), "float64")
        J = sd.jacobian(sd.tanh(x) * 2, x)  # (5, 5): diag(2 * (1 - tanh(x) ** 2))

    Raises:
        GradientError: ``wrt`` is not a float leaf of static shape, ``y`` is not float, or
            ``y`` does not depend on ``wrt`` (unless ``allow_unused``: then zeros).
        NoDerivativeError: an op on the path has no forward-mode rule.
    """
    return _jacobian(y, wrt, allow_unused=allow_unused, what="jacobian")


def _jacobian(y: Expr, wrt: Expr, *, allow_unused: bool, what: str) -> Expr:
    prepared = _prepared(y, wrt, what)
    if not all(isinstance(d, int) for d in wrt.shape):
        raise GradientError(
            f"{what}: {wrt.name!r} has the symbolic shape {format_shape(wrt.shape)}; a full "
            f"{what} needs a static size (one tangent per entry); use sd.jvp or sd.hvp instead"
        )
    n = int(np.prod(wrt.shape, dtype=np.int64))
    # The identity as n tangents, batch last: basis[j..., k] = 1 where j... is entry k.
    basis = _shape.reshape(label(identity(n, wrt.dtype), "identity"), (*wrt.shape, n))
    result = forward_walk(prepared, wrt, basis, batched=True, basis=True)
    if result is None:
        if id(wrt) not in {id(node) for node in toposort([y])} and not allow_unused:
            raise GradientError(
                f"{what}: the target does not depend on {wrt.op.name} {wrt.name!r}; remove it, "
                "or pass allow_unused=True to get zeros"
            )
        return api.zeros((*y.shape, *wrt.shape), y.dtype)
    # Batch last is the Jacobian's own layout: the reshape only splits the batch axis.
    return _shape.reshape(result, (*y.shape, *wrt.shape))


def hessian(y: Expr, wrt: Expr) -> Expr:
    """The full Hessian of the scalar ``y`` with respect to the leaf ``wrt``, of shape
    ``wrt.shape + wrt.shape``: forward over reverse, the Jacobian of ``grad(y, wrt)`` as one
    batched forward walk (JAX's ``jacfwd(jacrev(f))``), not one reverse pass per entry::

        W = sd.parameter("W", (15, 10), "float64")
        H = sd.hessian(loss, W)  # (15, 10, 15, 10); reshape to (150, 150) for a matrix

    Raises:
        GradientError: ``y`` is not a float scalar, ``wrt`` is not a float leaf of static shape,
            or ``y`` does not depend on ``wrt``.
        NoDerivativeError: an op of the gradient has no forward-mode rule (use sd.hvp).
    """
    if isinstance(y, Expr) and y.shape != ():
        raise GradientError(
            f"hessian: the target must be a scalar, got shape {format_shape(y.shape)}; reduce it "
            "first (sd.sum or sd.mean), or use sd.jacobian of sd.jacobian"
        )
    from .autodiff import grad

    _prepared(y, wrt, "hessian")
    g = grad(y, wrt)
    # The Jacobian of a gradient is symmetric, so its batch-last layout is already H[i, j].
    h = _jacobian(g, wrt, allow_unused=True, what="hessian")
    return label(h, f"{wrt.name}_hessian")
