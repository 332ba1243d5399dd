"""How the generated code should print a contraction: ``np.einsum`` with and without
``optimize=True``, against ``@`` (BLAS), for the patterns models write.

Every case runs in this process on float32 arrays, the candidates interleaved round by round
(`common.interleave`); each row gives medians and the median of the per-round ratios to the
first candidate. Run it alone (BLAS timings are shared-machine sensitive):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_einsum.py [--repeats 30]

What it decided: a two-operand einsum that is a (batched, transposed) matrix product or a
batch of matrix-vector products becomes ``@`` (rewrite `einsum_as_matmul`); other pairs (an
outer product) stay ``np.einsum``, where it beats broadcasting; three or more operands are
contracted two at a time in the order ``np.einsum_path`` finds cheapest, chosen when the code
is generated (rewrite `einsum_in_pairs`), since ``optimize=True`` searches again on every call.
Only an unsimplified module prints ``optimize=True`` (`codegen/printer.py`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

# One BLAS thread unless the caller sets another count: OpenBLAS reads these when numpy loads
# (and threadpoolctl, which `common.limit_threads` uses, may be missing). With two threads on
# a busy 2-core machine, a 128x64 @ 64x128 product took 55 ms instead of 50 us.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import interleave  # noqa: E402

Candidates = dict[str, Callable[[], object]]


def cases(scale: int = 1) -> dict[str, Candidates]:
    """name -> candidates (the first is the baseline), on arrays sized by ``scale``."""
    rng = np.random.default_rng(0)

    def arr(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    n = 64 * scale
    a, b = arr(2 * n, n), arr(n, 2 * n)
    at = arr(n, 2 * n)
    q, k = arr(8, 4, n, 32), arr(8, 4, n, 32)
    x, y, w = arr(16, n, n), arr(16, n, n), arr(16, n)
    m1, m2, m3 = arr(4 * n, 8), arr(8, 4 * n), arr(4 * n, 16)
    u, v = arr(4 * n), arr(4 * n)
    return {
        "matmul ij,jk->ik": {
            "a @ b": lambda: a @ b,
            "einsum": lambda: np.einsum("ij,jk->ik", a, b),
            "einsum optimize": lambda: np.einsum("ij,jk->ik", a, b, optimize=True),
        },
        "transposed ji,jk->ik": {
            "at.T @ b": lambda: at.T @ b,
            "einsum": lambda: np.einsum("ji,jk->ik", at, b),
            "einsum optimize": lambda: np.einsum("ji,jk->ik", at, b, optimize=True),
        },
        "batched bij,bjk->bik": {
            "x @ y": lambda: x @ y,
            "einsum": lambda: np.einsum("bij,bjk->bik", x, y),
            "einsum optimize": lambda: np.einsum("bij,bjk->bik", x, y, optimize=True),
        },
        "attention bhqd,bhkd->bhqk": {
            "q @ k.swapaxes": lambda: q @ k.swapaxes(-1, -2),
            "einsum": lambda: np.einsum("bhqd,bhkd->bhqk", q, k),
            "einsum optimize": lambda: np.einsum("bhqd,bhkd->bhqk", q, k, optimize=True),
        },
        "batched matvec bij,bj->bi": {
            "(x @ w[..., None])": lambda: (x @ w[:, :, None])[:, :, 0],
            "einsum": lambda: np.einsum("bij,bj->bi", x, w),
            "einsum optimize": lambda: np.einsum("bij,bj->bi", x, w, optimize=True),
        },
        "outer i,j->ij": {
            "u[:, None] * v": lambda: u[:, None] * v,
            "einsum": lambda: np.einsum("i,j->ij", u, v),
            "einsum optimize": lambda: np.einsum("i,j->ij", u, v, optimize=True),
        },
        "chain ij,jk,kl->il": {
            "m1 @ (m2 @ m3)": lambda: m1 @ (m2 @ m3),  # what symdl generates for these
            "(m1 @ m2) @ m3": lambda: (m1 @ m2) @ m3,
            "einsum": lambda: np.einsum("ij,jk,kl->il", m1, m2, m3),
            "einsum optimize": lambda: np.einsum("ij,jk,kl->il", m1, m2, m3, optimize=True),
        },
    }


def run(repeats: int, scale: int = 1) -> list[tuple[str, str, float, float]]:
    """(case, candidate, median us, median ratio to the case's first candidate) rows."""
    rows = []
    for case, candidates in cases(scale).items():
        timings = interleave(candidates, repeats=repeats, warmup=3)
        for name, t in timings.items():
            rows.append((case, name, t.median_us, t.median_ratio or 1.0))
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--scale", type=int, default=1, help="array sizes grow with it")
    args = parser.parse_args(argv)
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    print(f"numpy {np.__version__}, float32, OPENBLAS_NUM_THREADS={threads}, medians of "
          f"{args.repeats} interleaved rounds, load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':28} {'candidate':18} {'median us':>10} {'ratio':>7}")
    for case, name, us, ratio in run(args.repeats, args.scale):
        print(f"{case:28} {name:18} {us:10.1f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
