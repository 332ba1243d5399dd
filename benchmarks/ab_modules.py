#!/usr/bin/env python
"""A/B timing of two generated modules of the same benchmark model, in one process.

For a change to the code generator: generate the model's module before and after the change
(for example from a second git worktree of the old commit) and time their ``train_step`` in
interleaved calls, reporting the median of the per-round ratios (after / before), which cancels
most of the drift of a shared machine::

    python -c "import symdl as sd; from benchmarks.models import mlp; \
        open('/tmp/after.py', 'w').write(sd.generate(mlp(2), 'mlp'))"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_modules.py \
        /tmp/before.py /tmp/after.py --depth 2

``--depth 1`` is softmax regression (batch 100), ``--depth 2`` the 784-256-10 MLP (batch 128),
as in `bench_train_step.py`; float32, SGD, learning rate 0.01 as a numpy scalar.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path
from types import ModuleType

import numpy as np


def load(path: Path, name: str) -> ModuleType:
    """Import a generated module from its file."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arrays(depth: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The batch (x, one-hot y) and the parameters of the model of ``depth`` weight layers."""
    rng = np.random.default_rng(seed)
    batch = 100 if depth == 1 else 128
    x = rng.random((batch, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch)]
    sizes = [784, *([256] * (depth - 1)), 10]
    params = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        params += [(rng.standard_normal((n_in, n_out)) * 0.01).astype(np.float32),
                   np.zeros(n_out, np.float32)]
    return [x, y], params


def main() -> None:
    """Parse the arguments, time both modules, print the median ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--depth", type=int, default=2, help="weight layers (1: softmax reg.)")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    before, after = load(args.before, "before"), load(args.after, "after")
    data, params = arrays(args.depth)
    copies = [p.copy() for p in params]
    lr = np.float32(0.01)
    calls = (lambda: before.train_step(*data, *params, lr),
             lambda: after.train_step(*data, *copies, lr))
    for _ in range(20):
        for call in calls:
            call()
    ratios = []
    for _ in range(args.rounds):
        times = []
        for call in calls:
            start = time.perf_counter_ns()
            call()
            times.append(time.perf_counter_ns() - start)
        ratios.append(times[1] / times[0])
    print(f"after / before, median of {args.rounds} interleaved rounds: "
          f"{statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
