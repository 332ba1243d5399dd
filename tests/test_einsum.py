"""`sd.einsum` and `sd.tensordot`: values against numpy, gradients against central finite
differences (float64) and against the float64 gradient (float32), errors and their messages, and
what the generated code, the rewrites, LaTeX and derivations make of them."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.derive.latex import latex
from symdl.errors import DTypeError, ShapeError
from symdl.ir import toposort
from symdl.ops.reduce import count
from symdl.simplify import RewriteLog, simplify
from tests.helpers import check_grads, compile_functions, concrete

# (id, subscripts, operand shapes (None: the batch size N), numpy reference)
PATTERNS = [
    ("matmul", "ij,jk->ik", [(3, 4), (4, 5)], lambda a, b: a @ b),
    ("batched matmul", "bij,bjk->bik", [(None, 3, 4), (None, 4, 2)], np.matmul),
    ("outer product", "i,j->ij", [(3,), (4,)], np.outer),
    ("sum over an axis", "ij->j", [(3, 4)], lambda a: a.sum(0)),
    ("transpose", "ijk->kij", [(2, 3, 4)], lambda a: np.transpose(a, (2, 0, 1))),
    ("attention scores", "bhqd,bhkd->bhqk", [(None, 2, 3, 4), (None, 2, 5, 4)],
     lambda q, k: q @ np.swapaxes(k, -1, -2)),
    ("attention values", "bhqk,bhkd->bhqd", [(2, 2, 3, 5), (2, 2, 5, 4)], np.matmul),
    ("three operands", "ij,jk,kl->il", [(None, 3), (3, 4), (4, 2)], lambda a, b, c: a @ b @ c),
    ("bilinear form", "i,ij,j->", [(3,), (3, 4), (4,)], lambda u, m, v: u @ m @ v),
    ("implicit output", "ij,kj", [(3, 4), (2, 4)], lambda a, b: a @ b.T),
    ("summed in one operand only", "ij,jk->k", [(3, 4), (4, 2)], lambda a, b: a.sum(0) @ b),
    ("batched matrix-vector", "bij,bj->bi", [(None, 3, 4), (None, 4)],
     lambda a, v: (a @ v[:, :, None])[:, :, 0]),
    ("batched vector-matrix", "bi,bij->bj", [(2, 3), (2, 3, 4)],
     lambda v, a: (v[:, None, :] @ a)[:, 0, :]),
    ("stack of matrices times a vector", "jbk,k->bj", [(4, None, 3), (3,)],
     lambda c, d: np.swapaxes(c @ d, 0, 1)),
    ("elementwise and reduce", "ij,ij->i", [(None, 4), (None, 4)], lambda a, b: (a * b).sum(1)),
    ("trace", "ii->", [(3, 3)], np.trace),
    ("diagonal times vector", "ii,i->i", [(3, 3), (3,)], lambda a, v: np.diag(a) * v),
    ("ellipsis broadcast", "...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)], np.matmul),
    ("ellipsis implicit", "...i,...i", [(2, 3), (3,)], lambda a, b: (a * b).sum(-1)),
]
RNG = np.random.default_rng(13)


def _leaves(shapes: list[tuple], dtype: str) -> list[sd.Expr]:
    return [sd.placeholder("abcd"[i], s, dtype) for i, s in enumerate(shapes)]


def _values(leaves: list[sd.Expr], dtype: str) -> list[np.ndarray]:
    rng = np.random.default_rng(len(leaves))
    return [rng.uniform(-2, 2, concrete(x.shape)).astype(dtype) for x in leaves]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("pattern", PATTERNS, ids=[p[0] for p in PATTERNS])
def test_values_match_numpy(pattern: tuple, dtype: str, symdl_cache: Path) -> None:
    _, subscripts, shapes, reference = pattern
    leaves = _leaves(shapes, dtype)
    out = sd.einsum(subscripts, *leaves)
    values = _values(leaves, dtype)
    got = compile_functions({"f": (leaves, out)}, symdl_cache, "einsum_values").f(*values)
    assert np.asarray(got).dtype == np.dtype(dtype)
    expected = reference(*(v.astype(np.float64) for v in values))
    assert np.shape(got) == np.shape(expected) == np.shape(np.einsum(subscripts, *values))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("pattern", PATTERNS, ids=[p[0] for p in PATTERNS])
def test_gradients_match_finite_differences(pattern: tuple, symdl_cache: Path) -> None:
    _, subscripts, shapes, reference = pattern
    leaves = _leaves(shapes, "float64")
    check_grads(reference, leaves, sd.einsum(subscripts, *leaves), _values(leaves, "float64"),
                cache_dir=symdl_cache)


@pytest.mark.parametrize("pattern", PATTERNS, ids=[p[0] for p in PATTERNS])
def test_float32_gradients_match_float64(pattern: tuple, symdl_cache: Path) -> None:
    """The float32 gradient stays float32 and agrees with the float64 one (checked above)."""
    _, subscripts, shapes, _ = pattern
    grads = {}
    for dtype in ("float64", "float32"):
        leaves = _leaves(shapes, dtype)
        out = sd.einsum(subscripts, *leaves)
        cot = sd.placeholder("cot", out.shape, dtype)
        wrt = sd.grad(sd.sum(out * cot), leaves)
        values = _values(leaves, dtype)
        c = np.random.default_rng(3).uniform(-1, 1, concrete(out.shape)).astype(dtype)
        module = compile_functions({"g": ([*leaves, cot], wrt)}, symdl_cache, f"einsum_{dtype}")
        grads[dtype] = module.g(*values, c)
    for g32, g64 in zip(grads["float32"], grads["float64"], strict=True):
        assert g32.dtype == np.float32
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------- tensordot

TENSORDOTS = [
    ((2, 3, 4), (3, 4, 5), 2),
    ((3, 4), (4, 5), 1),
    ((3,), (4,), 0),
    ((2, 3, 4), (4, 5, 2), ([0, 2], [2, 0])),
    ((2, 3, 4), (3, 5), (1, 0)),
    ((2, 3, 4), (5, 4), ([-1], [-1])),
]


@pytest.mark.parametrize(("shape_a", "shape_b", "axes"), TENSORDOTS, ids=str)
def test_tensordot_matches_numpy(shape_a: tuple, shape_b: tuple, axes: object,
                                 symdl_cache: Path) -> None:
    a, b = sd.placeholder("a", shape_a, "float64"), sd.placeholder("b", shape_b, "float64")
    av, bv = RNG.standard_normal(shape_a), RNG.standard_normal(shape_b)
    out = sd.tensordot(a, b, axes=axes)
    got = compile_functions({"f": ([a, b], out)}, symdl_cache, "tensordot").f(av, bv)
    np.testing.assert_allclose(got, np.tensordot(av, bv, axes=axes), rtol=1e-12, atol=1e-12)
    check_grads(lambda x, y: np.tensordot(x, y, axes=axes), [a, b], out, [av, bv],
                cache_dir=symdl_cache)


def test_tensordot_prints_as_an_einsum_or_a_product() -> None:
    a, b = sd.placeholder("a", (2, 3, 4)), sd.placeholder("b", (3, 4, 5))
    source = sd.generate({"f": ([a, b], sd.tensordot(a, b))}, "td")
    assert 'a_b = np.einsum("abc,bcd->ad", a, b)' in _body(source, "f")
    m, n = sd.placeholder("m", (3, 4)), sd.placeholder("n", (4, 5))
    assert "m_n = m @ n" in _body(sd.generate({"f": ([m, n], sd.tensordot(m, n, 1))}, "td"), "f")


# --------------------------------------------------------------------------- errors


def test_wrong_number_of_operands() -> None:
    a, b = sd.placeholder("a", (3, 4)), sd.placeholder("b", (4, 5))
    with pytest.raises(ShapeError, match=r"'ij,jk->ik' name 2 operand\(s\), but 3 were given "
                                         r"\(shapes \(3, 4\), \(4, 5\), \(4, 5\)\)"):
        sd.einsum("ij,jk->ik", a, b, b)
    with pytest.raises(ShapeError, match="name 2 operand"):
        sd.einsum("ij,jk", a)


def test_letter_of_two_sizes_names_letter_operands_and_shapes() -> None:
    a, b = sd.placeholder("a", (3, 4)), sd.placeholder("b", (5, 6))
    with pytest.raises(ShapeError) as info:
        sd.einsum("ij,jk->ik", a, b)
    message = str(info.value)
    for part in ("einsum", "letter 'j'", "'ij,jk->ik'", "operand 0 (shape (3, 4))",
                 "5 in operand 1 (shape (5, 6))"):
        assert part in message, message
    # numpy would broadcast a size-1 letter silently; symdl asks for it explicitly.
    with pytest.raises(ShapeError, match="broadcast_to"):
        sd.einsum("ij,jk->ik", a, sd.placeholder("c", (1, 6)))
    # A symbolic size against a static one is a mismatch too.
    with pytest.raises(ShapeError, match="letter 'n'.* is N .* but 3"):
        sd.einsum("ni,ni->n", sd.placeholder("x", (None, 2)), sd.placeholder("y", (3, 2)))


@pytest.mark.parametrize(("subscripts", "shapes", "says"), [
    ("ij,j1->i", [(3, 4), (4, 2)], "'1' is not a letter"),
    ("ij->i->j", [(3, 4)], "'->' must appear at most once"),
    ("ij-j", [(3, 4)], "'->' must appear at most once"),
    ("ij->k", [(3, 4)], "the output letter 'k' names no operand axis"),
    ("ij->ii", [(3, 4)], "the output repeats 'i'"),
    ("i.j->i", [(3, 4)], "one '...' per term"),
    ("ij->...", [(3, 4)], "the output has '...' but no operand has"),
    ("ijk->i", [(3, 4)], r"operand 0 has shape \(3, 4\) \(rank 2\) but 3 letters 'ijk'"),
    ("i->i", [(3, 4)], "rank 2"),
    ("...ijk->i", [(3, 4)], "names more axes"),
])
def test_bad_subscripts_say_what_is_wrong(subscripts: str, shapes: list, says: str) -> None:
    with pytest.raises(ShapeError, match=says):
        sd.einsum(subscripts, *(sd.placeholder("abc"[i], s) for i, s in enumerate(shapes)))


def test_other_bad_input() -> None:
    x = sd.placeholder("x", (3, 3))
    with pytest.raises(ShapeError, match="subscripts must be a string"):
        sd.einsum(["ij"], x)  # type: ignore[arg-type]
    with pytest.raises(ShapeError, match="at least one operand"):
        sd.einsum("->")
    with pytest.raises(DTypeError, match="einsum: .*bool.*astype"):
        sd.einsum("ij,ij->i", x, x > 0.0)
    with pytest.raises(ShapeError, match="repeats 'n' .* symbolic size N; a diagonal needs a "
                                         "static size"):
        sd.einsum("nn->n", sd.placeholder("s", (None, None)))
    with pytest.raises(ShapeError, match=r"'\.\.\.' axes: shapes .* do not broadcast"):
        sd.einsum("...i,...i", sd.placeholder("p", (2, 3)), sd.placeholder("q", (4, 3)))


def test_tensordot_bad_axes() -> None:
    a, b = sd.placeholder("a", (2, 3)), sd.placeholder("b", (4, 5))
    with pytest.raises(ShapeError, match=r"tensordot: axis 1 of a \(shape \(2, 3\)\) has size 3 "
                                         r"but axis 0 of b \(shape \(4, 5\)\) has 4"):
        sd.tensordot(a, b, 1)
    with pytest.raises(ShapeError, match="axes=3 needs that many axes"):
        sd.tensordot(a, b, 3)
    with pytest.raises(ShapeError, match="pair 2 axes of a with 1 of b"):
        sd.tensordot(a, b, ([0, 1], [0]))
    with pytest.raises(ShapeError, match="axis 5 of b is not an axis of shape"):
        sd.tensordot(a, b, ([0], [5]))
    with pytest.raises(ShapeError, match="an int or a pair"):
        sd.tensordot(a, b, "x")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- generated code


def _body(source: str, function: str) -> list[str]:
    """The assignments in ``function`` (its entry checks are calls, not assignments)."""
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    return [ast.unparse(s).replace("'", '"') for s in func.body if isinstance(s, ast.Assign)]


def test_einsum_line_is_numpys() -> None:
    a, b = sd.placeholder("a", (None, 3)), sd.placeholder("b", (4,))
    source = sd.generate({"f": ([a, b], sd.einsum("ni,j->nij", a, b))}, "outer")
    assert 'a_b = np.einsum("ni,j->nij", a, b)' in _body(source, "f")
    assert 'np.einsum("ni,j->nij", a, b)' in source  # double quotes, as written here


def test_three_operands_unsimplified_use_optimize() -> None:
    a, b, c = sd.placeholder("a", (5, 3)), sd.placeholder("b", (3, 4)), sd.placeholder("c", (4,))
    out = sd.einsum("ij,jk,k->i", a, b, c)
    plain = sd.generate({"f": ([a, b, c], out)}, "chain", simplify=False)
    assert 'a_b_c = np.einsum("ij,jk,k->i", a, b, c, optimize=True)' in _body(plain, "f")


def test_three_operands_contract_in_the_cheapest_order() -> None:
    """m1 @ (m2 @ m3) where m2 @ m3 is small, as numpy's einsum_path chooses."""
    m1, m2, m3 = sd.placeholder("m1", (256, 8)), sd.placeholder("m2", (8, 256)), \
        sd.placeholder("m3", (256, 16))
    source = sd.generate({"f": ([m1, m2, m3], sd.einsum("ij,jk,kl->il", m1, m2, m3))}, "chain")
    assert _body(source, "f") == ["m2_m3 = m2 @ m3", "m1_m2_m3 = m1 @ m2_m3"]


