"""The rewrites, as small named functions with their pattern in the docstring.

They are listed in `STABILIZE` (run on forward graphs before differentiation, so naive losses
are differentiated in their stable form) and `RULES` (everything, run before code generation),
in the order they are tried. Each returns the replacement node, or None when it does not apply.
A rewrite never changes a value's shape or dtype.

IEEE semantics: a rewrite keeps what numpy computes for every input, inf, NaN and -0.0 included,
except those marked `assumes_finite` (``x * 0 -> 0`` is NaN for x = inf, and -0.0 for x = -1;
``x + 0 -> x`` is -0.0 where numpy gives 0.0). The engine (`engine.run_rules`) applies those
only to nodes differentiation built, whose zeros are zero cotangents that no user wrote, unless
the caller opts into ``fast_math=True``. So a gradient stays short, and an expression the user
wrote computes what numpy computes for it.
"""

from __future__ import annotations

import numpy as np

from ..ir import ConstValue, Expr
from ..ops import api
from ..ops.base import Constant, scalar_value
from ..ops.contract import in_pairs
from ..ops.reduce import count
from ..ops.shape import Unindex
from .engine import assumes_finite

# --------------------------------------------------------------------------- helpers


def _is(x: Expr, op: str) -> bool:
    return x.op.name == op


def _value(x: Expr) -> float | None:
    return scalar_value(x)


def _same(node: Expr, x: Expr) -> Expr | None:
    """``x`` if it can stand for ``node`` (same shape and dtype), else None."""
    return x if x.shape == node.shape and x.dtype == node.dtype else None


# --------------------------------------------------------------------------- stabilizing


def log_of_softmax(node: Expr) -> Expr | None:
    """log(softmax(z)) -> log_softmax(z)"""
    if _is(node, "log") and _is(node.inputs[0], "softmax"):
        (z,) = node.inputs[0].inputs
        return api.log_softmax(z, node.inputs[0].attr("axis"))
    return None


def log_of_sum_exp(node: Expr) -> Expr | None:
    """log(sum(exp(z), axis)) -> logsumexp(z, axis)"""
    if _is(node, "log") and _is(node.inputs[0], "sum"):
        total = node.inputs[0]
        axis = total.attr("axis")
        if _is(total.inputs[0], "exp") and len(axis) == 1:
            z = total.inputs[0].inputs[0]
            return api.logsumexp(z, axis[0], keepdims=total.attr("keepdims"))
    return None


def log_one_plus_exp(node: Expr) -> Expr | None:
    """log(1 + exp(z)) -> softplus(z)"""
    if _is(node, "log") and _is(node.inputs[0], "add"):
        a, b = node.inputs[0].inputs
        if _value(a) == 1.0 and _is(b, "exp"):
            return _same(node, api.softplus(b.inputs[0]))
        if _value(b) == 1.0 and _is(a, "exp"):
            return _same(node, api.softplus(a.inputs[0]))
    if _is(node, "log1p") and _is(node.inputs[0], "exp"):
        return api.softplus(node.inputs[0].inputs[0])
    return None


def log_of_sigmoid(node: Expr) -> Expr | None:
    """log(sigmoid(z)) -> -softplus(-z)"""
    if _is(node, "log") and _is(node.inputs[0], "sigmoid"):
        return -api.softplus(-node.inputs[0].inputs[0])
    return None


def sigmoid_of_reciprocal(node: Expr) -> Expr | None:
    """1 / (1 + exp(-z)) -> sigmoid(z)

    exp(-z) overflows for z < -88 in float32; sigmoid is computed through tanh, and then
    `log_of_sigmoid` and `log_one_minus_sigmoid` apply.
    """
    if not (_is(node, "divide") and _value(node.inputs[0]) == 1.0):
        return None
    denominator = node.inputs[1]
    if not _is(denominator, "add"):
        return None
    a, b = denominator.inputs
    for one, e in ((a, b), (b, a)):
        if _value(one) == 1.0 and _is(e, "exp") and _is(e.inputs[0], "negative"):
            return _same(node, api.sigmoid(e.inputs[0].inputs[0]))
    return None


