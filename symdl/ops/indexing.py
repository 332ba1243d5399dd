"""Integer-array indexing: `arange`, `take`, `take_along_axis`, ``E[ids]``, ``x[arange(N), y]``.

Two gathers and their adjoint. `Gather` is numpy's advanced indexing by integer arrays on
consecutive axes (``a[ids]``, ``a[:, ids]``, ``a[i, j]`` with ``i`` and ``j`` broadcast
together); `TakeAlongAxis` is ``np.take_along_axis``. The gradient of either is a scatter-add
into zeros of the input's shape (`ScatterAdd`, printed as ``np.add.at``), never a one-hot
product: an embedding of V rows looked up at N ids would need an (N, V) matrix. ``np.add.at``
rather than fancy assignment, because tied ids (the same row twice) must accumulate; rather than
``np.bincount``, because it measured faster (`benchmarks/bench_gather.py`).

Index inputs are integer expressions (a placeholder of dtype int64, `arange`, an argmax) or
constant integer arrays; constants out of range are refused here, and an integer argument of a
generated function used as an index is checked on entry (``index_bounds``, read by
`codegen.checks`), so that a bad id raises an IndexError naming it before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir import Expr
from ..types import (
    INT_DTYPES,
    Dim,
    Shape,
    as_dim,
    as_dtype,
    broadcast_shapes,
    format_shape,
    normalize_axes,
)
from . import elementwise as _ew
from . import shape as _shape
from .base import ATOM, FUNC, MAX_HINT, POSTFIX, Latex, Op, as_expr, latex_literal, register

# (position of an index input, the size it indexes, what it indexes) for the entry checks.
IndexBound = tuple[int, Dim, str]


def _what(a: Expr, axis: int) -> str:
    """``axis 0 of 'E'`` (an unnamed value is named by its op)."""
    return f"axis {axis} of {a.name!r}" if a.name else f"axis {axis} of a {a.op.name} value"


@register
class Arange(Op):
    """np.arange(start, stop, step): evenly spaced integers (no gradient)"""

    name = "arange"
    differentiable = False
    hint = "arange_{stop}"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """``\\operatorname{arange}(N)``; start and step shown where they are not 0 and 1."""
        start, stop, step = node.attr("start"), node.attr("stop"), node.attr("step")
        args = [str(stop)] if (start, step) == (0, 1) else [str(start), str(stop)]
        if step != 1:
            args.append(str(step))
        return latex_literal(r"\operatorname{arange}\left(" + ", ".join(args) + r"\right)", FUNC)

    @classmethod
    def infer(cls, *, start: int, stop: Dim, step: int, dtype: str) -> tuple[Shape, str]:
        if isinstance(stop, str):
            if (start, step) != (0, 1):
                raise ShapeError(
                    f"arange: with the symbolic stop {stop!r} only arange({stop}) is supported "
                    f"(start 0, step 1), got start={start}, step={step}; its length would not "
                    "be a size symdl can name"
                )
            return (stop,), dtype
        return (len(range(start, stop, step)),), dtype


def arange(start: object, stop: object = None, step: int = 1, dtype: object = "int64") -> Expr:
    """Evenly spaced values in ``[start, stop)``, as ``np.arange`` (integers only).

    ``stop`` may be a symbolic size such as the batch size: ``sd.arange("N")`` or
    ``sd.arange(x.shape[0])`` for ``x`` of shape ``(N, 10)`` prints ``np.arange(N)``. With one
    argument, it is the stop (``arange(5)`` is 0 to 4). Not differentiable.
    """
    if stop is None:
        start, stop = 0, start
    for name, value in (("start", start), ("step", step)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ShapeError(f"arange: {name} must be an int, got {value!r}")
    if step == 0:
        raise ShapeError("arange: step must not be zero")
    if isinstance(stop, (int, np.integer)) and not isinstance(stop, bool):
        stop_dim: Dim = int(stop)
    elif isinstance(stop, str) or stop is None:
        stop_dim = as_dim(stop, where="arange")
    else:
        raise ShapeError(
            f"arange: stop must be an int or a symbolic size such as 'N', got {stop!r}"
        )
    kind = as_dtype(dtype)
    if kind == "bool":
        raise DTypeError("arange: dtype must be an integer or float dtype, got bool")
    return Arange.make(start=int(start), stop=stop_dim, step=int(step), dtype=kind)


# --------------------------------------------------------------------------- gather


def _check_index(op: str, what: str, index: Expr, size: Dim) -> None:
    """An index must be integer; a constant one must lie in ``[-size, size)`` (numpy's range)."""
    if index.dtype not in INT_DTYPES:
        raise DTypeError(
            f"{op}: indices must be an integer array (int32 or int64), got {index.dtype} of "
            f"shape {format_shape(index.shape)}; cast them with .astype('int64')"
            + (" (a bool mask selects a data-dependent number of entries: use sd.where)"
               if index.dtype == "bool" else "")
        )
    if index.op.name == "constant" and isinstance(size, int):
        array = index.attr("value").array
        if array.size and (array.min() < -size or array.max() >= size):
            bad = int(array.min()) if array.min() < -size else int(array.max())
            raise ShapeError(
                f"{op}: the constant index {bad} is out of range for {what} of size {size} "
                f"(valid: {-size} to {size - 1})"
            )
    if index.op is Arange and isinstance(size, int) and isinstance(index.attr("stop"), int):
        values = range(index.attr("start"), index.attr("stop"), index.attr("step"))
        if values and (min(values) < -size or max(values) >= size):
            raise ShapeError(
                f"{op}: arange({values.start}, {values.stop}, {values.step}) reaches beyond "
                f"{what} of size {size}"
            )


def _gathered_shape(op: str, shape: Shape, indices: Sequence[Expr], axis: int) -> Shape:
    """``shape`` with axes ``axis .. axis + len(indices) - 1`` replaced by the indices' shape."""
    if axis + len(indices) > len(shape):
        raise ShapeError(
            f"{op}: {len(indices)} index array(s) from axis {axis} need at least "
            f"{axis + len(indices)} axes, but the array has shape {format_shape(shape)}"
        )
    joint = broadcast_shapes(op, *(i.shape for i in indices))
    return shape[:axis] + joint + shape[axis + len(indices):]


@register
class Gather(Op):
    """a[:, ..., i, j, ...]: integer arrays indexing consecutive axes from ``axis`` (numpy's
    advanced indexing; the arrays are broadcast together)"""

    name = "gather"
    hint = "{0}_{1}"
    latex_rule = (r"C = A_{i} \;\Rightarrow\; \bar{A} = \operatorname{scatter\_add}_{i}"
                  r"(\bar{C}) \text{ (}\bar{A}_{i} \mathrel{+}= \bar{C}\text{, repeated } i "
                  r"\text{ accumulate)}")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """The indices as a subscript: ``E_{ids}``, ``p_{arange(N), y}``, ``A_{:, ids}``."""
        slots = [":"] * node.attr("axis") + [f"{{{i}}}" for i in range(1, len(node.inputs))]
        return Latex("{0}_{{" + ", ".join(slots) + "}}", POSTFIX, (ATOM,))

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """numpy's indexing: ``E[ids]``, ``p[arange_N, y]``."""
        return f"{operands[0]}[{', '.join([':'] * node.attr('axis') + list(operands[1:]))}]", 100

    @classmethod
    def name_hint(cls, inputs: Sequence[str], attrs: Any) -> str:
        """``E_ids``; with several index arrays the last names it (``p_y`` for p[arange, y])."""
        text = f"{inputs[0]}_{inputs[-1]}"
        return text if len(text) <= MAX_HINT else cls.name

    @classmethod
    def infer(cls, a: Expr, *indices: Expr, axis: int) -> tuple[Shape, str]:
        shape = _gathered_shape("gather", a.shape, indices, axis)
        for j, index in enumerate(indices):
            _check_index("gather", _what(a, axis + j), index, a.shape[axis + j])
        return shape, a.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, a: Expr, *indices: Expr, axis: int) -> tuple[Expr | None, ...]:
        # np.add.at broadcasts the values: a broadcast cotangent (the adjoint of a mean) is
        # scattered as it is, not materialized.
        if g.op is _shape.BroadcastTo:
            g = g.inputs[0]
            # Leading axes of size 1 broadcast too (``ratio`` rather than ``ratio[None]``).
            if g.op is _shape.Reshape and g.shape == (1,) * (g.ndim - g.inputs[0].ndim) + (
                g.inputs[0].shape
            ):
                g = g.inputs[0]
        return (ScatterAdd.make(g, *indices, axis=axis, shape=a.shape), *(None for _ in indices))

    @staticmethod
    def index_bounds(node: Expr) -> list[IndexBound]:
        """Each index input with the size of the axis it indexes."""
        a, axis = node.inputs[0], node.attr("axis")
        return [(1 + j, a.shape[axis + j], _what(a, axis + j))
                for j in range(len(node.inputs) - 1)]


