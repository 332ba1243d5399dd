"""The gradient of an embedding lookup ``E[ids]``: three ways to scatter-add it into ``E``'s shape.

An embedding of V rows of width D looked up at N ids has the gradient ``E_bar[v] = sum of g[i]
over the i with ids[i] == v`` (tied ids accumulate). Timed in one process, interleaved, as ratios
to ``np.add.at`` (medians over repeats of the per-round ratio):

- ``add.at``: ``E_bar = np.zeros((V, D)); np.add.at(E_bar, ids, g)`` (what symdl prints);
- ``bincount``: one ``np.bincount`` over flattened ``ids * D + column`` with ``g`` as weights;
- ``one_hot matmul``: ``np.eye(V)[ids].T @ g``, O(N V) memory (what symdl must never print).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gather.py \
        [--n 4096] [--d 64] [--v 50000] [--repeats 7] [--dtype float32] [--no-one-hot]

Measured (numpy 2.4.6, 2 cores shared with other jobs, N=4096, V=50,000): at D=64 float32 the
one-hot matmul took 377x the time of add.at (2.7 s a call), bincount 1.40x. Swept without the
one-hot (D = 1, 8 and 64, float32 and float64, with and without 512 tied ids), bincount/add.at
ranged from 0.65 (float32, D <= 8) to 3.2 (float64, D = 1), the same sizes moving by 1.5x
between runs, and once 0.11 (a run where the machine was busy: add.at's 1 ms became 9 ms);
both are dominated by zeroing the (V, D) result. add.at is as fast or faster in most, needs no
float64 copy (bincount sums in float64) and reads plainly, so symdl prints it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import Timing, interleave  # noqa: E402


def add_at(ids: np.ndarray, g: np.ndarray, v: int) -> np.ndarray:
    """``np.add.at`` into zeros: unbuffered, so tied ids accumulate."""
    out = np.zeros((v, g.shape[1]), dtype=g.dtype)
    np.add.at(out, ids, g)
    return out


def bincount(ids: np.ndarray, g: np.ndarray, v: int) -> np.ndarray:
    """One bincount over flat positions ``ids * D + column``; bincount sums in float64."""
    d = g.shape[1]
    flat = (ids[:, None] * d + np.arange(d)).ravel()
    return np.bincount(flat, weights=g.ravel(), minlength=v * d).reshape(v, d).astype(g.dtype)


def one_hot_matmul(ids: np.ndarray, g: np.ndarray, v: int) -> np.ndarray:
    """The dense form: an (N, V) one-hot matrix, transposed, times g."""
    return np.eye(v, dtype=g.dtype)[ids].T @ g


CANDIDATES: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "add.at": add_at,
    "bincount": bincount,
    "one_hot matmul": one_hot_matmul,
}


def run(n: int, d: int, v: int, repeats: int, dtype: str, seed: int = 0,
        dense: bool = True) -> dict[str, Timing]:
    """Check the candidates agree, then time them interleaved; add.at is the baseline.
    ``dense=False`` leaves out the one-hot matmul (seconds per call, N V floats of memory)."""
    candidates = {k: f for k, f in CANDIDATES.items() if dense or k != "one_hot matmul"}
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, v, size=n)
    ids[: n // 8] = ids[0]  # tied ids: the case fancy assignment would get wrong
    g = rng.standard_normal((n, d)).astype(dtype)
    results = {name: fn(ids, g, v) for name, fn in candidates.items()}
    reference = results["add.at"].astype(np.float64)
    for name, value in results.items():
        np.testing.assert_allclose(value, reference, rtol=1e-4, atol=1e-4, err_msg=name)
    return interleave(
        {name: (lambda fn=fn: fn(ids, g, v)) for name, fn in candidates.items()},
        repeats=repeats, warmup=2,
    )


def main(argv: list[str] | None = None) -> int:
    """Print the median time of each candidate and its median ratio to add.at."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="number of ids looked up")
    parser.add_argument("--d", type=int, default=64, help="embedding width")
    parser.add_argument("--v", type=int, default=50_000, help="vocabulary size")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    parser.add_argument("--no-one-hot", action="store_true",
                        help="leave out the one-hot matmul (to sweep --d quickly)")
    args = parser.parse_args(argv)
    timings = run(args.n, args.d, args.v, args.repeats, args.dtype, dense=not args.no_one_hot)
    print(f"gradient of E[ids]: N={args.n} ids, D={args.d}, V={args.v}, {args.dtype}, "
          f"numpy {np.__version__}, {args.repeats} repeats")
    for name, t in timings.items():
        ratio = "1.00 (baseline)" if t.median_ratio is None else f"{t.median_ratio:.2f}"
        print(f"  {name:<15} median {t.median_us / 1e3:9.3f} ms   ratio to add.at {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
