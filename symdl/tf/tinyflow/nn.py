"""tinyflow's ``tf.nn``: TensorFlow's, with tinyflow's self-shaping layers.

tinyflow's convolution and pooling (its ``src/op_nn.cc``, run by Torch's ``nn`` modules) differ
from TensorFlow's: the layout is NCHW, ``ksize`` and ``strides`` are TensorFlow-style 4-lists
``[1, h, w, 1]``, padding defaults to "SAME" and means Torch's symmetric ``(k - 1) // 2`` on
each side (output ``(H + 2 * pad - k) // stride + 1``), and ``conv2d`` makes its own filter
``<name>_weight`` (num_filter, in, kh, kw) and, with ``no_bias=False``, ``<name>_bias``, shaped
from the input as ``tf.nn.linear``'s variables are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...errors import ShapeError
from ...ir import Expr
from ...ops import api as sd
from ...ops.base import as_expr
from ..deferred import Deferred, deferrable, has_deferred
from ..graph import deferred_variable, get_default_graph
from ..nn import *  # noqa: F403 - tinyflow's nn is TensorFlow's plus its layers
from ..nn import __all__ as _nn_all
from ..nn import _Held


def _window(op: str, values: Sequence[int] | None, default: int) -> tuple[int, int]:
    """(h, w) from tinyflow's ``[1, h, w, 1]`` (the only form its shape rule accepts)."""
    items = [default] * 4 if values is None else [int(v) for v in values]
    if len(items) != 4 or items[0] != 1 or items[3] != 1:
        raise ShapeError(f"{op}: tinyflow's ksize and strides are [1, h, w, 1], got {items}")
    return items[1], items[2]


def _torch_padding(op: str, padding: str, kh: int, kw: int) -> list[tuple[int, int]]:
    if padding not in ("SAME", "VALID"):
        raise ShapeError(f'{op}: padding must be "SAME" or "VALID", got {padding!r}')
    ph, pw = ((kh - 1) // 2, (kw - 1) // 2) if padding == "SAME" else (0, 0)
    return [(ph, ph), (pw, pw)]


def _nchw(op: str, x: object, data_format: str) -> Expr:
    t = as_expr(x)
    if data_format != "NCHW":
        raise ShapeError(f'{op}: tinyflow supports data_format="NCHW" only, got {data_format!r}')
    if t.ndim != 4 or not isinstance(t.shape[1], int):
        raise ShapeError(f"{op}: the input must be (batch, channels, height, width), got {t.shape}")
    return t


def _conv_now(x: object, weight: _Held, bias: _Held, num_filter: int, ksize: Any,
              strides: Any, padding: str, data_format: str) -> Expr:
    t = _nchw("conv2d", x, data_format)
    kh, kw = _window("conv2d", ksize, 1)
    sh, sw = _window("conv2d", strides, 1)
    w = weight.var.bind((int(num_filter), int(t.shape[1]), kh, kw))  # type: ignore[union-attr]
    out = sd.conv2d(t, w, (sh, sw), _torch_padding("conv2d", padding, kh, kw),
                    data_format="NCHW")
    if bias.var is not None:
        out = out + sd.reshape(bias.var.bind((int(num_filter),)), [1, int(num_filter), 1, 1])
    return out


def conv2d(x: object, num_filter: int = 0, ksize: Sequence[int] | None = None,
           strides: Sequence[int] | None = None, padding: str = "SAME",
           data_format: str = "NCHW", no_bias: bool = True, name: str | None = None) -> Any:
    """tinyflow's convolution layer: NCHW input, ``num_filter`` filters of ``ksize``
    ``[1, kh, kw, 1]``; its filter (and bias, with ``no_bias=False``) take their shapes from
    the input (``tf.infer_variable_shapes`` then `assign` initializes them)."""
    if int(num_filter) <= 0:
        raise ShapeError("conv2d: give num_filter, the number of output channels")
    base = name or get_default_graph().unique_name("conv2d")
    weight = _Held(deferred_variable(f"{base}_weight"))
    bias = _Held(None if no_bias else deferred_variable(f"{base}_bias"))
    args = (x, weight, bias, num_filter, ksize, strides, padding, data_format)
    if has_deferred((x,)):
        return Deferred(_conv_now, args, label=base)
    return _conv_now(*args)


@deferrable
def max_pool(x: object, ksize: Sequence[int] | None = None,
             strides: Sequence[int] | None = None, padding: str = "SAME",
             data_format: str = "NCHW", name: str | None = None) -> Expr:
    """tinyflow's max pooling: NCHW, ``[1, h, w, 1]`` windows, Torch's symmetric padding."""
    t = _nchw("max_pool", x, data_format)
    kh, kw = _window("max_pool", ksize, 1)
    return sd.max_pool2d(t, (kh, kw), _window("max_pool", strides, 1),
                         _torch_padding("max_pool", padding, kh, kw), data_format="NCHW")


@deferrable
def avg_pool(x: object, ksize: Sequence[int] | None = None,
             strides: Sequence[int] | None = None, padding: str = "SAME",
             data_format: str = "NCHW", name: str | None = None) -> Expr:
    """tinyflow's average pooling: NCHW, ``[1, h, w, 1]`` windows, Torch's symmetric padding
    (Torch's SpatialAveragePooling counts the padding; here, as in TensorFlow, it does not)."""
    t = _nchw("avg_pool", x, data_format)
    kh, kw = _window("avg_pool", ksize, 1)
    return sd.avg_pool2d(t, (kh, kw), _window("avg_pool", strides, 1),
                         _torch_padding("avg_pool", padding, kh, kw), data_format="NCHW")


__all__ = [*_nn_all, "avg_pool", "conv2d", "max_pool"]