def log_one_minus_sigmoid(node: Expr) -> Expr | None:
    """log(1 - sigmoid(z)) -> -softplus(z)

    1 - sigmoid(z) rounds to 0 for z > 17 in float32 (37 in float64), and its log is -inf.
    """
    if _is(node, "log") and _is(node.inputs[0], "subtract"):
        one, p = node.inputs[0].inputs
        if _value(one) == 1.0 and _is(p, "sigmoid"):
            return _same(node, -api.softplus(p.inputs[0]))
    if _is(node, "log1p") and _is(node.inputs[0], "negative"):
        p = node.inputs[0].inputs[0]
        if _is(p, "sigmoid"):
            return -api.softplus(p.inputs[0])
    return None


def binary_cross_entropy_of_sigmoid(node: Expr) -> Expr | None:
    """y * -softplus(-z) + (1 - y) * -softplus(z) -> -sigmoid_cross_entropy(z, y)

    What ``y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z))`` is after `log_of_sigmoid` and
    `log_one_minus_sigmoid`, with its signs anywhere (``-(y * softplus(-z)) - ...``, as the
    algebra rules move them): one op whose gradient is the textbook's ``sigmoid(z) - y``, where
    the sum of the two terms' gradients would not cancel to it.
    """
    if not (_is(node, "add") or _is(node, "subtract")):
        return None
    terms = _softplus_terms(node)
    if terms is None or len(terms) != 2 or terms[0][0] != terms[1][0]:
        return None
    sign = terms[0][0]
    (_, c1, w1), (_, c2, w2) = terms
    for (y, minus_z), (one_minus_y, z) in (((c1, w1), (c2, w2)), ((c2, w2), (c1, w1))):
        if not (_is(minus_z, "negative") and minus_z.inputs[0] is z):
            continue
        if not (_is(one_minus_y, "subtract") and _value(one_minus_y.inputs[0]) == 1.0
                and one_minus_y.inputs[1] is y):
            continue
        if y.dtype in ("float32", "float64") and node.shape == z.shape:
            loss = api.sigmoid_cross_entropy(z, y)
            return _same(node, loss if sign > 0 else -loss)
    return None


def _softplus_terms(node: Expr) -> list[tuple[int, Expr, Expr]] | None:
    """``node`` as a signed sum of terms ``c * softplus(w)``: ``[(sign, c, w), ...]``, or None
    when it is not one (looks at most a few levels deep: a loss of two terms)."""
    terms: list[tuple[int, Expr, Expr]] = []
    stack = [(1, node)]
    for _ in range(16):
        if not stack:
            return terms
        sign, n = stack.pop()
        if _is(n, "add") or _is(n, "subtract"):
            a, b = n.inputs
            stack += [(sign, a), (sign if _is(n, "add") else -sign, b)]
        elif _is(n, "negative"):
            stack.append((-sign, n.inputs[0]))
        elif _is(n, "multiply"):
            a, b = n.inputs
            for c, f in ((a, b), (b, a)):
                flip = 1
                if _is(f, "negative"):
                    flip, f = -1, f.inputs[0]
                if _is(f, "softplus"):
                    terms.append((sign * flip, c, f.inputs[0]))
                    break
            else:
                return None
        else:
            return None
    return None


def cross_entropy_of_log_softmax(node: Expr) -> Expr | None:
    """-sum(y * log_softmax(z), axis) -> softmax_cross_entropy(z, y, axis)

    Like TensorFlow's op, the result's gradient assumes each row of y sums to 1 (one-hot or
    probability labels), which is what this formula means in a classification loss.
    """
    if not (_is(node, "negative") and _is(node.inputs[0], "sum")):
        return None
    total = node.inputs[0]
    axis = total.attr("axis")
    if len(axis) != 1 or total.attr("keepdims") or not _is(total.inputs[0], "multiply"):
        return None
    a, b = total.inputs[0].inputs
    for y, lsm in ((a, b), (b, a)):
        if _is(lsm, "log_softmax") and lsm.attr("axis") == axis[0] and y.shape == lsm.shape:
            return _same(node, api.softmax_cross_entropy(lsm.inputs[0], y, axis[0]))
    return None