def test_matrix_products_print_as_matmul(symdl_cache: Path) -> None:
    q, k = sd.placeholder("q", (None, 2, 3, 4)), sd.placeholder("k", (None, 2, 5, 4))
    scores = sd.einsum("bhqd,bhkd->bhqk", q, k)
    loss = sd.sum(sd.tanh(scores))
    source = sd.generate({"f": ([q, k], [scores, *sd.grad(loss, [q, k])])}, "attention")
    body = _body(source, "f")
    assert "q_k_T = q @ np.transpose(k, (0, 1, 3, 2))" in body, body
    assert "einsum" not in "\n".join(body)
    assert any(line.startswith("q_grad = ") and line.endswith(" @ k") for line in body), body
    x, w = sd.placeholder("x", (None, 3)), sd.placeholder("w", (4, 3))
    assert "x_w_T = x @ w.T" in _body(sd.generate({"f": ([x, w], sd.einsum("ni,ji->nj", x, w))},
                                                   "xw"), "f")


def test_outer_product_and_sum_stay_einsum_and_sum() -> None:
    a, b = sd.placeholder("a", (3,)), sd.placeholder("b", (4, 2))
    source = sd.generate({"f": ([a, b], [sd.einsum("i,jk->ijk", a, b), sd.einsum("jk->k", b)])},
                         "plain")
    body = _body(source, "f")
    assert 'a_b = np.einsum("i,jk->ijk", a, b)' in body
    assert "sum_b = b.sum(axis=0)" in body


