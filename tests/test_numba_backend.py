"""``backend="numba"``: fused elementwise statements as numba kernels, same results as numpy.

The numpy backend's results are the reference: every model here is compiled with both backends
and run on the same inputs. Also checked: float32 kernels never compute in float64 (no
``fpext`` in their machine code), a warm start in a fresh process compiles no kernel (numba's
own cache statistics), the generated module is lint-clean, and a missing numba is a clear error.
Skipped where numba is not installed (it is an optional extra: ``pip install 'symdl[numba]'``),
except the error test, which needs no numba.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from codegen.layout import LINE_LIMIT
from symdl.errors import CodegenError, InvalidNameError, UsageError

ROOT = Path(__file__).resolve().parents[1]
requires_numba = pytest.mark.skipif(
    importlib.util.find_spec("numba") is None, reason="numba not installed (symdl[numba])"
)


def _softmax_regression(dtype: str, n_in: int = 12, n_out: int = 5) -> dict:
    x = sd.placeholder("x", (None, n_in), dtype)
    y = sd.placeholder("y", (None, n_out), dtype)
    W = sd.parameter("W", (n_in, n_out), dtype)
    b = sd.parameter("b", (n_out,), dtype)
    lr = sd.placeholder("lr", (), dtype)
    logits = (x @ W + b).named("logits")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    W_grad, b_grad = sd.grad(loss, [W, b])
    return {
        "loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad]),
        "train_step": ([x, y, W, b, lr], loss, {W: W - lr * W_grad, b: b - lr * b_grad}),
    }


def _data(dtype: str, batch: int = 7, n_in: int = 12, n_out: int = 5, scale: float = 1.0,
          seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((batch, n_in)) * scale).astype(dtype)
    y = np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, batch)]
    W = (rng.standard_normal((n_in, n_out)) * scale).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    return x, y, W, b


def _both(functions: dict, name: str, cache: Path, **options: object) -> tuple:
    reference = sd.compile(functions, f"{name}_np", cache_dir=cache, **options)
    compiled = sd.compile(functions, f"{name}_nb", cache_dir=cache, backend="numba", **options)
    return reference, compiled


def _close(got: object, want: object, dtype: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype == np.dtype(dtype)
    # To rounding: a few ulps of each value, and of the largest one where terms cancel
    # (the kernel may associate a sum as sympy wrote it, numpy as the statements did).
    eps = float(np.finfo(dtype).eps)
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    np.testing.assert_allclose(got, want, rtol=16 * eps, atol=16 * eps * scale)


@requires_numba
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_regression_matches_numpy_backend(symdl_cache: Path, dtype: str) -> None:
    reference, compiled = _both(_softmax_regression(dtype), f"smr_{dtype}", symdl_cache)
    source = Path(compiled.__file__).read_text()
    assert "@numba.njit(cache=True, fastmath=False, error_model='numpy')" in source
    assert "numba" not in Path(reference.__file__).read_text()  # the default is numpy only
    x, y, W, b = _data(dtype)
    for got, want in zip(compiled.loss_and_grads(x, y, W, b), reference.loss_and_grads(x, y, W, b)):
        _close(got, want, dtype)
    Wn, bn, Wr, br = W.copy(), b.copy(), W.copy(), b.copy()
    for _ in range(3):
        _close(compiled.train_step(x, y, Wn, bn, 0.1), reference.train_step(x, y, Wr, br, 0.1),
               dtype)
    _close(Wn, Wr, dtype)
    _close(bn, br, dtype)


def _mlp(dtype: str) -> tuple:
    x = sd.placeholder("x", (None, 12), dtype)
    y = sd.placeholder("y", (None, 5), dtype)
    W1, b1 = sd.parameter("W1", (12, 16), dtype), sd.parameter("b1", (16,), dtype)
    W2, b2 = sd.parameter("W2", (16, 5), dtype), sd.parameter("b2", (5,), dtype)
    h = sd.relu(x @ W1 + b1).named("h")
    loss = sd.mean(sd.softmax_cross_entropy(h @ W2 + b2, y)).named("loss")
    return loss, [W1, b1, W2, b2], [x, y]


@requires_numba
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_train_step_matches_numpy_backend(symdl_cache: Path, optimizer: str,
                                              dtype: str) -> None:
    loss, params, inputs = _mlp(dtype)
    steps = {
        backend: sd.optim.compile_train_step(
            loss, params, sd.optim.make_optimizer(optimizer, 0.05), inputs,
            name=f"mlp_{optimizer}_{dtype}_{backend}", cache_dir=str(symdl_cache),
            backend=backend)
        for backend in ("numpy", "numba")
    }
    assert "numba.njit" in Path(steps["numba"].module.__file__).read_text()
    rng = np.random.default_rng(1)
    batch = (rng.standard_normal((9, 12)).astype(dtype),
             np.eye(5, dtype=dtype)[rng.integers(0, 5, 9)])
    start = {p.name: (rng.standard_normal(p.shape) * 0.3).astype(dtype) for p in params}
    values = {b: {k: v.copy() for k, v in start.items()} for b in steps}
    states = {b: steps[b].init_state() for b in steps}
    for _ in range(4):
        got = steps["numba"](batch, values["numba"], states["numba"])
        want = steps["numpy"](batch, values["numpy"], states["numpy"])
        for g, w in zip(got, want):
            _close(g, w, dtype)
    for name in start:
        _close(values["numba"][name], values["numpy"][name], dtype)
    for name in states["numpy"]:
        np.testing.assert_allclose(states["numba"][name], states["numpy"][name], rtol=1e-5)


@requires_numba
def test_extreme_logits_stay_finite(symdl_cache: Path) -> None:
    reference, compiled = _both(_softmax_regression("float32"), "smr_extreme", symdl_cache)
    x, y, W, b = _data("float32", scale=300.0)  # logits of order 1e4..1e5: exp would overflow
    got = compiled.loss_and_grads(x, y, W, b)
    want = reference.loss_and_grads(x, y, W, b)
    assert all(np.isfinite(g).all() for g in got)
    for g, w in zip(got, want):
        _close(g, w, "float32")


@requires_numba
def test_division_by_zero_gives_numpys_inf_and_nan(symdl_cache: Path) -> None:
    """Kernels divide as numpy does (IEEE: inf, NaN), never raise ZeroDivisionError.

    numba's default error model is Python's: every division tests its divisor and may raise,
    which also kept LLVM from vectorizing the loop (Adam's update kernel ran 8x slower).
    """
    a = sd.placeholder("a", (None, 3), "float64")
    d = sd.placeholder("d", (None, 3), "float64")
    out = ((a + 1.0) / (d * 2.0)).named("out")
    reference, compiled = _both({"f": ([a, d], out)}, "divzero", symdl_cache)
    assert "_kernel" in Path(compiled.__file__).read_text()
    args = (np.array([[1.0, -1.0, -1.0]]), np.array([[0.0, 0.0, 0.5]]))
    with np.errstate(divide="ignore", invalid="ignore"):
        want = reference.f(*args)
    got = compiled.f(*args)
    np.testing.assert_array_equal(got, want)
    assert np.isinf(got[0, 0]) and np.isnan(got[0, 1])


@requires_numba
def test_a_kernel_never_writes_into_an_array_it_reads_through_another_view(
    symdl_cache: Path,
) -> None:
    """``out`` is a reshape of a dead temporary and the kernel also reads a transposed view of
    that temporary: a loop writing element by element would read what it already overwrote
    (numpy's ufuncs copy such an input first), so the statement stays numpy."""
    x = sd.placeholder("x", (5, 3), "float64")
    W = sd.placeholder("W", (3, 8), "float64")
    h = sd.exp(x @ W)
    out = (sd.reshape(h, (5, 2, 4)) * 2.0
           + sd.transpose(sd.reshape(h, (5, 4, 2)), (0, 2, 1)) * 3.0).named("out")
    reference, compiled = _both({"f": ([x, W], out)}, "two_views", symdl_cache)
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((3, 8))
    e = np.exp(a @ b)
    want = e.reshape(5, 2, 4) * 2.0 + e.reshape(5, 4, 2).transpose(0, 2, 1) * 3.0
    _close(reference.f(a, b), want, "float64")
    _close(compiled.f(a, b), want, "float64")


@requires_numba
def test_broadcasting_constants_and_rank_three(symdl_cache: Path) -> None:
    """Inputs of shapes (N, 1, 4), (3, 1) and (4,) and literals, read as numpy broadcasts.

    ``fast_math``: sympy distributes the ``/ 3.0``, which exact fusion refuses for what users
    write (op by op, nothing would be left to compile).
    """
    a = sd.placeholder("a", (None, 1, 4), "float32")
    c = sd.placeholder("c", (3, 1), "float32")
    d = sd.placeholder("d", (4,), "float32")
    s = sd.placeholder("s", (), "float32")
    out = ((sd.tanh(a * 0.5 + c) * sd.exp(d) + s * sd.square(a - 1.5)) / 3.0).named("out")
    reference, compiled = _both({"f": ([a, c, d, s], out)}, "bcast", symdl_cache,
                                fast_math=True)
    assert "_kernel" in Path(compiled.__file__).read_text()
    rng = np.random.default_rng(2)
    args = [rng.standard_normal(shape).astype(np.float32) for shape in ((6, 1, 4), (3, 1), (4,))]
    for scalar in (np.float32(0.7), 0.7):  # a Python number stays float32 in the kernel too
        got, want = compiled.f(*args, scalar), reference.f(*args, scalar)
        assert got.shape == (6, 3, 4)
        _close(got, want, "float32")


@requires_numba
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (1, True), ((0, 2), False)])
def test_sum_of_a_kernel_is_one_reduction_kernel(symdl_cache: Path, axis: object,
                                                 keepdims: bool) -> None:
    """A kernel whose one reader is a sum is summed as it is computed, never stored."""
    a = sd.placeholder("a", (None, 4, 3), "float32")
    b = sd.placeholder("b", (4, 1), "float32")
    out = sd.sum(sd.exp(a) * b, axis=axis, keepdims=keepdims).named("out")
    reference, compiled = _both({"f": ([a, b], out)}, "summed", symdl_cache)
    source = Path(compiled.__file__).read_text()
    assert "out = np.float32(_out_kernel(" in source if axis is None else "_out_kernel(" in source
    assert ".sum(" not in source.split("def f(")[1].split("return out")[0]
    rng = np.random.default_rng(4)
    args = [rng.standard_normal((5, 4, 3)).astype(np.float32),
            rng.standard_normal((4, 1)).astype(np.float32)]
    got, want = compiled.f(*args), reference.f(*args)
    assert np.shape(got) == np.shape(want)
    _close(got, want, "float32")