def sum_of_negated_cross_entropy(node: Expr) -> Expr | None:
    """sum(-(y * log_softmax(z)), axis) -> softmax_cross_entropy(z, y, axis)"""
    if not (_is(node, "sum") and _is(node.inputs[0], "negative")):
        return None
    inner = node.inputs[0].inputs[0]
    if node.attr("keepdims"):
        return None
    return cross_entropy_of_log_softmax(-api.sum(inner, axis=node.attr("axis")))


@assumes_finite
def exp_of_log(node: Expr) -> Expr | None:
    """exp(log(x)) -> x

    numpy gives NaN for x < 0.
    """
    if _is(node, "exp") and _is(node.inputs[0], "log"):
        return node.inputs[0].inputs[0]
    return None


@assumes_finite
def log_of_exp(node: Expr) -> Expr | None:
    """log(exp(x)) -> x

    numpy gives inf where exp(x) overflows.
    """
    if _is(node, "log") and _is(node.inputs[0], "exp"):
        return node.inputs[0].inputs[0]
    return None


# --------------------------------------------------------------------------- constants


def fold_constants(node: Expr) -> Expr | None:
    """op(constants) -> constant (small arithmetic on known values)"""
    fn = node.op.fold
    if fn is None or not all(_is(i, "constant") for i in node.inputs):
        return None
    arrays = [i.attr("value").array for i in node.inputs]
    if any(a.size > 64 for a in arrays):
        return None
    with np.errstate(all="ignore"):
        value = np.asarray(fn(*arrays)).astype(node.dtype)
    if not np.all(np.isfinite(value)):
        return None
    weak = all(i.attr("weak") for i in node.inputs)
    return Constant.make(value=ConstValue(value), weak=weak)


# --------------------------------------------------------------------------- algebra


@assumes_finite
def add_zero(node: Expr) -> Expr | None:
    """x + 0 -> x,  0 + x -> x

    numpy gives -0.0 + 0.0 = 0.0.
    """
    if _is(node, "add"):
        a, b = node.inputs
        if _value(b) == 0.0:
            return _same(node, a)
        if _value(a) == 0.0:
            return _same(node, b)
    return None


def add_self(node: Expr) -> Expr | None:
    """x + x -> x * 2

    Exact for every value (doubling rounds nothing; inf, NaN and -0.0 stay): one pass over x,
    not a sum of two reads (the L2 term's Hessian, ``c * I + c * I``, becomes ``2 c * I``).
    """
    if _is(node, "add") and node.inputs[0] is node.inputs[1]:
        return _same(node, node.inputs[0] * 2.0)
    return None


@assumes_finite
def subtract_zero(node: Expr) -> Expr | None:
    """x - 0 -> x,  0 - x -> -x

    numpy gives 0.0 - 0.0 = 0.0, not -0.0.
    """
    if _is(node, "subtract"):
        a, b = node.inputs
        if _value(b) == 0.0:
            return _same(node, a)
        if _value(a) == 0.0:
            return _same(node, -b)
    return None


@assumes_finite
def subtract_self(node: Expr) -> Expr | None:
    """x - x -> 0

    numpy gives NaN for x = inf or NaN.
    """
    if _is(node, "subtract") and node.inputs[0] is node.inputs[1]:
        return api.zeros_like(node)
    return None


def multiply_one(node: Expr) -> Expr | None:
    """x * 1 -> x,  1 * x -> x"""
    if _is(node, "multiply"):
        a, b = node.inputs
        if _value(b) == 1.0:
            return _same(node, a)
        if _value(a) == 1.0:
            return _same(node, b)
    return None


def multiply_minus_one(node: Expr) -> Expr | None:
    """x * -1 -> -x"""
    if _is(node, "multiply"):
        a, b = node.inputs
        if _value(b) == -1.0:
            return _same(node, -a)
        if _value(a) == -1.0:
            return _same(node, -b)
    return None


@assumes_finite
def multiply_zero(node: Expr) -> Expr | None:
    """x * 0 -> 0

    numpy gives NaN for x = inf or NaN, and -0.0 for x < 0.
    """
    if _is(node, "multiply") and 0.0 in (_value(node.inputs[0]), _value(node.inputs[1])):
        return api.zeros_like(node)
    return None


def divide_one(node: Expr) -> Expr | None:
    """x / 1 -> x"""
    if _is(node, "divide") and _value(node.inputs[1]) == 1.0:
        return _same(node, node.inputs[0])
    return None


