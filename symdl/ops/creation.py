"""Ops that build arrays: filled arrays (`ones`, `full`), joins along a new axis (`stack`), and
the copies that grow an array (`pad`, `tile`, `repeat`).

Their derivative rules undo the growth: a stacked cotangent is indexed back into its pieces, a
padded one sliced back to the input, a tiled or repeated one reshaped so that the copies of each
element lie along an axis of their own and summed over it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConstantError, ShapeError
from ..ir import ConstValue, Expr
from ..types import Dim, Shape, as_dim, as_dtype, format_shape, normalize_axes, size_of
from . import elementwise as _ew
from . import reduce as _reduce
from . import shape as _shape
from .base import ATOM, FUNC, NEG, PROD, Latex, Op, _exact_cast, as_expr, latex_call, register

PadWidth = tuple[tuple[int, int], ...]


def _fill_value(op: str, value: object, dtype: str, allow_nonfinite: bool) -> ConstValue:
    """``value`` as a scalar of ``dtype``, refused where that would change it (as `constant`)."""
    if isinstance(value, Expr) or not isinstance(value, (bool, int, float, np.generic)):
        raise ConstantError(
            f"{op}: the fill value must be a Python or numpy scalar, got {value!r}; for a "
            "computed value use sd.broadcast_to(value, shape)"
        )
    try:
        array = _exact_cast(np.asarray(value), dtype, f"{op}: ")
    except ConstantError:
        raise ConstantError(
            f"{op}: the fill value {value!r} has no exact {dtype} value (numpy would truncate, "
            "wrap or round it silently); pass a value that fits, or another dtype"
        ) from None
    if array.dtype.kind == "f" and not allow_nonfinite and not np.isfinite(array):
        raise ConstantError(
            f"{op}: the fill value {value!r} is NaN or infinite, which symdl refuses unless "
            "asked (it would poison every gradient downstream); pass allow_nonfinite=True if "
            "it is intended"
        )
    return ConstValue(array)


@register
class Full(Op):
    """np.full(shape, fill_value, dtype): an array of one value (np.ones for 1)"""

    name = "full"
    differentiable = False
    hint = "full"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""``\mathbf{1}`` for ones, else the value times it: ``0.5 \, \mathbf{1}``."""
        value = node.attr("fill_value").array.item()
        if value == 1:
            return Latex(r"\mathbf{{1}}", ATOM)
        return Latex(f"{value!r}" + r" \, \mathbf{{1}}", NEG if str(value)[0] == "-" else PROD)

    @classmethod
    def infer(cls, *, shape: Shape, fill_value: ConstValue, dtype: str) -> tuple[Shape, str]:
        return shape, dtype