def test_cse_fusion_and_inplace_updates(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), "float64")
    w = sd.parameter("w", (3, 2), "float64")
    y = sd.placeholder("y", (None, 2), "float64")
    # The same contraction written twice is one node; the tanh after it fuses with the rest.
    z = sd.einsum("ni,ij->nj", x, w)
    z2 = sd.einsum("ni,ij->nj", x, w)
    assert z is z2
    loss = sd.mean((sd.tanh(z) - y) ** 2 + 0.0 * sd.tanh(z2))
    (w_grad,) = sd.grad(loss, [w])
    module = compile_functions({"step": ([x, y, w], loss, {w: w - 0.1 * w_grad})}, symdl_cache,
                               "einsum_step")
    xv, yv = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 2))
    wv = RNG.standard_normal((3, 2))
    w0 = wv.copy()
    got = module.step(xv, yv, wv)
    t = np.tanh(xv @ w0)
    np.testing.assert_allclose(got, np.mean((t - yv) ** 2), rtol=1e-12)
    expected = w0 - 0.1 * xv.T @ (2 * (t - yv) * (1 - t**2) / t.size)
    np.testing.assert_allclose(wv, expected, rtol=1e-12)  # updated in place


def test_report_names_the_rewrites(symdl_cache: Path, capsys: pytest.CaptureFixture) -> None:
    a, b, c = sd.placeholder("a", (5, 3)), sd.placeholder("b", (3, 4)), sd.placeholder("c", (4,))
    sd.compile({"f": ([a, b, c], sd.einsum("ij,jk,k->i", a, b, c))}, "report", symdl_cache,
               report=True)
    out, err = capsys.readouterr()
    text = out + err
    assert "einsum_in_pairs" in text and "einsum_as_matmul" in text, text


