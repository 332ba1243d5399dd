"""Forward mode, `sd.jacobian` and `sd.hessian` (issue 17): native JVP rules against the
two-reverse-pass construction on every row of the op table, full Jacobians and Hessians against
float64 central differences and a hand-written closed form, the errors, the generated code."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.autodiff import jvp_by_reverse
from symdl.errors import GradientError, NoDerivativeError
from symdl.ir import toposort
from symdl.ops.linalg import basis_product
from tests import reference
from tests.helpers import compile_functions, concrete, numeric_directional, seed_of
from tests.test_ops import GRAD_CASES, Case, _ids

# --------------------------------------------------------------------------- helpers


def _static(x: sd.Expr) -> bool:
    return all(isinstance(d, int) for d in x.shape)


def _fd_jacobian(f, values: list[np.ndarray], index: int, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``f`` along every entry of argument ``index``: shape
    ``f(...).shape + values[index].shape``."""
    shape = np.shape(values[index])
    columns = []
    for k in range(int(np.prod(shape))):
        direction = np.zeros(shape)
        direction.flat[k] = 1.0
        dirs = [direction if i == index else None for i in range(len(values))]
        columns.append(numeric_directional(f, values, dirs, eps))
    out = np.stack(columns, axis=-1)
    return out.reshape(*out.shape[:-1], *shape)


def softmax_regression(dtype: str, batch: int | None = None, features: int = 4,
                       classes: int = 3) -> tuple[list[sd.Expr], sd.Expr]:
    """[x, y, W, b] and the mean softmax cross-entropy of x @ W + b."""
    x = sd.placeholder("x", (batch, features), dtype)
    y = sd.placeholder("y", (batch, classes), dtype)
    W = sd.parameter("W", (features, classes), dtype)
    b = sd.parameter("b", (classes,), dtype)
    return [x, y, W, b], sd.mean(sd.softmax_cross_entropy(x @ W + b, y))


def softmax_values(dtype: str, batch: int = 7, features: int = 4, classes: int = 3,
                   seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((batch, features)).astype(dtype),
            np.eye(classes, dtype=dtype)[rng.integers(0, classes, batch)],
            (0.5 * rng.standard_normal((features, classes))).astype(dtype),
            (0.2 * rng.standard_normal(classes)).astype(dtype)]


