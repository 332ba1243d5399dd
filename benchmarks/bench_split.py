"""The gradient of an LSTM-style gate split: symdl's generated code against hand-written numpy.

``i, f, g, o = sd.split(x, 4, axis=1)`` used in one loss gives x the gradient
``np.concatenate([gi, gf, gg, go], axis=1)``. Before the rewrite `sum_of_unindexed_slices`,
symdl printed one ``np.zeros`` of x's shape per gate, assigned the gate's cotangent to its slice
and summed the four copies; ``zeros + slices`` below is that form, written out as it was printed.
Timed in one process, interleaved, as ratios to the hand-written ``np.concatenate`` (medians of
the per-round ratios):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_split.py \
        [--n 256] [--d 1024] [--repeats 51] [--dtype float32]

Measured (numpy 2.4.6, 2 cores shared by 8 engineers, load average ~10, N=256, D=1024,
float32, three runs): the generated gradient 1.05x to 1.08x np.concatenate (0.075-0.083 ms
against 0.071-0.080 ms: the entry checks); the old zeros + slices form 26x to 46x (6-9 ms: four
fresh arrays of x's size a call, page faults and all, on a busy machine; ~2.0x on a quiet one).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import symdl as sd  # noqa: E402
from benchmarks.common import Timing, interleave  # noqa: E402

GATES = ("gi", "gf", "gg", "go")


def generated(n: int, d: int, dtype: str, cache_dir: str) -> tuple[ModuleType, str]:
    """The compiled gradient of the four gates of x (n, d) with respect to x, and its source."""
    x = sd.placeholder("x", (n, d), dtype)
    cotangents = [sd.placeholder(name, (n, d // 4), dtype) for name in GATES]
    pieces = sd.split(x, 4, axis=1)
    loss = sd.sum(pieces[0] * cotangents[0])
    for piece, g in zip(pieces[1:], cotangents[1:]):
        loss = loss + sd.sum(piece * g)
    functions = {"split_grad": ([x, *cotangents], sd.grad(loss, x))}
    source = sd.generate(functions, "bench_split")
    return sd.compile(functions, "bench_split", cache_dir=cache_dir), source


def concatenate(gs: list[np.ndarray]) -> np.ndarray:
    """What a person writes: the gate cotangents side by side."""
    return np.concatenate(gs, axis=1)


def zeros_and_slices(gs: list[np.ndarray]) -> np.ndarray:
    """What symdl printed before the rewrite: each gate scattered into zeros, the copies summed."""
    n, w = gs[0].shape
    last = len(gs) - 1  # the reverse walk reaches the last gate first
    total = np.zeros((n, w * len(gs)), dtype=gs[0].dtype)
    total[:, last * w:] = gs[last]
    for k in reversed(range(last)):
        scattered = np.zeros((n, w * len(gs)), dtype=gs[0].dtype)
        scattered[:, k * w:(k + 1) * w] = gs[k]
        total = np.add(total, scattered, out=total)
    return total


def run(n: int, d: int, repeats: int, dtype: str, seed: int = 0) -> dict[str, Timing]:
    """Check the three agree and that symdl prints one concatenate, then time the generated
    gradient and the old form, each interleaved with np.concatenate (its time is the first run's).
    """
    rng = np.random.default_rng(seed)
    gs = [rng.standard_normal((n, d // 4)).astype(dtype) for _ in GATES]
    x = np.zeros((n, d), dtype=dtype)  # only its shape is used: the gradient is linear
    with tempfile.TemporaryDirectory() as cache:
        module, source = generated(n, d, dtype, cache)
    if "x_grad = np.concatenate([gi, gf, gg, go], axis=1)" not in source:
        raise AssertionError(f"symdl no longer prints one concatenate:\n{source}")
    want = concatenate(gs)
    np.testing.assert_array_equal(module.split_grad(x, *gs), want)
    np.testing.assert_array_equal(zeros_and_slices(gs), want)
    # Two interleaved runs, each against np.concatenate: the old form frees and allocates four
    # arrays of x's size per call, which moves the allocator's cost onto whatever runs next.
    baseline = {"np.concatenate": lambda: concatenate(gs)}
    now = interleave({**baseline, "symdl generated": lambda: module.split_grad(x, *gs)},
                     repeats=repeats, warmup=3)
    before = interleave({**baseline, "zeros + slices": lambda: zeros_and_slices(gs)},
                        repeats=repeats, warmup=3)
    return {**now, "zeros + slices": before["zeros + slices"]}


def main(argv: list[str] | None = None) -> int:
    """Print the median time of each candidate and its median ratio to np.concatenate."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=256, help="batch size")
    parser.add_argument("--d", type=int, default=1024, help="width of x (four gates)")
    parser.add_argument("--repeats", type=int, default=51)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = parser.parse_args(argv)
    if args.d % 4:
        parser.error(f"--d must be a multiple of 4 (four gates), got {args.d}")
    timings = run(args.n, args.d, args.repeats, args.dtype)
    print(f"gradient of split(x, 4, axis=1): x ({args.n}, {args.d}) {args.dtype}, "
          f"numpy {np.__version__}, {args.repeats} repeats")
    for name, t in timings.items():
        ratio = "1.00 (baseline)" if t.median_ratio is None else f"{t.median_ratio:.2f}"
        print(f"  {name:<16} median {t.median_us / 1e3:8.3f} ms   ratio to np.concatenate {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
