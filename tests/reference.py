"""An independent numpy interpreter of the symdl IR, for tests only.

`evaluate(outputs, feed)` walks the graph and applies one small numpy function per op, written
from what the op means (numpy's own functions, composite ops defined directly), never from the
code generator's templates or printer. Tests compare generated modules against it, so a bug in
codegen, lowering or simplification cannot hide behind itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import scipy.special
import sympy

from symdl.ir import Expr, toposort

Sizes = dict[str, int]
Rule = Callable[..., np.ndarray]


def _dims(shape: Sequence[object], sizes: Sizes) -> tuple[int, ...]:
    return tuple(d if isinstance(d, int) else sizes[d] for d in shape)


def _index(entries: Sequence[tuple[Any, ...]]) -> tuple[object, ...]:
    out: list[object] = []
    for entry in entries:
        if entry[0] == "new":
            out.append(None)
        elif entry[0] == "int":
            out.append(entry[1])
        else:
            out.append(slice(*entry[1:]))
    return tuple(out)


def _axes(axis: object) -> object:
    return tuple(axis) if isinstance(axis, (tuple, list)) else axis


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    z = x - x.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def _logsumexp(x: np.ndarray, axis: int, keepdims: bool) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - top).sum(axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray, axis: int) -> np.ndarray:
    logp = _log_softmax(logits, axis)
    if labels.dtype.kind in "iu":
        return -np.take_along_axis(logp, labels[..., None], axis=axis)[..., 0]
    return -(labels * logp).sum(axis=axis)


def _max_or_zero(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.max(x, axis=_axes(axis), keepdims=keepdims)


def _unindex(g: np.ndarray, *, index: Any, shape: Any, sizes: Sizes) -> np.ndarray:
    out = np.zeros(_dims(shape, sizes), dtype=g.dtype)
    out[_index(index)] = g
    return out


def _scatter_add(g: np.ndarray, *indices: np.ndarray, axis: int, shape: Any,
                 sizes: Sizes) -> np.ndarray:
    """Zeros with ``g`` added at the indices, one entry at a time (tied indices add up)."""
    out = np.zeros(_dims(shape, sizes), dtype=g.dtype)
    lead = out.shape[:axis]
    joint = np.broadcast_arrays(*indices)
    g = np.broadcast_to(g, lead + joint[0].shape + out.shape[axis + len(indices):])
    for position in np.ndindex(*joint[0].shape):
        at = tuple(int(j[position]) for j in joint)
        for outer in np.ndindex(*lead):
            out[outer + at] += g[outer + position]
    return out


def _shift(x: np.ndarray, axis: int, forward: bool, fill: np.ndarray) -> np.ndarray:
    """x moved one place along axis (toward the end if forward), fill entering."""
    out = np.full_like(x, fill)
    n = x.shape[axis]
    source = [slice(None)] * x.ndim
    target = [slice(None)] * x.ndim
    source[axis], target[axis] = (slice(0, n - 1), slice(1, n)) if forward else (
        slice(1, n), slice(0, n - 1))
    out[tuple(target)] = x[tuple(source)]
    return out


def _elementwise(*xs: np.ndarray, body: sympy.Expr, symbols: Any, fname: str) -> np.ndarray:
    fn = sympy.lambdify(symbols, body, modules=["scipy", "numpy"])  # scipy: sympy.erf bodies
    return np.asarray(fn(*xs))


def _size(*, static: int, symbols: Sequence[str], sizes: Sizes) -> np.ndarray:
    return np.asarray(static * int(np.prod([sizes[s] for s in symbols], dtype=np.int64)))


# ---- convolution and pooling: direct loops over output pixels and kernel offsets, not the
# generated code's sliding windows and tensordot.


def _offsets(out: int, kernel: int, stride: int, dilation: int) -> list[tuple[int, int, int]]:
    """(output index, kernel index, input index) triples along one axis."""
    return [(o, k, o * stride + k * dilation) for o in range(out) for k in range(kernel)]


def _windows_ref(x: np.ndarray, *, window: Any, strides: Any, dilation: Any) -> np.ndarray:
    n, h, w, c = x.shape
    oh = (h - (window[0] - 1) * dilation[0] - 1) // strides[0] + 1
    ow = (w - (window[1] - 1) * dilation[1] - 1) // strides[1] + 1
    out = np.zeros((n, oh, ow, c, window[0], window[1]), dtype=x.dtype)
    for i, ki, hi in _offsets(oh, window[0], strides[0], dilation[0]):
        for j, kj, wj in _offsets(ow, window[1], strides[1], dilation[1]):
            out[:, i, j, :, ki, kj] = x[:, hi, wj, :]
    return out


def _windows_adjoint_ref(c: np.ndarray, *, size: Any, window: Any, strides: Any,
                         dilation: Any, packed: bool) -> np.ndarray:
    if packed:  # (N, OH, OW, KH * KW * C) in (KH, KW, C) order
        n, oh, ow, k = c.shape
        c = c.reshape(n, oh, ow, window[0], window[1], k // (window[0] * window[1]))
        c = c.transpose(0, 1, 2, 5, 3, 4)
    n, oh, ow, ch = c.shape[:4]
    out = np.zeros((n, size[0], size[1], ch), dtype=c.dtype)
    for i, ki, hi in _offsets(oh, window[0], strides[0], dilation[0]):
        for j, kj, wj in _offsets(ow, window[1], strides[1], dilation[1]):
            out[:, hi, wj, :] += c[:, i, j, :, ki, kj]
    return out


def _patches_ref(x: np.ndarray, *, window: Any, strides: Any, dilation: Any) -> np.ndarray:
    windows = _windows_ref(x, window=window, strides=strides, dilation=dilation)
    n, oh, ow, c, kh, kw = windows.shape
    out = np.zeros((n, oh, ow, kh * kw * c), dtype=x.dtype)
    for ki in range(kh):
        for kj in range(kw):
            start = (ki * kw + kj) * c
            out[..., start:start + c] = windows[..., ki, kj]
    return out


def _conv2d_ref(p: np.ndarray, w: np.ndarray) -> np.ndarray:
    # Each output pixel: its patch against every filter, one dot product at a time.
    kh, kw, c, o = w.shape
    out = np.zeros((*p.shape[:3], o), dtype=np.result_type(p, w))
    for f in range(o):
        out[..., f] = (p * w[..., f].reshape(-1)).sum(axis=-1)
    return out


def _conv2d_patches_ref(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    kh, kw, c, o = w.shape
    rows = w.reshape(kh * kw * c, o)
    return np.einsum("nijo,ko->nijk", g, rows)


def _conv2d_filter_ref(p: np.ndarray, g: np.ndarray, *, kernel: Any) -> np.ndarray:
    return np.einsum("nijk,nijo->ko", p, g).reshape(*kernel[:3], g.shape[3])


def _max_pool_ref(x: np.ndarray, *, window: Any, strides: Any) -> np.ndarray:
    windows = _windows_ref(x, window=window, strides=strides, dilation=(1, 1))
    return windows.reshape(*windows.shape[:4], -1).max(axis=-1)


def _max_pool_share_ref(x: np.ndarray, out: np.ndarray, g: np.ndarray, *, window: Any,
                        strides: Any) -> np.ndarray:
    windows = _windows_ref(x, window=window, strides=strides, dilation=(1, 1))
    return g / (windows == out[..., None, None]).sum(axis=(4, 5))


def _max_pool_grad_ref(x: np.ndarray, out: np.ndarray, share: np.ndarray, *, window: Any,
                       strides: Any) -> np.ndarray:
    dx = np.zeros(x.shape, dtype=share.dtype)
    for i, _, hi in _offsets(out.shape[1], window[0], strides[0], 1):
        for j, _, wj in _offsets(out.shape[2], window[1], strides[1], 1):
            dx[:, hi, wj] += (x[:, hi, wj] == out[:, i, j]) * share[:, i, j]
    return dx


# One rule per op name. Rules taking ``sizes`` get the symbolic sizes bound from the feed.
RULES: dict[str, Rule] = {
    "reshape": lambda x, *, shape, sizes: np.reshape(x, _dims(shape, sizes)),
    "transpose": lambda x, *, axes: np.transpose(x, axes),
    "broadcast_to": lambda x, *, shape, sizes: np.broadcast_to(x, _dims(shape, sizes)),
    "concatenate": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "index": lambda x, *, index: x[_index(index)],
    "unindex": _unindex,
    "zeros": lambda *, shape, dtype, sizes: np.zeros(_dims(shape, sizes), dtype=dtype),
    "sum": lambda x, *, axis, keepdims: np.sum(x, axis=_axes(axis), keepdims=keepdims),
    "max": _max_or_zero,
    "argmax": lambda x, *, axis: np.argmax(x, axis=axis),
    "size": _size,
    "add": np.add,
    "subtract": np.subtract,
    "multiply": np.multiply,
    "divide": np.true_divide,
    "power": np.power,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "less": np.less,
    "less_equal": np.less_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "where": np.where,
    "negative": np.negative,
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "square": np.square,
    "sin": np.sin,
    "cos": np.cos,
    "tanh": np.tanh,
    # 1 / (1 + e^-x), split by sign so neither branch overflows.
    "sigmoid": lambda x: np.where(
        x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x)))
    ),
    "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
    "relu": lambda x: np.where(x > 0, x, 0),
    "abs": np.abs,
    "sign": np.sign,
    "cast": lambda x, *, dtype: np.asarray(x).astype(dtype),
    "label": lambda x, *, name, of: x,  # a name, not a computation
    "elementwise": _elementwise,
    "matmul": np.matmul,
    "basis_product": lambda a, *, cols: np.einsum("...d,cj->...cdj", a, np.eye(cols)).reshape(
        *a.shape[:-1], cols, a.shape[-1] * cols
    ),
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmax_cross_entropy": _cross_entropy,
    "one_hot": lambda labels, *, depth, dtype: (
        (labels[..., None] == np.arange(depth)).astype(dtype)
    ),
    "pick": lambda x, labels, *, axis: np.take_along_axis(x, labels[..., None], axis=axis)[..., 0],
    # integer-array indexing
    "arange": lambda *, start, stop, step, dtype, sizes: np.arange(
        start, _dims((stop,), sizes)[0], step, dtype=dtype
    ),
    "gather": lambda a, *indices, axis: a[(slice(None),) * axis + indices],
    "scatter_add": _scatter_add,
    "take_along_axis": lambda a, indices, *, axis: np.take_along_axis(a, indices, axis=axis),
    # shape, creation, reductions and scans (issue 13, items 3 and 5)
    "full": lambda *, shape, fill_value, dtype, sizes: np.full(
        _dims(shape, sizes), fill_value.array, dtype=dtype
    ),
    "stack": lambda *xs, axis: np.stack(xs, axis=axis),
    "pad": lambda x, *, pad_width, constant_values: np.pad(
        x, pad_width, constant_values=constant_values.array
    ),
    "tile": lambda x, *, reps: np.tile(x, reps),
    "repeat": lambda x, *, repeats, axis: np.repeat(x, repeats, axis=axis),
    "flip": lambda x, *, axis: np.flip(x, axis=axis),
    "cumsum": lambda x, *, axis: np.cumsum(x, axis=axis),
    "cumprod": lambda x, *, axis: np.cumprod(x, axis=axis),
    "prod": lambda x, *, axis, keepdims: np.prod(x, axis=axis, keepdims=keepdims),
    "any": lambda x, *, axis, keepdims: np.any(x, axis=axis, keepdims=keepdims),
    "all": lambda x, *, axis, keepdims: np.all(x, axis=axis, keepdims=keepdims),
    "argmin": lambda x, *, axis: np.argmin(x, axis=axis),
    "shift": lambda x, *, axis, forward, fill: _shift(x, axis, forward, fill.array),
    # ---- contractions: numpy's einsum on the node's explicit subscripts
    "einsum": lambda *xs, subscripts: np.einsum(subscripts, *xs),
    # convolution and pooling
    "windows": _windows_ref,
    "windows_adjoint": _windows_adjoint_ref,
    "patches": _patches_ref,
    "conv2d": _conv2d_ref,
    "conv2d_backprop_patches": _conv2d_patches_ref,
    "conv2d_backprop_filter": _conv2d_filter_ref,
    "max_pool2d": _max_pool_ref,
    "max_pool2d_share": _max_pool_share_ref,
    "max_pool2d_grad": _max_pool_grad_ref,
    # Issue 13, items 4 and 7: more elementwise math, logic, scipy's special functions, losses.
    "log2": np.log2,
    "tan": np.tan,
    "arctan": np.arctan,
    "floor": np.floor,
    "round": np.round,
    "clip": np.clip,
    "stop_gradient": lambda x: x,
    "isnan": np.isnan,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_not": np.logical_not,
    "erf": scipy.special.erf,
    "erfc": scipy.special.erfc,
    "lgamma": scipy.special.gammaln,
    "polygamma": lambda x, *, n: scipy.special.polygamma(n, x),
    # -(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))), in the form that cannot overflow.
    "huber": lambda d, *, delta: np.where(
        np.abs(d) <= delta, d * d / 2, delta * (np.abs(d) - delta / 2)
    ),
    "sigmoid_cross_entropy": lambda z, y: (
        np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    ),
}
# random draws (issue 13, item 8): the feed gives the rng leaf a numpy Generator, which each
# draw advances, in the order the walk meets the draws (the generated code's order must match).
RULES.update({
    "uniform": lambda g, *, shape, dtype, draw, sizes: g.item().random(_dims(shape, sizes),
                                                                       dtype=dtype),
    "normal": lambda g, *, shape, dtype, draw, sizes: g.item().standard_normal(
        _dims(shape, sizes), dtype=dtype
    ),
    # p compared in the draw's dtype, as numpy compares a float32 array with a Python number.
    "bernoulli": lambda g, p, *, shape, dtype, draw, sizes: (
        g.item().random(_dims(shape, sizes), dtype=dtype) < np.asarray(p).astype(dtype)
    ),
})
LEAVES = ("constant", "placeholder", "parameter", "rng")


def bind_sizes(feed: Mapping[Expr, np.ndarray]) -> Sizes:
    """Symbolic sizes (``"N"``) read off the fed arrays' shapes."""
    sizes: Sizes = {}
    for leaf, value in feed.items():
        for d, n in zip(leaf.shape, np.shape(value), strict=True):
            if isinstance(d, str):
                if sizes.setdefault(d, n) != n:
                    raise ValueError(f"size {d} is both {sizes[d]} and {n} in the feed")
    return sizes


