"""Parameter updates folded into one BLAS gemm (`codegen.blas`): the same step as plain numpy.

The reference is a hand-written numpy step of the same MLP (``W -= lr * (A.T @ G)``), run on
copies of the same parameters; the generated step must match it to rounding, through numpy's
BLAS and through the helper's plain-numpy fallback alike.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import symdl as sd
from codegen.blas import GEMM_FOLD_MIN_ELEMENTS
from codegen.module import assemble


def mlp_functions(n_in: int, width: int, n_out: int, dtype: str) -> dict[str, tuple]:
    """One SGD step of a one-hidden-layer ReLU MLP with mean softmax cross-entropy."""
    x = sd.placeholder("x", (None, n_in), dtype)
    y = sd.placeholder("y", (None, n_out), dtype)
    lr = sd.placeholder("lr", (), dtype)
    W1, b1 = sd.parameter("W1", (n_in, width), dtype), sd.parameter("b1", (width,), dtype)
    W2, b2 = sd.parameter("W2", (width, n_out), dtype), sd.parameter("b2", (n_out,), dtype)
    h = sd.relu((x @ W1 + b1).named("h1_pre")).named("h1")
    loss = sd.mean(sd.softmax_cross_entropy((h @ W2 + b2).named("logits"), y)).named("loss")
    params = [W1, b1, W2, b2]
    grads = sd.grad(loss, params)
    updates = {p: p - lr * g for p, g in zip(params, grads)}
    return {"train_step": ([x, y, *params, lr], loss, updates)}


def reference_step(x, y, W1, b1, W2, b2, lr):
    """The same step in plain numpy, float64 inside (the reference), updating in place."""
    f = np.float64
    x64, y64 = x.astype(f), y.astype(f)
    pre = x64 @ W1.astype(f) + b1.astype(f)
    h = np.maximum(pre, 0)
    z = h @ W2.astype(f) + b2.astype(f)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = -(y64 * (z - np.log(s))).sum() / len(x)
    dz = (e / s - y64) / len(x)
    dh = (dz @ W2.astype(f).T) * (pre > 0)
    for p, g in ((W1, x64.T @ dh), (b1, dh.sum(0)), (W2, h.T @ dz), (b2, dz.sum(0))):
        p[...] = p - f(lr) * g
    return loss


def load(source: str, tmp_path: Path, name: str) -> ModuleType:
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def data(dtype: str, n: int = 64, n_in: int = 300, width: int = 256, n_out: int = 10):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((n, n_in)).astype(dtype)
    y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    params = [
        (rng.standard_normal((n_in, width)) * 0.05).astype(dtype),
        (rng.standard_normal(width) * 0.05).astype(dtype),
        (rng.standard_normal((width, n_out)) * 0.05).astype(dtype),
        (rng.standard_normal(n_out) * 0.05).astype(dtype),
    ]
    return x, y, params


@pytest.fixture(params=["float32", "float64"])
def dtype(request) -> str:
    return request.param


@pytest.fixture
def folded(tmp_path: Path, dtype: str) -> ModuleType:
    # W1 (300 x 256 = 76800 elements) is above the threshold, W2 (256 x 10) below it.
    assert 300 * 256 >= GEMM_FOLD_MIN_ELEMENTS > 256 * 10
    source = assemble(mlp_functions(300, 256, 10, dtype), "mlp").source
    return load(source, tmp_path, f"gemm_mlp_{dtype}")


def test_the_large_weight_is_folded_and_the_small_one_is_not(folded: ModuleType) -> None:
    source = Path(folded.__file__).read_text()
    assert "_gemm_update(W1, x, h1_pre_bar, -lr)" in source
    assert "W1_grad" not in source.split("def _find_gemm")[0]  # no product array
    assert "W2 -= lr * W2_grad" in source
    assert "import ctypes" in source


def test_numpys_blas_is_found() -> None:
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if "openblas" not in blas["name"]:
        pytest.skip(f"numpy is built with {blas['name']}, whose gemm the helper does not look up")
    source = assemble(mlp_functions(300, 256, 10, "float32"), "mlp").source
    namespace: dict[str, object] = {}
    exec(compile(source, "<mlp>", "exec"), namespace)  # noqa: S102 - our own generated module
    assert set(namespace["_GEMMS"]) == {np.dtype(np.float32), np.dtype(np.float64)}


@pytest.mark.parametrize("blas", [True, False], ids=["blas", "fallback"])
def test_folded_step_equals_plain_numpy(folded: ModuleType, dtype: str, blas: bool) -> None:
    if not blas:
        folded._GEMMS = {}  # what a numpy without a known BLAS gets: the plain update
    elif not folded._GEMMS:
        pytest.skip("numpy's BLAS gemm was not found")
    x, y, params = data(dtype)
    mine = [p.copy() for p in params]
    expected = [p.astype(np.float64) for p in params]
    lr = dtype_scalar(dtype, 0.5)
    for _ in range(3):
        loss = folded.train_step(x, y, *mine, lr)
        want = reference_step(x, y, *expected, lr)
        rtol = 2e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(loss, want, rtol=rtol)
        for got, ref in zip(mine, expected):
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * 1e-2)
    assert not np.array_equal(mine[0], params[0])  # the weight did move


def test_blas_and_fallback_agree_to_rounding(folded: ModuleType, dtype: str) -> None:
    if not folded._GEMMS:
        pytest.skip("numpy's BLAS gemm was not found")
    x, y, params = data(dtype)
    with_blas = [p.copy() for p in params]
    plain = [p.copy() for p in params]
    lr = dtype_scalar(dtype, 0.5)
    folded.train_step(x, y, *with_blas, lr)
    gemms, folded._GEMMS = folded._GEMMS, {}
    try:
        folded.train_step(x, y, *plain, lr)
    finally:
        folded._GEMMS = gemms
    eps = np.finfo(dtype).eps
    for a, b in zip(with_blas, plain):
        np.testing.assert_allclose(a, b, rtol=64 * eps, atol=64 * eps)


def spy(module: ModuleType, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Replace the module's gemm functions by ones that record their calls (and do nothing)."""
    calls: list[tuple] = []
    fake = {dtype: (lambda *args: calls.append(args)) for dtype in
            (np.dtype(np.float32), np.dtype(np.float64))}
    monkeypatch.setattr(module, "_GEMMS", fake)
    return calls