def closed_form_hessian(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Softmax regression's Hessian w.r.t. W by hand: mean over rows of
    (diag(p) - p p^T) kron x x^T, as (D, C, D, C), in float64, one row at a time."""
    x, W, b = (np.asarray(a, np.float64) for a in (x, W, b))
    z = x @ W + b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    H = np.zeros(W.shape + W.shape)
    for row, probs in zip(x, p):
        A = np.diag(probs) - np.outer(probs, probs)
        H += np.einsum("d,e,cf->dcef", row, row, A)
    return H / len(x)


# --------------------------------------------------------------------------- the op table


def _float_leaves(row: Case) -> tuple[list[sd.Expr], sd.Expr, list[sd.Expr]]:
    leaves = row.leaves("float64")
    out = row.build(*leaves)
    return leaves, out, [x for x in leaves if x.dtype == "float64"]


@pytest.mark.parametrize("row", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_native_jvp_matches_two_reverse_passes(row: Case, symdl_cache: Path) -> None:
    """sd.jvp (native rules, or the local fallback where an op has none) equals the old
    two-reverse-pass construction, and the batched walk (jacobian) agrees with it along v."""
    leaves, out, wrt = _float_leaves(row)
    values = row.values(leaves)
    rng = np.random.default_rng(seed_of(row.id))
    outputs, directions, batched = [], [], []
    for w in wrt:
        v = sd.placeholder(f"{w.name}_dot", w.shape, "float64")
        directions.append((v, rng.standard_normal(concrete(w.shape))))
        outputs += [sd.jvp(out, w, v), jvp_by_reverse(out, w, v)]
        if _static(w):
            try:
                outputs.append(sd.jacobian(out, w, allow_unused=True))
                batched.append(True)
            except NoDerivativeError as err:
                # only an op without a jvp rule may refuse, and the error says what to do
                assert "sd.hvp" in str(err) and "has no forward-mode rule" in str(err)
                batched.append(False)
        else:
            batched.append(False)
    module = compile_functions(
        {"f": ([*leaves, *(v for v, _ in directions)], outputs)}, symdl_cache, "jvp_check")
    got = iter(module.f(*values, *(d for _, d in directions)))
    for w, (_, d), has_jacobian in zip(wrt, directions, batched):
        native, reverse = next(got), next(got)
        np.testing.assert_allclose(native, reverse, rtol=1e-9, atol=1e-11,
                                   err_msg=f"{row.id}: jvp wrt {w.name}")
        if has_jacobian:
            jac = next(got)
            along = np.tensordot(jac, d, axes=d.ndim) if d.ndim else jac * d
            np.testing.assert_allclose(along, native, rtol=1e-9, atol=1e-11,
                                       err_msg=f"{row.id}: jacobian wrt {w.name} along v")


def test_the_fallback_for_an_op_without_a_rule_is_right(symdl_cache: Path) -> None:
    """cumsum has no jvp rule: sd.jvp takes its local JVP from two reverse passes, and the
    result matches central differences; the batched walk refuses it by name."""
    assert sd.ops.base.OPS["cumsum"].jvp is None
    x = sd.placeholder("x", (5,), "float64")
    v = sd.placeholder("v", (5,), "float64")
    y = sd.tanh(sd.cumsum(sd.exp(x) * 2.0))
    module = compile_functions({"f": ([x, v], sd.jvp(y, x, v)), "y": ([x], y)}, symdl_cache)
    xv, vv = np.linspace(-1, 1, 5), np.arange(5.0) - 2
    expected = numeric_directional(module.y, [xv], [vv])
    np.testing.assert_allclose(module.f(xv, vv), expected, rtol=1e-7, atol=1e-9)
    with pytest.raises(NoDerivativeError, match=r"'cumsum'.*sd\.hvp"):
        sd.jacobian(y, x)


# --------------------------------------------------------------------------- Hessians


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_regression_hessian_matches_the_closed_form(dtype: str,
                                                           symdl_cache: Path) -> None:
    leaves, loss = softmax_regression(dtype)
    W = leaves[2]
    H = sd.hessian(loss, W)
    assert H.shape == (4, 3, 4, 3) and H.dtype == dtype
    values = softmax_values(dtype)
    got = compile_functions({"h": (leaves, H)}, symdl_cache).h(*values)
    assert got.dtype == dtype
    expected = closed_form_hessian(values[0], values[2], values[3])
    tol = 1e-12 if dtype == "float64" else 1e-6
    np.testing.assert_allclose(got, expected, rtol=tol * 100, atol=tol)
    matrix = got.reshape(12, 12)
    np.testing.assert_allclose(matrix, matrix.T, rtol=0, atol=tol)  # symmetric


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_softmax_regression_hessian_matches_differences_of_the_gradient(
        dtype: str, symdl_cache: Path) -> None:
    leaves, loss = softmax_regression(dtype)
    W, b = leaves[2:]
    module = compile_functions({"h": (leaves, [sd.hessian(loss, W), sd.hessian(loss, b)])},
                               symdl_cache)
    values = softmax_values(dtype)
    hw, hb = module.h(*values)
    f64 = softmax_values("float64")
    leaves64, loss64 = softmax_regression("float64")
    fd = compile_functions({"g": (leaves64, sd.grad(loss64, leaves64[2:]))}, symdl_cache,
                           "fd_grad")
    expected_w = _fd_jacobian(lambda *a: fd.g(*a)[0], f64, 2)
    expected_b = _fd_jacobian(lambda *a: fd.g(*a)[1], f64, 3)
    tol = 1e-7 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(hw, expected_w, rtol=tol, atol=tol)
    np.testing.assert_allclose(hb, expected_b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mlp_hessian_matches_differences_of_the_gradient(dtype: str, symdl_cache: Path) -> None:
    """A 2-layer tanh MLP: the Hessian w.r.t. each weight matrix (tanh, matmul, broadcasts,
    softmax cross-entropy with integer labels, all batched)."""

    def mlp(dt: str) -> tuple[list[sd.Expr], sd.Expr]:
        x = sd.placeholder("x", (None, 3), dt)
        labels = sd.placeholder("labels", (None,), "int64")
        W1, b1 = sd.parameter("W1", (3, 4), dt), sd.parameter("b1", (4,), dt)
        W2, b2 = sd.parameter("W2", (4, 2), dt), sd.parameter("b2", (2,), dt)
        h = sd.tanh(x @ W1 + b1)
        loss = sd.mean(sd.softmax_cross_entropy(h @ W2 + b2, labels))
        return [x, labels, W1, b1, W2, b2], loss

    rng = np.random.default_rng(1)
    f64 = [rng.standard_normal((6, 3)), rng.integers(0, 2, 6),
           rng.standard_normal((3, 4)), 0.1 * rng.standard_normal(4),
           rng.standard_normal((4, 2)), 0.1 * rng.standard_normal(2)]
    values = [v.astype(dtype) if v.dtype == np.float64 else v for v in f64]
    leaves, loss = mlp(dtype)
    got = compile_functions({"h": (leaves, [sd.hessian(loss, leaves[2]),
                                            sd.hessian(loss, leaves[4])])}, symdl_cache).h(*values)
    leaves64, loss64 = mlp("float64")
    g = compile_functions({"g": (leaves64, sd.grad(loss64, [leaves64[2], leaves64[4]]))},
                          symdl_cache, "fd_grad").g
    tol = 1e-7 if dtype == "float64" else 1e-4
    for k, (index, h) in enumerate(zip((2, 4), got)):
        expected = _fd_jacobian(lambda *a, k=k: g(*a)[k], f64, index)
        np.testing.assert_allclose(h, expected, rtol=tol, atol=tol)
        n = int(np.prod(f64[index].shape))
        np.testing.assert_allclose(h.reshape(n, n), h.reshape(n, n).T, rtol=0, atol=tol)


ELEMENTWISE = {
    "exp_sum": (lambda x: sd.sum(sd.exp(x)), lambda x: np.diag(np.exp(x))),
    "log_sum": (lambda x: sd.sum(sd.log(x)), lambda x: np.diag(-1 / x**2)),
    "sqrt_sum": (lambda x: sd.sum(sd.sqrt(x)), lambda x: np.diag(-0.25 * x**-1.5)),
    "cube_mean": (lambda x: sd.mean(x**3), lambda x: np.diag(6 * x / x.size)),
    "sigmoid_over_square": (lambda x: sd.sum(sd.sigmoid(x) / sd.square(x)), None),
    "logsumexp": (lambda x: sd.logsumexp(x), None),
    "max_relu": (lambda x: sd.max(sd.relu(x) * x), None),
    "norm_ratio": (lambda x: sd.sum(x) / sd.sum(x * x), None),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_elementwise_hessians(name: str, dtype: str, symdl_cache: Path) -> None:
    build, closed = ELEMENTWISE[name]
    x = sd.placeholder("x", (5,), dtype)
    x64 = sd.placeholder("x", (5,), "float64")
    module = compile_functions({"h": ([x], sd.hessian(build(x), x)),
                                "g": ([x64], sd.grad(build(x64), x64))}, symdl_cache)
    value = np.array([0.5, 1.3, 0.7, 2.1, 1.7])  # positive, distinct (log, sqrt, max)
    got = module.h(value.astype(dtype))
    expected = closed(value) if closed else _fd_jacobian(module.g, [value], 0)
    tol = 1e-6 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


# --------------------------------------------------------------------------- Jacobians


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_jacobian_matches_differences(dtype: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), dtype)
    W = sd.parameter("W", (3, 2), dtype)
    y = sd.softmax(sd.tanh(x @ W) * 2.0, axis=1)  # (N, 2), non-scalar
    J = sd.jacobian(y, W)
    assert J.shape == ("N", 2, 3, 2)
    rng = np.random.default_rng(2)
    xv, wv = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    module = compile_functions({"j": ([x, W], J), "y": ([x, W], y)}, symdl_cache)
    got = module.j(xv.astype(dtype), wv.astype(dtype))
    x64, w64 = sd.placeholder("x", (None, 3), "float64"), sd.parameter("W", (3, 2), "float64")
    f64 = compile_functions({"y": ([x64, w64], sd.softmax(sd.tanh(x64 @ w64) * 2.0, axis=1))},
                            symdl_cache, "f64").y
    expected = _fd_jacobian(f64, [xv, wv], 1)
    tol = 1e-8 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


def test_jacobian_of_vector_functions_and_layouts(symdl_cache: Path) -> None:
    """Jacobians through reshape, transpose, broadcast, sums and a matrix-vector product."""
    v = sd.placeholder("v", (3, 2), "float64")
    A = sd.placeholder("A", (4, 6), "float64")
    flat = sd.reshape(sd.transpose(v), (6,))
    y = A @ flat + sd.sum(sd.broadcast_to(v, (5, 3, 2)), axis=(0, 2))[0] * flat[0]
    rng = np.random.default_rng(3)
    vv, av = rng.standard_normal((3, 2)), rng.standard_normal((4, 6))
    module = compile_functions({"j": ([v, A], sd.jacobian(y, v)), "y": ([v, A], y)},
                               symdl_cache)
    expected = _fd_jacobian(module.y, [vv, av], 0)
    np.testing.assert_allclose(module.j(vv, av), expected, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("lead", [(), (5,), (2, 3)], ids=["vector", "matrix", "batched"])
def test_jacobian_of_a_product_with_the_matrix(lead: tuple[int, ...], symdl_cache: Path) -> None:
    """a @ W along W's basis is `basis_product` for a vector, a matrix and a stack of matrices
    ``a``; the closed form: d tanh(a W)[..., c] / d W[d, j] = (1 - tanh(a W)[..., c]^2)
    a[..., d] [c == j]."""
    a = sd.placeholder("a", (*lead, 4), "float64")
    W = sd.parameter("W", (4, 3), "float64")
    J = sd.jacobian(sd.tanh(a @ W), W)
    assert J.shape == (*lead, 3, 4, 3)
    assert "basis_product" in {n.op.name for n in toposort([J])}
    rng = np.random.default_rng(7)
    av, wv = rng.standard_normal((*lead, 4)), rng.standard_normal((4, 3))
    got = compile_functions({"j": ([a, W], J)}, symdl_cache).j(av, wv)
    slope = 1 - np.tanh(av @ wv) ** 2
    expected = np.einsum("...c,...d,cj->...cdj", slope, av, np.eye(3))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_jacobian_through_a_basis_product(symdl_cache: Path) -> None:
    """A batch of tangents through `basis_product` itself (its jvp moves the batch axis in
    front and back): the Jacobian of a @ W's basis tangents, against central differences."""
    a = sd.placeholder("a", (2, 3), "float64")
    y = sd.sin(basis_product(a, 2))  # (2, 2, 6)
    J = sd.jacobian(y, a)
    rng = np.random.default_rng(8)
    av = rng.standard_normal((2, 3))
    module = compile_functions({"j": ([a], J), "y": ([a], y)}, symdl_cache)
    np.testing.assert_allclose(module.j(av), _fd_jacobian(module.y, [av], 0), rtol=1e-8,
                               atol=1e-9)


def test_curvature_example(symdl_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """examples/curvature.py on 300 shipped images: the Hessian agrees with the HVP, its
    smallest eigenvalue is the L2 term's (the data loss is flat along some directions, never
    curved down), and three Newton steps beat three gradient steps of 1 / lambda_max."""
    import runpy

    example = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "curvature.py"))
    figures = example["main"](["--images", "300"])
    assert "def hessian(x, y, W, b):" in capsys.readouterr().out
    assert figures["hvp_gap"] < 1e-12
    assert figures["smallest"] == pytest.approx(example["L2"], rel=1e-6)
    assert figures["newton"] < figures["descent"] < np.log(10)