def double_negation(node: Expr) -> Expr | None:
    """--x -> x"""
    if _is(node, "negative") and _is(node.inputs[0], "negative"):
        return node.inputs[0].inputs[0]
    return None


def subtract_negation(node: Expr) -> Expr | None:
    """a - (-b) -> a + b,  a + (-b) -> a - b,  (-a) + b -> b - a"""
    if _is(node, "subtract") and _is(node.inputs[1], "negative"):
        return _same(node, node.inputs[0] + node.inputs[1].inputs[0])
    if _is(node, "add") and _is(node.inputs[1], "negative"):
        return _same(node, node.inputs[0] - node.inputs[1].inputs[0])
    if _is(node, "add") and _is(node.inputs[0], "negative"):
        return _same(node, node.inputs[1] - node.inputs[0].inputs[0])
    return None


def negation_of_product(node: Expr) -> Expr | None:
    """-(c * x) -> (-c) * x for a constant c"""
    if _is(node, "negative") and _is(node.inputs[0], "multiply"):
        a, b = node.inputs[0].inputs
        if _is(a, "constant"):
            return _same(node, (-a) * b)
        if _is(b, "constant"):
            return _same(node, a * (-b))
    return None


def product_with_negation(node: Expr) -> Expr | None:
    """(-a) * (-b) -> a * b,  (-a) * b -> -(a * b)"""
    if not _is(node, "multiply"):
        return None
    a, b = node.inputs
    if _is(a, "negative") and _is(b, "negative"):
        return _same(node, a.inputs[0] * b.inputs[0])
    if _is(a, "negative") and not _is(b, "constant"):
        return _same(node, -(a.inputs[0] * b))
    if _is(b, "negative") and not _is(a, "constant"):
        return _same(node, -(a * b.inputs[0]))
    return None


def constant_power(node: Expr) -> Expr | None:
    """x ** 1 -> x,  x ** 2 -> square(x),  x ** -1 -> 1 / x"""
    if not _is(node, "power"):
        return None
    x, p = node.inputs
    value = _value(p)
    if value == 1.0:
        return _same(node, x)
    if value == 2.0:
        return _same(node, api.square(x))
    if value == -1.0:
        return _same(node, 1.0 / x)
    return None


@assumes_finite
def power_half(node: Expr) -> Expr | None:
    """x ** 0.5 -> sqrt(x)

    numpy gives inf for (-inf) ** 0.5 and 0.0 for (-0.0) ** 0.5; sqrt gives NaN and -0.0.
    """
    if _is(node, "power") and _value(node.inputs[1]) == 0.5:
        return _same(node, api.sqrt(node.inputs[0]))
    return None


def collect_constant_factors(node: Expr) -> Expr | None:
    """(x * c1) * c2 -> x * (c1 * c2),  (x / c1) * c2 -> x * (c2 / c1)"""
    if not _is(node, "multiply"):
        return None
    a, b = node.inputs
    if _is(a, "constant") and not _is(b, "constant"):
        a, b = b, a
    if not _is(b, "constant") or b.shape != ():
        return None
    if _is(a, "multiply"):
        x, c = a.inputs
        if _is(x, "constant"):
            x, c = c, x
        if _is(c, "constant") and c.shape == ():
            return _same(node, x * (c * b))
    if _is(a, "divide") and _is(a.inputs[1], "constant") and a.inputs[1].shape == ():
        return _same(node, a.inputs[0] * (b / a.inputs[1]))
    return None


def scalar_first(node: Expr) -> Expr | None:
    """x * c -> c * x for a scalar constant or size (reads like the math: 2 * x)"""
    if _is(node, "multiply"):
        a, b = node.inputs
        if b.shape == () and (_is(b, "constant") or _is(b, "size")) and not (
            _is(a, "constant") or _is(a, "size")
        ):
            return _same(node, b * a)
    return None


def divide_by_product(node: Expr) -> Expr | None:
    """(c * x) / n -> x * (c / n) when c and n are scalars known before the arrays"""
    if not _is(node, "divide"):
        return None
    a, n = node.inputs
    if n.shape != () or not (_is(n, "constant") or _is(n, "size")):
        return None
    if _is(a, "multiply"):
        c, x = a.inputs
        if c.shape == () and (_is(c, "constant") or _is(c, "size")) and x.shape == node.shape:
            return _same(node, x * (c / n))
    return None