@register
class Stack(Op):
    """np.stack(xs, axis): join arrays of one shape along a new axis"""

    name = "stack"
    hint = "stack_{0}"
    latex_rule = (r"C = \operatorname{stack}(A, B) \;\Rightarrow\; \bar{A}, \bar{B} = "
                  r"\text{the slices of } \bar{C} \text{ along the new axis}")

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""``\operatorname{stack}(a, b)``."""
        pieces = ", ".join(f"{{{i}}}" for i in range(len(node.inputs)))
        return Latex(r"\operatorname{{stack}}\left(" + pieces + r"\right)", FUNC)

    @classmethod
    def infer(cls, *xs: Expr, axis: int) -> tuple[Shape, str]:
        first = xs[0].shape
        if any(x.shape != first for x in xs):
            listed = ", ".join(format_shape(x.shape) for x in xs)
            raise ShapeError(
                f"stack: all inputs must have the same shape, got {listed}; broadcast_to or "
                "reshape them first (or use concatenate to join along an existing axis)"
            )
        return first[:axis] + (len(xs),) + first[axis:], _ew._promote("stack", *xs)

    @staticmethod
    def vjp(g: Expr, out: Expr, *xs: Expr, axis: int) -> tuple[Expr, ...]:
        before = (slice(None),) * axis
        return tuple(_shape.index(g, (*before, i)) for i in range(len(xs)))

    @staticmethod
    def jvp(t: tuple[Expr | None, ...], out: Expr, *xs: Expr, axis: int) -> Expr:
        given = next((tx, x) for tx, x in zip(t, xs) if tx is not None)
        batch = given[0].shape[given[1].ndim:]
        pieces = [tx if tx is not None else _shape.zeros((*x.shape, *batch), out.dtype)
                  for tx, x in zip(t, xs)]
        return stack(pieces, axis % out.ndim)  # counted from the front: batch last


@register
class Pad(Op):
    """np.pad(x, pad_width, constant_values=c): a border of a constant around x"""

    name = "pad"
    hint, latex = "{0}_padded", latex_call(r"\operatorname{pad}")
    latex_rule = (r"C = \operatorname{pad}(A) \;\Rightarrow\; \bar{A} = \bar{C} "
                  r"\text{ without the border}")

    @classmethod
    def infer(
        cls, x: Expr, *, pad_width: PadWidth, constant_values: ConstValue
    ) -> tuple[Shape, str]:
        shape: list[Dim] = []
        for axis, (d, (before, after)) in enumerate(zip(x.shape, pad_width, strict=True)):
            if isinstance(d, str) and before + after:
                raise ShapeError(
                    f"pad: axis {axis} of {format_shape(x.shape)} has the symbolic size {d!r}, "
                    f"which cannot grow by {before + after}; pad only static axes (width (0, 0) "
                    "on this one)"
                )
            shape.append(d if isinstance(d, str) else d + before + after)
        return tuple(shape), x.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, x: Expr, *, pad_width: PadWidth, constant_values: ConstValue
    ) -> tuple[Expr]:
        inner = tuple(
            slice(None) if not before + after else slice(before, before + int(d))
            for d, (before, after) in zip(x.shape, pad_width, strict=True)
        )
        return (_shape.index(g, inner),)


@register
class Tile(Op):
    """np.tile(x, reps): x copied reps[i] times along each axis"""

    name = "tile"
    hint, latex = "{0}_tiled", latex_call(r"\operatorname{tile}")
    latex_rule = (r"C = \operatorname{tile}(A) \;\Rightarrow\; \bar{A} = \text{the sum of the "
                  r"tiles of } \bar{C}")

    @classmethod
    def infer(cls, x: Expr, *, reps: tuple[int, ...]) -> tuple[Shape, str]:
        shape = (1,) * (len(reps) - x.ndim) + x.shape
        for axis, (d, r) in enumerate(zip(shape, reps, strict=True)):
            if isinstance(d, str) and r != 1:
                raise ShapeError(
                    f"tile: axis {axis} of {format_shape(x.shape)} has the symbolic size {d!r}, "
                    f"which cannot be tiled {r} times; tile only static axes (reps 1 on this one)"
                )
        return tuple(d if isinstance(d, str) else d * r for d, r in zip(shape, reps)), x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, reps: tuple[int, ...]) -> tuple[Expr]:
        # Each output axis of size r * d splits into (r, d): the copies of an element lie
        # along the r axis, summed away; axes that were not tiled are left alone.
        shape = (1,) * (len(reps) - x.ndim) + x.shape
        split: list[Dim] = []
        copies = []
        for d, r in zip(shape, reps):
            if r != 1:
                copies.append(len(split))
                split.append(r)
            split.append(d)
        total = _reduce.sum(_shape.reshape(g, split), axis=tuple(copies))
        return (_shape.reshape(total, x.shape),)


@register
class Repeat(Op):
    """np.repeat(x, repeats, axis): each element repeated ``repeats`` times along the axis
    (axis None: of the flattened array)"""

    name = "repeat"
    hint, latex = "{0}_repeated", latex_call(r"\operatorname{repeat}")
    latex_rule = (r"C = \operatorname{repeat}(A) \;\Rightarrow\; \bar{A} = \text{the sum of "
                  r"the repeats of each element in } \bar{C}")

    @classmethod
    def infer(cls, x: Expr, *, repeats: int, axis: int | None) -> tuple[Shape, str]:
        if axis is None:
            static, symbols = size_of(x.shape)
            return (static * repeats,), x.dtype
        return x.shape[:axis] + (int(x.shape[axis]) * repeats,) + x.shape[axis + 1 :], x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, repeats: int, axis: int | None) -> tuple[Expr]:
        # The repeats of element i are output entries i * repeats ... (i + 1) * repeats - 1:
        # a new axis of size `repeats` right after the repeated one holds them.
        if axis is None:
            rows = _shape.reshape(g, (size_of(x.shape)[0], repeats))
            return (_shape.reshape(_reduce.sum(rows, axis=1), x.shape),)
        split = x.shape[:axis + 1] + (repeats,) + x.shape[axis + 1 :]
        return (_reduce.sum(_shape.reshape(g, split), axis=axis + 1),)


# --------------------------------------------------------------------------- public functions


def _shape_arg(op: str, shape: object) -> Shape:
    dims = shape if isinstance(shape, (tuple, list)) else (shape,)
    return tuple(as_dim(d, where=op) for d in dims)


def _default_dtype(value: object) -> str:
    """numpy's dtype for a fill value, but float32 for floats (symdl's default float)."""
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (int, np.integer)):
        return "int64"
    if isinstance(value, np.floating):
        return as_dtype(value.dtype)
    return "float32"


def full(
    shape: Sequence[object] | int, fill_value: object, dtype: object = None, *,
    allow_nonfinite: bool = False,
) -> Expr:
    """An array of ``shape`` filled with ``fill_value``, as ``np.full`` (symbolic sizes allowed).

    ``dtype`` None takes it from the value: bool, int64 for an int, float32 for a float (symdl's
    default float, as for `zeros`). NaN and inf are refused unless ``allow_nonfinite=True``.
    """
    target = _default_dtype(fill_value) if dtype is None else as_dtype(dtype)
    value = _fill_value("full", fill_value, target, allow_nonfinite)
    return Full.make(shape=_shape_arg("full", shape), fill_value=value, dtype=target)


def ones(shape: Sequence[object] | int, dtype: object = "float32") -> Expr:
    """An array of ones (symbolic sizes allowed), as ``np.ones``."""
    return full(shape, 1, "float32" if dtype is None else dtype)


def ones_like(x: object) -> Expr:
    """Ones of ``x``'s shape and dtype, as ``np.ones_like``."""
    x = as_expr(x)
    return ones(x.shape, x.dtype)


