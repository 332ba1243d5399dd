"""TensorFlow-named errors raised by `symdl.tf` sessions (``tf.errors.InvalidArgumentError``).

They subclass symdl's typed errors, so code catching ``ValueError`` or `symdl.errors.SymdlError`
catches them too.
"""

from __future__ import annotations

from ..errors import DTypeError, ShapeError, SymdlError


class InvalidArgumentError(ShapeError):
    """A feed of the wrong shape or dtype, or a fetch or feed that is not a tensor of this graph."""


class FailedPreconditionError(SymdlError, RuntimeError):
    """A variable read before it was initialized (run ``tf.global_variables_initializer()``)."""


class UnimplementedError(SymdlError, NotImplementedError):
    """An op of TensorFlow that symdl.tf does not provide (yet)."""


def bool_reduction(op: str, x: object) -> None:
    """Refuse a reduction of bools in TensorFlow's words (TensorFlow refuses them too)."""
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        import numpy as np

        dtype = np.asarray(x).dtype
    if str(dtype) == "bool":
        raise DTypeError(
            f"{op}: cannot reduce a bool tensor; cast it with tf.cast(x, tf.float32) first "
            f"(for an accuracy: tf.{op}(tf.cast(correct_prediction, tf.float32)))"
        )


__all__ = [
    "FailedPreconditionError", "InvalidArgumentError", "UnimplementedError", "bool_reduction",
]
