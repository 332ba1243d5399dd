#!/usr/bin/env python
"""Statement-level profile of a training step: where the generated code spends its time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/profile_step.py [--model mlp]

Each top-level statement of the function body is wrapped in a pair of ``perf_counter_ns`` calls
(an AST rewrite of the real source, compiled under the real file name), the step is run many
times, and the statements are listed by median time with their source line. The same is done
for the hand-written step, so the two can be compared line by line. The clock calls add about
0.1 us per statement; the sum of the lines is shown next to the step's unprofiled median.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from types import FunctionType

REPO_ROOT = Path(__file__).resolve().parents[1]


def instrument(fn: FunctionType) -> tuple[Callable[..., object], dict[int, list[int]], list[str]]:
    """A copy of ``fn`` that records each top-level statement's time (ns) per call.

    Returns the copy, ``{line number: [ns per call, ...]}`` (filled as it runs) and the source
    lines of ``fn``'s file (for printing). A ``return`` is timed up to the point it returns.
    """
    source_lines, first = inspect.getsourcelines(fn)
    tree = ast.parse(textwrap.dedent("".join(source_lines)))
    ast.increment_lineno(tree, first - 1)
    func = tree.body[0]
    assert isinstance(func, ast.FunctionDef)
    func.decorator_list = []
    times: dict[int, list[int]] = {}
    body: list[ast.stmt] = []
    for stmt in func.body:
        line = stmt.lineno
        times[line] = []
        start = ast.parse("_prof_t = _prof_clock()").body
        stop = ast.parse(f"_prof_times[{line}].append(_prof_clock() - _prof_t)").body
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            # Evaluate the returned value inside the timed region, then return it.
            value = ast.Assign(targets=[ast.Name("_prof_ret", ast.Store())], value=stmt.value)
            body += start + [value] + stop + ast.parse("return _prof_ret").body
        else:
            body += start + [stmt] + stop
    func.body = body
    tree = ast.fix_missing_locations(tree)
    filename = inspect.getsourcefile(fn) or "<profiled>"
    namespace = dict(fn.__globals__, _prof_clock=time.perf_counter_ns, _prof_times=times)
    exec(compile(tree, filename, "exec"), namespace)  # noqa: S102 - the function's own source
    file_lines = Path(filename).read_text().splitlines() if Path(filename).exists() else []
    return namespace[fn.__name__], times, file_lines


def profile(fn: FunctionType, make_args: Callable[[], tuple], *, repeats: int,
            warmup: int = 10) -> list[tuple[float, int, str]]:
    """(median us, line number, source text) of each statement of ``fn``, slowest first."""
    wrapped, times, lines = instrument(fn)
    args = make_args()
    for _ in range(warmup):
        wrapped(*args)
    for v in times.values():
        v.clear()
    for _ in range(repeats):
        wrapped(*args)
    rows = [(statistics.median(v) / 1e3, line, lines[line - 1].strip() if lines else "")
            for line, v in times.items() if v]
    return sorted(rows, reverse=True)


def main(argv: list[str] | None = None) -> int:
    """Profile the generated and the hand-written step of one model; print both listings."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("softmax", "mlp"), default="mlp")
    p.add_argument("--repeats", type=int, default=300)
    p.add_argument("--top", type=int, default=15, help="statements listed per step")
    args = p.parse_args(argv)
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from benchmarks import handwritten
    from benchmarks.bench_train_step import LR, MODELS, compile_step
    from benchmarks.common import init_params, limit_threads, mnist_batch

    model = MODELS[0] if args.model == "softmax" else MODELS[1]
    x, y, _ = mnist_batch(model.batch, source="random")
    params = init_params(list(model.sizes))
    with tempfile.TemporaryDirectory(prefix="symdl-prof-") as cache, limit_threads(1):
        generated = compile_step(model, cache)
        hand = handwritten.softmax_step if model.depth == 1 else handwritten.mlp_step
        for label, fn in (("symdl generated", generated.train_step), ("hand-written", hand)):
            ps = [q.copy() for q in params]
            rows = profile(fn, lambda ps=ps: (x, y, *ps, LR), repeats=args.repeats)
            total = sum(r[0] for r in rows)
            print(f"\n### {model.name}: {label} (sum of statement medians {total:.1f} us)\n")
            print("| us | line | statement |\n| ---: | ---: | --- |")
            for us, line, text in rows[: args.top]:
                print(f"| {us:.1f} | {line} | `{text}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