def stack(xs: Sequence[object], axis: int = 0) -> Expr:
    """Join arrays of one shape along a new axis ``axis``, as ``np.stack``."""
    exprs = [as_expr(x, "stack") for x in xs]
    if not exprs:
        raise ShapeError("stack: needs at least one input")
    ndim = exprs[0].ndim + 1
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ShapeError(
            f"stack: axis {axis!r} is out of range for stacking arrays of shape "
            f"{format_shape(exprs[0].shape)} (the result has rank {ndim}: use -{ndim} to "
            f"{ndim - 1})"
        )
    return Stack.make(*exprs, axis=int(axis) % ndim)


def _pad_width(x: Expr, pad_width: object) -> PadWidth:
    """numpy's pad_width forms (n, (n,), (before, after), one pair per axis) as one pair per
    axis; a wrong length or a negative width is a ShapeError."""
    array = np.asarray(pad_width, dtype=object)
    problem = None
    if array.ndim > 2 or (array.ndim >= 1 and array.shape[-1] not in (1, 2)):
        problem = "its shape"
    elif array.ndim == 2 and array.shape[0] not in (1, x.ndim):
        problem = f"{array.shape[0]} pairs for {x.ndim} axes"
    elif not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                 for v in array.flat):
        problem = "non-integer widths"
    elif any(v < 0 for v in array.flat):
        problem = "a negative width"
    if problem is not None:
        raise ShapeError(
            f"pad: pad_width {pad_width!r} does not fit an input of shape "
            f"{format_shape(x.shape)} ({problem}); give an int, a (before, after) pair, or "
            f"{x.ndim} such pairs, one per axis, all >= 0"
        )
    pairs = np.broadcast_to(array.astype(np.int64), (x.ndim, 2))
    return tuple((int(b), int(a)) for b, a in pairs)


def pad(x: object, pad_width: object, mode: str = "constant", constant_values: object = 0) -> Expr:
    """Pad with a constant border, as ``np.pad(x, pad_width, constant_values=...)``.

    ``pad_width`` is numpy's: an int for every side, a ``(before, after)`` pair for every axis,
    or one pair per axis. Only ``mode="constant"`` is supported; the gradient is the slice of
    the cotangent that covers ``x``.
    """
    x = as_expr(x, "pad")
    if mode != "constant":
        raise ShapeError(f"pad: only mode='constant' is supported, got {mode!r}")
    widths = _pad_width(x, pad_width)
    value = _fill_value("pad", constant_values, x.dtype, False)
    if not any(b or a for b, a in widths):
        return x
    return Pad.make(x, pad_width=widths, constant_values=value)


def tile(x: object, reps: int | Sequence[int]) -> Expr:
    """``x`` copied ``reps[i]`` times along axis ``i``, as ``np.tile`` (a shorter ``reps`` applies
    to the last axes; a longer one adds leading axes)."""
    x = as_expr(x, "tile")
    counts = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    if any(not isinstance(r, (int, np.integer)) or isinstance(r, bool) or r < 0 for r in counts):
        raise ShapeError(
            f"tile: reps must be non-negative ints, got {reps!r} for shape {format_shape(x.shape)}"
        )
    counts = (1,) * (x.ndim - len(counts)) + tuple(int(r) for r in counts)
    if all(r == 1 for r in counts):
        return _shape.reshape(x, (1,) * (len(counts) - x.ndim) + x.shape)
    return Tile.make(x, reps=counts)


def repeat(x: object, repeats: int, axis: int | None = None) -> Expr:
    """Each element repeated ``repeats`` times along ``axis`` (None: of the flattened array),
    as ``np.repeat`` with an int count."""
    x = as_expr(x, "repeat")
    if not isinstance(repeats, (int, np.integer)) or isinstance(repeats, bool) or repeats < 0:
        raise ShapeError(
            f"repeat: repeats must be a non-negative int, got {repeats!r} (shape "
            f"{format_shape(x.shape)}); per-element counts are not supported"
        )
    if axis is None:
        static, symbols = size_of(x.shape)
        if symbols:
            raise ShapeError(
                f"repeat: cannot flatten {format_shape(x.shape)}, whose size is symbolic, to "
                "repeat its elements; give the axis to repeat along"
            )
        if repeats == 1:
            return _shape.reshape(x, (static,))
        return Repeat.make(x, repeats=int(repeats), axis=None)
    (a,) = normalize_axes("repeat", axis, x.ndim)
    if isinstance(x.shape[a], str) and repeats != 1:
        raise ShapeError(
            f"repeat: axis {a} of {format_shape(x.shape)} has the symbolic size "
            f"{x.shape[a]!r}, which cannot be repeated {repeats} times; repeat along a static axis"
        )
    if repeats == 1:
        return x
    return Repeat.make(x, repeats=int(repeats), axis=a)
