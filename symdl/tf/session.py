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

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ..ir import Expr, leaves
from ..types import format_shape
from .errors import FailedPreconditionError, InvalidArgumentError
from .graph import Graph, Operation, get_default_graph
from .ops import merge_updates

Fetch = Any  # a tensor, an Operation, or a list / tuple / dict of fetches


@dataclass
class _Plan:
    """What one set of fetches needs: the compiled function and how to call it."""

    module: ModuleType | None
    placeholders: list[Expr]
    variables: list[Expr]
    outputs: list[Expr]  # computed by the generated function, in its return order
    snapshots: list[Expr]  # variables fetched as they are: copied from the state before the run
    initialize: list[Expr] = field(default_factory=list)


def _flatten(fetches: Fetch, flat: list[Expr | Operation]) -> Callable[[dict[int, Any]], Any]:
    """Append the fetch leaves to ``flat``; return a function rebuilding the structure."""
    if isinstance(fetches, (Expr, Operation)):
        index = len(flat)
        flat.append(fetches)
        return lambda values: values[index]
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


def _describe(leaf: Expr) -> str:
    return f"{leaf.op.name} {leaf.name!r} ({leaf.dtype} {format_shape(leaf.shape)})"


class Session:
    """Runs a graph's fetches with generated numpy code; variables keep their values in it.

    ``cache_dir`` is where the generated modules are written (default: symdl's cache).
    Usable as a context manager (``with tf.Session() as sess:``).
    """

    def __init__(self, graph: Graph | None = None, *,
                 cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.graph = graph if graph is not None else get_default_graph()
        self.cache_dir = cache_dir
        self._state: dict[Expr, np.ndarray] = {}
        self._plans: dict[tuple[Expr | Operation, ...], _Plan] = {}
        self._closed = False

    # ----------------------------------------------------------------- context manager

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Free the variables' values; later runs raise."""
        self._state.clear()
        self._plans.clear()
        self._closed = True

    # ----------------------------------------------------------------- public

    def run(self, fetches: Fetch, feed_dict: Mapping[Expr, Any] | None = None) -> Any:
        """Compute ``fetches`` (a tensor, an operation, or a list, tuple or dict of them).

        Returns numpy values in the same structure; operations give None, except `assign`
        and friends, which give the variable's new value.
        """
        if self._closed:
            raise FailedPreconditionError("Session.run: the session is closed")
        flat: list[Expr | Operation] = []
        rebuild = _flatten(fetches, flat)
        plan = self._plan(tuple(flat))
        for var in plan.initialize:
            self._state[var] = self._initial_value(var)
        fed = self._feed(plan, feed_dict or {})
        values: dict[Expr, Any] = {}
        for var in plan.snapshots:
            values[var] = np.array(self._read(var), copy=True)
        results: tuple[Any, ...] = ()
        if plan.module is not None:
            call_args = [*fed, *(self._read(v) for v in plan.variables)]
            results = plan.module.run(*call_args) or ()
        for out, result in zip(plan.outputs, results, strict=True):
            values[out] = self._detach(result)
        answers: dict[int, Any] = {}
        for i, item in enumerate(flat):
            if isinstance(item, Operation):
                answers[i] = None if item.value is None else values[item.value]
            else:
                answers[i] = values[item]
        return rebuild(answers)

    def source(self, fetches: Fetch) -> str:
        """The code of the generated module that `run` calls for these fetches ("" when the
        fetches only initialize variables or do nothing)."""
        flat: list[Expr | Operation] = []
        _flatten(fetches, flat)
        plan = self._plan(tuple(flat))
        if plan.module is None or plan.module.__file__ is None:
            return ""
        return Path(plan.module.__file__).read_text(encoding="utf-8")

    # ----------------------------------------------------------------- planning

    def _plan(self, flat: tuple[Expr | Operation, ...]) -> _Plan:
        plan = self._plans.get(flat)
        if plan is None:
            plan = self._plans[flat] = self._make_plan(flat)
        return plan

    def _make_plan(self, flat: tuple[Expr | Operation, ...]) -> _Plan:
        from .. import compile as sd_compile

        ops = [x for x in flat if isinstance(x, Operation)]
        updates = merge_updates(ops)
        initialize = list(dict.fromkeys(v for op in ops for v in op.initialize))
        wanted = [x for x in flat if isinstance(x, Expr)]
        wanted += [op.value for op in ops if op.value is not None]
        wanted = list(dict.fromkeys(wanted))
        # A fetched variable is copied from the state before the run: the generated function
        # would return the very array its updates overwrite.
        snapshots = [x for x in wanted if self.graph.is_variable(x)]
        outputs = [x for x in wanted if not self.graph.is_variable(x)]
        graph_leaves = leaves([*outputs, *updates.values()])
        for leaf in [*graph_leaves, *snapshots, *updates]:
            if leaf.op.name == "parameter" and not self.graph.is_variable(leaf):
                raise InvalidArgumentError(
                    f"Session.run: {_describe(leaf)} is not a variable of this session's graph "
                    "(made before tf.reset_default_graph(), or with symdl's parameter directly)"
                )
        placeholders = [x for x in graph_leaves if x.op.name == "placeholder"]
        used = {id(x) for x in [*graph_leaves, *updates]}
        variables = [v for v in self.graph.variables if id(v) in used]
        module = None
        if outputs or updates:
            module = sd_compile(
                {"run": ([*placeholders, *variables], outputs, updates)},
                name="tf_session", cache_dir=self.cache_dir,
            )
        return _Plan(module, placeholders, variables, outputs, snapshots, initialize)

    # ----------------------------------------------------------------- values

    def _initial_value(self, var: Expr) -> np.ndarray:
        """Evaluate a variable's initial value (constants, or other initialized variables)."""
        from .. import compile as sd_compile

        initial = self.graph.variables[var].initial
        if initial.op.name == "constant":
            return np.array(initial.attr("value").array, dtype=var.dtype, copy=True)
        deps = leaves([initial])
        module = sd_compile({"run": (deps, [initial])}, name="tf_init", cache_dir=self.cache_dir)
        (value,) = module.run(*(self._read(v) for v in deps))
        return np.array(value, dtype=var.dtype, copy=True)

    def _read(self, var: Expr) -> np.ndarray:
        value = self._state.get(var)
        if value is None:
            raise FailedPreconditionError(
                f"Session.run: attempting to use uninitialized variable {var.name!r} "
                f"({var.dtype} {format_shape(var.shape)}); run tf.global_variables_initializer() "
                "once, after creating every variable and optimizer"
            )
        return value

    def _detach(self, result: Any) -> Any:
        """A result that views a variable's array is copied, so later runs cannot change it."""
        if isinstance(result, np.ndarray) and any(
            np.may_share_memory(result, s) for s in self._state.values()
        ):
            return result.copy()
        return result

    def _feed(self, plan: _Plan, feed_dict: Mapping[Expr, Any]) -> list[np.ndarray]:
        for key in feed_dict:
            if not isinstance(key, Expr) or key.op.name != "placeholder":
                raise InvalidArgumentError(
                    f"Session.run: feed_dict keys must be placeholders, got {key!r}; symdl.tf "
                    "feeds placeholders only"
                )
        sizes: dict[str, tuple[int, Expr]] = {}
        args = []
        for ph in plan.placeholders:
            if ph not in feed_dict:
                raise InvalidArgumentError(
                    f"Session.run: you must feed a value for {_describe(ph)}: the fetches "
                    f"depend on it; add it to feed_dict"
                )
            value = _convert(ph, feed_dict[ph])
            if value.ndim != len(ph.shape):
                raise InvalidArgumentError(
                    f"Session.run: cannot feed a value of shape {value.shape} to "
                    f"{_describe(ph)}: it needs rank {len(ph.shape)}"
                )
            for axis, (dim, got) in enumerate(zip(ph.shape, value.shape, strict=True)):
                if isinstance(dim, int):
                    if dim != got:
                        raise InvalidArgumentError(
                            f"Session.run: cannot feed a value of shape {value.shape} to "
                            f"{_describe(ph)}: axis {axis} must be {dim}"
                        )
                elif dim in sizes and sizes[dim][0] != got:
                    size, other = sizes[dim]
                    raise InvalidArgumentError(
                        f"Session.run: cannot feed a value of shape {value.shape} to "
                        f"{_describe(ph)}: its {dim} (axis {axis}) is {got}, but the feed of "
                        f"{_describe(other)} has {dim} = {size}; feed batches of one size"
                    )
                else:
                    sizes.setdefault(dim, (got, ph))
            args.append(value)
        return args


def _convert(ph: Expr, value: Any) -> np.ndarray:
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


__all__ = ["Session"]
