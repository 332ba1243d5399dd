"""Optimizers as symbolic update rules, folded with forward and backward into one `train_step`.

An optimizer here is not a loop over arrays: it is a rule that builds, for every parameter ``p``
with gradient ``g``, the expression of ``p``'s new value and of its state's new values. The code
generator prints those expressions next to the forward and backward pass, in one generated
function that updates parameters and optimizer state in place and returns the loss (and metrics)::

    opt = sd.optim.Adam(lr=1e-3)
    step = sd.optim.compile_train_step(loss, params, opt, inputs=[x, y],
                                       metrics={"accuracy": acc})
    state = step.init_state(values)                 # zeros for m, v and the step count
    loss_value, acc_value = step(batch, values, state)        # updates values, state in place

The learning rate is an input of the generated function (``lr``, a float scalar), so schedules
need no regeneration; the other hyperparameters are constants printed into the code, where the
update rule can be read like the rest of the step. State leaves are parameters named after the
parameter they belong to (``W_m``, ``W_v``, ``W_momentum``) plus one scalar step count ``step``
for the rules that need it (Adam's bias correction). Conventions are PyTorch's, so numbers can be
compared with ``torch.optim``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from .errors import CodegenError, InvalidNameError, ShapeError, UsageError
from .ir import Expr
from .ops.api import parameter, placeholder, sqrt, square

STEP_NAME = "step"
LR_NAME = "lr"
# The split step's extra arguments (data-parallel training, `symdl.distributed`): the rows of the
# shard `grads` runs on, and the rows of the whole batch whose summed gradients `apply` applies.
SHARD_SIZE_NAME = "shard_size"
BATCH_SIZE_NAME = "batch_size"
GRAD_SUFFIX = "_grad_sum"


class Optimizer:
    """An update rule: per-parameter state slots and the expressions of the new values.

    Subclasses define `slots` (the names of per-parameter state arrays, zeros at the start),
    `uses_step` (whether a scalar step count ``step`` is kept) and `update`.
    """

    slots: tuple[str, ...] = ()
    uses_step: bool = False

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: lr must be positive, got {lr}")
        self.lr = float(lr)

    def update(
        self, p: Expr, g: Expr, state: Mapping[str, Expr], lr: Expr, step: Expr | None
    ) -> tuple[Expr, dict[str, Expr]]:
        """The new value of ``p`` and of each of its state slots, as expressions.

        ``step`` is the step count *after* this step (1 on the first step) when `uses_step`.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"

    def step_function(
        self,
        loss: Expr,
        params: Sequence[Expr] | Mapping[Expr, Any],
        inputs: Sequence[Expr],
        metrics: Mapping[str, Expr] | None = None,
        settings: Mapping[Expr, tuple[float, float]] | None = None,
    ) -> TrainStepSpec:
        """The functions to generate for training with this optimizer; see `train_step_spec`."""
        return train_step_spec(loss, params, self, inputs, metrics, settings)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional momentum, Nesterov momentum and L2 decay.

    PyTorch's ``torch.optim.SGD`` (dampening 0)::

        g = grad + weight_decay * p                     (if weight_decay)
        buf = momentum * buf + g                        (if momentum; buf starts at 0)
        d = g + momentum * buf  if nesterov  else buf   (if momentum, else d = g)
        p = p - lr * d
    """

    def __init__(
        self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError("SGD: momentum and weight_decay must be >= 0")
        if nesterov and momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.slots = ("momentum",) if momentum else ()

    def update(
        self, p: Expr, g: Expr, state: Mapping[str, Expr], lr: Expr, step: Expr | None
    ) -> tuple[Expr, dict[str, Expr]]:
        """``p - lr * d`` with ``d`` the (momentum, Nesterov) direction; see the class."""
        if self.weight_decay:
            g = g + self.weight_decay * p
        if not self.momentum:
            return p - lr * g, {}
        buf = self.momentum * state["momentum"] + g
        direction = g + self.momentum * buf if self.nesterov else buf
        return p - lr * direction, {"momentum": buf}


class Adam(Optimizer):
    """Adam (Kingma and Ba), in PyTorch's convention: bias-corrected, eps outside the sqrt.

    With ``t`` the step count after this step (1 first), ``b1, b2 = betas``::

        g = grad + weight_decay * p            (L2 penalty, as torch.optim.Adam; if weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        p = p - lr * (m / (1 - b1**t)) / (sqrt(v / (1 - b2**t)) + eps)

    The last line is computed as ``p - a * (m / (sqrt(v) + e))`` with the scalars
    ``a = lr * sqrt(1 - b2**t) / (1 - b1**t)`` and ``e = eps * sqrt(1 - b2**t)``, equal to it in
    exact arithmetic, so the per-element work is that of the textbook's efficient form. The
    scalar multiplies last so that the whole direction is computed in one temporary array
    (``a * m`` first would need a second one, since ``m`` is kept).
    """

    slots = ("m", "v")
    uses_step = True
    decoupled = False

    def __init__(
        self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(lr)
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps and weight_decay must be >= 0")
        self.betas = (float(b1), float(b2))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)

    def update(
        self, p: Expr, g: Expr, state: Mapping[str, Expr], lr: Expr, step: Expr | None
    ) -> tuple[Expr, dict[str, Expr]]:
        """New ``p``, ``m`` and ``v``; see the class docstring for the formulas."""
        if step is None:
            raise ValueError(f"{type(self).__name__}.update needs the step count")
        b1, b2 = self.betas
        if self.weight_decay and self.decoupled:
            p = p * (1.0 - lr * self.weight_decay)
        elif self.weight_decay:
            g = g + self.weight_decay * p
        m = b1 * state["m"] + (1.0 - b1) * g
        v = b2 * state["v"] + (1.0 - b2) * square(g)
        # Scalars shared by every parameter (hash-consing computes them once per step).
        root_bc2 = sqrt(1.0 - b2**step).named("root_bc2")
        step_size = (lr * root_bc2 / (1.0 - b1**step)).named("step_size")
        eps_hat = (self.eps * root_bc2).named("eps_hat")
        return p - step_size * (m / (sqrt(v) + eps_hat)), {"m": m, "v": v}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as ``torch.optim.AdamW``::

        p = p * (1 - lr * weight_decay)
        then the Adam step of `Adam` with no L2 term (on the decayed p).
    """

    decoupled = True

    def __init__(
        self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 1e-2,
    ) -> None:
        super().__init__(lr, betas, eps, weight_decay)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD, "momentum": SGD, "nesterov": SGD, "adam": Adam, "adamw": AdamW,
}


