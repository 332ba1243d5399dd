"""`sum_of_unindexed_slices`: the gradient of `split` is one ``np.concatenate`` of the pieces'
cotangents, not a ``np.zeros`` per piece with a slice assigned and the copies summed (issue 13).

References: the unsimplified graph run by the independent interpreter (`tests/reference.py`),
hand-written numpy, and central finite differences in float64.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reference import evaluate

import symdl as sd
from symdl.ir import toposort
from symdl.simplify import RewriteLog, simplify
from tests.helpers import check_grads, compile_functions

RNG = np.random.default_rng(1313)
RULE = "sum_of_unindexed_slices"


def _count(expr: sd.Expr, op: str) -> int:
    return sum(1 for n in toposort([expr]) if n.op.name == op)


def _statements(source: str, function: str) -> list[str]:
    """The assignments in the body of ``function``, as ast.unparse writes them."""
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return [ast.unparse(s) for s in func.body if isinstance(s, (ast.Assign, ast.AugAssign))]


def _gradient(dtype: str, pieces: Callable[[sd.Expr], list[sd.Expr]]) -> tuple[sd.Expr, ...]:
    """x (3, 8), the pieces of x that ``pieces`` takes, each weighted by its own placeholder in
    one loss, and the gradient with respect to x: (x_grad, x, *weights)."""
    x = sd.placeholder("x", (3, 8), dtype)
    taken = pieces(x)
    weights = [sd.placeholder(f"w{i}", p.shape, dtype) for i, p in enumerate(taken)]
    loss = sd.sum(sd.tanh(taken[0]) * weights[0])
    for p, w in zip(taken[1:], weights[1:]):
        loss = loss + sd.sum(sd.tanh(p) * w)
    return (sd.grad(loss, x), x, *weights)


# (id, pieces of x, whether the rule joins, unindex nodes left after simplification)
SHAPES: list[tuple[str, Callable[[sd.Expr], list[sd.Expr]], bool, int]] = [
    ("split4", lambda x: sd.split(x, 4, axis=1), True, 0),
    ("split2", lambda x: sd.split(x, 2, axis=1), True, 0),
    ("split_rows", lambda x: sd.split(x, [1], axis=0), True, 0),
    ("out_of_order", lambda x: [x[:, 6:], x[:, :2], x[:, 4:6], x[:, 2:4]], True, 0),
    ("by_indices_with_empty", lambda x: sd.split(x, [3, 3, 5], axis=1), True, 0),
    # a gap (4:6) between two runs: each run joins, the zeros stay only where nothing lands
    ("gap", lambda x: [x[:, 0:2], x[:, 2:4], x[:, 6:8]], True, 2),
    ("one_piece_short", lambda x: [x[:, 0:3], x[:, 3:6]], True, 1),
    ("not_adjacent", lambda x: [x[:, 0:2], x[:, 4:6]], False, 2),
    ("overlapping", lambda x: [x[:, 0:5], x[:, 3:8]], False, 2),
    ("two_axes", lambda x: [x[:2, :4], x[2:, 4:]], False, 2),
    ("int_index", lambda x: [x[:, 0], x[:, 1]], False, 2),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("pieces", "joins", "left"), [s[1:] for s in SHAPES],
                         ids=[s[0] for s in SHAPES])
def test_rule_keeps_values_and_joins_only_disjoint_neighbours(
    dtype: str, pieces: Callable[[sd.Expr], list[sd.Expr]], joins: bool, left: int
) -> None:
    grad_x, x, *weights = _gradient(dtype, pieces)
    log = RewriteLog()
    (simplified,) = simplify([grad_x], log)
    assert (log.fired[RULE] >= 1) == joins, log.summary()
    assert _count(simplified, "unindex") == left, sd.show(simplified)
    assert simplified.shape == grad_x.shape and simplified.dtype == grad_x.dtype
    feed = {x: RNG.standard_normal((3, 8)).astype(dtype)}
    feed.update({w: RNG.standard_normal(w.shape).astype(dtype) for w in weights})
    (before,) = evaluate([grad_x], feed)
    (after,) = evaluate([simplified], feed)
    assert after.dtype == before.dtype == np.dtype(dtype)
    # Joining adds nothing but zeros, so the values are the same to the bit.
    np.testing.assert_array_equal(after, before)


def test_other_terms_of_the_sum_are_kept() -> None:
    # x is split and also used whole: its gradient is the joined pieces plus 2 * x * w.
    x = sd.placeholder("x", (3, 8), "float64")
    w = sd.placeholder("w", (3, 8), "float64")
    a, b = sd.split(x, 2, axis=1)
    loss = sd.sum(sd.exp(a)) + sd.sum(x * x * w) + sd.sum(sd.sin(b))
    grad_x = sd.grad(loss, x)
    log = RewriteLog()
    (simplified,) = simplify([grad_x], log)
    assert log.fired[RULE] >= 1 and _count(simplified, "unindex") == 0, sd.show(simplified)
    feed = {x: RNG.standard_normal((3, 8)), w: RNG.standard_normal((3, 8))}
    (before,) = evaluate([grad_x], feed)
    (after,) = evaluate([simplified], feed)
    np.testing.assert_allclose(after, before, rtol=1e-14, atol=1e-14)
    xv, wv = feed[x], feed[w]
    want = np.concatenate([np.exp(xv[:, :4]), np.cos(xv[:, 4:])], axis=1) + 2 * xv * wv
    np.testing.assert_allclose(after, want, rtol=1e-13, atol=1e-13)


def test_gradient_through_split_matches_finite_differences(symdl_cache: Path) -> None:
    # An LSTM cell's gates from one pre-activation of a symbolic batch: i, f, g, o.
    x = sd.placeholder("x", (None, 12), "float64")
    c = sd.placeholder("c", (None, 3), "float64")
    i, f, g, o = sd.split(x, 4, axis=1)
    out = sd.sigmoid(o) * sd.tanh(sd.sigmoid(f) * c + sd.sigmoid(i) * sd.tanh(g))

    def reference(xv: np.ndarray, cv: np.ndarray) -> np.ndarray:
        iv, fv, gv, ov = np.split(xv, 4, axis=1)
        sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        return sig(ov) * np.tanh(sig(fv) * cv + sig(iv) * np.tanh(gv))

    values = [RNG.standard_normal((5, 12)), RNG.standard_normal((5, 3))]
    check_grads(reference, [x, c], out, values, cache_dir=symdl_cache)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_gradient_prints_one_concatenate(dtype: str, symdl_cache: Path) -> None:
    # The benchmark's case: the four gate cotangents of an LSTM-style split, joined.
    x = sd.placeholder("x", (None, 16), dtype)
    gates = [sd.placeholder(n, (None, 4), dtype) for n in ("ga", "gb", "gc", "gd")]
    loss = sd.sum(sd.split(x, 4, axis=1)[0] * gates[0])
    for piece, gate in zip(sd.split(x, 4, axis=1)[1:], gates[1:]):
        loss = loss + sd.sum(piece * gate)
    functions = {"f": ([x, *gates], sd.grad(loss, x))}
    source = sd.generate(functions, "split_grad")
    assert _statements(source, "f")[-1] == "x_grad = np.concatenate([ga, gb, gc, gd], axis=1)"
    assert "np.zeros" not in source
    values = [RNG.standard_normal((5, 4)).astype(dtype) for _ in gates]
    got = compile_functions(functions, symdl_cache, "split_grad").f(
        np.zeros((5, 16), dtype), *values
    )
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got, np.concatenate(values, axis=1))


def test_benchmark_runs_and_checks_its_candidates() -> None:
    # benchmarks/bench_split.py at a tiny size: it asserts the generated statement and that
    # the three forms agree before it times anything.
    from benchmarks import bench_split

    timings = bench_split.run(n=4, d=8, repeats=1, dtype="float32")
    assert set(timings) == {"np.concatenate", "symdl generated", "zeros + slices"}
