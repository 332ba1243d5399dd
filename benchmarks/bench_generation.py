"""Time to generate and import a training step in a fresh Python process, and how
`sd.generate`'s time grows with the size of the graph.

Each measurement is a new interpreter (``subprocess.run([sys.executable, "-c", ...])``) with an
empty temporary ``$SYMDL_CACHE``, so nothing is reused: it times ``import symdl`` (sympy
included, when symdl loads it), building the graph, ``grad``, generating the source, writing it
and importing the module. The child reports the phases; the parent also records the process's
whole wall time (interpreter start-up included).

Scaling (`scaling`): `sd.generate` alone, in a fresh process per run, on graphs of four sizes:
deep narrow MLP training steps (depth 125 to 1000, width 8, with gradients and updates) and a
chain of elementwise ops (250 to 2000 ops). The exponent k of time ~ nodes**k is the least-squares
slope of log(time) against log(nodes) over the medians, fitted to the wall time and to the
child's CPU time (``time.process_time``): on a shared, loaded machine the wall time of one size
can double while its CPU time does not, so the CPU fit is the one to read there. Run it alone
with::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.bench_generation \
        [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from benchmarks.common import REPO_ROOT

# Runs in the child. Every phase is timed from the child's first statement, so the sum is the
# cost a user pays in a fresh process after the interpreter itself has started.
_CHILD = r"""
import time
t0 = time.perf_counter()
import json, sys
sys.path.insert(0, {root!r})
import symdl as sd
t_import = time.perf_counter()
from benchmarks.models import mlp
functions = mlp({depth})
t_graph = time.perf_counter()
module = sd.compile(functions, "gen_{depth}layer")
t_compile = time.perf_counter()
from symdl.lazy_imports import is_loaded
with open(module.__file__) as f:
    lines = f.read().count("\n")
print(json.dumps({{
    "import_s": t_import - t0,
    "graph_and_grad_s": t_graph - t_import,
    "compile_s": t_compile - t_graph,
    "lines": lines,
    "sympy_loaded": is_loaded("sympy"),
    "has_train_step": callable(getattr(module, "train_step", None)),
}}))
"""


@dataclass
class GenRow:
    """Generation time of one model (medians over fresh processes)."""

    model: str
    depth: int
    total_s: float  # import symdl + graph + grad + generate + write + import, in the child
    process_s: float  # the child's whole wall time, interpreter start-up included
    import_s: float
    graph_and_grad_s: float
    codegen_s: float  # generate + write + import of the module (one compile() call)
    lines: int
    sympy_loaded: bool

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return dict(self.__dict__)


def measure(depth: int, *, runs: int = 3, timeout_s: float = 300.0) -> GenRow:
    """Median over ``runs`` fresh processes for an MLP with ``depth`` weight layers (1: softmax)."""
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="symdl-gen-") as cache:
            env = dict(os.environ, SYMDL_CACHE=cache)
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(REPO_ROOT),
                                                                      depth=depth)],
                                  capture_output=True, text=True, env=env, timeout=timeout_s,
                                  cwd=cache)
            wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"generation child (depth {depth}) failed:\n{proc.stderr}")
        sample = json.loads(proc.stdout.strip().splitlines()[-1])
        if not sample["has_train_step"]:
            raise RuntimeError(f"generated module (depth {depth}) has no train_step")
        sample["process_s"] = wall
        samples.append(sample)

    def med(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    totals = [s["import_s"] + s["graph_and_grad_s"] + s["compile_s"] for s in samples]
    return GenRow(
        model="softmax regression" if depth == 1 else f"MLP depth {depth}",
        depth=depth,
        total_s=statistics.median(totals),
        process_s=med("process_s"),
        import_s=med("import_s"),
        graph_and_grad_s=med("graph_and_grad_s"),
        codegen_s=med("compile_s"),
        lines=int(samples[0]["lines"]),
        sympy_loaded=bool(samples[0]["sympy_loaded"]),
    )


def run(depths: tuple[int, ...] = (1, 4, 8, 16, 32), *, runs: int = 3) -> list[GenRow]:
    """One row per depth (1 is softmax regression)."""
    return [measure(depth, runs=runs) for depth in depths]


# ------------------------------------------------------------------------ scaling with size

# Runs in the child: builds one graph, counts its nodes, times `sd.generate` alone. A tiny
# model is generated first, so that the modules sympy and symdl load on first use are loaded
# before the clock starts: that fixed cost would hide how the time grows.
_SCALING_CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import symdl as sd
from symdl.ir import toposort
from benchmarks.bench_generation import SCALING_MODELS
sd.generate(SCALING_MODELS[{model!r}](4), "warm_up")
functions = SCALING_MODELS[{model!r}]({size})
(inputs, outputs, *updates), = functions.values()
outputs = [outputs] if isinstance(outputs, sd.Expr) else list(outputs)
nodes = len(toposort([*outputs, *(updates[0].values() if updates else [])]))
t0, c0 = time.perf_counter(), time.process_time()
source = sd.generate(functions, "scaling")
print(json.dumps({{"nodes": nodes, "generate_s": time.perf_counter() - t0,
                   "cpu_s": time.process_time() - c0, "lines": source.count("\n")}}))
"""