def multiply_by_reciprocal(node: Expr) -> Expr | None:
    """x * (1 / n) -> x / n"""
    if _is(node, "multiply"):
        a, b = node.inputs
        for x, r in ((a, b), (b, a)):
            if _is(r, "divide") and _value(r.inputs[0]) == 1.0 and r.shape == ():
                return _same(node, x / r.inputs[1])
    return None


# --------------------------------------------------------------------------- shapes


def transpose_of_transpose(node: Expr) -> Expr | None:
    """x.T.T -> x (transposes compose)"""
    if _is(node, "transpose") and _is(node.inputs[0], "transpose"):
        inner = node.inputs[0]
        outer_axes, inner_axes = node.attr("axes"), inner.attr("axes")
        return api.transpose(inner.inputs[0], [inner_axes[a] for a in outer_axes])
    return None


def transpose_of_matmul(node: Expr) -> Expr | None:
    """(A @ B).T -> B.T @ A.T"""
    if _is(node, "transpose") and _is(node.inputs[0], "matmul") and node.ndim == 2:
        a, b = node.inputs[0].inputs
        if a.ndim == 2 and b.ndim == 2:
            return b.T @ a.T
    return None


def matrix_vector_product(node: Expr) -> Expr | None:
    """reshape(A @ v[:, None], (m,)) -> A @ v, and reshape(v[None, :] @ B, (k,)) -> v @ B"""
    if not (_is(node, "reshape") and node.ndim == 1 and _is(node.inputs[0], "matmul")):
        return None
    a, b = node.inputs[0].inputs
    if a.ndim == 2 and _is(b, "reshape") and b.inputs[0].ndim == 1 and b.shape[-1] == 1:
        return _same(node, a @ b.inputs[0])
    if b.ndim == 2 and _is(a, "reshape") and a.inputs[0].ndim == 1 and a.shape[0] == 1:
        return _same(node, a.inputs[0] @ b)
    return None


def einsum_as_matmul(node: Expr) -> Expr | None:
    """einsum("ij,jk->ik", a, b) -> a @ b, and any two-operand einsum that is a (batched,
    transposed) matrix product: "bhqd,bhkd->bhqk" -> q @ k^T over the batch axes

    numpy's einsum does not call BLAS for these: 5x slower than ``@`` for a matrix product, 7x
    for a batched one, 10-34x for attention scores, 1.9x for a batch of matrix-vector products
    (benchmarks/bench_einsum.py, one BLAS thread).
    """
    if not _is(node, "einsum") or len(node.inputs) != 2:
        return None
    inputs, output = node.attr("subscripts").split("->")
    ta, tb = inputs.split(",")
    if any(len(set(t)) != len(t) for t in (ta, tb)):
        return None  # a diagonal
    contracted = [c for c in ta if c in tb and c not in output]
    batch = "".join(c for c in output if c in ta and c in tb)
    free_a = "".join(c for c in ta if c not in tb)
    free_b = "".join(c for c in tb if c not in ta)
    a, b = node.inputs
    if contracted == [tb] and sorted(output) == sorted(free_a):
        # A stack of matrices times one vector: "bjk,k->bj" is c @ d, whatever the stack.
        return _same(node, api.transpose(a, [ta.index(x) for x in output + tb]) @ b)
    if len(contracted) != 1 or len(free_a) > 1 or len(free_b) > 1:
        return None
    if set(free_a + free_b) - set(output) or not output.startswith(batch):
        return None  # a letter summed in one operand alone, or batch axes after the others
    if batch and not (free_a or free_b):
        return None  # a batch of dot products: no matrix in it
    (c,) = contracted
    if output[len(batch):] == free_b + free_a and free_a and free_b:
        # (A B)^T = B^T A^T: the result comes out in the order asked for.
        a, b, ta, tb, free_a, free_b = b, a, tb, ta, free_b, free_a
    left = api.transpose(a, [ta.index(x) for x in batch + free_a + c])
    right = api.transpose(b, [tb.index(x) for x in batch + c + free_b])
    if batch and not free_b:
        # matmul reads a batch of vectors as one matrix: make each a one-column matrix.
        return _same(node, api.reshape(left @ api.expand_dims(right, -1), node.shape))
    if batch and not free_a:
        return _same(node, api.reshape(api.expand_dims(left, -2) @ right, node.shape))
    return _same(node, left @ right)


