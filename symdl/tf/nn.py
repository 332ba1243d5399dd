"""``tf.nn``: activations, softmax and the cross-entropy losses, on symdl's ops."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import random as sd_random
from ..errors import ShapeError
from ..ir import Expr
from ..ops import api as sd
from ..ops.base import as_expr
from .deferred import Deferred, DeferredVariable, deferrable, has_deferred, split_deferred
from .graph import deferred_variable, get_default_graph


def _dim(axis: int | None, dim: int | None) -> int:
    if axis is not None and dim is not None:
        raise ShapeError("softmax: give axis or dim, not both")
    return -1 if axis is None and dim is None else (axis if axis is not None else dim)  # type: ignore[return-value]


@deferrable
def softmax(logits: object, axis: int | None = None, name: str | None = None,
            dim: int | None = None) -> Expr:
    """exp(logits) / sum(exp(logits)) along ``axis`` (default: the last)."""
    return sd.softmax(logits, _dim(axis, dim))


@deferrable
def log_softmax(logits: object, axis: int | None = None, name: str | None = None,
                dim: int | None = None) -> Expr:
    """log(softmax(logits)) along ``axis``, computed stably."""
    return sd.log_softmax(logits, _dim(axis, dim))


@deferrable
def relu(features: object, name: str | None = None) -> Expr:
    """max(features, 0)."""
    return sd.relu(features)


@deferrable
def sigmoid(x: object, name: str | None = None) -> Expr:
    """1 / (1 + exp(-x))."""
    return sd.sigmoid(x)


@deferrable
def tanh(x: object, name: str | None = None) -> Expr:
    """Hyperbolic tangent."""
    return sd.tanh(x)


@deferrable
def l2_loss(t: object, name: str | None = None) -> Expr:
    """sum(t ** 2) / 2, as TensorFlow's weight-decay helper."""
    return sd.sum(sd.square(t)) / 2


@deferrable
def softmax_cross_entropy_with_logits(_sentinel: None = None, labels: object = None,
                                      logits: object = None, dim: int = -1,
                                      name: str | None = None, axis: int | None = None) -> Expr:
    """Per-example cross-entropy of softmax(logits) against probability rows ``labels``.

    As in TensorFlow, call it with keywords: ``labels=`` and ``logits=``; the 0.12-era
    positional form ``(logits, labels)`` is accepted too (TensorFlow 0.12's tutorials use it).
    """
    if _sentinel is not None and labels is not None and logits is None:
        logits, labels = _sentinel, labels  # the old positional order: (logits, labels)
        _sentinel = None
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


@deferrable
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


# --------------------------------------------------------------------------- more of tf.nn


@deferrable
def bias_add(value: object, bias: object, data_format: str | None = None,
             name: str | None = None) -> Expr:
    """``value + bias`` with a rank-1 ``bias`` on the channel axis (last, or 1 for NCHW)."""
    x, b = as_expr(value), as_expr(bias)
    channel = 1 if data_format in ("NCHW", "NCDHW", "NCW") else -1
    if b.ndim != 1 or x.ndim < 2 or x.shape[channel] != b.shape[0]:
        raise ShapeError(
            f"bias_add: bias must be rank 1 with the size of value's channel axis "
            f"({channel}); got value {x.shape} and bias {b.shape}"
        )
    if channel == 1:
        b = sd.reshape(b, [b.shape[0]] + [1] * (x.ndim - 2))
    return x + b


def moments(x: object, axes: Sequence[int], shift: object = None, name: str | None = None,
            keep_dims: bool = False, keepdims: bool | None = None) -> tuple[Any, Any]:
    """(mean, variance) of ``x`` over ``axes``; variance is the mean squared deviation."""
    keep = bool(keep_dims if keepdims is None else keepdims)
    if has_deferred((x,)):
        whole = Deferred(moments, (x, axes), {"keepdims": keep}, label="moments")
        first, second = split_deferred(whole, 2)
        return first, second
    t = as_expr(x)
    axis = tuple(int(a) for a in axes)
    mean = sd.mean(t, axis, keepdims=True)
    variance = sd.mean(sd.square(t - mean), axis, keepdims=keep)
    return (mean if keep else sd.squeeze(mean, axis)), variance