@pytest.mark.parametrize("case", ["A strided", "G Fortran", "W strided", "A other dtype"])
def test_helper_falls_back_for_what_blas_cannot_take(
    folded: ModuleType, dtype: str, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((20, 12)).astype(dtype)
    G = rng.standard_normal((20, 7)).astype(dtype)
    W = rng.standard_normal((12, 7)).astype(dtype)
    if case == "A strided":
        A = np.repeat(A, 2, axis=1)[:, ::2]
    elif case == "G Fortran":
        G = np.asfortranarray(G)
    elif case == "W strided":
        W = np.repeat(W, 2, axis=1)[:, ::2]
    else:
        A = A.astype(np.float32 if dtype == "float64" else np.float64)
    expected = W - 0.25 * (A.T @ G)
    calls = spy(folded, monkeypatch)
    folded._gemm_update(W, A, G, -0.25)
    assert calls == []  # never handed to BLAS
    np.testing.assert_allclose(W, expected, rtol=1e-6)


def test_helper_calls_blas_for_contiguous_arrays(
    folded: ModuleType, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    A, G, W = (np.ones(shape, dtype) for shape in ((20, 12), (20, 7), (12, 7)))
    calls = spy(folded, monkeypatch)
    folded._gemm_update(W, A, G, -0.25)
    assert len(calls) == 1
    order, trans_a, trans_b, m, n, k = calls[0][:6]
    assert (order, trans_a, trans_b, m, n, k) == (101, 112, 111, 12, 7, 20)


def test_helper_matches_numpy_through_blas(folded: ModuleType, dtype: str) -> None:
    if not folded._GEMMS:
        pytest.skip("numpy's BLAS gemm was not found")
    rng = np.random.default_rng(5)
    A = rng.standard_normal((33, 40)).astype(dtype)
    G = rng.standard_normal((33, 17)).astype(dtype)
    W = rng.standard_normal((40, 17)).astype(dtype)
    expected = W.astype(np.float64) - 0.125 * (A.astype(np.float64).T @ G.astype(np.float64))
    folded._gemm_update(W, A, G, dtype_scalar(dtype, -0.125))
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(W, expected, rtol=100 * eps, atol=100 * eps)


def test_small_models_have_no_ctypes_import() -> None:
    """Softmax regression's 784 x 10 weight is below the threshold: nothing is folded."""
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None, 10))
    lr = sd.placeholder("lr", ())
    W, b = sd.parameter("W", (784, 10)), sd.parameter("b", (10,))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))
    gW, gb = sd.grad(loss, [W, b])
    source = sd.generate({"train_step": ([x, y, W, b, lr], loss,
                                         {W: W - lr * gW, b: b - lr * gb})})
    assert "ctypes" not in source and "_gemm_update" not in source


def test_gemm_off_prints_plain_updates() -> None:
    source = assemble(mlp_functions(300, 256, 10, "float32"), "mlp", gemm=False).source
    assert "ctypes" not in source and "_gemm_update" not in source
    assert "W1_grad = x.T @ h1_pre_bar" in source


def test_momentum_is_not_folded() -> None:
    """Only the plain SGD update is a gemm with beta = 1; momentum keeps its buffer."""
    x = sd.placeholder("x", (None, 300))
    y = sd.placeholder("y", (None, 256))
    W = sd.parameter("W", (300, 256))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W, y))
    spec = sd.optim.SGD(lr=0.1, momentum=0.9).step_function(loss, [W], [x, y])
    source = assemble(spec.functions, "momentum").source
    assert "_gemm_update" not in source