def evaluate(outputs: Sequence[Expr], feed: Mapping[Expr, np.ndarray]) -> list[np.ndarray]:
    """Values of ``outputs`` given arrays for every placeholder and parameter they use."""
    values = trace(outputs, feed)
    return [values[o] for o in outputs]


def trace(outputs: Sequence[Expr], feed: Mapping[Expr, np.ndarray]) -> dict[Expr, np.ndarray]:
    """The value of every node the outputs depend on (tests use it to stay clear of kinks)."""
    sizes = bind_sizes(feed)
    values: dict[Expr, np.ndarray] = {}
    for node in toposort(outputs):
        name = node.op.name
        if name == "constant":
            values[node] = node.attr("value").array
            continue
        if name in ("placeholder", "parameter", "rng"):
            values[node] = np.asarray(feed[node])
            continue
        rule = RULES[name]
        kwargs = node.kwargs
        if name in ("reshape", "broadcast_to", "unindex", "zeros", "size", "arange",
                    "scatter_add", "full", "uniform", "normal", "bernoulli"):
            kwargs["sizes"] = sizes
        result = np.asarray(rule(*(values[i] for i in node.inputs), **kwargs))
        # Each node's dtype is the IR's; weak Python scalars follow it.
        values[node] = result.astype(node.dtype, copy=False)
    return values