@requires_numba
def test_float32_kernels_compute_in_float32(symdl_cache: Path) -> None:
    """No float64 in a float32 kernel: literals and scalars are cast (numba would promote)."""
    loss, params, inputs = _mlp("float32")
    step = sd.optim.compile_train_step(loss, params, sd.optim.make_optimizer("adam"), inputs,
                                       name="adam_f32", cache_dir=str(symdl_cache),
                                       backend="numba")
    rng = np.random.default_rng(3)
    values = {p.name: rng.standard_normal(p.shape).astype(np.float32) for p in params}
    batch = (rng.standard_normal((4, 12)).astype(np.float32),
             np.eye(5, dtype=np.float32)[[0, 1, 2, 3]])
    step(batch, values, step.init_state())
    kernels = [f for n, f in vars(step.module).items() if n.endswith("_kernel")]
    assert kernels
    for kernel in kernels:
        for ir in kernel.inspect_llvm().values():
            # The compiled function itself; its CPython wrapper boxes a float32 result as a
            # Python float (a double), which is no computation.
            for function in ir.split("\ndefine ")[1:]:
                if "cpython" not in function.split("(", 1)[0]:
                    assert "fpext float" not in function, f"{kernel.__name__} uses float64"


@requires_numba
def test_generated_kernels_are_lint_clean_python() -> None:
    loss, params, inputs = _mlp("float32")
    spec = sd.optim.make_optimizer("adam").step_function(loss, params, inputs)
    source = sd.generate(spec.functions, "adam_numba", backend="numba")
    assert source.count("@numba.njit(cache=True, fastmath=False, error_model='numpy')") >= 3
    assert "import numba\nimport numpy as np" in source
    assert 'Needs numba, besides numpy (compiled with backend="numba")' in source
    assert all(len(line) <= LINE_LIMIT for line in source.splitlines())
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select",
         "E,F,W,I", "--line-length", str(LINE_LIMIT), "--output-format", "concise", "-"],
        input=source, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# Compiles softmax regression in a fresh process and reports how many kernels numba compiled