@deferrable
def in_top_k(predictions: object, targets: object, k: int, name: str | None = None) -> Expr:
    """True where ``targets[i]`` is among the ``k`` largest of ``predictions[i]``.

    As in TensorFlow, ties count in the target's favour: the target is in the top k when fewer
    than k entries are strictly larger than it.
    """
    p, t = as_expr(predictions), as_expr(targets)
    if p.ndim != 2 or t.ndim != 1:
        raise ShapeError(
            f"in_top_k: predictions must be (batch, classes) and targets (batch,), got "
            f"{p.shape} and {t.shape}"
        )
    if t.dtype not in ("int32", "int64"):
        raise ShapeError(f"in_top_k: targets must be int32 or int64 class ids, got {t.dtype}")
    target_score = sd.sum(p * sd.one_hot(t, p.shape[1], p.dtype), axis=1, keepdims=True)
    larger = sd.sum(sd.cast(sd.greater(p, target_score), "int32"), axis=1)
    return sd.less(larger, int(k))


@deferrable
def sigmoid_cross_entropy_with_logits(_sentinel: None = None, labels: object = None,
                                      logits: object = None, name: str | None = None) -> Expr:
    """Elementwise cross-entropy of sigmoid(logits) against ``labels`` in [0, 1], computed as
    TensorFlow does, stably: ``max(x, 0) - x * z + log(1 + exp(-|x|))`` (symdl's
    `sigmoid_cross_entropy`, whose gradient is ``sigmoid(x) - z``)."""
    if _sentinel is not None or labels is None or logits is None:
        raise ShapeError(
            "sigmoid_cross_entropy_with_logits: call it with keywords, "
            "sigmoid_cross_entropy_with_logits(labels=..., logits=...)"
        )
    x = as_expr(logits)
    return sd.sigmoid_cross_entropy(x, sd.cast(labels, x.dtype))


# --------------------------------------------------------------------------- convolution, pooling


def _spatial(op: str, values: object, data_format: str, what: str) -> tuple[int, int]:
    """(height, width) from TensorFlow's 4-list (``[1, sh, sw, 1]`` for NHWC, ``[1, 1, sh, sw]``
    for NCHW), whose batch and channel entries must be 1; an int or a pair is taken as is."""
    if isinstance(values, (int, np.integer)):
        return int(values), int(values)
    items = [int(v) for v in values]  # type: ignore[union-attr]
    if len(items) == 2:
        return items[0], items[1]
    if len(items) == 1:
        return items[0], items[0]
    rows, cols = (2, 3) if data_format == "NCHW" else (1, 2)
    others = [items[i] for i in range(4) if i not in (rows, cols)] if len(items) == 4 else []
    if len(items) != 4 or others != [1, 1]:
        raise ShapeError(
            f"{op}: {what} must be an int, a (height, width) pair or a 4-list with 1 for the "
            f"batch and channel axes ({'[1, 1, h, w]' if rows == 2 else '[1, h, w, 1]'} for "
            f"{data_format}), got {list(items)}"
        )
    return items[rows], items[cols]


def _padding(op: str, padding: object, data_format: str) -> object:
    """"SAME" / "VALID" as they are; TensorFlow's explicit 4 pairs reduced to the spatial ones."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            raise ShapeError(f'{op}: padding must be "SAME", "VALID" or pairs, got {padding!r}')
        return mode
    pairs = [tuple(int(v) for v in pair) for pair in padding]  # type: ignore[union-attr]
    if len(pairs) == 4:
        rows, cols = (2, 3) if data_format == "NCHW" else (1, 2)
        return [pairs[rows], pairs[cols]]
    return pairs


def _data_format(op: str, data_format: str | None) -> str:
    fmt = data_format or "NHWC"
    if fmt not in ("NHWC", "NCHW"):
        raise ShapeError(f'{op}: data_format must be "NHWC" or "NCHW", got {fmt!r}')
    return fmt


@deferrable
def conv2d(input: object = None, filter: object = None, strides: object = None,  # noqa: A002
           padding: object = None, use_cudnn_on_gpu: bool = True, data_format: str = "NHWC",
           dilations: object = None, name: str | None = None, filters: object = None) -> Expr:
    """2-D cross-correlation of ``input`` (NHWC, or NCHW) with ``filter`` (HWIO), as TensorFlow:
    ``strides`` a 4-list (``[1, 1, 1, 1]``), ``padding`` "SAME" (output ``ceil(H / stride)``)
    or "VALID". The filter is HWIO in both formats, as in TensorFlow."""
    fmt = _data_format("conv2d", data_format)
    w = as_expr(filter if filter is not None else filters)
    if input is None or w is None or strides is None or padding is None:
        raise ShapeError("conv2d: give input, filter, strides and padding")
    if w.ndim != 4:
        raise ShapeError(f"conv2d: the filter must be (height, width, in, out), got {w.shape}")
    if fmt == "NCHW":
        w = sd.transpose(w, (3, 2, 0, 1))  # TensorFlow's NCHW keeps the HWIO filter
    return sd.conv2d(input, w, _spatial("conv2d", strides, fmt, "strides"),
                     _padding("conv2d", padding, fmt),
                     _spatial("conv2d", dilations if dilations is not None else 1, fmt,
                              "dilations"), fmt)


@deferrable
def max_pool(value: object = None, ksize: object = None, strides: object = None,
             padding: object = None, data_format: str = "NHWC", name: str | None = None,
             input: object = None) -> Expr:  # noqa: A002
    """Max pooling with TensorFlow's 4-lists ``ksize`` and ``strides`` (``[1, 2, 2, 1]``);
    SAME padding never wins (it is -inf)."""
    fmt = _data_format("max_pool", data_format)
    x = value if value is not None else input
    if x is None or ksize is None or strides is None or padding is None:
        raise ShapeError("max_pool: give value, ksize, strides and padding")
    return sd.max_pool2d(x, _spatial("max_pool", ksize, fmt, "ksize"),
                         _spatial("max_pool", strides, fmt, "strides"),
                         _padding("max_pool", padding, fmt), fmt)


@deferrable
def avg_pool(value: object = None, ksize: object = None, strides: object = None,
             padding: object = None, data_format: str = "NHWC", name: str | None = None,
             input: object = None) -> Expr:  # noqa: A002
    """Average pooling with TensorFlow's 4-lists; with SAME padding each mean is over the
    window's pixels inside the input, as TensorFlow computes it."""
    fmt = _data_format("avg_pool", data_format)
    x = value if value is not None else input
    if x is None or ksize is None or strides is None or padding is None:
        raise ShapeError("avg_pool: give value, ksize, strides and padding")
    return sd.avg_pool2d(x, _spatial("avg_pool", ksize, fmt, "ksize"),
                         _spatial("avg_pool", strides, fmt, "strides"),
                         _padding("avg_pool", padding, fmt), fmt)


