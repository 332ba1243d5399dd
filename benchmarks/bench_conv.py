"""Convolution benchmarks: the LeNet training step, and conv2d forward + backward alone.

1. The Adam training step of ``examples/lenet_mnist.py`` at batch 64: symdl's generated module
   against a hand-written numpy implementation (im2col + one GEMM per product, col2im by kernel
   offsets, max-pooling by strided slices), interleaved in the same process; PyTorch eager on
   the CPU too where ``import torch`` works (it is skipped otherwise, never installed).
2. conv2d forward and both gradients alone at three sizes (symdl's generated function), and the
   two ways of computing the input gradient that the code generator chose between: col2im (a
   GEMM, then one strided add per kernel offset) and a transposed convolution (the cotangent
   spread into zeros, convolved with the flipped filter in one GEMM); and the two forms of
   max-pooling it chose between.

Medians over interleaved repeats; one BLAS thread (``$OPENBLAS_NUM_THREADS`` to change it)::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_conv.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import tempfile
from pathlib import Path

if __name__ == "__main__":
    # One BLAS thread unless asked otherwise, set before numpy loads its BLAS: on a shared
    # machine more threads than free cores make every GEMM wait (threadpoolctl may be missing).
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import environment, interleave, limit_threads, note  # noqa: E402

swv = np.lib.stride_tricks.sliding_window_view
BATCH = 64


# --------------------------------------------------------------------------- hand-written LeNet


def im2col(x: np.ndarray, k: int) -> np.ndarray:
    """(N, H, W, C) -> (N * OH * OW, k * k * C), each row one window in (KH, KW, C) order."""
    n, h, w, c = x.shape
    windows = swv(x, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    return windows.reshape(n * (h - k + 1) * (w - k + 1), k * k * c)


def col2im(cols: np.ndarray, shape: tuple[int, ...], k: int) -> np.ndarray:
    """The adjoint of `im2col`: each window's row added back into an image of ``shape``."""
    n, h, w, c = shape
    oh, ow = h - k + 1, w - k + 1
    cols = cols.reshape(n, oh, ow, k * k * c)
    out = np.zeros(shape, cols.dtype)
    for i in range(k):
        for j in range(k):
            start = (i * k + j) * c
            out[:, i:i + oh, j:j + ow] += cols[..., start:start + c]
    return out


def pool(a: np.ndarray) -> np.ndarray:
    """2x2 max-pooling with stride 2."""
    return np.maximum(np.maximum(a[:, 0::2, 0::2], a[:, 0::2, 1::2]),
                      np.maximum(a[:, 1::2, 0::2], a[:, 1::2, 1::2]))