def make_optimizer(name: str, lr: float | None = None) -> Optimizer:
    """An optimizer from its command-line name: sgd, momentum (0.9), nesterov (0.9), adam, adamw."""
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    kwargs: dict[str, Any] = {} if lr is None else {"lr": lr}
    if key in ("momentum", "nesterov"):
        kwargs.update(momentum=0.9, nesterov=key == "nesterov")
    return OPTIMIZERS[key](**kwargs)


@dataclass
class TrainStepSpec:
    """What `train_step_spec` builds: the functions to generate and the leaves' roles.

    ``functions`` has ``train_step(*inputs, *params, *state, lr) -> (loss, *metrics)`` (updating
    params and state in place) and ``evaluate(*inputs, *params) -> (loss, *metrics)``; a model
    that draws (dropout) also takes its generators last (``rngs``, from `symdl.rng`), in both,
    after its ``settings`` (scalar placeholders with a training and an evaluation value).
    """

    functions: dict[str, tuple]
    inputs: list[Expr]
    params: list[Expr]
    state: list[Expr]
    lr: Expr
    metric_names: list[str]
    optimizer: Optimizer
    initializers: dict[Expr, Any] = field(default_factory=dict)
    rngs: list[Expr] = field(default_factory=list)
    settings: dict[Expr, tuple[float, float]] = field(default_factory=dict)


