"""Shape, creation, reduction and scan ops beyond what one op-table row can say: several outputs
of `split` in one loss, stacks of many, `prod` with zeros (first and second derivatives),
`logsumexp` of 1e4-scale inputs, refusals and their messages, and the generated statements.

References are numpy itself, hand-written products, and central finite differences in float64.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.errors import ConstantError, NoDerivativeError, ShapeError
from tests.helpers import check_grads, compile_functions

RNG = np.random.default_rng(13)


def _statements(source: str, function: str) -> list[str]:
    """The assignments in the body of ``function``, as ast.unparse writes them."""
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return [ast.unparse(s) for s in func.body if isinstance(s, (ast.Assign, ast.AugAssign))]


# --------------------------------------------------------------------------- split and stack


def test_split_pieces_in_one_loss_match_finite_differences(symdl_cache: Path) -> None:
    # An LSTM-style gate split: four pieces of one (N, 8) pre-activation, all in one loss.
    x = sd.placeholder("x", (None, 8), "float64")
    i, f, g, o = sd.split(x, 4, axis=1)
    out = sd.sigmoid(i) * sd.tanh(g) + sd.sigmoid(f) * o
    a = RNG.standard_normal((5, 8))

    def reference(v: np.ndarray) -> np.ndarray:
        pi, pf, pg, po = np.split(v, 4, axis=1)
        return 1 / (1 + np.exp(-pi)) * np.tanh(pg) + 1 / (1 + np.exp(-pf)) * po

    got = compile_functions({"f": ([x], out)}, symdl_cache, "split4").f(a)
    np.testing.assert_allclose(got, reference(a), rtol=1e-13, atol=1e-13)
    check_grads(reference, [x], out, [a], cache_dir=symdl_cache)


def test_split_by_indices_is_numpys_including_negative_and_empty_pieces() -> None:
    x = sd.placeholder("x", (3, 7), "float64")
    a = RNG.standard_normal((3, 7))
    for spec in ([2, 5], [-3], [0, 7], [3, 3]):
        pieces = sd.split(x, spec, axis=-1)
        module = sd.compile({"f": ([x], pieces)}, "split_spec")
        for got, want in zip(module.f(a), np.split(a, spec, axis=-1), strict=True):
            np.testing.assert_array_equal(got, want)


def test_split_prints_views_and_shares_memory(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 6), "float64")
    left, right = sd.split(x, 2, axis=1)
    source = sd.generate({"f": ([x], [left, right])}, "split_views")
    assert "x_1 = x[:, 0:3]" in _statements(source, "f")
    assert "x_2 = x[:, 3:6]" in _statements(source, "f")
    a = RNG.standard_normal((4, 6))
    got = compile_functions({"f": ([x], [left, right])}, symdl_cache, "split_views").f(a)
    assert all(np.shares_memory(piece, a) for piece in got)


def test_stack_of_many(symdl_cache: Path) -> None:
    xs = [sd.placeholder(f"x{i}", (None, 3), "float64") for i in range(40)]
    out = sd.stack([x * float(i) for i, x in enumerate(xs)], axis=1)
    values = [RNG.standard_normal((5, 3)) for _ in xs]  # N = 5, as check_grads binds it

    def reference(*vs: np.ndarray) -> np.ndarray:
        return np.stack([v * float(i) for i, v in enumerate(vs)], axis=1)

    got = compile_functions({"f": (xs, out)}, symdl_cache, "stack40").f(*values)
    assert got.shape == (5, 40, 3)
    np.testing.assert_array_equal(got, reference(*values))
    check_grads(reference, xs, out, values, cache_dir=symdl_cache)


# --------------------------------------------------------------------------- prod with zeros


def _others(a: np.ndarray) -> np.ndarray:
    """For each entry of each row, the product of the row's other entries: hand-written, by
    leaving each entry out in turn (no division)."""
    out = np.empty_like(a)
    for j in range(a.shape[1]):
        out[:, j] = np.prod(np.delete(a, j, axis=1), axis=1)
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_prod_gradient_with_zeros_is_the_product_of_the_others(dtype: str) -> None:
    x = sd.placeholder("x", (4, 5), dtype)
    a = RNG.uniform(0.5, 1.5, (4, 5)).astype(dtype)
    a[1, 2] = 0.0  # one zero: the only nonzero derivative is at the zero
    a[2, [0, 4]] = 0.0  # two zeros: every derivative is zero
    a[3, :] = 0.0  # all zeros
    (grad,) = sd.grad(sd.sum(sd.prod(x, axis=1)), [x])
    module = sd.compile({"f": ([x], [sd.prod(x, axis=1), grad])}, "prod_zeros")
    value, got = module.f(a)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(value, np.prod(a, axis=1))
    tol = 1e-6 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(got, _others(a), rtol=tol, atol=tol)
    assert got[1, 2] != 0 and np.all(got[1, np.arange(5) != 2] == 0)
    assert np.all(got[2] == 0) and np.all(got[3] == 0)


def test_prod_second_derivative_with_zeros_matches_finite_differences(symdl_cache: Path) -> None:
    # The Hessian-vector product goes through cumprod's own rule (exact with zeros too).
    x = sd.placeholder("x", (2, 4), "float64")
    v = sd.placeholder("v", (2, 4), "float64")
    a = RNG.uniform(0.5, 1.5, (2, 4))
    a[0, 1] = 0.0
    a[1, [0, 3]] = 0.0
    direction = RNG.standard_normal((2, 4))
    (grad,) = sd.grad(sd.sum(sd.prod(x, axis=1) ** 2), [x])
    (hv,) = sd.grad(sd.sum(grad * v), [x])
    module = compile_functions({"f": ([x, v], [grad, hv])}, symdl_cache, "prod_hvp")
    eps = 1e-6
    numeric = (module.f(a + eps * direction, direction)[0]
               - module.f(a - eps * direction, direction)[0]) / (2 * eps)
    np.testing.assert_allclose(module.f(a, direction)[1], numeric, rtol=1e-6, atol=1e-8)


def test_prod_over_several_axes_with_zeros_matches_finite_differences(
    symdl_cache: Path,
) -> None:
    x = sd.placeholder("x", (2, 3, 4), "float64")
    a = RNG.uniform(0.5, 1.5, (2, 3, 4))
    a[0, 1, 2] = 0.0
    a[1, 0, 0] = a[1, 2, 3] = 0.0
    out = sd.prod(x, axis=(0, 2), keepdims=True)
    check_grads(lambda t: np.prod(t, axis=(0, 2), keepdims=True), [x], out, [a],
                cache_dir=symdl_cache)


# --------------------------------------------------------------------------- logsumexp


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_logsumexp_of_1e4_scale_inputs_is_finite_over_several_axes(dtype: str) -> None:
    x = sd.placeholder("x", (None, 3, 4), dtype)
    a = (RNG.uniform(-1.0, 1.0, (2, 3, 4)) * 1e4).astype(dtype)
    out = sd.logsumexp(x, axis=(1, 2))
    (grad,) = sd.grad(sd.sum(out), [x])
    value, got = sd.compile({"f": ([x], [out, grad])}, "lse_large").f(a)
    a64 = a.astype(np.float64)
    top = a64.max(axis=(1, 2), keepdims=True)
    expected = (np.log(np.exp(a64 - top).sum(axis=(1, 2), keepdims=True)) + top)[:, 0, 0]
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(got))
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    softmax = np.exp(a64 - expected[:, None, None])
    np.testing.assert_allclose(got, softmax, rtol=1e-5, atol=1e-6)
    assert value.dtype == got.dtype == np.dtype(dtype)


# --------------------------------------------------------------------------- generated code


def test_generated_statements_read_like_numpy() -> None:
    x = sd.placeholder("x", (None, 3), "float32")
    outputs = [
        sd.pad(x, ((0, 0), (1, 2))).named("padded"),
        sd.pad(x, ((0, 0), (1, 1)), constant_values=-1.0).named("bordered"),
        sd.stack([x, x * 2.0], axis=1).named("pairs"),
        sd.flip(x, 1).named("reversed_"),
        (sd.ones((None, 3)) + x).named("shifted"),
        (sd.full((None, 3), 0.5) * x).named("halved"),
        sd.cumsum(x, axis=1).named("running"),
        sd.prod(x, axis=1).named("product"),
        sd.repeat(x, 2, axis=1).named("doubled"),
        sd.tile(x, (1, 2)).named("tiled"),
    ]
    statements = _statements(sd.generate({"f": ([x], outputs)}, "readable"), "f")
    for expected in [
        "padded = np.pad(x, ((0, 0), (1, 2)))",
        "bordered = np.pad(x, ((0, 0), (1, 1)), constant_values=-1.0)",
        "scaled_x = 2.0 * x",
        "pairs = np.stack([x, scaled_x], axis=1)",
        "reversed_ = x[:, ::-1]",
        "running = np.cumsum(x, axis=1)",
        "product = x.prod(axis=1)",
        "doubled = np.repeat(x, 2, axis=1)",
        "tiled = np.tile(x, (1, 2))",
    ]:
        assert expected in statements, (expected, statements)
    text = "\n".join(statements)
    assert "np.ones((N, 3), dtype=np.float32)" in text, text
    assert "np.full((N, 3), 0.5, dtype=np.float32)" in text, text


def test_prod_gradient_reads_as_products_from_both_sides() -> None:
    x = sd.placeholder("x", (None, 4), "float64")
    (grad,) = sd.grad(sd.sum(sd.prod(x, axis=1)), [x])
    text = "\n".join(_statements(sd.generate({"f": ([x], grad)}, "prod_grad"), "f"))
    assert text.count("np.cumprod(") == 2, text
    assert " / " not in text, text  # never divided by x


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("build", "error", "pattern"),
    [
        (lambda x: sd.stack([x, x], axis=3), ShapeError, r"stack: axis 3 .*\(3, 4\).*-3 to 2"),
        (lambda x: sd.stack([x, x.T]), ShapeError, r"stack: .*same shape, got \(3, 4\), \(4, 3\)"),
        (lambda x: sd.split(x, 3, axis=1), ShapeError,
         r"split: 3 sections do not divide axis 1 of shape \(3, 4\) \(size 4\); use a divisor"),
        (lambda x: sd.split(x, 2, axis=2), ShapeError, r"split: axis 2 is out of range"),
        (lambda x: sd.pad(x, ((1, 1), (1, 1), (1, 1))), ShapeError,
         r"pad: pad_width .* shape \(3, 4\) \(3 pairs for 2 axes\).*one per axis"),
        (lambda x: sd.pad(x, (1, -1)), ShapeError, r"pad: .*negative width"),
        (lambda x: sd.pad(x, 1, mode="reflect"), ShapeError, r"pad: only mode='constant'"),
        (lambda x: sd.repeat(x, -2, axis=0), ShapeError,
         r"repeat: repeats must be a non-negative int, got -2 \(shape \(3, 4\)\)"),
        (lambda x: sd.repeat(x, 2, axis=-3), ShapeError, r"repeat: axis -3 is out of range"),
        (lambda x: sd.tile(x, (2, -1)), ShapeError, r"tile: reps must be non-negative"),
        (lambda x: sd.flip(x, 2), ShapeError, r"flip: axis 2 is out of range for .* rank 2"),
        (lambda x: sd.cumsum(x, 2), ShapeError, r"cumsum: axis 2 is out of range"),
        (lambda x: sd.prod(x, (0, 5)), ShapeError, r"prod: axis 5 is out of range"),
        (lambda x: sd.any(x > 0, 2), ShapeError, r"any: axis 2 is out of range"),
        (lambda x: sd.argmin(x, -3), ShapeError, r"argmin: axis -3 is out of range"),
        (lambda x: sd.logsumexp(x, (0, 0)), ShapeError, r"logsumexp: repeated axis"),
        (lambda x: sd.full((2,), np.nan), ConstantError, r"full: .*NaN or infinite.*allow"),
        (lambda x: sd.full((2,), 1.5, "int64"), ConstantError,
         r"full: the fill value 1.5 has no exact int64 value"),
    ],
)
def test_bad_input_is_refused_at_construction(build, error, pattern) -> None:  # noqa: ANN001
    x = sd.placeholder("x", (3, 4), "float64")
    with pytest.raises(error, match=pattern):
        build(x)


def test_symbolic_sizes_that_cannot_grow_are_refused() -> None:
    x = sd.placeholder("x", (None, 4), "float64")
    with pytest.raises(ShapeError, match=r"pad: axis 0 of \(N, 4\) has the symbolic size 'N'"):
        sd.pad(x, 1)
    with pytest.raises(ShapeError, match=r"tile: axis 0 of \(N, 4\) .*\(reps 1 on this one\)"):
        sd.tile(x, (2, 1))
    with pytest.raises(ShapeError, match=r"repeat: axis 0 of \(N, 4\) .*static axis"):
        sd.repeat(x, 2, axis=0)
    with pytest.raises(ShapeError, match=r"split: .*\(N, 4\).*static"):
        sd.split(x, 2, axis=0)
    with pytest.raises(ShapeError, match=r"cumsum: cannot flatten \(N, 4\)"):
        sd.cumsum(x)
    # What numpy allows along a batch axis works: zero widths, reps 1, whole-array flips.
    assert sd.pad(x, ((0, 0), (1, 1))).shape == ("N", 6)
    assert sd.tile(x, (1, 3)).shape == ("N", 12)
    assert sd.flip(x).shape == ("N", 4)
    assert sd.cumsum(x, 0).shape == ("N", 4)


def test_fill_values_and_dtypes_follow_numpy_with_symdls_float() -> None:
    assert sd.ones((2,)).dtype == "float32"
    assert sd.full((2,), 3).dtype == "int64"
    assert sd.full((2,), True).dtype == "bool"
    assert sd.full((2,), 0.5).dtype == "float32"
    assert sd.full((2,), -np.inf, allow_nonfinite=True).dtype == "float32"
    k = sd.placeholder("k", (3,), "int32")
    assert sd.ones_like(k).dtype == "int32"
    assert sd.cumsum(k).dtype == sd.prod(k).dtype == "int64"
    module = sd.compile({"f": ([k], [sd.cumsum(k), sd.prod(k), sd.full((3,), -0.0)])}, "ints")
    values = np.array([2, -3, 4], dtype=np.int32)
    running, product, zeros = module.f(values)
    np.testing.assert_array_equal(running, np.cumsum(values))
    assert product == -24 and product.dtype == np.int64
    assert zeros.dtype == np.float32 and np.all(np.signbit(zeros))  # -0.0 kept, not 0.0


def test_prod_over_the_batch_axis_differentiates_once() -> None:
    # The running products shift along N at run time (pad, then slice): the first derivative
    # works over a symbolic axis; the second would need an N x N mask, and says so.
    x = sd.placeholder("x", (None, 3), "float64")
    (grad,) = sd.grad(sd.sum(sd.prod(x, axis=0)), [x])
    a = RNG.uniform(0.5, 1.5, (6, 3))
    a[2, 0] = 0.0
    got = sd.compile({"f": ([x], grad)}, "prod_batch").f(a)
    np.testing.assert_allclose(got, _others(a.T).T, rtol=1e-14, atol=1e-15)
    with pytest.raises(NoDerivativeError, match=r"cumprod: .*symbolic axis 'N'"):
        sd.grad(sd.sum(grad * grad), [x])


def test_a_module_using_every_new_op_and_its_gradient_is_lint_clean() -> None:
    from tests.test_generated_lint import _ruff

    x = sd.placeholder("x", (None, 6), "float64")
    w = sd.parameter("w", (6, 4), "float64")
    h = x @ w
    left, right = sd.split(h, 2, axis=1)
    grown = sd.pad(sd.stack([left, sd.flip(right, 1)], axis=1), ((0, 0), (0, 0), (1, 1)))
    # One loss per function: a gradient summing many terms is one long fused statement,
    # whose wrapping is the layout's business, not these ops'.
    losses = {
        "stacked": sd.sum(grown * sd.full((None, 2, 4), 0.5, "float64")),
        "tiled": sd.sum(sd.tile(left, (1, 2)) * sd.repeat(right, 2, axis=1)),
        "running": sd.sum(sd.cumsum(h, axis=1) * sd.ones_like(h)),
        "product": sd.sum(sd.prod(h, axis=(0, 1))),
        "lse": sd.sum(sd.logsumexp(h, axis=(0, 1))),
    }
    functions = {name: ([x, w], [loss, *sd.grad(loss, [w])]) for name, loss in losses.items()}
    flags = [sd.any(h > 0, axis=1), sd.all(h > 0), sd.argmin(h, axis=1), sd.cumprod(h, axis=1)]
    functions["flags"] = ([x, w], flags)
    source = sd.generate(functions, "every_new_op")
    compile(source, "every_new_op_gen.py", "exec")
    assert not _ruff(source), _ruff(source)


def test_second_derivatives_through_every_new_op_match_finite_differences(
    symdl_cache: Path,
) -> None:
    # hvp differentiates each op's derivative rule again: finite differences of the gradient.
    x = sd.placeholder("x", (3, 4), "float64")
    v = sd.placeholder("v", (3, 4), "float64")
    left, right = sd.split(x, [1], axis=1)
    grown = sd.pad(sd.stack([x, sd.flip(x, 0) ** 2], axis=-1), ((1, 0), (0, 2), (0, 0)))
    loss = (
        sd.sum(sd.sin(grown)) * sd.sum(sd.tile(x, (2, 1)) ** 3)
        + sd.sum(sd.repeat(left, 3, axis=1) * right ** 2)
        + sd.sum(sd.cumsum(x, axis=0) ** 2)
        + sd.logsumexp(x * x, axis=(0, 1))
        + sd.prod(sd.cos(x), axis=(0, 1))
    )
    (grad,) = sd.grad(loss, [x])
    hv = sd.hvp(loss, x, v)
    module = compile_functions({"f": ([x, v], [grad, hv])}, symdl_cache, "second_order")
    a = RNG.uniform(-1.0, 1.0, (3, 4))
    direction = RNG.standard_normal((3, 4))
    eps = 1e-6
    numeric = (module.f(a + eps * direction, direction)[0]
               - module.f(a - eps * direction, direction)[0]) / (2 * eps)
    np.testing.assert_allclose(module.f(a, direction)[1], numeric, rtol=1e-6, atol=1e-8)