@register
class ScatterAdd(Op):
    """zeros(shape) with g added at [:, ..., i, j, ...] (np.add.at: repeated indices add up);
    the adjoint of `Gather`"""

    name = "scatter_add"
    hint = "scatter_{0}"
    latex_rule = (r"C = \operatorname{scatter\_add}_{i}(A) \;\Rightarrow\; \bar{A} = "
                  r"\bar{C}_{i}")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """``\\operatorname{scatter\\_add}_{ids}(g)``."""
        slots = [":"] * node.attr("axis") + [f"{{{i}}}" for i in range(1, len(node.inputs))]
        return Latex(r"\operatorname{{scatter\_add}}_{{" + ", ".join(slots)
                     + r"}}\left({0}\right)", FUNC)

    @classmethod
    def infer(cls, g: Expr, *indices: Expr, axis: int, shape: Shape) -> tuple[Shape, str]:
        expected = _gathered_shape("scatter_add", shape, indices, axis)
        # The values may broadcast to the indexed shape, as np.add.at allows.
        if g.ndim > len(expected) or broadcast_shapes(
            "scatter_add", g.shape, expected
        ) != expected:
            raise ShapeError(
                f"scatter_add: values of shape {format_shape(g.shape)} do not broadcast to "
                f"{format_shape(shape)} indexed from axis {axis} by arrays of shapes "
                f"{', '.join(format_shape(i.shape) for i in indices)} (expected "
                f"{format_shape(expected)})"
            )
        for j, index in enumerate(indices):
            _check_index("scatter_add", f"axis {axis + j} of the result", index, shape[axis + j])
        return shape, g.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, values: Expr, *indices: Expr, axis: int, shape: Shape
    ) -> tuple[Expr | None, ...]:
        gathered = _ew.sum_to(Gather.make(g, *indices, axis=axis), values.shape)
        return (gathered, *(None for _ in indices))

    @staticmethod
    def index_bounds(node: Expr) -> list[IndexBound]:
        """Each index input with the size of the axis of the result it indexes."""
        shape, axis = node.attr("shape"), node.attr("axis")
        return [(1 + j, shape[axis + j],
                 f"axis {axis + j} of a scatter_add result of shape {format_shape(shape)}")
                for j in range(len(node.inputs) - 1)]


