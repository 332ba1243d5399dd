"""TensorFlow-style dtype objects: ``tf.float32`` and friends.

A `DType` is a ``str`` subclass holding numpy's name (``"float32"``), so it works wherever symdl
or numpy takes a dtype (``np.dtype(tf.float32)``, ``sd.cast(x, tf.int64)``) and prints as
TensorFlow does (``tf.float32``).
"""

from __future__ import annotations

import numpy as np

from ..errors import DTypeError
from ..types import as_dtype as _core_dtype


class DType(str):
    """A dtype name such as ``"float32"`` that reprs as ``tf.float32``."""

    __slots__ = ()

    @property
    def name(self) -> str:
        """numpy's name of the dtype."""
        return str(self)

    @property
    def as_numpy_dtype(self) -> type[np.generic]:
        """The numpy scalar type, as TensorFlow's ``DType.as_numpy_dtype``."""
        return np.dtype(str(self)).type

    @property
    def is_floating(self) -> bool:
        """True for float32 and float64."""
        return str(self) in ("float32", "float64")

    @property
    def is_integer(self) -> bool:
        """True for int32 and int64."""
        return str(self) in ("int32", "int64")

    def __repr__(self) -> str:
        return f"tf.{self}"


float32 = DType("float32")
float64 = DType("float64")
int32 = DType("int32")
int64 = DType("int64")
bool = DType("bool")  # noqa: A001 - TensorFlow's name (tf.bool)
double = float64


def as_dtype(dtype: object) -> DType:
    """``tf.float32``, ``"float32"``, ``np.float32`` or ``np.dtype("float32")`` as a `DType`."""
    if isinstance(dtype, DType):
        return dtype
    try:
        return DType(_core_dtype(dtype))
    except DTypeError:
        raise DTypeError(
            f"unsupported dtype {dtype!r}: symdl.tf supports float32, float64, int32, int64 and "
            "bool"
        ) from None


__all__ = ["DType", "as_dtype", "bool", "double", "float32", "float64", "int32", "int64"]
