"""Integer-array indexing: embedding lookups ``E[ids]``, per-sample picks ``p[arange(N), y]``,
`sd.take`, `sd.take_along_axis`, and their scatter-add gradients.

Values are checked against numpy, gradients against central finite differences (float64) and a
hand-written numpy backward pass using ``np.add.at``; the gradient must never build a one-hot
matrix (O(N V) memory); an out-of-range id raises an IndexError naming the argument before
anything is written.
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from codegen.checks import is_entry_check
from symdl.errors import DTypeError, ShapeError
from symdl.ir import toposort
from symdl.rewrite import lower
from tests.helpers import check_grads, compile_functions
from tests.reference import evaluate

V, D, C = 7, 3, 4


def _embedding_model(dtype: str = "float64") -> tuple[list[sd.Expr], sd.Expr]:
    """ids -> E[ids] -> tanh -> @ W -> mean cross-entropy against integer labels."""
    ids = sd.placeholder("ids", (None,), "int64")
    y = sd.placeholder("y", (None,), "int64")
    E = sd.parameter("E", (V, D), dtype)
    W = sd.parameter("W", (D, C), dtype)
    h = sd.tanh(E[ids]).named("h")
    loss = sd.mean(sd.softmax_cross_entropy(h @ W, y))
    return [ids, y, E, W], loss


def _numpy_loss(ids: np.ndarray, y: np.ndarray, E: np.ndarray, W: np.ndarray) -> np.ndarray:
    z = np.tanh(E[ids]) @ W
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(y)), y].mean()


def _numpy_grads(
    ids: np.ndarray, y: np.ndarray, E: np.ndarray, W: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The backward pass written by hand: softmax - onehot, then np.add.at into E's rows."""
    h = np.tanh(E[ids])
    z = h @ W
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(y)), y] -= 1.0
    z_bar = p / len(y)
    W_grad = h.T @ z_bar
    h_bar = z_bar @ W.T * (1 - h**2)
    E_grad = np.zeros_like(E)
    np.add.at(E_grad, ids, h_bar)
    return E_grad, W_grad


def _values(n: int = 12, seed: int = 0, dtype: str = "float64") -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(-V, V, size=n)  # negative ids and (with n > V) tied ones
    ids[:3] = 2  # the same row three times: its gradient is the sum of three
    y = rng.integers(0, C, size=n)
    E = rng.standard_normal((V, D)).astype(dtype)
    W = rng.standard_normal((D, C)).astype(dtype)
    return [ids, y, E, W]


# --------------------------------------------------------------------------- embedding lookup


def test_embedding_gradient_matches_finite_differences(symdl_cache: Path) -> None:
    leaves, loss = _embedding_model()
    check_grads(_numpy_loss, leaves, loss, _values(), cache_dir=symdl_cache, seed=3)


def test_embedding_gradient_matches_numpy_add_at(symdl_cache: Path) -> None:
    leaves, loss = _embedding_model()
    E, W = leaves[2], leaves[3]
    mod = compile_functions({"f": (leaves, [loss, *sd.grad(loss, [E, W])])}, symdl_cache)
    values = _values()
    got_loss, E_grad, W_grad = mod.f(*values)
    np.testing.assert_allclose(got_loss, _numpy_loss(*values), rtol=1e-12)
    expected_E, expected_W = _numpy_grads(*values)
    np.testing.assert_allclose(E_grad, expected_E, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W_grad, expected_W, rtol=1e-10, atol=1e-12)
    # The reference interpreter's scatter-add is a plain loop, independent of np.add.at.
    ref = evaluate(sd.grad(loss, [E, W]), dict(zip(leaves, values, strict=True)))
    np.testing.assert_allclose(E_grad, ref[0], rtol=1e-10, atol=1e-12)


