"""Time to generate and import a training step in a fresh Python process.

Each measurement is a new interpreter (``subprocess.run([sys.executable, "-c", ...])``) with an
empty temporary ``$SYMDL_CACHE``, so nothing is reused: it times ``import symdl`` (sympy
included, when symdl loads it), building the graph, ``grad``, generating the source, writing it
and importing the module. The child reports the phases; the parent also records the process's
whole wall time (interpreter start-up included).
"""

from __future__ import annotations

import json
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
with open(module.__file__) as f:
    lines = f.read().count("\n")
print(json.dumps({{
    "import_s": t_import - t0,
    "graph_and_grad_s": t_graph - t_import,
    "compile_s": t_compile - t_graph,
    "lines": lines,
    "sympy_loaded": "sympy" in sys.modules,
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