# there and how many it loaded from its cache beside the module.
_CHILD = """
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[2])
from tests.test_numba_backend import _data, _softmax_regression
import symdl as sd
module = sd.compile(_softmax_regression("float32"), "warm", cache_dir=sys.argv[1],
                    backend="numba")
x, y, W, b = _data("float32")
module.train_step(x, y, W, b, 0.1)
kernels = [f for n, f in vars(module).items() if n.endswith("_kernel")]
print(json.dumps({"kernels": len(kernels),
                  "compiled": sum(sum(f.stats.cache_misses.values()) for f in kernels),
                  "loaded": sum(sum(f.stats.cache_hits.values()) for f in kernels)}))
"""


@requires_numba
def test_warm_start_in_a_fresh_process_compiles_no_kernel(tmp_path: Path) -> None:
    runs = []
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path), str(ROOT)],
                              capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    cold, warm = runs
    assert cold["kernels"] >= 1 and cold["compiled"] == cold["kernels"]
    assert warm["compiled"] == 0 and warm["loaded"] == warm["kernels"] == cold["kernels"]


@requires_numba
def test_check_off_and_generate_cli(tmp_path: Path, symdl_cache: Path) -> None:
    from symdl.cli import main

    reference, compiled = _both(_softmax_regression("float32"), "smr_nocheck", symdl_cache,
                                check=False)
    x, y, W, b = _data("float32")
    for got, want in zip(compiled.loss_and_grads(x, y, W, b), reference.loss_and_grads(x, y, W, b)):
        _close(got, want, "float32")
    out = tmp_path / "logreg_numba.py"
    model = ROOT / "examples" / "models" / "logreg.py"
    assert main(["generate", str(model), "-o", str(out), "--backend", "numba"]) == 0
    assert "import numba" in out.read_text()


