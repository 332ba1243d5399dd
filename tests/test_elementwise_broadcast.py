"""Two-argument `sd.elementwise` functions over broadcasting shapes: value and both gradients.

A derivative body often drops a symbol (d(a * exp(-b**2))/da is ``exp(-b**2)``); the generated
code must still give every value its own shape. Each table row (a body, with its derivatives
written by hand) runs over pairs of shapes, with and without simplification, and is compared
with hand-written numpy and with central finite differences in float64.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.ir import toposort
from tests.helpers import assert_close, compile_functions, seed_of

Fn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Body:
    """One elementwise function: its sympy body, numpy value and partial derivatives."""

    name: str
    body: Callable[[sympy.Symbol, sympy.Symbol], sympy.Expr]
    value: Fn
    d_a: Fn  # d value / d a, elementwise
    d_b: Fn


BODIES = [
    Body("both_da_drops_a", lambda a, b: a * sympy.exp(-b * b),
         lambda a, b: a * np.exp(-b * b), lambda a, b: np.exp(-b * b),
         lambda a, b: -2 * a * b * np.exp(-b * b)),
    Body("each_uses_one", lambda a, b: sympy.sin(a) + b**2,
         lambda a, b: np.sin(a) + b**2, lambda a, b: np.cos(a), lambda a, b: 2 * b),
    Body("ignores_a", lambda a, b: sympy.exp(b),
         lambda a, b: np.exp(b), lambda a, b: np.zeros_like(a), lambda a, b: np.exp(b)),
    Body("ignores_b", lambda a, b: a * a,
         lambda a, b: a * a, lambda a, b: 2 * a, lambda a, b: np.zeros_like(b)),
    Body("constant_derivatives", lambda a, b: 3 * a - b / 2,
         lambda a, b: 3 * a - b / 2, lambda a, b: np.full_like(a, 3.0),
         lambda a, b: np.full_like(b, -0.5)),
]
FUNCTIONS = {b.name: sd.elementwise(b.body, name=b.name) for b in BODIES}

SHAPES: list[tuple[int, ...]] = [(), (4,), (3, 1), (1, 4), (3, 4), (2, 3, 4)]
PAIRS = list(itertools.product(SHAPES, SHAPES))


def _sum_to(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The adjoint of broadcasting, by hand: sum ``g`` over the axes ``shape`` was stretched on."""
    lead = g.ndim - len(shape)
    g = g.sum(axis=tuple(range(lead)))
    stretched = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    return g.sum(axis=stretched, keepdims=True)


def _finite_difference(f: Fn, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                       eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of ``sum(f(a, b) * c)`` by central differences, entry by entry."""
    grads = []
    for k in range(2):
        args = [a, b]
        grad = np.zeros_like(args[k])
        for i in np.ndindex(args[k].shape):
            plus, minus = [x.copy() for x in args], [x.copy() for x in args]
            plus[k][i] += eps
            minus[k][i] -= eps
            grad[i] = (np.sum(f(*plus) * c) - np.sum(f(*minus) * c)) / (2 * eps)
        grads.append(grad)
    return grads[0], grads[1]


@pytest.mark.parametrize("simplify", [True, False], ids=["simplified", "raw"])
@pytest.mark.parametrize(("shape_a", "shape_b"), PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
def test_value_and_gradients(
    shape_a: tuple[int, ...], shape_b: tuple[int, ...], simplify: bool, symdl_cache: Path
) -> None:
    shape = np.broadcast_shapes(shape_a, shape_b)
    a = sd.placeholder("a", shape_a, "float64")
    b = sd.placeholder("b", shape_b, "float64")
    cot = sd.placeholder("c", shape, "float64")
    functions = {}
    for body in BODIES:
        out = FUNCTIONS[body.name](a, b)
        assert out.shape == shape and out.dtype == "float64", (body.name, out.shape)
        functions[body.name] = ([a, b, cot], [out, *sd.grad(sd.sum(out * cot), [a, b])])
    module = sd.compile(functions, "bcast", cache_dir=symdl_cache, simplify=simplify)

    rng = np.random.default_rng(seed_of(f"{shape_a}{shape_b}"))
    av, bv, cv = (rng.uniform(-1.5, 1.5, s) for s in (shape_a, shape_b, shape))
    for body in BODIES:
        what = f"{body.name} a{shape_a} b{shape_b}"
        value, grad_a, grad_b = getattr(module, body.name)(av, bv, cv)
        expected = np.broadcast_to(body.value(av, bv), shape)
        assert_close(value, expected, rtol=1e-14, atol=1e-14, what=f"value of {what}")
        by_hand = (
            _sum_to(cv * body.d_a(av, bv), shape_a), _sum_to(cv * body.d_b(av, bv), shape_b)
        )
        numeric = _finite_difference(body.value, av, bv, cv)
        for name, got, hand, fd in zip("ab", (grad_a, grad_b), by_hand, numeric, strict=True):
            assert_close(got, hand, rtol=1e-12, atol=1e-12, what=f"d/d{name} of {what}")
            assert_close(got, fd, rtol=1e-6, atol=1e-7, what=f"d/d{name} of {what} (fd)")


def test_a_call_has_the_shape_and_dtype_of_all_arguments() -> None:
    a = sd.placeholder("a", (3, 4), "float64")
    b = sd.placeholder("b", (4,), "float32")
    for body in BODIES:
        out = FUNCTIONS[body.name](a, b)
        assert (out.shape, out.dtype) == ((3, 4), "float64"), (body.name, out)


def test_every_elementwise_node_computes_its_own_shape(tmp_path: Path) -> None:
    # Each derivative node printed alone (no cotangent to broadcast it back) has the shape it
    # declares: what later statements and `out=` buffers are sized by.
    a = sd.placeholder("a", (3, 1), "float64")
    b = sd.placeholder("b", (1, 4), "float64")
    outs = [FUNCTIONS[body.name](a, b) for body in BODIES]
    grads = [g for out in outs for g in sd.grad(sd.sum(out), [a, b])]
    nodes = [n for n in toposort(grads) if n.op.name == "elementwise"]
    assert len(nodes) >= 6, nodes
    functions = {f"f{i}": ([a, b], n) for i, n in enumerate(nodes)}
    module = compile_functions(functions, tmp_path, "nodes")
    av, bv = np.full((3, 1), 0.5), np.full((1, 4), -0.25)
    for i, node in enumerate(nodes):
        got = getattr(module, f"f{i}")(av, bv)
        assert np.shape(got) == node.shape, (node.attr("fname"), np.shape(got), node.shape)