def test_rewrites_keep_the_value() -> None:
    from tests.reference import evaluate

    a, b, c = (sd.placeholder(n, s, "float64") for n, s in
               (("a", (2, 3, 4)), ("b", (2, 5, 4)), ("c", (2, 5, 6))))
    out = sd.einsum("bij,bkj,bkl->bil", a, b, c)
    log = RewriteLog()
    (simplified,) = simplify([out], log)
    assert "einsum" not in {n.op.name for n in toposort([simplified])}
    feed = {x: RNG.standard_normal(concrete(x.shape)) for x in (a, b, c)}
    np.testing.assert_allclose(evaluate([simplified], feed)[0], evaluate([out], feed)[0],
                               rtol=1e-12)


# --------------------------------------------------------------------------- math notation


def test_latex_is_an_explicit_sum() -> None:
    a, b = sd.placeholder("a", (3, 4)), sd.placeholder("b", (4, 5))
    assert latex(sd.einsum("ij,jk->ik", a, b)) == r"\textstyle\sum_{j} {a}_{ij} \, {b}_{jk}"
    assert latex(sd.einsum("i,j->ij", a[0], b[0])) == (
        r"{\left(a_{[0]}\right)}_{i} \, {\left(b_{[0]}\right)}_{j}")
    # Axes out of the order they appear in: the result's indices are written out.
    assert latex(sd.einsum("ij,jk->ki", a, b)) == (
        r"\left[\textstyle\sum_{j} {a}_{ij} \, {b}_{jk}\right]_{ki}")
    # An operand that is itself a sum keeps its parentheses.
    assert latex(sd.einsum("ij,jk->ik", a + 1.0, b)).startswith(
        r"\textstyle\sum_{j} {\left(a + 1\right)}_{ij}")