# --------------------------------------------------------------------------- dropout


def _dropout_now(x: object, keep_prob: object, rate: object, noise_shape: object,
                 rng: Expr) -> Expr:
    t = as_expr(x)
    if t.dtype not in ("float32", "float64"):
        raise ShapeError(f"dropout: x must be float32 or float64, got {t.dtype}; cast it first")
    if rate is not None and noise_shape is None:
        return sd.dropout(t, rate if isinstance(rate, (int, float)) else as_expr(rate), rng)
    # keep_prob is used as given (not as 1 - (1 - keep_prob), which can round differently):
    # keep each entry with probability keep, scaled by 1 / keep, as TensorFlow computes it.
    if rate is not None:
        keep: Any = 1.0 - rate if isinstance(rate, (int, float)) else 1 - as_expr(rate)
    else:
        keep = keep_prob
    if isinstance(keep, (int, float)):
        if not 0 < keep <= 1:
            raise ValueError(f"dropout: keep_prob must be in (0, 1], got {keep!r}")
        if keep == 1 and noise_shape is None:
            return t
        scale: Any = float(keep)
    else:
        keep = as_expr(keep)
        if keep.shape != () or keep.dtype not in ("float32", "float64"):
            raise ShapeError(
                f"dropout: keep_prob must be a float scalar, got shape {keep.shape} and dtype "
                f"{keep.dtype}"
            )
        keep = keep if keep.dtype == t.dtype else sd.cast(keep, t.dtype)
        # at keep_prob 0 every entry is dropped: 0 / tiny stays 0 where 0 / 0 would be nan
        scale = sd.maximum(keep, float(np.finfo(t.dtype).tiny))
    if noise_shape is None:
        dims: tuple[Any, ...] = tuple(t.shape)
    else:
        dims = tuple(t.shape[i] if d is None else int(d)
                     for i, d in enumerate(noise_shape))  # type: ignore[arg-type]
    mask = sd_random.bernoulli(rng, keep, dims)
    return t * mask / scale


def dropout(x: object, keep_prob: object = None, noise_shape: object = None,
            seed: int | None = None, name: str | None = None, rate: object = None) -> Any:
    """Inverted dropout: each entry of ``x`` is kept with probability ``keep_prob`` (or
    ``1 - rate``) and scaled by ``1 / keep_prob``, zeroed otherwise, with a new mask on every
    `Session.run`. ``keep_prob`` is a number or a float scalar placeholder (fed 0.5 in
    training and 1.0 in evaluation, where the result is ``x`` itself); ``noise_shape`` draws
    one mask entry per broadcast group (``[N, 1, 1, C]``: per channel).
    """
    if (keep_prob is None) == (rate is None):
        raise ShapeError("dropout: give keep_prob or rate (exactly one)")
    if rate is not None and isinstance(rate, (int, float)) and not 0 <= rate < 1:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate!r}")
    # The generator is chosen now, at graph-building time, so the op seeds do not depend on
    # when (or how often) a shapeless graph is lowered.
    rng = get_default_graph().rng_leaf(seed)
    if has_deferred((x, keep_prob, rate)):
        return Deferred(_dropout_now, (x, keep_prob, rate, noise_shape, rng), label="dropout")
    return _dropout_now(x, keep_prob, rate, noise_shape, rng)


