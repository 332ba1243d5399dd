"""The full Hessian of softmax regression, and its Hessian-vector product, against hand-written
numpy (issue 17).

Workload: the mean softmax cross-entropy of ``x @ W + b`` over a batch of B = 200 examples with
D = 15 features and C = 10 classes, differentiated twice with respect to W (150 entries, so
H is 150 x 150), in float64 and float32. The baseline is the closed form written carefully in
numpy: ``H = (diag(p) - p p^T) kron x x^T`` averaged over the batch, as one GEMM of the
(B, D C) products ``x_d p_c`` and a diagonal-block update, never a loop over examples. symdl's
``sd.hessian`` is forward over reverse (the batched JVP of the gradient along the identity),
generated for the numpy backend and for the numba one (``symdl numba``); the peers are JAX
``jit(jacfwd(jacrev))``, ``torch.func.jacfwd(jacrev)`` and PyTensor's
``pytensor.gradient.hessian`` (each skipped when it does not import). The HVP row compares
``sd.hvp`` with the hand-written product ``x^T (p * (x V - sum(p * x V))) / B``.

Every candidate runs in this process, interleaved round by round (`common.interleave`); a
ratio is the median of the per-round ratios to numpy. Run it alone, as::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_hessian.py

What it found (2-core machine, load average 0.2, 1 BLAS thread, 21 rounds, 2026-11-29): symdl
3.1x numpy in float64 and 2.6x in float32; the HVP 1.07x / 1.10x. `run_all.py` (float32, 04:36 UTC)
gives symdl 2.5x at 2 threads and 2.9x at 1, symdl numba 1.9x and 2.4x, JAX 4.0x and 2.9x,
PyTensor 5.7x, torch.func 21x to 34x. The goal (1.5x)
is missed: forward over reverse materializes tangents of (B, C, n) = 300,000 entries (2.4 MB in
float64) and passes over them with numpy, while the closed form exploits the Kronecker structure
and touches only (B, D C) arrays that stay in cache. Each pass now writes into the tangents'
own array; before, fusion counted the batch axis as 1 and computed them as temporaries inside
one expression (float64 22x, float32 3.6x, at load 1-2).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import interleave, limit_threads, note  # noqa: E402

B, D, C = 200, 15, 10
COLUMNS = ("symdl", "symdl_numba", "jax", "torch", "pytensor")
Fn = Callable[[], Any]


def problem(dtype: str, seed: int = 0) -> tuple[np.ndarray, ...]:
    """A fixed batch: x (B, D), one-hot y (B, C), W (D, C), b (C,), a direction V (D, C)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, D)).astype(dtype)
    y = np.eye(C, dtype=dtype)[rng.integers(0, C, B)]
    W = (0.3 * rng.standard_normal((D, C))).astype(dtype)
    b = (0.1 * rng.standard_normal(C)).astype(dtype)
    V = rng.standard_normal((D, C)).astype(dtype)
    return x, y, W, b, V


def _probabilities(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    z = x @ W
    z += b
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z, out=z)
    p /= p.sum(axis=1, keepdims=True)
    return p


def hessian_numpy(x: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The closed form, (D, C, D, C): sum over rows of (diag(p) - p p^T) kron x x^T, over B."""
    batch, features = x.shape
    classes = W.shape[1]
    p = _probabilities(x, W, b)
    xp = (x[:, :, None] * p[:, None, :]).reshape(batch, features * classes)  # x_d p_c
    H = xp.T @ xp  # sum_n x_d p_c x_e p_f: the p p^T part, one GEMM
    np.negative(H, out=H)
    H4 = H.reshape(features, classes, features, classes)
    # diag(p) part: sum_n x_d x_e p_c on the blocks c == f (a writable diagonal view)
    blocks = np.einsum("dcec->dec", H4)
    blocks += (x.T @ xp).reshape(features, features, classes)
    H /= batch
    return H4


def hessian_numpy_forward(x: np.ndarray, y: np.ndarray, W: np.ndarray,
                          b: np.ndarray) -> np.ndarray:
    """Forward over reverse by hand, every update in place: the floor of symdl's approach.

    The same batch-last layout and GEMMs as symdl's generated code, with one (B, C, n) array
    alive instead of two; `main --floor` times it against the closed form.
    """
    batch, features = x.shape
    classes = W.shape[1]
    n = features * classes
    p = _probabilities(x, W, b)
    identity = np.eye(n, dtype=x.dtype).reshape(features, classes * n)
    t = (x @ identity).reshape(batch, classes, n)  # d logits along every direction
    t -= p[:, None, :] @ t  # softmax's JVP: t - sum(p * t), then times p
    t *= p[:, :, None]
    H = x.T @ t.reshape(batch, classes * n)
    H /= batch
    return H.reshape(features, classes, features, classes)


def hvp_numpy(x: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray,
              V: np.ndarray) -> np.ndarray:
    """H V without forming H: the change of the gradient x^T (p - y) / B along V."""
    p = _probabilities(x, W, b)
    dz = x @ V
    dp = dz - (p * dz).sum(axis=1, keepdims=True)
    dp *= p
    out = x.T @ dp
    out /= x.shape[0]
    return out


def _symdl(dtype: str, *, hvp: bool, backend: str = "numpy") -> Callable[..., np.ndarray]:
    """symdl's generated Hessian (or HVP), with the numpy or the numba backend."""
    import symdl as sd

    x = sd.placeholder("x", (None, D), dtype)
    y = sd.placeholder("y", (None, C), dtype)
    W = sd.parameter("W", (D, C), dtype)
    b = sd.parameter("b", (C,), dtype)
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))
    cache = Path(tempfile.mkdtemp(prefix="bench_hessian_"))
    if hvp:
        V = sd.placeholder("V", (D, C), dtype)
        module = sd.compile({"hvp": ([x, y, W, b, V], sd.hvp(loss, W, V))},
                            f"bench_hvp_{backend}", cache_dir=cache, backend=backend)
        return module.hvp
    module = sd.compile({"hessian": ([x, y, W, b], sd.hessian(loss, W))},
                        f"bench_hessian_{backend}", cache_dir=cache, backend=backend)
    return module.hessian


