"""The IR: small, immutable, hash-consed expression nodes.

An `Expr` is an op applied to input expressions, with static attributes, a shape and a dtype.
Structurally equal nodes are the same object (hash-consing), so common-subexpression elimination
of tensor nodes is free and `is` compares structure. A node records nothing about when or by
whom it was built: traversals follow input order, never object ids or creation order, so
everything downstream (names, generated code) depends on the graph alone.

Names are not part of a node's identity and not state on it: a node is shared by every graph
in the process. ``expr.named("logits")`` returns a `label` node wrapping ``expr``, so the name
belongs to the graphs that use that label, and passes read names per call
(`symdl.provenance`).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .types import Shape, format_shape

if TYPE_CHECKING:
    from .ops.base import Op

_table: weakref.WeakValueDictionary[tuple[Any, ...], Expr] = weakref.WeakValueDictionary()


class ConstValue:
    """A constant's numpy value, frozen and compared by dtype, shape and bytes (so it can hash)."""

    __slots__ = ("array", "_key")

    def __init__(self, array: np.ndarray) -> None:
        array = np.array(array, copy=True)
        array.setflags(write=False)
        self.array = array
        self._key = (array.dtype.str, array.shape, array.tobytes())

    def __hash__(self) -> int:
        return hash(self._key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ConstValue) and self._key == other._key

    def __repr__(self) -> str:
        if self.array.size <= 6:
            return repr(self.array.tolist())
        return f"<{self.array.dtype} array {self.array.shape}>"


