"""Peak memory of one SGD training step: symdl's generated step against hand-written numpy.

    python -m benchmarks.bench_memory [--batches 128,1024]

Counted with `tracemalloc`: numpy reports every array buffer it allocates to it, so the peak
of the traced memory during one call, less what was traced before the call, is the most the
step held at once beyond its inputs (the arrays it allocates, not the parameters it updates in
place). It is a count, not a time, so it is the same on a busy machine. BLAS's own work
buffers are not numpy allocations and count on neither side.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks import handwritten
from benchmarks.bench_train_step import LR, Model, compile_step
from benchmarks.common import init_params, mnist_batch

MODELS = (
    Model("softmax regression", (784, 10), 100),
    Model("MLP 784-256-10", (784, 256, 10), 128),
)
BATCHES = (128, 1024)


@dataclass
class Row:
    """One model at one batch size: peak bytes per step of each implementation."""

    model: str
    batch: int
    generated: int
    handwritten: int

    @property
    def ratio(self) -> float:
        """Generated peak / hand-written peak."""
        return self.generated / self.handwritten


def peak_bytes(step: Callable[[], object]) -> int:
    """The peak of memory traced during one call of ``step``, above what was traced before."""
    step()  # warm: whatever a first call sets up once is not a per-step cost
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def measure(model: Model, batch: int, cache_dir: str) -> Row:
    """Peak bytes of one generated and one hand-written step of ``model`` at ``batch``."""
    x, y, _ = mnist_batch(batch, source="random")
    params = init_params(list(model.sizes))
    generated = compile_step(model, cache_dir).train_step
    if model.depth == 1:
        hand = handwritten.softmax_step
    elif model.depth == 2:
        hand = handwritten.mlp_step
    else:
        hand = handwritten.mlp_layers_step
    mine, theirs = [p.copy() for p in params], [p.copy() for p in params]
    return Row(model.name, batch,
               peak_bytes(lambda: generated(x, y, *mine, LR)),
               peak_bytes(lambda: hand(x, y, *theirs, LR)))


def run(models: tuple[Model, ...] = MODELS, batches: tuple[int, ...] = BATCHES) -> list[Row]:
    """A row per model and batch size."""
    with tempfile.TemporaryDirectory(prefix="symdl-bench-") as cache_dir:
        return [measure(m, b, cache_dir) for m in models for b in batches]


def main(argv: list[str] | None = None) -> int:
    """Print the table; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    args = parser.parse_args(argv)
    rows = run(batches=tuple(int(b) for b in args.batches.split(",")))
    print(f"{'model':22} {'batch':>6} {'symdl KiB':>10} {'numpy KiB':>10} {'ratio':>6}")
    for r in rows:
        print(f"{r.model:22} {r.batch:6} {r.generated / 1024:10.1f} "
              f"{r.handwritten / 1024:10.1f} {r.ratio:6.3f}")
    return 0


if __name__ == "__main__":
    np.seterr(all="raise")
    sys.exit(main())
