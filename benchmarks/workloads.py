"""Issue 17's workloads: what each row of the peer table runs, for symdl and for numpy.

A `Workload` is one row: a float32 ReLU MLP (``sizes``; two sizes is softmax regression) at a
batch size, trained by SGD or Adam, or a second-order row (full Hessian, HVP) whose numbers come
from ``benchmarks/bench_hessian.py``. For the training rows this module builds the three
candidates measured in the same rounds: the symdl step (generated numpy), the hand-written
numpy step (the baseline every ratio divides by) and the matrix products alone (the floor).

Paper model of the floor: a step of an MLP with ``L`` weight layers does ``3L - 1`` GEMMs
(``L`` forward, ``L`` weight gradients, ``L - 1`` input gradients; the first layer needs none),
``2 * B * sum(n_in * n_out)`` flops each way, so about ``6 B P`` flops for ``P`` weights. The
elementwise work (bias, ReLU, softmax, updates) is ``O(B * sum(n_out) + P)``: against
``6 B P`` it is a few per cent when ``B`` is large and the weights wide, and most of the step
for softmax regression at batch 100, whose GEMMs have only 10 columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks import handwritten

LR = np.float32(0.01)
ADAM_LR = np.float32(1e-3)


@dataclass(frozen=True)
class Workload:
    """One row of the table.

    Attributes:
        name: the row label.
        kind: ``"sgd"`` or ``"adam"`` (a training step measured here), ``"hessian"`` or
            ``"hvp"`` (measured by ``bench_hessian.hessian_rows``).
        sizes: layer sizes, input first (``(784, 10)`` is softmax regression).
        batch: rows per step.
        repeats: interleaved rounds of a full run.
        quick_repeats: rounds with ``--quick``.
    """

    name: str
    kind: str
    sizes: tuple[int, ...]
    batch: int
    repeats: int = 50
    quick_repeats: int = 15

    @property
    def depth(self) -> int:
        """Number of weight layers."""
        return len(self.sizes) - 1

    @property
    def trains(self) -> bool:
        """Whether this row is a training step measured by this harness."""
        return self.kind in ("sgd", "adam")


WORKLOADS: tuple[Workload, ...] = (
    Workload("softmax regression B=100", "sgd", (784, 10), 100, 200, 40),
    Workload("softmax regression B=1000", "sgd", (784, 10), 1000, 60, 15),
    Workload("MLP 784-256-10 B=128", "sgd", (784, 256, 10), 128, 50, 15),
    Workload("MLP 784-512-256-10 B=128", "sgd", (784, 512, 256, 10), 128, 40, 10),
    Workload("MLP 784-1024-1024-10 B=256", "sgd", (784, 1024, 1024, 10), 256, 15, 5),
    Workload("Adam, MLP 784-256-10 B=128", "adam", (784, 256, 10), 128, 50, 15),
    Workload("full Hessian of softmax regression 150x150 B=200", "hessian", (15, 10), 200),
    Workload("HVP of softmax regression B=200", "hvp", (15, 10), 200),
)


def tiny_workloads() -> tuple[Workload, ...]:
    """The same rows at toy sizes (same names and kinds), for the smoke test."""
    tiny = {"sgd": (784, 8, 10), "adam": (784, 8, 10)}
    return tuple(Workload(w.name, w.kind, (784, 10) if w.depth == 1 else tiny.get(w.kind, w.sizes),
                          4, 2, 2) for w in WORKLOADS)


def numpy_sgd_step(sizes: tuple[int, ...]) -> Callable[..., np.float32]:
    """The hand-written SGD step for ``sizes``: ``step(x, y, *params, lr) -> loss``."""
    if len(sizes) == 2:
        return handwritten.softmax_step
    if len(sizes) == 3:
        return handwritten.mlp_step
    return handwritten.mlp_layers_step


def gemm_floor(sizes: tuple[int, ...], batch: int) -> Callable[[], None]:
    """The ``3L - 1`` matrix products of one step on random float32 operands, nothing else."""
    rng = np.random.default_rng(1)
    dims = list(zip(sizes[:-1], sizes[1:]))
    Ws = [rng.standard_normal(d, dtype=np.float32) for d in dims]
    acts = [rng.standard_normal((batch, n_in), dtype=np.float32) for n_in, _ in dims]
    gs = [rng.standard_normal((batch, n_out), dtype=np.float32) for _, n_out in dims]
    return lambda: handwritten.mlp_layers_matmuls(Ws, acts, gs)


def symdl_sgd_functions(sizes: tuple[int, ...]) -> dict[str, tuple]:
    """The symdl SGD step for ``sizes`` as codegen functions (`benchmarks.models.mlp_sizes`).

    The generated ``train_step(x, y, *params, lr)`` returns the mean cross-entropy and writes
    ``p - lr * p_grad`` into every parameter in place.
    """
    from benchmarks.models import mlp_sizes

    return mlp_sizes(sizes)


def symdl_sgd_step(workload: Workload, cache_dir: str, backend: str | None = None
                   ) -> Callable[..., Any]:
    """Generate and import the SGD step; ``backend`` is passed to `sd.compile` when given.

    Raises:
        TypeError: when this symdl's `compile` has no ``backend`` parameter.
    """
    import symdl as sd

    options = {} if backend is None else {"backend": backend}
    name = f"bench17_{'_'.join(map(str, workload.sizes))}{'_' + backend if backend else ''}"
    module = sd.compile(symdl_sgd_functions(workload.sizes), name, cache_dir=cache_dir,
                        **options)
    return module.train_step


def adam_steps(workload: Workload, x: np.ndarray, labels: np.ndarray, cache_dir: str,
               backend: str | None = None
               ) -> tuple[Callable[[], Any], Callable[[], Any], list[np.ndarray]]:
    """The generated and the hand-written Adam steps of a one-hidden-layer MLP, same start.

    Returns ``(symdl_step, numpy_step, initial_params)``: zero-argument callables returning the
    loss before their update, each on its own copy of the parameters and optimizer state, and
    the initial ``[W1, b1, W2, b2]`` for the peers. The numpy side is `bench_adam.NumpyAdamMLP`.
    ``backend`` is passed to `compile_train_step` when given (``"numba"``).
    """
    import symdl as sd
    from benchmarks.bench_adam import NumpyAdamMLP

    if workload.depth != 2:
        raise ValueError(f"adam_steps(): one hidden layer only, got sizes {workload.sizes}")
    xs = sd.placeholder("x", (None, workload.sizes[0]))
    ys = sd.placeholder("y", (None,), dtype="int64")
    logits, params = sd.layers.mlp(xs, list(workload.sizes[1:]), activation=sd.relu,
                                   name="dense")
    loss = sd.mean(sd.softmax_cross_entropy(logits, ys)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), ys), "float32")).named("accuracy")
    options = {} if backend is None else {"backend": backend}
    train = sd.optim.compile_train_step(loss, params, sd.optim.Adam(float(ADAM_LR)), [xs, ys],
                                        {"accuracy": acc},
                                        name=f"bench17_adam{'_' + backend if backend else ''}",
                                        cache_dir=cache_dir, **options)
    values = sd.init.initialize(params, seed=0)
    initial = [values[k].copy() for k in ("dense0_W", "dense0_b", "dense1_W", "dense1_b")]
    reference = NumpyAdamMLP(values)
    state = train.init_state()
    mine = {k: v.copy() for k, v in values.items()}
    args = [x, labels, *(mine[k] for k in train.param_names),
            *(state[k] for k in train.state_names), float(ADAM_LR)]
    fn = train._train  # the generated function itself: no Python wrapper in the timed call
    return (lambda: fn(*args)[0]), (lambda: reference.step(x, labels, float(ADAM_LR))[0]), initial