def test_embedding_training_lowers_the_loss(symdl_cache: Path) -> None:
    leaves, loss = _embedding_model()
    E, W = leaves[2], leaves[3]
    lr = 0.5
    updates = {E: E - lr * sd.grad(loss, E), W: W - lr * sd.grad(loss, W)}
    mod = compile_functions({"step": (leaves, [loss], updates)}, symdl_cache)
    ids, y, E_value, W_value = _values(n=32, seed=1)
    y = (np.abs(ids) % C).astype(np.int64)  # a label each row of E can learn
    first = float(_numpy_loss(ids, y, E_value, W_value))
    for _ in range(60):
        mod.step(ids, y, E_value, W_value)
    last = float(_numpy_loss(ids, y, E_value, W_value))
    assert last < 0.5 * first, (first, last)


def test_tied_ids_accumulate(symdl_cache: Path) -> None:
    E = sd.parameter("E", (V, D), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    g = sd.placeholder("g", (None, D), "float64")
    E_grad = sd.grad(sd.sum(E[ids] * g), E)
    mod = compile_functions({"f": ([ids, g, E], E_grad)}, symdl_cache)
    ids_value = np.array([4, 4, 4, 1, -3])  # -3 is row 4 again
    g_value = np.arange(15, dtype=np.float64).reshape(5, D) + 1
    got = mod.f(ids_value, g_value, np.zeros((V, D)))
    expected = np.zeros((V, D))
    expected[4] = g_value[0] + g_value[1] + g_value[2] + g_value[4]
    expected[1] = g_value[3]
    np.testing.assert_array_equal(got, expected)


def test_float32_keeps_float32(symdl_cache: Path) -> None:
    leaves, loss = _embedding_model("float32")
    E, W = leaves[2], leaves[3]
    grads = sd.grad(loss, [E, W])
    assert loss.dtype == "float32" and all(g.dtype == "float32" for g in grads)
    mod = compile_functions({"f": (leaves, [loss, *grads])}, symdl_cache)
    values = _values(dtype="float32")
    got_loss, E_grad, W_grad = mod.f(*values)
    assert got_loss.dtype == E_grad.dtype == W_grad.dtype == np.float32
    as64 = [v.astype(np.float64) if v.dtype == np.float32 else v for v in values]
    expected_E, expected_W = _numpy_grads(*as64)
    np.testing.assert_allclose(got_loss, _numpy_loss(*as64), rtol=1e-5)
    np.testing.assert_allclose(E_grad, expected_E, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(W_grad, expected_W, rtol=1e-4, atol=1e-5)


def test_take_is_the_lookup() -> None:
    E = sd.parameter("E", (V, D), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    assert sd.take(E, ids, axis=0) is E[ids]
    assert sd.take(E, ids, axis=0).shape == ("N", D)


# --------------------------------------------------------------------------- per-sample picks


def test_picks_equal_cross_entropy_with_one_hot_labels(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, C), "float64")
    y = sd.placeholder("y", (None,), "int64")
    onehot = sd.placeholder("onehot", (None, C), "float64")
    N = x.shape[0]
    picked = -sd.mean(sd.log(sd.softmax(x)[sd.arange(N), y]))
    dense = sd.mean(sd.softmax_cross_entropy(x, onehot))
    mod = compile_functions({
        "picked": ([x, y], [picked, sd.grad(picked, x)]),
        "dense": ([x, onehot], [dense, sd.grad(dense, x)]),
    }, symdl_cache)
    rng = np.random.default_rng(5)
    x_value = rng.standard_normal((6, C))
    y_value = rng.integers(0, C, size=6)
    loss_a, grad_a = mod.picked(x_value, y_value)
    loss_b, grad_b = mod.dense(x_value, np.eye(C)[y_value])
    np.testing.assert_allclose(loss_a, loss_b, rtol=1e-12)
    np.testing.assert_allclose(grad_a, grad_b, rtol=1e-10, atol=1e-12)
    assert "np.arange(N)" in sd.generate({"picked": ([x, y], picked)})


def test_picks_gradient_matches_finite_differences(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, C), "float64")
    y = sd.placeholder("y", (None,), "int64")
    out = x[sd.arange(x.shape[0]), y] ** 2
    rng = np.random.default_rng(2)
    values = [rng.standard_normal((5, C)), rng.integers(-C, C, size=5)]
    check_grads(lambda a, k: a[np.arange(len(k)), k] ** 2, [x, y], out, values,
                cache_dir=symdl_cache, seed=2)


# --------------------------------------------------------------------------- never one_hot


def _ops_of(graphs: list[sd.Expr]) -> set[str]:
    return {n.op.name for n in toposort([*graphs, *lower(graphs)])}


def test_gradients_never_build_a_one_hot(symdl_cache: Path) -> None:
    E = sd.parameter("E", (50_000, 8), "float32")
    ids = sd.placeholder("ids", (None,), "int64")
    x = sd.placeholder("x", (None, 50_000), "float32")
    y = sd.placeholder("y", (None,), "int64")
    lookup = sd.sum(sd.tanh(E[ids]))
    picks = sd.sum(sd.log(sd.sigmoid(x[sd.arange(x.shape[0]), y])))
    along = sd.sum(sd.take_along_axis(x, y[:, None], 1) ** 2)
    for loss, wrt in ((lookup, E), (picks, x), (along, x)):
        graph = sd.grad(loss, wrt)
        ops = _ops_of([graph])
        assert "one_hot" not in ops and "matmul" not in ops, ops
        assert "scatter_add" in ops, ops
        source = sd.generate({"f": ([p for p in (ids, x, y, E) if p in toposort([graph])],
                                    graph)})
        assert "np.add.at(" in source and "np.eye" not in source, source


def test_generated_lookup_reads_like_numpy() -> None:
    E = sd.parameter("E", (V, D), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    loss = sd.sum(E[ids] ** 2)
    source = sd.generate({"f": ([ids, E], [loss, sd.grad(loss, E)])})
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "f")
    body = [ast.unparse(s) for s in func.body[1:] if not is_entry_check(s)]
    assert "E_ids = E[ids]" in body, body
    assert "E_grad = np.zeros((7, 3), dtype=np.float64)" in body, body
    assert any(line.startswith("np.add.at(E_grad, ids, ") for line in body), body


# --------------------------------------------------------------------------- bad input


def test_out_of_range_id_raises_index_error_naming_it(symdl_cache: Path) -> None:
    leaves, loss = _embedding_model()
    E, W = leaves[2], leaves[3]
    updates = {E: E - 0.1 * sd.grad(loss, E), W: W - 0.1 * sd.grad(loss, W)}
    mod = compile_functions({"step": (leaves, [loss], updates)}, symdl_cache)
    ids, y, E_value, W_value = _values()
    before = E_value.copy(), W_value.copy()
    for bad in (V, -V - 1):
        ids_bad = ids.copy()
        ids_bad[5] = bad
        message = (rf"step\(\): argument 'ids' indexes axis 0 of 'E', of size {V}, so its "
                   rf"values must lie in \[-{V}, {V - 1}\]; got {bad} at position \(5,\)")
        with pytest.raises(IndexError, match=message):
            mod.step(ids_bad, y, E_value, W_value)
    # Checked on entry: nothing was written.
    np.testing.assert_array_equal(E_value, before[0])
    np.testing.assert_array_equal(W_value, before[1])
    mod.step(np.full_like(ids, -V), y, E_value, W_value)  # numpy's lowest index is fine


def test_out_of_range_label_in_a_pick_names_the_batch_axis(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, C), "float64")
    y = sd.placeholder("y", (None,), "int64")
    out = sd.take_along_axis(x, y[:, None], axis=1)
    mod = compile_functions({"f": ([x, y], out)}, symdl_cache)
    with pytest.raises(IndexError, match=r"argument 'y' indexes axis 1 of 'x', of size 4"):
        mod.f(np.zeros((3, C)), np.array([0, 4, 1]))
    # The symbolic size is checked through its bound name: ids past the batch are refused.
    picks = x[y, 0]
    mod = compile_functions({"g": ([x, y], picks)}, symdl_cache)
    with pytest.raises(IndexError, match=r"argument 'y' indexes axis 0 of 'x', of size 3"):
        mod.g(np.zeros((3, C)), np.array([0, 3, 1]))
    np.testing.assert_array_equal(mod.g(np.eye(3, C), np.array([0, -3, 1])), [1.0, 1.0, 0.0])


