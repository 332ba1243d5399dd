"""What each pass bought: operation and line counts per stage, and the rewrites that fired.

Operations are counted in the generated source with `ast` (numpy calls, arithmetic operators,
array methods such as ``.sum()``; entry checks excluded), the same way the tests count them.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass

from symdl.ir import toposort
from symdl.rewrite import lower
from symdl.simplify import RewriteLog, simplify, tidy

from .module import Functions, assemble, normalize

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
        if isinstance(stmt, ast.If) or (
            isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
        ):
            continue  # docstring and entry checks
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Subscript):
            if isinstance(stmt.value.value, ast.Attribute):
                continue  # N = x.shape[0]
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
    """One row of the report."""

    function: str
    stage: str
    operations: int
    lines: int


def _lines(source: str, function: str) -> int:
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    body = [s for s in func.body if not isinstance(s, ast.If)]
    return sum((s.end_lineno or s.lineno) - s.lineno + 1 for s in body[1:])


def report(functions: Functions, name: str = "model") -> tuple[list[Stage], RewriteLog]:
    """Operation and line counts of each function after each stage, and the rewrites fired.

    Stages: ``raw`` (the derivative as the rules produce it, composites lowered), ``rewrites``
    (after simplification), ``in-place`` (the final code, with dead buffers reused). Common
    subexpressions are shared at every stage: nodes are hash-consed when built.
    """
    specs = normalize(functions)
    log = RewriteLog()
    for spec in specs:
        exprs = [*spec.outputs, *spec.updates.values()]
        tidy(lower(simplify(exprs, log)), log)
    raw = assemble(functions, name, simplify=False).source
    final = assemble(functions, name, simplify=True).source
    stages = []
    for spec in specs:
        for stage, source in (("raw", raw), ("rewrites + in-place", final)):
            ops = sum(count_operations(source, spec.name).values())
            stages.append(Stage(spec.name, stage, ops, _lines(source, spec.name)))
        nodes = len(toposort([*spec.outputs, *spec.updates.values()]))
        stages.insert(len(stages) - 2, Stage(spec.name, "graph nodes (hash-consed)", nodes, 0))
    return stages, log


def format_report(stages: list[Stage], log: RewriteLog) -> str:
    """The report as a Markdown table plus the list of rewrites that fired."""
    rows = ["| function | stage | operations | lines |", "|---|---|---:|---:|"]
    for s in stages:
        rows.append(f"| {s.function} | {s.stage} | {s.operations} | {s.lines or ''} |")
    rows.append("")
    rows.append(f"rewrites fired: {log.summary()}")
    return "\n".join(rows)
