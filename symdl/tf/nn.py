"""``tf.nn``: activations, softmax and the cross-entropy losses, on symdl's ops."""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import Expr
from ..ops import api as sd
from ..ops.base import as_expr


def _dim(axis: int | None, dim: int | None) -> int:
    if axis is not None and dim is not None:
        raise ShapeError("softmax: give axis or dim, not both")
    return -1 if axis is None and dim is None else (axis if axis is not None else dim)  # type: ignore[return-value]


def softmax(logits: object, axis: int | None = None, name: str | None = None,
            dim: int | None = None) -> Expr:
    """exp(logits) / sum(exp(logits)) along ``axis`` (default: the last)."""
    return sd.softmax(logits, _dim(axis, dim))


def log_softmax(logits: object, axis: int | None = None, name: str | None = None,
                dim: int | None = None) -> Expr:
    """log(softmax(logits)) along ``axis``, computed stably."""
    return sd.log_softmax(logits, _dim(axis, dim))


def relu(features: object, name: str | None = None) -> Expr:
    """max(features, 0)."""
    return sd.relu(features)


def sigmoid(x: object, name: str | None = None) -> Expr:
    """1 / (1 + exp(-x))."""
    return sd.sigmoid(x)


def tanh(x: object, name: str | None = None) -> Expr:
    """Hyperbolic tangent."""
    return sd.tanh(x)


def l2_loss(t: object, name: str | None = None) -> Expr:
    """sum(t ** 2) / 2, as TensorFlow's weight-decay helper."""
    return sd.sum(sd.square(t)) / 2


def softmax_cross_entropy_with_logits(_sentinel: None = None, labels: object = None,
                                      logits: object = None, dim: int = -1,
                                      name: str | None = None, axis: int | None = None) -> Expr:
    """Per-example cross-entropy of softmax(logits) against probability rows ``labels``.

    As in TensorFlow, call it with keywords: ``labels=`` and ``logits=``.
    """
    if _sentinel is not None or labels is None or logits is None:
        raise ShapeError(
            "softmax_cross_entropy_with_logits: call it with keywords, "
            "softmax_cross_entropy_with_logits(labels=..., logits=...)"
        )
    logits, labels = as_expr(logits), as_expr(labels)
    if labels.dtype not in ("float32", "float64"):
        raise ShapeError(
            "softmax_cross_entropy_with_logits: labels must be float probability rows; for "
            "integer class ids use sparse_softmax_cross_entropy_with_logits"
        )
    return sd.softmax_cross_entropy(logits, sd.cast(labels, logits.dtype),
                                    dim if axis is None else axis)


softmax_cross_entropy_with_logits_v2 = softmax_cross_entropy_with_logits


def sparse_softmax_cross_entropy_with_logits(_sentinel: None = None, labels: object = None,
                                             logits: object = None,
                                             name: str | None = None) -> Expr:
    """Per-example cross-entropy of softmax(logits) against integer class ids ``labels``."""
    if _sentinel is not None or labels is None or logits is None:
        raise ShapeError(
            "sparse_softmax_cross_entropy_with_logits: call it with keywords, "
            "sparse_softmax_cross_entropy_with_logits(labels=..., logits=...)"
        )
    logits, labels = as_expr(logits), as_expr(labels)
    if labels.dtype not in ("int32", "int64"):
        raise ShapeError(
            "sparse_softmax_cross_entropy_with_logits: labels must be int32 or int64 class ids, "
            f"got {labels.dtype}; for one-hot rows use softmax_cross_entropy_with_logits"
        )
    return sd.softmax_cross_entropy(logits, labels)