@register
class TakeAlongAxis(Op):
    """np.take_along_axis(a, indices, axis): per position, the entry at its index along axis"""

    name = "take_along_axis"
    hint = "{0}_{1}"
    latex = Latex(r"\operatorname{{take}}\left({0}, {1}\right)", FUNC)
    latex_rule = (r"C = \operatorname{take}(A, i) \;\Rightarrow\; \bar{A} = "
                  r"\operatorname{scatter\_add}_{i}(\bar{C}) \text{ along the axis}")

    @classmethod
    def infer(cls, a: Expr, indices: Expr, *, axis: int) -> tuple[Shape, str]:
        if indices.ndim != a.ndim:
            raise ShapeError(
                f"take_along_axis: indices of shape {format_shape(indices.shape)} must have "
                f"the rank of the array {format_shape(a.shape)} (add axes with [..., None])"
            )
        others = [d for d in range(a.ndim) if d != axis]
        rest = broadcast_shapes(
            "take_along_axis",
            tuple(a.shape[d] for d in others), tuple(indices.shape[d] for d in others),
        )
        _check_index("take_along_axis", _what(a, axis), indices, a.shape[axis])
        return rest[:axis] + (indices.shape[axis],) + rest[axis:], a.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, a: Expr, indices: Expr, *, axis: int) -> tuple[Expr, None]:
        # a[grid_0, ..., indices, ..., grid_n]: an arange along every other axis, shaped to
        # broadcast against the indices, so the gradient is one scatter-add.
        grids = []
        for d in range(a.ndim):
            if d == axis:
                grids.append(indices)
                continue
            shape = [1] * a.ndim
            shape[d] = a.shape[d]
            grids.append(_shape.reshape(arange(a.shape[d]), shape))
        return ScatterAdd.make(g, *grids, axis=0, shape=a.shape), None

    @staticmethod
    def index_bounds(node: Expr) -> list[IndexBound]:
        """The indices with the size of the axis they index."""
        a, axis = node.inputs[0], node.attr("axis")
        return [(1, a.shape[axis], _what(a, axis))]


