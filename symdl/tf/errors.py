"""TensorFlow-named errors raised by `symdl.tf` sessions (``tf.errors.InvalidArgumentError``).

They subclass symdl's typed errors, so code catching ``ValueError`` or `symdl.errors.SymdlError`
catches them too.
"""

from __future__ import annotations

from ..errors import ShapeError, SymdlError


class InvalidArgumentError(ShapeError):
    """A feed of the wrong shape or dtype, or a fetch or feed that is not a tensor of this graph."""


class FailedPreconditionError(SymdlError, RuntimeError):
    """A variable read before it was initialized (run ``tf.global_variables_initializer()``)."""


__all__ = ["FailedPreconditionError", "InvalidArgumentError"]
