"""Softmax and friends, cross-entropy, one-hot: the ops of classification losses.

These are composite ops: they carry short derivative rules (the textbook's ``softmax(z) - y``)
and an `expand` into stable primitives (max-shifted exponentials) that the code generator uses.
Because nodes are hash-consed, the expanded softmax and logsumexp share one ``exp``.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import DTypeError, ShapeError
from ..ir import Expr
from ..types import Shape, as_dtype, broadcast_shapes, format_shape, normalize_axes
from . import elementwise as _ew
from . import linalg as _linalg
from . import reduce as _reduce
from . import shape as _shape
from .base import ATOM, NEG, POSTFIX, PROD, Latex, Op, as_expr, latex_call, register, require_float


def _one_axis(op: str, x: Expr, axis: int) -> int:
    (a,) = normalize_axes(op, axis, x.ndim) if x.ndim else (None,)
    if a is None:
        raise ShapeError(f"{op}: needs at least a vector, got a scalar")
    return a


def _shifted(x: Expr, axis: int) -> Expr:
    """x - max(x, axis): the shift that keeps exp() from overflowing."""
    shifted = x - _reduce.max(x, axis=axis, keepdims=True)
    return shifted if x.name is None else shifted.named(f"{x.name}_shifted")


@register
class LogSumExp(Op):
    """log(sum(exp(x), axes)), computed stably (shifted by the maximum over the axes)"""

    name = "logsumexp"
    hint, latex = "logsumexp_{0}", latex_call(r"\operatorname{logsumexp}")
    latex_rule = (r"l = \operatorname{logsumexp}(z) \;\Rightarrow\; \bar{z} = \bar{l} \, "
                  r"\operatorname{softmax}(z)")

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> tuple[Shape, str]:
        require_float("logsumexp", x)
        return _reduce._reduced_shape(x.shape, axis, keepdims), x.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool
    ) -> tuple[Expr]:
        g_back = _reduce._expand_back(g, x, axis, keepdims)
        if len(axis) == 1:
            return (g_back * softmax(x, axis[0]),)
        # softmax over several axes: exp(x - logsumexp), whose exponent is <= 0 (no overflow).
        return (g_back * _ew.exp(x - _reduce._expand_back(out, x, axis, keepdims)),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> Expr:
        if len(axis) == 1:
            p = softmax(x, axis[0])
        else:
            p = _ew.exp(x - _reduce._expand_back(out, x, axis, keepdims))
        nb = _shape.batch_rank(t[0], x)
        return _reduce.sum(_shape.with_batch(p, nb) * t[0], axis=axis, keepdims=keepdims)

    @staticmethod
    def expand(x: Expr, *, axis: tuple[int, ...], keepdims: bool) -> Expr:
        top = _reduce.max(x, axis=axis, keepdims=True)
        total = _reduce.sum(_ew.exp(x - top), axis=axis, keepdims=True)
        result = _ew.log(total) + top
        return result if keepdims else _shape.squeeze(result, axis)


def _weighted_sum(p: Expr, t: Expr, axis: int, nb: int) -> Expr:
    """``sum(p * t, axis, keepdims=True)`` for a tangent ``t`` of ``p``'s shape plus ``nb``
    batch axes. Over the last axis of ``p`` with one batch axis it is a stack of row-times-matrix
    products, ``p[..., None, :] @ t``, which never builds the product ``p * t`` of the batch's
    size (the largest array of a Hessian)."""
    if nb == 1 and axis == p.ndim - 1 and p.ndim >= 1:
        return _linalg.matmul(_shape.expand_dims(p, -2), t)
    return _reduce.sum(_shape.with_batch(p, nb) * t, axis=axis, keepdims=True)


@register
class Softmax(Op):
    """exp(x) / sum(exp(x), axis), computed stably"""

    name = "softmax"
    hint, latex = "softmax_{0}", latex_call(r"\operatorname{softmax}")
    latex_rule = (r"p = \operatorname{softmax}(z) \;\Rightarrow\; \bar{z} = p \odot "
                  r"(\bar{p} - (\bar{p} \odot p)\,\mathbf{1})")

    @classmethod
    def infer(cls, x: Expr, *, axis: int) -> tuple[Shape, str]:
        require_float("softmax", x)
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: int) -> tuple[Expr]:
        return (out * (g - _reduce.sum(g * out, axis=axis, keepdims=True)),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axis: int) -> Expr:
        nb = _shape.batch_rank(t[0], x)
        p = _shape.with_batch(out, nb)
        return p * (t[0] - _weighted_sum(out, t[0], axis, nb))

    @staticmethod
    def expand(x: Expr, *, axis: int) -> Expr:
        e = _ew.exp(_shifted(x, axis))
        return e / _reduce.sum(e, axis=axis, keepdims=True)


@register
class LogSoftmax(Op):
    """x - logsumexp(x, axis), computed stably"""

    name = "log_softmax"
    hint, latex = "log_softmax_{0}", latex_call(r"\log\operatorname{softmax}")
    latex_rule = (r"l = \log\operatorname{softmax}(z) \;\Rightarrow\; \bar{z} = \bar{l} - "
                  r"\operatorname{softmax}(z) \odot (\bar{l}\,\mathbf{1})")

    @classmethod
    def infer(cls, x: Expr, *, axis: int) -> tuple[Shape, str]:
        require_float("log_softmax", x)
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: int) -> tuple[Expr]:
        return (g - softmax(x, axis) * _reduce.sum(g, axis=axis, keepdims=True),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axis: int) -> Expr:
        return t[0] - _weighted_sum(softmax(x, axis), t[0], axis, _shape.batch_rank(t[0], x))

    @staticmethod
    def expand(x: Expr, *, axis: int) -> Expr:
        shifted = _shifted(x, axis)
        return shifted - _ew.log(_reduce.sum(_ew.exp(shifted), axis=axis, keepdims=True))


@register
class SoftmaxCrossEntropy(Op):
    """-sum(labels * log_softmax(logits), axis) per example.

    Labels are one-hot rows or probability rows (each summing to 1, as TensorFlow requires), or
    integer class ids with the class axis removed. The derivative rule uses that the rows sum to
    1: d loss / d logits = softmax(logits) - labels.
    """

    name = "softmax_cross_entropy"
    hint = "softmax_cross_entropy_{0}"
    latex = Latex(
        r"-\textstyle\sum_{{j}} {1}_{{j}} \log \operatorname{{softmax}}\left({0}\right)_{{j}}",
        NEG, (0, ATOM),
    )
    latex_rule = (
        r"\ell = -\textstyle\sum_j y_j \log \operatorname{softmax}(z)_j \;\Rightarrow\; "
        r"\frac{\partial \ell}{\partial z} = \operatorname{softmax}(z) - y"
        r"\text{ (rows of } y \text{ sum to 1)}")
    labels = "one_hot"  # the rule's p - y needs rows of y summing to 1

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """In matrix notation where the batch index is implicit, as on the rest of a page:
        ``-(y \\odot \\log \\operatorname{softmax}(z)) \\mathbf{1}`` per row, ``-y^\\top \\log
        \\operatorname{softmax}(z)`` for one example; the index form otherwise."""
        logits, labels = node.inputs
        if labels.dtype == logits.dtype and logits.ndim == 2 and node.attr("axis") in (1, -1):
            return Latex(r"-\left({1} \odot \log \operatorname{{softmax}}\left({0}\right)"
                         r"\right) \, \mathbf{{1}}", NEG, (0, PROD + 1))
        if labels.dtype == logits.dtype and logits.ndim == 1:
            return Latex(r"-{{{1}}}^\top \, \log \operatorname{{softmax}}\left({0}\right)",
                         NEG, (0, ATOM))
        return cls.latex

    @classmethod
    def infer(cls, logits: Expr, labels: Expr, *, axis: int) -> tuple[Shape, str]:
        require_float("softmax_cross_entropy", logits)
        out_shape = tuple(d for i, d in enumerate(logits.shape) if i != axis)
        if labels.dtype in ("int32", "int64"):
            if labels.shape != out_shape:
                raise ShapeError(
                    f"softmax_cross_entropy: integer labels must have shape "
                    f"{format_shape(out_shape)} (the logits {format_shape(logits.shape)} without "
                    f"the class axis {axis}), got {format_shape(labels.shape)}"
                )
            if axis != logits.ndim - 1:
                raise ShapeError(
                    "softmax_cross_entropy: integer labels need the class axis last (axis=-1)"
                )
        elif labels.shape != logits.shape:
            raise ShapeError(
                f"softmax_cross_entropy: one-hot labels must have the logits' shape "
                f"{format_shape(logits.shape)}, got {format_shape(labels.shape)}"
            )
        return out_shape, logits.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, logits: Expr, labels: Expr, *, axis: int) -> tuple[Expr, ...]:
        g_rows = _shape.expand_dims(g, axis)
        if labels.dtype in ("int32", "int64"):
            target = one_hot(labels, logits.shape[axis], logits.dtype)
            return g_rows * (softmax(logits, axis) - target), None
        return g_rows * (softmax(logits, axis) - labels), -(g_rows * log_softmax(logits, axis))

    @staticmethod
    def jvp(
        t: tuple[Expr | None, Expr | None], out: Expr, logits: Expr, labels: Expr, *, axis: int
    ) -> Expr | None:
        # The same local derivatives as vjp (softmax - labels, -log_softmax), summed over the
        # class axis against the tangents; integer labels have no tangent.
        t_logits, t_labels = t
        total = None
        if t_logits is not None:
            nb = _shape.batch_rank(t_logits, logits)
            if labels.dtype in ("int32", "int64"):
                target = one_hot(labels, logits.shape[axis], logits.dtype)
            else:
                target = labels
            slope = _shape.with_batch(softmax(logits, axis) - target, nb)
            total = _reduce.sum(slope * t_logits, axis=axis)
        if t_labels is not None:
            nb = _shape.batch_rank(t_labels, labels)
            slope = _shape.with_batch(log_softmax(logits, axis), nb)
            term = -_reduce.sum(slope * t_labels, axis=axis)
            total = term if total is None else total + term
        return total

    @staticmethod
    def expand(logits: Expr, labels: Expr, *, axis: int) -> Expr:
        if labels.dtype in ("int32", "int64"):
            return logsumexp(logits, axis) - Pick.make(logits, labels, axis=axis)
        return -_reduce.sum(labels * log_softmax(logits, axis), axis=axis)


@register
class OneHot(Op):
    """np.eye(depth)[labels]: integer ids to one-hot rows (no gradient)"""

    name = "one_hot"
    differentiable = False
    hint, latex = "one_hot_{0}", latex_call(r"\operatorname{onehot}")

    @classmethod
    def infer(cls, labels: Expr, *, depth: int, dtype: str) -> tuple[Shape, str]:
        if labels.dtype not in ("int32", "int64"):
            raise DTypeError(f"one_hot: labels must be integers, got {labels.dtype}")
        return (*labels.shape, depth), dtype


@register
class Pick(Op):
    """x[..., labels] along ``axis``: the entry of each row at its integer label"""

    name = "pick"
    hint, latex = "pick_{0}", Latex("{0}_{{{1}}}", POSTFIX, (ATOM, 0))
    latex_rule = r"c = a_{y} \;\Rightarrow\; \bar{a} = \bar{c}\,\operatorname{onehot}(y)"

    @classmethod
    def infer(cls, x: Expr, labels: Expr, *, axis: int) -> tuple[Shape, str]:
        return labels.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, labels: Expr, *, axis: int) -> tuple[Expr, None]:
        return _shape.expand_dims(g, axis) * one_hot(labels, x.shape[axis], x.dtype), None


def softmax(x: object, axis: int = -1) -> Expr:
    """Softmax along ``axis``: exp(x) / sum(exp(x)), computed stably."""
    x = as_expr(x)
    return Softmax.make(x, axis=_one_axis("softmax", x, axis))


def log_softmax(x: object, axis: int = -1) -> Expr:
    """log(softmax(x)) along ``axis``, computed stably."""
    x = as_expr(x)
    return LogSoftmax.make(x, axis=_one_axis("log_softmax", x, axis))


def logsumexp(x: object, axis: int | Sequence[int] | None = -1, keepdims: bool = False) -> Expr:
    """log(sum(exp(x), axis)) over one axis, several (a tuple) or all (None), computed stably
    (as ``scipy.special.logsumexp``; symdl's default axis is the last)."""
    x = as_expr(x)
    if not x.ndim:
        raise ShapeError("logsumexp: needs at least a vector, got a scalar")
    axes = normalize_axes("logsumexp", axis, x.ndim)
    return LogSumExp.make(x, axis=axes, keepdims=bool(keepdims))


def softmax_cross_entropy(logits: object, labels: object, axis: int = -1) -> Expr:
    """Per-example cross-entropy of softmax(logits) against labels (one-hot rows or class ids).

    Equals ``-sum(labels * log_softmax(logits), axis)``, computed stably; its gradient with
    respect to the logits is ``softmax(logits) - labels``.
    """
    logits, labels = as_expr(logits), as_expr(labels)
    a = _one_axis("softmax_cross_entropy", logits, axis)
    return SoftmaxCrossEntropy.make(logits, labels, axis=a)


def one_hot(labels: object, depth: object, dtype: object = "float32") -> Expr:
    """One-hot rows of length ``depth`` for integer ``labels`` (a new last axis)."""
    if not isinstance(depth, int):
        raise ShapeError(f"one_hot: depth must be a static int, got {depth!r}")
    return OneHot.make(as_expr(labels), depth=depth, dtype=as_dtype(dtype))


# --------------------------------------------------------------------------- elementwise losses
# sigmoid_cross_entropy (per element, as TensorFlow's sigmoid_cross_entropy_with_logits), and the
# regression losses mse and huber (means, as torch's and Keras's default reduction).


def _loss_operands(op: str, pred: object, target: object) -> tuple[Expr, Expr]:
    """``pred`` and ``target`` as float expressions, the target broadcasting to ``pred``.

    A target that would broadcast the result to a larger shape (``(N, 1)`` against ``(N,)``
    gives ``(N, N)``) is almost always a bug; it is refused, naming both shapes.
    """
    pred, target = as_expr(pred, op), as_expr(target, op)
    require_float(op, pred)
    if target.dtype not in ("float32", "float64"):
        raise DTypeError(
            f"{op}: the target must be float32 or float64, got {target.dtype}; cast it with "
            f".astype({pred.dtype!r})"
        )
    shape = broadcast_shapes(op, pred.shape, target.shape)
    if shape != pred.shape:
        raise ShapeError(
            f"{op}: the target of shape {format_shape(target.shape)} would broadcast the "
            f"prediction {format_shape(pred.shape)} to {format_shape(shape)}; give the target "
            f"the prediction's shape (reshape it, or index it with [:, 0])"
        )
    return pred, target


@register
class SigmoidCrossEntropy(Op):
    """max(z, 0) - z y + log1p(exp(-|z|)) elementwise: -(y log sigmoid(z) + (1-y) log(1-sigmoid(z)))

    The stable form TensorFlow uses (never overflows, exact at z = 0); the derivative rule is the
    textbook's: d loss / d z = sigmoid(z) - y, d loss / d y = -z.
    """

    name = "sigmoid_cross_entropy"
    hint = "sigmoid_cross_entropy_{0}"
    latex = Latex(r"\operatorname{{bce}}\left(\sigma\left({0}\right), {1}\right)", ATOM)
    latex_rule = (
        r"\ell = -y \log \sigma(z) - (1 - y) \log(1 - \sigma(z)) \;\Rightarrow\; "
        r"\bar{z} = \bar{\ell} \odot (\sigma(z) - y), \; \bar{y} = -\bar{\ell} \odot z"
    )

    @classmethod
    def infer(cls, logits: Expr, labels: Expr) -> tuple[Shape, str]:
        _loss_operands("sigmoid_cross_entropy", logits, labels)
        return logits.shape, _ew._promote("sigmoid_cross_entropy", logits, labels)

    @staticmethod
    def vjp(g: Expr, out: Expr, logits: Expr, labels: Expr) -> tuple[Expr, Expr]:
        return (
            g * (_ew.sigmoid(logits) - labels),
            _ew.sum_to(-(g * logits), labels.shape),
        )

    @staticmethod
    def jvp(t: tuple[Expr | None, Expr | None], out: Expr, logits: Expr, labels: Expr) -> Expr:
        t_logits, t_labels = t
        given = (t_logits, logits) if t_logits is not None else (t_labels, labels)
        nb = _shape.batch_rank(*given)
        total = None
        if t_logits is not None:
            total = _shape.with_batch(_ew.sigmoid(logits) - labels, nb) * t_logits
        if t_labels is not None:
            term = -(_shape.with_batch(logits, nb) * t_labels)
            total = term if total is None else total + term
        return total

    @staticmethod
    def expand(logits: Expr, labels: Expr) -> Expr:
        return (
            _ew.relu(logits) - logits * labels + _ew.log1p(_ew.exp(-_ew.abs(logits)))
        )


def sigmoid_cross_entropy(logits: object, labels: object) -> Expr:
    """Binary cross-entropy of sigmoid(logits) against labels, per element (not reduced).

    Equals ``-(y * log(sigmoid(z)) + (1 - y) * log(1 - sigmoid(z)))``, computed as
    ``max(z, 0) - z * y + log1p(exp(-|z|))``, finite for every finite z, as TensorFlow's
    ``sigmoid_cross_entropy_with_logits``; the result has the logits' shape (take `mean` or
    `sum` for a loss). The gradient with respect to the logits is ``sigmoid(z) - y``, exactly,
    also at z = 0. ``labels`` (probabilities in [0, 1]) broadcast to the logits' shape.
    """
    z, y = _loss_operands("sigmoid_cross_entropy", logits, labels)
    return SigmoidCrossEntropy.make(z, y)


def mse(pred: object, target: object) -> Expr:
    """Mean squared error, ``mean((pred - target) ** 2)`` over every element (a scalar).

    The mean is torch's and Keras's default reduction; ``target`` broadcasts to ``pred``'s shape.
    """
    pred, target = _loss_operands("mse", pred, target)
    return _reduce.mean(_ew.square(pred - target))


@register
class Huber(Op):
    """the Huber function of a residual d, elementwise: d**2 / 2 where |d| <= delta, else
    delta * (|d| - delta / 2)

    Computed as Keras does, ``q**2 / 2 + delta * (|d| - q)`` with ``q = min(|d|, delta)``: one
    formula, no branch. The derivative rule is the clipped residual, ``clip(d, -delta, delta)``,
    which the derivatives of that formula would only add up to.
    """

    name = "huber"
    hint = "huber_{0}"
    latex = Latex(r"\operatorname{{huber}}\left({0}\right)", ATOM)
    latex_rule = (
        r"\ell = \operatorname{huber}_\delta(d) \;\Rightarrow\; "
        r"\bar{d} = \bar{\ell} \odot \operatorname{clip}(d, -\delta, \delta)"
    )

    @classmethod
    def infer(cls, d: Expr, *, delta: float) -> tuple[Shape, str]:
        require_float("huber", d)
        return d.shape, d.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, d: Expr, *, delta: float) -> tuple[Expr]:
        return (g * _ew.clip(d, -delta, delta),)

    @staticmethod
    def expand(d: Expr, *, delta: float) -> Expr:
        r = _ew.abs(d)
        q = _ew.minimum(r, delta)
        return q * q * 0.5 + (r - q) * delta


def huber(pred: object, target: object, delta: float = 1.0) -> Expr:
    """Huber loss, the mean over every element of ``r = |pred - target|`` taken as
    ``r**2 / 2`` where ``r <= delta`` and ``delta * (r - delta / 2)`` beyond (a scalar).

    As torch's ``HuberLoss`` and Keras's ``Huber`` with their default mean reduction; the
    gradient with respect to ``pred`` is ``clip(pred - target, -delta, delta)`` over the size.

    Raises:
        ShapeError: if ``delta`` is not a positive number (a static attribute of the loss).
    """
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
        raise ShapeError(f"huber: delta must be a positive number, got {delta!r}")
    pred, target = _loss_operands("huber", pred, target)
    return _reduce.mean(Huber.make(pred - target, delta=float(delta)))