def _as_params(params: Sequence[Expr] | Mapping[Expr, Any]) -> tuple[list[Expr], dict]:
    inits = dict(params) if isinstance(params, Mapping) else {}
    leaves = list(params)
    for p in leaves:
        if not isinstance(p, Expr) or not p.is_leaf or p.op.name != "parameter":
            raise CodegenError(f"train_step: params must be sd.parameter leaves, got {p!r}")
        if p.dtype not in ("float32", "float64"):
            raise CodegenError(f"train_step: parameter {p.name!r} is {p.dtype}; it must be float")
        if not all(isinstance(d, int) for d in p.shape):
            raise ShapeError(f"train_step: parameter {p.name!r} has a symbolic shape {p.shape}")
    if not leaves:
        raise CodegenError("train_step: params is empty; pass the parameters to train")
    return leaves, inits


def train_step_spec(
    loss: Expr,
    params: Sequence[Expr] | Mapping[Expr, Any],
    optimizer: Optimizer,
    inputs: Sequence[Expr],
    metrics: Mapping[str, Expr] | None = None,
    settings: Mapping[Expr, tuple[float, float]] | None = None,
    split: bool = False,
) -> TrainStepSpec:
    """Build the update expressions of ``optimizer`` for ``loss`` and ``params``.

    Args:
        loss: a float scalar expression (the batch mean of a loss, usually).
        params: the parameters to train, as a list or a ``{parameter: initializer}`` dict.
        optimizer: an `Optimizer` (its ``lr`` is the default learning rate, not baked in).
        inputs: the placeholders a batch fills, in the order batches list them (``[x, y]``).
        metrics: extra scalar outputs by name (``{"accuracy": acc}``), means over the batch.
        settings: scalar placeholders fed one value in training and another in evaluation, as
            ``{placeholder: (train_value, evaluation_value)}``: a dropout rate,
            ``{rate: (0.5, 0.0)}``, so that evaluation keeps every unit.
        split: also build the two halves of the step for data-parallel training (see
            `split_functions`): ``grads`` and ``apply``, from the same gradient expressions.

    Raises:
        InvalidNameError: if a state leaf's name (``W_m``, ``step``, ``lr``) is taken.
        ShapeError: if the loss or a metric is not a scalar.
    """
    from .autodiff import grad
    from .ir import toposort

    leaves, inits = _as_params(params)
    metrics = dict(metrics or {})
    for label, expr in {"loss": loss, **metrics}.items():
        if not isinstance(expr, Expr) or expr.shape != ():
            shape = getattr(expr, "shape", type(expr).__name__)
            raise ShapeError(f"train_step: {label} must be a scalar expression, got {shape}")
    if loss.dtype not in ("float32", "float64"):
        raise CodegenError(f"train_step: the loss is {loss.dtype}; it must be float")
    dtype = loss.dtype
    # The generators the model draws from (dropout): arguments of both functions, passed last.
    rngs = [n for n in toposort([loss, *metrics.values()]) if n.op.name == "rng"]
    settings = dict(settings or {})
    for leaf, pair in settings.items():
        if not isinstance(leaf, Expr) or leaf.op.name != "placeholder" or leaf.shape != () or (
            not isinstance(pair, tuple) or len(pair) != 2
        ):
            raise CodegenError(
                "train_step: settings must map scalar placeholders to (train_value, "
                f"evaluation_value), got {leaf!r}: {pair!r}"
            )
    taken = {x.name for x in [*inputs, *leaves, *rngs, *settings]}
    state_names = [f"{p.name}_{s}" for p in leaves for s in optimizer.slots]
    extra = [*state_names, *([STEP_NAME] if optimizer.uses_step else []), LR_NAME]
    if split:
        extra += [SHARD_SIZE_NAME, BATCH_SIZE_NAME, *(f"{p.name}{GRAD_SUFFIX}" for p in leaves)]
    clash = sorted(taken.intersection(extra))
    if clash:
        raise InvalidNameError(
            f"train_step: the name {clash[0]!r} is used by the model and by the optimizer's "
            f"state; rename that placeholder or parameter"
        )

    lr = placeholder(LR_NAME, (), dtype=dtype)
    step = parameter(STEP_NAME, (), dtype=dtype) if optimizer.uses_step else None
    new_step = (step + 1.0).named("step_new") if step is not None else None
    grads = grad(loss, leaves)
    state: list[Expr] = []
    updates: dict[Expr, Expr] = {}
    for p, g in zip(leaves, grads, strict=True):
        slots = {s: parameter(f"{p.name}_{s}", p.shape, dtype=p.dtype) for s in optimizer.slots}
        new_p, new_slots = optimizer.update(p, g, slots, lr, new_step)
        updates[p] = new_p
        for s, leaf in slots.items():
            state.append(leaf)
            updates[leaf] = new_slots[s]
    if step is not None:
        state.append(step)
        updates[step] = new_step
    outputs = [loss, *metrics.values()]
    functions = {
        "train_step": ([*inputs, *leaves, *state, lr, *settings, *rngs], outputs, updates),
        "evaluate": ([*inputs, *leaves, *settings, *rngs], outputs),
    }
    if split:
        functions.update(split_functions(loss, leaves, optimizer, list(inputs), metrics, state,
                                         lr, step, list(settings), rngs))
    return TrainStepSpec(functions, list(inputs), leaves, state, lr, list(metrics), optimizer,
                         inits, rngs, settings)


