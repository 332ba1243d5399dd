"""Every op declares the facts its category needs, and the facts are true.

`symdl.ops.base.missing_facts` is the checker (`register` raises with the same list); these tests
run it over the op table, show that it reports a throwaway op that leaves a fact out, and check
the facts against independent references: each elementwise op's numpy template, in-place
template and constant folding against its sympy form evaluated by sympy's own ``lambdify``;
``is_view`` against the memory the generated code returns; hints and LaTeX on every node the op
table builds.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.special
import sympy

import symdl as sd
from codegen.printer import NumpyPrinter
from symdl.derive.latex import latex
from symdl.errors import OpDefinitionError
from symdl.ir import Expr, toposort
from symdl.ops import OPS
from symdl.ops.base import ATOM, POSTFIX, Latex, Op, latex_call, missing_facts, register
from symdl.ops.elementwise import UnaryOp
from symdl.rewrite import lower
from tests.helpers import run_one
from tests.test_ops import CASES, Case, _has_gradient

# --------------------------------------------------------------------------- the checker


def test_every_op_declares_the_facts_of_its_category() -> None:
    incomplete = {name: missing_facts(op) for name, op in OPS.items() if missing_facts(op)}
    assert not incomplete, f"ops leaving out facts their category needs: {incomplete}"


# A complete elementwise op and a complete tensor op, defined here only; each test below drops
# one fact and expects the checker to name exactly that fact.
CUBE: dict[str, Any] = {
    "name": "cube_for_test",
    "numpy": "{0} ** 3",
    "sympy_form": staticmethod(lambda a: a**3),
    "hint": "cube_{0}",
    "latex": Latex("{{{0}}}^{{3}}", POSTFIX, (ATOM,)),
    "vjp": staticmethod(lambda g, out, x: (g * 3 * x * x,)),
}


def _flip_infer(cls: type[Op], x: Expr) -> tuple[tuple[object, ...], str]:
    return x.shape, x.dtype


FLIP: dict[str, Any] = {
    "name": "flip_for_test",
    "infer": classmethod(_flip_infer),
    "hint": "{0}_flipped",
    "latex": latex_call(r"\operatorname{flip}"),
    "latex_rule": r"C = \operatorname{flip}(A) \;\Rightarrow\; \bar{A} = \operatorname{flip}"
                  r"(\bar{C})",
    "vjp": staticmethod(lambda g, out, x: (g[::-1],)),
}


def _op(base: type[Op], facts: dict[str, Any], without: str | None = None) -> type[Op]:
    return type("Throwaway", (base,), {k: v for k, v in facts.items() if k != without})


def test_the_throwaway_ops_are_complete() -> None:
    assert missing_facts(_op(UnaryOp, CUBE)) == []
    assert missing_facts(_op(Op, FLIP)) == []


@pytest.mark.parametrize(
    "base, facts, fact",
    [(UnaryOp, CUBE, f) for f in ("sympy_form", "hint", "latex", "vjp")]
    + [(Op, FLIP, f) for f in ("infer", "hint", "latex", "latex_rule", "vjp")],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_an_op_leaving_out_a_fact_is_refused(
    base: type[Op], facts: dict[str, Any], fact: str
) -> None:
    op = _op(base, facts, without=fact)
    assert missing_facts(op) == [fact]
    with pytest.raises(OpDefinitionError, match=rf"{facts['name']}.*\b{fact}\b"):
        register(op)
    assert facts["name"] not in OPS


def test_a_ufunc_needs_an_inplace_template_calling_it() -> None:
    assert missing_facts(_op(UnaryOp, {**CUBE, "ufunc": "np.power"})) == ["inplace"]
    inplace = {**CUBE, "ufunc": "np.power", "inplace": "np.power({0}, 3, out={out})"}
    assert missing_facts(_op(UnaryOp, inplace)) == []


def test_a_non_differentiable_op_needs_no_derivative_facts() -> None:
    facts = {k: v for k, v in FLIP.items() if k not in ("vjp", "latex_rule")}
    assert missing_facts(_op(Op, {**facts, "differentiable": False})) == []
    assert missing_facts(_op(Op, facts)) == ["vjp", "latex_rule"]


# --------------------------------------------------------------------------- codegen facts


def test_every_op_prints_as_numpy_or_is_lowered_first() -> None:
    unprintable = [
        name for name, op in OPS.items()
        if not op.is_leaf and not NumpyPrinter.prints(op) and not hasattr(op, "expand")
    ]
    assert not unprintable, f"ops with no numpy printing and no expansion: {unprintable}"
    assert all(NumpyPrinter.prints(op) for op in OPS.values() if op.is_view)


def _arity(op: type[Op]) -> int:
    """Inputs an op takes, read from its shape rule (0 for ops taking any number)."""
    params = inspect.signature(op.infer).parameters.values()
    return sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)


SCALAR_MATH = [
    op for op in OPS.values() if op.elementwise_math and op.sympy_form is not None and _arity(op)
]


@pytest.mark.parametrize("op", SCALAR_MATH, ids=lambda op: op.name)
def test_numpy_facts_compute_the_sympy_form(op: type[Op]) -> None:
    """The numpy template, in-place template, fold and stable form compute the math form."""
    rng = np.random.default_rng(0)
    values = [rng.uniform(0.3, 1.7, size=(3, 4)) for _ in range(_arity(op))]
    symbols = sympy.symbols(f"a0:{len(values)}", real=True)
    # An op needing scipy (erf) is computed by scipy.special; sympy's numpy has no erf.
    modules = ["scipy", "numpy"] if op.needs else "numpy"
    expected = sympy.lambdify(symbols, op.sympy_form(*symbols), modules)(*values)
    names = {f"a{i}": v for i, v in enumerate(values)}
    scope = {"np": np, "scipy": scipy}
    got = {}
    if op.numpy is not None:  # else printed by a `_print_<Op>` method (polygamma)
        got["numpy"] = eval(op.numpy.format(*names), scope, names)  # noqa: S307
    if op.inplace is not None:
        out = np.empty_like(values[0])
        eval(op.inplace.format(*names, out="out"), scope, {**names, "out": out})  # noqa: S307
        got["inplace"] = out
    if op.fold is not None:
        got["fold"] = op.fold(*values)
    if op.sympy_stable is not None:
        stable = op.sympy_stable(*symbols)
        got["sympy_stable"] = sympy.lambdify(symbols, stable, modules)(*values)
    for fact, value in got.items():
        np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12, err_msg=fact)


# numpy gives a copy for a scalar picked by integer indices (``a[0, 1, 2]``); calling it a view
# only keeps buffer reuse away from it.
VIEW_ROWS = [
    c for c in CASES
    if c.build(*c.leaves("float64")).op.is_view and c.build(*c.leaves("float64")).shape != ()
]


@pytest.mark.parametrize("row", VIEW_ROWS, ids=[c.id for c in VIEW_ROWS])
def test_a_view_shares_its_input_memory(row: Case, symdl_cache: Path) -> None:
    leaves = row.leaves("float64")
    values = row.values(leaves)
    result = run_one(leaves, row.build(*leaves), values, symdl_cache)
    assert np.shares_memory(result, values[0]), f"{row.id}: generated code copied"


def test_every_view_op_has_a_view_row() -> None:
    covered = {c.build(*c.leaves("float64")).op.name for c in VIEW_ROWS}
    assert covered == {name for name, op in OPS.items() if op.is_view}


# --------------------------------------------------------------------------- hints and LaTeX


def _table_nodes() -> Iterator[Expr]:
    """Every node the op table builds: forward, gradient, and both lowered."""
    for row in CASES:
        leaves = row.leaves("float64")
        out = row.build(*leaves)
        graphs = [out]
        if _has_gradient(row):
            cot = sd.placeholder("cotangent", out.shape, out.dtype)
            graphs += sd.grad(sd.sum(out * cot), [x for x in leaves if x.dtype == "float64"])
        yield from toposort([*graphs, *lower(graphs)])


def test_hints_and_latex_of_every_node() -> None:
    seen = set()
    for node in _table_nodes():
        if node.is_leaf:
            continue
        seen.add(node.op.name)
        inputs = [f"v{i}" for i in range(len(node.inputs))]
        # The template itself (no fallback to the op's name), over the node's own attributes.
        hint = node.op.hint.format(*inputs, **node.kwargs)  # type: ignore[union-attr]
        assert hint.isidentifier(), (node.op.name, hint)
        text = latex(node)
        assert text and text.count("{") == text.count("}"), (node.op.name, text)
    assert seen == {name for name, op in OPS.items() if not op.is_leaf}


def test_latex_prints_a_deep_chain_without_recursion() -> None:
    x = sd.placeholder("x", (3,), "float64")
    y = x
    for _ in range(2000):
        y = sd.tanh(y)
    text = latex(y)
    assert text.count(r"\tanh") == 2000
    assert text.endswith(r"\left(x\right)" + r"\right)" * 1999)


# --------------------------------------------------------------------------- a new op, end to end
# `sd.expm1` was added as one block in symdl/ops/elementwise.py, one row in the op table and one
# in the reference interpreter; nothing else names it. These show every pass picked it up.


def _statements(source: str, function: str) -> list[str]:
    """The assignments in the body of ``function`` (its entry checks are `if` statements)."""
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return [ast.unparse(s) for s in func.body if isinstance(s, (ast.Assign, ast.AugAssign))]


def test_expm1_fuses_into_one_statement(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (3, 4), "float64")
    y = sd.placeholder("y", (3, 4), "float64")
    out = sd.expm1(x * 0.5) * 3.0 + y
    source = sd.generate({"f": ([x, y], out)}, "chain")
    (statement,) = _statements(source, "f")
    assert "np.expm1(" in statement, statement
    xv, yv = np.linspace(-1e-9, 2.0, 12).reshape(3, 4), np.ones((3, 4))
    got = run_one([x, y], out, [xv, yv], symdl_cache)
    np.testing.assert_allclose(got, np.expm1(xv * 0.5) * 3.0 + yv, rtol=1e-15, atol=0)


def test_expm1_derivation_has_local_derivative_exp() -> None:
    x = sd.parameter("x", (3,), "float64")
    loss = sd.sum(sd.expm1(x)).named("loss")
    steps = [s for s in sd.derive(loss, [x], code=False).steps if s.node.op.name == "expm1"]
    assert [s.local for s in steps] == [[("x", "e^{x}")]]


def test_expm1_in_latex() -> None:
    x, y = sd.placeholder("x", (3,)), sd.placeholder("y", (3,))
    assert latex(sd.expm1(x)) == "e^{x} - 1"
    # A difference, so a product keeps it in parentheses.
    assert latex(sd.expm1(x) * y) == r"\left(e^{x} - 1\right) \odot y"


def test_expm1_values_are_named_after_it() -> None:
    x = sd.placeholder("x", (3, 4), "float64")
    plain = sd.generate({"f": ([x], sd.expm1(x))}, "plain")
    assert "expm1_x = np.expm1(x)" in plain
    fused = sd.generate({"f": ([x], sd.expm1(x * 0.5))}, "fused")
    assert "expm1_x = np.expm1(0.5 * x)" in fused