def _jax(dtype: str, *, hvp: bool) -> Callable[..., Any]:
    import jax
    import jax.numpy as jnp

    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)

    def loss(W: Any, x: Any, y: Any, b: Any) -> Any:
        logp = jax.nn.log_softmax(x @ W + b, axis=1)
        return -jnp.mean(jnp.sum(y * logp, axis=1))

    if hvp:
        def hvp_fn(W: Any, x: Any, y: Any, b: Any, V: Any) -> Any:
            return jax.jvp(lambda w: jax.grad(loss)(w, x, y, b), (W,), (V,))[1]

        return jax.jit(hvp_fn)
    return jax.jit(jax.jacfwd(jax.jacrev(loss)))


def _torch(dtype: str, *, hvp: bool, threads: int | None) -> Callable[..., Any]:
    import torch
    import torch.nn.functional as F
    from torch.func import grad, jacfwd, jacrev, jvp

    if threads:
        torch.set_num_threads(threads)

    def loss(W: Any, x: Any, y: Any, b: Any) -> Any:
        return -(y * F.log_softmax(x @ W + b, dim=1)).sum(dim=1).mean()

    if hvp:
        def hvp_fn(W: Any, x: Any, y: Any, b: Any, V: Any) -> Any:
            return jvp(lambda w: grad(loss)(w, x, y, b), (W,), (V,))[1]

        return hvp_fn
    return jacfwd(jacrev(loss))


def _pytensor(dtype: str, *, hvp: bool) -> Callable[..., Any]:
    import pytensor
    import pytensor.tensor as pt
    from pytensor.gradient import hessian, hessian_vector_product

    # pytensor's hessian takes a vector: W is given flat and reshaped in the graph.
    w = pt.vector("w", dtype=dtype)
    x, y, b = pt.matrix("x", dtype=dtype), pt.matrix("y", dtype=dtype), pt.vector("b", dtype=dtype)
    logp = pt.special.log_softmax(x @ w.reshape((D, C)) + b, axis=1)
    cost = -pt.mean(pt.sum(y * logp, axis=1))
    if hvp:
        v = pt.vector("v", dtype=dtype)
        f = pytensor.function([w, x, y, b, v], hessian_vector_product(cost, w, v))
        return lambda W, x, y, b, V: f(W.ravel(), x, y, b, V.ravel())
    f = pytensor.function([w, x, y, b], hessian(cost, w))
    return lambda W, x, y, b: f(W.ravel(), x, y, b)


def _peer(name: str, make: Callable[[], Fn], expected: np.ndarray, rtol: float) -> Fn | None:
    """A peer's zero-argument call, checked against numpy once; None if it cannot run here."""
    try:
        fn = make()
        got = np.asarray(fn())
    except Exception as err:  # an optional framework: any failure skips its column
        note(f"  {name}: skipped ({type(err).__name__}: {str(err).splitlines()[0][:80]})")
        return None
    got = got.reshape(expected.shape)
    if not np.allclose(got, expected, rtol=rtol, atol=rtol * np.abs(expected).max()):
        note(f"  {name}: skipped (its result differs from numpy's)")
        return None
    return fn


