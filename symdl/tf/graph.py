"""The default graph: which leaves are variables, their initial values, and unique names.

Tensors of `symdl.tf` *are* symdl expressions: a placeholder is a symdl placeholder leaf and a
`Variable` is a symdl parameter leaf. What a leaf cannot hold (a variable's initial value, whether
it is trainable, the optimizer's hidden slot variables) lives in the `Graph` registry here. Names
are made unique per graph the way TensorFlow does (``Variable``, ``Variable_1``), because symdl
leaves with equal name, shape and dtype are the same node.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import ops as _ops_pkg  # noqa: F401 - makes sure the op table is filled
from ..errors import ShapeError
from ..ir import Expr
from ..ops import api as sd
from ..types import format_shape
from .deferred import DeferredPlaceholder, DeferredVariable
from .dtypes import DType, as_dtype


@dataclass
class VariableInfo:
    """What the graph knows about one variable leaf."""

    leaf: Expr
    # An expression of constants and other variables, evaluated at initialization; None for a
    # tinyflow auto-shaped variable, which only `tf.assign` initializes.
    initial: Expr | None
    trainable: bool
    slot: bool = False  # an optimizer's accumulator: initialized on first use if need be


class Graph:
    """A registry of the variables and names built since the last `reset_default_graph`."""

    def __init__(self) -> None:
        self.variables: dict[Expr, VariableInfo] = {}
        self.placeholders: list[Expr] = []
        self._names: set[str] = set()
        self.seed: int | None = None
        self._op_seed = 0
        # The seed of each generator argument random ops draw from (None: fresh entropy).
        self.generator_seeds: dict[Expr, list[int] | None] = {}
        self.scopes: list[str] = []  # the open name scopes, outermost first
        self.variable_scopes: list[VariableScope] = []
        self.store: dict[str, Expr] = {}  # get_variable's variables by full name
        self.collections: dict[str, list[Any]] = {}
        self.deferred_variables: list[DeferredVariable] = []

    def scoped(self, name: str) -> str:
        """``name`` inside the open name scopes: ``layer1/weights``."""
        return "/".join([*self.scopes, name])

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Graph]:
        """Make this the default graph inside a ``with`` block (``tf.Graph().as_default()``)."""
        global _default
        previous, _default = _default, self
        try:
            yield self
        finally:
            _default = previous

    def add_to_collection(self, name: str, value: Any) -> None:
        """Append ``value`` to the named collection (summaries, ...)."""
        self.collections.setdefault(name, []).append(value)

    def get_collection(self, name: str) -> list[Any]:
        """The named collection's values, in the order they were added."""
        return list(self.collections.get(name, []))

    def unique_name(self, name: str) -> str:
        """``name``, or ``name_1``, ``name_2``, ... if the graph already has it."""
        candidate, i = name, 0
        while candidate in self._names:
            i += 1
            candidate = f"{name}_{i}"
        self._names.add(candidate)
        return candidate

    def rng_leaf(self, seed: int | None) -> Expr:
        """The generator argument (an `sd.rng` leaf) one random op draws from on every run.

        As in TensorFlow: without an op seed or a graph seed every op draws from the session's
        one generator, seeded from fresh entropy; with either, the op gets a generator of its
        own, seeded from (graph seed, op seed or a per-graph counter), so a new session
        repeats its numbers.
        """
        if seed is None and self.seed is None:
            leaf = sd.rng("rng")
            self.generator_seeds[leaf] = None
            return leaf
        self._op_seed += 1
        # Named by a count that set_random_seed does not reset, so no two ops share a leaf.
        leaf = sd.rng(f"rng_{len(self.generator_seeds) + 1}")
        if self.seed is None:
            self.generator_seeds[leaf] = [int(seed)]  # type: ignore[arg-type]
        else:
            self.generator_seeds[leaf] = [self.seed, self._op_seed if seed is None else int(seed)]
        return leaf

    def add_variable(self, leaf: Expr, initial: Expr | None, trainable: bool,
                     slot: bool = False) -> Expr:
        """Register a variable leaf with its initial value."""
        self.variables[leaf] = VariableInfo(leaf, initial, trainable, slot)
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
    """Graph-level seed: random ops (and initializers) made after it without a seed of their own
    become reproducible; ops made before keep theirs, as in TensorFlow."""
    _default.seed = int(seed)
    _default._op_seed = 0


