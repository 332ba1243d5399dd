"""``tf.train``: optimizers whose steps are `Operation`s of variable updates.

A training step is one dictionary ``{variable: new value}`` built from the gradients; hidden slot
variables (momentum accumulators, Adam's moments and beta powers) are more variables of the graph,
so their state lives in the `Session` like any other and the generated code updates them in place.
Every new value is computed from the values before the step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import GradientError
from ..ir import Expr, toposort
from ..ops import api as sd
from ..ops.base import as_expr
from .graph import Operation, hidden_variable, trainable_variables
from .ops import gradients


class Optimizer:
    """Base class: ``minimize`` = ``compute_gradients`` then ``apply_gradients``."""

    name = "Optimizer"

    def __init__(self, learning_rate: float | Expr) -> None:
        self.learning_rate = learning_rate

    def _lr(self, var: Expr) -> Expr:
        lr = as_expr(self.learning_rate)
        return lr if lr.dtype == var.dtype or lr.op.name == "constant" else sd.cast(lr, var.dtype)

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
        if var_list is None:
            reached = {id(n) for n in toposort([loss])}
            var_list = [v for v in trainable_variables() if id(v) in reached]
        return self.apply_gradients(self.compute_gradients(loss, var_list), global_step, name)

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
                 use_nesterov: bool = False) -> None:
        super().__init__(learning_rate)
        self.momentum = momentum
        self.use_nesterov = use_nesterov

    def _update(self, g: Expr, var: Expr) -> dict[Expr, Expr]:
        accum = hidden_variable(f"{var.name}/Momentum", sd.zeros(var.shape, var.dtype))
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
                 beta2: float = 0.999, epsilon: float = 1e-8) -> None:
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
        m = hidden_variable(f"{var.name}/Adam", sd.zeros(var.shape, var.dtype))
        v = hidden_variable(f"{var.name}/Adam_1", sd.zeros(var.shape, var.dtype))
        lr_t = self._lr(var) * sd.sqrt(1 - sd.cast(b2_power, var.dtype)) / (
            1 - sd.cast(b1_power, var.dtype))
        m_new = b1 * m + (1 - b1) * g
        v_new = b2 * v + (1 - b2) * sd.square(g)
        var_new = var - lr_t * m_new / (sd.sqrt(v_new) + self.epsilon)
        return {m: m_new, v: v_new, var: var_new}

    def _finish(self, variables: list[Expr]) -> dict[Expr, Expr]:
        b1_power, b2_power = self._beta_powers(variables[0].dtype)
        return {b1_power: b1_power * self.beta1, b2_power: b2_power * self.beta2}


__all__ = ["AdamOptimizer", "GradientDescentOptimizer", "MomentumOptimizer", "Optimizer"]
