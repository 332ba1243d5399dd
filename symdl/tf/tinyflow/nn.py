"""tinyflow's ``tf.nn``: TensorFlow's, with tinyflow's self-shaping layers."""

from __future__ import annotations

from ...ir import Expr
from ..errors import UnimplementedError
from ..nn import *  # noqa: F403 - tinyflow's nn is TensorFlow's plus its layers
from ..nn import __all__ as _nn_all


def conv2d(*args: object, **kwargs: object) -> Expr:
    """tinyflow's conv2d (``num_filter=``, ``ksize=``): needs symdl's core conv2d op."""
    raise UnimplementedError(
        "tf.nn.conv2d needs symdl's core conv2d op (the ops issue), which this version lacks"
    )


def max_pool(*args: object, **kwargs: object) -> Expr:
    """tinyflow's max_pool: needs symdl's core max_pool2d op."""
    raise UnimplementedError(
        "tf.nn.max_pool needs symdl's core max_pool2d op (the ops issue), which this version "
        "lacks"
    )


__all__ = [*_nn_all, "conv2d", "max_pool"]
