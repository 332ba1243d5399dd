"""Tensors whose shape is known only when fed: TensorFlow's run-time shape inference for symdl.

symdl needs every tensor's rank and sizes when a node is built, but TensorFlow programs write
``tf.placeholder(tf.float32)`` (no shape) or ``[None, None]`` and let the feed decide. A
placeholder like that is a `DeferredPlaceholder`, and anything computed from it is a `Deferred`:
the call that makes it (function, arguments), recorded instead of run. `Session.run` looks at the
shapes fed to the deferred placeholders, *lowers* the recorded calls to ordinary symdl expressions
for that fed-shape signature (`lower`), and caches the result and its generated module per
signature, which is what TensorFlow's shape inference does at run time.

A tinyflow program can also create variables whose shape is unknown until the input's is
(``tf.nn.linear(x, num_hidden=100)``): a `DeferredVariable` is bound to a real variable the
first time a lowering (or ``tf.infer_variable_shapes``) fixes its shape.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from ..errors import ShapeError, SymdlError
from ..ir import Expr

F = TypeVar("F", bound=Callable[..., Any])


class Deferred:
    """A tensor (or operation) of `symdl.tf` computed from a placeholder of unknown shape.

    It records ``fn(*args, **kwargs)``; `lower` runs the call once the fed shapes are known.
    Operators build more deferred tensors, so ``x + y`` and ``10 - x`` work as with tensors.
    """

    # numpy must hand `ndarray * deferred` to Deferred.__rmul__, not build an object array.
    __array_ufunc__ = None

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...] = (),
                 kwargs: Mapping[str, Any] | None = None, label: str | None = None) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = dict(kwargs or {})
        self.label = label or getattr(fn, "__name__", "op")

    def __repr__(self) -> str:
        return f"<tf.Tensor {self.label!r} shape=<unknown until fed>>"

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        raise TypeError(
            "a symbolic tensor has no truth value; use tf.where(cond, a, b) for a choice"
        )

    # ----------------------------------------------------------------- running

    def eval(self, feed_dict: Mapping[Any, Any] | None = None, session: Any = None) -> Any:
        """The value in ``session`` (default: the default session), as ``Tensor.eval``."""
        from .session import run_in_default_session

        return run_in_default_session(self, feed_dict, session)

    def run(self, feed_dict: Mapping[Any, Any] | None = None, session: Any = None) -> None:
        """Run this (deferred) operation in ``session`` or the default one, as
        ``Operation.run``."""
        from .session import run_in_default_session

        run_in_default_session(self, feed_dict, session)

    # ----------------------------------------------------------------- operators

    def __add__(self, other: object) -> Deferred:
        return Deferred(operator.add, (self, other), label="add")

    def __radd__(self, other: object) -> Deferred:
        return Deferred(operator.add, (other, self), label="add")

    def __sub__(self, other: object) -> Deferred:
        return Deferred(operator.sub, (self, other), label="sub")

    def __rsub__(self, other: object) -> Deferred:
        return Deferred(operator.sub, (other, self), label="sub")

    def __mul__(self, other: object) -> Deferred:
        return Deferred(operator.mul, (self, other), label="mul")

    def __rmul__(self, other: object) -> Deferred:
        return Deferred(operator.mul, (other, self), label="mul")

    def __truediv__(self, other: object) -> Deferred:
        return Deferred(operator.truediv, (self, other), label="truediv")

    def __rtruediv__(self, other: object) -> Deferred:
        return Deferred(operator.truediv, (other, self), label="truediv")

    def __pow__(self, other: object) -> Deferred:
        return Deferred(operator.pow, (self, other), label="pow")

    def __rpow__(self, other: object) -> Deferred:
        return Deferred(operator.pow, (other, self), label="pow")

    def __matmul__(self, other: object) -> Deferred:
        return Deferred(operator.matmul, (self, other), label="matmul")

    def __rmatmul__(self, other: object) -> Deferred:
        return Deferred(operator.matmul, (other, self), label="matmul")

    def __neg__(self) -> Deferred:
        return Deferred(operator.neg, (self,), label="neg")

    def __abs__(self) -> Deferred:
        return Deferred(operator.abs, (self,), label="abs")

    def __lt__(self, other: object) -> Deferred:
        return Deferred(operator.lt, (self, other), label="less")

    def __le__(self, other: object) -> Deferred:
        return Deferred(operator.le, (self, other), label="less_equal")

    def __gt__(self, other: object) -> Deferred:
        return Deferred(operator.gt, (self, other), label="greater")

    def __ge__(self, other: object) -> Deferred:
        return Deferred(operator.ge, (self, other), label="greater_equal")

    def __getitem__(self, index: object) -> Deferred:
        return Deferred(operator.getitem, (self, index), label="getitem")


class DeferredPlaceholder(Deferred):
    """A placeholder of unknown rank (``shape=None``) or with unknown sizes past the batch axis.

    ``shape`` is None or a tuple of ints and Nones; the feed must agree with the known parts.
    """

    def __init__(self, name: str, dtype: str, shape: tuple[int | None, ...] | None) -> None:
        super().__init__(_leaf, (), label=name)
        self.name = name
        self.dtype = dtype
        self.shape = shape

    def __repr__(self) -> str:
        shape = "<unknown>" if self.shape is None else self.shape
        return f"<tf.placeholder {self.name!r} {self.dtype} shape={shape}>"


class DeferredVariable(Deferred):
    """A variable whose shape becomes known from its input (tinyflow's auto-shaped layers).

    `bind` creates the real variable (a symdl parameter leaf) once; it has no initial value, so
    the initializers skip it and a `tf.assign` initializes it.
    """

    def __init__(self, name: str, dtype: str, trainable: bool = True) -> None:
        super().__init__(_leaf, (), label=name)
        self.name = name
        self.dtype = dtype
        self.trainable = trainable
        self.leaf: Expr | None = None

    def __repr__(self) -> str:
        shape = "<unknown>" if self.leaf is None else self.leaf.shape
        return f"<tf.Variable {self.name!r} {self.dtype} shape={shape}>"

    @property
    def shape(self) -> tuple[int, ...] | None:
        """The bound shape, or None before a feed or `infer_variable_shapes` fixes it."""
        return None if self.leaf is None else self.leaf.shape  # type: ignore[return-value]

    def bind(self, shape: tuple[int, ...]) -> Expr:
        """The real variable of this shape (made on the first call; later calls must agree)."""
        from .graph import bind_deferred_variable

        if self.leaf is None:
            self.leaf = bind_deferred_variable(self, tuple(shape))
        elif self.leaf.shape != tuple(shape):
            raise ShapeError(
                f"variable {self.name!r} was given shape {self.leaf.shape} before, and now "
                f"{tuple(shape)}: one variable has one shape; feed inputs of the same "
                "feature size"
            )
        return self.leaf


def _leaf() -> None:
    raise AssertionError("deferred leaves are lowered by `lower`, never called")


# --------------------------------------------------------------------------- recording


def has_deferred(value: object) -> bool:
    """True when ``value`` is, or a list, tuple or dict directly holds, a `Deferred`."""
    if isinstance(value, Deferred):
        return True
    if isinstance(value, (list, tuple)):
        return any(isinstance(v, Deferred) or (isinstance(v, (list, tuple)) and has_deferred(v))
                   for v in value)
    if isinstance(value, Mapping):
        return any(isinstance(v, Deferred) for v in value.values())
    return False


def deferrable(fn: F) -> F:
    """Make ``fn`` record itself as a `Deferred` when an argument is deferred, else run it."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if has_deferred(args) or has_deferred(tuple(kwargs.values())):
            return Deferred(fn, args, kwargs)
        return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _pick(values: Any, index: int) -> Any:
    return values[index]


def split_deferred(whole: Deferred, count: int) -> list[Deferred]:
    """``count`` deferred items of a deferred call that returns a sequence (tf.gradients)."""
    return [Deferred(_pick, (whole, i), label=f"{whole.label}[{i}]") for i in range(count)]


# --------------------------------------------------------------------------- lowering


def _children(value: Any) -> list[Deferred]:
    """The deferred values directly inside ``value`` (an argument: nested lists allowed)."""
    found: list[Deferred] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, Deferred):
            found.append(item)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, Mapping):
            stack.extend(item.values())
    return found


