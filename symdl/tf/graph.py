"""The default graph: which leaves are variables, their initial values, and unique names.

Tensors of `symdl.tf` *are* symdl expressions: a placeholder is a symdl placeholder leaf and a
`Variable` is a symdl parameter leaf. What a leaf cannot hold (a variable's initial value, whether
it is trainable, the optimizer's hidden slot variables) lives in the `Graph` registry here. Names
are made unique per graph the way TensorFlow does (``Variable``, ``Variable_1``), because symdl
leaves with equal name, shape and dtype are the same node.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import ops as _ops_pkg  # noqa: F401 - makes sure the op table is filled
from ..errors import ShapeError
from ..ir import Expr
from ..ops import api as sd
from ..types import format_shape
from .dtypes import DType, as_dtype


@dataclass
class VariableInfo:
    """What the graph knows about one variable leaf."""

    leaf: Expr
    initial: Expr  # an expression of constants and other variables, evaluated at initialization
    trainable: bool


class Graph:
    """A registry of the variables and names built since the last `reset_default_graph`."""

    def __init__(self) -> None:
        self.variables: dict[Expr, VariableInfo] = {}
        self.placeholders: list[Expr] = []
        self._names: set[str] = set()
        self.seed: int | None = None
        self._op_seed = 0

    def unique_name(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``, ... if the graph already has it."""
        candidate, i = name, 0
        while candidate in self._names:
            i += 1
            candidate = f"{name}_{i}"
        self._names.add(candidate)
        return candidate

    def rng(self, seed: int | None) -> np.random.Generator:
        """The generator for one random initializer: op seed, else graph seed and a counter."""
        if seed is not None:
            return np.random.default_rng(seed)
        if self.seed is None:
            return np.random.default_rng()
        self._op_seed += 1
        return np.random.default_rng([self.seed, self._op_seed])

    def add_variable(self, leaf: Expr, initial: Expr, trainable: bool) -> Expr:
        self.variables[leaf] = VariableInfo(leaf, initial, trainable)
        return leaf

    def is_variable(self, x: object) -> bool:
        """True for a variable leaf of this graph."""
        return isinstance(x, Expr) and x in self.variables


_default = Graph()


def get_default_graph() -> Graph:
    """The graph that placeholders, variables and optimizers register with."""
    return _default


def reset_default_graph() -> None:
    """Start a new, empty default graph (sessions made before keep the old one)."""
    global _default
    _default = Graph()


def set_random_seed(seed: int) -> None:
    """Graph-level seed: random initializers without their own seed become reproducible."""
    _default.seed = int(seed)
    _default._op_seed = 0


# --------------------------------------------------------------------------- leaves


def _shape_text(shape: object) -> object:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(shape)  # type: ignore[arg-type]


def placeholder(dtype: object, shape: object = None, name: str | None = None) -> Expr:
    """Data fed at run time; ``None`` entries of ``shape`` are the batch size.

    symdl needs every tensor's rank: ``shape=None`` gives a scalar (the usual use of a shapeless
    placeholder: a learning rate or a keep probability); give a shape for anything else. All
    ``None`` entries share one batch size ``N``, checked when fed.
    """
    leaf = sd.placeholder(
        _default.unique_name(name or "Placeholder"), _shape_text(shape), as_dtype(dtype)
    )
    _default.placeholders.append(leaf)
    return leaf


def _initial_expr(value: object, dtype: DType | None) -> Expr:
    if isinstance(value, Expr):
        if value.op.name == "placeholder":
            raise ShapeError(
                f"Variable: the initial value cannot depend on a placeholder ({value.name!r}); "
                "initialize from constants, random values or other variables"
            )
        return value if dtype is None or value.dtype == dtype else sd.cast(value, dtype)
    array = np.asarray(value)
    if dtype is None:
        # TensorFlow's defaults: Python floats are float32, Python ints int32; arrays keep theirs.
        if not isinstance(value, np.ndarray):
            dtype = {"f": as_dtype("float32"), "i": as_dtype("int32"), "u": as_dtype("int32"),
                     "b": as_dtype("bool")}.get(array.dtype.kind)
    return sd.constant(array if dtype is None else array.astype(dtype))


def Variable(  # noqa: N802 - TensorFlow's name
    initial_value: object,
    name: str | None = None,
    trainable: bool = True,
    dtype: object = None,
) -> Expr:
    """A trainable array whose value lives in each `Session`, set by the initializer.

    ``initial_value`` is an array, a number, or a tensor of constants (``tf.zeros``,
    ``tf.random_normal``) or of other variables. The result is a tensor (a symdl parameter leaf)
    usable in expressions, `assign` and optimizers.
    """
    init = _initial_expr(initial_value, None if dtype is None else as_dtype(dtype))
    for d in init.shape:
        if not isinstance(d, int):
            raise ShapeError(
                "Variable: the initial value must have a static shape, got "
                f"{format_shape(init.shape)}"
            )
    leaf = sd.parameter(_default.unique_name(name or "Variable"), init.shape, init.dtype)
    return _default.add_variable(leaf, init, bool(trainable))


def hidden_variable(name: str, initial: Expr) -> Expr:
    """An optimizer slot (Adam's moments, a momentum accumulator): a non-trainable variable."""
    leaf = sd.parameter(_default.unique_name(name), initial.shape, initial.dtype)
    return _default.add_variable(leaf, initial, False)


def global_variables() -> list[Expr]:
    """Every variable of the default graph, in creation order (optimizer slots included)."""
    return list(_default.variables)


def trainable_variables() -> list[Expr]:
    """The variables created with ``trainable=True``, in creation order."""
    return [v for v, info in _default.variables.items() if info.trainable]


# --------------------------------------------------------------------------- operations


@dataclass(eq=False)
class Operation:
    """Something `Session.run` executes for its effect: assignments, a training step, a group.

    ``updates`` maps variable leaves to their new values (all computed from the values before the
    run); ``value`` is what fetching the operation returns (`assign` returns the new value,
    groups and training steps return None). ``initialize`` lists variables to (re)initialize.
    """

    name: str
    updates: Mapping[Expr, Expr] = field(default_factory=dict)
    value: Expr | None = None
    initialize: Sequence[Expr] = ()

    def __repr__(self) -> str:
        return f"<tf.Operation {self.name!r}>"


__all__ = [
    "Graph", "Operation", "Variable", "get_default_graph", "global_variables", "placeholder",
    "reset_default_graph", "set_random_seed", "trainable_variables",
]