def einsum_in_pairs(node: Expr) -> Expr | None:
    """einsum("ij,jk,kl->il", a, b, c) -> einsum("ij,jl->il", a, einsum("jk,kl->jl", b, c)):
    three or more operands contracted two at a time, in the cheapest order (`contract.in_pairs`)

    The order of a contraction is not part of an einsum's meaning, as it is not of
    ``np.einsum(..., optimize=True)``: values differ by rounding, and where an operand holds
    inf, a product with a zero may come out NaN in one order and not in the other.
    """
    if not _is(node, "einsum") or len(node.inputs) < 3:
        return None
    return _same(node, in_pairs(node))


def reshape_of_reshape(node: Expr) -> Expr | None:
    """reshape(reshape(x, s1), s2) -> reshape(x, s2)"""
    if _is(node, "reshape") and _is(node.inputs[0], "reshape"):
        return api.reshape(node.inputs[0].inputs[0], node.attr("shape"))
    return None


def reshape_of_scalar_broadcast(node: Expr) -> Expr | None:
    """reshape(broadcast_to(s, S1), S2) -> broadcast_to(s, S2) for a one-element s"""
    if _is(node, "reshape") and _is(node.inputs[0], "broadcast_to"):
        s = node.inputs[0].inputs[0]
        if all(d == 1 for d in s.shape):
            return api.broadcast_to(api.reshape(s, ()), node.shape)
    return None


def broadcast_of_ones(node: Expr) -> Expr | None:
    """broadcast_to(reshape(s, (1, 1)), S) -> broadcast_to(s, S) for a scalar s"""
    if _is(node, "broadcast_to") and _is(node.inputs[0], "reshape"):
        s = node.inputs[0].inputs[0]
        if s.shape == () or all(d == 1 for d in s.shape):
            return api.broadcast_to(api.reshape(s, ()), node.shape)
    return None


def broadcast_of_broadcast(node: Expr) -> Expr | None:
    """broadcast_to(broadcast_to(x, S1), S2) -> broadcast_to(x, S2)"""
    if _is(node, "broadcast_to") and _is(node.inputs[0], "broadcast_to"):
        return api.broadcast_to(node.inputs[0].inputs[0], node.shape)
    return None


def implicit_broadcast(node: Expr) -> Expr | None:
    """x * broadcast_to(s, shape(x)) -> x * s (numpy broadcasts; nothing is materialized)"""
    if not node.op.broadcasts:
        return None
    inputs = list(node.inputs)
    for i, x in enumerate(inputs):
        if _is(x, "broadcast_to"):
            others = [y for j, y in enumerate(inputs) if j != i]
            if any(y.shape == node.shape for y in others):
                inputs[i] = x.inputs[0]
                rebuilt = node.op.make(*inputs, **node.kwargs)
                return _same(node, rebuilt)
    return None


def broadcast_of_scalar_into_scalar_math(node: Expr) -> Expr | None:
    """broadcast_to(s, S) * t -> broadcast_to(s * t, S) when t is a scalar"""
    if node.op.name not in ("multiply", "divide"):
        return None
    a, b = node.inputs
    if _is(a, "broadcast_to") and b.shape == () and a.inputs[0].shape == ():
        return api.broadcast_to(node.op.make(a.inputs[0], b), node.shape)
    if _is(b, "broadcast_to") and a.shape == () and b.inputs[0].shape == ():
        return api.broadcast_to(node.op.make(a, b.inputs[0]), node.shape)
    return None