# --------------------------------------------------------------------------- leaves


def _shape_text(shape: object) -> object:
    if shape is None:
        return ()
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(shape)  # type: ignore[arg-type]


def placeholder(dtype: object, shape: object = None,
                name: str | None = None) -> Expr | DeferredPlaceholder:
    """Data fed at run time.

    With a fully known shape, or ``None`` only as the first (batch) entry, this is a symdl
    placeholder: all leading ``None`` entries share one batch size ``N``, checked when fed.
    Without a shape (``shape=None``) or with other unknown sizes (``[None, None]``), the
    placeholder takes its shape from the feed, as in TensorFlow: the tensors computed from it
    are built per fed-shape signature when the session runs (see `symdl.tf.deferred`).
    """
    full = _default.unique_name(_default.scoped(name or "Placeholder"))
    dt = as_dtype(dtype)
    if shape is None:
        return DeferredPlaceholder(full, str(dt), None)
    dims = _shape_text(shape)
    if any(d is None for d in dims[1:]):  # type: ignore[index]
        return DeferredPlaceholder(full, str(dt), tuple(dims))  # type: ignore[arg-type]
    leaf = sd.placeholder(full, dims, dt)
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
    leaf = sd.parameter(_default.unique_name(_default.scoped(name or "Variable")), init.shape,
                        init.dtype)
    return _default.add_variable(leaf, init, bool(trainable))


def hidden_variable(name: str, initial: Expr) -> Expr:
    """An optimizer slot (Adam's moments, a momentum accumulator): a non-trainable variable.

    Slots of a step built lazily (from a placeholder of unknown shape) appear after the
    program ran ``global_variables_initializer``, so a slot never read before is initialized
    from ``initial`` on first use.
    """
    leaf = sd.parameter(_default.unique_name(name), initial.shape, initial.dtype)
    return _default.add_variable(leaf, initial, False, slot=True)


def deferred_variable(name: str, dtype: object = "float32",
                      trainable: bool = True) -> DeferredVariable:
    """A variable whose shape a later feed fixes (tinyflow's auto-shaped layers)."""
    var = DeferredVariable(_default.unique_name(_default.scoped(name)), str(as_dtype(dtype)),
                           trainable)
    var.graph = _default  # type: ignore[attr-defined]
    _default.deferred_variables.append(var)
    return var


def bind_deferred_variable(var: DeferredVariable, shape: tuple[int, ...]) -> Expr:
    """The parameter leaf behind ``var``, registered in the graph ``var`` was made in."""
    graph: Graph = getattr(var, "graph", _default)
    leaf = sd.parameter(var.name, shape, var.dtype)
    return graph.add_variable(leaf, None, var.trainable)


# --------------------------------------------------------------------------- scopes


@contextlib.contextmanager
def name_scope(name: str | None, default_name: str | None = None,
               values: object = None) -> Iterator[str]:
    """Prefix the names of placeholders and variables made inside: ``hidden1/weights``.

    The generated code shows them with ``_`` for ``/`` (``hidden1_weights``). A scope opened
    twice gets TensorFlow's suffix (``hidden1_1``).
    """
    graph = _default
    base = name if name else default_name
    if not base:
        yield "/".join(graph.scopes)
        return
    base = base.rstrip("/")
    unique = graph.unique_name(graph.scoped(base)).rsplit("/", 1)[-1]
    graph.scopes.append(unique)
    try:
        yield "/".join(graph.scopes) + "/"
    finally:
        graph.scopes.pop()


AUTO_REUSE = "auto_reuse"  # tf.AUTO_REUSE: get the variable if it exists, else create it


@dataclass
class VariableScope:
    """One open ``tf.variable_scope``: its name, ``reuse`` (False, True or `AUTO_REUSE`) and
    default initializer."""

    name: str
    reuse: bool | str
    initializer: Callable[..., Any] | None = None


