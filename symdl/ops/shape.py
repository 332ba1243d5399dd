"""Ops that move elements without arithmetic: reshape, transpose, broadcasting, indexing, joins.

Their derivative rules are the inverse moves: reshape back, transpose by the inverse permutation,
sum a broadcast back, scatter an indexed cotangent into zeros (`unindex`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError
from ..ir import Expr
from ..printing import index_text
from ..types import (
    Dim,
    Shape,
    as_dim,
    as_dtype,
    broadcast_shapes,
    format_shape,
    normalize_axes,
    size_of,
)
from . import elementwise as _ew
from .base import ATOM, POSTFIX, Latex, Op, as_expr, latex_call, latex_literal, register

# An index entry: ("int", i) | ("slice", start, stop, step) | ("new",)
IndexEntry = tuple[Any, ...]


@register
class Reshape(Op):
    """x.reshape(shape)"""

    name = "reshape"
    is_view = free = True
    hint, shows_as_operand = "{0}", True
    latex_rule = (r"C = \operatorname{reshape}(A) \;\Rightarrow\; \bar{A} = \bar{C}"
                  r"\text{ reshaped back}")

    @classmethod
    def infer(cls, x: Expr, *, shape: Shape) -> tuple[Shape, str]:
        if size_of(shape) != size_of(x.shape):
            raise ShapeError(
                f"reshape: cannot reshape {format_shape(x.shape)} into {format_shape(shape)} "
                "(different number of elements)"
            )
        return shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, shape: Shape) -> tuple[Expr]:
        return (reshape(g, x.shape),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, shape: Shape) -> Expr:
        return reshape(t[0], (*shape, *t[0].shape[x.ndim:]))  # the batch axes stay last


@register
class Transpose(Op):
    """np.transpose(x, axes)"""

    name = "transpose"
    is_view = free = True
    hint, latex = "{0}_T", Latex("{{{0}}}^\\top", POSTFIX, (ATOM,))
    latex_rule = r"C = A^\top \;\Rightarrow\; \bar{A} = \bar{C}^\top"

    @classmethod
    def infer(cls, x: Expr, *, axes: tuple[int, ...]) -> tuple[Shape, str]:
        return tuple(x.shape[a] for a in axes), x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axes: tuple[int, ...]) -> tuple[Expr]:
        return (transpose(g, tuple(int(a) for a in np.argsort(axes))),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axes: tuple[int, ...]) -> Expr:
        return transpose(t[0], (*axes, *range(x.ndim, t[0].ndim)))  # the batch axes stay last


@register
class BroadcastTo(Op):
    """np.broadcast_to(x, shape): a read-only view, nothing is copied"""

    name = "broadcast_to"
    is_view = free = True
    hint, shows_as_operand = "{0}", True
    latex_rule = (r"C = \operatorname{broadcast}(A) \;\Rightarrow\; \bar{A} = \bar{C} "
                  r"\text{ summed over the broadcast axes}")

    @classmethod
    def infer(cls, x: Expr, *, shape: Shape) -> tuple[Shape, str]:
        if x.ndim > len(shape) or broadcast_shapes("broadcast_to", x.shape, shape) != shape:
            raise ShapeError(
                f"broadcast_to: cannot broadcast {format_shape(x.shape)} to {format_shape(shape)}"
            )
        return shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, shape: Shape) -> tuple[Expr]:
        return (_ew.sum_to(g, x.shape),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, shape: Shape) -> Expr:
        # Right-aligned, x's axes meet the last of `shape` (the batch axes stay last), except
        # where x has fewer axes: then size-1 axes go in front of it, as numpy would put them.
        tangent = t[0]
        lead = len(shape) - x.ndim
        if lead:
            tangent = reshape(tangent, (*(1,) * lead, *tangent.shape))
        return broadcast_to(tangent, (*shape, *tangent.shape[len(shape):]))


@register
class Concatenate(Op):
    """np.concatenate(xs, axis)"""

    name = "concatenate"
    hint = "concatenate_{0}"
    latex_rule = r"C = [A, B] \;\Rightarrow\; \bar{A}, \bar{B} = \text{the pieces of } \bar{C}"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """The pieces in brackets: ``[A, B]``."""
        pieces = ", ".join(f"{{{i}}}" for i in range(len(node.inputs)))
        return Latex(r"\left[" + pieces + r"\right]", ATOM)

    @classmethod
    def infer(cls, *xs: Expr, axis: int) -> tuple[Shape, str]:
        first = xs[0]
        total = 0
        for x in xs:
            others_differ = any(
                d != e for i, (d, e) in enumerate(zip(x.shape, first.shape)) if i != axis
            )
            if x.ndim != first.ndim or others_differ:
                listed = ", ".join(format_shape(x.shape) for x in xs)
                raise ShapeError(
                    f"concatenate: shapes {listed} differ outside axis {axis}; "
                    "all inputs must have the same rank and sizes except along the axis"
                )
            if not isinstance(x.shape[axis], int):
                raise ShapeError(
                    f"concatenate: axis {axis} has the symbolic size {x.shape[axis]!r}; "
                    "only static sizes can be joined (concatenate along another axis)"
                )
            total += x.shape[axis]
        shape = first.shape[:axis] + (total,) + first.shape[axis + 1 :]
        return shape, _ew._promote("concatenate", *xs)

    @staticmethod
    def jvp(t: tuple[Expr | None, ...], out: Expr, *xs: Expr, axis: int) -> Expr:
        given = next((tx, x) for tx, x in zip(t, xs) if tx is not None)
        batch = given[0].shape[given[1].ndim:]
        pieces = [tx if tx is not None else zeros((*x.shape, *batch), out.dtype)
                  for tx, x in zip(t, xs)]
        return concatenate(pieces, axis % out.ndim)  # counted from the front: batch last

    @staticmethod
    def vjp(g: Expr, out: Expr, *xs: Expr, axis: int) -> tuple[Expr, ...]:
        parts = []
        start = 0
        for x in xs:
            stop = start + int(x.shape[axis])
            entries = [("slice", None, None, None)] * axis + [("slice", start, stop, None)]
            parts.append(Index.make(g, index=tuple(entries)))
            start = stop
        return tuple(parts)


@register
class Index(Op):
    """x[index] with ints, slices and None (numpy basic indexing)"""

    name = "index"
    is_view = free = True
    hint = "{0}"
    latex_rule = (r"C = A_{[i]} \;\Rightarrow\; \bar{A} = \bar{C} \text{ at } [i], "
                  r"\text{ 0 elsewhere}")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        """The index as a subscript: ``x_{[:, 0]}``."""
        return Latex("{0}_{{[" + index_text(node.attr("index")) + "]}}", POSTFIX, (ATOM,))

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """numpy's indexing: ``x[:, 0]``."""
        return f"{operands[0]}[{index_text(node.attr('index'))}]", 100

    @classmethod
    def infer(cls, x: Expr, *, index: tuple[IndexEntry, ...]) -> tuple[Shape, str]:
        return _indexed_shape(x.shape, index), x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, index: tuple[IndexEntry, ...]) -> tuple[Expr]:
        return (Unindex.make(g, index=index, shape=x.shape),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, index: tuple[IndexEntry, ...]) -> Expr:
        return Index.make(t[0], index=index)  # the batch axes come after every indexed one