# --------------------------------------------------------------------------- errors


def test_errors_name_the_problem() -> None:
    x = sd.placeholder("x", (3,), "float64")
    n = sd.placeholder("n", (3,), "int64")
    other = sd.placeholder("other", (3,), "float64")
    batch = sd.placeholder("batch", (None, 3), "float64")
    with pytest.raises(GradientError, match="hessian: the target must be a scalar"):
        sd.hessian(sd.exp(x), x)
    with pytest.raises(GradientError, match="dtype int64"):
        sd.hessian(sd.sum(n.astype("float64")), n)
    with pytest.raises(GradientError, match="does not depend on placeholder 'other'"):
        sd.jacobian(sd.exp(x), other)
    with pytest.raises(GradientError, match="does not depend"):
        sd.hessian(sd.sum(x), other)
    with pytest.raises(GradientError, match="symbolic shape"):
        sd.hessian(sd.sum(batch * batch), batch)
    with pytest.raises(GradientError, match="float32 or float64"):
        sd.jacobian(sd.argmax(x), x)
    zeros = sd.jacobian(sd.exp(x), other, allow_unused=True)
    assert zeros.shape == (3, 3)
    # A Hessian of a linear function is zero, not an error.
    assert sd.hessian(sd.sum(x * 2.0), x).shape == (3, 3)