def deep_mlp(depth: int, width: int = 8) -> dict[str, tuple]:
    """An SGD step of ``relu(h @ W + b)`` stacked ``depth`` deep, ``width`` wide, as users write
    it: no layer named, so each comment's formula reaches down the whole network."""
    import symdl as sd

    x = sd.placeholder("x", (None, width))
    y = sd.placeholder("y", (None, width))
    lr = sd.placeholder("lr", ())
    params = []
    h = x
    for i in range(depth):
        W = sd.parameter(f"W{i}", (width, width))
        b = sd.parameter(f"b{i}", (width,))
        params += [W, b]
        h = sd.relu(h @ W + b)
    loss = sd.mean(sd.softmax_cross_entropy(h, y))
    grads = sd.grad(loss, params)
    return {"train_step": ([x, y, *params, lr], loss,
                           {p: p - lr * g for p, g in zip(params, grads)})}


def elementwise_chain(ops: int) -> dict[str, tuple]:
    """``y = y * 0.999 + 0.001`` repeated: a chain of ``ops`` elementwise ops on a (3,) vector."""
    import symdl as sd

    x = sd.placeholder("x", (3,), "float64")
    y = x
    for _ in range(ops // 2):
        y = y * 0.999 + 0.001
    return {"f": ([x], [y])}


SCALING_MODELS = {"deep MLP": deep_mlp, "elementwise chain": elementwise_chain}
SCALING_SIZES = {"deep MLP": (125, 250, 500, 1000), "elementwise chain": (250, 500, 1000, 2000)}


@dataclass
class ScalingRow:
    """`sd.generate` time for one model at one size (median over fresh processes)."""

    model: str
    size: int  # depth for the MLP, ops for the chain
    nodes: int  # nodes in the graph handed to generate
    generate_s: float
    lines: int
    cpu_s: float | None = None  # the child's CPU time in generate (None: not measured)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return dict(self.__dict__)


def measure_scaling(model: str, size: int, *, runs: int = 3,
                    timeout_s: float = 900.0) -> ScalingRow:
    """Median `sd.generate` time over ``runs`` fresh processes for ``model`` at ``size``."""
    samples = []
    for _ in range(runs):
        code = _SCALING_CHILD.format(root=str(REPO_ROOT), model=model, size=size)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=timeout_s, cwd=REPO_ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"scaling child ({model} {size}) failed:\n{proc.stderr}")
        samples.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return ScalingRow(model, size, int(samples[0]["nodes"]),
                      statistics.median(s["generate_s"] for s in samples),
                      int(samples[0]["lines"]), statistics.median(s["cpu_s"] for s in samples))


def exponent(rows: list[ScalingRow], time_of: str = "generate_s") -> float:
    """The least-squares slope of log(time) against log(nodes): time grows as nodes**slope.
    ``time_of`` picks the time: ``"generate_s"`` (wall) or ``"cpu_s"``."""
    xs = [math.log(r.nodes) for r in rows]
    ys = [math.log(getattr(r, time_of)) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def scaling(*, runs: int = 3, quick: bool = False) -> dict[str, list[ScalingRow]]:
    """Rows per model over its four sizes (``quick``: the three smallest)."""
    from benchmarks.common import note

    result: dict[str, list[ScalingRow]] = {}
    for model, sizes in SCALING_SIZES.items():
        rows = []
        for size in sizes[:3] if quick else sizes:
            note(f"scaling: {model} {size}")
            rows.append(measure_scaling(model, size, runs=runs))
        result[model] = rows
    return result


def scaling_table(result: dict[str, list[ScalingRow]]) -> str:
    """The scaling rows as a Markdown table, with each model's fitted exponent."""
    lines = ["| model | size | nodes | generate s (median) | x previous | CPU s | lines |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    fits = []
    for model, rows in result.items():
        previous = None
        for r in rows:
            ratio = "" if previous is None else f"{r.generate_s / previous:.2f}"
            cpu = "" if r.cpu_s is None else f"{r.cpu_s:.3f}"
            lines.append(f"| {model} | {r.size} | {r.nodes} | {r.generate_s:.3f} | {ratio} | "
                         f"{cpu} | {r.lines} |")
            previous = r.generate_s
        fit = f"{model}: time ~ nodes^{exponent(rows):.2f}"
        if all(r.cpu_s for r in rows):
            fit += f" (CPU time ~ nodes^{exponent(rows, 'cpu_s'):.2f})"
        fits.append(fit)
    return "\n".join(lines) + "\n\nfitted exponents (log-log least squares): " + "; ".join(fits)


def main(argv: list[str] | None = None) -> int:
    """Print the scaling table (and optionally write JSON); returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh processes per size")
    parser.add_argument("--quick", action="store_true", help="one run, three sizes")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    result = scaling(runs=1 if args.quick else args.runs, quick=args.quick)
    print(scaling_table(result))
    if args.json:
        rows = {m: [r.as_dict() for r in rs] for m, rs in result.items()}
        with open(args.json, "w") as f:
            json.dump({"scaling": rows,
                       "exponents": {m: exponent(rs) for m, rs in result.items()},
                       "cpu_exponents": {m: exponent(rs, "cpu_s") for m, rs in result.items()}},
                      f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
