#!/usr/bin/env python
"""The one benchmark command: training-step speed and generation time, as Markdown tables.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_all.py [--quick] \
        [--json out.json]

Times the SGD training step of softmax regression (batch 100) and of a 784-256-10 ReLU MLP
(batch 128), float32: symdl's generated numpy against hand-written numpy in the same process
(median of per-round ratios over interleaved repeats), the matrix products alone (the floor),
and every optional framework that is installed (PyTensor, JAX, PyTorch, autograd). Then the
time to generate and import each training step in a fresh process, for softmax regression and
MLPs of depth 4, 8, 16 and 32.

Unsetting OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (for this command only) lets OpenBLAS pick
its native kernel; the environment table reports the kernel that ran (through threadpoolctl).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

FULL_REPEATS = {"softmax regression": 200, "MLP 784-256-10": 50}
QUICK_REPEATS = {"softmax regression": 50, "MLP 784-256-10": 15}
DEPTHS = (1, 4, 8, 16, 32)
MAX_RATIO = 1.05  # issue 3: generated / hand-written, median over interleaved rounds
MAX_GEN_S = 1.0  # issue 3: softmax regression and the 4-layer MLP, fresh process
MAX_DEPTH_GROWTH = 10.0  # issue 3: 32-layer time at most 10x the 4-layer time

# Read by numpy's OpenBLAS, torch, numba and XLA when they load, so set before any import.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
)


def pin_threads(threads: int) -> None:
    """Set the thread-count variables of every numeric library (only counts before they load)."""
    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)
    flags = os.environ.get("XLA_FLAGS", "")
    if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options; see ``--help``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds (50 / 15), one generation run per depth")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds for every model (default 200 softmax, 50 MLP)")
    p.add_argument("--warmup", type=int, default=10, help="untimed rounds first (default 10)")
    p.add_argument("--threads", type=int, default=1,
                   help="BLAS/torch/XLA/numba threads, pinned for every row (default 1)")
    p.add_argument("--data", choices=("mnist", "random"), default="mnist",
                   help="real MNIST batches (shared copy or shipped subset) or random ones")
    p.add_argument("--frameworks", default="all",
                   help="comma-separated framework rows, 'all' or 'none' (default all)")
    p.add_argument("--no-frameworks", action="store_true", help="same as --frameworks none")
    p.add_argument("--skip-train", action="store_true", help="no training-step timing")
    p.add_argument("--skip-generation", action="store_true", help="no generation timing")
    p.add_argument("--depths", default=",".join(map(str, DEPTHS)),
                   help="MLP depths for generation time; 1 is softmax regression")
    p.add_argument("--gen-runs", type=int, default=None,
                   help="fresh processes per depth, median taken (default 3; 1 with --quick)")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the Markdown report, optionally write JSON; returns 0."""
    args = parse_args(argv)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    pin_threads(args.threads)  # then limit_threads() catches libraries loaded earlier
    from benchmarks import bench_generation, bench_train_step
    from benchmarks.common import environment, limit_threads, note
    from benchmarks.frameworks import FRAMEWORKS

    chosen = "none" if args.no_frameworks else args.frameworks
    if chosen == "all":
        frameworks = dict(FRAMEWORKS)
    elif chosen == "none":
        frameworks = {}
    else:
        wanted = [name.strip().lower() for name in chosen.split(",")]
        frameworks = {k: v for k, v in FRAMEWORKS.items()
                      if any(w in k.lower() for w in wanted)}

    repeats = dict(QUICK_REPEATS if args.quick else FULL_REPEATS)
    if args.repeats is not None:
        repeats = {name: args.repeats for name in repeats}
    gen_runs = args.gen_runs if args.gen_runs is not None else (1 if args.quick else 3)
    depths = tuple(int(d) for d in args.depths.split(",") if d.strip())

    report: dict[str, object] = {"command": " ".join(["python", "benchmarks/run_all.py",
                                                      *(argv if argv is not None
                                                        else sys.argv[1:])])}
    with limit_threads(args.threads):
        if not args.skip_train:
            note("training step:")
            rows = bench_train_step.run(repeats=repeats, warmup=args.warmup, data=args.data,
                                        frameworks=frameworks, threads=args.threads)
            report["train_step"] = [r.as_dict() for r in rows]
            report["repeats"] = repeats
        if not args.skip_generation:
            note(f"generation time: depths {depths}, {gen_runs} fresh process(es) each")
            report["generation"] = [r.as_dict() for r in bench_generation.run(depths,
                                                                             runs=gen_runs)]
        # Taken last, so that it lists the BLAS of every framework that was loaded.
        report["environment"] = environment(args.threads)
    report["checks"] = checks(report)
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def checks(report: dict) -> dict[str, object]:
    """Issue 3's targets, each with the measured value and whether it is met."""
    out: dict[str, object] = {}
    for row in report.get("train_step", []):
        if row["implementation"] == "symdl generated":
            out[f"ratio {row['model']} <= {MAX_RATIO}"] = {
                "value": row["ratio"], "met": row["ratio"] <= MAX_RATIO}
    gen = {r["depth"]: r for r in report.get("generation", [])}
    for depth in (1, 4):
        if depth in gen:
            out[f"generate+import {gen[depth]['model']} < {MAX_GEN_S} s"] = {
                "value": gen[depth]["total_s"], "met": gen[depth]["total_s"] < MAX_GEN_S}
    if 4 in gen and 32 in gen:
        growth = gen[32]["total_s"] / gen[4]["total_s"]
        out[f"depth 32 / depth 4 <= {MAX_DEPTH_GROWTH}"] = {
            "value": growth, "met": growth <= MAX_DEPTH_GROWTH}
        # The same without `import symdl`, which is paid once and would hide the growth.
        work = {d: gen[d]["graph_and_grad_s"] + gen[d]["codegen_s"] for d in (4, 32)}
        growth = work[32] / work[4]
        out[f"depth 32 / depth 4, import excluded <= {MAX_DEPTH_GROWTH}"] = {
            "value": growth, "met": growth <= MAX_DEPTH_GROWTH}
    return out


