"""`Session`: runs fetches by generating, importing and calling one numpy function per fetch set.

The first ``run`` of a set of fetches collects the tensors to compute and the variable updates to
apply (from `assign`, `group` and training operations), and compiles them with `symdl.compile`
into one function ``run(placeholders..., variables...)``: straight-line numpy that computes the
fetched values, the gradients they need and the new variable values, then writes the new values
into the session's arrays in place. Later runs of the same fetches reuse that function, and
`Session.source` returns its code.

Semantics worth knowing (as in TensorFlow, made deterministic):

- Every value of one run sees the variables as they were *before* the run: fetching ``W``
  together with a training step returns the old ``W``; all updates are applied at the end.
- Initializer operations run first, before anything else in the same ``run``.
- Feeds are converted to the placeholder's dtype when no information is lost in kind: any number
  to a float placeholder (float64 data is rounded to float32, as TensorFlow does), integers or
  bools to an integer placeholder if every value fits, bools to a bool placeholder. Floats are
  never fed to integer placeholders. Shapes must match exactly; all ``None`` dimensions (the
  batch size ``N``) must agree across the placeholders of one run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..ir import Expr, leaves
from ..ops import api as sd
from ..types import format_shape
from .deferred import (
    Deferred,
    DeferredPlaceholder,
    DeferredVariable,
    deferred_leaves,
    lower,
)
from .errors import FailedPreconditionError, InvalidArgumentError
from .graph import Graph, Operation, get_default_graph
from .ops import merge_updates

Fetch = Any  # a tensor, an Operation, or a list / tuple / dict of fetches
Placeholder = Expr | DeferredPlaceholder


@dataclass
class _Plan:
    """What one set of fetches needs: the compiled function and how to call it."""

    module: ModuleType | None
    placeholders: list[Expr]
    variables: list[Expr]
    outputs: list[Expr]  # computed by the generated function, in its return order
    snapshots: list[Expr]  # variables fetched as they are: copied from the state before the run
    initialize: list[Expr] = field(default_factory=list)
    fed: list[Expr] = field(default_factory=list)  # placeholders fetched: their fed value
    write_only: list[Expr] = field(default_factory=list)  # assigned, never read
    updated: list[Expr] = field(default_factory=list)
    generators: list[Expr] = field(default_factory=list)  # rng leaves: the last arguments


def _flatten(fetches: Fetch, flat: list[Any]) -> Callable[[dict[int, Any]], Any]:
    """Append the fetch leaves to ``flat``; return a function rebuilding the structure."""
    from .summary import MergedSummary

    if isinstance(fetches, (Expr, Operation, Deferred)):
        index = len(flat)
        flat.append(fetches)
        return lambda values: values[index]
    if isinstance(fetches, MergedSummary):
        parts = [_flatten(t, flat) for t in fetches.tensors]
        return lambda values: fetches.value([rebuild(values) for rebuild in parts])
    if isinstance(fetches, Mapping):
        items = [(key, _flatten(value, flat)) for key, value in fetches.items()]
        kind = type(fetches)
        return lambda values: kind((key, rebuild(values)) for key, rebuild in items)
    if isinstance(fetches, (list, tuple)):
        parts = [_flatten(value, flat) for value in fetches]
        if isinstance(fetches, tuple) and hasattr(fetches, "_fields"):  # a namedtuple
            kind = type(fetches)
            return lambda values: kind(*(rebuild(values) for rebuild in parts))
        kind = type(fetches)
        return lambda values: kind(rebuild(values) for rebuild in parts)
    raise InvalidArgumentError(
        f"Session.run: cannot fetch {fetches!r} ({type(fetches).__name__}); fetch tensors, "
        "operations, or lists, tuples and dicts of them"
    )


def _describe(leaf: Expr | DeferredPlaceholder | DeferredVariable) -> str:
    if isinstance(leaf, DeferredPlaceholder):
        shape = "unknown shape" if leaf.shape is None else format_shape(leaf.shape)
        return f"placeholder {leaf.name!r} ({leaf.dtype} {shape})"
    if isinstance(leaf, DeferredVariable):
        return f"variable {leaf.name!r} ({leaf.dtype})"
    return f"{leaf.op.name} {leaf.name!r} ({leaf.dtype} {format_shape(leaf.shape)})"


# --------------------------------------------------------------------------- default session

_default_sessions: list[Session] = []


def get_default_session() -> Session | None:
    """The innermost session of a ``with sess:`` block or `InteractiveSession`, else None."""
    return _default_sessions[-1] if _default_sessions else None


def run_in_default_session(fetches: Fetch, feed_dict: Mapping[Any, Any] | None,
                           session: Session | None) -> Any:
    """``Tensor.eval`` and ``Operation.run``: run in ``session``, the default session, or the
    default graph's own session."""
    sess = session or get_default_session()
    if sess is None:
        graph = get_default_graph()
        sess = getattr(graph, "own_session", None)
        if sess is None or sess._closed:
            sess = Session(graph)
            graph.own_session = sess  # type: ignore[attr-defined]
    return sess.run(fetches, feed_dict)