@register
class Unindex(Op):
    """zeros of ``shape`` with ``[index]`` set to g: the adjoint of indexing"""

    name = "unindex"
    hint, latex = "unindex_{0}", latex_call(r"\operatorname{scatter}")
    latex_rule = (r"C = \operatorname{scatter}_{[i]}(A) \;\Rightarrow\; "
                  r"\bar{A} = \bar{C}_{[i]}")

    @classmethod
    def infer(
        cls, g: Expr, *, index: tuple[IndexEntry, ...], shape: Shape
    ) -> tuple[Shape, str]:
        return shape, g.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, x: Expr, *, index: tuple[IndexEntry, ...], shape: Shape
    ) -> tuple[Expr]:
        return (Index.make(g, index=index),)

    @staticmethod
    def jvp(
        t: tuple[Expr], out: Expr, x: Expr, *, index: tuple[IndexEntry, ...], shape: Shape
    ) -> Expr:
        return Unindex.make(t[0], index=index, shape=(*shape, *t[0].shape[x.ndim:]))


@register
class Zeros(Op):
    """np.zeros(shape, dtype)"""

    name = "zeros"
    differentiable = False
    hint, latex = "zeros", latex_literal(r"\mathbf{0}")

    @classmethod
    def infer(cls, *, shape: Shape, dtype: str) -> tuple[Shape, str]:
        return shape, dtype


