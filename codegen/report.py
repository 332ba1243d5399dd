"""What each pass bought: operation and line counts per stage, and the rewrites that fired.

Operations are counted in the generated source with `ast` (numpy calls, arithmetic operators,
array methods such as ``.sum()``; entry checks excluded), the same way the tests count them.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass

from symdl.ir import Expr, toposort
from symdl.rewrite import lower
from symdl.simplify import RewriteLog

from .checks import is_entry_check
from .fuse import SIMPLIFY_BUDGET_OPS, SIMPLIFY_MAX_OPS, FusionLog
from .module import assemble
from .pipeline import PASSES, Logs, Options
from .spec import Functions, normalize

_ARRAY_METHODS = {"sum", "max", "min", "mean", "argmax", "reshape", "astype", "dot"}


def count_operations(source: str, function: str) -> Counter[str]:
    """Numpy operations in the body of ``function`` (after its entry checks), by kind.

    Kinds: ``np.exp`` style calls by name, ``@``, ``+``, ``-``, ``*``, ``/``, ``**``, unary
    ``-``, array methods by name (``.sum``), in-place forms counted as their operator.
    """
    tree = ast.parse(source)
    func = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function
    )
    counts: Counter[str] = Counter()
    for stmt in func.body:
        if is_entry_check(stmt) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        ):
            continue  # docstring and entry checks
        for node in ast.walk(stmt):
            if isinstance(node, ast.BinOp):
                counts[_OPS.get(type(node.op), type(node.op).__name__)] += 1
            elif isinstance(node, ast.AugAssign):
                counts[_OPS.get(type(node.op), type(node.op).__name__)] += 1
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
                if not isinstance(node.operand, ast.Constant):
                    counts["neg"] += 1
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                target = node.func.value
                if isinstance(target, ast.Name) and target.id == "np":
                    if node.func.attr not in ("float32", "float64", "int64", "int32"):
                        counts[f"np.{node.func.attr}"] += 1
                elif node.func.attr in _ARRAY_METHODS:
                    counts[f".{node.func.attr}"] += 1
    return counts


_OPS = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@",
}


@dataclass
class Stage:
    """One row of the report: a function after one stage."""

    function: str
    stage: str
    operations: int
    lines: int | None


@dataclass
class Report:
    """Rows per function and stage, the rewrites that fired, and what fusion did."""

    stages: list[Stage]
    rewrites: RewriteLog
    fusion: FusionLog

    def format(self) -> str:
        """The report as a Markdown table, the passes each stage runs, and two summary lines."""
        rows = ["| function | stage | operations | lines |", "|---|---|---:|---:|"]
        for s in self.stages:
            lines = "" if s.lines is None else str(s.lines)
            rows.append(f"| {s.function} | {s.stage} | {s.operations} | {lines} |")
        f = self.fusion
        rows += ["", "passes (codegen.pipeline.PASSES, in order) per stage:"]
        rows += [f"- {stage}: {', '.join(stage_passes(o))}" for stage, o in STAGES]
        rows += [
            "",
            f"rewrites fired: {self.rewrites.summary()}",
            f"fusion: {f.absorbed} ops joined {f.fused} statements; sympy shortened "
            f"{f.simplified} bodies, {f.over_budget} left unsimplified (over the "
            f"{SIMPLIFY_MAX_OPS}-op size limit or the {SIMPLIFY_BUDGET_OPS}-op budget)",
        ]
        return "\n".join(rows)


def _lines(source: str, function: str) -> int:
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    body = [s for s in func.body if not is_entry_check(s)]
    return sum((s.end_lineno or s.lineno) - s.lineno + 1 for s in body[1:])


def _tree_operations(outputs: list[Expr]) -> int:
    """Operations if every use of a value computed it again: the graph unfolded into trees."""
    sizes: dict[Expr, int] = {}
    for n in toposort(outputs):
        own = 0 if n.is_leaf or n.op.free else 1
        sizes[n] = own + sum(sizes[i] for i in n.inputs)
    return sum(sizes[o] for o in outputs)


# (stage name, the passes it runs); each stage switches on more of `PASSES` than the one before.
STAGES: list[tuple[str, Options]] = [
    ("raw derivative", Options.of(simplify=False)),
    ("rewrites", Options.of(simplify=True, fuse=False, inplace=False)),
    ("fusion (sympy bodies, cse)", Options.of(simplify=True, inplace=False)),
    ("in-place (final)", Options.of(simplify=True)),
]


def stage_passes(options: Options) -> list[str]:
    """The names of the passes a stage runs, in the order of `PASSES`."""
    return [p.name for p in PASSES if p.enabled(options)]


def report(functions: Functions, name: str = "model", *, fast_math: bool = False) -> Report:
    """Operation and line counts of each function after each stage, and what the passes did.

    Stages, each adding one pass: ``raw derivative`` (the rules' output with composites
    lowered, values shared: hash-consing is the CSE), ``rewrites`` (simplification),
    ``fusion`` (elementwise chains as sympy bodies, `sympy.cse` inside), ``in-place`` (the
    final code, dead buffers reused). The first row, ``no CSE``, counts the raw derivative as
    if every use of a value computed it again: what sharing buys. ``fast_math`` is as in
    `codegen.generate`: every stage then runs with it.
    """
    specs = normalize(functions)
    logs = Logs()
    *earlier, (_, final) = STAGES
    sources = [
        assemble(functions, name, **_keywords(o), fast_math=fast_math).source for _, o in earlier
    ]
    # The last stage runs every pass: it fills the logs.
    sources.append(
        assemble(functions, name, **_keywords(final), fast_math=fast_math, logs=logs).source
    )
    stages = []
    for spec in specs:
        raw = lower([*spec.outputs, *spec.updates.values()])
        stages.append(Stage(spec.name, "raw derivative, no CSE (every use recomputed)",
                            _tree_operations(raw), None))
        for (stage, _), source in zip(STAGES, sources):
            ops = sum(count_operations(source, spec.name).values())
            stages.append(Stage(spec.name, stage, ops, _lines(source, spec.name)))
    return Report(stages, logs.rewrites, logs.fusion)


def _keywords(options: Options) -> dict[str, bool]:
    return {"simplify": options.simplify, "fuse": options.fuse, "inplace": options.inplace}
