"""The generated module: numpy only, runs without sympy/symdl, deterministic across processes,
checks its arguments, updates parameters in place; and the text dump `sd.show`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.errors import CodegenError
from tests.helpers import assert_close, compile_functions

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "models" / "logreg.py"

# Softmax regression as a model file owned by these tests (the example may change shape).
SOFTMAX_REGRESSION = textwrap.dedent(
    """
    import symdl as sd
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None, 10))
    W = sd.parameter("W", (784, 10))
    b = sd.parameter("b", (10,))
    logits = (x @ W + b).named("logits")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    W_grad, b_grad = sd.grad(loss, [W, b])
    name = "softmax_regression"
    functions = {"loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad])}
    """
)


@pytest.fixture(scope="module")
def logreg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "softmax_regression.py"
    path.write_text(SOFTMAX_REGRESSION)
    return path

softplus_sym = sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus_sym")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def mlp_functions() -> dict[str, tuple]:
    """A small float64 MLP using a sympy-defined activation, softmax, argmax and cross-entropy."""
    x = sd.placeholder("x", (None, 4), "float64")
    y = sd.placeholder("y", (None,), "int64")
    W1 = sd.parameter("W1", (4, 6), "float64")
    W2 = sd.parameter("W2", (6, 3), "float64")
    logits = (softplus_sym(x @ W1) @ W2).named("logits")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    probs = sd.softmax(logits).named("probs")
    return {
        "loss_and_grads": ([x, y, W1, W2], [loss, *sd.grad(loss, [W1, W2])]),
        "predict": ([x, W1, W2], [probs, sd.argmax(logits, axis=1)]),
    }


def mlp_reference(x: np.ndarray, y: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> dict:
    """Hand-written numpy forward and backward of `mlp_functions`."""
    pre = x @ w1
    h = np.log1p(np.exp(pre))
    z = h @ w2
    p = _softmax(z)
    n = len(x)
    loss = -np.log(p[np.arange(n), y]).mean()
    dz = (p - np.eye(3)[y]) / n
    dh = dz @ w2.T
    return {
        "loss": loss, "W1_grad": x.T @ (dh / (1 + np.exp(-pre))), "W2_grad": h.T @ dz,
        "probs": p, "pred": z.argmax(1),
    }


def mlp_values(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((5, 4)), rng.integers(0, 3, 5), rng.standard_normal((4, 6)),
            rng.standard_normal((6, 3))]


# --------------------------------------------------------------------------- numpy only


def _imports(source: str) -> list[str]:
    modules = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules.append(node.module or ".")
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            modules.append("__import__")
    return modules


@pytest.mark.parametrize("simplify", [True, False])
def test_generated_module_imports_numpy_only(simplify: bool, logreg_file: Path) -> None:
    source = sd.generate(mlp_functions(), "mlp", simplify=simplify)
    assert _imports(source) == ["numpy"]
    for model in (logreg_file, EXAMPLE):
        generated = sd.generate(_load(model)["functions"], "logreg", simplify=simplify)
        assert _imports(generated) == ["numpy"], model


def _load(path: Path) -> dict:
    from symdl.commands.modelfile import load_model_file

    return load_model_file(path)


RUN_BLOCKED = textwrap.dedent(
    """
    import importlib.util, json, sys
    # A None entry makes `import sympy` (etc.) raise ImportError.
    sys.modules["sympy"] = None
    sys.modules["symdl"] = None
    sys.modules["codegen"] = None
    import numpy as np
    spec = importlib.util.spec_from_file_location("generated_mlp", sys.argv[1])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = np.load(sys.argv[2])
    args = [data[k] for k in ("x", "y", "W1", "W2")]
    loss, g1, g2 = module.loss_and_grads(*args)
    probs, pred = module.predict(args[0], args[2], args[3])
    try:
        import sympy  # noqa: F401
        blocked = False
    except ImportError:
        blocked = True
    print(json.dumps({
        "loss": float(loss), "W1_grad": g1.tolist(), "W2_grad": g2.tolist(),
        "probs": probs.tolist(), "pred": pred.tolist(), "blocked": blocked,
        "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("sympy", "symdl",
                                                                       "codegen")
                         and sys.modules[m] is not None),
    }))
    """
)


def test_generated_module_runs_without_sympy_and_symdl(tmp_path: Path) -> None:
    path = tmp_path / "mlp_gen.py"
    path.write_text(sd.generate(mlp_functions(), "mlp"))
    values = mlp_values()
    np.savez(tmp_path / "data.npz", **dict(zip(("x", "y", "W1", "W2"), values, strict=True)))
    done = subprocess.run(
        [sys.executable, "-c", RUN_BLOCKED, str(path), str(tmp_path / "data.npz")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["blocked"] and got["loaded"] == []
    expected = mlp_reference(*values)
    for key in ("loss", "W1_grad", "W2_grad", "probs"):
        assert_close(got[key], expected[key], rtol=1e-10, atol=1e-12, what=key)
    assert got["pred"] == expected["pred"].tolist()


def test_compiled_module_matches_handwritten_numpy(symdl_cache: Path) -> None:
    module = compile_functions(mlp_functions(), symdl_cache, "mlp")
    values = mlp_values(1)
    expected = mlp_reference(*values)
    loss, g1, g2 = module.loss_and_grads(*values)
    probs, pred = module.predict(values[0], values[2], values[3])
    for got, key in ((loss, "loss"), (g1, "W1_grad"), (g2, "W2_grad"), (probs, "probs")):
        assert_close(got, expected[key], rtol=1e-10, atol=1e-12, what=key)
    assert pred.tolist() == expected["pred"].tolist()


# --------------------------------------------------------------------------- determinism

GENERATE = textwrap.dedent(
    """
    import runpy, sys
    import symdl as sd
    model = runpy.run_path(sys.argv[1])
    sys.stdout.write(sd.generate(model["functions"], "logreg"))
    """
)


def _generate_in_subprocess(model: Path, seed: str) -> bytes:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", GENERATE, str(model)], capture_output=True, env=env, timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.mark.parametrize("which", ["softmax_regression", "example"])
def test_generation_is_identical_across_processes_and_hash_seeds(
    which: str, logreg_file: Path
) -> None:
    model = logreg_file if which == "softmax_regression" else EXAMPLE
    first = _generate_in_subprocess(model, "1")
    second = _generate_in_subprocess(model, "2")
    assert b"def " in first and b"import numpy as np" in first
    assert first == second


def test_generation_is_identical_within_a_process() -> None:
    assert sd.generate(mlp_functions(), "mlp") == sd.generate(mlp_functions(), "mlp")


# --------------------------------------------------------------------------- argument checks


@pytest.fixture(scope="module")
def logreg_module(logreg_file: Path, symdl_cache: Path):  # type: ignore[no-untyped-def]
    return sd.compile(_load(logreg_file)["functions"], "logreg", cache_dir=symdl_cache)


def _logreg_args(n: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((n, 784), np.float32), np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)],
            rng.standard_normal((784, 10)).astype(np.float32) * 0.01, np.zeros(10, np.float32)]


def test_logreg_matches_the_textbook_gradient(logreg_module) -> None:  # type: ignore[no-untyped-def]
    x, y, W, b = _logreg_args()
    loss, W_grad, b_grad = logreg_module.loss_and_grads(x, y, W, b)
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    p = _softmax(x64 @ W64 + b)
    assert loss.dtype == np.float32 and W_grad.dtype == np.float32
    assert_close(loss, -np.mean(np.sum(y * np.log(p), axis=1)), rtol=1e-5, atol=1e-6, what="loss")
    assert_close(W_grad, x64.T @ (p - y) / len(x), rtol=1e-4, atol=1e-6, what="W_grad")
    assert_close(b_grad, (p - y).mean(0), rtol=1e-4, atol=1e-6, what="b_grad")


@pytest.mark.parametrize(
    "position, bad, pattern",
    [
        (0, np.zeros((5, 783), np.float32), r"'x'.*\(N, 784\).*\(5, 783\)"),
        (0, np.zeros((5, 784), np.float64), r"'x'.*float32.*float64"),
        (0, np.zeros(784, np.float32), r"'x'.*\(N, 784\).*\(784,\)"),
        (0, [[0.0] * 784] * 5, r"'x'.*got a list"),
        (1, np.zeros((4, 10), np.float32), r"'y'.*\(N, 10\).*N = 5.*\(4, 10\)"),
        (2, np.zeros((10, 784), np.float32), r"'W'.*\(784, 10\).*\(10, 784\)"),
        (3, np.zeros((1, 10), np.float32), r"'b'.*\(10,\).*\(1, 10\)"),
    ],
    ids=["x_shape", "x_dtype", "x_rank", "x_list", "y_batch", "W_shape", "b_rank"],
)
def test_wrong_argument_raises_value_error_naming_it(
    logreg_module, position: int, bad: object, pattern: str  # type: ignore[no-untyped-def]
) -> None:
    args: list[object] = list(_logreg_args())
    args[position] = bad
    with pytest.raises(ValueError, match=pattern):
        logreg_module.loss_and_grads(*args)


def test_updates_write_in_place_and_scalars_accept_python_floats(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), "float64")
    t = sd.placeholder("t", (None,), "float64")
    w = sd.parameter("w", (3,), "float64")
    lr = sd.placeholder("lr", (), "float64")
    loss = sd.mean(sd.square(x @ w - t))
    step = {"sgd_step": ([x, t, w, lr], [], {w: w - lr * sd.grad(loss, w)}),
            "sgd_step_loss": ([x, t, w, lr], loss, {w: w - lr * sd.grad(loss, w)})}
    module = compile_functions(step, symdl_cache, "sgd")
    rng = np.random.default_rng(7)
    xv, tv, wv = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)
    expected = wv - 0.1 * 2 * xv.T @ (xv @ wv - tv) / 5
    buffer = wv.copy()
    assert module.sgd_step(xv, tv, buffer, 0.1) is None
    assert_close(buffer, expected, rtol=1e-12, atol=1e-15, what="w after one step")
    buffer = wv.copy()
    before = module.sgd_step_loss(xv, tv, buffer, np.float64(0.1))
    assert before == pytest.approx(np.mean((xv @ wv - tv) ** 2), rel=1e-12)
    assert_close(buffer, expected, rtol=1e-12, atol=1e-15, what="w after step with loss")


def _sgd_step() -> dict[str, tuple]:
    """A float64 SGD step on ``w`` and a scalar ``shift``, with integer class ids ``k``."""
    x = sd.placeholder("x", (None, 3), "float64")
    k = sd.placeholder("k", (None,), "int64")
    w = sd.parameter("w", (3, 2), "float64")
    shift = sd.parameter("shift", (), "float64")
    lr = sd.placeholder("lr", (), "float64")
    loss = sd.mean(sd.softmax_cross_entropy(x @ w + shift, k)).named("loss")
    w_grad, shift_grad = sd.grad(loss, [w, shift])
    updates = {w: w - lr * w_grad, shift: shift - lr * shift_grad}
    return {"step": ([x, k, w, shift, lr], loss, updates)}


@pytest.fixture(scope="module")
def sgd_module(symdl_cache: Path):  # type: ignore[no-untyped-def]
    return compile_functions(_sgd_step(), symdl_cache, "sgd_checks")


def _sgd_args() -> list[object]:
    rng = np.random.default_rng(5)
    return [rng.standard_normal((4, 3)), rng.integers(0, 2, 4), rng.standard_normal((3, 2)),
            np.zeros(()), 0.1]


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def test_entry_checks_are_one_helper_call_per_argument() -> None:
    source = sd.generate(_sgd_step(), "sgd")
    func = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))
    calls = [n.func.id for n in ast.walk(func) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Name) and n.func.id.startswith("_check")]
    # ... then one call comparing the updated arrays' memory with every other argument's
    assert calls == ["_check_argument", "_check_argument", "_check_updated", "_check_updated",
                     "_check_argument", "_check_no_overlap"]
    assert not any(isinstance(n, ast.If) for n in ast.walk(func))
    assert "    N = x.shape[0]\n" in source
    assert "    k = _check_argument(" in source  # class ids of another integer dtype are cast


@pytest.mark.parametrize(
    "position, bad, pattern",
    [
        (1, np.zeros(4), r"'k'.*\(N,\), N = 4.*int64.*float64"),  # class ids must be integers
        (1, np.zeros(5, np.int64), r"'k'.*\(N,\), N = 4.*\(5,\)"),
        (2, np.zeros((3, 2)).T, r"'w'.*\(3, 2\).*\(2, 3\)"),
        (2, np.zeros((3, 2), np.float32), r"'w'.*float64.*float32"),
        (2, _read_only(np.zeros((3, 2))), r"'w'.*writable.*read-only array"),
        (3, 0.0, r"'shift'.*writable numpy array.*got a float"),  # its update has nowhere to go
        (3, np.float64(0.0), r"'shift'.*writable numpy array"),
        (4, "0.1", r"'lr'.*got a str"),
        (4, np.zeros(1), r"'lr'.*\(\).*\(1,\)"),
    ],
    ids=["k_float", "k_batch", "w_shape", "w_dtype", "w_read_only", "shift_number",
         "shift_numpy_scalar", "lr_str", "lr_rank"],
)
def test_bad_argument_raises_before_any_update(
    sgd_module, position: int, bad: object, pattern: str  # type: ignore[no-untyped-def]
) -> None:
    args = _sgd_args()
    args[position] = bad
    with pytest.raises(ValueError, match=pattern):
        sgd_module.step(*args)
    for i in (2, 3):  # the parameters passed correctly were not written
        if i != position:
            np.testing.assert_array_equal(args[i], _sgd_args()[i])


def test_argument_conversions_compute_the_same_step(sgd_module) -> None:  # type: ignore[no-untyped-def]
    """Any integer dtype for class ids; a Python int, float or numpy scalar for lr."""
    results = []
    for k_dtype, lr in [(np.int64, 0.1), (np.int32, np.float64(0.1)), (np.uint8, 0.1)]:
        x, k, w, shift, _ = _sgd_args()
        loss = sgd_module.step(x, k.astype(k_dtype), w, shift, lr)
        results.append((loss, w, shift))
    for loss, w, shift in results[1:]:
        assert loss == results[0][0]
        np.testing.assert_array_equal(w, results[0][1])
        np.testing.assert_array_equal(shift, results[0][2])
    x, k, w, shift, _ = _sgd_args()
    sgd_module.step(x, k, w, shift, 1)  # an int learning rate is converted to float64
    assert w.dtype == np.float64 and not np.array_equal(w, _sgd_args()[2])


def test_a_scalar_argument_takes_a_numpy_scalar(symdl_cache: Path) -> None:
    k = sd.placeholder("k", (), "int64")
    t = sd.placeholder("t", (), "float32")
    module = compile_functions({"f": ([k, t], [k * 2, t * 2.0])}, symdl_cache, "scalars")
    for kv, tv in [(np.int64(3), np.float32(1.5)), (np.array(3), np.array(1.5, np.float32)),
                   (np.int32(3), 1.5)]:
        doubled, twice = module.f(kv, tv)
        assert doubled == 6 and twice == np.float32(3.0) and twice.dtype == np.float32
    with pytest.raises(ValueError, match=r"'k'.*int64.*got a int"):
        module.f(3, 1.5)  # a Python number only where the argument is a float
    with pytest.raises(ValueError, match=r"'t'.*float32.*float64"):
        module.f(np.int64(3), np.array(1.5))


@pytest.mark.parametrize("size", ["N", "shape", "value", "dtype"])
def test_a_size_repeated_and_named_like_a_helper_parameter(size: str, symdl_cache: Path) -> None:
    a = sd.placeholder("a", (size, size), "float64")
    v = sd.placeholder("v", (size,), "float64")
    module = compile_functions({"f": ([a, v], a @ v)}, symdl_cache, f"square_{size}")
    np.testing.assert_allclose(module.f(np.eye(3) * 2, np.ones(3)), 2 * np.ones(3))
    with pytest.raises(ValueError, match=rf"'a'.*\({size}, {size}\).*\(3, 4\)"):
        module.f(np.zeros((3, 4)), np.ones(3))
    with pytest.raises(ValueError, match=rf"'v'.*\({size},\), {size} = 3.*\(4,\)"):
        module.f(np.eye(3), np.ones(4))


def test_outputs_depending_on_a_missing_input_are_refused() -> None:
    x = sd.placeholder("x", (3,), "float64")
    hidden = sd.parameter("hidden_w", (3,), "float64")
    with pytest.raises(CodegenError, match="hidden_w"):
        sd.generate({"f": ([x], x * hidden)}, "m")


# --------------------------------------------------------------------------- views


def test_a_view_used_once_prints_inline(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), "float64")
    a = sd.placeholder("a", (None, 2), "float64")
    w = sd.parameter("w", (3, 2), "float64")
    once = x.T @ a  # (3, 2)
    fused = sd.exp(w.T) * 3.0 + w.T  # one fused statement uses w.T: inline wherever it appears
    both = sd.sum(x[:, :2] * a, axis=0)  # an index view, used once
    functions = {"f": ([x, a, w], [once, fused @ once, both])}
    source = sd.generate(functions, "views")
    assert "x.T @ a" in source and "x_T = " not in source
    assert "x[:, 0:2] * a" in source and "np.exp(w.T)" in source, source
    module = compile_functions(functions, symdl_cache, "views")
    rng = np.random.default_rng(2)
    xv, av, wv = (rng.standard_normal(shape) for shape in [(5, 3), (5, 2), (3, 2)])
    got = module.f(xv, av, wv)
    np.testing.assert_allclose(got[0], xv.T @ av, rtol=1e-13)
    np.testing.assert_allclose(got[1], (np.exp(wv.T) * 3.0 + wv.T) @ (xv.T @ av), rtol=1e-13)
    np.testing.assert_allclose(got[2], (xv[:, :2] * av).sum(0), rtol=1e-13)


def test_a_view_used_by_two_statements_keeps_its_line(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4, 3), "float64")
    p = sd.placeholder("p", (4, 2), "float64")
    q = sd.placeholder("q", (4, 5), "float64")
    functions = {"f": ([x, p, q], [x.T @ p, x.T @ q])}
    source = sd.generate(functions, "shared_view")
    assert "    x_T = x.T\n" in source and source.count("x_T @ ") == 2, source
    module = compile_functions(functions, symdl_cache, "shared_view")
    rng = np.random.default_rng(4)
    xv, pv, qv = (rng.standard_normal(shape) for shape in [(4, 3), (4, 2), (4, 5)])
    got = module.f(xv, pv, qv)
    np.testing.assert_allclose(got[0], xv.T @ pv, rtol=1e-13)
    np.testing.assert_allclose(got[1], xv.T @ qv, rtol=1e-13)


# --------------------------------------------------------------------------- the text dump

SHOW = textwrap.dedent(
    """
    import runpy, sys
    import symdl as sd
    model = runpy.run_path(sys.argv[1])
    sys.stdout.write(sd.show(model["loss"], model["W_grad"]))
    """
)


def test_show_is_stable_across_processes_and_names_ops_and_shapes(logreg_file: Path) -> None:
    texts = []
    for seed in ("3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", SHOW, str(logreg_file)], capture_output=True, text=True,
            env={**os.environ, "PYTHONHASHSEED": seed}, timeout=120, cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr
        texts.append(done.stdout)
    assert texts[0] == texts[1]
    text = texts[0]
    for fragment in ("placeholder", "parameter", "matmul", "softmax_cross_entropy", "(N, 784)",
                     "(784, 10)", "(N, 10)", "float32", "%logits"):
        assert fragment in text, fragment


def test_show_of_equal_builds_is_equal_and_str_is_show() -> None:
    def build() -> sd.Expr:
        a = sd.placeholder("a", (None, 3), "float64")
        return sd.sum(sd.exp(a) * 2.0, axis=1)

    first, second = build(), build()
    assert sd.show(first) == sd.show(second) == str(first)
    assert "exp(%a)" in sd.show(first) and "(N,) float64" in sd.show(first)


def test_a_symbolic_size_no_input_has_is_refused_at_generation() -> None:
    """Regression: this used to generate code that failed with NameError when called."""
    a = sd.placeholder("a", (3,), "float64")
    with pytest.raises(CodegenError, match=r"'M'.*zeros.*\(M,\)"):
        sd.generate({"f": ([a], sd.zeros(("M",), "float64") + sd.sum(a))}, "m")
    x = sd.placeholder("x", ("M", 3), "float64")
    assert "def f(" in sd.generate({"f": ([x], sd.zeros(("M",), "float64") + sd.sum(x))}, "m")


EARLIER_BUILD = textwrap.dedent(
    """
    import runpy, sys
    import symdl as sd
    if sys.argv[2] == "build-first":
        # The same logits with the fused loss: generating it builds softmax(logits) first.
        x = sd.placeholder("x", (None, 784)); y = sd.placeholder("y", (None, 10))
        W = sd.parameter("W", (784, 10)); b = sd.parameter("b", (10,))
        loss = sd.mean(sd.softmax_cross_entropy((x @ W + b).named("logits"), y)).named("loss")
        grads = sd.grad(loss, [W, b])  # kept alive: the side tables hold nodes weakly
        sd.generate({"f": ([x, y, W, b], [loss, *grads])}, "earlier")
    model = runpy.run_path(sys.argv[1])
    sys.stdout.write(sd.generate(model["functions"], "logreg"))
    """
)


def test_generation_does_not_depend_on_earlier_builds() -> None:
    """Regression: provenance was recorded by the first grad that built a shared node, so the
    comments (and statement order) of one model's code depended on models built before it."""
    texts = []
    for mode in ("fresh", "build-first"):
        done = subprocess.run(
            [sys.executable, "-c", EARLIER_BUILD, str(EXAMPLE), mode], capture_output=True,
            timeout=120, cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr.decode()
        texts.append(done.stdout)
    assert texts[0] == texts[1]