@register
class Flip(Op):
    """np.flip(x, axis): the order of elements reversed along axes (a view, nothing is copied)"""

    name = "flip"
    is_view = free = True
    hint, latex = "{0}_flipped", latex_call(r"\operatorname{flip}")
    latex_rule = (r"C = \operatorname{flip}(A) \;\Rightarrow\; "
                  r"\bar{A} = \operatorname{flip}(\bar{C})")

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """numpy's reversed slices: ``x[:, ::-1]``."""
        return f"{operands[0]}[{flip_index_text(node)}]", 100

    @classmethod
    def infer(cls, x: Expr, *, axis: tuple[int, ...]) -> tuple[Shape, str]:
        return x.shape, x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, axis: tuple[int, ...]) -> tuple[Expr]:
        return (Flip.make(g, axis=axis),)

    @staticmethod
    def jvp(t: tuple[Expr], out: Expr, x: Expr, *, axis: tuple[int, ...]) -> Expr:
        return Flip.make(t[0], axis=axis)  # axes counted from the front: batch last


def flip_index_text(node: Expr) -> str:
    """The index reversing a flip node's axes: ``:, ::-1`` for axis 1 of a matrix."""
    axes = node.attr("axis")
    parts = ["::-1" if a in axes else ":" for a in range(max(axes) + 1)]
    return ", ".join(parts)


# --------------------------------------------------------------------------- index helpers


def _slice_length(op: str, dim: Dim, start: object, stop: object, step: object) -> Dim:
    if isinstance(dim, str):
        if (start, stop, step) != (None, None, None):
            raise ShapeError(
                f"{op}: cannot slice the symbolic size {dim!r} with bounds; only ':' is allowed "
                "on a symbolic axis"
            )
        return dim
    return len(range(*slice(start, stop, step).indices(dim)))


def _indexed_shape(shape: Shape, index: tuple[IndexEntry, ...]) -> Shape:
    result: list[Dim] = []
    axis = 0
    for entry in index:
        if entry[0] == "new":
            result.append(1)
            continue
        dim = shape[axis]
        if entry[0] == "slice":
            result.append(_slice_length("index", dim, *entry[1:]))
        axis += 1
    return tuple(result) + shape[axis:]


def _normalize_index(x: Expr, index: object) -> tuple[IndexEntry, ...]:
    items = index if isinstance(index, tuple) else (index,)
    used = sum(1 for i in items if i is not None and i is not Ellipsis)
    if used > x.ndim:
        raise ShapeError(f"index: too many indices ({used}) for shape {format_shape(x.shape)}")
    entries: list[IndexEntry] = []
    axis = 0
    for item in items:
        if item is Ellipsis:
            for _ in range(x.ndim - used - (axis - len([e for e in entries if e[0] != "new"]))):
                entries.append(("slice", None, None, None))
                axis += 1
            continue
        if item is None:
            entries.append(("new",))
            continue
        dim = x.shape[axis]
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            i = int(item)
            if isinstance(dim, int):
                if not -dim <= i < dim:
                    raise ShapeError(
                        f"index: index {i} is out of bounds for axis {axis} of size {dim} "
                        f"(shape {format_shape(x.shape)})"
                    )
                i %= dim
            entries.append(("int", i))
        elif isinstance(item, slice):
            bounds = (item.start, item.stop, item.step)
            for b in bounds:
                if b is not None and not isinstance(b, (int, np.integer)):
                    raise ShapeError(f"index: slice bounds must be ints or None, got {item!r}")
            if item.step == 0:
                raise ShapeError("index: slice step cannot be zero")
            if isinstance(dim, int) and item != slice(None):
                start, stop, step = slice(*bounds).indices(dim)
                if step > 0:
                    bounds = (start, stop, None if step == 1 else step)
            entries.append(("slice", *(None if b is None else int(b) for b in bounds)))
        else:
            raise ShapeError(
                f"index: only ints, slices, None and ... are supported, got {item!r}; "
                "index with x[ids] or sd.take for integer arrays, sd.where for masks"
            )
        axis += 1
    return tuple(entries)


