"""The generated Adam `train_step` of a 784-256-10 ReLU MLP against hand-written numpy Adam.

Both run in this process on the same float32 batch of 128, from the same parameters, after a
warm-up, interleaved (generated, numpy, generated, numpy, ...) so that drift of the machine hits
both alike. The figure of merit is the median over repeats of the per-repeat time ratio
generated / numpy (the issue asks for at most 1.05).

    python benchmarks/bench_adam.py [--repeats 30] [--inner 20] [--threads 1] [--profile]

Minor page faults per step are printed too: a fresh (784, 256) temporary in every call is
returned to the OS by glibc's malloc and faulted in again on the next one (1200 faults and 2.75x
before the code generator reused dead scratch arrays; 0 and 0.98x since).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time

import numpy as np

import symdl as sd

BATCH, D_IN, HIDDEN, D_OUT = 128, 784, 256, 10
B1, B2, EPS, LR = 0.9, 0.999, 1e-8, 1e-3


class NumpyAdamMLP:
    """Forward, backward and Adam for the MLP, written by hand with in-place updates.

    The Adam step uses the same algebra as symdl's (scalars folded: ``a = lr * sqrt(bc2) / bc1``,
    ``e = eps * sqrt(bc2)``) and works in preallocated buffers, as a careful person would.
    """

    def __init__(self, params: dict[str, np.ndarray]) -> None:
        self.p = {k: v.copy() for k, v in params.items()}
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.tmp = {k: np.empty_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, x: np.ndarray, y: np.ndarray, lr: float) -> tuple[np.float32, np.float32]:
        p = self.p
        n = x.shape[0]
        a = x @ p["dense0_W"]
        a += p["dense0_b"]
        h = np.maximum(a, 0)
        z = h @ p["dense1_W"]
        z += p["dense1_b"]
        z_max = z.max(axis=1, keepdims=True)
        e = np.exp(z - z_max)
        s = e.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = (np.log(s[:, 0]) + z_max[:, 0] - z[rows, y]).sum() / np.float32(n)
        acc = np.float32((z.argmax(axis=1) == y).sum()) / np.float32(n)
        dz = e
        dz /= s
        dz[rows, y] -= 1
        dz /= np.float32(n)
        dh = dz @ p["dense1_W"].T
        dh[a <= 0] = 0
        grads = {"dense0_W": x.T @ dh, "dense0_b": dh.sum(axis=0),
                 "dense1_W": h.T @ dz, "dense1_b": dz.sum(axis=0)}
        self.t += 1
        root_bc2 = np.sqrt(np.float32(1 - B2**self.t))
        step_size = np.float32(lr * root_bc2 / (1 - B1**self.t))
        eps_hat = np.float32(EPS * root_bc2)
        for k, g in grads.items():
            m, v, tmp = self.m[k], self.v[k], self.tmp[k]
            m *= B1
            np.multiply(g, 1 - B1, out=tmp)
            m += tmp
            v *= B2
            np.square(g, out=tmp)
            tmp *= 1 - B2
            v += tmp
            np.sqrt(v, out=tmp)
            tmp += eps_hat
            np.divide(m, tmp, out=tmp)
            tmp *= step_size
            p[k] -= tmp
        return loss, acc


def build(cache_dir: str) -> tuple[sd.optim.TrainStep, dict[str, np.ndarray]]:
    """The symdl MLP and its compiled Adam step."""
    x = sd.placeholder("x", (None, D_IN))
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = sd.layers.mlp(x, [HIDDEN, D_OUT], activation=sd.relu, name="dense")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), "float32")).named("accuracy")
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(LR), [x, y],
                                       {"accuracy": acc}, name="bench_adam", cache_dir=cache_dir)
    return step, sd.init.initialize(params, seed=0)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print a small table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inner", type=int, default=20, help="steps per timed repeat")
    parser.add_argument("--profile", action="store_true", help="cProfile the generated step")
    parser.add_argument("--threads", type=int, default=None,
                        help="hold numpy's BLAS to this many threads (threadpoolctl)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=args.threads):
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Time the two steps as ``args`` says and print the table."""
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, D_IN), dtype=np.float32)
    y = rng.integers(0, D_OUT, size=BATCH)
    with tempfile.TemporaryDirectory() as cache:
        step, params = build(cache)
        ref = NumpyAdamMLP(params)
        state = step.init_state()
        # Same numbers first: both sides compute the same step (float32 rounding aside).
        got = step([x, y], params, state, LR)
        want = ref.step(x, y, LR)
        np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
        np.testing.assert_allclose(params["dense0_W"], ref.p["dense0_W"], rtol=1e-4, atol=1e-6)
        fn, numpy_step = step._train, ref.step
        gen_args = [x, y, *(params[k] for k in step.param_names),
                    *(state[k] for k in step.state_names), LR]

        def run_generated() -> None:
            for _ in range(args.inner):
                fn(*gen_args)

        def run_numpy() -> None:
            for _ in range(args.inner):
                numpy_step(x, y, LR)

        for _ in range(3):  # warm-up: caches, BLAS threads, allocator
            run_generated()
            run_numpy()
        gen_times, np_times, ratios = [], [], []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            run_generated()
            t1 = time.perf_counter()
            run_numpy()
            t2 = time.perf_counter()
            gen_times.append((t1 - t0) / args.inner)
            np_times.append((t2 - t1) / args.inner)
            ratios.append((t1 - t0) / (t2 - t1))
        faults = {}
        for label, run in (("generated", run_generated), ("numpy", run_numpy)):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            run()
            after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            faults[label] = (after - before) / args.inner
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(run_generated)
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)

    med = statistics.median
    print(f"MLP {D_IN}-{HIDDEN}-{D_OUT} ReLU, Adam, float32, batch {BATCH}; "
          f"{args.repeats} interleaved repeats of {args.inner} steps")
    # Minor page faults show fresh memory: large temporaries that the allocator gave back to
    # the OS and must be faulted in again on every call.
    print(f"{'':24}{'median ms/step':>16}{'min ms/step':>14}{'page faults/step':>18}")
    print(f"{'symdl train_step':24}{med(gen_times) * 1e3:16.3f}{min(gen_times) * 1e3:14.3f}"
          f"{faults['generated']:18.0f}")
    print(f"{'hand-written numpy':24}{med(np_times) * 1e3:16.3f}{min(np_times) * 1e3:14.3f}"
          f"{faults['numpy']:18.0f}")
    ratio = med(ratios)
    print(f"median ratio symdl / numpy: {ratio:.3f}  (target <= 1.05: "
          f"{'met' if ratio <= 1.05 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
