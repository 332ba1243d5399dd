"""Time one SGD training step: symdl's generated numpy against hand-written numpy, same process.

Two phases per model. First the generated step, the hand-written step and the matrix products
alone, interleaved round by round (the ratio generated/hand-written is the number issue 3 asks
about). Then each optional framework interleaved with the hand-written step, so that its ratio
too is measured against a baseline that ran at the same moments.

Run through ``benchmarks/run_all.py``; ``run(...)`` here returns the rows.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from benchmarks import handwritten
from benchmarks.common import Timing, init_params, interleave, limit_threads, mnist_batch, note


@dataclass(frozen=True)
class Model:
    """A benchmarked model: its name, layer sizes and batch size."""

    name: str
    sizes: tuple[int, ...]
    batch: int

    @property
    def depth(self) -> int:
        """Number of weight layers."""
        return len(self.sizes) - 1


MODELS = (
    Model("softmax regression", (784, 10), 100),
    Model("MLP 784-256-10", (784, 256, 10), 128),
)
# Every workload of issue 17's goals (the two above among them).
ISSUE17_MODELS = (
    *MODELS,
    Model("softmax regression B=1000", (784, 10), 1000),
    Model("MLP 784-512-256-10", (784, 512, 256, 10), 128),
    Model("MLP 784-1024-1024-10", (784, 1024, 1024, 10), 256),
)
LR = np.float32(0.01)


@dataclass
class Row:
    """One line of the table: what ran, its median time, and its ratio to hand-written numpy."""

    model: str
    implementation: str
    median_us: float | None
    ratio: float | None
    note: str = ""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return dict(self.__dict__)


def compile_step(model: Model, cache_dir: str):
    """Generate and import the symdl training step for ``model``; returns the module."""
    import symdl as sd
    from benchmarks.models import mlp_sizes

    name = "bench_" + "_".join(map(str, model.sizes))
    return sd.compile(mlp_sizes(model.sizes), name, cache_dir=cache_dir)


def _handwritten(model: Model):
    if model.depth == 1:
        return handwritten.softmax_step
    return handwritten.mlp_step if model.depth == 2 else handwritten.mlp_layers_step


def _matmuls(model: Model, x: np.ndarray, params: list[np.ndarray]):
    n = x.shape[0]
    rng = np.random.default_rng(1)
    g = rng.standard_normal((n, model.sizes[-1]), dtype=np.float32)
    if model.depth == 1:
        W = params[0]
        return lambda: handwritten.softmax_matmuls(x, W, g)
    if model.depth == 2:
        W1, W2 = params[0], params[2]
        h = rng.standard_normal((n, model.sizes[1]), dtype=np.float32)
        dh = rng.standard_normal((n, model.sizes[1]), dtype=np.float32)
        return lambda: handwritten.mlp_matmuls(x, W1, W2, h, g, dh)
    weights = params[0::2]
    hidden = model.sizes[1:-1]
    activations = [x, *(rng.standard_normal((n, k), dtype=np.float32) for k in hidden)]
    deltas = [*(rng.standard_normal((n, k), dtype=np.float32) for k in hidden), g]
    return lambda: handwritten.mlp_layers_matmuls(weights, activations, deltas)


def check_same_step(model: Model, generated, x: np.ndarray, y: np.ndarray,
                    params: list[np.ndarray]) -> None:
    """Raise AssertionError unless one generated step and one hand-written step agree."""
    mine = [p.copy() for p in params]
    theirs = [p.copy() for p in params]
    loss_gen = generated.train_step(x, y, *mine, LR)
    loss_hand = _handwritten(model)(x, y, *theirs, LR)
    np.testing.assert_allclose(loss_gen, loss_hand, rtol=1e-4, err_msg=f"{model.name}: loss")
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6, err_msg=f"{model.name}: update")


def bench_model(model: Model, *, repeats: int, warmup: int, data: str,
                frameworks: dict | None, threads: int, cache_dir: str) -> list[Row]:
    """All rows for one model: hand-written, generated, matmuls only, then each framework."""
    x, y, labels = mnist_batch(model.batch, source=data)
    params = init_params(list(model.sizes))
    generated = compile_step(model, cache_dir)
    check_same_step(model, generated, x, y, params)

    hand_params = [p.copy() for p in params]
    gen_params = [p.copy() for p in params]
    hand_step, gen_step = _handwritten(model), generated.train_step
    candidates = {
        "hand-written numpy": lambda: hand_step(x, y, *hand_params, LR),
        "symdl generated": lambda: gen_step(x, y, *gen_params, LR),
        "matmuls only": _matmuls(model, x, params),
    }
    note(f"  {model.name}: numpy vs symdl vs matmuls, {repeats} rounds")
    timings = interleave(candidates, repeats=repeats, warmup=warmup)
    rows = [_row(model, t) for t in timings.values()]

    for label, factory in (frameworks or {}).items():
        rows.append(_bench_framework(model, label, factory, x, y, labels, params,
                                     repeats=repeats, warmup=warmup, threads=threads))
    return rows


def _bench_framework(model: Model, label: str, factory, x, y, labels, params, *,
                     repeats: int, warmup: int, threads: int) -> Row:
    from benchmarks.frameworks import FrameworkUnavailable

    try:
        step = factory(list(model.sizes), x, y, labels, params, float(LR), threads)
    except FrameworkUnavailable as err:
        return Row(model.name, label, None, None, f"skipped: {err}")
    except Exception as err:  # noqa: BLE001 - a broken optional framework must not stop the run
        return Row(model.name, label, None, None, f"failed: {type(err).__name__}: {err}")
    # Same initial parameters and batch, so the first loss must match the hand-written one.
    expected = float(_handwritten(model)(x, y, *[p.copy() for p in params], LR))
    first = float(step())
    remark = "" if np.isclose(first, expected, rtol=1e-3) else (
        f"first loss {first:.6g} != hand-written {expected:.6g}")
    hand_params = [p.copy() for p in params]
    hand_step = _handwritten(model)
    note(f"  {model.name}: numpy vs {label}, {repeats} rounds")
    with limit_threads(threads):  # again: the framework may have loaded its own BLAS
        timings = interleave({"hand-written numpy": lambda: hand_step(x, y, *hand_params, LR),
                              label: step}, repeats=repeats, warmup=warmup)
    return _row(model, timings[label], remark)


def _row(model: Model, timing: Timing, remark: str = "") -> Row:
    return Row(model.name, timing.name, timing.median_us, timing.median_ratio, remark)


def run(*, repeats: dict[str, int], warmup: int = 10, data: str = "mnist",
        frameworks: dict | None = None, threads: int = 1,
        models: tuple[Model, ...] = MODELS) -> list[Row]:
    """Rows for every model; ``repeats`` maps model name -> rounds."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="symdl-bench-") as cache_dir:
        for model in models:
            rows += bench_model(model, repeats=repeats[model.name], warmup=warmup, data=data,
                                frameworks=frameworks, threads=threads, cache_dir=cache_dir)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Time issue 17's workloads (or some of them) against hand-written numpy; print a table.

        env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.bench_train_step \
            --threads 1 [--repeats 30] [--models "MLP 784-256-10,softmax regression"]
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--repeats", type=int, default=30, help="interleaved rounds per model")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--data", choices=("mnist", "random"), default="random")
    parser.add_argument("--models", default="all",
                        help="comma-separated model names (default all of ISSUE17_MODELS)")
    args = parser.parse_args(argv)
    chosen = ISSUE17_MODELS if args.models == "all" else tuple(
        m for m in ISSUE17_MODELS if m.name in args.models.split(","))
    with limit_threads(args.threads):
        rows = run(repeats={m.name: args.repeats for m in chosen}, warmup=args.warmup,
                   data=args.data, threads=args.threads, models=chosen)
    print(f"threads {args.threads}, {args.repeats} interleaved rounds, median ratio to numpy")
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.3f}"
        print(f"{row.model:28} {row.implementation:20} {row.median_us:10.0f} us {ratio:>7}")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
