"""The same training step in other frameworks, each in its idiomatic fastest CPU mode.

Every factory takes the layer sizes, the fixed batch (pixels, one-hot labels, integer labels),
the initial parameters (float32 numpy arrays, copied, never modified), the learning rate, the
thread count and the optimizer (``"sgd"`` or ``"adam"``, with `ADAM`'s hyperparameters), and
returns a zero-argument ``step()`` that does forward, backward and the update, blocks until done,
and returns the loss (before the update) as something ``float()`` accepts. A framework that is
not installed, or cannot run here, raises `FrameworkUnavailable` with the reason, and the
benchmark prints "n/a" with that reason as a footnote.

The frameworks are optional (``pip install -e .[bench]``); symdl never imports this module.
"""

from __future__ import annotations

import ctypes.util
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

Step = Callable[[], Any]

# Adam's hyperparameters for every implementation (the learning rate comes with the workload).
ADAM = {"b1": 0.9, "b2": 0.999, "eps": 1e-8}


class FrameworkUnavailable(RuntimeError):
    """The framework is not installed or cannot run here; the message says why."""


def _check_optimizer(optimizer: str) -> None:
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")


def configure_pytensor_blas() -> str:
    """Point PyTensor's C backend at the system OpenBLAS, before pytensor is imported.

    PyTensor 3 finds no BLAS to link in a pip install (``blas__ldflags`` stays empty), and then
    its C backend runs every ``Dot22`` as ``numpy.dot`` from Python. With ``libopenblas-dev``
    installed, ``-lopenblas`` gives it the C ``Gemm`` its users get from conda. Returns the
    flags set, or "" when there is no OpenBLAS to link or the user chose flags already.
    """
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "blas__ldflags" in flags or ctypes.util.find_library("openblas") is None:
        return ""
    os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "blas__ldflags=-lopenblas") if f)
    return "-lopenblas"


def _torch_modules() -> tuple[Any, Any]:
    try:
        import torch
        import torch.nn.functional as F
    except ImportError as err:
        raise FrameworkUnavailable(f"torch not installed ({err})") from err
    return torch, F


def _torch_step(sizes: list[int], x: np.ndarray, labels: np.ndarray, params: list[np.ndarray],
                lr: float, threads: int, optimizer: str, compiled: bool) -> Step:
    _check_optimizer(optimizer)
    torch, F = _torch_modules()
    torch.set_num_threads(threads)
    xt, lt = torch.from_numpy(x), torch.from_numpy(labels)
    ps = [torch.tensor(p, requires_grad=True) for p in params]

    def loss_fn(qs: list[Any], xb: Any, lb: Any) -> Any:
        h = xb
        for W, b in zip(qs[0:-2:2], qs[1:-2:2]):
            h = torch.relu(torch.addmm(b, h, W))
        return F.cross_entropy(torch.addmm(qs[-1], h, qs[-2]), lb)

    if compiled:
        # The usual torch.compile training loop: the model and loss compiled (inductor makes a
        # forward and a backward kernel set through AOTAutograd), the optimizer step eager.
        loss_fn = torch.compile(loss_fn, dynamic=False)
    if optimizer == "adam":
        try:
            opt = torch.optim.Adam(ps, lr=lr, betas=(ADAM["b1"], ADAM["b2"]), eps=ADAM["eps"],
                                   fused=True)
            remark = ""
        except RuntimeError:  # a build without the fused CPU kernel
            opt = torch.optim.Adam(ps, lr=lr, betas=(ADAM["b1"], ADAM["b2"]), eps=ADAM["eps"],
                                   foreach=True)
            remark = "torch: foreach Adam (no fused CPU Adam in this build)"

        def step() -> Any:
            loss = loss_fn(ps, xt, lt)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            return loss.detach()

        if remark:
            step.note = remark  # type: ignore[attr-defined]
        return step

    def sgd_step() -> Any:
        loss = loss_fn(ps, xt, lt)
        loss.backward()
        with torch.no_grad():
            torch._foreach_add_(ps, [p.grad for p in ps], alpha=-lr)
        for p in ps:
            p.grad = None
        return loss.detach()

    return sgd_step