def test_modules_without_indices_define_no_index_helper() -> None:
    x = sd.placeholder("x", (None, C), "float64")
    assert "_check_indices" not in sd.generate({"f": ([x], sd.sum(x))})


def test_constant_indices_out_of_range_are_refused() -> None:
    E = sd.parameter("E", (V, D), "float64")
    with pytest.raises(ShapeError, match=rf"constant index {V} is out of range for axis 0 of "
                                         rf"'E' of size {V} \(valid: -{V} to {V - 1}\)"):
        E[[0, V]]
    with pytest.raises(ShapeError, match="out of range"):
        sd.take(E, [-V - 1], axis=0)
    with pytest.raises(ShapeError, match="reaches beyond axis 1"):
        E[:, sd.arange(D + 1)]


def test_float_and_bool_indices_are_dtype_errors() -> None:
    E = sd.parameter("E", (V, D), "float64")
    with pytest.raises(DTypeError, match="gather: indices must be an integer array"):
        E[sd.placeholder("f", (None,), "float32")]
    with pytest.raises(DTypeError, match="take: indices must be integers"):
        sd.take(E, np.array([0.0, 1.0]))
    with pytest.raises(DTypeError, match="sd.where"):
        E[np.array([True, False] * 3 + [True])]


def test_unsupported_shapes_are_shape_errors() -> None:
    x = sd.placeholder("x", (2, 3, 4), "float64")
    ids = sd.placeholder("ids", (5,), "int64")
    with pytest.raises(ShapeError, match="not consecutive"):
        x[ids, :, ids]
    with pytest.raises(ShapeError, match="rank"):
        sd.take_along_axis(x, ids, axis=0)
    with pytest.raises(ShapeError, match="only arange"):
        sd.arange(1, "N")
    with pytest.raises(ShapeError, match="step must not be zero"):
        sd.arange(0, 5, 0)