def dtype_scalar(dtype: str, value: float) -> np.generic:
    return np.dtype(dtype).type(value)


# --------------------------------------------------------------------------- sums of products


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_full_sum_of_a_product_is_one_vdot(dtype: str, tmp_path: Path) -> None:
    a, b = sd.placeholder("a", (None, 7), dtype), sd.placeholder("b", (None, 7), dtype)
    m = sd.placeholder("m", (7, 7), dtype)
    total = sd.sum((a @ m) * b).named("total")  # a product that fusion leaves a multiply
    source = assemble({"f": ([a, b, m], total)}, "dots").source
    assert "total = np.vdot(a_m, b)" in source and ".sum(" not in source.split("# total")[1]
    module = load(source, tmp_path, f"dots_{dtype}")
    rng = np.random.default_rng(2)
    av, bv = rng.standard_normal((2, 30, 7)).astype(dtype)
    mv = rng.standard_normal((7, 7)).astype(dtype)
    expected = ((av.astype(np.float64) @ mv) * bv).sum()
    got = module.f(av, bv, mv)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, rtol=1e-5 if dtype == "float32" else 1e-13)


def test_partial_broadcast_or_shared_products_stay_sums() -> None:
    a, b = sd.placeholder("a", (None, 7)), sd.placeholder("b", (None, 7))
    row, m = sd.placeholder("row", (7,)), sd.placeholder("m", (7, 7))
    product = ((a @ m) * b).named("ab")
    functions = {
        "by_rows": ([a, b, m], sd.sum((a @ m) * b, axis=1)),  # not every axis
        "broadcast": ([a, row, m], sd.sum((a @ m) * row)),    # row is broadcast
        "shared": ([a, b, m], (sd.sum(product), product)),    # the product is returned too
    }
    source = assemble(functions, "sums").source
    assert "np.vdot" not in source


def test_deeper_mlp_folds_every_large_weight_and_matches_handwritten(tmp_path: Path) -> None:
    """Two hidden layers, both weights above the threshold: the generated step equals the
    benchmarks' hand-written numpy step of any depth (which updates with plain numpy)."""
    from benchmarks.handwritten import mlp_layers_step
    from benchmarks.models import mlp_sizes

    sizes = (300, 260, 256, 10)
    source = assemble(mlp_sizes(sizes), "deep").source
    calls = [line.strip() for line in source.splitlines() if line.startswith("    _gemm_update(")]
    # W2 and W1 folded; W3 (256 x 10) is below the threshold and stays plain numpy.
    assert [c.split(",")[0] for c in calls] == ["_gemm_update(W2", "_gemm_update(W1"]
    module = load(source, tmp_path, "deep_mlp")
    rng = np.random.default_rng(11)
    x = rng.random((64, 300), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 64)]
    params = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        params += [(rng.standard_normal((n_in, n_out)) * 0.05).astype(np.float32),
                   np.zeros(n_out, np.float32)]
    mine, theirs = [p.copy() for p in params], [p.copy() for p in params]
    lr = np.float32(0.1)
    for _ in range(3):
        np.testing.assert_allclose(module.train_step(x, y, *mine, lr),
                                   mlp_layers_step(x, y, *theirs, lr), rtol=1e-5)
    for a, b in zip(mine, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("update", ["W.T @ G", "A.T @ W", "A.T @ W.T"])
def test_an_update_reading_its_own_weight_is_not_folded(update: str, tmp_path: Path) -> None:
    # BLAS may not read the array it writes: W - lr * (W.T @ G) folded into a gemm on W gave
    # errors of order 10 before this was refused. Reference: plain numpy in float64.
    n = 300  # 90,000 elements: above the folding threshold
    W = sd.parameter("W", (n, n))
    A = sd.placeholder("A", (n, n))
    G = sd.placeholder("G", (n, n))
    lr = sd.placeholder("lr", ())
    product = {"W.T @ G": W.T @ G, "A.T @ W": A.T @ W, "A.T @ W.T": A.T @ W.T}[update]
    assert n * n >= GEMM_FOLD_MIN_ELEMENTS
    source = assemble({"step": ([W, A, G, lr], [], {W: W - lr * product})}, "own_weight").source
    assert "_gemm_update(W" not in source
    module = load(source, tmp_path, "own_weight")
    rng = np.random.default_rng(3)
    w, a, g = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(3))
    w64, a64, g64 = (v.astype(np.float64) for v in (w, a, g))
    want = w64 - 0.1 * {"W.T @ G": w64.T @ g64, "A.T @ W": a64.T @ w64,
                        "A.T @ W.T": a64.T @ w64.T}[update]
    module.step(w, a, g, np.float32(0.1))
    np.testing.assert_allclose(w, want, rtol=1e-4, atol=1e-3)