def split_functions(
    loss: Expr, leaves: list[Expr], optimizer: Optimizer, inputs: list[Expr],
    metrics: Mapping[str, Expr], state: list[Expr], lr: Expr, step: Expr | None,
    settings: Sequence[Expr] = (), rngs: Sequence[Expr] = (),
) -> dict[str, tuple]:
    """The fused step cut in two at the gradient, for data-parallel training.

    ``grads(*inputs, *params, shard_size, *settings, *rngs) -> (loss_sum, *metric_sums,
    *grad_sums)`` runs forward
    and backward on one shard. The loss and metrics are batch means, so multiplying them by the
    shard's row count (``shard_size``, passed by the caller: no op reads a size) gives sums, and
    the gradient of the loss sum is the gradient sum: the results of shards of any sizes add up
    to those of the whole batch, whatever the split.

    ``apply(*grad_sums, *params, *state, lr, batch_size)`` updates params and state in place
    from the summed gradients divided by the global batch size, with the same optimizer rule
    as ``train_step``; it returns nothing.
    """
    from .autodiff import grad

    # A model that draws (dropout; ``rngs``) draws in `grads`: each shard from the generator
    # its caller passes, so a data-parallel run is reproducible from its seed for a given
    # worker count.
    dtype = loss.dtype
    shard_size = placeholder(SHARD_SIZE_NAME, (), dtype=dtype)
    batch_size = placeholder(BATCH_SIZE_NAME, (), dtype=dtype)
    loss_sum = (loss * shard_size).named("loss_sum")
    sums = [(m * shard_size).named(f"{label}_sum") for label, m in metrics.items()]
    grad_sums = grad(loss_sum, leaves)
    new_step = (step + 1.0).named("step_new") if step is not None else None
    summed = [placeholder(f"{p.name}{GRAD_SUFFIX}", p.shape, dtype=p.dtype) for p in leaves]
    slots = iter(state)
    updates: dict[Expr, Expr] = {}
    for p, g in zip(leaves, summed, strict=True):
        own = {s: next(slots) for s in optimizer.slots}
        new_p, new_slots = optimizer.update(p, g / batch_size, own, lr, new_step)
        updates[p] = new_p
        updates.update({leaf: new_slots[s] for s, leaf in own.items()})
    if step is not None:
        updates[step] = new_step
    return {
        "grads": ([*inputs, *leaves, shard_size, *settings, *rngs],
                  [loss_sum, *sums, *grad_sums]),
        "apply": ([*summed, *leaves, *state, lr, batch_size], [], updates),
    }


