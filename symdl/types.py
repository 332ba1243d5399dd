"""Shapes and dtypes: the static facts every node carries.

A dimension is an ``int`` or a ``str`` naming a symbolic size (``"N"``); ``None`` in user code
means the batch size ``"N"``. Sizes with the same name are equal; the generated code checks that
on entry. Dtypes are numpy's names as strings (``"float32"``), so nodes hash and print simply.
"""

from __future__ import annotations

import builtins
import keyword
from collections.abc import Iterable, Sequence
from typing import Union

import numpy as np

from .errors import DTypeError, ShapeError

Dim = Union[int, str]  # noqa: UP007 - a runtime alias must work on Python 3.10
Shape = tuple[Dim, ...]

BATCH = "N"
# Generated code prints symbolic sizes verbatim, so they must not shadow what it uses.
_UNSAFE_SIZE_NAMES = frozenset(dir(builtins)) | {"np", "numpy", "self"}
DTYPES = ("bool", "int32", "int64", "float32", "float64")
FLOAT_DTYPES = ("float32", "float64")
INT_DTYPES = ("int32", "int64")


# --------------------------------------------------------------------------- dtypes


def as_dtype(dtype: object) -> str:
    """Normalize ``"float32"``, ``np.float32``, ``np.dtype("float32")`` or ``float`` to a name."""
    try:
        name = np.dtype(dtype).name  # type: ignore[call-overload]
    except TypeError:
        name = None
    if name not in DTYPES:
        raise DTypeError(
            f"unsupported dtype {dtype!r}: symdl supports {', '.join(DTYPES)}; "
            "cast the value with .astype() first"
        )
    return name


def is_float(dtype: str) -> bool:
    """True for float32 and float64."""
    return dtype in FLOAT_DTYPES


def promote(strong: Sequence[str], weak: Sequence[str] = ()) -> str:
    """The dtype numpy gives a binary op (NEP 50).

    ``strong`` are dtypes of arrays; ``weak`` are dtypes of Python scalars, which adapt to the
    arrays (``x_float32 * 2.0`` stays float32) unless their kind is higher (``int * 0.5`` is float).
    """
    if "generator" in strong or "generator" in weak:
        # An `sd.rng` leaf is not an array: arithmetic on it is a slip for a draw from it.
        raise DTypeError(
            "a random generator (sd.rng) is not a value to compute with; draw from it, e.g. "
            "sd.random.uniform(rng, shape)"
        )
    if not strong:
        return np.result_type(*weak).name if weak else "float64"
    result = np.result_type(*strong).name
    kinds = "biuf"
    for w in weak:
        if kinds.index(np.dtype(w).kind) > kinds.index(np.dtype(result).kind):
            result = np.result_type(result, w).name
    return result


# --------------------------------------------------------------------------- shapes


def as_dim(dim: object, *, where: str) -> Dim:
    """Normalize one user-given dimension; ``None`` is the batch size ``"N"``."""
    if dim is None:
        return BATCH
    if isinstance(dim, (bool, np.bool_)):
        raise ShapeError(f"{where}: a dimension must be an int or a size name, got {dim!r}")
    if isinstance(dim, (int, np.integer)):
        if dim < 0:
            raise ShapeError(f"{where}: dimensions must be >= 0, got {dim}")
        return int(dim)
    if isinstance(dim, str):
        if (
            not dim.isidentifier() or not dim.isascii() or keyword.iskeyword(dim)
            or dim.startswith("_") or dim in _UNSAFE_SIZE_NAMES
        ):
            raise ShapeError(
                f"{where}: a symbolic size must be a plain identifier such as 'N' (ASCII, not a "
                f"keyword, a builtin or np), got {dim!r}"
            )
        return dim
    raise ShapeError(f"{where}: a dimension must be an int, a size name or None, got {dim!r}")


def as_shape(shape: object, *, where: str) -> Shape:
    """Normalize a user-given shape (an int, a sequence, or ``()`` for a scalar)."""
    if shape is None:
        return ()
    if isinstance(shape, (int, str, np.integer)):
        shape = (shape,)
    if not isinstance(shape, Iterable):
        raise ShapeError(f"{where}: a shape must be a tuple of dimensions, got {shape!r}")
    return tuple(as_dim(d, where=where) for d in shape)


def format_shape(shape: Shape) -> str:
    """``(N, 784)``; a scalar is ``()``."""
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def broadcast_shapes(op: str, *shapes: Shape) -> Shape:
    """Numpy broadcasting over static and symbolic sizes; raises ShapeError naming the op."""
    ndim = max((len(s) for s in shapes), default=0)
    result: list[Dim] = []
    for i in range(ndim):
        dims = {s[i - ndim + len(s)] for s in shapes if i - ndim + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            listed = " and ".join(format_shape(s) for s in shapes)
            raise ShapeError(
                f"{op}: shapes {listed} do not broadcast (axis {i - ndim}: "
                f"{' vs '.join(str(d) for d in sorted(dims, key=str))}); "
                "reshape or expand_dims one operand so the sizes match or are 1"
            )
        result.append(dims.pop() if dims else 1)
    return tuple(result)


def normalize_axes(op: str, axis: object, ndim: int) -> tuple[int, ...]:
    """Axis argument (None, int or tuple) to a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else axis
    if not isinstance(axes, Iterable):
        raise ShapeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
    result = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise ShapeError(f"{op}: axis must be None, an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < ndim:
            raise ShapeError(f"{op}: axis {a} is out of range for an array of rank {ndim}")
        result.append(int(a) % ndim)
    if len(set(result)) != len(result):
        raise ShapeError(f"{op}: repeated axis in {axis!r}")
    return tuple(sorted(result))


def size_of(shape: Shape) -> tuple[int, tuple[str, ...]]:
    """Number of elements as (static factor, sorted symbolic factors): (N, 784) -> (784, ('N',))."""
    static = 1
    symbols: list[str] = []
    for d in shape:
        if isinstance(d, int):
            static *= d
        else:
            symbols.append(d)
    return static, tuple(sorted(symbols))


def symbols_of(shape: Shape) -> tuple[str, ...]:
    """The symbolic sizes a shape mentions, in order of first appearance."""
    return tuple(dict.fromkeys(d for d in shape if isinstance(d, str)))