# --------------------------------------------------------------------------- public functions


def reshape(x: object, shape: Sequence[object]) -> Expr:
    """Reshape to ``shape``; one entry may be -1, and symbolic sizes (``"N"``) are allowed."""
    x = as_expr(x)
    dims = list(shape) if isinstance(shape, (tuple, list)) else [shape]
    if sum(1 for d in dims if isinstance(d, int) and d == -1) > 1:
        raise ShapeError(f"reshape: only one dimension can be -1, got {tuple(dims)}")
    if -1 in dims:
        rest = [as_dim(d, where="reshape") for d in dims if not (isinstance(d, int) and d == -1)]
        dims[dims.index(-1)] = _infer_minus_one(x.shape, tuple(rest))
    target = tuple(as_dim(d, where="reshape") for d in dims)
    return x if target == x.shape else Reshape.make(x, shape=target)


def _infer_minus_one(shape: Shape, rest: Shape) -> Dim:
    static, symbols = size_of(shape)
    rest_static, rest_symbols = size_of(rest)
    remaining = list(symbols)
    for s in rest_symbols:
        if s not in remaining:
            remaining = []
            break
        remaining.remove(s)
    ok = rest_static and static % rest_static == 0 and len(rest_symbols) + len(remaining) == len(
        symbols
    )
    quotient = static // rest_static if rest_static else 0
    if ok and not remaining:
        return quotient
    if ok and len(remaining) == 1 and quotient == 1:
        return remaining[0]
    raise ShapeError(
        f"reshape: cannot infer -1 when reshaping {format_shape(shape)} to "
        f"{format_shape(rest)} plus -1; give every dimension explicitly"
    )


def transpose(x: object, axes: Sequence[int] | None = None) -> Expr:
    """Permute axes (default: reverse them), as ``np.transpose``."""
    x = as_expr(x)
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    else:
        perm = tuple(int(a) % x.ndim if x.ndim else int(a) for a in axes)
        if sorted(perm) != list(range(x.ndim)):
            raise ShapeError(
                f"transpose: axes {tuple(axes)} are not a permutation of the {x.ndim} axes of "
                f"shape {format_shape(x.shape)}"
            )
    if perm == tuple(range(x.ndim)):
        return x
    return Transpose.make(x, axes=perm)


def with_batch(v: Expr, nb: int) -> Expr:
    """``v`` with ``nb`` trailing axes of size 1, so that it broadcasts against a tangent that
    carries ``nb`` trailing batch axes (see `symdl.ops.base.Op.jvp`); a scalar broadcasts as is."""
    if nb == 0 or v.ndim == 0:
        return v
    return reshape(v, (*v.shape, *(1,) * nb))


def batch_rank(t: Expr, x: Expr) -> int:
    """How many trailing batch axes the tangent ``t`` of ``x`` carries (0 for a plain JVP)."""
    return t.ndim - x.ndim


def swapaxes_last(x: Expr) -> Expr:
    """Swap the last two axes (the matrix transpose of a batch of matrices)."""
    perm = list(range(x.ndim))
    perm[-1], perm[-2] = perm[-2], perm[-1]
    return transpose(x, perm)


def broadcast_to(x: object, shape: Sequence[object]) -> Expr:
    """Broadcast to ``shape`` as ``np.broadcast_to`` (a view; nothing is copied)."""
    x = as_expr(x)
    target = tuple(as_dim(d, where="broadcast_to") for d in shape)
    return x if target == x.shape else BroadcastTo.make(x, shape=target)