class TrainStep:
    """A compiled training step: the generated module and how to call it.

    ``step(batch, params, state, lr=None)`` runs one step on ``batch`` (arrays in the order of
    ``inputs``), updates the arrays in ``params`` and ``state`` (dicts by name) in place and
    returns ``(loss, *metrics)``. ``step.evaluate(batch, params)`` returns the same without
    updating. ``step.path`` is the generated file. A model that draws (`draws`: dropout) needs
    ``rng=``, a ``numpy.random.Generator``, in both; it advances on every call.


    A step compiled with ``split=True`` also has `grads` and `apply` (data-parallel training),
    and keeps what a worker needs to compile the same module: `arrays`, its ``.npy`` constants.
    """

    def __init__(self, spec: TrainStepSpec, module: ModuleType,
                 arrays: Mapping[str, np.ndarray] | None = None) -> None:
        self.spec = spec
        self.module = module
        self.split = "grads" in spec.functions
        self.arrays = dict(arrays or {})
        self.optimizer = spec.optimizer
        self.input_names = [x.name for x in spec.inputs]
        self.param_names = [p.name for p in spec.params]
        self.state_names = [s.name for s in spec.state]
        self.metric_names = list(spec.metric_names)
        self.dtype = spec.lr.dtype
        self._train = module.train_step
        self._evaluate = module.evaluate
        self.draws = bool(spec.rngs)
        # The settings' training values: what train_step and a worker's `grads` are passed.
        self.train_settings = [v[0] for v in spec.settings.values()]
        self._evaluate_settings = [v[1] for v in spec.settings.values()]

    def _generators(self, rng: np.random.Generator | None) -> list[np.random.Generator]:
        """The generator arguments: ``rng`` once per generator the model declares."""
        if not self.draws:
            if rng is not None:
                raise TypeError("train_step: this model draws nothing; do not pass rng")
            return []
        if rng is None:
            names = ", ".join(repr(r.name) for r in self.spec.rngs)
            raise TypeError(
                f"train_step: the model draws from the generator {names} (dropout or "
                "sd.random); pass rng=np.random.default_rng(seed)"
            )
        return [rng] * len(self.spec.rngs)

    @property
    def path(self) -> str:
        """The generated module's file."""
        return str(self.module.__file__)

    @property
    def source(self) -> str:
        """The generated module's source."""
        with open(self.path, encoding="utf-8") as f:
            return f.read()

    def init_state(self, params: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Fresh optimizer state: zeros for every slot and for the step count."""
        return {s.name: np.zeros(s.shape, dtype=s.dtype) for s in self.spec.state}

    def _ordered(self, kind: str, names: list[str], values: Mapping[str, np.ndarray]) -> list:
        try:
            return [values[n] for n in names]
        except KeyError as exc:
            raise KeyError(
                f"train_step: {kind} {exc.args[0]!r} is missing; expected {names}"
            ) from None

    def __call__(
        self, batch: Sequence[np.ndarray], params: Mapping[str, np.ndarray],
        state: Mapping[str, np.ndarray], lr: float | None = None,
        rng: np.random.Generator | None = None,
    ) -> tuple:
        """One step: update ``params`` and ``state`` in place, return ``(loss, *metrics)``.

        ``rng`` is the generator a model that draws (`draws`) draws from.
        """
        args = [*batch, *self._ordered("parameter", self.param_names, params),
                *self._ordered("state", self.state_names, state)]
        generators = self._generators(rng)
        out = self._train(*args, self.optimizer.lr if lr is None else lr,
                          *self.train_settings, *generators)
        return out

    def evaluate(self, batch: Sequence[np.ndarray], params: Mapping[str, np.ndarray],
                 rng: np.random.Generator | None = None) -> tuple:
        """``(loss, *metrics)`` on ``batch`` with ``params``, nothing updated (a model that
        draws draws here too, from ``rng``)."""
        return self._evaluate(*batch, *self._ordered("parameter", self.param_names, params),
                              *self._evaluate_settings, *self._generators(rng))

    def _split_only(self, what: str) -> None:
        if not self.split:
            raise CodegenError(
                f"train_step: {what} exists only in a split step; compile it with "
                "sd.optim.compile_train_step(..., split=True)"
            )

    def grads(self, batch: Sequence[np.ndarray], params: Mapping[str, np.ndarray],
              rng: np.random.Generator | None = None) -> tuple:
        """Forward and backward on one shard: ``(loss_sum, *metric_sums, *grad_sums)``.

        Sums over the shard's rows (gradients in `param_names` order), so the results of the
        shards of a batch add up to the whole batch's whatever their sizes. A model that draws
        (dropout) draws the shard's masks from ``rng``.
        """
        self._split_only("grads")
        rows = len(batch[0]) if batch else 0
        args = [*batch, *self._ordered("parameter", self.param_names, params)]
        return self.module.grads(*args, rows, *self.train_settings, *self._generators(rng))

    def apply(self, grad_sums: Sequence[np.ndarray], params: Mapping[str, np.ndarray],
              state: Mapping[str, np.ndarray], batch_size: int, lr: float | None = None) -> None:
        """The optimizer's update of ``params`` and ``state`` in place, from gradients summed
        over a batch of ``batch_size`` rows (in `param_names` order): with the sums of all
        shards, the same update as ``step(batch, ...)`` on the whole batch."""
        self._split_only("apply")
        if len(grad_sums) != len(self.param_names):
            raise ValueError(f"train_step.apply: {len(grad_sums)} gradient sums for "
                             f"{len(self.param_names)} parameters ({self.param_names})")
        self.module.apply(*grad_sums, *self._ordered("parameter", self.param_names, params),
                          *self._ordered("state", self.state_names, state),
                          self.optimizer.lr if lr is None else lr, batch_size)


def compile_train_step(
    loss: Expr,
    params: Sequence[Expr] | Mapping[Expr, Any],
    optimizer: Optimizer,
    inputs: Sequence[Expr],
    metrics: Mapping[str, Expr] | None = None,
    name: str = "train_step",
    cache_dir: str | None = None,
    settings: Mapping[Expr, tuple[float, float]] | None = None,
    *,
    split: bool = False,
    check: bool = True,
    backend: str = "numpy",
) -> TrainStep:
    """Generate, write and import the training step of ``optimizer`` on ``loss``.

    See `train_step_spec` for the arguments; ``name`` names the module, ``cache_dir`` where its
    file goes (default: symdl's module cache). ``split=True`` adds ``grads`` and ``apply`` to
    the module for data-parallel training (`TrainStep.grads`, `TrainStep.apply`,
    ``sd.fit(..., client=...)``); the fused ``train_step`` is there as well. ``check=False``
    leaves out the entry checks (as `symdl.compile`'s); ``backend="numba"`` compiles the
    fused elementwise statements with numba (as `symdl.compile`'s; not with ``split``).
    """
    from codegen import compile as _compile

    spec = train_step_spec(loss, params, optimizer, inputs, metrics, settings, split)
    if split and backend != "numpy":  # workers compile the sent source with numpy only
        raise UsageError(f"compile_train_step: backend={backend!r} is not supported with "
                         "split=True (data-parallel steps); use the default backend='numpy'")
    if split:
        return _compile_split(spec, name, cache_dir, check)
    module = _compile(spec.functions, name, cache_dir, check=check, backend=backend)
    return TrainStep(spec, module)


def _compile_split(spec: TrainStepSpec, name: str, cache_dir: str | None,
                   check: bool = True) -> TrainStep:
    """`codegen.compile` (a warm start when the module is cached), keeping the module's
    ``.npy`` constants, which workers need along with the source to compile the same module
    (`symdl.distributed`); the module verified them when it loaded them."""
    from pathlib import Path

    from codegen import compile as _compile

    module = _compile(spec.functions, name, cache_dir, check=check)
    folder = Path(module.__file__ or "").parent
    arrays = {f: np.load(folder / f, allow_pickle=False) for f in module.__symdl_constants__}
    return TrainStep(spec, module, arrays)


__all__ = [
    "SGD", "Adam", "AdamW", "Optimizer", "TrainStep", "TrainStepSpec", "compile_train_step",
    "make_optimizer", "train_step_spec",
]