# --------------------------------------------------------------------------- code, derivations


def test_generated_hessian_is_one_vectorized_expression() -> None:
    leaves, loss = softmax_regression("float64", batch=None, features=15, classes=10)
    source = sd.generate({"hessian": (leaves, sd.hessian(loss, leaves[2]))}, "hessian_code")
    body = source[source.index("def hessian("):source.index("def _check_argument")]
    assert not re.search(r"^\s*(for|while) ", body, re.M), body
    # The tangents of x @ W along W's 150 basis directions are written into zeros
    # (`basis_product`): neither the 150 x 150 identity nor a GEMM with it.
    assert "identity" not in body and "arange_150" not in body
    assert "x_W_tangents.reshape((N, 10, 15, 10))[..., np.arange(10), :, np.arange(10)] = x" in body
    code = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
    # The forward matmul, softmax's JVP (ratio[:, None] @ ...) and x.T @ ...: no fourth GEMM.
    assert sum(" @ " in line for line in code) == 3, body
    assert "W_hessian" in body
    assert len(source) < 20000


def test_hessian_expression_evaluates_in_the_reference_interpreter() -> None:
    leaves, loss = softmax_regression("float64")
    H = sd.hessian(loss, leaves[2])
    values = softmax_values("float64")
    (got,) = reference.evaluate([H], dict(zip(leaves, values)))
    np.testing.assert_allclose(got, closed_form_hessian(values[0], values[2], values[3]),
                               rtol=1e-10, atol=1e-12)