def _row(workload: str, dtype: str, *, hvp: bool, repeats: int,
         threads: int | None, columns: Sequence[str] = COLUMNS) -> dict[str, Any]:
    x, y, W, b, V = problem(dtype)
    rtol = 1e-8 if dtype == "float64" else 2e-4
    if hvp:
        baseline: Fn = lambda: hvp_numpy(x, y, W, b, V)  # noqa: E731
    else:
        baseline = lambda: hessian_numpy(x, y, W, b)  # noqa: E731
    expected = np.asarray(baseline(), np.float64)
    args = (x, y, W, b, V) if hvp else (x, y, W, b)
    note(f"{workload}:")
    candidates: dict[str, Fn] = {"numpy": baseline}

    def jax_call() -> Fn:
        import jax
        import jax.numpy as jnp

        fn = _jax(dtype, hvp=hvp)
        jargs = [jnp.asarray(a) for a in (W, x, y, b, V)[: 5 if hvp else 4]]
        return lambda: jax.block_until_ready(fn(*jargs))

    def torch_call() -> Fn:
        import torch

        fn = _torch(dtype, hvp=hvp, threads=threads)
        targs = [torch.from_numpy(a) for a in (W, x, y, b, V)[: 5 if hvp else 4]]
        return lambda: fn(*targs)

    def pytensor_call() -> Fn:
        fn = _pytensor(dtype, hvp=hvp)
        pargs = (W, x, y, b, V)[: 5 if hvp else 4]
        return lambda: fn(*pargs)

    def symdl_call(backend: str = "numpy") -> Fn:
        fn = _symdl(dtype, hvp=hvp, backend=backend)
        return lambda: fn(*args)

    makers = {"symdl": symdl_call, "symdl_numba": lambda: symdl_call("numba"),
              "jax": jax_call, "torch": torch_call, "pytensor": pytensor_call}
    for name, make in makers.items():
        if name not in columns:
            continue
        fn = _peer(name, make, expected, rtol)
        if fn is not None:
            candidates[name] = fn
    context = limit_threads(threads) if threads else contextlib.nullcontext()
    with context:
        timings = interleave(candidates, repeats=repeats, warmup=3, baseline="numpy")
    row: dict[str, Any] = {"workload": workload,
                           "numpy_s": timings["numpy"].median_us / 1e6}
    for name in columns:
        row[name] = timings[name].median_ratio if name in timings else None
    return row


def hessian_rows(repeats: int = 21, quick: bool = False, threads: int | None = None,
                 columns: Sequence[str] = COLUMNS) -> list[dict[str, Any]]:
    """The Hessian and HVP rows: each a dict with ``workload``, ``numpy_s`` (the hand-written
    numpy time, seconds) and per peer in ``columns`` (default all of `COLUMNS`) the median ratio
    to numpy (None: the peer is unavailable). ``quick``: float64 Hessian and HVP only, few
    repeats (for smoke tests). ``threads``: hold the BLAS pools (and torch) to that many
    threads; None leaves them. `benchmarks/run_all.py` asks for one peer per process, so that
    no two libraries' thread pools run side by side."""
    if quick:
        repeats = min(repeats, 5)
    cases = [("full Hessian, softmax regression 150x150, float64", "float64", False),
             ("full Hessian, softmax regression 150x150, float32", "float32", False),
             ("HVP, softmax regression, float64", "float64", True),
             ("HVP, softmax regression, float32", "float32", True)]
    if quick:
        cases = [cases[0], cases[2]]
    return [_row(w, dt, hvp=h, repeats=repeats, threads=threads, columns=columns)
            for w, dt, h in cases]


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table (ratios to numpy; "n/a" where a peer is unavailable)."""
    head = ("| workload | numpy (ms) | symdl | symdl numba | JAX jit(jacfwd(jacrev)) | torch.func "
            "| PyTensor |")
    lines = [head, "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        cells = [f"{row['numpy_s'] * 1e3:.3f}"]
        cells += ["n/a" if row[c] is None else f"{row[c]:.2f}" for c in COLUMNS]
        lines.append(f"| {row['workload']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the table of `hessian_rows`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS (and torch) threads; default: as the environment sets")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="also time forward over reverse by hand, in place, against numpy")
    args = parser.parse_args(argv)
    if args.floor:
        x, y, W, b, _ = problem("float64")
        with limit_threads(args.threads) if args.threads else contextlib.nullcontext():
            floor = interleave({"numpy": lambda: hessian_numpy(x, y, W, b),
                                "forward": lambda: hessian_numpy_forward(x, y, W, b)},
                               repeats=args.repeats, warmup=3)
        print(f"forward over reverse by hand, in place (float64): "
              f"{floor['forward'].median_ratio:.2f}x numpy\n")
    rows = hessian_rows(args.repeats, args.quick, args.threads)
    threads = args.threads or os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"B={B}, D={D}, C={C}; BLAS threads: {threads}; median ratio to numpy over "
          f"{args.repeats} interleaved rounds\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