def sum_of_broadcast(node: Expr) -> Expr | None:
    """sum(broadcast_to(x, S), axes) -> x * (number of copies), when only copies are summed"""
    if not (_is(node, "sum") and _is(node.inputs[0], "broadcast_to")):
        return None
    x = node.inputs[0].inputs[0]
    target = node.inputs[0].shape
    axes = node.attr("axis")
    aligned = (1,) * (len(target) - x.ndim) + x.shape
    if any(aligned[a] != 1 for a in axes):
        return None  # the sum also runs over x's own elements
    if node.attr("keepdims"):
        kept = [1 if i in axes else d for i, d in enumerate(aligned)]
    else:
        kept = [d for i, d in enumerate(aligned) if i not in axes]
    value = api.reshape(x, kept) * count(tuple(target[a] for a in axes))
    return _same(node, api.broadcast_to(value, node.shape))


def sum_of_scalar_times(node: Expr) -> Expr | None:
    """sum(c * x, axes) -> c * sum(x, axes) for a scalar c"""
    if _is(node, "sum") and _is(node.inputs[0], "multiply"):
        a, b = node.inputs[0].inputs
        if a.shape == () and b.shape == node.inputs[0].shape:
            return _same(node, a * api.sum(b, node.attr("axis"), node.attr("keepdims")))
        if b.shape == () and a.shape == node.inputs[0].shape:
            return _same(node, api.sum(a, node.attr("axis"), node.attr("keepdims")) * b)
    return None


def sum_of_negation(node: Expr) -> Expr | None:
    """sum(-x, axes) -> -sum(x, axes) (negate the smaller array)"""
    if _is(node, "sum") and _is(node.inputs[0], "negative"):
        return -api.sum(node.inputs[0].inputs[0], node.attr("axis"), node.attr("keepdims"))
    return None


def sum_of_sum(node: Expr) -> Expr | None:
    """sum(sum(x, a1), a2) -> sum(x, a1 + a2) (one pass over the data)"""
    if not (_is(node, "sum") and _is(node.inputs[0], "sum")):
        return None
    inner = node.inputs[0]
    if inner.attr("keepdims") or node.attr("keepdims"):
        return None
    x = inner.inputs[0]
    remaining = [a for a in range(x.ndim) if a not in inner.attr("axis")]
    axes = tuple(sorted({*inner.attr("axis"), *(remaining[a] for a in node.attr("axis"))}))
    return api.sum(x, axes)


def sum_of_unindexed_slices(node: Expr) -> Expr | None:
    """unindex(g1, [:, a:b]) + unindex(g2, [:, b:c]) -> unindex(concatenate([g1, g2], 1), [:, a:c])

    The gradient of ``split`` (or of slices that tile an axis) is a sum of cotangents, each
    scattered into zeros of the whole shape. Pieces whose slices lie side by side along one axis
    are joined into one ``concatenate``; where they cover the whole array, no zeros are left.
    Sums of any length are flattened first (gradients accumulate ``((a + b) + c) + d``); slices
    that overlap or differ on two axes are left alone, and gaps between runs keep their zeros.

    Not `assumes_finite`, though numpy's sum turns a -0.0 in a piece into 0.0 where the join
    keeps -0.0: only derivative rules build ``unindex`` (there is no public constructor), so its
    zeros are always zero cotangents, never a value the user wrote. The sums of them are built
    by the reverse walk itself, which records no origin for them, so the engine's
    derived-only gate would never let the rule see a gradient.
    """
    if not _is(node, "add"):
        return None
    # The terms of the sum, through nested adds of the node's own shape (no broadcasting).
    terms: list[Expr] = []
    stack = [node]
    while stack:
        x = stack.pop()
        if x is node or (_is(x, "add") and x.shape == node.shape and x.dtype == node.dtype):
            stack.extend(reversed(x.inputs))
        else:
            terms.append(x)
    scattered = [t for t in terms if _is(t, "unindex") and t.dtype == node.dtype]
    found = [_slice_spans(t) for t in scattered]
    if len(scattered) < 2 or any(s is None for s in found):
        return None
    spans = [s for s in found if s is not None]
    differ = [a for a in range(node.ndim) if len({s[a] for s in spans}) > 1]
    if len(differ) != 1:
        return None
    (axis,) = differ
    # The axis is static: a symbolic one has the same span, None, in every term.
    along = [span for s in spans if (span := s[axis]) is not None]
    if len(along) != len(spans):
        return None
    order = sorted(range(len(scattered)), key=lambda i: along[i])
    runs: list[list[int]] = [[order[0]]]
    for i in order[1:]:
        previous, current = along[runs[-1][-1]], along[i]
        if current[0] < previous[1]:
            return None  # overlapping slices: their sum is not a join
        if current[0] == previous[1]:
            runs[-1].append(i)
        else:
            runs.append([i])
    if all(len(run) == 1 for run in runs):
        return None
    joined: list[Expr] = []
    for run in runs:
        pieces: list[Expr] = []
        for i in run:
            g = scattered[i].inputs[0]
            same_axis = _is(g, "concatenate") and g.attr("axis") == axis
            pieces.extend(g.inputs if same_axis else (g,))
        bounds = list(spans[run[0]])
        bounds[axis] = (along[run[0]][0], along[run[-1]][1])
        whole = api.concatenate(pieces, axis=axis)
        if all(b is None or b == (0, d) for b, d in zip(bounds, node.shape)):
            joined.append(whole)
        else:
            index = tuple(("slice", None, None, None) if b is None else ("slice", *b, None)
                          for b in bounds)
            joined.append(Unindex.make(whole, index=index, shape=node.shape))
    joined_terms = set(scattered)
    result = joined[0]
    for term in [*joined[1:], *(t for t in terms if t not in joined_terms)]:
        result = result + term
    return _same(node, result)


