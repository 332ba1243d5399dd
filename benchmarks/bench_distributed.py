"""Data-parallel training on Dask: samples per second at 1 and 2 workers against one process,
and the per-step overhead of the reduction and the parameter broadcast.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_distributed.py \\
        [--steps 20] [--batch 512] [--lenet-batch 128] [--models ...] [--json out.json]

Models: the Adam MLP 784-256-10 (203,530 parameters) and 784-1024-1024-10 (1,863,690), float32
ReLU, and the LeNet of `examples/lenet_mnist.py` (with its dropout), on random MNIST-shaped data
(4096 rows; values do not matter for timing). Workers are processes with one thread each
(`LocalCluster(processes=True, threads_per_worker=1)`), and the single-process step runs with
one BLAS thread too, so the comparison is per core.

For each model and worker count it times `symdl.distributed`'s global step after a warm-up:
``update="driver"`` (the driver applies Adam and scatters the parameters) and
``update="replicas"`` (every worker applies it to its copy; only the loss comes back). The
*overhead* is the per-step time of a batch of 2 rows (compute nearly nil): reduction, broadcast
and Dask's task round trips, growing with the parameter count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import symdl as sd  # noqa: E402
from benchmarks.common import limit_threads  # noqa: E402
from symdl import distributed  # noqa: E402

MODELS = {"784-256-10": [256], "784-1024-1024-10": [1024, 1024], "lenet": None}
ROWS = 4096


def compile_mlp(hidden: list[int], cache: str) -> tuple[sd.optim.TrainStep, dict]:
    """The split Adam step of a float32 ReLU MLP 784-hidden-10 and its initial parameters."""
    x = sd.placeholder("x", (None, 784), dtype="float32")
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = sd.layers.mlp(x, [*hidden, 10], activation=sd.relu, name="fc")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(1e-3), [x, y],
                                       name=f"bench_dp_{len(hidden)}_{hidden[0]}",
                                       cache_dir=cache, split=True)
    return step, sd.init.initialize(params, seed=0)


def compile_lenet(cache: str) -> tuple[sd.optim.TrainStep, dict]:
    """The split Adam step of `examples/lenet_mnist.py` (dropout 0.5 in training)."""
    import runpy

    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples"
                                 / "lenet_mnist.py"))
    inputs, loss, params, metrics, settings = example["build"]()
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(1e-3), inputs, metrics,
                                       name="bench_dp_lenet", cache_dir=cache,
                                       settings=settings, split=True)
    return step, sd.init.initialize(params, seed=0)


def per_step(run: object, batch: int, steps: int) -> float:
    """Median seconds of one global step of ``batch`` rows, after two warm-up steps."""
    rng = np.random.default_rng(0)
    times = []
    for k in range(steps + 2):
        idx = rng.choice(ROWS, size=batch, replace=False)
        start = time.perf_counter()
        run.global_step(idx, 1e-3, f"step {k}", k)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def single_process(step: sd.optim.TrainStep, params: dict, data: tuple, batch: int,
                   steps: int) -> float:
    """Median seconds of the fused step in this process."""
    state = step.init_state()
    rng = np.random.default_rng(0)
    draws = np.random.default_rng(1) if step.draws else None
    times = []
    for _ in range(steps + 2):
        idx = rng.choice(ROWS, size=batch, replace=False)
        chunk = [a[idx] for a in data]
        start = time.perf_counter()
        step(chunk, params, state, rng=draws)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=512, help="global batch of the MLPs")
    parser.add_argument("--lenet-batch", type=int, default=128, help="global batch of LeNet")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    from dask.distributed import Client, LocalCluster

    rng = np.random.default_rng(0)
    data = (rng.random((ROWS, 784), dtype=np.float32), rng.integers(0, 10, ROWS))
    cache = tempfile.mkdtemp(prefix="bench-dp-")
    results: dict = {"batch": args.batch, "lenet_batch": args.lenet_batch, "steps": args.steps,
                     "models": {}}
    compiled = {name: compile_lenet(cache) if hidden is None else compile_mlp(hidden, cache)
                for name, hidden in MODELS.items() if name in args.models}
    batches = {name: args.lenet_batch if name == "lenet" else args.batch for name in compiled}
    with limit_threads(1):  # OPENBLAS_NUM_THREADS=1 too, where threadpoolctl is missing
        for name, (step, params) in compiled.items():
            batch = batches[name]
            t = single_process(step, {k: v.copy() for k, v in params.items()}, data, batch,
                               args.steps)
            results["models"][name] = {"params": int(sum(v.size for v in params.values())),
                                       "batch": batch, "single_s": t,
                                       "single_samples_s": batch / t}
            print(f"{name}: one process {t * 1e3:.2f} ms/step, {batch / t:.0f} samples/s")
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, processes=True, threads_per_worker=1,
                          dashboard_address=":0", env={"SYMDL_CACHE": cache}) as cluster, \
                Client(cluster) as client:
            for name, (step, params) in compiled.items():
                row = results["models"][name]
                for update in distributed.UPDATES:
                    values = {k: v.copy() for k, v in params.items()}
                    run = distributed._Run(step, distributed._Cluster(client, None), data,
                                           values, step.init_state(), update, 0)
                    run.start()
                    batch = batches[name]
                    try:
                        t = per_step(run, batch, args.steps)
                        overhead = per_step(run, 2, args.steps)
                    finally:
                        run.close()
                    key = f"{workers}w_{update}"
                    row[key] = {"step_s": t, "samples_s": batch / t,
                                "overhead_s": overhead}
                    print(f"{name}: {workers} worker(s), update={update}: {t * 1e3:.2f} ms/step, "
                          f"{batch / t:.0f} samples/s; overhead (2 rows) "
                          f"{overhead * 1e3:.2f} ms/step")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
