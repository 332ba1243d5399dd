"""The same SGD training step in other frameworks, each in its idiomatic fastest CPU mode.

Every factory takes the layer sizes, the fixed batch, the initial parameters (float32 numpy
arrays, copied, never modified) and the learning rate, and returns a zero-argument ``step()``
that does forward, backward and the SGD update, blocks until done, and returns the loss (before
the update) as something ``float()`` accepts. A framework that is not installed raises
`FrameworkUnavailable` with the reason, and the benchmark prints a row saying so.

The frameworks are optional (``pip install -e .[bench]``); symdl never imports this module.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

Step = Callable[[], Any]


class FrameworkUnavailable(RuntimeError):
    """The framework is not installed or cannot run here; the message says why."""


def torch_eager(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                params: list[np.ndarray], lr: float, threads: int) -> Step:
    """PyTorch eager: autograd backward, then in-place updates under ``torch.no_grad``."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as err:
        raise FrameworkUnavailable(f"torch not installed ({err})") from err
    torch.set_num_threads(threads)
    xt, lt = torch.from_numpy(x), torch.from_numpy(labels)
    ps = [torch.tensor(p, requires_grad=True) for p in params]

    def step() -> Any:
        h = xt
        for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = torch.relu(torch.addmm(b, h, W))
        loss = F.cross_entropy(torch.addmm(ps[-1], h, ps[-2]), lt)
        loss.backward()
        with torch.no_grad():
            for p in ps:
                p.add_(p.grad, alpha=-lr)
                p.grad = None
        return loss.detach()

    return step


def jax_jit(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
            params: list[np.ndarray], lr: float, threads: int) -> Step:
    """JAX: ``jax.jit`` of the whole step (value_and_grad plus update), parameters donated."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as err:
        raise FrameworkUnavailable(f"jax not installed ({err})") from err

    def loss_fn(ps: list[Any], xb: Any, yb: Any) -> Any:
        h = xb
        for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
            h = jax.nn.relu(h @ W + b)
        logp = jax.nn.log_softmax(h @ ps[-2] + ps[-1], axis=1)
        return -jnp.mean(jnp.sum(yb * logp, axis=1))

    def _step(ps: list[Any], xb: Any, yb: Any) -> tuple[list[Any], Any]:
        loss, grads = jax.value_and_grad(loss_fn)(ps, xb, yb)
        return [p - np.float32(lr) * g for p, g in zip(ps, grads)], loss

    # Donation lets XLA write the new parameters over the old buffers, as an in-place update.
    step_jit = jax.jit(_step, donate_argnums=0)
    state = [[jnp.asarray(p) for p in params]]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def step() -> Any:
        state[0], loss = step_jit(state[0], xj, yj)
        return jax.block_until_ready((state[0], loss))[1]

    return step


def _pytensor_step(sizes: list[int], x: np.ndarray, y: np.ndarray, params: list[np.ndarray],
                   lr: float, mode: str) -> Step:
    try:
        import pytensor
        import pytensor.tensor as pt
    except ImportError as err:
        raise FrameworkUnavailable(f"pytensor not installed ({err})") from err
    if mode == "NUMBA":
        try:
            import numba  # noqa: F401
        except ImportError as err:
            raise FrameworkUnavailable(f"numba not installed ({err})") from err
    elif not pytensor.config.cxx:
        raise FrameworkUnavailable("pytensor found no C++ compiler for its C backend")
    pytensor.config.floatX = "float32"
    X = pt.matrix("x", dtype="float32")
    Y = pt.matrix("y", dtype="float32")
    shared = [pytensor.shared(p.copy(), name=f"p{i}") for i, p in enumerate(params)]
    h = X
    for W, b in zip(shared[0:-2:2], shared[1:-2:2]):
        h = pt.maximum(h @ W + b, np.float32(0))
    logp = pt.special.log_softmax(h @ shared[-2] + shared[-1], axis=1)
    loss = -(Y * logp).sum(axis=1).mean()
    grads = pytensor.grad(loss, shared)
    rate = pt.constant(np.float32(lr))
    fn = pytensor.function([X, Y], loss, mode=mode,
                           updates=[(p, p - rate * g) for p, g in zip(shared, grads)])
    return lambda: fn(x, y)


def pytensor_numba(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                   params: list[np.ndarray], lr: float, threads: int) -> Step:
    """PyTensor: ``pytensor.function`` with shared-variable updates, numba backend."""
    return _pytensor_step(sizes, x, y, params, lr, "NUMBA")


def pytensor_c(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
               params: list[np.ndarray], lr: float, threads: int) -> Step:
    """PyTensor: ``pytensor.function`` with shared-variable updates, C backend (FAST_RUN)."""
    return _pytensor_step(sizes, x, y, params, lr, "FAST_RUN")


def autograd_numpy(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                   params: list[np.ndarray], lr: float, threads: int) -> Step:
    """HIPS autograd: ``value_and_grad`` traced on every call over numpy, in-place updates."""
    try:
        import autograd.numpy as anp
        from autograd import value_and_grad
    except ImportError as err:
        raise FrameworkUnavailable(f"autograd not installed ({err})") from err
    ps = [p.copy() for p in params]

    def loss_fn(qs: list[Any]) -> Any:
        h = x
        for W, b in zip(qs[0:-2:2], qs[1:-2:2]):
            h = anp.maximum(h @ W + b, 0.0)
        z = h @ qs[-2] + qs[-1]
        z = z - anp.max(z, axis=1, keepdims=True)
        logp = z - anp.log(anp.sum(anp.exp(z), axis=1, keepdims=True))
        return -anp.mean(anp.sum(y * logp, axis=1))

    value_and_grads = value_and_grad(loss_fn)
    rate = np.float32(lr)

    def step() -> Any:
        loss, grads = value_and_grads(ps)
        for p, g in zip(ps, grads):
            p -= rate * g
        return loss

    return step


# Row label -> factory, in table order.
FRAMEWORKS: dict[str, Callable[..., Step]] = {
    "PyTensor (numba)": pytensor_numba,
    "PyTensor (C)": pytensor_c,
    "JAX (jit)": jax_jit,
    "PyTorch (eager)": torch_eager,
    "autograd": autograd_numpy,
}