def _index_expr(op: str, indices: object) -> Expr:
    """An index argument as an expression: integer expressions as they are, arrays as constants."""
    if isinstance(indices, Expr):
        return indices
    if isinstance(indices, (bool, np.bool_)) or (
        isinstance(indices, (list, tuple, np.ndarray)) and np.asarray(indices).dtype == bool
    ):
        raise DTypeError(
            f"{op}: boolean indices select a data-dependent number of entries; use sd.where"
        )
    array = np.asarray(indices)
    if array.dtype.kind not in "iu":
        raise DTypeError(
            f"{op}: indices must be integers, got an array of dtype {array.dtype}; cast them "
            "with .astype(np.int64)"
        )
    return as_expr(array.astype(np.int64), op)


def take(a: object, indices: object, axis: int | None = None) -> Expr:
    """Entries of ``a`` at ``indices`` along ``axis``, as ``np.take`` (None: of ``a`` flattened).

    ``take(E, ids)`` with ``E`` of shape (V, D) and ``ids`` of shape (N,) is the embedding
    lookup ``E[ids]`` of shape (N, D). Its gradient is a scatter-add (``np.add.at``): tied ids
    accumulate. Negative indices count from the end, as in numpy.
    """
    a = as_expr(a, "take")
    index = _index_expr("take", indices)
    if axis is None:
        a, ax = _shape.reshape(a, (-1,)), 0
    else:
        (ax,) = normalize_axes("take", axis, a.ndim)
    return Gather.make(a, index, axis=ax)


def take_along_axis(a: object, indices: object, axis: int) -> Expr:
    """``np.take_along_axis``: ``indices`` (the rank of ``a``) pick entries along ``axis``.

    ``take_along_axis(x, y[:, None], 1)[:, 0]`` is ``x[arange(N), y]``: each row's entry at
    its label. Its gradient is a scatter-add, never a one-hot product.
    """
    a = as_expr(a, "take_along_axis")
    index = _index_expr("take_along_axis", indices)
    if axis is None:
        raise ShapeError("take_along_axis: axis=None (a flattened array) is not supported")
    (ax,) = normalize_axes("take_along_axis", axis, a.ndim)
    return TakeAlongAxis.make(a, index, axis=ax)


# --------------------------------------------------------------------------- x[...]


def _is_array_index(item: object) -> bool:
    if isinstance(item, Expr):
        return True
    return isinstance(item, (list, np.ndarray))


def getitem(x: Expr, index: object) -> Expr:
    """``x[index]``: numpy's basic indexing (`symdl.index`), or with integer arrays among the
    items, numpy's advanced indexing (``E[ids]``, ``x[sd.arange(N), y]``, ``x[:, ids]``).

    The integer arrays (and ints next to them) must index consecutive axes, where numpy keeps
    the result's axes in place; slices and None elsewhere are applied first, as a view.
    """
    items = index if isinstance(index, tuple) else (index,)
    if not any(_is_array_index(i) for i in items):
        return _shape.index(x, index)
    # Expand `...` into full slices so every item names its axis.
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if sum(1 for i in items if i is Ellipsis) > 1:
        raise ShapeError("index: an index can only have a single ellipsis ('...')")
    if used > x.ndim:
        raise ShapeError(f"index: too many indices ({used}) for shape {format_shape(x.shape)}")
    expanded: list[object] = []
    for item in items:
        if item is Ellipsis:
            expanded += [slice(None)] * (x.ndim - used)
        else:
            expanded.append(item)
    advanced = [
        k for k, item in enumerate(expanded)
        if _is_array_index(item) or (
            isinstance(item, (int, np.integer)) and not isinstance(item, bool)
        )
    ]
    if advanced != list(range(advanced[0], advanced[-1] + 1)):
        raise ShapeError(
            f"index: integer arrays at positions {advanced} of the index are not consecutive; "
            "numpy would move their axes to the front. Index one axis at a time with sd.take, "
            "or transpose first"
        )
    # Basic items first, as a view; the arrays' axes stay (each becomes ':' there).
    basic = tuple(slice(None) if k in advanced else item for k, item in enumerate(expanded))
    viewed = _shape.index(x, basic)
    axis = sum(1 for item in expanded[: advanced[0]] if not isinstance(item, (int, np.integer)))
    arrays = [_index_expr("index", expanded[k]) if _is_array_index(expanded[k])
              else as_expr(int(expanded[k]), "index") for k in advanced]
    return Gather.make(viewed, *arrays, axis=axis)