def _tensor_eval(self: Expr, feed_dict: Mapping[Any, Any] | None = None,
                 session: Session | None = None) -> Any:
    """The value of this tensor in ``session`` (default: the default session), as TF's
    ``Tensor.eval``."""
    return run_in_default_session(self, feed_dict, session)


# TensorFlow's ``Tensor.eval`` is a method of the tensor, and symdl.tf's tensors are the core's
# expressions; the core must not import this layer, so the method is attached here, once.
Expr.eval = _tensor_eval  # type: ignore[attr-defined]


class Session:
    """Runs a graph's fetches with generated numpy code; variables keep their values in it.

    ``target`` and ``config`` are accepted and ignored (one process, numpy), so
    ``tf.Session(config=...)`` and tinyflow's ``tf.Session(config='gpu')`` run. ``cache_dir``
    is where the generated modules are written (default: symdl's cache). Usable as a context
    manager (``with tf.Session() as sess:``), which also makes it the default session.
    """

    def __init__(self, target: str | Graph = "", graph: Graph | None = None,
                 config: object = None, *,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        if isinstance(target, Graph):
            graph = target
        self.graph = graph if graph is not None else get_default_graph()
        self.cache_dir = cache_dir
        self._state: dict[Expr, np.ndarray] = {}
        self._plans: dict[tuple[Expr | Operation, ...], _Plan] = {}
        self._lowered: dict[tuple[Any, ...], dict[Deferred, Any]] = {}
        self._deferred_leaves: dict[tuple[Any, ...], list[Deferred]] = {}
        self._generators: dict[Expr, np.random.Generator] = {}
        self._closed = False

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> Session:
        _default_sessions.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if _default_sessions and _default_sessions[-1] is self:
            _default_sessions.pop()
        self.close()

    @contextlib.contextmanager
    def as_default(self) -> Iterator[Session]:
        """Make this the default session inside a ``with`` block (it stays open after)."""
        _default_sessions.append(self)
        try:
            yield self
        finally:
            _default_sessions.remove(self)

    def close(self) -> None:
        """Free the variables' values; later runs raise."""
        self._state.clear()
        self._plans.clear()
        self._lowered.clear()
        self._generators.clear()
        self._closed = True

    # ----------------------------------------------------------------- public

    def run(self, fetches: Fetch, feed_dict: Mapping[Any, Any] | None = None,
            options: object = None, run_metadata: object = None) -> Any:
        """Compute ``fetches`` (a tensor, an operation, or a list, tuple or dict of them).

        Returns numpy values in the same structure; operations give None, except `assign`
        and friends, which give the variable's new value.
        """
        if self._closed:
            raise FailedPreconditionError("Session.run: the session is closed")
        flat: list[Any] = []
        rebuild = _flatten(fetches, flat)
        feeds = self._check_feeds(feed_dict or {})
        resolved = self._lower(flat, feeds)
        plan = self._plan(tuple(resolved))
        for var in plan.initialize:
            self._state[var] = self._initial_value(var)
        fed = self._feed(plan, feeds)
        current = {v: self._value_of(v, feeds, plan) for v in plan.variables}
        values: dict[Expr, Any] = {}
        for var in plan.snapshots:
            values[var] = np.array(current[var], copy=True)
        for ph in plan.fed:
            values[ph] = feeds[ph]
        results: tuple[Any, ...] = ()
        if plan.module is not None:
            results = plan.module.run(*fed, *(current[v] for v in plan.variables),
                                      *(self._generator(g) for g in plan.generators)) or ()
        for var in plan.updated:
            if var not in self._state or current[var] is not self._state[var]:
                # an assignment as initialization, or an update of a fed variable
                self._state[var] = current[var]
        for out, result in zip(plan.outputs, results, strict=True):
            values[out] = self._detach(result)
        answers: dict[int, Any] = {}
        for i, item in enumerate(resolved):
            if isinstance(item, Operation):
                answers[i] = None if item.value is None else values[item.value]
            else:
                answers[i] = values[item]
        return rebuild(answers)

    def source(self, fetches: Fetch, feed_dict: Mapping[Any, Any] | None = None) -> str:
        """The code of the generated module that `run` calls for these fetches ("" when the
        fetches only initialize variables or do nothing). Fetches built from placeholders of
        unknown shape need ``feed_dict`` (the shapes pick the module)."""
        flat: list[Any] = []
        _flatten(fetches, flat)
        resolved = self._lower(flat, self._check_feeds(feed_dict or {}))
        plan = self._plan(tuple(resolved))
        if plan.module is None or plan.module.__file__ is None:
            return ""
        return Path(plan.module.__file__).read_text(encoding="utf-8")

    # ----------------------------------------------------------------- lowering

    def _lower(self, flat: list[Any], feeds: dict[Any, np.ndarray]) -> list[Any]:
        """``flat`` with deferred tensors lowered for the fed shapes (``feeds`` gains the
        lowered placeholders as keys)."""
        if not any(isinstance(x, Deferred) for x in flat):
            return flat
        key = tuple(flat)
        found = self._deferred_leaves.get(key)
        if found is None:
            found = self._deferred_leaves[key] = deferred_leaves(flat)
        placeholders = [x for x in found if isinstance(x, DeferredPlaceholder)]
        for ph in placeholders:
            if ph not in feeds:
                raise InvalidArgumentError(
                    f"Session.run: you must feed a value for {_describe(ph)}: the fetches "
                    "depend on it; add it to feed_dict"
                )
        signature = tuple((ph.name, feeds[ph].shape) for ph in placeholders)
        memo = self._lowered.setdefault(signature, {})
        lowered = {ph: sd.placeholder(ph.name, feeds[ph].shape, ph.dtype) for ph in placeholders}
        text = ", ".join(f"{name!r}: {shape}" for name, shape in signature) or "(none)"
        with self.graph.as_default():
            out = lower(flat, lowered, memo, text)
        for ph in lowered:
            feeds[memo[ph]] = feeds[ph]
        for var in found:
            if isinstance(var, DeferredVariable) and var in feeds and var.leaf is not None:
                feeds[var.leaf] = self._convert_variable(var.leaf, feeds[var])
        return out

    # ----------------------------------------------------------------- planning

    def _plan(self, flat: tuple[Expr | Operation, ...]) -> _Plan:
        plan = self._plans.get(flat)
        if plan is None:
            plan = self._plans[flat] = self._make_plan(flat)
        return plan

    def _make_plan(self, flat: tuple[Expr | Operation, ...]) -> _Plan:
        from .. import compile as sd_compile

        for x in flat:
            if not isinstance(x, (Expr, Operation)):
                raise InvalidArgumentError(
                    f"Session.run: cannot fetch {x!r} ({type(x).__name__}); a gradient that "
                    "does not exist (None) or a value that is not a tensor"
                )
        ops = [x for x in flat if isinstance(x, Operation)]
        updates = merge_updates(ops)
        initialize = list(dict.fromkeys(v for op in ops for v in op.initialize))
        wanted = [x for x in flat if isinstance(x, Expr)]
        wanted += [op.value for op in ops if op.value is not None]
        wanted = list(dict.fromkeys(wanted))
        # A fetched variable is copied from the state before the run: the generated function
        # would return the very array its updates overwrite. A fetched placeholder is its feed.
        snapshots = [x for x in wanted if self.graph.is_variable(x)]
        fed = [x for x in wanted if x.op.name == "placeholder"]
        outputs = [x for x in wanted if not self.graph.is_variable(x)
                   and x.op.name != "placeholder"]
        graph_leaves = leaves([*outputs, *updates.values()])
        for leaf in [*graph_leaves, *snapshots, *updates]:
            if leaf.op.name == "parameter" and not self.graph.is_variable(leaf):
                raise InvalidArgumentError(
                    f"Session.run: {_describe(leaf)} is not a variable of this session's graph "
                    "(made before tf.reset_default_graph(), or with symdl's parameter directly)"
                )
        placeholders = [x for x in graph_leaves if x.op.name == "placeholder"]
        generators = [x for x in graph_leaves if x.op.name == "rng"]
        read = {id(x) for x in [*graph_leaves, *snapshots]}
        used = read | {id(x) for x in updates}
        variables = [v for v in self.graph.variables if id(v) in used]
        write_only = [v for v in updates if id(v) not in read]
        module = None
        if outputs or updates:
            module = sd_compile(
                {"run": ([*placeholders, *variables, *generators], outputs, updates)},
                name="tf_session", cache_dir=self.cache_dir,
            )
        return _Plan(module, placeholders, variables, outputs, snapshots, initialize, fed,
                     write_only, list(updates), generators)

    # ----------------------------------------------------------------- values

    def _initial_value(self, var: Expr) -> np.ndarray:
        """Evaluate a variable's initial value (constants, or other initialized variables)."""
        from .. import compile as sd_compile

        initial = self.graph.variables[var].initial
        if initial is None:
            raise FailedPreconditionError(
                f"variable {var.name!r} has no initial value; initialize it with tf.assign"
            )
        if initial.op.name == "constant":
            return np.array(initial.attr("value").array, dtype=var.dtype, copy=True)
        deps = leaves([initial])
        module = sd_compile({"run": (deps, [initial])}, name="tf_init", cache_dir=self.cache_dir)
        (value,) = module.run(*(self._generator(v) if v.op.name == "rng" else self._read(v)
                                for v in deps))
        return np.array(value, dtype=var.dtype, copy=True)

    def _generator(self, leaf: Expr) -> np.random.Generator:
        """The session's generator for an rng leaf, made on first use from the graph's seed
        for it (fresh entropy when it has none), so a new session repeats a seeded graph's
        numbers and every run draws new ones."""
        found = self._generators.get(leaf)
        if found is None:
            seed = self.graph.generator_seeds.get(leaf)
            found = self._generators[leaf] = np.random.default_rng(seed)
        return found

    def _read(self, var: Expr) -> np.ndarray:
        value = self._state.get(var)
        if value is None:
            info = self.graph.variables.get(var)
            if info is not None and info.slot and info.initial is not None:
                value = self._state[var] = self._initial_value(var)
                return value
            raise FailedPreconditionError(
                f"Session.run: attempting to use uninitialized variable {var.name!r} "
                f"({var.dtype} {format_shape(var.shape)}); run tf.global_variables_initializer() "
                "once, after creating every variable and optimizer"
            )
        return value

    def _value_of(self, var: Expr, feeds: Mapping[Any, np.ndarray], plan: _Plan) -> np.ndarray:
        """The array a run reads and updates for ``var``: a copy of its feed, a fresh buffer
        for a variable that is only assigned, or the session's array."""
        if var in feeds:
            return np.array(feeds[var], copy=True)
        if var not in self._state and var in plan.write_only:
            return np.zeros(var.shape, var.dtype)
        return self._read(var)

    def _detach(self, result: Any) -> Any:
        """A result that views a variable's array is copied, so later runs cannot change it."""
        if isinstance(result, np.ndarray) and any(
            np.may_share_memory(result, s) for s in self._state.values()
        ):
            return result.copy()
        return result

    # ----------------------------------------------------------------- feeds

    def _check_feeds(self, feed_dict: Mapping[Any, Any]) -> dict[Any, np.ndarray]:
        """Every feed converted to its key's dtype and checked against its known shape, used by
        the fetches or not (as TensorFlow does)."""
        feeds: dict[Any, np.ndarray] = {}
        for key, value in feed_dict.items():
            if isinstance(key, DeferredPlaceholder):
                array = _convert(key, value)
                if key.shape is not None:
                    _check_rank(key, array, len(key.shape))
                    for axis, (dim, got) in enumerate(zip(key.shape, array.shape, strict=True)):
                        if dim is not None and dim != got:
                            _wrong_axis(key, array, axis, dim)
                feeds[key] = array
            elif isinstance(key, DeferredVariable):
                if key.leaf is None:
                    raise InvalidArgumentError(
                        f"Session.run: cannot feed {_describe(key)}: its shape is not known yet"
                    )
                feeds[key] = feeds[key.leaf] = self._convert_variable(key.leaf, value)
            elif isinstance(key, Expr) and key.op.name == "placeholder":
                array = _convert(key, value)
                _check_rank(key, array, len(key.shape))
                for axis, (dim, got) in enumerate(zip(key.shape, array.shape, strict=True)):
                    if isinstance(dim, int) and dim != got:
                        _wrong_axis(key, array, axis, dim)
                feeds[key] = array
            elif self.graph.is_variable(key):
                feeds[key] = self._convert_variable(key, value)
            else:
                raise InvalidArgumentError(
                    f"Session.run: feed_dict keys must be placeholders (or variables, to "
                    f"override their value for one run), got {key!r}"
                )
        return feeds

    def _convert_variable(self, var: Expr, value: Any) -> np.ndarray:
        array = _convert(var, value)
        if array.shape != var.shape:
            raise InvalidArgumentError(
                f"Session.run: cannot feed a value of shape {array.shape} to {_describe(var)}"
            )
        return array

    def _feed(self, plan: _Plan, feeds: Mapping[Any, np.ndarray]) -> list[np.ndarray]:
        sizes: dict[str, tuple[int, Expr]] = {}
        args = []
        for ph in plan.placeholders:
            if ph not in feeds:
                raise InvalidArgumentError(
                    f"Session.run: you must feed a value for {_describe(ph)}: the fetches "
                    f"depend on it; add it to feed_dict"
                )
            value = feeds[ph]
            for axis, (dim, got) in enumerate(zip(ph.shape, value.shape, strict=True)):
                if isinstance(dim, int):
                    continue
                if dim in sizes and sizes[dim][0] != got:
                    size, other = sizes[dim]
                    raise InvalidArgumentError(
                        f"Session.run: cannot feed a value of shape {value.shape} to "
                        f"{_describe(ph)}: its {dim} (axis {axis}) is {got}, but the feed of "
                        f"{_describe(other)} has {dim} = {size}; feed batches of one size"
                    )
                sizes.setdefault(dim, (got, ph))
            args.append(value)
        return args


class InteractiveSession(Session):
    """A session that makes itself the default on creation (for shells and notebooks), so
    ``Tensor.eval()`` and ``Operation.run()`` need no ``with`` block."""

    def __init__(self, target: str | Graph = "", graph: Graph | None = None,
                 config: object = None, *,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        super().__init__(target, graph, config, cache_dir=cache_dir)
        _default_sessions.append(self)

    def close(self) -> None:
        """Close, and stop being the default session."""
        if self in _default_sessions:
            _default_sessions.remove(self)
        super().close()


def _check_rank(ph: Placeholder | Expr, array: np.ndarray, rank: int) -> None:
    if array.ndim != rank:
        raise InvalidArgumentError(
            f"Session.run: cannot feed a value of shape {array.shape} to "
            f"{_describe(ph)}: it needs rank {rank}"
        )


def _wrong_axis(ph: Placeholder | Expr, array: np.ndarray, axis: int, dim: int) -> None:
    raise InvalidArgumentError(
        f"Session.run: cannot feed a value of shape {array.shape} to "
        f"{_describe(ph)}: axis {axis} must be {dim}"
    )


def _convert(ph: Placeholder | Expr, value: Any) -> np.ndarray:
    """The fed value as an array of the placeholder's dtype, by the rule in the module doc."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"Session.run: cannot convert the feed of {_describe(ph)} to an array: {exc}"
        ) from None
    target = np.dtype(ph.dtype)
    if array.dtype == target:
        return array
    kind = array.dtype.kind
    ok = (
        (target.kind == "f" and kind in "biuf")
        or (target.kind == "i" and kind in "biu" and _fits(array, target))
        or (target.kind == "b" and kind == "b")
    )
    if not ok:
        raise InvalidArgumentError(
            f"Session.run: cannot feed {array.dtype} values to {_describe(ph)}"
            + (" (some values do not fit)" if kind in "iu" and target.kind == "i" else "")
            + "; convert them with .astype() or change the placeholder's dtype"
        )
    return array.astype(target)


def _fits(array: np.ndarray, target: np.dtype) -> bool:
    if array.size == 0:
        return True
    info = np.iinfo(target)
    return bool(array.min() >= info.min and array.max() <= info.max)




def infer_variable_shapes(fetch: Any, feed_dict: Mapping[Any, Any],
                          graph: Graph | None = None) -> list[tuple[Any, str, tuple[int, ...]]]:
    """tinyflow's shape inference: bind the auto-shaped variables ``fetch`` needs, given the
    shapes of its placeholders (``feed_dict={x: [100, 784], label: [100]}``).

    Returns ``(variable, name, shape)`` for each auto-shaped variable, in creation order, so a
    program can initialize them: ``tf.assign(v, tf.normal(shape))``.
    """
    g = graph or get_default_graph()
    lowered: dict[Any, Any] = {}
    for ph, shape in feed_dict.items():
        if not isinstance(ph, DeferredPlaceholder):
            continue
        dims = tuple(int(d) for d in shape)
        lowered[ph] = sd.placeholder(ph.name, dims, ph.dtype)
    text = ", ".join(f"{ph.name!r}: {leaf.shape}" for ph, leaf in lowered.items())
    with g.as_default():
        lower([fetch], lowered, {}, text or "(none)")
    return [(v, v.name, v.leaf.shape) for v in g.deferred_variables if v.leaf is not None]


__all__ = ["InteractiveSession", "Session", "get_default_session", "infer_variable_shapes"]
