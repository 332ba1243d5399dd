"""Cold and warm starts of `sd.compile` in fresh processes.

Cold: a new interpreter with an empty ``$SYMDL_CACHE`` builds an MLP training step and compiles
it (generation, writing, import). Warm: another new interpreter with the cache the cold run
left compiles the same graph, which the input key finds without generating. Each figure is
the median of ``--runs`` fresh processes; the child times ``import symdl``, building the graph
(with ``grad``) and the ``compile`` call separately. Run it alone with::

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks.bench_warm_start \
        [--runs 5] [--depths 2,128]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from benchmarks.common import REPO_ROOT

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
module = sd.compile(functions, "warm_{depth}layer")
t_compile = time.perf_counter()
assert callable(module.train_step)
print(json.dumps({{"import_s": t_import - t0, "graph_s": t_graph - t_import,
                   "compile_s": t_compile - t_graph}}))
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

    return {"depth": depth, **{f"cold_{k}": med(cold, k) for k in cold[0]},
            **{f"warm_{k}": med(warm, k) for k in warm[0]}}


def main(argv: list[str] | None = None) -> int:
    """Print one row per depth; returns 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per figure")
    parser.add_argument("--depths", default="2,128", help="comma-separated MLP depths")
    args = parser.parse_args(argv)
    print("| model | import symdl s | graph + grad s | compile cold s | compile warm s | "
          "cold / warm |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for depth in (int(d) for d in args.depths.split(",")):
        r = measure(depth, args.runs)
        print(f"| MLP depth {depth} | {r['warm_import_s']:.3f} | {r['warm_graph_s']:.3f} | "
              f"{r['cold_compile_s']:.3f} | {r['warm_compile_s']:.3f} | "
              f"{r['cold_compile_s'] / r['warm_compile_s']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