def torch_eager(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                params: list[np.ndarray], lr: float, threads: int, optimizer: str = "sgd") -> Step:
    """PyTorch eager: autograd backward, then one foreach SGD update or fused Adam."""
    return _torch_step(sizes, x, labels, params, lr, threads, optimizer, compiled=False)


def torch_compile(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                  params: list[np.ndarray], lr: float, threads: int,
                  optimizer: str = "sgd") -> Step:
    """PyTorch ``torch.compile`` (inductor, C++ kernels) of forward and loss; eager update.

    Compilation happens on the first call (the benchmark times it separately).
    """
    _torch_modules()
    # Inductor writes C++ kernels for the CPU and builds them with $CXX or g++/clang++.
    compilers = [os.environ.get("CXX", ""), "g++", "clang++", "c++"]
    if not any(c and shutil.which(c) for c in compilers):
        raise FrameworkUnavailable("torch.compile on CPU needs a C++ compiler (none found)")
    return _torch_step(sizes, x, labels, params, lr, threads, optimizer, compiled=True)


def jax_jit(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
            params: list[np.ndarray], lr: float, threads: int, optimizer: str = "sgd") -> Step:
    """JAX: ``jax.jit`` of the whole step (value_and_grad plus update), state donated.

    Adam is optax's when optax is installed, else the same update written in jax.numpy.
    """
    _check_optimizer(optimizer)
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

    rate = np.float32(lr)
    if optimizer == "sgd":
        def update(ps: list[Any], grads: list[Any], opt_state: Any) -> tuple[list[Any], Any]:
            return [p - rate * g for p, g in zip(ps, grads)], opt_state

        opt_state: Any = ()
    else:
        try:
            import optax
        except ImportError:
            update, opt_state = _jax_adam(jnp, params, rate)
        else:
            tx = optax.adam(lr, b1=ADAM["b1"], b2=ADAM["b2"], eps=ADAM["eps"])

            def update(ps: list[Any], grads: list[Any], st: Any) -> tuple[list[Any], Any]:
                deltas, st = tx.update(grads, st, ps)
                return optax.apply_updates(ps, deltas), st

            opt_state = tx.init([jnp.asarray(p) for p in params])

    def _step(ps: list[Any], st: Any, xb: Any, yb: Any) -> tuple[list[Any], Any, Any]:
        loss, grads = jax.value_and_grad(loss_fn)(ps, xb, yb)
        ps, st = update(ps, grads, st)
        return ps, st, loss

    # Donation lets XLA write the new parameters over the old buffers, as an in-place update.
    step_jit = jax.jit(_step, donate_argnums=(0, 1))
    state = [[jnp.asarray(p) for p in params], opt_state]
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    def step() -> Any:
        state[0], state[1], loss = step_jit(state[0], state[1], xj, yj)
        return jax.block_until_ready((state[0], loss))[1]

    if optimizer == "adam" and not _has("optax"):
        step.note = "JAX: Adam written in jax.numpy (optax not installed)"  # type: ignore[attr-defined]
    return step


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _jax_adam(jnp: Any, params: list[np.ndarray], rate: np.float32) -> tuple[Callable, Any]:
    """Adam in jax.numpy, for when optax is missing: the textbook bias-corrected update."""
    b1, b2, eps = (np.float32(ADAM[k]) for k in ("b1", "b2", "eps"))

    def update(ps: list[Any], grads: list[Any], st: Any) -> tuple[list[Any], Any]:
        ms, vs, t = st
        t = t + 1
        ms = [b1 * m + (1 - b1) * g for m, g in zip(ms, grads)]
        vs = [b2 * v + (1 - b2) * g * g for v, g in zip(vs, grads)]
        step_size = rate * jnp.sqrt(1 - b2**t) / (1 - b1**t)
        ps = [p - step_size * m / (jnp.sqrt(v) + eps * jnp.sqrt(1 - b2**t))
              for p, m, v in zip(ps, ms, vs)]
        return ps, (ms, vs, t)

    # Separate buffers for m and v: the step donates its state, and XLA refuses to donate one
    # buffer twice.
    ms = [jnp.zeros(p.shape, p.dtype) for p in params]
    vs = [jnp.zeros(p.shape, p.dtype) for p in params]
    return update, (ms, vs, jnp.float32(0))