def _fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(report: dict) -> str:
    """The report as Markdown: environment, training-step table, generation table, checks."""
    lines = ["## symdl benchmarks", "", f"Command: `{report['command']}`", ""]
    env = report["environment"]
    lines += ["| environment | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    if "train_step" in report:
        reps = ", ".join(f"{k}: {v}" for k, v in report["repeats"].items())
        lines += ["", f"### Training step (float32, interleaved rounds: {reps})", "",
                  "| model | implementation | median us/step | ratio to hand-written | note |",
                  "| --- | --- | ---: | ---: | --- |"]
        for r in report["train_step"]:
            ratio = "1.00" if r["implementation"] == "hand-written numpy" else _fmt(r["ratio"], 2)
            lines.append(f"| {r['model']} | {r['implementation']} | {_fmt(r['median_us'])} "
                         f"| {ratio} | {r['note']} |")
    if "generation" in report:
        lines += ["", "### Generate and import in a fresh process (seconds, median)", "",
                  "| model | total | whole process | import symdl | graph + grad "
                  "| generate + write + import | lines | sympy loaded |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for r in report["generation"]:
            lines.append(f"| {r['model']} | {_fmt(r['total_s'], 3)} | {_fmt(r['process_s'], 3)} "
                         f"| {_fmt(r['import_s'], 3)} | {_fmt(r['graph_and_grad_s'], 3)} "
                         f"| {_fmt(r['codegen_s'], 3)} | {r['lines']} "
                         f"| {'yes' if r['sympy_loaded'] else 'no'} |")
    if report["checks"]:
        lines += ["", "### Targets (issue 3)", "", "| target | measured | met |",
                  "| --- | ---: | --- |"]
        for name, c in report["checks"].items():
            lines.append(f"| {name} | {_fmt(c['value'], 3)} | {'yes' if c['met'] else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