def pool_grad(a: np.ndarray, p: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Gradient of `pool`: to each window's maxima, ties sharing it."""
    n, h, w, c = a.shape
    r = a.reshape(n, h // 2, 2, w // 2, 2, c)
    hit = (r == p[:, :, None, :, None]).astype(a.dtype)
    hit /= hit.sum(axis=(2, 4), keepdims=True)
    hit *= g[:, :, None, :, None]
    return hit.reshape(a.shape)


class HandwrittenLeNet:
    """The LeNet of ``examples/lenet_mnist.py`` with Adam, written by hand in numpy (float32)."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3) -> None:
        self.p = {k: v.copy() for k, v in params.items()}
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0
        self.lr = lr

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        p = self.p
        n = x.shape[0]
        xp = np.pad(x.reshape(n, 28, 28, 1), ((0, 0), (2, 2), (2, 2), (0, 0)))
        cols1 = im2col(xp, 5)
        z1 = (cols1 @ p["conv1_W"].reshape(25, 6)).reshape(n, 28, 28, 6) + p["conv1_b"]
        a1 = np.maximum(z1, 0)
        p1 = pool(a1)
        cols2 = im2col(p1, 5)
        z2 = (cols2 @ p["conv2_W"].reshape(150, 16)).reshape(n, 10, 10, 16) + p["conv2_b"]
        a2 = np.maximum(z2, 0)
        p2 = pool(a2)
        f = p2.reshape(n, 400)
        z3 = f @ p["dense1_W"] + p["dense1_b"]
        h = np.maximum(z3, 0)
        logits = h @ p["logits_W"] + p["logits_b"]
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        loss = float(np.mean(np.log(s)[:, 0] - shifted[np.arange(n), y]))

        dlogits = e / s
        dlogits[np.arange(n), y] -= 1
        dlogits /= n
        grads = {"logits_W": h.T @ dlogits, "logits_b": dlogits.sum(0)}
        dz3 = (dlogits @ p["logits_W"].T) * (z3 > 0)
        grads["dense1_W"], grads["dense1_b"] = f.T @ dz3, dz3.sum(0)
        dp2 = (dz3 @ p["dense1_W"].T).reshape(p2.shape)
        dz2 = (pool_grad(a2, p2, dp2) * (z2 > 0)).reshape(-1, 16)
        grads["conv2_W"] = (cols2.T @ dz2).reshape(5, 5, 6, 16)
        grads["conv2_b"] = dz2.sum(0)
        dp1 = col2im(dz2 @ p["conv2_W"].reshape(150, 16).T, p1.shape, 5)
        dz1 = (pool_grad(a1, p1, dp1) * (z1 > 0)).reshape(-1, 6)
        grads["conv1_W"] = (cols1.T @ dz1).reshape(5, 5, 1, 6)
        grads["conv1_b"] = dz1.sum(0)

        self.t += 1
        b1, b2 = 0.9, 0.999
        size = np.float32(self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t))
        eps = np.float32(1e-8 * np.sqrt(1 - b2**self.t))
        for k, g in grads.items():
            m, v = self.m[k], self.v[k]
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p[k] -= size * m / (np.sqrt(v) + eps)
        return loss


# --------------------------------------------------------------------------- PyTorch


def torch_step(params: dict[str, np.ndarray], threads: int):
    """A PyTorch eager CPU step of the same net, or None where torch does not import."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    tp = {k: torch.tensor(v if v.ndim != 4 else v.transpose(3, 2, 0, 1).copy(),
                          requires_grad=True) for k, v in params.items()}
    opt = torch.optim.Adam(list(tp.values()), lr=1e-3)
    f = torch.nn.functional

    def step(x: np.ndarray, y: np.ndarray) -> float:
        xt = torch.from_numpy(x).reshape(-1, 1, 28, 28)
        h = f.max_pool2d(f.relu(f.conv2d(xt, tp["conv1_W"], tp["conv1_b"], padding=2)), 2)
        h = f.max_pool2d(f.relu(f.conv2d(h, tp["conv2_W"], tp["conv2_b"])), 2)
        h = h.permute(0, 2, 3, 1).reshape(-1, 400)  # symdl's NHWC flattening order
        h = f.relu(h @ tp["dense1_W"] + tp["dense1_b"])
        loss = f.cross_entropy(h @ tp["logits_W"] + tp["logits_b"], torch.from_numpy(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


# --------------------------------------------------------------------------- runs


def bench_lenet(repeats: int, threads: int, cache_dir: str) -> None:
    """The LeNet step: symdl against hand-written numpy (and PyTorch), batch 64."""
    import symdl as sd
    from benchmarks.common import mnist_batch

    example = runpy.run_path(str(ROOT / "examples" / "lenet_mnist.py"))
    inputs, loss, params, metrics, _ = example["build"](dropout=None)
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(1e-3), inputs, metrics,
                                       name="bench_lenet", cache_dir=cache_dir)
    values = sd.init.initialize(params, seed=0)
    hand = HandwrittenLeNet(values)
    x, _, labels = mnist_batch(BATCH)
    state = step.init_state()
    first = float(step((x, labels), values, state)[0])
    hand_first = hand.step(x, labels)
    note(f"first-step loss: symdl {first:.6f}, hand-written {hand_first:.6f}")
    assert abs(first - hand_first) < 1e-4, "the two implementations compute different losses"
    candidates = {
        "hand-written numpy (im2col)": lambda: hand.step(x, labels),
        "symdl generated": lambda: step((x, labels), values, state),
    }
    torch = torch_step(values, threads)
    if torch is not None:
        candidates["PyTorch eager CPU"] = lambda: torch(x, labels)
    else:
        note("PyTorch: import torch failed, skipped")
    with limit_threads(threads):
        timings = interleave(candidates, repeats=repeats, warmup=3)
    print(f"\nLeNet train step (Adam), batch {BATCH}, {threads} BLAS thread(s), "
          f"{repeats} interleaved repeats")
    for name, t in timings.items():
        ratio = "" if t.median_ratio is None else f"  ratio to hand-written {t.median_ratio:.2f}"
        print(f"  {name:30s} {t.median_us / 1e3:8.2f} ms{ratio}")


def transposed_conv_input_grad(g: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The alternative input gradient: pad g by the kernel and convolve with the flipped
    filter (stride 1), one GEMM over windows that are mostly zeros at the borders."""
    k = w.shape[0]
    padded = np.pad(g, ((0, 0), (k - 1, k - 1), (k - 1, k - 1), (0, 0)))
    return np.tensordot(swv(padded, (k, k), axis=(1, 2)), w[::-1, ::-1],
                        axes=([3, 4, 5], [3, 0, 1]))


def bench_conv_sizes(repeats: int, threads: int, cache_dir: str) -> None:
    """conv2d forward + input and filter gradients alone, at three sizes."""
    import symdl as sd

    sizes = [  # (batch, height = width, in channels, kernel, out channels)
        (64, 28, 1, 5, 6),  # LeNet conv1
        (64, 14, 6, 5, 16),  # LeNet conv2
        (32, 32, 32, 3, 64),  # a wider 3x3 layer
    ]
    print(f"\nconv2d forward + backward (SAME for k=3, VALID else), float32, {threads} thread(s)")
    rng = np.random.default_rng(0)
    for n, hw, c, k, o in sizes:
        padding = "SAME" if k == 3 else "VALID"
        x = sd.placeholder("x", (None, hw, hw, c))
        w = sd.parameter("w", (k, k, c, o))
        y = sd.conv2d(x, w, padding=padding)
        g = sd.placeholder("g", y.shape)
        grads = sd.grad(sd.sum(y * g), [x, w])
        mod = sd.compile({"fwd_bwd": ([x, w, g], [y, *grads])}, f"bench_conv_{hw}_{c}_{k}",
                         cache_dir=cache_dir)
        xv = rng.standard_normal((n, hw, hw, c), dtype=np.float32)
        wv = rng.standard_normal((k, k, c, o), dtype=np.float32)
        oh = hw if padding == "SAME" else hw - k + 1
        gv = rng.standard_normal((n, oh, oh, o), dtype=np.float32)
        xpad = np.pad(xv, ((0, 0), ((k - 1) // 2,) * 2, ((k - 1) // 2,) * 2, (0, 0))) \
            if padding == "SAME" else xv

        def col2im_grad(gv=gv, wv=wv, xpad=xpad, k=k, o=o) -> np.ndarray:
            return col2im(gv.reshape(-1, o) @ wv.reshape(-1, o).T, xpad.shape, k)

        def tconv_grad(gv=gv, wv=wv) -> np.ndarray:
            return transposed_conv_input_grad(gv, wv)

        assert np.allclose(col2im_grad(), tconv_grad(), rtol=1e-3, atol=1e-2)
        with limit_threads(threads):
            t = interleave({
                "symdl fwd+bwd": lambda mod=mod, xv=xv, wv=wv, gv=gv: mod.fwd_bwd(xv, wv, gv),
                "input grad: col2im": col2im_grad,
                "input grad: transposed conv": tconv_grad,
            }, repeats=repeats, warmup=2)
        parts = ", ".join(f"{name} {v.median_us / 1e3:.2f} ms" for name, v in t.items())
        print(f"  N={n} {hw}x{hw}x{c} k={k} O={o}: {parts}")


def bench_pool(repeats: int, threads: int) -> None:
    """2x2 max-pooling of LeNet's first layer: the two forms the code generator chose between."""
    a = np.random.default_rng(0).standard_normal((BATCH, 28, 28, 6), dtype=np.float32)
    forms = {
        "maximum of strided slices": lambda: pool(a),
        "max over the windows view": lambda: swv(a, (2, 2), axis=(1, 2))[:, ::2, ::2].max((4, 5)),
    }
    assert np.array_equal(*(f() for f in forms.values()))
    with limit_threads(threads):
        t = interleave(forms, repeats=repeats, warmup=2)
    parts = ", ".join(f"{name} {v.median_us / 1e3:.2f} ms" for name, v in t.items())
    print(f"\nmax_pool2d 2x2, ({BATCH}, 28, 28, 6) float32: {parts}")


def main(argv: list[str] | None = None) -> int:
    """Run both benchmarks and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int,
                        default=int(os.environ.get("OPENBLAS_NUM_THREADS", "1")),
                        help="threads for PyTorch and threadpoolctl (BLAS: the variable)")
    parser.add_argument("--only", choices=["lenet", "sizes"], default=None)
    args = parser.parse_args(argv)
    os.environ.setdefault("SYMDL_OFFLINE", "1")
    env = environment(args.threads)
    print("; ".join(f"{k}: {v}" for k, v in env.items()))
    with tempfile.TemporaryDirectory() as cache_dir:
        if args.only in (None, "lenet"):
            bench_lenet(args.repeats, args.threads, cache_dir)
        if args.only in (None, "sizes"):
            bench_conv_sizes(args.repeats, args.threads, cache_dir)
            bench_pool(args.repeats, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
