"""Graphs thousands of nodes deep: no recursion on graph depth, and passes that stay linear.

Deep models (a 1000-layer MLP, a 125-layer tanh chain, a 400-term elementwise sum) generate,
run, and match hand-written numpy forward and backward passes and central finite differences.
Work is measured in nodes visited, never in seconds (the machine is shared).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
import symdl.rewrite
from codegen.fuse import MAX_BODY_DEPTH, MAX_FUSED_OPS, Fused, _depth
from codegen.pipeline import Options, Program, run
from codegen.writer import COMMENT_FORMULA_LIMIT
from symdl.ir import Expr, toposort
from symdl.printing import formula
from symdl.provenance import annotate
from symdl.simplify import simplify
from tests.helpers import compile_functions

WIDTH = 8


def _params(depth: int, seed: int) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Positive inputs and weights near the identity: activations stay away from relu's kink
    and neither vanish nor explode over a thousand layers."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 1.5, (4, WIDTH))
    Ws = [np.eye(WIDTH) + 0.01 * rng.standard_normal((WIDTH, WIDTH)) for _ in range(depth)]
    bs = [0.01 * rng.standard_normal(WIDTH) for _ in range(depth)]
    return x, Ws, bs


def _mlp_numpy(
    x: np.ndarray, Ws: list[np.ndarray], bs: list[np.ndarray]
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """loss = sum(relu(... relu(x @ W0 + b0) ... @ Wn + bn)) and its gradients, by hand."""
    hs, pres = [x], []
    for W, b in zip(Ws, bs):
        pres.append(hs[-1] @ W + b)
        hs.append(np.maximum(pres[-1], 0.0))
    g = np.ones_like(hs[-1])
    W_grads, b_grads = [], []
    for i in reversed(range(len(Ws))):
        g = g * (pres[i] > 0)
        W_grads.append(hs[i].T @ g)
        b_grads.append(g.sum(axis=0))
        g = g @ Ws[i].T
    return float(hs[-1].sum()), W_grads[::-1], b_grads[::-1]


def _central_difference(f: Callable[[], float], array: np.ndarray, index: tuple[int, ...],
                        eps: float = 1e-6) -> float:
    """d f / d array[index] by central differences (``array`` is perturbed in place)."""
    saved = array[index]
    array[index] = saved + eps
    plus = f()
    array[index] = saved - eps
    minus = f()
    array[index] = saved
    return (plus - minus) / (2 * eps)


@pytest.mark.parametrize(
    "depth", [250, pytest.param(1000, marks=pytest.mark.slow)], ids=["250", "1000"]
)
def test_deep_mlp_generates_and_matches_numpy(depth: int, tmp_path: Path) -> None:
    x = sd.placeholder("x", (4, WIDTH), "float64")
    Ws = [sd.parameter(f"W{i}", (WIDTH, WIDTH), "float64") for i in range(depth)]
    bs = [sd.parameter(f"b{i}", (WIDTH,), "float64") for i in range(depth)]
    h = x
    for W, b in zip(Ws, bs):
        h = sd.relu(h @ W + b)
    loss = sd.sum(h)
    params = [p for pair in zip(Ws, bs) for p in pair]
    module = compile_functions({"f": ([x, *params], [loss, *sd.grad(loss, params)])},
                               tmp_path, "deep_mlp")

    xv, Wv, bv = _params(depth, seed=depth)
    got_loss, *got = module.f(xv, *[p for pair in zip(Wv, bv) for p in pair])
    loss_ref, W_grads, b_grads = _mlp_numpy(xv, Wv, bv)
    np.testing.assert_allclose(got_loss, loss_ref, rtol=1e-12)
    for i in range(depth):
        np.testing.assert_allclose(got[2 * i], W_grads[i], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got[2 * i + 1], b_grads[i], rtol=1e-9, atol=1e-12)

    def forward() -> float:
        return _mlp_numpy(xv, Wv, bv)[0]

    for layer, index in [(0, (0, 0)), (depth // 2, (3, 5)), (depth - 1, (7, 1))]:
        fd = _central_difference(forward, Wv[layer], index)
        np.testing.assert_allclose(got[2 * layer][index], fd, rtol=1e-6)
        fd = _central_difference(forward, bv[layer], index[:1])
        np.testing.assert_allclose(got[2 * layer + 1][index[:1]], fd, rtol=1e-6)


def test_tanh_chain_of_125_layers(tmp_path: Path) -> None:
    depth = 125
    x = sd.placeholder("x", (4, WIDTH), "float64")
    Ws = [sd.parameter(f"W{i}", (WIDTH, WIDTH), "float64") for i in range(depth)]
    h = x
    for W in Ws:
        h = sd.tanh(h @ W)
    loss = sd.sum(h)
    module = compile_functions({"f": ([x, *Ws], [loss, *sd.grad(loss, Ws)])}, tmp_path, "tanh")

    rng = np.random.default_rng(125)
    xv = rng.standard_normal((4, WIDTH))
    Wv = [rng.standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH) for _ in range(depth)]
    got_loss, *got = module.f(xv, *Wv)

    def forward() -> float:
        a = xv
        for W in Wv:
            a = np.tanh(a @ W)
        return float(a.sum())

    hs = [xv]
    for W in Wv:
        hs.append(np.tanh(hs[-1] @ W))
    g = np.ones_like(hs[-1])
    expected = [np.empty(0)] * depth
    for i in reversed(range(depth)):
        g = g * (1 - hs[i + 1] ** 2)
        expected[i] = hs[i].T @ g
        g = g @ Wv[i].T
    np.testing.assert_allclose(got_loss, forward(), rtol=1e-12)
    for i in range(depth):
        np.testing.assert_allclose(got[i], expected[i], rtol=1e-9, atol=1e-12)
    for layer in (0, 62, 124):
        fd = _central_difference(forward, Wv[layer], (1, 2))
        np.testing.assert_allclose(got[layer][1, 2], fd, rtol=1e-6, atol=1e-9)


def _lowered(outputs: list[Expr]) -> list[Expr]:
    """The graph the printer gets: after every pass (`codegen.pipeline.PASSES`)."""
    bare, notes = annotate(outputs)
    return list(run(Program(tuple(bare), notes), Options()).outputs)


def test_sum_of_400_products_is_a_chain_of_bounded_statements(tmp_path: Path) -> None:
    n = 400
    xs = [sd.placeholder(f"x{i}", (3,), "float64") for i in range(n)]
    ws = [sd.placeholder(f"w{i}", (3,), "float64") for i in range(n)]
    total = xs[0] * ws[0]
    for x, w in zip(xs[1:], ws[1:]):
        total = total + x * w
    outputs = [total, *sd.grad(sd.sum(total * total), ws)]
    lowered = _lowered(outputs)
    fused = [node for node in toposort(lowered) if node.op is Fused]
    assert fused, "the chain should fuse"
    for node in fused:
        assert _depth(node.attr("body"), {}) <= MAX_BODY_DEPTH
        assert sympy.count_ops(node.attr("body")) <= 2 * MAX_FUSED_OPS
    module = compile_functions({"f": ([*xs, *ws], outputs)}, tmp_path, "long_sum")

    rng = np.random.default_rng(400)
    xv = [rng.standard_normal(3) for _ in range(n)]
    wv = [rng.standard_normal(3) for _ in range(n)]
    got_total, *got_grads = module.f(*xv, *wv)
    expected = sum(x * w for x, w in zip(xv, wv))
    np.testing.assert_allclose(got_total, expected, rtol=1e-12)
    for x, g in zip(xv, got_grads):
        np.testing.assert_allclose(g, 2 * expected * x, rtol=1e-10)


def test_nested_deep_elementwise_bodies_print_in_bounded_statements(tmp_path: Path) -> None:
    # One op brings a body 20 levels deep; 32 of them fuse into a 640-level expression
    # unless the body depth is bounded (sympy's printer and the parser give up near 200).
    def body(z: sympy.Symbol) -> sympy.Expr:
        for i in range(20):
            z = sympy.sin(z) if i % 2 else sympy.cos(z)
        return z

    def numpy_body(z: np.ndarray) -> np.ndarray:
        for i in range(20):
            z = np.sin(z) if i % 2 else np.cos(z)
        return z

    f = sd.elementwise(body, name="deep20")
    x = sd.placeholder("x", (3,), "float64")
    h = x
    for _ in range(32):
        h = f(h)
    lowered = _lowered([h])
    bodies = [n.attr("body") for n in toposort(lowered) if n.op is Fused]
    assert bodies and all(_depth(b, {}) <= MAX_BODY_DEPTH for b in bodies)
    module = compile_functions({"f": ([x], h)}, tmp_path, "deep_bodies")
    xv = np.array([0.1, 0.7, -1.3])
    expected = xv
    for _ in range(32):
        expected = numpy_body(expected)
    np.testing.assert_allclose(module.f(xv), expected, rtol=1e-12)


def test_formula_of_a_deep_chain_is_iterative_and_bounded() -> None:
    x = sd.placeholder("x", (3,), "float64")
    y = x
    for i in range(5000):  # far deeper than Python's recursion limit
        y = sd.tanh(y) * 2.0 if i % 2 else y + 1.0
    full = formula(y, {})
    assert full.count("tanh(") == 2500 and full.count("x") == 1
    short = formula(y, {}, limit=COMMENT_FORMULA_LIMIT)
    assert len(short) <= COMMENT_FORMULA_LIMIT and short.startswith("tanh(tanh(")
    assert "..." in short and "x" not in short
    assert sd.show(y).count("\n") == len(toposort([y])) - 1  # the dump is iterative too


def _nodes_walked(build: Callable[[int], list[Expr]], run: Callable[[list[Expr]], object],
                  size: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Nodes the rewrite walks (`rebuild`'s topological sorts) visit while ``run`` runs."""
    walked = [0]
    original = symdl.rewrite.toposort

    def counting(outputs: list[Expr], stop: Callable[[Expr], bool] | None = None) -> list[Expr]:
        order = original(outputs, stop)
        walked[0] += len(order)
        return order

    outputs = build(size)
    monkeypatch.setattr(symdl.rewrite, "toposort", counting)
    run(outputs)
    monkeypatch.setattr(symdl.rewrite, "toposort", original)
    return walked[0]


def _affine_chain(n: int) -> list[Expr]:
    x = sd.placeholder("x", (3,), "float64")
    y = x
    for _ in range(n):
        y = y * 0.999 + 0.001  # each step rewritten by the simplifier (scalar first)
    return [y]


def _softmax_stack(n: int) -> list[Expr]:
    x = sd.placeholder("x", (2, 5), "float64")
    h = x
    for _ in range(n):
        h = sd.softmax(h) * 3.0  # one composite to lower per layer
    return [h]


@pytest.mark.parametrize(
    ("build", "run"),
    [(_affine_chain, simplify), (_softmax_stack, symdl.rewrite.lower)],
    ids=["simplify", "lower"],
)
def test_rewrite_walks_grow_linearly(
    build: Callable[[int], list[Expr]], run: Callable[[list[Expr]], object],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A rewrite that fired used to re-walk the whole graph below it: n rewrites on a chain of
    # n nodes walked n**2 / 2 nodes.
    small = _nodes_walked(build, run, 300, monkeypatch)
    large = _nodes_walked(build, run, 1200, monkeypatch)
    assert large <= 4.5 * small, (small, large)