def _pytensor_step(sizes: list[int], x: np.ndarray, y: np.ndarray, params: list[np.ndarray],
                   lr: float, mode: str, optimizer: str) -> Step:
    _check_optimizer(optimizer)
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
    if optimizer == "sgd":
        updates = [(p, p - rate * g) for p, g in zip(shared, grads)]
    else:
        b1, b2, eps = (np.float32(ADAM[k]) for k in ("b1", "b2", "eps"))
        t = pytensor.shared(np.float32(0), name="t")
        t_next = t + np.float32(1)
        root_bc2 = pt.sqrt(np.float32(1) - b2**t_next)
        step_size = rate * root_bc2 / (np.float32(1) - b1**t_next)
        updates = [(t, t_next)]
        for p, g in zip(shared, grads):
            m = pytensor.shared(np.zeros_like(p.get_value()))
            v = pytensor.shared(np.zeros_like(p.get_value()))
            m_next = b1 * m + (np.float32(1) - b1) * g
            v_next = b2 * v + (np.float32(1) - b2) * g * g
            updates += [(m, m_next), (v, v_next),
                        (p, p - step_size * m_next / (pt.sqrt(v_next) + eps * root_bc2))]
    # "CVM" is the C backend (C thunks run by a C virtual machine); in PyTensor 3 "FAST_RUN"
    # means the numba backend, so the C backend must be asked for by name.
    fn = pytensor.function([X, Y], loss, mode=mode, updates=updates)
    return lambda: fn(x, y)


def pytensor_c_blas() -> str:
    """How PyTensor's C backend does its matrix products here, for the table's footnote."""
    try:
        import pytensor
    except ImportError:
        return "pytensor not installed"
    flags = pytensor.config.blas__ldflags
    if flags:
        return f"C backend, BLAS linked with `{flags}` (C Gemm)"
    return ("C backend without BLAS (blas__ldflags empty): Dot22 runs numpy.dot from Python, "
            "Gemm uses PyTensor's NumPy C-API fallback")


def pytensor_numba(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                   params: list[np.ndarray], lr: float, threads: int,
                   optimizer: str = "sgd") -> Step:
    """PyTensor: ``pytensor.function`` with shared-variable updates, numba backend."""
    return _pytensor_step(sizes, x, y, params, lr, "NUMBA", optimizer)


def pytensor_c(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
               params: list[np.ndarray], lr: float, threads: int, optimizer: str = "sgd") -> Step:
    """PyTensor: ``pytensor.function`` with shared-variable updates, C backend (mode CVM)."""
    return _pytensor_step(sizes, x, y, params, lr, "CVM", optimizer)


def autograd_numpy(sizes: list[int], x: np.ndarray, y: np.ndarray, labels: np.ndarray,
                   params: list[np.ndarray], lr: float, threads: int,
                   optimizer: str = "sgd") -> Step:
    """HIPS autograd: ``value_and_grad`` traced on every call over numpy, in-place SGD."""
    _check_optimizer(optimizer)
    if optimizer != "sgd":
        raise FrameworkUnavailable("autograd row: SGD only")
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


# Column label -> factory, in table order: the peers of issue 17's table.
FRAMEWORKS: dict[str, Callable[..., Step]] = {
    "PyTensor C": pytensor_c,
    "PyTensor numba": pytensor_numba,
    "JAX jit": jax_jit,
    "torch.compile": torch_compile,
    "torch eager": torch_eager,
}
# Columns only on request (``--frameworks autograd``).
EXTRA_FRAMEWORKS: dict[str, Callable[..., Step]] = {"autograd": autograd_numpy}