def _substitute(value: Any, done: Mapping[Deferred, Any]) -> Any:
    """``value`` with every deferred item replaced by its lowered value."""
    if isinstance(value, Deferred):
        return done[value]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*(_substitute(v, done) for v in value))
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, done) for v in value)
    if isinstance(value, dict):
        return {k: _substitute(v, done) for k, v in value.items()}
    return value


def deferred_leaves(roots: list[Any]) -> list[Deferred]:
    """The deferred placeholders and variables ``roots`` depend on, in first-seen order."""
    seen: set[int] = set()
    out: list[Deferred] = []
    stack = [d for r in roots for d in _children(r)]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, (DeferredPlaceholder, DeferredVariable)):
            out.append(node)
        else:
            stack.extend(_children(list(node.args) + list(node.kwargs.values())))
    return out


def lower(roots: list[Any], leaves: Mapping[Deferred, Any],
          done: dict[Deferred, Any], shapes_text: str) -> list[Any]:
    """``roots`` with every `Deferred` lowered, in an explicit post-order (no recursion).

    ``leaves`` gives the lowered placeholders (symdl placeholders of the fed shapes); ``done``
    is the memo of one fed-shape signature, kept by the session so that lowering the same
    signature again returns the very same expressions and operations. A shape error while
    lowering is raised again naming the fed placeholders and their shapes (``shapes_text``).
    """
    for leaf, value in leaves.items():
        done.setdefault(leaf, value)
    stack: list[tuple[Deferred, bool]] = [(d, False) for r in roots for d in _children(r)]
    while stack:
        node, expanded = stack.pop()
        if node in done:
            continue
        if isinstance(node, DeferredVariable):
            if node.leaf is None:
                raise ShapeError(
                    f"variable {node.name!r} has no shape yet: it is made by a layer whose "
                    "input shape is unknown; run tf.infer_variable_shapes(loss, feed_dict="
                    "{placeholder: shape}) and assign it, or feed the input first"
                )
            done[node] = node.leaf
            continue
        if isinstance(node, DeferredPlaceholder):
            raise ShapeError(f"placeholder {node.name!r} was not fed; lowering needs its shape")
        if not expanded:
            stack.append((node, True))
            args = list(node.args) + list(node.kwargs.values())
            stack.extend((c, False) for c in _children(args) if c not in done)
            continue
        args = _substitute(node.args, done)
        kwargs = {k: _substitute(v, done) for k, v in node.kwargs.items()}
        try:
            done[node] = node.fn(*args, **kwargs)
        except SymdlError as exc:
            raise type(exc)(
                f"{exc} (while building {node.label!r} for the fed shapes {shapes_text})"
            ) from exc
    return [_substitute(r, done) for r in roots]


__all__ = [
    "Deferred", "DeferredPlaceholder", "DeferredVariable", "deferrable", "deferred_leaves",
    "has_deferred", "lower", "split_deferred",
]