@deferrable
def embedding_lookup(params: object, ids: object, partition_strategy: str = "mod",
                     name: str | None = None, **_ignored: object) -> Expr:
    """Rows ``params[ids]``: shape ``ids.shape + params.shape[1:]``, a gather (`sd.take`) whose
    gradient scatter-adds into the chosen rows."""
    if isinstance(params, (list, tuple)):
        if len(params) != 1:
            raise ShapeError("embedding_lookup: a list of sharded params is not supported")
        params = params[0]
    table, index = as_expr(params), as_expr(ids)
    if table.ndim < 1:
        raise ShapeError(f"embedding_lookup: params must have rank >= 1, got {table.shape}")
    if index.dtype not in ("int32", "int64"):
        raise ShapeError(f"embedding_lookup: ids must be int32 or int64, got {index.dtype}")
    return sd.take(table, index, axis=0)


# --------------------------------------------------------------------------- tinyflow's extras


class _Held:
    """Holds an auto-shaped variable without exposing it to lowering's substitution: the layer
    binds its shape from the input's."""

    def __init__(self, var: DeferredVariable | None) -> None:
        self.var = var


def _linear_now(x: object, weight: _Held, bias: _Held, num_hidden: int) -> Expr:
    t = as_expr(x)
    if t.ndim != 2:
        raise ShapeError(f"linear: the input must be (batch, features), got {t.shape}")
    if weight.var is None:
        raise ShapeError("linear: the layer has no weight variable")
    w = weight.var.bind((int(num_hidden), int(t.shape[1])))  # type: ignore[arg-type]
    out = t @ sd.transpose(w)
    if bias.var is not None:
        out = out + bias.var.bind((int(num_hidden),))
    return out


def linear(x: object, num_hidden: int, name: str | None = None, no_bias: bool = False) -> Any:
    """tinyflow's fully connected layer: ``x @ weight.T + bias``, weight (num_hidden, features).

    Its variables ``<name>_weight`` and ``<name>_bias`` take their shapes from ``x`` when it is
    known (at once, or when fed); initialize them with `tf.infer_variable_shapes` and `assign`.
    """
    base = name or get_default_graph().unique_name("linear")
    weight = _Held(deferred_variable(f"{base}_weight"))
    bias = _Held(None if no_bias else deferred_variable(f"{base}_bias"))
    if has_deferred((x,)):
        return Deferred(_linear_now, (x, weight, bias, num_hidden), label=base)
    return _linear_now(x, weight, bias, num_hidden)


@deferrable
def flatten_layer(x: object, name: str | None = None) -> Expr:
    """tinyflow's flatten: (batch, ...) to (batch, product of the rest)."""
    t = as_expr(x)
    rest = [d for d in t.shape[1:]]
    if not all(isinstance(d, int) for d in rest):
        raise ShapeError(f"flatten_layer: the non-batch sizes must be known, got {t.shape}")
    return sd.reshape(t, [-1, math.prod(rest)])  # type: ignore[arg-type]


@deferrable
def mean_sparse_softmax_cross_entropy_with_logits(logits: object, label: object) -> Expr:
    """tinyflow's loss: the batch mean of the cross-entropy against class ids ``label``
    (given as floats in tinyflow's programs, so they are cast to int64)."""
    t = as_expr(logits)
    ids = as_expr(label)
    if ids.dtype not in ("int32", "int64"):
        ids = sd.cast(ids, "int64")
    return sd.mean(sd.softmax_cross_entropy(t, ids))


__all__ = [
    "avg_pool", "bias_add", "conv2d", "dropout", "embedding_lookup", "flatten_layer",
    "in_top_k", "l2_loss", "linear", "log_softmax", "max_pool",
    "mean_sparse_softmax_cross_entropy_with_logits", "moments", "relu", "sigmoid",
    "sigmoid_cross_entropy_with_logits", "softmax", "softmax_cross_entropy_with_logits",
    "softmax_cross_entropy_with_logits_v2", "sparse_softmax_cross_entropy_with_logits", "tanh",
]
