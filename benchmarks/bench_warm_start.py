"""Cold and warm starts of `sd.compile` in fresh processes.

Cold: a new interpreter with an empty ``$SYMDL_CACHE`` builds an MLP training step and compiles
it (generation, writing, import). Warm: another new interpreter with the cache the cold run
left compiles the same graph, which the input key finds without generating. Each figure is
the median of ``--runs`` fresh processes; the child times ``import symdl``, building the graph
(with ``grad``) and the ``compile`` call separately, in wall time and in CPU time
(``time.process_time``: on a loaded shared machine the wall time of one phase can double while
its CPU time does not). Issue 17's goals: a cold depth-128 process (import, graph, compile)
within 0.8 s, and a warm ``compile`` within 50 ms (a warm start costs ``import symdl`` and the
graph plus that). The exponent is the least-squares slope of log(cold compile time) against
log(depth). Run it alone with::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.bench_warm_start \
        [--runs 5] [--depths 2,8,32,128]

With ``PYTHONDONTWRITEBYTECODE`` set, every child compiles symdl's own modules from source (no
``.pyc``), which an installed symdl never does; the report says so when it is set.
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

from benchmarks.common import REPO_ROOT

_CHILD = r"""
import time
t0, c0 = time.perf_counter(), time.process_time()
import json, sys
sys.path.insert(0, {root!r})
import symdl as sd
t_import, c_import = time.perf_counter(), time.process_time()
from benchmarks.models import mlp
functions = mlp({depth})
t_graph, c_graph = time.perf_counter(), time.process_time()
module = sd.compile(functions, "warm_{depth}layer")
t_compile, c_compile = time.perf_counter(), time.process_time()
assert callable(module.train_step)
from symdl.lazy_imports import is_loaded
print(json.dumps({{"sympy_loaded": int(is_loaded("sympy")),
                   "import_s": t_import - t0, "graph_s": t_graph - t_import,
                   "compile_s": t_compile - t_graph, "total_s": t_compile - t0,
                   "import_cpu": c_import - c0, "graph_cpu": c_graph - c_import,
                   "compile_cpu": c_compile - c_graph, "total_cpu": c_compile - c0}}))
"""


def _child(depth: int, cache: str) -> dict[str, float]:
    env = dict(os.environ, SYMDL_CACHE=cache)
    proc = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(REPO_ROOT), depth=depth)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=cache)
    if proc.returncode != 0:
        raise RuntimeError(f"warm-start child (depth {depth}) failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(depth: int, runs: int = 5) -> dict[str, float]:
    """Medians over ``runs`` cold and ``runs`` warm fresh processes (each cold one in its own
    empty cache, each warm one after it in that cache)."""
    cold, warm = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="symdl-warm-") as cache:
            cold.append(_child(depth, cache))
            warm.append(_child(depth, cache))

    def med(samples: list[dict[str, float]], key: str) -> float:
        return statistics.median(s[key] for s in samples)

    # A warm start never runs sympy: generating (cold) does; the columns say which did.
    return {"depth": depth, **{f"cold_{k}": med(cold, k) for k in cold[0]},
            **{f"warm_{k}": med(warm, k) for k in warm[0]}}


def _yes(median: float) -> str:
    """The median of 0/1 flags over the processes, as 'yes', 'no' or 'mixed' (a tie)."""
    return {0.0: "no", 1.0: "yes"}.get(median, "mixed")


def exponent(rows: list[dict[str, float]], key: str = "cold_compile_s") -> float:
    """The least-squares slope of log(``key``) against log(depth): time grows as depth**slope."""
    xs = [math.log(r["depth"]) for r in rows]
    ys = [math.log(r[key]) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main(argv: list[str] | None = None) -> int:
    """Print one row per depth (wall seconds, CPU seconds in brackets); returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per figure")
    parser.add_argument("--depths", default="2,8,32,128", help="comma-separated MLP depths")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: each child compiles symdl from source")
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| model | import symdl s | graph + grad s | compile cold s | cold process s | "
          "compile warm s | warm start s | cold / warm | sympy run cold / warm |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    rows = []
    for depth in (int(d) for d in args.depths.split(",")):
        r = measure(depth, args.runs)
        rows.append(r)

        def both(key: str, r: dict[str, float] = r) -> str:
            return f"{r[key + '_s']:.3f} ({r[key + '_cpu']:.3f})"

        print(f"| MLP depth {depth} | {both('warm_import')} | {both('warm_graph')} | "
              f"{both('cold_compile')} | {both('cold_total')} | {both('warm_compile')} | "
              f"{both('warm_total')} | {r['cold_compile_s'] / r['warm_compile_s']:.0f} | "
              f"{_yes(r['cold_sympy_loaded'])} / {_yes(r['warm_sympy_loaded'])} |",
              flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    if len(rows) > 1:
        print(f"cold compile ~ depth^{exponent(rows):.2f} "
              f"(CPU time ~ depth^{exponent(rows, 'cold_compile_cpu'):.2f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
