"""Property tests: random well-typed graphs, compiled, against an independent reference.

A hypothesis strategy draws a small graph (2-8 ops) over 1-3 float64 leaves from the whole op
set, reduces it to a scalar loss, and checks that

- the generated forward values equal `tests.reference.evaluate` (a direct numpy interpreter),
- `sd.grad` agrees with central finite differences along a random direction (JAX check_grads),
- simplified and unsimplified generated modules agree.

``SYMDL_FUZZ_EXAMPLES`` sets the number of examples (200 by default; CI is deterministic).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reference import LEAVES, RULES, evaluate, trace

import symdl as sd
from symdl.errors import ShapeError
from symdl.ir import Expr, leaves
from symdl.ops import OPS

EXAMPLES = int(os.environ.get("SYMDL_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
KINK_MARGIN = 1e-3  # values this close to a kink (relu at 0, max ties) are not fuzzed
LEAF_SHAPES = [(), (3,), (2, 3), (3, 2), (4, 3), ("N", 3), (2, 3, 2)]
N_VALUE = 2

# Elementwise bodies for sd.elementwise: smooth everywhere, bounded growth.
BODIES: list[Callable[..., sympy.Expr]] = [
    lambda z: z**3 / 3 + z,
    lambda z: sympy.sin(z) * z,
    lambda z: sympy.exp(-(z**2)),
    lambda z: sympy.log(1 + z**2),
    lambda u, v: u * v + sympy.cos(u),
    lambda u, v: sympy.tanh(u - v) * v,
]
CUSTOM = [sd.elementwise(fn, name=f"body{i}") for i, fn in enumerate(BODIES)]


def test_reference_covers_every_op() -> None:
    """A new op without a reference rule fails here, not silently in the fuzzer."""
    missing = sorted(set(OPS) - set(RULES) - set(LEAVES))
    assert not missing, f"tests/reference.py has no rule for {missing}"


# --------------------------------------------------------------------------- graph strategy


def _unary(draw: st.DrawFn, x: Expr) -> Expr:
    """One elementwise op kept in a safe domain (log and sqrt of positive values, etc.)."""
    kind = draw(st.sampled_from([
        "exp", "log", "log1p", "sqrt", "square", "sin", "cos", "tanh", "sigmoid", "softplus",
        "relu", "abs", "neg", "recip", "pow", "custom1",
    ]))
    if kind == "exp":
        return sd.exp(sd.tanh(x))
    if kind == "log":
        return sd.log(x * x + 1)
    if kind == "log1p":
        return sd.log1p(sd.exp(sd.tanh(x)))
    if kind == "sqrt":
        return sd.sqrt(sd.square(x) + 1)
    if kind == "recip":
        return 1 / (1 + x * x)
    if kind == "pow":
        return (x * x + 1) ** draw(st.sampled_from([0.5, 2, 3, -1.5]))
    if kind == "neg":
        return -x
    if kind == "custom1":
        return draw(st.sampled_from(CUSTOM[:4]))(x)
    return getattr(sd, kind)(x)


def _binary(draw: st.DrawFn, x: Expr, y: Expr) -> Expr:
    kind = draw(st.sampled_from(["+", "-", "*", "/", "maximum", "minimum", "where", "custom2"]))
    if kind == "+":
        return x + y
    if kind == "-":
        return x - y
    if kind == "*":
        return x * y
    if kind == "/":
        return x / (1 + y * y)
    if kind == "where":
        return sd.where(x > y, x * 2, y)
    if kind == "custom2":
        return draw(st.sampled_from(CUSTOM[4:]))(x, y)
    return getattr(sd, kind)(x, y)


def _axis_choice(draw: st.DrawFn, x: Expr) -> int | tuple[int, ...] | None:
    if x.ndim == 0:
        return None
    axes = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
    return axes[0] if len(axes) == 1 else tuple(axes)


def _structural(draw: st.DrawFn, x: Expr, other: Expr) -> Expr:
    kind = draw(st.sampled_from([
        "sum", "mean", "max", "reshape", "transpose", "matmul", "index", "concatenate",
        "expand_squeeze", "softmax", "log_softmax", "logsumexp", "xent", "xent_ids",
        "broadcast",
    ]))
    keepdims = draw(st.booleans())
    if kind in ("sum", "mean", "max"):
        return getattr(sd, kind)(x, axis=_axis_choice(draw, x), keepdims=keepdims)
    if kind == "reshape":
        static = [d for d in x.shape if isinstance(d, int)]
        lead = [d for d in x.shape if isinstance(d, str)]
        size = int(np.prod(static)) if static else 1
        factors = [f for f in range(1, size + 1) if size % f == 0]
        f = draw(st.sampled_from(factors))
        return sd.reshape(x, (*lead, f, size // f) if draw(st.booleans()) else (*lead, -1))
    if kind == "transpose":
        perm = draw(st.permutations(range(x.ndim)))
        return sd.transpose(x, perm) if x.ndim else x
    if kind == "matmul":
        if x.ndim >= 1 and other.ndim >= 1 and x.shape[-1] == other.shape[0]:
            return x @ other.reshape(other.shape[0], -1) if other.ndim > 2 else x @ other
        if x.ndim >= 2:
            perm = list(range(x.ndim))
            perm[-1], perm[-2] = perm[-2], perm[-1]
            return x @ sd.transpose(x, perm)
        return x @ x if x.ndim == 1 else x
    if kind == "index":
        if x.ndim == 0 or not isinstance(x.shape[-1], int) or x.shape[-1] < 2:
            return x[None] if x.ndim == 0 else x
        choice = draw(st.sampled_from(["int", "slice", "step", "rev", "new"]))
        last = x.shape[-1]
        item = {"int": draw(st.integers(-last, last - 1)), "slice": slice(1, None),
                "step": slice(None, None, 2), "rev": slice(None, None, -1), "new": None}[choice]
        return x[..., item] if choice != "new" else x[:, None] if x.ndim else x
    if kind == "concatenate":
        axes = [a for a in range(x.ndim) if isinstance(x.shape[a], int)]
        if not axes:
            return x
        return sd.concatenate([x, sd.sin(x)], axis=draw(st.sampled_from(axes)))
    if kind == "expand_squeeze":
        y = sd.expand_dims(x, draw(st.integers(0, x.ndim)))
        return sd.squeeze(y) if draw(st.booleans()) else y
    if kind in ("softmax", "log_softmax", "logsumexp"):
        if x.ndim == 0:
            return x
        axis = draw(st.integers(0, x.ndim - 1))
        if kind == "logsumexp":
            return sd.logsumexp(x, axis=axis, keepdims=keepdims)
        return getattr(sd, kind)(x, axis=axis)
    if kind in ("xent", "xent_ids"):
        if x.ndim == 0 or not isinstance(x.shape[-1], int) or x.shape[:-1] != tuple(
            d for d in x.shape[:-1] if isinstance(d, int)
        ):
            return x
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        depth = x.shape[-1]
        ids = rng.integers(0, depth, size=x.shape[:-1])
        if kind == "xent_ids":
            return sd.softmax_cross_entropy(x, sd.constant(ids.astype(np.int64)))
        return sd.softmax_cross_entropy(x, sd.constant(np.eye(depth)[ids]))
    # broadcast against a fresh constant row: exercises sum_to in the gradients
    if x.ndim >= 1 and isinstance(x.shape[-1], int):
        row = sd.constant(np.linspace(0.5, 1.5, x.shape[-1]))
        return x * row + sd.broadcast_to(sd.constant(0.25), x.shape)
    return x


@st.composite
def graphs(draw: st.DrawFn) -> tuple[Expr, list[Expr], dict[Expr, np.ndarray]]:
    """A scalar loss over 1-3 float64 parameters, and values for them."""
    params, pool = _pool(draw)
    # Reduce the last value and, sometimes, a shared earlier one to one scalar.
    loss = sd.sum(pool[-1])
    if draw(st.booleans()):
        loss = loss + sd.mean(draw(st.sampled_from(pool)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    feed = {
        p: rng.uniform(-2, 2, size=tuple(N_VALUE if isinstance(d, str) else d for d in p.shape))
        for p in params
    }
    used = leaves([loss])
    assume(used)
    return loss, used, feed


def _pool(draw: st.DrawFn) -> tuple[list[Expr], list[Expr]]:
    """1-3 float64 parameters and the values of 2-8 random ops over them, in order built."""
    n_leaves = draw(st.integers(1, 3))
    shapes = [draw(st.sampled_from(LEAF_SHAPES)) for _ in range(n_leaves)]
    params = [sd.parameter(f"p{i}", s, "float64") for i, s in enumerate(shapes)]
    pool: list[Expr] = list(params)
    for _ in range(draw(st.integers(2, 8))):
        x = draw(st.sampled_from(pool))
        y = draw(st.sampled_from(pool))
        family = draw(st.sampled_from(["unary", "binary", "structural"]))
        try:
            if family == "unary":
                new = _unary(draw, x)
            elif family == "binary":
                new = _binary(draw, x, y)
            else:
                new = _structural(draw, x, y)
        except ShapeError:
            continue  # operands whose shapes do not fit this op: draw another
        pool.append(new)
    return params, pool


SPECIAL = [np.nan, np.inf, -np.inf, -0.0, 0.0]


@st.composite
def special_graphs(draw: st.DrawFn) -> tuple[Expr, list[Expr], dict[Expr, np.ndarray]]:
    """A value (not reduced) over 1-3 parameters whose values include NaN, +-inf and -0.0."""
    params, pool = _pool(draw)
    out = pool[-1]
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    feed = {}
    for p in params:
        shape = tuple(N_VALUE if isinstance(d, str) else d for d in p.shape)
        value = rng.uniform(-2, 2, size=shape)
        special = rng.random(shape) < 0.4
        value[special] = rng.choice(SPECIAL, size=shape)[special]
        feed[p] = np.asarray(value)
    used = leaves([out])
    assume(used and out.dtype == "float64")
    return out, used, feed


# --------------------------------------------------------------------------- checks


def kink_distance(loss: Expr, feed: dict[Expr, np.ndarray]) -> float:
    """How far the point is from a kink of any non-smooth op in the graph (inf if none)."""
    values = trace([loss], feed)
    dist = np.inf
    for node, value in values.items():
        name = node.op.name
        ins = [values[i] for i in node.inputs]
        if name in ("relu", "abs", "sign") and ins[0].size:
            dist = min(dist, float(np.min(np.abs(ins[0]))))
        elif name in ("maximum", "minimum", "less", "less_equal", "greater", "greater_equal"):
            gap = np.abs(np.broadcast_to(ins[0] - ins[1], value.shape))
            dist = min(dist, float(np.min(gap))) if gap.size else dist
        elif name == "max" and ins[0].size:
            x = ins[0]
            axes = node.attr("axis")
            moved = np.moveaxis(x, axes, tuple(range(-len(axes), 0)))
            flat = moved.reshape(*moved.shape[: moved.ndim - len(axes)], -1)
            if flat.shape[-1] > 1:
                top2 = np.sort(flat, axis=-1)[..., -2:]
                dist = min(dist, float(np.min(top2[..., 1] - top2[..., 0])))
    return dist


def _call(mod: object, loss: Expr, params: list[Expr], feed: dict) -> list[np.ndarray]:
    return list(mod.f(*(feed[p] for p in params)))  # type: ignore[attr-defined]


def _compile(loss: Expr, params: list[Expr], cache: Path, simplify: bool) -> object:
    grads = sd.grad(loss, params)
    return sd.compile({"f": (params, [loss, *grads])}, "fuzz", cache_dir=cache,
                      simplify=simplify)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_cache")


def check_graph(loss: Expr, params: list[Expr], feed: dict[Expr, np.ndarray], cache: Path) -> None:
    """All three properties for one graph; raises AssertionError naming what disagreed."""
    expected = evaluate([loss], feed)[0]
    results = {}
    for simplify in (True, False):
        got = _call(_compile(loss, params, cache, simplify), loss, params, feed)
        np.testing.assert_allclose(got[0], expected, rtol=1e-10, atol=1e-12,
                                   err_msg=f"forward, simplify={simplify}\n{sd.show(loss)}")
        assert np.asarray(got[0]).dtype == np.float64
        for p, g in zip(params, got[1:], strict=True):
            assert np.shape(g) == np.shape(feed[p]), f"grad shape of {p.name}"
        results[simplify] = got
    for a, b in zip(results[True], results[False], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg="simplified vs raw")

    # Central differences along a random direction (JAX check_grads style), in float64.
    rng = np.random.default_rng(0)
    eps = 1e-6
    for p, g in zip(params, results[False][1:], strict=True):
        v = rng.standard_normal(np.shape(feed[p]))
        plus = {**feed, p: feed[p] + eps * v}
        minus = {**feed, p: feed[p] - eps * v}
        fd = (evaluate([loss], plus)[0] - evaluate([loss], minus)[0]) / (2 * eps)
        analytic = float(np.sum(np.asarray(g) * v))
        scale = max(1.0, abs(float(expected)))
        assert abs(fd - analytic) <= 1e-5 * (abs(fd) + abs(analytic)) + 1e-6 * scale, (
            f"grad wrt {p.name}: finite differences {fd!r} vs sd.grad {analytic!r}\n"
            f"{sd.show(loss)}"
        )


@FUZZ
@given(graphs())
def test_random_graphs(cache: Path, case: tuple) -> None:
    loss, params, feed = case
    with np.errstate(all="raise"):
        assume(np.all(np.isfinite(evaluate([loss], feed)[0])))
        assume(kink_distance(loss, feed) > KINK_MARGIN)
    check_graph(loss, params, feed, cache)


@FUZZ
@given(special_graphs())
def test_random_graphs_keep_numpy_nans(cache: Path, case: tuple) -> None:
    """Rewrites and fusion keep what numpy computes where inputs are NaN, +-inf or -0.0:
    simplified and raw modules agree on which entries are NaN, and on the others."""
    out, params, feed = case
    got = {}
    for simplify in (True, False):
        mod: Any = sd.compile({"f": (params, out)}, "fuzz_ieee", cache_dir=cache,
                              simplify=simplify)
        with np.errstate(all="ignore"):
            got[simplify] = np.asarray(mod.f(*(feed[p].copy() for p in params)))
    np.testing.assert_array_equal(np.isnan(got[True]), np.isnan(got[False]),
                                  err_msg=f"NaN positions\n{sd.show(out)}")
    np.testing.assert_allclose(got[True], got[False], rtol=1e-9, atol=1e-12,
                               err_msg=f"simplified vs raw\n{sd.show(out)}")


# --------------------------------------------------------------------------- regressions found


def test_regression_grad_of_vector_sum_prints_indexable_typed_seed(tmp_path: Path) -> None:
    """The seed cotangent 1.0 printed as a bare literal gave ``1.0[None]`` (a TypeError) for the
    gradient of ``sum`` over a vector, and a float64 gradient for float32 leaves."""
    for dtype in ("float32", "float64"):
        x = sd.parameter("x", (3,), dtype)
        loss = sd.sum(sd.exp(x))
        mod = sd.compile({"f": ([x], [loss, sd.grad(loss, x)])}, "seed", cache_dir=tmp_path)
        value = np.array([0.5, -1.0, 2.0], dtype=dtype)
        got_loss, got_grad = mod.f(value)
        np.testing.assert_allclose(got_grad, np.exp(value), rtol=1e-6)
        assert got_grad.dtype == np.dtype(dtype) and np.asarray(got_loss).dtype == np.dtype(dtype)
