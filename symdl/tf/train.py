"""``tf.train``: optimizers whose steps are `Operation`s of variable updates.

A training step is one dictionary ``{variable: new value}`` built from the gradients; hidden slot
variables (momentum accumulators, Adam's moments and beta powers) are more variables of the graph,
so their state lives in the `Session` like any other and the generated code updates them in place.
Every new value is computed from the values before the step.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import GradientError
from ..ir import Expr, toposort
from ..ops import api as sd
from ..ops.base import as_expr
from .deferred import Deferred, has_deferred
from .errors import InvalidArgumentError
from .graph import (
    Operation,
    Variable,
    get_default_graph,
    global_variables,
    hidden_variable,
    trainable_variables,
)
from .ops import gradients


class Optimizer:
    """Base class: ``minimize`` = ``compute_gradients`` then ``apply_gradients``."""

    name = "Optimizer"

    def __init__(self, learning_rate: float | Expr, use_locking: bool = False,
                 name: str | None = None) -> None:
        self.learning_rate = learning_rate
        self._lr_now: Any = learning_rate  # the learning rate as lowered for the step being built
        self._slots: dict[tuple[str, Expr], Expr] = {}

    def _lr(self, var: Expr) -> Expr:
        lr = as_expr(self._lr_now)
        return lr if lr.dtype == var.dtype or lr.op.name == "constant" else sd.cast(lr, var.dtype)

    def _slot(self, var: Expr, suffix: str, initial: Expr) -> Expr:
        """The optimizer's accumulator ``<var>/<suffix>``: made once per variable, however many
        times a lazily built step is lowered."""
        key = (suffix, var)
        if key not in self._slots:
            self._slots[key] = hidden_variable(f"{var.name}/{suffix}", initial)
        return self._slots[key]

    def compute_gradients(self, loss: Expr,
                          var_list: Sequence[Expr] | None = None) -> list[tuple[Expr | None, Expr]]:
        """(gradient, variable) pairs; the gradient is None for a variable ``loss`` ignores."""
        variables = trainable_variables() if var_list is None else list(var_list)
        if not variables:
            raise GradientError(f"{self.name}: there are no trainable variables to optimize")
        return list(zip(gradients(loss, variables), variables, strict=True))

    def apply_gradients(self, grads_and_vars: Sequence[tuple[Expr | None, Expr]],
                        global_step: Expr | None = None, name: str | None = None) -> Operation:
        """The training step: one update per variable that has a gradient."""
        grads_and_vars = list(grads_and_vars)
        if has_deferred(grads_and_vars) or has_deferred((self.learning_rate,)):
            return Deferred(self._apply_lowered, (grads_and_vars, self.learning_rate,
                                                  global_step, name),
                            label=self.name)  # type: ignore[return-value]
        self._lr_now = self.learning_rate
        return self._apply(grads_and_vars, global_step, name)

    def _apply_lowered(self, grads_and_vars: list[tuple[Expr | None, Expr]], lr: Expr,
                       global_step: Expr | None, name: str | None) -> Operation:
        self._lr_now = lr
        return self._apply(grads_and_vars, global_step, name)

    def _apply(self, grads_and_vars: Sequence[tuple[Expr | None, Expr]],
               global_step: Expr | None, name: str | None) -> Operation:
        pairs = [(g, v) for g, v in grads_and_vars if g is not None]
        if not pairs:
            names = ", ".join(repr(v.name) for _, v in grads_and_vars)
            raise GradientError(
                f"{self.name}: the loss depends on none of the variables {names}; check that the "
                "loss is built from them"
            )
        updates: dict[Expr, Expr] = {}
        for g, v in pairs:
            updates.update(self._update(g, v))
        updates.update(self._finish([v for _, v in pairs]))
        if global_step is not None:
            updates[global_step] = global_step + sd.constant(np.ones((), global_step.dtype))
        return Operation(name or self.name, updates)

    def minimize(self, loss: Expr, global_step: Expr | None = None,
                 var_list: Sequence[Expr] | None = None, name: str | None = None) -> Operation:
        """A training step lowering ``loss``; ``var_list`` defaults to all trainable variables
        the loss depends on."""
        if has_deferred((loss, self.learning_rate)) or has_deferred(var_list or ()):
            # Built when the fed shapes are known (a placeholder of unknown shape).
            return Deferred(self._minimize_lowered,
                            (loss, self.learning_rate, global_step, var_list, name),
                            label=self.name)  # type: ignore[return-value]
        self._lr_now = self.learning_rate
        if var_list is None:
            reached = {id(n) for n in toposort([loss])}
            var_list = [v for v in trainable_variables() if id(v) in reached]
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step, name)

    def _minimize_lowered(self, loss: Expr, lr: Expr, global_step: Expr | None,
                          var_list: Sequence[Expr] | None, name: str | None) -> Operation:
        if var_list is None:
            reached = {id(n) for n in toposort([loss])}
            var_list = [v for v in trainable_variables() if id(v) in reached]
        self._lr_now = lr
        return self._apply(self.compute_gradients(loss, var_list), global_step, name)

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        raise NotImplementedError

    def _finish(self, variables: list[Expr]) -> dict[Expr, Expr]:
        return {}


class GradientDescentOptimizer(Optimizer):
    """var -= learning_rate * grad."""

    name = "GradientDescent"

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        return {var: var - self._lr(var) * g}


class MomentumOptimizer(Optimizer):
    """accum = momentum * accum + grad; var -= learning_rate * accum (Nesterov optional)."""

    name = "Momentum"

    def __init__(self, learning_rate: float | Expr, momentum: float,
                 use_locking: bool = False, name: str | None = None,
                 use_nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        self.momentum = momentum
        self.use_nesterov = use_nesterov

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        accum = self._slot(var, "Momentum", sd.zeros(var.shape, var.dtype))
        accum_new = self.momentum * accum + g
        step = g + self.momentum * accum_new if self.use_nesterov else accum_new
        return {accum: accum_new, var: var - self._lr(var) * step}


class AdamOptimizer(Optimizer):
    """Adam as TensorFlow computes it.

    ``lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)``; ``m = b1 m + (1 - b1) g``;
    ``v = b2 v + (1 - b2) g^2``; ``var -= lr_t * m / (sqrt(v) + epsilon)``. The powers
    ``beta1^t`` and ``beta2^t`` are two hidden variables starting at beta1 and beta2, multiplied
    after each step.
    """

    name = "Adam"

    def __init__(self, learning_rate: float | Expr = 0.001, beta1: float = 0.9,
                 beta2: float = 0.999, epsilon: float = 1e-8, use_locking: bool = False,
                 name: str | None = None) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self._powers: tuple[Expr, Expr] | None = None

    def _beta_powers(self, dtype: str) -> tuple[Expr, Expr]:
        if self._powers is None:
            self._powers = (
                hidden_variable("beta1_power", sd.constant(np.asarray(self.beta1, dtype))),
                hidden_variable("beta2_power", sd.constant(np.asarray(self.beta2, dtype))),
            )
        return self._powers

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        b1, b2 = self.beta1, self.beta2
        b1_power, b2_power = self._beta_powers(var.dtype)
        m = self._slot(var, "Adam", sd.zeros(var.shape, var.dtype))
        v = self._slot(var, "Adam_1", sd.zeros(var.shape, var.dtype))
        lr_t = self._lr(var) * sd.sqrt(1 - sd.cast(b2_power, var.dtype)) / (
            1 - sd.cast(b1_power, var.dtype))
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * sd.square(g)
        var_new = var - lr_t * m_new / (sd.sqrt(v_new) + self.epsilon)
        return {m: m_new, v: v_new, var: var_new}

    def _finish(self, variables: list[Expr]) -> dict[Expr, Expr]:
        b1_power, b2_power = self._beta_powers(variables[0].dtype)
        return {b1_power: b1_power * self.beta1, b2_power: b2_power * self.beta2}


class RMSPropOptimizer(Optimizer):
    """RMSProp as TensorFlow 1 computes it (its mean square starts at ones, not zeros).

    ``ms = decay ms + (1 - decay) g^2``; centered: ``mg = decay mg + (1 - decay) g`` and the
    denominator uses ``ms - mg^2``; ``mom = momentum mom + lr g / sqrt(denominator + epsilon)``;
    ``var -= mom``.
    """

    name = "RMSProp"

    def __init__(self, learning_rate: float | Expr, decay: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-10, use_locking: bool = False, centered: bool = False,
                 name: str | None = None) -> None:
        super().__init__(learning_rate)
        self.decay, self.momentum, self.epsilon, self.centered = decay, momentum, epsilon, centered

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        rho = self.decay
        ms = self._slot(var, "RMSProp", sd.ones(var.shape, var.dtype))
        mom = self._slot(var, "RMSProp_1", sd.zeros(var.shape, var.dtype))
        ms_new = rho * ms + (1 - rho) * sd.square(g)
        updates: dict[Expr, Expr] = {ms: ms_new}
        denominator = ms_new
        if self.centered:
            mg = self._slot(var, "RMSProp_2", sd.zeros(var.shape, var.dtype))
            mg_new = rho * mg + (1 - rho) * g
            updates[mg] = mg_new
            denominator = ms_new - sd.square(mg_new)
        mom_new = self.momentum * mom + self._lr(var) * g / sd.sqrt(denominator + self.epsilon)
        updates[mom] = mom_new
        updates[var] = var - mom_new
        return updates


class AdagradOptimizer(Optimizer):
    """Adagrad as TensorFlow 1 computes it: ``accum += g^2; var -= lr g / sqrt(accum)``, the
    accumulator starting at ``initial_accumulator_value``."""

    name = "Adagrad"

    def __init__(self, learning_rate: float | Expr, initial_accumulator_value: float = 0.1,
                 use_locking: bool = False, name: str | None = None) -> None:
        super().__init__(learning_rate)
        if initial_accumulator_value <= 0:
            raise ValueError(
                f"AdagradOptimizer: initial_accumulator_value must be positive, got "
                f"{initial_accumulator_value}"
            )
        self.initial = initial_accumulator_value

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        accum = self._slot(var, "Adagrad", sd.full(var.shape, self.initial, var.dtype))
        accum_new = accum + sd.square(g)
        return {accum: accum_new, var: var - self._lr(var) * g / sd.sqrt(accum_new)}


# --------------------------------------------------------------------------- global step


def get_global_step(graph: Any = None) -> Expr | None:
    """The graph's global step variable, or None."""
    found = (graph or get_default_graph()).get_collection("global_step")
    return found[0] if found else None


