#!/usr/bin/env python
"""The optional numba backend against the numpy backend and hand-written numpy, and its compile
time next to PyTensor's numba and C backends.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=. python benchmarks/bench_numba.py \
        [--threads 1] [--quick] [--skip-compile]

Step rows: one SGD training step (float32) of softmax regression at B=100 and B=1000 and the
784-256-10 ReLU MLP at B=128; hand-written numpy, the numpy backend and the numba backend
interleaved round by round in one process (`benchmarks.common.interleave`), each row the median
of the per-round ratios to hand-written numpy. Compile rows: the time to build, compile, import
and run the first step of softmax regression in a fresh process with an empty cache ("cold"),
then again in a second fresh process on that cache ("warm"), with the number of kernels numba
compiled there (from each dispatcher's cache statistics: 0 on a warm start). PyTensor's rows
use ``mode="NUMBA"`` and its default C mode, each with a fresh ``compiledir``.

`numba_rows(threads, quick)` returns every row as a dict, for ``benchmarks/run_all.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import handwritten  # noqa: E402 - after the path, when run as a script
from benchmarks.common import init_params, interleave, limit_threads, mnist_batch, note  # noqa: E402

LR = np.float32(0.01)
WORKLOADS = (  # (name, layer sizes, batch)
    ("softmax regression B=100", (784, 10), 100),
    ("softmax regression B=1000", (784, 10), 1000),
    ("MLP 784-256-10 B=128", (784, 256, 10), 128),
)


def _compile(sizes: tuple[int, ...], backend: str, cache_dir: str):
    import symdl as sd
    from benchmarks.models import mlp

    depth = len(sizes) - 1
    width = sizes[1] if depth > 1 else 256
    functions = mlp(depth, width=width, n_in=sizes[0], n_out=sizes[-1])
    return sd.compile(functions, f"bench_{depth}layer_{backend}", cache_dir=cache_dir,
                      backend=backend)


def _workload_rows(name: str, sizes: tuple[int, ...], batch: int, threads: int, quick: bool,
                   cache: str) -> list[dict]:
    x, y, _ = mnist_batch(batch, source="random")
    params = init_params(list(sizes))
    hand = handwritten.softmax_step if len(sizes) == 2 else handwritten.mlp_step
    modules = {b: _compile(sizes, b, cache) for b in ("numpy", "numba")}
    # Same first step: the numpy backend's result is the reference.
    ref, got = [p.copy() for p in params], [p.copy() for p in params]
    loss_ref = modules["numpy"].train_step(x, y, *ref, LR)
    loss_got = modules["numba"].train_step(x, y, *got, LR)
    np.testing.assert_allclose(loss_got, loss_ref, rtol=1e-5)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)
    state = {k: [p.copy() for p in params] for k in ("hand", "numpy", "numba")}
    numpy_step, numba_step = modules["numpy"].train_step, modules["numba"].train_step
    candidates = {
        "hand-written numpy": lambda: hand(x, y, *state["hand"], LR),
        "symdl numpy backend": lambda: numpy_step(x, y, *state["numpy"], LR),
        "symdl numba backend": lambda: numba_step(x, y, *state["numba"], LR),
    }
    repeats = 30 if quick else (100 if batch <= 128 else 60)
    note(f"  {name}: hand-written vs numpy vs numba backend, {repeats} rounds, {threads} thr")
    timings = interleave(candidates, repeats=repeats, warmup=5)
    return [{"workload": name, "implementation": label, "threads": threads,
             "median_us": round(t.median_us, 1),
             "ratio": None if t.median_ratio is None else round(t.median_ratio, 3)}
            for label, t in timings.items()]


def step_rows(threads: int, quick: bool = False) -> list[dict]:
    """Train-step ratios to hand-written numpy: numpy backend and numba backend, interleaved."""
    rows: list[dict] = []
    with limit_threads(threads), tempfile.TemporaryDirectory() as cache:
        for name, sizes, batch in WORKLOADS:
            rows += _workload_rows(name, sizes, batch, threads, quick, cache)
    return rows


# A fresh process: build softmax regression, compile it, run one step; print JSON timings.
_SYMDL_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import symdl as sd
from benchmarks.models import mlp
t1 = time.perf_counter()
module = sd.compile(mlp(1), "coldwarm", cache_dir=sys.argv[1], backend=sys.argv[2])
t2 = time.perf_counter()
x = np.ones((100, 784), np.float32); y = np.eye(10, dtype=np.float32)[np.arange(100) % 10]
W = np.zeros((784, 10), np.float32); b = np.zeros(10, np.float32)
module.train_step(x, y, W, b, 0.01)
t3 = time.perf_counter()
kernels = [f for n, f in vars(module).items() if n.endswith("_kernel")]
compiled = sum(sum(f.stats.cache_misses.values()) for f in kernels)
print(json.dumps({"import": t1 - t0, "compile": t2 - t1, "first_call": t3 - t2,
                  "total": t3 - t0, "kernels": len(kernels), "kernels_compiled": compiled}))
"""