def _slice_spans(node: Expr) -> tuple[tuple[int, int] | None, ...] | None:
    """Per axis, the ``(start, stop)`` an unindex node's cotangent fills (None: a whole symbolic
    axis); None if its index holds anything but unit-step slices (ints, new axes, steps)."""
    index = node.attr("index")
    if any(e[0] != "slice" or e[3] not in (None, 1) for e in index):
        return None
    entries = list(index) + [("slice", None, None, None)] * (node.ndim - len(index))
    spans: list[tuple[int, int] | None] = []
    for (_, start, stop, _), dim in zip(entries, node.shape):
        if isinstance(dim, str):
            spans.append(None)  # only ':' can slice a symbolic axis
        else:
            first, last, _ = slice(start, stop).indices(dim)
            spans.append((first, max(first, last)))
    return tuple(spans)


def reshape_is_noop(node: Expr) -> Expr | None:
    """reshape(x, shape(x)) -> x"""
    if _is(node, "reshape") and node.inputs[0].shape == node.shape:
        return node.inputs[0]
    return None


def cast_to_own_dtype(node: Expr) -> Expr | None:
    """cast(x, dtype(x)) -> x"""
    if _is(node, "cast") and node.inputs[0].dtype == node.dtype:
        return node.inputs[0]
    return None


# --------------------------------------------------------------------------- the lists

STABILIZE = [
    log_of_softmax,
    log_of_sum_exp,
    log_one_plus_exp,
    log_of_sigmoid,
    sigmoid_of_reciprocal,
    log_one_minus_sigmoid,
    binary_cross_entropy_of_sigmoid,
    cross_entropy_of_log_softmax,
    sum_of_negated_cross_entropy,
    exp_of_log,
    log_of_exp,
]

RULES = [
    *STABILIZE,
    fold_constants,
    add_zero,
    add_self,
    subtract_zero,
    subtract_self,
    multiply_one,
    multiply_zero,
    multiply_minus_one,
    divide_one,
    double_negation,
    subtract_negation,
    negation_of_product,
    product_with_negation,
    constant_power,
    power_half,
    collect_constant_factors,
    multiply_by_reciprocal,
    divide_by_product,
    scalar_first,
    transpose_of_transpose,
    transpose_of_matmul,
    matrix_vector_product,
    einsum_in_pairs,
    einsum_as_matmul,
    reshape_is_noop,
    cast_to_own_dtype,
    reshape_of_reshape,
    reshape_of_scalar_broadcast,
    broadcast_of_ones,
    broadcast_of_broadcast,
    broadcast_of_scalar_into_scalar_math,
    sum_of_broadcast,
    sum_of_scalar_times,
    sum_of_negation,
    sum_of_sum,
    implicit_broadcast,
    sum_of_unindexed_slices,
]

# After composites are lowered: everything but the stabilizing rewrites, which match composites.
TIDY = [rule for rule in RULES if rule not in STABILIZE]