# --------------------------------------------------------------------------- arange


def test_arange_of_the_batch_size(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), "float32")
    r = sd.arange(x.shape[0], dtype="float32")
    assert r.shape == ("N",) and r.dtype == "float32"
    mod = compile_functions({"f": ([x], x * r[:, None])}, symdl_cache)
    np.testing.assert_array_equal(mod.f(np.ones((4, 3), np.float32)),
                                  np.arange(4, dtype=np.float32)[:, None] * np.ones((4, 3)))
    assert sd.arange(5).shape == (5,) and sd.arange(2, 9, 3).shape == (3,)
    assert sd.arange(5, 0, -2).shape == (3,)


# --------------------------------------------------------------------------- every stage


def test_second_derivative_through_the_scatter(symdl_cache: Path) -> None:
    E = sd.parameter("E", (V, D), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    v = sd.placeholder("v", (V, D), "float64")
    hv = sd.hvp(sd.sum(E[ids] ** 3), E, v)
    mod = compile_functions({"f": ([ids, E, v], hv)}, symdl_cache)
    rng = np.random.default_rng(4)
    ids_value = np.array([1, 1, 5, -2])
    E_value, v_value = rng.standard_normal((V, D)), rng.standard_normal((V, D))
    counts = np.bincount(ids_value % V, minlength=V)[:, None]
    np.testing.assert_allclose(mod.f(ids_value, E_value, v_value),
                               6 * counts * E_value * v_value, rtol=1e-12)


def test_unsimplified_and_report_agree(symdl_cache: Path) -> None:
    leaves, loss = _embedding_model()
    functions = {"f": (leaves, [loss, *sd.grad(loss, [leaves[2], leaves[3]])])}
    values = _values()
    simplified = compile_functions(functions, symdl_cache).f(*values)
    raw = sd.compile(functions, "raw", cache_dir=symdl_cache, simplify=False).f(*values)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        reported = sd.compile(functions, "reported", cache_dir=symdl_cache, report=True)
    assert stderr.getvalue()
    for a, b, c in zip(simplified, raw, reported.f(*values), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a, c, rtol=1e-12, atol=1e-14)


def test_derivation_shows_the_lookup_and_its_rule() -> None:
    E = sd.parameter("E", (V, D), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    loss = sd.sum(sd.tanh(E[ids]))
    derivation = sd.derive(loss, E)
    tex = derivation.to_latex()
    assert r"E_{\text{ids}}" in tex, tex
    assert r"\operatorname{scatter\_add}" in tex, tex
    assert "np.add.at(" in derivation.to_markdown()


def test_generated_gather_module_is_lint_clean(symdl_cache: Path) -> None:
    from tests.test_generated_lint import LONG, _ruff

    table = sd.parameter(LONG, (50_000, 8), "float32")
    ids = sd.placeholder(LONG[:-1] + "i", (None, 2), "int64")
    labels = sd.placeholder(LONG[:-1] + "y", (None,), "int64")
    h = sd.sum(table[ids], axis=1)
    loss = -sd.mean(sd.log_softmax(h)[sd.arange(h.shape[0]), labels])
    functions = {"train_the_embedding_with_long_names": (
        [ids, labels, table], loss, {table: table - 0.5 * sd.grad(loss, table)},
    )}
    source = sd.generate(functions, "long_gather")
    assert all(len(line) <= 100 for line in source.splitlines())
    assert not _ruff(source)
    mod = compile_functions(functions, symdl_cache)
    rng = np.random.default_rng(0)
    table_value = rng.standard_normal((50_000, 8)).astype(np.float32)
    before = table_value.copy()
    ids_value, labels_value = rng.integers(0, 50_000, (5, 2)), rng.integers(0, 8, 5)
    mod.train_the_embedding_with_long_names(ids_value, labels_value, table_value)
    changed = np.flatnonzero((table_value != before).any(axis=1))
    assert set(changed) <= set(ids_value.ravel()) and len(changed)


def test_benchmark_candidates_agree_on_tiny_sizes() -> None:
    from benchmarks import bench_gather

    timings = bench_gather.run(n=40, d=3, v=11, repeats=1, dtype="float64")
    assert set(timings) == {"add.at", "bincount", "one_hot matmul"}
    assert timings["bincount"].median_ratio is not None


def test_a_broadcast_cotangent_is_scattered_unmaterialized(symdl_cache: Path) -> None:
    """sum(E[ids]) * s sends a broadcast of s to the gather: np.add.at broadcasts it itself,
    and the second derivative sums the gathered cotangent back to the scalar."""
    E = sd.parameter("E", (V, D), "float64")
    s = sd.parameter("s", (), "float64")
    ids = sd.placeholder("ids", (None,), "int64")
    v = sd.placeholder("v", (V, D), "float64")
    E_grad = sd.grad(sd.sum(E[ids]) * s, E)
    source = sd.generate({"f": ([ids, E, s], E_grad)})
    assert "np.add.at(E_grad, ids, s)" in source, source
    assert "broadcast_to" not in source, source
    mixed = sd.grad(sd.sum(E_grad * v), s)  # d/ds <dL/dE, v> = sum(v[ids])
    mod = compile_functions({"f": ([ids, E, s, v], [E_grad, mixed])}, symdl_cache)
    rng = np.random.default_rng(6)
    ids_value, v_value = np.array([0, 3, 3, -1]), rng.standard_normal((V, D))
    got_grad, got_mixed = mod.f(ids_value, np.zeros((V, D)), np.float64(2.5), v_value)
    expected = np.zeros((V, D))
    np.add.at(expected, ids_value, 2.5)
    np.testing.assert_array_equal(got_grad, expected)
    np.testing.assert_allclose(got_mixed, v_value[ids_value].sum(), rtol=1e-12)