def test_numba_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch,
                                        symdl_cache: Path) -> None:
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    functions = _softmax_regression("float32")
    with pytest.raises(CodegenError, match=r"pip install 'symdl\[numba\]'"):
        sd.compile(functions, "no_numba", cache_dir=symdl_cache, backend="numba")
    with pytest.raises(CodegenError, match="numba"):
        sd.generate(functions, "no_numba", backend="numba")
    loss, params, inputs = _mlp("float32")
    with pytest.raises(CodegenError, match=r"symdl\[numba\]"):
        sd.optim.compile_train_step(loss, params, sd.optim.make_optimizer("sgd"), inputs,
                                    cache_dir=str(symdl_cache), backend="numba")


def test_unknown_backend_is_refused(symdl_cache: Path) -> None:
    with pytest.raises(UsageError, match="unknown backend 'jax'.*numpy, numba"):
        sd.compile(_softmax_regression("float32"), "jax", cache_dir=symdl_cache, backend="jax")


@requires_numba
def test_a_function_named_numba_is_refused() -> None:
    functions = _softmax_regression("float32")
    with pytest.raises(InvalidNameError, match="'numba'"):
        sd.generate({"numba": functions["loss_and_grads"]}, "m", backend="numba")


@requires_numba
def test_a_product_summed_inside_a_kernel_is_never_deleted(symdl_cache: Path) -> None:
    # Unnamed, the loss's product y * log_softmax is summed inside a reduction kernel and never
    # bound to a name; the del lines that free the step's dead arrays must not name it
    # (an UnboundLocalError before the fix, in the benchmark's softmax regression).
    x = sd.placeholder("x", (None, 12), "float32")  # 10 classes: rows worth a del
    y = sd.placeholder("y", (None, 10), "float32")
    W = sd.parameter("W", (12, 10), "float32")
    b = sd.parameter("b", (10,), "float32")
    lr = sd.placeholder("lr", (), "float32")
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))
    W_grad, b_grad = sd.grad(loss, [W, b])
    functions = {"train_step": ([x, y, W, b, lr], loss,
                                {W: W - lr * W_grad, b: b - lr * b_grad})}
    reference, compiled = _both(functions, "summed_unnamed", symdl_cache)
    source = sd.generate(functions, "summed_unnamed", backend="numba")
    assert "_kernel(" in source and "del " in source
    xs, ys, Ws, bs = _data("float32", batch=64, n_out=10)
    W1, b1, W2, b2 = Ws.copy(), bs.copy(), Ws.copy(), bs.copy()
    for _ in range(3):
        want = reference.train_step(xs, ys, W1, b1, np.float32(0.1))
        got = compiled.train_step(xs, ys, W2, b2, np.float32(0.1))
        _close(got, want, "float32")
    _close(W2, W1, "float32")
    _close(b2, b1, "float32")


def _kernel_calls(source: str, function: str) -> list[str]:
    """The kernel calls in ``function`` of a generated module, as ``name(arg, ...)`` on one
    line (a wrapped call joined back)."""
    body = " ".join(source.split(f"\ndef {function}(", 1)[1].split("\ndef ", 1)[0].split())
    calls = []
    for match in re.finditer(r"\b_\w+_kernel\(", body):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(body[end], 0)
            end += 1
        calls.append(body[match.start():end])
    return calls