@contextlib.contextmanager
def variable_scope(name_or_scope: str | VariableScope | None, default_name: str | None = None,
                   values: object = None, initializer: Callable[..., Any] | None = None,
                   reuse: bool | str | None = None,
                   **_ignored: object) -> Iterator[VariableScope]:
    """A scope for `get_variable` names (and, like TensorFlow, a name scope of the same name).

    ``reuse=True`` makes `get_variable` return existing variables (and refuse new ones);
    ``reuse=tf.AUTO_REUSE`` returns them if they exist, else creates them. Inner scopes inherit
    the flag.
    """
    graph = _default
    outer = graph.variable_scopes[-1] if graph.variable_scopes else None
    if isinstance(name_or_scope, VariableScope):
        base = name_or_scope.name.rsplit("/", 1)[-1]
        if reuse is None:
            reuse = name_or_scope.reuse
    else:
        base = name_or_scope or default_name or "scope"
    prefix = f"{outer.name}/{base}" if outer else base
    if reuse is None or reuse is False:
        reuse = outer.reuse if outer else False
    scope = VariableScope(
        prefix, reuse,
        initializer if initializer is not None else (outer.initializer if outer else None),
    )
    graph.variable_scopes.append(scope)
    graph.scopes.append(base)
    try:
        yield scope
    finally:
        graph.scopes.pop()
        graph.variable_scopes.pop()


def get_variable_scope() -> VariableScope:
    """The innermost open variable scope (the root scope, named "", outside any)."""
    graph = _default
    return graph.variable_scopes[-1] if graph.variable_scopes else VariableScope("", False)


def get_variable(name: str, shape: object = None, dtype: object = None,
                 initializer: object = None, regularizer: object = None,
                 trainable: bool = True, **_ignored: object) -> Expr:
    """The variable ``<variable scope>/name``: made on first use, shared under ``reuse``.

    ``initializer`` is an initializer object (``tf.zeros_initializer()``,
    ``tf.truncated_normal_initializer(stddev=0.1)``), an array, or a tensor; the default is
    TensorFlow's, ``glorot_uniform_initializer``.
    """
    from .init_ops import glorot_uniform_initializer

    graph = _default
    scope = get_variable_scope()
    full = f"{scope.name}/{name}" if scope.name else name
    existing = graph.store.get(full)
    if existing is not None:
        if scope.reuse is False:
            raise ValueError(
                f"Variable {full} already exists, disallowed. Did you mean to set reuse=True "
                "or reuse=tf.AUTO_REUSE in VarScope?"
            )
        if shape is not None and tuple(_shape_text(shape)) != existing.shape:  # type: ignore[arg-type]
            raise ValueError(
                f"Trying to share variable {full}, but specified shape "
                f"{tuple(_shape_text(shape))} and found shape {existing.shape}."  # type: ignore[arg-type]
            )
        return existing
    if scope.reuse is True:
        raise ValueError(
            f"Variable {full} does not exist, or was not created with tf.get_variable(). "
            "Did you mean to set reuse=tf.AUTO_REUSE in VarScope?"
        )
    init = initializer if initializer is not None else scope.initializer
    dt = as_dtype(dtype) if dtype is not None else as_dtype("float32")
    if init is None:
        init = glorot_uniform_initializer()
    if callable(init) and not isinstance(init, Expr):
        if shape is None:
            raise ShapeError(f"get_variable: {full!r} needs a shape for its initializer")
        value = init(tuple(int(d) for d in _shape_text(shape)), dt)  # type: ignore[union-attr]
    else:
        value = init
    initial = _initial_expr(value, dt)
    leaf = sd.parameter(graph.unique_name(full), initial.shape, initial.dtype)
    graph.add_variable(leaf, initial, bool(trainable))
    graph.store[full] = leaf
    return leaf


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

    def run(self, feed_dict: Mapping[Any, Any] | None = None, session: Any = None) -> None:
        """Run this operation in ``session`` (default: the default session), as
        ``Operation.run`` does."""
        from .session import run_in_default_session

        run_in_default_session(self, feed_dict, session)


__all__ = [
    "AUTO_REUSE", "Graph", "Operation", "Variable", "VariableScope", "deferred_variable",
    "get_default_graph", "get_variable", "get_variable_scope", "global_variables",
    "name_scope", "placeholder", "reset_default_graph", "set_random_seed",
    "trainable_variables", "variable_scope",
]
