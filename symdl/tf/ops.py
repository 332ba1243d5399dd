"""TensorFlow-1 names for symdl's ops: math, reductions, constants, gradients and assignments.

Every function returns an ordinary symdl expression (or, for assignments, an `Operation`), so
there is one graph and one differentiation pass: these are renamings with TensorFlow's argument
conventions (``reduction_indices=``, ``keep_dims=``, ``transpose_a=``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import random as sd_random
from ..autodiff import grad as _grad
from ..errors import GradientError, ShapeError
from ..ir import Expr, toposort
from ..ops import api as sd
from ..ops.base import as_expr
from .deferred import Deferred, DeferredVariable, deferrable, has_deferred, split_deferred
from .dtypes import DType, as_dtype, float32
from .errors import bool_reduction
from .graph import Operation, get_default_graph

# --------------------------------------------------------------------------- elementwise math


@deferrable
def exp(x: object, name: str | None = None) -> Expr:
    """e ** x; float32 is computed in float64 and rounded once to float32.

    numpy's SIMD float32 exp is up to two ulp off (exp(2) is 7.3890557, one ulp below the
    correctly rounded 7.389056) where TensorFlow's (Eigen's) gives 7.389056 at 2.0 and is within
    one ulp elsewhere; tinyflow's own test of exp checks 7 decimals against float64, which
    TensorFlow passes. Rounded from float64, the result is the correctly rounded float32 but
    for the rare double-rounding tie (none in 10**6 samples). Only ``tf.exp`` takes the float64
    route (about 2.5 times numpy's float32 exp); softmax and the losses keep the core float32
    ops.
    """
    t = as_expr(x)
    if t.dtype != "float32":
        return sd.exp(t)
    return sd.cast(sd.exp(sd.cast(t, "float64")), "float32")


log = deferrable(sd.log)
log1p = deferrable(sd.log1p)
sqrt = deferrable(sd.sqrt)
tanh = deferrable(sd.tanh)
sigmoid = deferrable(sd.sigmoid)
square = deferrable(sd.square)
abs = deferrable(sd.abs)  # noqa: A001 - TensorFlow's name
sign = deferrable(sd.sign)
maximum = deferrable(sd.maximum)
minimum = deferrable(sd.minimum)
equal = deferrable(sd.equal)
not_equal = deferrable(sd.not_equal)
less = deferrable(sd.less)
less_equal = deferrable(sd.less_equal)
greater = deferrable(sd.greater)
greater_equal = deferrable(sd.greater_equal)
add = deferrable(sd.add)
subtract = deferrable(sd.subtract)
multiply = deferrable(sd.multiply)
negative = deferrable(sd.negative)
pow = deferrable(sd.power)  # noqa: A001 - TensorFlow's name


@deferrable
def relu(features: object) -> Expr:
    """max(features, 0), as ``tf.nn.relu``."""
    return sd.relu(features)


@deferrable
def divide(x: object, y: object) -> Expr:
    """x / y (true division)."""
    return sd.divide(x, y)


@deferrable
def where(condition: object, x: object = None, y: object = None) -> Expr:
    """Elementwise choice: ``x`` where ``condition`` is true, else ``y``.

    TensorFlow's one-argument form (the indices of true entries) has a data-dependent shape and
    is not supported.
    """
    if x is None or y is None:
        raise ShapeError(
            "where: the one-argument form returns a data-dependent number of indices, which a "
            "static graph cannot hold; pass both x and y"
        )
    return sd.where(condition, x, y)


@deferrable
def cast(x: object, dtype: object) -> Expr:
    """``x`` converted to ``dtype`` (``tf.cast(correct, tf.float32)``)."""
    return sd.cast(x, as_dtype(dtype))


@deferrable
def matmul(a: object, b: object, transpose_a: bool = False, transpose_b: bool = False) -> Expr:
    """Matrix product, optionally of transposed operands."""
    a, b = as_expr(a), as_expr(b)
    if transpose_a:
        a = sd.transpose(a)
    if transpose_b:
        b = sd.transpose(b)
    return sd.matmul(a, b)


@deferrable
def reshape(tensor: object, shape: Sequence[object]) -> Expr:
    """Reshape; one entry may be -1 (TensorFlow's inferred dimension)."""
    return sd.reshape(tensor, list(shape))


@deferrable
def transpose(a: object, perm: Sequence[int] | None = None) -> Expr:
    """Permute axes (default: reverse them)."""
    return sd.transpose(a, perm)


# --------------------------------------------------------------------------- reductions


def _axis(axis: object, reduction_indices: object) -> object:
    if axis is not None and reduction_indices is not None:
        raise ShapeError("reduce: give axis or reduction_indices, not both")
    axis = reduction_indices if axis is None else axis
    if isinstance(axis, list):
        axis = tuple(axis)
    return axis


def _keep(keepdims: object, keep_dims: object) -> bool:
    if keepdims is not None and keep_dims is not None:
        raise ShapeError("reduce: give keepdims or keep_dims, not both")
    return bool(keep_dims if keepdims is None else keepdims)


@deferrable
def reduce_sum(input_tensor: object, axis: object = None, keepdims: bool | None = None,
               name: str | None = None, reduction_indices: object = None,
               keep_dims: bool | None = None) -> Expr:
    """Sum over ``axis`` (or the old ``reduction_indices``); all axes by default."""
    bool_reduction("reduce_sum", input_tensor)
    out = sd.sum(input_tensor, _axis(axis, reduction_indices), _keep(keepdims, keep_dims))
    return out.named(name) if name else out


@deferrable
def reduce_mean(input_tensor: object, axis: object = None, keepdims: bool | None = None,
                name: str | None = None, reduction_indices: object = None,
                keep_dims: bool | None = None) -> Expr:
    """Mean over ``axis`` (or the old ``reduction_indices``); all axes by default."""
    bool_reduction("reduce_mean", input_tensor)
    out = sd.mean(input_tensor, _axis(axis, reduction_indices), _keep(keepdims, keep_dims))
    return out.named(name) if name else out


@deferrable
def reduce_max(input_tensor: object, axis: object = None, keepdims: bool | None = None,
               name: str | None = None, reduction_indices: object = None,
               keep_dims: bool | None = None) -> Expr:
    """Maximum over ``axis`` (or the old ``reduction_indices``); all axes by default."""
    bool_reduction("reduce_max", input_tensor)
    out = sd.max(input_tensor, _axis(axis, reduction_indices), _keep(keepdims, keep_dims))
    return out.named(name) if name else out


@deferrable
def reduce_min(input_tensor: object, axis: object = None, keepdims: bool | None = None,
               name: str | None = None, reduction_indices: object = None,
               keep_dims: bool | None = None) -> Expr:
    """Minimum over ``axis`` (or the old ``reduction_indices``); all axes by default."""
    bool_reduction("reduce_min", input_tensor)
    out = sd.min(input_tensor, _axis(axis, reduction_indices), _keep(keepdims, keep_dims))
    return out.named(name) if name else out


@deferrable
def argmax(input: object, axis: int | None = None, name: str | None = None,  # noqa: A002
           dimension: int | None = None, output_type: object = "int64") -> Expr:
    """Index of the largest entry along ``axis`` (TensorFlow's default: axis 0), as int64."""
    if axis is None:
        axis = 0 if dimension is None else dimension
    out = sd.argmax(input, axis)
    return out if as_dtype(output_type) == "int64" else sd.cast(out, as_dtype(output_type))


# --------------------------------------------------------------------------- constants


def _shape(shape: object) -> tuple[int, ...]:
    dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)  # type: ignore
    for d in dims:
        if not isinstance(d, (int, np.integer)) or d < 0:
            raise ShapeError(
                f"constant shapes must be tuples of non-negative ints, got {tuple(dims)}"
            )
    return tuple(int(d) for d in dims)


def constant(value: object, dtype: object = None, shape: object = None,
             name: str | None = None) -> Expr:
    """A constant tensor; Python floats become float32 and Python ints int32, as in TensorFlow."""
    array = np.asarray(value)
    if dtype is None and not isinstance(value, np.ndarray):
        dtype = {"f": "float32", "i": "int32", "u": "int32", "b": "bool"}.get(array.dtype.kind)
    if dtype is not None:
        array = array.astype(as_dtype(dtype))
    if shape is not None:
        array = np.broadcast_to(array, _shape(shape)) if array.size == 1 else array.reshape(
            _shape(shape))
    return sd.constant(np.ascontiguousarray(array))


def zeros(shape: object, dtype: object = float32, name: str | None = None) -> Expr:
    """A constant of zeros (as a variable's initial value: ``tf.Variable(tf.zeros([784, 10]))``)."""
    return sd.constant(np.zeros(_shape(shape), as_dtype(dtype)))


def ones(shape: object, dtype: object = float32, name: str | None = None) -> Expr:
    """A constant of ones."""
    return sd.constant(np.ones(_shape(shape), as_dtype(dtype)))


def _float(dtype: object) -> DType:
    dt = as_dtype(dtype)
    if not dt.is_floating:
        raise ShapeError(f"random initializers make float32 or float64 values, not {dt}")
    return dt


def random_normal(shape: object, mean: float = 0.0, stddev: float = 1.0, dtype: object = float32,
                  seed: int | None = None, name: str | None = None) -> Expr:
    """Normal samples, drawn afresh on every `Session.run` that computes them.

    As a `Variable`'s initial value they are drawn when the initializer runs, as in
    TensorFlow. ``seed`` (or `set_random_seed`) makes the numbers repeat in a new session.
    """
    rng = get_default_graph().rng_leaf(seed)
    return sd_random.normal(rng, _shape(shape), mean, stddev, _float(dtype))


# Phi(2) - Phi(-2), Phi(-2) and the Newton steps of the truncated normal's inverse CDF.
_PHI_MINUS_2 = 0.5 * math.erfc(2 / math.sqrt(2))
_PHI_WIDTH = 1.0 - 2 * _PHI_MINUS_2
_NEWTON_STEPS = 5


def truncated_normal(shape: object, mean: float = 0.0, stddev: float = 1.0,
                     dtype: object = float32, seed: int | None = None,
                     name: str | None = None) -> Expr:
    """Normal samples conditioned on lying within two standard deviations of the mean, drawn
    afresh on every run (TensorFlow redraws the ones outside).

    Computed exactly, by inverting the CDF: a uniform ``p`` in [Phi(-2), Phi(2)] (float64) is
    mapped to ``z = Phi^-1(p)``, from the logistic approximation ``log(p / (1 - p)) / 1.702``
    refined by five Newton steps on ``Phi(z) = p`` (``Phi`` through ``erf``), which take the
    approximation's worst error (0.2, near the bounds) to within 1e-12 of scipy's ``ndtri``
    (four leave 6e-11). A rejection loop has no fixed shape, which straight-line generated code
    needs.
    """
    rng = get_default_graph().rng_leaf(seed)
    dt = _float(dtype)
    p = _PHI_MINUS_2 + _PHI_WIDTH * sd_random.uniform(rng, _shape(shape), dtype="float64")
    z = sd.log(p / (1.0 - p)) / 1.702
    for _ in range(_NEWTON_STEPS):
        cdf = 0.5 + 0.5 * sd.erf(z / math.sqrt(2))
        density = sd.exp(-0.5 * sd.square(z)) / math.sqrt(2 * math.pi)
        z = z - (cdf - p) / density
    z = sd.cast(sd.clip(z, -2.0, 2.0), dt)  # the rounding of the last step stays in bounds
    return z if (mean, stddev) == (0.0, 1.0) else mean + stddev * z


def random_uniform(shape: object, minval: float = 0.0, maxval: float | None = None,
                   dtype: object = float32, seed: int | None = None,
                   name: str | None = None) -> Expr:
    """Uniform samples in [minval, maxval) (maxval defaults to 1), drawn afresh on every run
    (at initialization for a `Variable`'s initial value)."""
    rng = get_default_graph().rng_leaf(seed)
    high = 1.0 if maxval is None else maxval
    return sd_random.uniform(rng, _shape(shape), minval, high, _float(dtype))


def normal(shape: object, stdev: float = 1.0, seed: int | None = None) -> Expr:
    """The course's shorthand: zero-mean normal samples with standard deviation ``stdev``."""
    return random_normal(shape, 0.0, stdev, seed=seed)


# --------------------------------------------------------------------------- gradients


def gradients(ys: Expr | Sequence[Expr], xs: Expr | Sequence[Expr],
              grad_ys: object = None, name: str | None = None,
              **_ignored: object) -> list[Expr | None]:
    """d(sum of ys)/d x for each x, as a list (None for an x the ys do not depend on).

    A non-scalar y contributes the gradient of its sum, or of ``sum(y * grad_y)`` when
    ``grad_ys`` is given. ``xs`` are variables or placeholders. The results are ordinary
    tensors, so gradients of gradients work.
    """
    ys_list = [ys] if isinstance(ys, (Expr, Deferred)) else list(ys)
    xs_list = [xs] if isinstance(xs, (Expr, Deferred)) else list(xs)
    if has_deferred(ys_list) or has_deferred(xs_list) or has_deferred(grad_ys):
        # Built per fed shape; each gradient is one deferred item of the list.
        whole = Deferred(gradients, (ys_list, xs_list, grad_ys), label="gradients")
        return split_deferred(whole, len(xs_list))  # type: ignore[return-value]
    if grad_ys is None:
        gys: list[object] = [None] * len(ys_list)
    else:
        gys = [grad_ys] if len(ys_list) == 1 and not isinstance(grad_ys, list) else list(grad_ys)
        if len(gys) != len(ys_list):
            raise GradientError(
                f"gradients: got {len(gys)} grad_ys for {len(ys_list)} ys; give one per y"
            )
    terms = []
    for y, gy in zip(ys_list, gys, strict=True):
        y = as_expr(y)
        if gy is None:
            terms.append(y if y.shape == () else sd.sum(y))
        else:
            terms.append(sd.sum(y * gy))
    target = terms[0]
    for term in terms[1:]:
        target = target + term
    reached = {id(n) for n in toposort([target])}
    connected = [x for x in xs_list if id(x) in reached]
    found = {}
    if connected:
        found = dict(zip(map(id, connected), _grad(target, connected), strict=True))
    return [found.get(id(x)) for x in xs_list]


# --------------------------------------------------------------------------- assignments


def _check_variable(op: str, ref: object) -> Expr:
    if isinstance(ref, DeferredVariable):
        if ref.leaf is None:
            raise ShapeError(
                f"{op}: variable {ref.name!r} has no shape yet; run tf.infer_variable_shapes "
                "first, or assign it a value of known shape"
            )
        return ref.leaf
    if not get_default_graph().is_variable(ref):
        raise ShapeError(f"{op}: the first argument must be a tf.Variable, got {ref!r}")
    return ref  # type: ignore[return-value]


def _bind_by_value(ref: object, value: object) -> object:
    """An auto-shaped variable assigned a value of known shape takes that shape."""
    if isinstance(ref, DeferredVariable) and ref.leaf is None and not has_deferred((value,)):
        ref.bind(as_expr(value).shape)  # type: ignore[arg-type]
    return ref


def _new_value(op: str, ref: Expr, value: object) -> Expr:
    value = as_expr(value)
    if value.shape != ref.shape:
        value = sd.broadcast_to(value, ref.shape) if value.ndim <= ref.ndim else value
    if value.shape != ref.shape:
        raise ShapeError(
            f"{op}: variable {ref.name!r} has shape {ref.shape}, the value has {value.shape}"
        )
    return value if value.dtype == ref.dtype else sd.cast(value, ref.dtype)


def assign(ref: Expr, value: object, name: str | None = None) -> Operation:
    """Set a variable to ``value`` when run; fetching it returns the new value."""
    ref = _bind_by_value(ref, value)
    if has_deferred((value,)) or (isinstance(ref, DeferredVariable) and ref.leaf is None):
        if not isinstance(ref, DeferredVariable):
            _check_variable("assign", ref)
        return Deferred(assign, (ref, value), {"name": name}, label="Assign")  # type: ignore[return-value]
    ref = _check_variable("assign", ref)
    new = _new_value("assign", ref, value)
    return Operation(name or f"Assign/{ref.name}", {ref: new}, new)


def assign_add(ref: Expr, value: object, name: str | None = None) -> Operation:
    """ref += value when run; fetching it returns the new value."""
    ref = _bind_by_value(ref, value)
    if has_deferred((value,)) or (isinstance(ref, DeferredVariable) and ref.leaf is None):
        if not isinstance(ref, DeferredVariable):
            _check_variable("assign_add", ref)
        return Deferred(assign_add, (ref, value), {"name": name}, label="AssignAdd")  # type: ignore[return-value]
    ref = _check_variable("assign_add", ref)
    new = _new_value("assign_add", ref, ref + as_expr(value))
    return Operation(name or f"AssignAdd/{ref.name}", {ref: new}, new)


def assign_sub(ref: Expr, value: object, name: str | None = None) -> Operation:
    """ref -= value when run; fetching it returns the new value."""
    ref = _bind_by_value(ref, value)
    if has_deferred((value,)) or (isinstance(ref, DeferredVariable) and ref.leaf is None):
        if not isinstance(ref, DeferredVariable):
            _check_variable("assign_sub", ref)
        return Deferred(assign_sub, (ref, value), {"name": name}, label="AssignSub")  # type: ignore[return-value]
    ref = _check_variable("assign_sub", ref)
    new = _new_value("assign_sub", ref, ref - as_expr(value))
    return Operation(name or f"AssignSub/{ref.name}", {ref: new}, new)


def merge_updates(ops: Sequence[Operation]) -> dict[Expr, Expr]:
    """The union of the operations' updates; two different new values for one variable fail."""
    merged: dict[Expr, Expr] = {}
    for op in ops:
        for leaf, new in op.updates.items():
            if leaf in merged and merged[leaf] is not new:
                raise ShapeError(
                    f"variable {leaf.name!r} is assigned twice with different values in one run "
                    f"(by {op.name!r} and another operation); run them one after the other"
                )
            merged[leaf] = new
    return merged


@deferrable
def group(*inputs: object, name: str | None = None) -> Operation:
    """One operation running all ``inputs`` (operations; tensors are accepted and ignored)."""
    ops = [x for x in inputs if isinstance(x, Operation)]
    for x in inputs:
        if not isinstance(x, (Operation, Expr)):
            raise ShapeError(f"group: expected operations or tensors, got {x!r}")
    init = [v for op in ops for v in op.initialize]
    return Operation(name or "group", merge_updates(ops), None, tuple(dict.fromkeys(init)))


def no_op(name: str | None = None) -> Operation:
    """An operation that does nothing."""
    return Operation(name or "NoOp")


def variables_initializer(var_list: Sequence[Expr], name: str = "init") -> Operation:
    """An operation setting each listed variable to its initial value."""
    for v in var_list:
        _check_variable("variables_initializer", v)
    return Operation(name, initialize=tuple(var_list))


def global_variables_initializer() -> Operation:
    """An operation initializing every variable created so far (optimizer slots included).

    Variables without an initial value (tinyflow's auto-shaped ones) are left to `assign`.
    """
    graph = get_default_graph()
    return variables_initializer([v for v, info in graph.variables.items()
                                  if info.initial is not None])


def initialize_all_variables() -> Operation:
    """The old name of `global_variables_initializer`."""
    return global_variables_initializer()


# --------------------------------------------------------------------------- more of TF's ops
# Compositions of symdl's core ops (issue 14, item 6).


@deferrable
def identity(input: object, name: str | None = None) -> Expr:  # noqa: A002 - TF's name
    """The same value (a new name in TensorFlow; the same expression here)."""
    return as_expr(input)


@deferrable
def zeros_like(tensor: object, dtype: object = None, name: str | None = None) -> Expr:
    """Zeros of ``tensor``'s shape and dtype (or ``dtype``)."""
    x = as_expr(tensor)
    return sd.zeros(x.shape, as_dtype(dtype) if dtype is not None else x.dtype)


@deferrable
def ones_like(tensor: object, dtype: object = None, name: str | None = None) -> Expr:
    """Ones of ``tensor``'s shape and dtype (or ``dtype``)."""
    x = as_expr(tensor)
    return sd.ones(x.shape, as_dtype(dtype) if dtype is not None else x.dtype)


@deferrable
def to_float(x: object, name: str | None = None) -> Expr:
    """``tf.cast(x, tf.float32)``."""
    return sd.cast(x, as_dtype("float32"))


@deferrable
def to_double(x: object, name: str | None = None) -> Expr:
    """``tf.cast(x, tf.float64)``."""
    return sd.cast(x, as_dtype("float64"))


@deferrable
def to_int32(x: object, name: str | None = None) -> Expr:
    """``tf.cast(x, tf.int32)``."""
    return sd.cast(x, as_dtype("int32"))


@deferrable
def to_int64(x: object, name: str | None = None) -> Expr:
    """``tf.cast(x, tf.int64)``."""
    return sd.cast(x, as_dtype("int64"))


@deferrable
def concat(values: Sequence[object], axis: int, name: str | None = None) -> Expr:
    """Join tensors along ``axis`` (TensorFlow 1.0's argument order: values, then axis)."""
    if isinstance(values, (int, np.integer)) and isinstance(axis, (list, tuple)):
        values, axis = axis, int(values)  # the 0.12 order, tf.concat(axis, values)
    return sd.concatenate([as_expr(v) for v in values], axis=int(axis))


@deferrable
def expand_dims(input: object, axis: int | None = None, name: str | None = None,  # noqa: A002
                dim: int | None = None) -> Expr:
    """Insert an axis of size 1 at ``axis`` (or the old ``dim``)."""
    where_ = axis if axis is not None else dim
    if where_ is None:
        raise ShapeError("expand_dims: give axis")
    return sd.expand_dims(input, int(where_))


@deferrable
def squeeze(input: object, axis: object = None, name: str | None = None,  # noqa: A002
            squeeze_dims: object = None) -> Expr:
    """Remove axes of size 1 (all, or those in ``axis``; ``squeeze_dims`` is the old name)."""
    chosen = axis if axis is not None else squeeze_dims
    if isinstance(chosen, list):
        chosen = tuple(chosen)
    return sd.squeeze(input, chosen)


@deferrable
def one_hot(indices: object, depth: int, on_value: object = None, off_value: object = None,
            axis: int | None = None, dtype: object = None, name: str | None = None) -> Expr:
    """Rows with ``on_value`` (1) at each index and ``off_value`` (0) elsewhere, on the last
    axis; float32 by default, as in TensorFlow."""
    if axis not in (None, -1):
        raise ShapeError("one_hot: only the last axis (axis=-1) is supported")
    dt = as_dtype(dtype) if dtype is not None else float32
    hot = sd.one_hot(indices, int(depth), dt)
    if on_value is None and off_value is None:
        return hot
    on = 1 if on_value is None else on_value
    off = 0 if off_value is None else off_value
    return sd.where(sd.cast(hot, "bool"), sd.cast(on, dt), sd.cast(off, dt))


@deferrable
def clip_by_value(t: object, clip_value_min: object, clip_value_max: object,
                  name: str | None = None) -> Expr:
    """``t`` limited to [min, max] elementwise (the gradient reaches ``t`` where it is within
    the bounds, ends included)."""
    return sd.clip(t, clip_value_min, clip_value_max)


@deferrable
def reduce_logsumexp(input_tensor: object, axis: object = None, keepdims: bool | None = None,
                     name: str | None = None, reduction_indices: object = None,
                     keep_dims: bool | None = None) -> Expr:
    """log(sum(exp(x))) over ``axis``, computed stably."""
    bool_reduction("reduce_logsumexp", input_tensor)
    x = as_expr(input_tensor)
    chosen = _axis(axis, reduction_indices)
    keep = _keep(keepdims, keep_dims)
    if isinstance(chosen, (int, np.integer)):
        chosen = int(chosen)
    return sd.logsumexp(x, chosen, keep)  # one axis, a tuple of them, or all (None)


@deferrable
def add_n(inputs: Sequence[object], name: str | None = None) -> Expr:
    """The sum of a list of tensors of one shape."""
    items = [as_expr(x) for x in inputs]
    if not items:
        raise ShapeError("add_n: needs at least one tensor")
    total = items[0]
    for item in items[1:]:
        total = total + item
    return total


@deferrable
def stack(values: Sequence[object], axis: int = 0, name: str | None = None) -> Expr:
    """Join tensors of one shape along a new axis ``axis`` (``tf.stack``, once ``tf.pack``)."""
    return sd.stack([as_expr(v) for v in values], axis=int(axis))


pack = stack


def _split_now(value: object, num_or_size_splits: object, axis: int) -> list[Expr]:
    x = as_expr(value)
    axis = int(axis)
    if isinstance(num_or_size_splits, (int, np.integer)):
        return sd.split(x, int(num_or_size_splits), axis)
    sizes = [int(s) for s in num_or_size_splits]  # type: ignore[union-attr]
    length = x.shape[axis]
    if sizes.count(-1) == 1 and isinstance(length, int):
        sizes[sizes.index(-1)] = length - (sum(sizes) + 1)  # TensorFlow's "the rest"
    if any(s < 0 for s in sizes) or (isinstance(length, int) and sum(sizes) != length):
        raise ShapeError(
            f"split: the sizes {sizes} must be non-negative and add up to axis {axis}'s "
            f"size {length} (one of them may be -1: the rest)"
        )
    bounds = list(itertools.accumulate(sizes))[:-1]
    return sd.split(x, bounds, axis)


def split(value: object, num_or_size_splits: object, axis: int = 0, num: int | None = None,
          name: str | None = None) -> list[Any]:
    """Pieces of ``value`` along ``axis``: ``num_or_size_splits`` equal ones (an int), or ones
    of the given sizes (a list; -1 for the rest), as ``tf.split`` (not ``np.split``'s indices).
    """
    if isinstance(value, (int, np.integer)) and not isinstance(num_or_size_splits, int):
        # the 0.12 order: tf.split(axis, num_split, value)
        value, num_or_size_splits, axis = num_or_size_splits, axis, int(value)
    if has_deferred((value,)):
        count = (int(num_or_size_splits) if isinstance(num_or_size_splits, (int, np.integer))
                 else len(num_or_size_splits))  # type: ignore[arg-type]
        whole = Deferred(_split_now, (value, num_or_size_splits, axis), label="split")
        return split_deferred(whole, count)
    return _split_now(value, num_or_size_splits, axis)


@deferrable
def pad(tensor: object, paddings: object = None, mode: str = "CONSTANT",
        name: str | None = None, constant_values: object = 0) -> Expr:
    """``tensor`` with ``paddings[i] = [before, after]`` entries of ``constant_values`` around
    axis i (only TensorFlow's "CONSTANT" mode)."""
    if str(mode).upper() != "CONSTANT":
        raise ShapeError(f'pad: only mode="CONSTANT" is supported, got {mode!r}')
    x = as_expr(tensor)
    if isinstance(paddings, Expr):
        if paddings.op.name != "constant":
            raise ShapeError("pad: paddings must be known when the graph is built")
        paddings = paddings.attr("value").array
    pairs = np.asarray(paddings, dtype=np.int64)
    if pairs.shape != (x.ndim, 2):
        raise ShapeError(
            f"pad: paddings must be {x.ndim} [before, after] pairs (shape [{x.ndim}, 2]) for "
            f"a tensor of shape {x.shape}, got shape {list(pairs.shape)}"
        )
    return sd.pad(x, [tuple(int(v) for v in row) for row in pairs],
                  constant_values=constant_values)


@deferrable
def tile(input: object, multiples: object, name: str | None = None) -> Expr:  # noqa: A002
    """``input`` repeated ``multiples[i]`` times along axis i."""
    return sd.tile(input, [int(m) for m in multiples])  # type: ignore[union-attr]


@deferrable
def gather(params: object, indices: object, validate_indices: object = None,
           name: str | None = None, axis: int = 0) -> Expr:
    """Slices of ``params`` at ``indices`` along ``axis`` (``np.take``); the gradient
    scatter-adds into the chosen slices."""
    return sd.take(params, indices, axis=int(axis))


@deferrable
def stop_gradient(input: object, name: str | None = None) -> Expr:  # noqa: A002
    """The same value, through which no gradient flows."""
    return sd.stop_gradient(input)