@requires_numba
def test_an_optimizers_updates_of_one_parameter_are_one_kernel(symdl_cache: Path) -> None:
    # Adam writes m, v and the parameter: one loop reads each element of the four arrays once
    # (`update_groups`); the results are the numpy backend's (test_mlp_train_step_matches_...).
    loss, params, inputs = _mlp("float32")
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(0.01), inputs,
                                       name="adam_merged", cache_dir=str(symdl_cache),
                                       backend="numba")
    source = Path(step.module.__file__).read_text()
    calls = _kernel_calls(source, "train_step")
    for p in params:
        merged = [c for c in calls if f"{p.name}_m" in re.split(r"[(), ]+", c)]
        assert len(merged) == 1, (p.name, calls)
        args = re.split(r"[(), ]+", merged[0])
        assert f"{p.name}_v" in args and p.name in args
        kernel = merged[0].split("(")[0]
        definition = source.split(f"def {kernel}(", 1)[1].split("\n\n\n", 1)[0]
        assert "In one pass over the elements" in definition
        stores = [line.strip().split("[")[0] for line in definition.splitlines()
                  if "] = " in line]
        assert stores == [f"{p.name}_m", f"{p.name}_v", p.name], definition


def _two_updates(case: str) -> tuple[dict, object]:
    """Two parameters P, Q updated with kernels of one shape; ``case`` says how Q's update
    reads P's (or P's reads Q), and the hand-written numpy of the step."""
    g = sd.placeholder("g", (4, 4), "float64")
    P = sd.parameter("P", (4, 4), "float64")
    Q = sd.parameter("Q", (4, 4), "float64")
    if case == "broadcast_old":
        P_new = sd.exp(P) * 0.5 + Q[0:1, :]  # reads Q's old row 0 in every row
        Q_new = Q * 2.0 + P_new  # after P_new, so Q is written in place

        def want(gv: np.ndarray, Pv: np.ndarray, Qv: np.ndarray) -> tuple:
            P1 = np.exp(Pv) * 0.5 + Qv[0:1, :]
            return P1, Qv * 2.0 + P1
    else:
        P_new = sd.exp(P) * 0.5 + g
        if case == "transposed":
            Q_new = Q * 2.0 + sd.transpose(P_new)  # P's new values at (j, i)

            def want(gv: np.ndarray, Pv: np.ndarray, Qv: np.ndarray) -> tuple:
                P1 = np.exp(Pv) * 0.5 + gv
                return P1, Qv * 2.0 + P1.T
        elif case == "another_view":
            Q_new = Q * 2.0 + sd.transpose(g) + P_new  # g is written by nobody

            def want(gv: np.ndarray, Pv: np.ndarray, Qv: np.ndarray) -> tuple:
                P1 = np.exp(Pv) * 0.5 + gv
                return P1, Qv * 2.0 + gv.T + P1
        else:
            Q_new = sd.sqrt(Q * Q + P_new * P_new)  # P's new values at (i, j)

            def want(gv: np.ndarray, Pv: np.ndarray, Qv: np.ndarray) -> tuple:
                P1 = np.exp(Pv) * 0.5 + gv
                return P1, np.sqrt(Qv * Qv + P1 * P1)
    return {"step": ([g, P, Q], sd.sum(g), {P: P_new, Q: Q_new})}, want


@requires_numba
@pytest.mark.parametrize("case,kernels", [("same_index", 1), ("another_view", 1),
                                          ("transposed", 2), ("broadcast_old", 2)])
def test_updates_merge_only_where_one_loop_computes_what_the_statements_do(
    symdl_cache: Path, case: str, kernels: int,
) -> None:
    """Merged, a loop would read P's new values at (j, i) before iteration (j, i) writes them,
    or Q's old row 0 after iteration (0, j) overwrote it: those stay two kernels."""
    functions, want = _two_updates(case)
    reference, compiled = _both(functions, f"two_updates_{case}", symdl_cache)
    assert len(_kernel_calls(Path(compiled.__file__).read_text(), "step")) == kernels
    rng = np.random.default_rng(5)
    g, P, Q = (rng.standard_normal((4, 4)) for _ in range(3))
    P_want, Q_want = want(g, P, Q)
    for module in (reference, compiled):
        Pv, Qv = P.copy(), Q.copy()
        module.step(g, Pv, Qv)
        _close(Pv, P_want, "float64")
        _close(Qv, Q_want, "float64")
