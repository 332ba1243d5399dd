"""``tf.losses``: the batch-averaged losses of TensorFlow 1.x, on symdl's ops.

With the default scalar ``weights=1.0`` each returns the mean of the per-example losses
(TensorFlow's ``SUM_BY_NONZERO_WEIGHTS`` reduces to the mean then); a scalar weight scales it.
"""

from __future__ import annotations

from ..errors import ShapeError
from ..ir import Expr
from ..ops import api as sd
from ..ops.base import as_expr
from .deferred import deferrable
from .nn import sigmoid_cross_entropy_with_logits as _sigmoid_xent


def _weighted_mean(losses: Expr, weights: object) -> Expr:
    w = as_expr(weights)
    if w.ndim != 0:
        raise ShapeError(
            f"tf.losses: only scalar weights are supported, got shape {w.shape}; multiply the "
            "per-example losses by your weights and take tf.reduce_mean"
        )
    return sd.mean(losses) * sd.cast(w, losses.dtype)


@deferrable
def sparse_softmax_cross_entropy(labels: object, logits: object, weights: object = 1.0,
                                 scope: str | None = None, **_ignored: object) -> Expr:
    """Mean cross-entropy of softmax(logits) against integer class ids ``labels``."""
    ids = as_expr(labels)
    if ids.dtype not in ("int32", "int64"):
        raise ShapeError(
            f"sparse_softmax_cross_entropy: labels must be int32 or int64 class ids, got "
            f"{ids.dtype}; for one-hot rows use tf.losses.softmax_cross_entropy"
        )
    return _weighted_mean(sd.softmax_cross_entropy(logits, ids), weights)


@deferrable
def softmax_cross_entropy(onehot_labels: object, logits: object, weights: object = 1.0,
                          label_smoothing: float = 0, scope: str | None = None,
                          **_ignored: object) -> Expr:
    """Mean cross-entropy of softmax(logits) against probability rows ``onehot_labels``
    (smoothed towards uniform by ``label_smoothing``, as TensorFlow does)."""
    x = as_expr(logits)
    y = sd.cast(onehot_labels, x.dtype)
    if label_smoothing:
        classes = x.shape[-1]
        y = y * (1 - label_smoothing) + label_smoothing / classes
    return _weighted_mean(sd.softmax_cross_entropy(x, y), weights)


@deferrable
def sigmoid_cross_entropy(multi_class_labels: object, logits: object, weights: object = 1.0,
                          label_smoothing: float = 0, scope: str | None = None,
                          **_ignored: object) -> Expr:
    """Mean elementwise sigmoid cross-entropy (smoothed towards 1/2 by ``label_smoothing``)."""
    x = as_expr(logits)
    z = sd.cast(multi_class_labels, x.dtype)
    if label_smoothing:
        z = z * (1 - label_smoothing) + 0.5 * label_smoothing
    return _weighted_mean(_sigmoid_xent(labels=z, logits=x), weights)


@deferrable
def mean_squared_error(labels: object, predictions: object, weights: object = 1.0,
                       scope: str | None = None, **_ignored: object) -> Expr:
    """Mean of (predictions - labels)^2 over every entry."""
    p = as_expr(predictions)
    return _weighted_mean(sd.square(p - sd.cast(labels, p.dtype)), weights)


@deferrable
def absolute_difference(labels: object, predictions: object, weights: object = 1.0,
                        scope: str | None = None, **_ignored: object) -> Expr:
    """Mean of |predictions - labels| over every entry."""
    p = as_expr(predictions)
    return _weighted_mean(sd.abs(p - sd.cast(labels, p.dtype)), weights)


__all__ = [
    "absolute_difference", "mean_squared_error", "sigmoid_cross_entropy",
    "softmax_cross_entropy", "sparse_softmax_cross_entropy",
]