_PYTENSOR_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import pytensor
import pytensor.tensor as pt
t1 = time.perf_counter()
pytensor.config.floatX = "float32"
X = pt.matrix("x", dtype="float32"); Y = pt.matrix("y", dtype="float32")
W = pytensor.shared(np.zeros((784, 10), np.float32)); b = pytensor.shared(np.zeros(10, np.float32))
logp = pt.special.log_softmax(X @ W + b, axis=1)
loss = -(Y * logp).sum(axis=1).mean()
gW, gb = pytensor.grad(loss, [W, b])
rate = pt.constant(np.float32(0.01))
fn = pytensor.function([X, Y], loss, mode=sys.argv[1],
                       updates=[(W, W - rate * gW), (b, b - rate * gb)])
t2 = time.perf_counter()
fn(np.ones((100, 784), np.float32), np.eye(10, dtype=np.float32)[np.arange(100) % 10])
t3 = time.perf_counter()
# PyTensor's C mode needs a compiler (cxx) for its C ops and BLAS link flags for its C GEMM;
# with empty blas__ldflags its GEMMs fall back to numpy's dot (Python thunks).
ops = sorted({type(n.op).__name__ for n in fn.maker.fgraph.toposort()})
print(json.dumps({"import": t1 - t0, "compile": t2 - t1, "first_call": t3 - t2,
                  "total": t3 - t0, "cxx": pytensor.config.cxx,
                  "blas__ldflags": pytensor.config.blas__ldflags, "ops": ops}))
"""


def _child(code: str, args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def compile_rows(threads: int) -> list[dict]:
    """Cold and warm compile times in fresh processes: symdl (both backends) and PyTensor."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[var] = str(threads)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as scratch:
        for backend in ("numpy", "numba"):
            cache = str(Path(scratch) / f"symdl_{backend}")
            for phase in ("cold", "warm"):
                note(f"  compile time: symdl {backend} backend, {phase}")
                result = _child(_SYMDL_CHILD, [cache, backend], env)
                rows.append({"implementation": f"symdl {backend} backend", "phase": phase,
                             **result})
        for mode, label in (("NUMBA", "PyTensor (numba)"), ("FAST_RUN", "PyTensor (C)")):
            flags = f"compiledir={Path(scratch) / ('pytensor_' + mode)}"
            for phase in ("cold", "warm"):
                note(f"  compile time: {label}, {phase}")
                result = _child(_PYTENSOR_CHILD, [mode],
                                {**env, "PYTENSOR_FLAGS": flags,
                                 "NUMBA_CACHE_DIR": str(Path(scratch) / "numba_cache")})
                rows.append({"implementation": label, "phase": phase, **result})
    return rows


def numba_rows(threads: int, quick: bool = False) -> list[dict]:
    """Every row of this benchmark, as dicts: train-step ratios, then compile times."""
    rows = [{"kind": "step", **r} for r in step_rows(threads, quick)]
    rows += [{"kind": "compile", "threads": threads, **r} for r in compile_rows(threads)]
    return rows


def _table(rows: list[dict]) -> str:
    lines = ["| workload | implementation | threads | median µs | ratio to hand-written |",
             "| --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["kind"] == "step":
            ratio = "1" if r["ratio"] is None else f"{r['ratio']:.3f}"
            lines.append(f"| {r['workload']} | {r['implementation']} | {r['threads']} | "
                         f"{r['median_us']:.1f} | {ratio} |")
    lines += ["", "| compile (softmax regression) | phase | total s | compile + first call s "
              "| kernels compiled |", "| --- | --- | --- | --- | --- |"]
    for r in rows:
        if r["kind"] == "compile":
            if "error" in r:
                lines.append(f"| {r['implementation']} | {r['phase']} | error: {r['error']} | | |")
                continue
            compiled = r.get("kernels_compiled", "")
            if r.get("kernels") is not None:
                compiled = f"{compiled} of {r['kernels']}"
            lines.append(f"| {r['implementation']} | {r['phase']} | {r['total']:.2f} | "
                         f"{r['compile'] + r['first_call']:.2f} | {compiled} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the tables (and write JSON with ``--json``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true", help="30 rounds per workload")
    p.add_argument("--skip-compile", action="store_true", help="no cold/warm compile rows")
    p.add_argument("--skip-steps", action="store_true", help="no train-step rows")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows = [] if args.skip_steps else [{"kind": "step", **r}
                                       for r in step_rows(args.threads, args.quick)]
    if not args.skip_compile:
        rows += [{"kind": "compile", "threads": args.threads, **r}
                 for r in compile_rows(args.threads)]
    print(_table(rows))
    note(f"took {time.perf_counter() - start:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