def test_derivation_renders_through_a_hessian() -> None:
    leaves, loss = softmax_regression("float64")
    x, y, W, b = leaves
    curvature = sd.sum(sd.hessian(loss, W))  # depends on b through the softmax
    d = sd.derive(curvature, b)
    text = str(d)
    assert "softmax" in text and len(d.to_latex()) > 0
    jac = sd.sum(sd.jacobian(sd.tanh(x @ W), W) ** 2)
    assert str(sd.derive(jac, W))


def test_hvp_is_unchanged_reverse_over_reverse(symdl_cache: Path) -> None:
    leaves, loss = softmax_regression("float64")
    W = leaves[2]
    V = sd.placeholder("V", (4, 3), "float64")
    values = softmax_values("float64")
    vv = np.random.default_rng(4).standard_normal((4, 3))
    module = compile_functions({"hvp": ([*leaves, V], sd.hvp(loss, W, V)),
                                "h": (leaves, sd.hessian(loss, W))}, symdl_cache)
    H = module.h(*values).reshape(12, 12)
    np.testing.assert_allclose(module.hvp(*values, vv).ravel(), H @ vv.ravel(),
                               rtol=1e-10, atol=1e-12)
    ops = {n.op.name for n in toposort([sd.hvp(loss, W, V)])}
    assert "one_hot" not in ops  # no identity basis: the HVP is not built from the Hessian
    # Named for what it is: an HVP has W's shape but is not W's gradient.
    source = sd.generate({"hvp": ([*leaves, V], sd.hvp(loss, W, V))}, "hvp_names")
    assert "return W_hvp" in source and "\n    W_grad = " not in source