def test_derivation_shows_the_rule() -> None:
    a, b = sd.parameter("a", (3, 4), "float64"), sd.parameter("b", (4, 2), "float64")
    loss = sd.sum(sd.einsum("ij,jk->ik", a, b)).named("loss")
    (step,) = [s for s in sd.derive(loss, [a, b], code=False).steps if s.node.op.name == "einsum"]
    assert step.rule is not None and r"\bar{A}" in step.rule
    assert "einsum" in sd.derive(loss, [a, b]).to_text()


def test_python_numbers_and_sizes_keep_float32(symdl_cache: Path) -> None:
    """numpy's einsum makes a Python number float64 and the size N int64: symdl gives them the
    operands' dtype, as every other op does."""
    x = sd.placeholder("x", (None, 3), "float32")
    out = sd.einsum("ij,,->ji", x, 0.5, count(x.shape[:1]))
    assert out.dtype == "float32"
    xv = RNG.standard_normal((4, 3)).astype(np.float32)
    got = compile_functions({"f": ([x], out)}, symdl_cache, "weak").f(xv)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, 0.5 * 4 * xv.T, rtol=1e-6)


def test_fusion_keeps_the_contraction_a_statement_of_its_own() -> None:
    a, b = sd.placeholder("a", (3,)), sd.placeholder("b", (4,))
    out = sd.tanh(sd.einsum("i,j->ij", a, b)) * 2.0 + 1.0
    body = _body(sd.generate({"f": ([a, b], out)}, "fused"), "f")
    assert body[0] == 'a_b = np.einsum("i,j->ij", a, b)', body
    assert len(body) == 2 and "np.tanh(a_b)" in body[1], body  # the elementwise chain: one line


def test_second_derivative_through_einsum(symdl_cache: Path) -> None:
    """The gradient is made of einsums, which differentiate again (Hessian-vector products)."""
    a, b = sd.placeholder("a", (3, 4), "float64"), sd.placeholder("b", (4, 2), "float64")
    y = sd.einsum("ij,jk->ik", a, b)
    (a_grad,) = sd.grad(sd.sum(y * y), [a])
    values = [RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2))]
    check_grads(lambda x, w: 2 * (x @ w) @ w.T, [a, b], a_grad, values, cache_dir=symdl_cache)


def test_benchmark_runs() -> None:
    """benchmarks/bench_einsum.py runs and prints every case (timings are never asserted)."""
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_einsum.py"
    done = subprocess.run([sys.executable, str(script), "--repeats", "1"], capture_output=True,
                          text=True, timeout=300, check=True)
    for case in ("matmul ij,jk->ik", "attention bhqd,bhkd->bhqk", "chain ij,jk,kl->il"):
        assert case in done.stdout, done.stdout


def test_a_product_that_sums_nothing_is_a_multiply() -> None:
    """"bi,i->bi" is x * v, which fuses; an outer product ("i,j->ij") stays an einsum."""
    x, v = sd.placeholder("x", (None, 3)), sd.placeholder("v", (3,))
    assert sd.einsum("bi,i->bi", x, v).op.name == "multiply"
    assert sd.einsum("i,j->ij", v, v).op.name == "einsum"
    body = _body(sd.generate({"f": ([x, v], sd.tanh(sd.einsum("bi,i->bi", x, v)))}, "m"), "f")
    assert len(body) == 1 and body[0].endswith(" = np.tanh(x * v)"), body
