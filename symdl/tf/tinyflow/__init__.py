"""tinyflow's dialect of the TensorFlow API, for ``import symdl.tf.tinyflow as tf``.

tinyflow (tqchen/tinyflow, the CSE 599W course's TensorFlow-like system) follows TensorFlow with
a few differences its programs rely on, kept here so that `symdl.tf` itself answers as
TensorFlow does:

- reductions accept bools (``tf.reduce_mean(correct_prediction)`` is the accuracy);
- ``tf.equal`` compares an int64 ``argmax`` with float labels;
- ``tf.pad(x, dim=1, pad=3)`` pads one axis with zeros, ``pad`` entries after (before, for a
  negative ``pad``), as Torch's ``nn.Padding`` that runs it;
- ``tf.nn.conv2d(x, num_filter=20, ksize=[1, 5, 5, 1])`` creates its own filter variable, and
  convolution and pooling are NCHW with Torch's padding (see `symdl.tf.tinyflow.nn`).

Everything else is `symdl.tf`'s (``tf.nn.linear``, ``tf.infer_variable_shapes``, ...).
"""

from __future__ import annotations

import importlib

from ...errors import ShapeError
from ...ir import Expr
from ...ops import api as sd
from ...ops.base import as_expr
from .. import *  # noqa: F403 - tinyflow's namespace is TensorFlow's
from .. import __all__ as _tf_all
from .. import ops as _ops
from ..deferred import deferrable
from . import datasets

# ``from . import nn`` would return the ``nn`` that the star import above bound (TensorFlow's):
# the package attribute wins over the submodule, so tinyflow's is imported by its full name.
nn = importlib.import_module(f"{__name__}.nn")


def _as_number(x: object) -> Expr:
    t = as_expr(x)
    return sd.cast(t, "float32") if t.dtype == "bool" else t


@deferrable
def reduce_mean(input_tensor: object, axis: object = None, keepdims: bool | None = None,
                name: str | None = None, reduction_indices: object = None,
                keep_dims: bool | None = None) -> Expr:
    """Mean over ``axis``; bools count as 0 and 1 (tinyflow's accuracy idiom)."""
    return _ops.reduce_mean(_as_number(input_tensor), axis, keepdims, name,
                            reduction_indices, keep_dims)


@deferrable
def reduce_sum(input_tensor: object, axis: object = None, keepdims: bool | None = None,
               name: str | None = None, reduction_indices: object = None,
               keep_dims: bool | None = None) -> Expr:
    """Sum over ``axis``; bools count as 0 and 1."""
    return _ops.reduce_sum(_as_number(input_tensor), axis, keepdims, name,
                           reduction_indices, keep_dims)


@deferrable
def equal(x: object, y: object) -> Expr:
    """Elementwise ``x == y``; an integer and a float operand are compared as floats."""
    a, b = as_expr(x), as_expr(y)
    if a.dtype != b.dtype:
        floats = [t.dtype for t in (a, b) if t.dtype in ("float32", "float64")]
        if floats:
            target = "float64" if "float64" in floats else "float32"
            a, b = sd.cast(a, target), sd.cast(b, target)
    return sd.equal(a, b)


@deferrable
def pad(x: object, dim: int = 0, pad: int = 0, **_ignored: object) -> Expr:  # noqa: A002
    """tinyflow's pad of one axis ``dim`` with ``abs(pad)`` zeros: after the entries for a
    positive ``pad``, before them for a negative one (Torch's ``nn.Padding``, which tinyflow
    runs)."""
    t = as_expr(x)
    axis = int(dim)
    if not 0 <= axis < t.ndim:
        raise ShapeError(f"pad: dim {axis} is not an axis of a tensor of shape {t.shape}")
    widths = [(0, 0)] * t.ndim
    widths[axis] = (-int(pad), 0) if pad < 0 else (0, int(pad))
    return sd.pad(t, widths)


__all__ = [*_tf_all, "datasets", "equal", "nn", "pad", "reduce_mean", "reduce_sum"]