def test_benchmark_baselines_and_rows() -> None:
    """The benchmark's hand-written numpy is right, and `hessian_rows` has the columns run_all
    reads (a peer that is not installed is None)."""
    from benchmarks import bench_hessian

    x, y, W, b, V = bench_hessian.problem("float64")
    H = bench_hessian.hessian_numpy(x, y, W, b)
    np.testing.assert_allclose(H, closed_form_hessian(x, W, b), rtol=1e-10, atol=1e-13)
    n = W.size
    np.testing.assert_allclose(bench_hessian.hvp_numpy(x, y, W, b, V).ravel(),
                               H.reshape(n, n) @ V.ravel(), rtol=1e-10, atol=1e-13)
    rows = bench_hessian.hessian_rows(repeats=1, quick=True)
    assert [set(r) for r in rows] == [{"workload", "numpy_s", *bench_hessian.COLUMNS}] * 2
    assert all(isinstance(r["symdl"], float) and r["numpy_s"] > 0 for r in rows)
    assert "| workload |" in bench_hessian.markdown(rows)


def test_derive_command_on_a_hessian_target(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            ) -> None:
    """`symdl derive` renders the steps of a target built from sd.hessian (its curvature
    summed), with respect to the bias, in text and in HTML."""
    from symdl.cli import main

    model = tmp_path / "curvature.py"
    model.write_text(
        "import symdl as sd\n"
        "x = sd.placeholder('x', (None, 4), 'float64')\n"
        "y = sd.placeholder('y', (None, 3), 'float64')\n"
        "W = sd.parameter('W', (4, 3), 'float64')\n"
        "b = sd.parameter('b', (3,), 'float64')\n"
        "ce = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))\n"
        "loss = sd.sum(sd.hessian(ce, W))\n"
        "name = 'curvature'\n"
        "functions = {'f': ([x, y, W, b], [loss])}\n"
    )
    assert main(["derive", str(model), "--wrt", "b"]) == 0
    text = capsys.readouterr().out
    assert "softmax" in text and "b" in text
    out = tmp_path / "curvature.html"
    assert main(["derive", str(model), "--wrt", "b", "-o", str(out)]) == 0
    assert out.stat().st_size > 0


def test_benchmark_forward_floor_is_the_hessian() -> None:
    from benchmarks import bench_hessian

    x, y, W, b, _ = bench_hessian.problem("float64")
    np.testing.assert_allclose(bench_hessian.hessian_numpy_forward(x, y, W, b),
                               closed_form_hessian(x, W, b), rtol=1e-10, atol=1e-13)
