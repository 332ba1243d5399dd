"""Differentiation: grad of grad, Hessian-vector and Jacobian-vector products, the lecture
example, and the errors `grad` raises. References are hand-derived formulas, hand-written numpy
gradients and central finite differences in float64, never values printed by symdl itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.errors import GradientError, NoDerivativeError, ShapeError
from symdl.ir import Expr
from symdl.ops.base import Op
from symdl.types import Shape
from tests.helpers import (
    assert_close,
    check_grads,
    compile_functions,
    concrete,
    numeric_directional,
    seed_of,
)

# --------------------------------------------------------------------------- second derivatives


def test_grad_of_grad_matches_the_hand_derived_second_derivatives(symdl_cache: Path) -> None:
    """y = x2*x2 + x2*x3: d2y/dx2^2 = 2 and d2y/dx2dx3 = 1 everywhere."""
    x2 = sd.placeholder("x2", (), "float64")
    x3 = sd.placeholder("x3", (), "float64")
    y = x2 * x2 + x2 * x3
    dy_dx2 = sd.grad(y, x2)
    d2_x2x2, d2_x2x3 = sd.grad(dy_dx2, [x2, x3])
    module = compile_functions({"f": ([x2, x3], [dy_dx2, d2_x2x2, d2_x2x3])}, symdl_cache)
    rng = np.random.default_rng(0)
    for a, b in rng.uniform(-3, 3, size=(4, 2)):
        first, second, mixed = module.f(np.float64(a), np.float64(b))
        assert first == pytest.approx(2 * a + b, rel=1e-12)
        assert second == pytest.approx(2.0, rel=1e-12)
        assert mixed == pytest.approx(1.0, rel=1e-12)


def test_lecture_example_value_and_gradient(symdl_cache: Path) -> None:
    """y = ln x1 + x1*x2 - sin x2 at (2, 5): y = 11.652, dy/dx1 = 5.5, dy/dx2 = 2 - cos 5."""
    x1 = sd.placeholder("x1", (), "float64")
    x2 = sd.placeholder("x2", (), "float64")
    y = sd.log(x1) + x1 * x2 - sd.sin(x2)
    module = compile_functions({"f": ([x1, x2], [y, *sd.grad(y, [x1, x2])])}, symdl_cache)
    value, g1, g2 = module.f(np.float64(2.0), np.float64(5.0))
    assert value == pytest.approx(math.log(2.0) + 10.0 - math.sin(5.0), rel=1e-14)
    assert round(float(value), 3) == 11.652
    assert g1 == pytest.approx(5.5, rel=1e-14)
    assert g2 == pytest.approx(2.0 - math.cos(5.0), rel=1e-14)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_hvp_of_softmax_regression_matches_differences_of_the_handwritten_gradient(
    symdl_cache: Path,
) -> None:
    x = sd.placeholder("x", (None, 6), "float64")
    y = sd.placeholder("y", (None, 3), "float64")
    W = sd.parameter("W", (6, 3), "float64")
    V = sd.placeholder("V", (6, 3), "float64")
    loss = sd.mean(sd.softmax_cross_entropy(x @ W, y))
    module = compile_functions({"hvp": ([x, y, W, V], sd.hvp(loss, W, V))}, symdl_cache)

    rng = np.random.default_rng(1)
    xv = rng.standard_normal((5, 6))
    yv = np.eye(3)[rng.integers(0, 3, 5)]
    Wv = rng.standard_normal((6, 3))
    Vv = rng.standard_normal((6, 3))

    def handwritten_grad(w: np.ndarray) -> np.ndarray:  # the textbook: x.T @ (softmax - y) / N
        return xv.T @ (_softmax(xv @ w) - yv) / len(xv)

    expected = numeric_directional(handwritten_grad, [Wv], [Vv])
    assert_close(module.hvp(xv, yv, Wv, Vv), expected, rtol=1e-6, atol=1e-9, what="hvp")


def test_hvp_of_a_tanh_network_matches_differences_of_its_gradient(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4, 3), "float64")
    W = sd.parameter("W", (3, 5), "float64")
    V = sd.placeholder("V", (3, 5), "float64")
    y = sd.sum(sd.tanh(x @ W) ** 2) + sd.sum(sd.log_softmax(x @ W)[:, 1:4])
    module = compile_functions(
        {"grad": ([x, W], sd.grad(y, W)), "hvp": ([x, W, V], sd.hvp(y, W, V))}, symdl_cache
    )
    rng = np.random.default_rng(2)
    xv, Wv, Vv = (rng.standard_normal(s) for s in ((4, 3), (3, 5), (3, 5)))
    expected = numeric_directional(lambda w: module.grad(xv, w), [Wv], [Vv])
    assert_close(module.hvp(xv, Wv, Vv), expected, rtol=1e-6, atol=1e-8, what="hvp")


def test_hvp_is_symmetric_in_its_directions(symdl_cache: Path) -> None:
    """<u, H v> = <v, H u>: a Hessian is symmetric, so both orders must agree."""
    x = sd.parameter("x", (4,), "float64")
    u = sd.placeholder("u", (4,), "float64")
    v = sd.placeholder("v", (4,), "float64")
    y = sd.sum(sd.exp(x) * sd.sin(x[::-1])) + sd.logsumexp(x * x)
    hv, hu = sd.hvp(y, x, v), sd.hvp(y, x, u)
    module = compile_functions({"f": ([x, u, v], [sd.sum(u * hv), sd.sum(v * hu)])}, symdl_cache)
    rng = np.random.default_rng(3)
    a, b = module.f(*(rng.standard_normal(4) for _ in range(3)))
    assert a == pytest.approx(b, rel=1e-12)


# Second order through each kind of derivative rule (indexing needs unindex's own rule).
SECOND_ORDER = {
    "exp_sin": lambda x: sd.exp(x) * sd.sin(x),
    "sqrt_log": lambda x: sd.sqrt(x) * sd.log(x),
    "sigmoid_softplus": lambda x: sd.sigmoid(x) * sd.softplus(x),
    "divide_power": lambda x: x**3 / (x + 2),
    "index": lambda x: x[1:, None] * x[:-1] ** 2,
    "transpose_matmul": lambda x: (x[:, None] * x).T @ x,
    "softmax": lambda x: sd.softmax(x * 2.0) * x,
    "logsumexp_mean": lambda x: sd.logsumexp(x[None, :] * x[:, None], axis=0) * sd.mean(x),
    "concatenate": lambda x: sd.concatenate([x * x, sd.tanh(x)]) * sd.concatenate([x, x]),
    "where_maximum": lambda x: sd.where(x > 1.0, x * x, x) + sd.maximum(x * x, 2.0 * x),
    "broadcast_sum": lambda x: sd.broadcast_to(sd.sum(x * x), (3, 4)) * x,
}


@pytest.mark.parametrize("name", list(SECOND_ORDER))
def test_hvp_matches_differences_of_the_gradient(name: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4,), "float64")
    v = sd.placeholder("v", (4,), "float64")
    out = SECOND_ORDER[name](x)
    rng = np.random.default_rng(seed_of(name))
    c = sd.constant(rng.standard_normal(concrete(out.shape)))
    y = sd.sum(out * c)
    module = compile_functions(
        {"grad": ([x], sd.grad(y, x)), "hvp": ([x, v], sd.hvp(y, x, v))}, symdl_cache
    )
    # Positive and away from the kinks at 1 and 2 (where, maximum), so differences are smooth.
    xv = np.array([0.3, 0.7, 1.4, 2.6])
    vv = rng.standard_normal(4)
    expected = numeric_directional(module.grad, [xv], [vv])
    assert_close(module.hvp(xv, vv), expected, rtol=1e-6, atol=1e-8, what=f"hvp of {name}")


def test_jvp_matches_directional_differences_of_numpy(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), "float64")
    W = sd.parameter("W", (3, 4), "float64")
    V = sd.placeholder("V", (3, 4), "float64")
    out = sd.softmax(sd.tanh(x @ W))
    module = compile_functions({"jvp": ([x, W, V], sd.jvp(out, W, V))}, symdl_cache)
    rng = np.random.default_rng(4)
    xv, Wv, Vv = (rng.standard_normal(s) for s in ((5, 3), (3, 4), (3, 4)))
    got = module.jvp(xv, Wv, Vv)
    expected = numeric_directional(lambda w: _softmax(np.tanh(xv @ w)), [Wv], [Vv])
    assert_close(got, expected, rtol=1e-6, atol=1e-9, what="jvp")


def test_jvp_of_a_scalar_function_is_the_gradient_dotted_with_the_tangent(
    symdl_cache: Path,
) -> None:
    x = sd.placeholder("x", (3,), "float64")
    v = sd.placeholder("v", (3,), "float64")
    y = sd.sum(sd.exp(x) * x)
    module = compile_functions({"jvp": ([x, v], sd.jvp(y, x, v))}, symdl_cache)
    xv, vv = np.array([0.1, -0.4, 1.1]), np.array([1.0, 2.0, -0.5])
    assert module.jvp(xv, vv) == pytest.approx(np.sum(np.exp(xv) * (1 + xv) * vv), rel=1e-12)


def test_jvp_refuses_a_tangent_of_the_wrong_shape() -> None:
    x = sd.placeholder("x", (3,), "float64")
    with pytest.raises(GradientError, match=r"\(4,\).*\(3,\)"):
        sd.jvp(sd.exp(x), x, sd.placeholder("v", (4,), "float64"))


# --------------------------------------------------------------------------- first order details


def test_check_grads_on_a_model_with_several_parameters(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 4), "float64")
    y = sd.placeholder("y", (None,), "int64")
    W1 = sd.parameter("W1", (4, 5), "float64")
    b1 = sd.parameter("b1", (5,), "float64")
    W2 = sd.parameter("W2", (5, 3), "float64")
    loss = sd.mean(sd.softmax_cross_entropy(sd.relu(x @ W1 + b1) @ W2, y))

    def loss_np(xv: np.ndarray, yv: np.ndarray, w1: np.ndarray, bb: np.ndarray,
                w2: np.ndarray) -> np.ndarray:
        z = np.maximum(xv @ w1 + bb, 0) @ w2
        logp = z - z.max(1, keepdims=True)
        logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
        return -logp[np.arange(len(yv)), yv].mean()

    rng = np.random.default_rng(5)
    values = [rng.standard_normal((5, 4)), rng.integers(0, 3, 5), rng.standard_normal((4, 5)),
              rng.standard_normal(5), rng.standard_normal((5, 3))]
    check_grads(loss_np, [x, y, W1, b1, W2], loss, values, cache_dir=symdl_cache)


def test_gradient_through_a_cast_keeps_the_leaf_dtype(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (3,), "float32")
    y = sd.sum(x.astype("float64") ** 2)
    g = sd.grad(y, x)
    assert g.dtype == "float32" and g.shape == (3,)
    xv = np.array([1.0, -2.0, 0.5], np.float32)
    got = compile_functions({"f": ([x], g)}, symdl_cache).f(xv)
    assert got.dtype == np.float32
    assert_close(got, 2 * xv, rtol=1e-6, atol=0, what="grad through cast")


def test_max_ties_share_the_gradient_equally(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (2, 3), "float64")
    g = sd.grad(sd.sum(sd.max(x, axis=1)), x)
    xv = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    got = compile_functions({"f": ([x], g)}, symdl_cache).f(xv)
    assert_close(got, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-12, atol=0, what="ties")


def test_float32_gradients_stay_float32(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 4))
    W = sd.parameter("W", (4, 3))
    b = sd.parameter("b", (3,))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, sd.placeholder("y", (None, 3))))
    grads = sd.grad(loss, [W, b])
    assert [g.dtype for g in grads] == ["float32", "float32"]
    module = compile_functions({"f": ([x, sd.placeholder("y", (None, 3)), W, b], grads)},
                               symdl_cache)
    rng = np.random.default_rng(6)
    got = module.f(rng.random((5, 4), np.float32), np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]],
                   rng.random((4, 3), np.float32), rng.random(3, dtype=np.float32))
    assert [g.dtype for g in got] == [np.float32, np.float32]


def test_grad_labels_results_after_their_leaves() -> None:
    W = sd.parameter("Wlab", (3, 2), "float64")
    x = sd.placeholder("xlab", (4, 3), "float64")
    g = sd.grad(sd.sum(sd.tanh(x @ W)), W)
    assert g.name == "Wlab_grad"


def test_adjoints_cover_the_path_in_reverse_order() -> None:
    x = sd.placeholder("xa", (3,), "float64")
    h = sd.exp(x).named("h")
    y = sd.sum(h * h)
    table = sd.adjoints(y, [x])
    assert y in table and h in table and x in table
    assert list(table)[0] is y and list(table)[-1] is x


# --------------------------------------------------------------------------- errors


def test_mismatched_shapes_raise_shape_error_naming_op_and_shapes() -> None:
    a = sd.placeholder("a", (3,), "float64")
    b = sd.placeholder("b", (4,), "float64")
    with pytest.raises(ShapeError, match=r"add.*\(3,\).*\(4,\)"):
        a + b
    with pytest.raises(ShapeError, match=r"multiply.*\(3,\).*\(4,\)"):
        sd.multiply(a, b)
    with pytest.raises(ShapeError, match=r"where.*\(3,\).*\(4,\)"):
        sd.where(a > 0, a, b)


def test_matmul_with_mismatched_inner_sizes_names_both_shapes() -> None:
    x = sd.placeholder("x", (None, 784), "float32")
    W = sd.parameter("W", (748, 10), "float32")
    with pytest.raises(ShapeError, match=r"matmul.*\(N, 784\).*\(748, 10\)"):
        x @ W
    with pytest.raises(ShapeError, match="matmul"):
        sd.matmul(sd.placeholder("s", (), "float32"), W)


@pytest.mark.parametrize(
    "build, pattern",
    [
        (lambda a: sd.reshape(a, (5, 2)), r"reshape.*\(3, 4\).*\(5, 2\)"),
        (lambda a: sd.concatenate([a, a[:, :2].T]), r"concatenate.*\(3, 4\).*\(2, 3\)"),
        (lambda a: sd.sum(a, axis=2), r"sum.*axis 2"),
        (lambda a: sd.broadcast_to(a, (4, 3)), r"broadcast_to.*\(3, 4\).*\(4, 3\)"),
        (lambda a: sd.squeeze(a, 0), r"squeeze.*\(3, 4\)"),
        (lambda a: a[3], r"index.*3.*\(3, 4\)"),
        (lambda a: sd.transpose(a, (0, 0)), r"transpose.*\(3, 4\)"),
        (lambda a: sd.softmax_cross_entropy(a, sd.placeholder("lab", (4,), "int64")),
         r"softmax_cross_entropy.*\(3,\).*\(4,\)"),
    ],
    ids=["reshape", "concatenate", "sum", "broadcast_to", "squeeze", "index", "transpose",
         "cross_entropy"],
)
def test_shape_errors_name_the_op_and_the_shapes(build: object, pattern: str) -> None:
    a = sd.placeholder("a", (3, 4), "float64")
    with pytest.raises(ShapeError, match=pattern):
        build(a)  # type: ignore[operator]


def test_grad_of_a_non_scalar_raises_gradient_error() -> None:
    x = sd.placeholder("x", (3,), "float64")
    with pytest.raises(GradientError, match=r"scalar.*\(3,\)"):
        sd.grad(sd.exp(x), x)


def test_grad_wrt_a_disconnected_leaf_names_it() -> None:
    x = sd.placeholder("x", (3,), "float64")
    unused = sd.parameter("unused_bias", (2,), "float64")
    with pytest.raises(GradientError, match="unused_bias"):
        sd.grad(sd.sum(x * x), [x, unused])


def test_allow_unused_gives_zeros(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (3,), "float64")
    unused = sd.parameter("unused_bias", (2,), "float64")
    gx, gu = sd.grad(sd.sum(x * x), [x, unused], allow_unused=True)
    assert gu.shape == (2,) and gu.dtype == "float64"
    module = compile_functions({"f": ([x, unused], [gx, gu])}, symdl_cache)
    xv = np.array([1.0, 2.0, -3.0])
    got_x, got_u = module.f(xv, np.array([5.0, 6.0]))
    assert_close(got_x, 2 * xv, rtol=1e-15, atol=0, what="grad x")
    assert_close(got_u, np.zeros(2), rtol=0, atol=0, what="grad of unused leaf")


def test_grad_wrt_non_leaves_ints_and_duplicates_is_refused() -> None:
    x = sd.placeholder("x", (3,), "float64")
    k = sd.placeholder("k", (3,), "int64")
    y = sd.sum(x * k)
    with pytest.raises(GradientError, match="placeholder"):
        sd.grad(y, sd.exp(x))
    with pytest.raises(GradientError, match="'k'.*int64"):
        sd.grad(y, k)
    with pytest.raises(GradientError, match="twice"):
        sd.grad(y, [x, x])
    with pytest.raises(GradientError, match="float"):
        sd.grad(sd.sum(k), x)


class _NoRule(Op):
    """A differentiable op with no derivative rule (deliberately not registered in OPS)."""

    name = "no_rule_op"

    @classmethod
    def infer(cls, x: Expr) -> tuple[Shape, str]:
        return x.shape, x.dtype


def test_an_op_without_a_derivative_rule_raises_naming_it() -> None:
    x = sd.placeholder("x", (3,), "float64")
    y = sd.sum(_NoRule.make(x))
    with pytest.raises(NoDerivativeError, match="no_rule_op"):
        sd.grad(y, x)
