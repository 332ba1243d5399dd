#!/usr/bin/env python
"""The one benchmark command: issue 17's peer table (ratios to hand-written numpy at 2 and 1
threads) and generation time, as Markdown.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/run_all.py [--quick] \
        [--threads 2,1] [--json out.json]

Rows: softmax regression (B=100, B=1000), MLPs 784-256-10, 784-512-256-10 (B=128) and
784-1024-1024-10 (B=256), SGD, float32; Adam on the 784-256-10 MLP; the full Hessian of softmax
regression and an HVP (from ``bench_hessian.hessian_rows`` when it exists). Columns: the GEMMs
alone (the floor), symdl's generated numpy, symdl's numba backend, PyTensor C and numba, JAX jit,
torch.compile and torch eager, each the median of per-round ratios to hand-written numpy timed in
the same process (``common.interleave``). A library that is missing prints "n/a" with a footnote.

Each thread count runs in its own subprocess (``--worker``), because BLAS, OpenMP, torch and XLA
read their thread count when they load; the parent merges the JSON the workers write and prints
the 2-thread ratio with the 1-thread one in brackets. Then the time to generate and import each
training step in a fresh process, for softmax regression and MLPs of depth 4, 8, 16 and 32.

Unsetting OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (for this command only) lets OpenBLAS pick
its native kernel; the environment table reports the kernel that ran (through threadpoolctl).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

DEPTHS = (1, 4, 8, 16, 32)
QUICK_DEPTHS = (1, 4, 32)  # enough for issue 3's checks
MAX_GEN_S = 1.0  # issue 3: softmax regression and the 4-layer MLP, fresh process
MAX_DEPTH_GROWTH = 10.0  # issue 3: 32-layer time at most 10x the 4-layer time
# Issue 17's goals for symdl's ratio to hand-written numpy, at every thread count.
TARGETS = {
    "softmax regression B=100": 0.95,
    "softmax regression B=1000": 0.95,
    "MLP 784-256-10 B=128": 0.92,
    "MLP 784-512-256-10 B=128": 0.87,
    "MLP 784-1024-1024-10 B=256": 0.85,
    "Adam, MLP 784-256-10 B=128": 0.92,
    "full Hessian of softmax regression 150x150 B=200": 1.5,
    "HVP of softmax regression B=200": 1.0,
}
NUMPY = "hand-written numpy"
FLOOR = "GEMMs alone (floor)"
SYMDL = "symdl"
SYMDL_NUMBA = "symdl numba"
# The table's columns after the numpy time, in order; the framework columns follow FRAMEWORKS.
CORE_COLUMNS = (FLOOR, SYMDL, SYMDL_NUMBA)

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
                   help="fewer rounds per row, peers at the first thread count only, "
                        "generation at depths 1,4,32 once each")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds for every row (default: per row, see workloads.py)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed rounds first (default 5; 2 with --quick)")
    p.add_argument("--threads", default="2,1",
                   help="thread counts, one subprocess each; the first is the table's figure, "
                        "the others go in brackets (default 2,1)")
    p.add_argument("--data", choices=("mnist", "random"), default="mnist",
                   help="real MNIST batches (shared copy or shipped subset) or random ones")
    p.add_argument("--frameworks", default="all",
                   help="comma-separated framework columns (substrings: torch, jax, pytensor, "
                        "compile, autograd), 'all' or 'none' (default all)")
    p.add_argument("--no-frameworks", action="store_true", help="same as --frameworks none")
    p.add_argument("--workloads", default="all",
                   help="comma-separated substrings of row names (e.g. 'softmax,Adam'), or all")
    p.add_argument("--tiny", action="store_true",
                   help="toy sizes (batch 4, width 8), for the smoke test: checks the machinery")
    p.add_argument("--skip-train", action="store_true", help="no training-step table")
    p.add_argument("--skip-generation", action="store_true", help="no generation timing")
    p.add_argument("--depths", default=None,
                   help="MLP depths for generation time; 1 is softmax regression "
                        "(default 1,4,8,16,32; 1,4,32 with --quick)")
    p.add_argument("--gen-runs", type=int, default=None,
                   help="fresh processes per depth, median taken (default 3; 1 with --quick)")
    p.add_argument("--json", metavar="PATH", help="also write every number to this JSON file")
    p.add_argument("--worker", metavar="PATH", default=None,
                   help=argparse.SUPPRESS)  # internal: measure one thread count, JSON to PATH
    p.add_argument("--peer-only", action="store_true",
                   help=argparse.SUPPRESS)  # internal: a worker timing one peer against numpy
    return p.parse_args(argv)


def thread_counts(spec: str) -> list[int]:
    """``"2,1"`` -> ``[2, 1]``; every count must be a positive integer."""
    counts = [int(t) for t in str(spec).split(",") if t.strip()]
    if not counts or min(counts) < 1:
        raise SystemExit(f"run_all.py: --threads wants positive integers like 2,1; got {spec!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the Markdown report, optionally write JSON; returns 0, or 1
    when a thread count's worker failed."""
    args = parse_args(argv)
    counts = thread_counts(args.threads)
    if args.worker is not None:
        return worker_main(args, counts[0])
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.common import note

    report: dict[str, Any] = {"command": " ".join(["python", "benchmarks/run_all.py",
                                                   *(argv if argv is not None
                                                     else sys.argv[1:])])}
    started = time.perf_counter()
    if not args.skip_train:
        report["threads"] = counts
        report["runs"] = {}
        for i, threads in enumerate(counts):
            note(f"training steps at {threads} thread(s), in a subprocess:")
            # --quick times the peers at the first thread count only: their compilation
            # (inductor, PyTensor's C and numba) is most of a quick run's time.
            peers = list(choose_frameworks(args)) if not (args.quick and i > 0) else []
            report["runs"][str(threads)] = run_workers(args, argv, threads, peers)
    if not args.skip_generation:
        from benchmarks import bench_generation

        spec = args.depths or ",".join(map(str, QUICK_DEPTHS if args.quick else DEPTHS))
        depths = tuple(int(d) for d in spec.split(",") if d.strip())
        gen_runs = args.gen_runs if args.gen_runs is not None else (1 if args.quick else 3)
        note(f"generation time: depths {depths}, {gen_runs} fresh process(es) each")
        report["generation"] = [r.as_dict() for r in bench_generation.run(depths,
                                                                          runs=gen_runs)]
    report["environment"] = merged_environment(report, counts)
    report["duration_s"] = time.perf_counter() - started
    report["checks"] = checks(report)
    print(markdown(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    failed = [t for t, run in report.get("runs", {}).items() if "error" in run]
    if failed:
        print(f"run_all.py: the worker at {', '.join(failed)} thread(s) failed (its error is "
              "above); the table lacks its rows", file=sys.stderr)
        return 1
    return 0


def run_workers(args: argparse.Namespace, argv: list[str] | None, threads: int,
                peers: list[str]) -> dict[str, Any]:
    """Every row at ``threads`` threads: symdl's columns in one fresh interpreter, then each
    peer of ``peers`` in one of its own, merged into one result.

    One library per process: two BLAS thread pools in one process (numpy's OpenBLAS next to
    torch's, or PyTensor's) spin against each other on a small machine, and a step timed next
    to another library's idle pool is not the step a user of either would run. Each peer is
    timed against hand-written numpy in its own process, as symdl is in its own.
    """
    result = run_worker(args, argv, threads, None)
    if "error" in result:
        return result
    for label in peers:
        peer = run_worker(args, argv, threads, label)
        result["columns"].append(label)
        for row, cells in result["rows"].items():
            if "error" in peer:
                cells[label] = _cell(note=f"{label}: {peer['error']}")
            else:
                cells[label] = peer["rows"].get(row, {}).get(label) or _cell(
                    note=f"{label}: not measured")
        for key, value in peer.get("environment", {}).items():
            result["environment"].setdefault(key, value)
        if "error" in peer:
            result.setdefault("peer_errors", []).append(f"{label}: {peer['error']}")
    return result


def run_worker(args: argparse.Namespace, argv: list[str] | None, threads: int,
               peer: str | None) -> dict[str, Any]:
    """Measure at ``threads`` threads in a fresh interpreter; its JSON result: symdl's columns
    (``peer`` None) or the one peer ``peer`` against hand-written numpy.

    A worker that fails gives ``{"error": reason}``, so the table still prints.
    """
    passed = [a for a in (argv if argv is not None else sys.argv[1:])]
    for option in ("--threads", "--json", "--frameworks"):
        passed = _drop_option(passed, option)
    passed = [a for a in passed if a != "--no-frameworks"]
    chosen = ["--frameworks", "none"] if peer is None else ["--frameworks", peer, "--peer-only"]
    with tempfile.TemporaryDirectory(prefix="symdl-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), *passed, *chosen,
               "--threads", str(threads), "--worker", str(out)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        try:
            # Progress lines (stderr) pass through; stdout is captured so that a library
            # printing there cannot garble the table.
            done: subprocess.CompletedProcess | None = subprocess.run(
                cmd, env=env, stdout=subprocess.PIPE, text=True, timeout=3600)
        except subprocess.TimeoutExpired:
            done = None
        what = f"worker at {threads} thread(s)" + (f" for {peer}" if peer else "")
        except_text = None
        if done is None:
            except_text = f"{what} ran past 3600 s"
        elif done.returncode != 0 or not out.exists():
            except_text = f"{what} exited with {done.returncode}"
        if except_text:
            return {"error": except_text}
        return json.loads(out.read_text())


def _drop_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` or ``name=VALUE``."""
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


def worker_main(args: argparse.Namespace, threads: int) -> int:
    """In the worker process: pin threads, measure, write the JSON result to ``args.worker``."""
    pin_threads(threads)  # before numpy, torch, jax or numba load
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks.frameworks import configure_pytensor_blas

    configure_pytensor_blas()  # before pytensor loads
    from benchmarks.common import limit_threads

    with limit_threads(threads):
        result = collect(threads=threads, quick=args.quick, repeats=args.repeats,
                         warmup=args.warmup, data=args.data,
                         frameworks=choose_frameworks(args), workload_filter=args.workloads,
                         tiny=args.tiny, peer_only=args.peer_only)
    Path(args.worker).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def choose_frameworks(args: argparse.Namespace) -> dict[str, Any]:
    """Column label -> factory, from ``--frameworks`` / ``--no-frameworks``."""
    from benchmarks.frameworks import EXTRA_FRAMEWORKS, FRAMEWORKS

    chosen = "none" if args.no_frameworks else args.frameworks
    if chosen == "all":
        return dict(FRAMEWORKS)
    if chosen == "none":
        return {}
    every = {**FRAMEWORKS, **EXTRA_FRAMEWORKS}
    if chosen in every:
        return {chosen: every[chosen]}  # an exact column label (what run_worker passes)
    wanted = [name.strip().lower() for name in chosen.split(",") if name.strip()]
    return {k: v for k, v in every.items() if any(w in k.lower() for w in wanted)}


def collect(*, threads: int, quick: bool, repeats: int | None = None, warmup: int | None = None,
            data: str = "mnist", frameworks: dict[str, Any] | None = None,
            workload_filter: str = "all", tiny: bool = False,
            peer_only: bool = False) -> dict[str, Any]:
    """Measure every row in this process (threads already pinned); the worker's JSON result.
    ``peer_only``: only the ``frameworks`` columns against hand-written numpy, not symdl's.

    Returns ``{"threads", "columns", "rows": {row: {column: cell}}, "environment"}``; a cell is
    ``{"ratio", "us", "first_call_s", "note"}``, ``ratio`` None when it did not run (``note``
    says why).
    """
    from benchmarks import workloads as wl
    from benchmarks.common import environment

    frameworks = frameworks or {}
    chosen = wl.tiny_workloads() if tiny else wl.WORKLOADS
    if workload_filter != "all":
        wanted = [w.strip().lower() for w in workload_filter.split(",") if w.strip()]
        chosen = tuple(w for w in chosen if any(s in w.name.lower() for s in wanted))
    warmup = warmup if warmup is not None else (2 if quick else 5)
    rows: dict[str, dict[str, Any]] = {}
    second_order = None
    with tempfile.TemporaryDirectory(prefix="symdl-bench-") as cache_dir:
        for w in chosen:
            if w.trains:
                rounds = repeats or (w.quick_repeats if quick else w.repeats)
                rows[w.name] = measure_training(w, repeats=rounds, warmup=warmup, data=data,
                                                frameworks=frameworks, threads=threads,
                                                cache_dir=cache_dir, peer_only=peer_only)
            else:
                if second_order is None:
                    second_order = second_order_rows(
                        quick=quick, repeats=repeats, tiny=tiny, threads=threads,
                        columns=list(frameworks) if peer_only else [SYMDL, SYMDL_NUMBA])
                rows[w.name] = dict(second_order.get(w.kind, second_order["missing"]))
    columns = list(frameworks) if peer_only else [*CORE_COLUMNS, *frameworks]
    for w in chosen:
        # Say why a cell is empty: the row is pending as a whole, or the column has no such
        # workload.
        cells = rows[w.name]
        pending = cells.get(SYMDL, {}).get("note", "") if not w.trains else ""
        for column in columns:
            if column not in cells:
                reason = pending or (f"{column}: measured on the training rows only"
                                     if column == SYMDL_NUMBA else f"{column}: not measured")
                cells[column] = _cell(note=reason)
    env = environment(threads)
    env.update(versions())
    if frameworks:
        from benchmarks.frameworks import pytensor_c_blas

        env["PyTensor C backend"] = pytensor_c_blas()
    return {"threads": threads, "columns": columns, "rows": rows,
            "environment": env}


def _cell(ratio: float | None = None, us: float | None = None, note: str = "",
          first_call_s: float | None = None) -> dict[str, Any]:
    return {"ratio": ratio, "us": us, "note": note, "first_call_s": first_call_s}


def _loss_note(label: str, got: list[float], want: list[float]) -> str:
    """"" when the first two losses match the hand-written step's, else what differs."""
    import numpy as np

    if np.allclose(got, want, rtol=2e-3, atol=1e-6):
        return ""
    return (f"{label}: losses of steps 1-2 {', '.join(f'{v:.6g}' for v in got)} differ from "
            f"numpy's {', '.join(f'{v:.6g}' for v in want)}")


def measure_training(w: Any, *, repeats: int, warmup: int, data: str,
                     frameworks: dict[str, Any], threads: int, cache_dir: str,
                     peer_only: bool = False) -> dict[str, dict[str, Any]]:
    """Cells of one training row: numpy's time, then each column's ratio to it.

    First symdl's cells (`_symdl_cells`), unless ``peer_only`` (they come from another
    process); then each framework interleaved with the hand-written step alone. Every
    candidate's first two losses are checked against numpy's.
    """
    from benchmarks import workloads as wl
    from benchmarks.common import init_params, interleave, limit_threads, mnist_batch, note
    from benchmarks.frameworks import FrameworkUnavailable

    x, y, labels = mnist_batch(w.batch, source=data)
    cells: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    if w.kind == "adam":
        symdl_step, numpy_step, params = wl.adam_steps(w, x, labels, cache_dir)
        lr = float(wl.ADAM_LR)
        fresh_numpy = lambda: wl.adam_steps(w, x, labels, cache_dir)[1]  # noqa: E731
    else:
        params = init_params(list(w.sizes))
        lr = float(wl.LR)
        hand = wl.numpy_sgd_step(w.sizes)

        def fresh_numpy() -> Any:
            own = [p.copy() for p in params]
            return lambda: hand(x, y, *own, wl.LR)

        numpy_step = fresh_numpy()
        if not peer_only:
            generated = wl.symdl_sgd_step(w, cache_dir)
            mine = [p.copy() for p in params]
            symdl_step = lambda: generated(x, y, *mine, wl.LR)  # noqa: E731
    symdl_first = time.perf_counter() - t0
    reference = fresh_numpy()  # its own parameters: the expected losses of steps 1 and 2
    expected = [float(reference()) for _ in range(2)]
    if not peer_only:
        cells.update(_symdl_cells(w, x, y, labels, params, numpy_step, symdl_step, symdl_first,
                                  expected, repeats=repeats, warmup=warmup, threads=threads,
                                  cache_dir=cache_dir))

    for label, factory in frameworks.items():
        try:
            t1 = time.perf_counter()
            step = factory(list(w.sizes), x, y, labels, [p.copy() for p in params], lr,
                           threads, optimizer=w.kind)
            losses = [float(step())]  # the first call compiles (jit, inductor, numba)
            first_call = time.perf_counter() - t1
            losses.append(float(step()))
        except FrameworkUnavailable as err:
            cells[label] = _cell(note=str(err))
            continue
        except Exception as err:  # noqa: BLE001 - a broken optional framework must not stop
            cells[label] = _cell(note=f"{label} failed: {type(err).__name__}: {err}"[:300])
            continue
        baseline = fresh_numpy()
        note(f"  {w.name}, {threads} thread(s): numpy vs {label}, {repeats} rounds")
        with limit_threads(threads):  # again: the framework may have loaded its own BLAS
            timings = interleave({NUMPY: baseline, label: step}, repeats=repeats, warmup=warmup)
        t = timings[label]
        remark = "; ".join(r for r in (getattr(step, "note", ""),
                                       _loss_note(label, losses, expected)) if r)
        cells[label] = _cell(t.median_ratio, t.median_us, remark, first_call)
    return cells


def _symdl_cells(w: Any, x: Any, y: Any, labels: Any, params: list[Any], numpy_step: Any,
                 symdl_step: Any,
                 symdl_first: float, expected: list[float], *, repeats: int, warmup: int,
                 threads: int, cache_dir: str) -> dict[str, dict[str, Any]]:
    """symdl's cells of one training row: the hand-written step, the symdl step, the GEMM
    floor and symdl's numba backend in interleaved rounds."""
    from benchmarks import workloads as wl
    from benchmarks.common import interleave, note

    cells: dict[str, dict[str, Any]] = {}
    candidates = {NUMPY: numpy_step, SYMDL: symdl_step,
                  FLOOR: wl.gemm_floor(w.sizes, w.batch)}
    notes = {SYMDL: _loss_note("symdl", [float(symdl_step()) for _ in range(2)], expected)}
    first = {SYMDL: symdl_first}
    if importlib.util.find_spec("numba") is None:
        cells[SYMDL_NUMBA] = _cell(note="symdl numba: numba is not installed")
    else:
        try:
            t1 = time.perf_counter()
            if w.kind == "adam":
                numba_step = wl.adam_steps(w, x, labels, cache_dir, backend="numba")[0]
            else:
                numba_fn = wl.symdl_sgd_step(w, cache_dir, backend="numba")
                numba_own = [p.copy() for p in params]
                numba_step = lambda: numba_fn(x, y, *numba_own, wl.LR)  # noqa: E731
            first[SYMDL_NUMBA] = time.perf_counter() - t1
            notes[SYMDL_NUMBA] = _loss_note(
                "symdl numba", [float(numba_step()) for _ in range(2)], expected)
            candidates[SYMDL_NUMBA] = numba_step  # timed only once it has run
        except Exception as err:  # noqa: BLE001 - an optional backend must not stop the run
            cells[SYMDL_NUMBA] = _cell(note=f"symdl numba failed: {type(err).__name__}: {err}")
    note(f"  {w.name}, {threads} thread(s): numpy vs {', '.join(list(candidates)[1:])}, "
         f"{repeats} rounds")
    for name, t in interleave(candidates, repeats=repeats, warmup=warmup).items():
        cells[name] = _cell(t.median_ratio, t.median_us, notes.get(name, ""), first.get(name))
    return cells


# bench_hessian's keys -> this table's columns; torch.func runs eagerly: under torch eager.
HESSIAN_COLUMNS = {"symdl": SYMDL, "symdl_numba": SYMDL_NUMBA, "jax": "JAX jit",
                   "torch": "torch eager", "pytensor": "PyTensor C"}


def second_order_rows(*, quick: bool, repeats: int | None, tiny: bool, threads: int,
                      columns: list[str] | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """The Hessian and HVP rows from ``bench_hessian.hessian_rows``, as cells by column
    (``columns``: only these of this table's columns; default every one it has).

    Returns ``{"hessian": cells, "hvp": cells, "missing": cells}``; rows it does not provide get
    "n/a" cells saying so. Of its float64 and float32 rows (``--quick``: float64 only) the
    float32 one is shown, as for the training rows; a footnote names the one shown.
    """
    missing = {SYMDL: _cell(note="not measured (tiny run)")}
    out: dict[str, dict[str, dict[str, Any]]] = {"hessian": missing, "hvp": missing,
                                                  "missing": missing}
    if tiny:
        return out  # the smoke test checks the machinery, not the Hessian benchmark
    from benchmarks.bench_hessian import COLUMNS, hessian_rows

    theirs = [k for k in COLUMNS if columns is None or HESSIAN_COLUMNS.get(k) in columns]
    if not theirs:
        return {"hessian": {}, "hvp": {}, "missing": {}}
    try:
        found = hessian_rows(repeats=repeats or (5 if quick else 21), quick=quick,
                             threads=threads, columns=theirs)
    except Exception as err:  # noqa: BLE001 - another engineer's benchmark must not stop ours
        failed = {SYMDL: _cell(note=f"bench_hessian failed: {type(err).__name__}: {err}"[:300])}
        return {"hessian": failed, "hvp": failed, "missing": failed}
    remarks = {"torch": "torch.func (jacfwd of jacrev), eager",
               "pytensor": "PyTensor: the backend bench_hessian.py chose"}
    shown: dict[str, str] = {}
    for row in found:
        workload = str(row.get("workload", ""))
        kind = "hvp" if "hvp" in workload.lower() else "hessian"
        if kind in shown and "float32" not in workload:
            continue  # keep the float32 row where there is one
        shown[kind] = workload
        cells: dict[str, dict[str, Any]] = {}
        numpy_s = row.get("numpy_s")
        if isinstance(numpy_s, (int, float)):
            cells[NUMPY] = _cell(us=float(numpy_s) * 1e6, note=f"bench_hessian row: {workload}")
        for key, column in HESSIAN_COLUMNS.items():
            if key not in row:
                continue
            value = row[key]
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cells[column] = _cell(float(value), note=remarks.get(key, ""))
            else:
                cells[column] = _cell(note=f"{key}: {value}" if value else f"{key}: not run")
        out[kind] = cells
    return out


def versions() -> dict[str, str]:
    """Installed versions of symdl and the peers, read from their metadata (nothing imported)."""
    from importlib import metadata

    out = {}
    for dist in ("symdl", "torch", "jax", "jaxlib", "pytensor", "numba", "optax", "autograd"):
        try:
            out[f"{dist} version"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[f"{dist} version"] = "not installed"
    return out


def merged_environment(report: dict[str, Any], counts: list[int]) -> dict[str, Any]:
    """The first worker's environment (it loaded every framework), with every run's BLAS."""
    runs = report.get("runs", {})
    envs = [runs[str(t)].get("environment") for t in counts if str(t) in runs]
    envs = [e for e in envs if e]
    if not envs:
        from benchmarks.common import environment

        env = environment(counts[0])
        env.update(versions())
        return env
    env = dict(envs[0])
    env["threads"] = ", ".join(str(t) for t in counts)
    env["blas"] = " | ".join(f"{e['threads']} thread(s): {e.get('blas')}" for e in envs)
    # The load average at the end of the whole run, the figure to judge it by.
    if hasattr(os, "getloadavg"):
        env["load average (1, 5, 15 min)"] = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return env


def checks(report: dict[str, Any]) -> dict[str, Any]:
    """Issue 17's ratio goals (every thread count) and issue 3's generation targets."""
    out: dict[str, Any] = {}
    for threads, run in report.get("runs", {}).items():
        for name, cells in run.get("rows", {}).items():
            ratio = cells.get(SYMDL, {}).get("ratio")
            if name in TARGETS and ratio is not None:
                out[f"symdl {name}, {threads} thread(s) <= {TARGETS[name]}"] = {
                    "value": ratio, "met": ratio <= TARGETS[name]}
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


class _Footnotes:
    """Numbered footnotes, one per distinct text, in order of first use."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def mark(self, text: str) -> str:
        if not text:
            return ""
        if text not in self.texts:
            self.texts.append(text)
        return f" [{self.texts.index(text) + 1}]"

    def lines(self) -> list[str]:
        return [f"[{i}] {t}  " for i, t in enumerate(self.texts, start=1)]


def _cell_text(cells_by_t: dict[str, dict[str, Any]], counts: list[str], column: str,
               key: str, digits: int, notes: _Footnotes) -> str:
    """One table cell: the first thread count's value, the others in brackets, a footnote.

    A thread count whose run did not have this column (``--quick`` times the peers at the
    first count only) adds no bracket.
    """
    values = []
    for t in counts[:1] + [t for t in counts[1:] if column in cells_by_t[t]]:
        cell = cells_by_t[t].get(column)
        values.append(None if cell is None else cell.get(key))
    head = cells_by_t[counts[0]].get(column) or {}
    if values[0] is None:
        reason = head.get("note") or ("" if column == NUMPY else "not run")
        return "n/a" + notes.mark(reason) if reason else "-"
    shown = f"{values[0]:,.{digits}f}"
    others = [f"{v:,.{digits}f}" if v is not None else "n/a" for v in values[1:]]
    if others:
        shown += f" ({', '.join(others)})"
    return shown + notes.mark(head.get("note", ""))


def peer_table(report: dict[str, Any]) -> list[str]:
    """The Markdown peer table: one row per workload, the first thread count's ratio with the
    others in brackets, and footnotes for every "n/a" and every remark."""
    counts = [str(t) for t in report["threads"]]
    runs = {t: report["runs"].get(t, {}) for t in counts}
    notes = _Footnotes()
    for t, run in runs.items():
        if "error" in run:
            notes.mark(f"{t} thread(s): {run['error']}")
    columns: list[str] = []
    for run in runs.values():
        columns += [c for c in run.get("columns", []) if c not in columns]
    names: list[str] = []
    for run in runs.values():
        names += [n for n in run.get("rows", {}) if n not in names]
    first, rest = counts[0], counts[1:]
    label = f"{first} threads" + (f" ({', '.join(rest)} in brackets)" if rest else "")
    lines = [f"| workload (float32; ratio to hand-written numpy, {label}) "
             f"| {NUMPY} us/step | " + " | ".join(columns) + " |",
             "| --- | ---: | " + " | ".join("---:" for _ in columns) + " |"]
    for name in names:
        cells_by_t = {t: runs[t].get("rows", {}).get(name, {}) for t in counts}

        lines.append(f"| {name} | {_cell_text(cells_by_t, counts, NUMPY, 'us', 0, notes)} | "
                     + " | ".join(_cell_text(cells_by_t, counts, c, "ratio", 2, notes)
                                  for c in columns) + " |")
    return lines + [""] + notes.lines()


def first_call_table(report: dict[str, Any]) -> list[str]:
    """Seconds to the first result (generate+import, jit or compile, plus one step)."""
    first = str(report["threads"][0])
    run = report["runs"].get(first, {})
    columns = [c for c in run.get("columns", []) if c != FLOOR]
    lines = [f"| workload ({first} threads; seconds) | " + " | ".join(columns) + " |",
             "| --- | " + " | ".join("---:" for _ in columns) + " |"]
    for name, cells in run.get("rows", {}).items():
        values = [(cells.get(c) or {}).get("first_call_s") for c in columns]
        if any(v is not None for v in values):
            lines.append(f"| {name} | " + " | ".join(_fmt(v, 2) for v in values) + " |")
    return lines


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown: environment, peer table, first-call times, generation, checks."""
    lines = ["## symdl benchmarks", "", f"Command: `{report['command']}`", ""]
    if "duration_s" in report:
        lines += [f"Duration: {report['duration_s']:.0f} s", ""]
    env = report["environment"]
    lines += ["| environment | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in env.items()]
    if "runs" in report:
        lines += ["", "### Training step and second-order rows against hand-written numpy", "",
                  "Median of per-round ratios over interleaved rounds in one process; "
                  "below 1 is faster than numpy.", ""]
        lines += peer_table(report)
        lines += ["", "### First call: generate/compile and one step (seconds)", ""]
        lines += first_call_table(report)
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
        lines += ["", "### Targets (issue 17 ratios, issue 3 generation)", "",
                  "| target | measured | met |", "| --- | ---: | --- |"]
        for name, c in report["checks"].items():
            lines.append(f"| {name} | {_fmt(c['value'], 3)} | {'yes' if c['met'] else 'NO'} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
