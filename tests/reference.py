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


def _elementwise(*xs: np.ndarray, body: sympy.Expr, symbols: Any, fname: str) -> np.ndarray:
    fn = sympy.lambdify(symbols, body, modules=["scipy", "numpy"])  # scipy: sympy.erf bodies
    return np.asarray(fn(*xs))


def _size(*, static: int, symbols: Sequence[str], sizes: Sizes) -> np.ndarray:
    return np.asarray(static * int(np.prod([sizes[s] for s in symbols], dtype=np.int64)))


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
    "logsumexp": _logsumexp,
    "softmax": _softmax,
    "log_softmax": _log_softmax,
    "softmax_cross_entropy": _cross_entropy,
    "one_hot": lambda labels, *, depth, dtype: (
        (labels[..., None] == np.arange(depth)).astype(dtype)
    ),
    "pick": lambda x, labels, *, axis: np.take_along_axis(x, labels[..., None], axis=axis)[..., 0],
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
LEAVES = ("constant", "placeholder", "parameter")


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
        if name in ("placeholder", "parameter"):
            values[node] = np.asarray(feed[node])
            continue
        rule = RULES[name]
        kwargs = node.kwargs
        if name in ("reshape", "broadcast_to", "unindex", "zeros", "size"):
            kwargs["sizes"] = sizes
        result = np.asarray(rule(*(values[i] for i in node.inputs), **kwargs))
        # Each node's dtype is the IR's; weak Python scalars follow it.
        values[node] = result.astype(node.dtype, copy=False)
    return values