class Expr:
    """A symbolic tensor: an op, its inputs, static attributes, a shape and a dtype.

    Build expressions with the functions in `symdl` (`sd.exp(x)`, `x @ W + b`); never call this
    constructor directly. Nodes are immutable; two structurally equal nodes are the same object.
    """

    __slots__ = ("op", "inputs", "attrs", "shape", "dtype", "__weakref__")

    op: type[Op]
    inputs: tuple[Expr, ...]
    attrs: tuple[tuple[str, Any], ...]
    shape: Shape
    dtype: str

    # numpy must hand `ndarray * expr` to Expr.__rmul__ instead of building an object array.
    __array_ufunc__ = None

    def __init__(self, *args: object) -> None:
        raise TypeError("build expressions with symdl's functions (sd.placeholder, sd.exp, ...)")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("symdl expressions are immutable")

    # ----------------------------------------------------------------- facts

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def is_leaf(self) -> bool:
        """True for placeholders, parameters and constants."""
        return self.op.is_leaf

    def attr(self, name: str) -> Any:
        """The value of one static attribute (``axis``, ``name``, ...)."""
        for key, value in self.attrs:
            if key == name:
                return value
        raise KeyError(f"{self.op.name} has no attribute {name!r}")

    @property
    def kwargs(self) -> dict[str, Any]:
        """The static attributes as a dict, as derivative rules receive them."""
        return dict(self.attrs)

    @property
    def name(self) -> str | None:
        """A leaf's name, or the name a `label` node gives its value, or None."""
        if self.op.is_leaf and self.op.name != "constant":
            return self.attr("name")
        if self.op.name == "label":
            return self.attr("name")
        return None

    def named(self, name: str) -> Expr:
        """This value under a name, for generated code and derivations: ``h = (x @ W).named("h")``.

        Returns a new expression (a label around this one) with the same value; use the returned
        expression. The name belongs to the graphs built from it, not to the shared node, so
        naming a value in one model never renames it in another. A leaf keeps its own name.
        """
        from .ops.base import label

        return label(self, name)

    # ----------------------------------------------------------------- printing

    def __repr__(self) -> str:
        label = f" {self.name}" if self.name else ""
        return f"<Expr {self.op.name}{label} {format_shape(self.shape)} {self.dtype}>"

    def __str__(self) -> str:
        from .printing import dump

        return dump([self])

    def __bool__(self) -> bool:
        raise TypeError(
            "a symbolic expression has no truth value; use sd.where(cond, a, b) for a "
            "data-dependent choice"
        )

    def __iter__(self) -> Iterator[Expr]:
        raise TypeError("symbolic expressions are not iterable; index them with x[i]")

    def __len__(self) -> int:
        if not self.shape or not isinstance(self.shape[0], int):
            raise TypeError(f"len() of an expression of shape {format_shape(self.shape)}")
        return self.shape[0]

    # ----------------------------------------------------------------- operators

    def __add__(self, other: object) -> Expr:
        return _api.add(self, other)

    def __radd__(self, other: object) -> Expr:
        return _api.add(other, self)

    def __sub__(self, other: object) -> Expr:
        return _api.subtract(self, other)

    def __rsub__(self, other: object) -> Expr:
        return _api.subtract(other, self)

    def __mul__(self, other: object) -> Expr:
        return _api.multiply(self, other)

    def __rmul__(self, other: object) -> Expr:
        return _api.multiply(other, self)

    def __truediv__(self, other: object) -> Expr:
        return _api.divide(self, other)

    def __rtruediv__(self, other: object) -> Expr:
        return _api.divide(other, self)

    def __pow__(self, other: object) -> Expr:
        return _api.power(self, other)

    def __rpow__(self, other: object) -> Expr:
        return _api.power(other, self)

    def __matmul__(self, other: object) -> Expr:
        return _api.matmul(self, other)

    def __rmatmul__(self, other: object) -> Expr:
        return _api.matmul(other, self)

    def __neg__(self) -> Expr:
        return _api.negative(self)

    def __pos__(self) -> Expr:
        return self

    def __abs__(self) -> Expr:
        return _api.abs(self)

    # `==` and `!=` keep Python's meaning (identity, which is structural equality here) so that
    # expressions work in sets, dicts and `in`; use sd.equal / sd.not_equal for elementwise tests.
    def __lt__(self, other: object) -> Expr:
        return _api.less(self, other)

    def __le__(self, other: object) -> Expr:
        return _api.less_equal(self, other)

    def __gt__(self, other: object) -> Expr:
        return _api.greater(self, other)

    def __ge__(self, other: object) -> Expr:
        return _api.greater_equal(self, other)

    __hash__ = object.__hash__

    def __getitem__(self, index: object) -> Expr:
        """numpy's indexing: ints, slices, None and ``...`` (a view), and integer arrays or
        expressions (``E[ids]``, ``x[sd.arange(N), y]``: a gather); see `symdl.take`."""
        from .ops.indexing import getitem  # ops import this module: resolved on first use

        return getitem(self, index)

    # ----------------------------------------------------------------- numpy-style methods

    @property
    def T(self) -> Expr:  # noqa: N802 - numpy's name
        """Reverse the axes, as numpy's ``.T``."""
        return _api.transpose(self)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Sum over ``axis``; see `symdl.sum`."""
        return _api.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Mean over ``axis``; see `symdl.mean`."""
        return _api.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Maximum over ``axis``; see `symdl.max`."""
        return _api.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Minimum over ``axis``; see `symdl.min`."""
        return _api.min(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: int | None = None) -> Expr:
        """Index of the maximum along ``axis``; see `symdl.argmax`."""
        return _api.argmax(self, axis=axis)

    def var(
        self, axis: int | Sequence[int] | None = None, keepdims: bool = False, ddof: int = 0
    ) -> Expr:
        """Variance over ``axis``; see `symdl.var`."""
        return _api.var(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def std(
        self, axis: int | Sequence[int] | None = None, keepdims: bool = False, ddof: int = 0
    ) -> Expr:
        """Standard deviation over ``axis``; see `symdl.std`."""
        return _api.std(self, axis=axis, keepdims=keepdims, ddof=ddof)

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Expr:
        """Remove axes of size 1; see `symdl.squeeze`."""
        return _api.squeeze(self, axis)

    def prod(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Product over ``axis``; see `symdl.prod`."""
        return _api.prod(self, axis=axis, keepdims=keepdims)

    def cumsum(self, axis: int | None = None) -> Expr:
        """Running sums along ``axis``; see `symdl.cumsum`."""
        return _api.cumsum(self, axis=axis)

    def cumprod(self, axis: int | None = None) -> Expr:
        """Running products along ``axis``; see `symdl.cumprod`."""
        return _api.cumprod(self, axis=axis)

    def any(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Whether any element over ``axis`` is true; see `symdl.any`."""
        return _api.any(self, axis=axis, keepdims=keepdims)

    def all(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Expr:
        """Whether every element over ``axis`` is true; see `symdl.all`."""
        return _api.all(self, axis=axis, keepdims=keepdims)

    def argmin(self, axis: int | None = None) -> Expr:
        """Index of the minimum along ``axis``; see `symdl.argmin`."""
        return _api.argmin(self, axis=axis)

    def flatten(self) -> Expr:
        """The elements as a vector, as numpy's ``.flatten()`` (a reshape: symdl never writes
        into values, so the copy numpy makes is not needed)."""
        return _api.reshape(self, (-1,))

    def ravel(self) -> Expr:
        """The elements as a vector, as numpy's ``.ravel()``."""
        return _api.reshape(self, (-1,))

    def reshape(self, *shape: Any) -> Expr:
        """Reshape; accepts ``x.reshape(N, 784)`` and ``x.reshape((N, 784))``."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _api.reshape(self, shape)

    def transpose(self, *axes: int) -> Expr:
        """Permute axes; see `symdl.transpose`."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return _api.transpose(self, axes or None)

    def astype(self, dtype: object) -> Expr:
        """Convert to another dtype; see `symdl.cast`."""
        return _api.cast(self, dtype)


def intern(
    op: type[Op], inputs: tuple[Expr, ...], attrs: tuple[tuple[str, Any], ...], shape: Shape,
    dtype: str,
) -> Expr:
    """The unique node with these fields: an existing one if it was built before."""
    key = (op, inputs, attrs, shape, dtype)
    node = _table.get(key)
    if node is None:
        node = object.__new__(Expr)
        for field, value in zip(
            ("op", "inputs", "attrs", "shape", "dtype"),
            (op, inputs, attrs, shape, dtype),
        ):
            object.__setattr__(node, field, value)
        _table[key] = node
    return node


def toposort(
    outputs: Iterable[Expr], stop: Callable[[Expr], bool] | None = None
) -> list[Expr]:
    """All nodes the outputs depend on, inputs before users, in a deterministic order.

    Depth-first over inputs in order; iterative, so deep graphs do not hit the recursion limit.
    A node for which ``stop`` is true is listed but not entered: what lies below it is left out
    (a rewrite walks only the part of a graph it has not finished yet).
    """
    order: list[Expr] = []
    done: set[int] = set()
    for root in outputs:
        if id(root) in done:
            continue
        stack: list[tuple[Expr, int]] = [(root, 0)]
        while stack:
            node, i = stack.pop()
            if i == 0 and stop is not None and id(node) not in done and stop(node):
                done.add(id(node))
                order.append(node)
            elif i < len(node.inputs):
                stack.append((node, i + 1))
                child = node.inputs[i]
                if id(child) not in done:
                    stack.append((child, 0))
            elif id(node) not in done:
                done.add(id(node))
                order.append(node)
    return order


def schedule(outputs: Sequence[Expr]) -> list[Expr]:
    """A topological order for printing: at each node, the input with the larger subgraph first.

    Emitting the deep operand first keeps each derivative rule's statements together (``x.T``
    comes right before ``x.T @ logits_bar`` instead of far above it). Deterministic: ties keep
    input order.
    """
    order = toposort(outputs)
    height: dict[int, int] = {}
    for node in order:
        height[id(node)] = 1 + max((height[id(i)] for i in node.inputs), default=0)
    result: list[Expr] = []
    done: set[int] = set()
    for root in outputs:
        if id(root) in done:
            continue
        # Each node's inputs still to visit, last first: popping from the end costs O(1) (a
        # concatenation of many inputs would make pop(0) quadratic).
        stack: list[tuple[Expr, list[Expr]]] = [(root, _deep_first(root, height)[::-1])]
        while stack:
            node, todo = stack[-1]
            while todo and id(todo[-1]) in done:
                todo.pop()
            if todo:
                child = todo.pop()
                stack.append((child, _deep_first(child, height)[::-1]))
            else:
                stack.pop()
                if id(node) not in done:
                    done.add(id(node))
                    result.append(node)
    return result


def _deep_first(node: Expr, height: dict[int, int]) -> list[Expr]:
    indexed = sorted(enumerate(node.inputs), key=lambda p: (-height[id(p[1])], p[0]))
    return [x for _, x in indexed]


def leaves(outputs: Iterable[Expr]) -> list[Expr]:
    """Placeholders and parameters the outputs depend on, in first-use order."""
    return [n for n in toposort(outputs) if n.op.is_leaf and n.op.name != "constant"]


# Filled in by symdl.ops at import time (ops need Expr; operators need ops).
_api: Any = None