def expand_dims(x: object, axis: int | Sequence[int]) -> Expr:
    """Insert axes of size 1 at ``axis``, as ``np.expand_dims``."""
    x = as_expr(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    ndim = x.ndim + len(axes)
    positions = sorted(a % ndim for a in axes)
    if any(not -ndim <= a < ndim for a in axes) or len(set(positions)) != len(positions):
        raise ShapeError(f"expand_dims: invalid axis {axis!r} for shape {format_shape(x.shape)}")
    dims = iter(x.shape)
    return reshape(x, [1 if i in positions else next(dims) for i in range(ndim)])


def squeeze(x: object, axis: int | Sequence[int] | None = None) -> Expr:
    """Remove axes of size 1 (all of them, or those in ``axis``), as ``np.squeeze``."""
    x = as_expr(x)
    if axis is None:
        axes = {i for i, d in enumerate(x.shape) if d == 1}
    else:
        axes = {a % x.ndim for a in ((axis,) if isinstance(axis, int) else axis)}
        bad = [a for a in axes if x.shape[a] != 1]
        if bad:
            raise ShapeError(
                f"squeeze: axis {bad[0]} of shape {format_shape(x.shape)} has size "
                f"{x.shape[bad[0]]}, not 1"
            )
    return reshape(x, [d for i, d in enumerate(x.shape) if i not in axes])


def concatenate(xs: Sequence[object], axis: int = 0) -> Expr:
    """Join expressions along an existing axis, as ``np.concatenate``."""
    exprs = [as_expr(x) for x in xs]
    if not exprs:
        raise ShapeError("concatenate: needs at least one input")
    ndim = exprs[0].ndim
    if not -ndim <= axis < ndim:
        raise ShapeError(f"concatenate: axis {axis} is out of range for rank {ndim}")
    if len(exprs) == 1:
        return exprs[0]
    return Concatenate.make(*exprs, axis=axis % ndim)


def index(x: object, idx: object) -> Expr:
    """Basic numpy indexing ``x[idx]`` with ints, slices, None and ``...``."""
    x = as_expr(x)
    entries = _normalize_index(x, idx)
    if all(e == ("slice", None, None, None) for e in entries):
        return x
    return Index.make(x, index=entries)


def zeros(shape: Sequence[object], dtype: object = "float32") -> Expr:
    """A tensor of zeros (symbolic sizes allowed)."""
    return Zeros.make(shape=tuple(as_dim(d, where="zeros") for d in shape), dtype=as_dtype(dtype))


def zeros_like(x: Expr) -> Expr:
    """Zeros of ``x``'s shape and dtype."""
    return zeros(x.shape, x.dtype)


def flip(x: object, axis: int | Sequence[int] | None = None) -> Expr:
    """Reverse the order of elements along ``axis`` (None: every axis), as ``np.flip``."""
    x = as_expr(x, "flip")
    axes = normalize_axes("flip", axis, x.ndim)
    return Flip.make(x, axis=axes) if axes else x


def split(
    x: object, indices_or_sections: int | Sequence[int], axis: int = 0
) -> list[Expr]:
    """Split into pieces along ``axis``, as ``np.split``: a list of slices of ``x`` (views).

    An int ``k`` gives ``k`` equal pieces and must divide the axis; a list of indices gives the
    pieces between them (``[2, 5]``: ``x[:2]``, ``x[2:5]``, ``x[5:]``), as numpy slices them.
    """
    x = as_expr(x, "split")
    (a,) = normalize_axes("split", axis, x.ndim) if x.ndim else (None,)
    if a is None:
        raise ShapeError("split: cannot split a scalar; it has no axis")
    n = x.shape[a]
    whole = (slice(None),) * a
    if isinstance(indices_or_sections, (int, np.integer)) and not isinstance(
        indices_or_sections, bool
    ):
        k = int(indices_or_sections)
        if k == 1:
            return [x]
        if k < 1 or isinstance(n, str) or n % k:
            fix = ("split a static axis" if isinstance(n, str)
                   else f"use a divisor of {n} or a list of split indices")
            raise ShapeError(
                f"split: {k} sections do not divide axis {a} of shape {format_shape(x.shape)} "
                f"(size {n}); {fix}"
            )
        step = n // k
        return [index(x, (*whole, slice(i * step, (i + 1) * step))) for i in range(k)]
    points = list(indices_or_sections)
    if any(not isinstance(p, (int, np.integer)) or isinstance(p, bool) for p in points):
        raise ShapeError(f"split: indices must be ints, got {indices_or_sections!r}")
    if isinstance(n, str) and points:
        raise ShapeError(
            f"split: axis {a} of shape {format_shape(x.shape)} has the symbolic size {n!r}; "
            "only static axes can be split"
        )
    bounds = [None, *(int(p) for p in points), None]
    return [index(x, (*whole, slice(start, stop))) for start, stop in zip(bounds, bounds[1:])]