def create_global_step(graph: Any = None) -> Expr:
    """A new int64 global step variable (0), not trainable; refuses a second one."""
    g = graph or get_default_graph()
    if get_global_step(g) is not None:
        raise ValueError("global_step already exists.")
    with g.as_default():
        step = Variable(np.zeros((), np.int64), name="global_step", trainable=False)
    g.add_to_collection("global_step", step)
    return step


def get_or_create_global_step(graph: Any = None) -> Expr:
    """The graph's global step, made on first use."""
    return get_global_step(graph) or create_global_step(graph)


def global_step(sess: Any, global_step_tensor: Expr) -> int:
    """The current value of the global step in ``sess``, as a Python int."""
    return int(sess.run(global_step_tensor))


# --------------------------------------------------------------------------- checkpoints


class Saver:
    """Saves and restores variables as a numpy ``.npz`` file (one array per variable name).

    ``save(sess, "model", global_step=100)`` writes ``model-100.npz`` and returns its path
    without the suffix, as TensorFlow returns a checkpoint prefix; ``restore`` accepts either.
    Restoring never unpickles: a file holding Python objects is refused.
    """

    def __init__(self, var_list: Sequence[Expr] | dict[str, Expr] | None = None,
                 max_to_keep: int = 5, **_ignored: object) -> None:
        if var_list is None:
            variables = {v.name: v for v in global_variables()}
        elif isinstance(var_list, dict):
            variables = dict(var_list)
        else:
            variables = {v.name: v for v in var_list}
        if not variables:
            raise ValueError("No variables to save")
        self.variables: dict[str, Expr] = variables
        self.max_to_keep = max_to_keep
        self.last_checkpoints: list[str] = []

    def save(self, sess: Any, save_path: str | os.PathLike[str], global_step: object = None,
             **_ignored: object) -> str:
        """Write every variable's value in ``sess``; returns the checkpoint prefix."""
        prefix = os.fspath(save_path)
        if global_step is not None:
            step = global_step if isinstance(global_step, (int, np.integer)) else sess.run(
                global_step)
            prefix = f"{prefix}-{int(step)}"
        values = sess.run(dict(self.variables))
        np.savez(prefix + ".npz", **{k: np.asarray(v) for k, v in values.items()})
        self.last_checkpoints.append(prefix)
        while self.max_to_keep and len(self.last_checkpoints) > self.max_to_keep:
            old = self.last_checkpoints.pop(0)
            if old not in self.last_checkpoints and os.path.exists(old + ".npz"):
                os.remove(old + ".npz")
        return prefix

    def restore(self, sess: Any, save_path: str | os.PathLike[str]) -> None:
        """Set every variable in ``sess`` to its value in the checkpoint (must hold all)."""
        path = os.fspath(save_path)
        if not path.endswith(".npz"):
            path += ".npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise InvalidArgumentError(
                f"Saver.restore: cannot read {path!r} as a checkpoint of arrays ({exc}); "
                "checkpoints holding pickled objects are refused"
            ) from None
        missing = [name for name in self.variables if name not in arrays]
        if missing:
            raise InvalidArgumentError(
                f"Saver.restore: {path!r} has no value for {', '.join(map(repr, missing))}"
            )
        for name, var in self.variables.items():
            value = arrays[name]
            if value.shape != var.shape:
                raise InvalidArgumentError(
                    f"Saver.restore: {name!r} has shape {value.shape} in {path!r}, the "
                    f"variable has {var.shape}"
                )
            sess._state[var] = np.array(value, dtype=var.dtype, copy=True)


def latest_checkpoint(checkpoint_dir: str | os.PathLike[str]) -> str | None:
    """The newest ``.npz`` checkpoint prefix in ``checkpoint_dir`` (by modification time)."""
    directory = os.fspath(checkpoint_dir)
    if not os.path.isdir(directory):
        return None
    found = [os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".npz")]
    if not found:
        return None
    return max(found, key=os.path.getmtime)[: -len(".npz")]


def SummaryWriter(logdir: str, graph: object = None, **kwargs: object) -> Any:  # noqa: N802
    """The 0.12-era name of `tf.summary.FileWriter`."""
    from .summary import FileWriter

    return FileWriter(logdir, graph, _stacklevel=3, **kwargs)


__all__ = [
    "AdagradOptimizer", "AdamOptimizer", "GradientDescentOptimizer", "MomentumOptimizer",
    "Optimizer", "RMSPropOptimizer", "Saver", "SummaryWriter", "create_global_step",
    "get_global_step", "get_or_create_global_step", "global_step", "latest_checkpoint",
]
