"""Elementwise fusion: chains become one statement with a sympy body, simplified within its
budget, with `sympy.cse` inside; large arrays stay in place; values never change.

References are hand-written numpy; statements and operations are counted in the generated
source with `ast`.
"""

from __future__ import annotations

import ast

import numpy as np
import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

import symdl as sd
from codegen import fuse
from codegen.checks import is_entry_check
from codegen.fuse import SIMPLIFY_MAX_OPS, FusionLog, _safe_simplify, simplify_body
from codegen.pipeline import Logs, Options, Program, run
from codegen.printer import scalar_literal
from codegen.report import count_operations, report
from codegen.schedule import plan_buffers
from symdl.provenance import annotate

RNG = np.random.default_rng(11)


def _statements(source: str, function: str) -> list[str]:
    """The statements of ``function`` after its docstring and entry checks, as text."""
    tree = ast.parse(source)
    func = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)
    body = [s for s in func.body[1:] if not isinstance(s, ast.Return) and not is_entry_check(s)]
    return [ast.unparse(s) for s in body]


def _operations(statement: str) -> int:
    return sum(count_operations(f"def f():\n    {statement}\n", "f").values())


def test_scalar_chain_is_one_statement(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lr = sd.placeholder("lr", (), "float64")
    t = sd.placeholder("t", (), "float64")
    step_size = lr * sd.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
    functions = {"f": ([lr, t], [step_size])}
    statements = _statements(sd.generate(functions, "m"), "f")
    assert len(statements) == 1, statements
    mod = sd.compile(functions, "scalar_chain", cache_dir=tmp_path)
    got = mod.f(np.float64(0.01), np.float64(3.0))[0]
    assert got == pytest.approx(0.01 * np.sqrt(1 - 0.999**3) / (1 - 0.9**3), rel=1e-15)


def test_cse_inside_a_body_computes_exp_once(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # sympy differentiates log(1 + exp(z)) to exp(z) / (exp(z) + 1): exp appears twice.
    softplus = sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus_sympy")
    x = sd.placeholder("x", (4, 3), "float64")
    y = sd.placeholder("y", (4, 3), "float64")
    loss = sd.sum(softplus(x) * y)
    functions = {"grad": ([x, y], [sd.grad(loss, x)])}
    source = sd.generate(functions, "m")
    assert count_operations(source, "grad")["np.exp"] == 1, source
    assert any(s.startswith("exp_x = np.exp(x)") for s in _statements(source, "grad"))
    mod = sd.compile(functions, "cse_body", cache_dir=tmp_path)
    xv, yv = RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    np.testing.assert_allclose(mod.grad(xv, yv)[0], yv / (1 + np.exp(-xv)), rtol=1e-14)


def test_sympy_shortens_a_small_body(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x, y, z = (sd.placeholder(n, (4, 3), "float64") for n in "xyz")
    functions = {"f": ([x, y, z], [x * y + x * z])}
    # Factoring what the user wrote is fast math: inf * 0 + inf * 1 is NaN, inf * (0 + 1) is
    # not. By default the body stays as written (tests/test_ieee.py).
    source = sd.generate(functions, "m", fast_math=True)
    assert sum(count_operations(source, "f").values()) == 2, source  # x * (y + z)
    assert sum(count_operations(sd.generate(functions, "m"), "f").values()) == 3
    mod = sd.compile(functions, "factor", cache_dir=tmp_path, fast_math=True)
    a, b, c = (RNG.normal(size=(4, 3)) for _ in range(3))
    np.testing.assert_allclose(mod.f(a, b, c)[0], a * b + a * c, rtol=1e-13)


def test_large_arrays_stay_statements_written_in_place(tmp_path) -> None:  # type: ignore[no-untyped-def]
    def build(shape: tuple[int, int]) -> dict:
        m = sd.placeholder("m", shape)
        g = sd.placeholder("g", shape)
        return {"f": ([m, g], [sd.sqrt(0.9 * m + 0.1 * sd.square(g)) + 1.0])}

    small = _statements(sd.generate(build((8, 16)), "m"), "f")
    assert len(small) == 1, small
    large = _statements(sd.generate(build((784, 256)), "m"), "f")
    # Nothing fused (each statement one operation), and all but the two temporaries that
    # the caller's read-only m and g force are written into dead arrays.
    assert len(large) == 6, large
    assert all(_operations(statement) == 1 for statement in large)
    assert sum("out=" in s for s in large) == 4, large
    mod = sd.compile(build((784, 256)), "large", cache_dir=tmp_path)
    m = RNG.random((784, 256), dtype=np.float32)
    g = RNG.random((784, 256), dtype=np.float32)
    expected = np.sqrt(np.float32(0.9) * m + np.float32(0.1) * g**2) + np.float32(1)
    np.testing.assert_allclose(mod.f(m, g)[0], expected, rtol=1e-6)


def test_tanh_gradient_stays_stable() -> None:
    # 1 - tanh(x)**2 is also 1/cosh(x)**2, which overflows for |x| > 710; fusion keeps tanh.
    x = sd.placeholder("x", (5,), "float64")
    functions = {"f": ([x], [sd.grad(sd.sum(sd.tanh(x)), x)])}
    source = sd.generate(functions, "m")
    assert "cosh" not in source and count_operations(source, "f")["np.tanh"] == 1
    namespace: dict = {}
    exec(compile(source, "m", "exec"), namespace)  # noqa: S102 - our own generated code
    with np.errstate(all="raise"):
        got = namespace["f"](np.array([-1000.0, -3.0, 0.0, 2.0, 1000.0]))[0]
    np.testing.assert_allclose(got, [0.0, 1 - np.tanh(3.0) ** 2, 1.0, 1 - np.tanh(2.0) ** 2, 0.0])


def test_simplification_that_brings_a_new_function_is_refused(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a = sympy.Symbol("a0", real=True)
    body = 1 - sympy.tanh(a) ** 2
    monkeypatch.setattr(fuse, "_shorten", lambda body: 1 / sympy.cosh(a) ** 2)
    _safe_simplify.cache_clear()
    try:
        assert _safe_simplify(body) == body
    finally:
        _safe_simplify.cache_clear()


def test_simplification_budget_is_counted_in_operations() -> None:
    a, b, c = sympy.symbols("a0 a1 a2", real=True)
    small = a * b + a * c  # 3 operations; sympy factors it
    log = FusionLog()
    assert simplify_body(small, log) == a * (b + c) and log.simplified == 1
    spent = FusionLog(budget_left=2)
    assert simplify_body(small, spent) == small and spent.over_budget == 1
    large = sum((a * b + a * c) ** k for k in range(2, 9))
    assert sympy.count_ops(large) > SIMPLIFY_MAX_OPS
    log = FusionLog()
    assert simplify_body(large, log) is large and log.over_budget == 1


def test_adam_step_reuses_one_scratch_array_per_large_parameter() -> None:
    # Fresh large arrays cost page faults on every call; hand-written Adam uses the gradient
    # and one scratch buffer. The generated step may allocate just as many per parameter.
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = sd.layers.mlp(x, [256, 10], activation=sd.relu, name="dense")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y))
    spec = sd.optim.Adam().step_function(loss, params, [x, y]).functions["train_step"]
    inputs, outputs, updates = spec[0], spec[1], spec[2]
    bare, notes = annotate([*outputs, *updates.values()])
    program = run(Program(tuple(bare), notes, tuple(updates)), Options())
    order, plan = program.order, program.reuse
    assert plan == plan_buffers(list(order), list(program.results), program.updates)
    fresh = [n for n in order if n.shape == (784, 256) and not n.is_leaf and n not in plan
             and n.op.name not in ("transpose", "reshape")]
    assert len(fresh) <= 2, [n.op.name for n in fresh]  # the gradient and one scratch array
    assert inputs  # the spec is the train step's


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_float32_literals_are_shortest_and_exact(value: float) -> None:
    text = scalar_literal(value, "float32")
    with np.errstate(over="ignore"):
        assert np.float32(float(text)) == np.float32(value)
    assert len(text) <= len(repr(value))


def test_report_shows_each_stage(capsys, tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None, 10))
    W, b = sd.parameter("W", (784, 10)), sd.parameter("b", (10,))
    logits = x @ W + b
    loss = sd.mean(-sd.sum(y * sd.log(sd.softmax(logits, axis=1)), axis=1))
    functions = {"loss_and_grads": ([x, y, W, b], [loss, *sd.grad(loss, [W, b])])}
    result = report(functions, "logreg")
    stages = {s.stage: s for s in result.stages}
    assert list(stages) == [
        "raw derivative, no CSE (every use recomputed)", "raw derivative", "rewrites",
        "fusion (sympy bodies, cse)", "in-place (final)",
    ]
    ops = [s.operations for s in result.stages]
    assert ops[0] > ops[1] >= ops[2] >= ops[3]  # sharing, rewrites and fusion each help
    assert stages["fusion (sympy bodies, cse)"].lines < stages["rewrites"].lines
    assert "log_of_softmax" in result.rewrites.summary()
    assert result.fusion.fused >= 1
    sd.compile(functions, "logreg_report", cache_dir=tmp_path, report=True)
    err = capsys.readouterr().err
    assert "| loss_and_grads | fusion (sympy bodies, cse) |" in err and "rewrites fired" in err


def test_read_the_gradient_example(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import runpy
    from pathlib import Path

    example = Path(__file__).parent.parent / "examples" / "read_the_gradient.py"
    names = runpy.run_path(str(example), run_name="example")
    out = capsys.readouterr().out
    gradient_part = out.split("# step", 1)[1].split("| function |")[0]
    assert gradient_part.count("np.exp(") == 1, out  # cse: exp(-z) once for the derivative
    assert "| loss_and_grads | fusion (sympy bodies, cse) |" in out
    mod = sd.compile(names["functions"], "swish_check", cache_dir=tmp_path)
    x = RNG.normal(size=(6, 20)).astype(np.float32)
    y = RNG.normal(size=(6, 3)).astype(np.float32)
    W = (RNG.normal(size=(20, 3)) * 0.3).astype(np.float32)
    b = RNG.normal(size=3).astype(np.float32)
    loss, W_grad, b_grad = mod.loss_and_grads(x, y, W, b)
    # Hand-written float64: swish'(z) = s + z * s * (1 - s) with s = sigmoid(z).
    z = x.astype(np.float64) @ W + b
    s = 1 / (1 + np.exp(-z))
    z_bar = 2 * (z * s - y) / len(x) * (s + z * s * (1 - s))
    assert loss == pytest.approx(np.mean(np.sum((z * s - y) ** 2, axis=1)), rel=1e-5)
    np.testing.assert_allclose(W_grad, x.T.astype(np.float64) @ z_bar, rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(b_grad, z_bar.sum(axis=0), rtol=2e-4, atol=1e-5)


def test_three_way_maximum_written_into_a_dead_array(tmp_path) -> None:  # type: ignore[no-untyped-def]
    a = sd.placeholder("a", (4, 5), "float64")
    b = sd.placeholder("b", (5, 3), "float64")
    c = sd.placeholder("c", (4, 3), "float64")
    d = sd.placeholder("d", (4, 3), "float64")
    functions = {"f": ([a, b, c, d], [sd.maximum(sd.maximum(a @ b, c), d)])}
    statements = _statements(sd.generate(functions, "m"), "f")
    assert len(statements) == 2 and "out=" in statements[1], statements
    mod = sd.compile(functions, "max3", cache_dir=tmp_path)
    av, bv, cv, dv = (RNG.normal(size=s) for s in [(4, 5), (5, 3), (4, 3), (4, 3)])
    np.testing.assert_array_equal(mod.f(av, bv, cv, dv)[0], np.maximum(np.maximum(av @ bv, cv), dv))


# erf was refused here too until issue 13 made it an op: a body calling sympy.erf now prints as
# scipy.special.erf (test below); gamma has no op, so it is still refused.
@pytest.mark.parametrize("fn", [sympy.gamma], ids=["gamma"])
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "alone"])
def test_body_numpy_cannot_compute_is_refused_at_generation(fn, fused) -> None:  # type: ignore[no-untyped-def]
    # sympy would print math.gamma(x), which fails on arrays only when the module is called.
    from symdl.errors import CodegenError

    x = sd.placeholder("x", (3,), "float64")
    f = sd.elementwise(lambda z: fn(z), name="special")
    out = f(x) * 2.0 + 1.0 if fused else f(x)
    with pytest.raises(CodegenError, match=r"math\.(erf|gamma).*numpy does not have"):
        sd.generate({"f": ([x], [out])}, "m")


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "alone"])
def test_body_calling_erf_prints_through_scipy_special(fused, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import scipy.special

    x = sd.placeholder("x", (3,), "float64")
    f = sd.elementwise(lambda z: sympy.erf(z), name="special")
    out = f(x) * 2.0 + 1.0 if fused else f(x)
    source = sd.generate({"f": ([x], [out])}, "m")
    assert "scipy.special.erf(x)" in source and "math." not in source
    mod = sd.compile({"f": ([x], [out])}, "erf_body", cache_dir=tmp_path)
    v = np.array([-1.0, 0.25, 3.0])
    expected = scipy.special.erf(v) * 2.0 + 1.0 if fused else scipy.special.erf(v)
    np.testing.assert_allclose(mod.f(v)[0], expected, rtol=1e-15)


def test_a_long_chain_splits_into_statements_of_bounded_size(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from codegen.fuse import MAX_FUSED_OPS

    x = sd.placeholder("x", (3,), "float64")
    y = x
    for _ in range(1000):  # 2000 ops: deeper than Python's recursion limit
        y = y * 0.999 + 0.001
    functions = {"f": ([x], [y])}
    statements = _statements(sd.generate(functions, "m"), "f")
    assert max(map(_operations, statements)) <= MAX_FUSED_OPS
    assert len(statements) >= 2000 // MAX_FUSED_OPS
    v = np.array([1.0, 2.0, 3.0])
    expected = v.copy()
    for _ in range(1000):
        expected = expected * 0.999 + 0.001
    mod = sd.compile(functions, "long_chain", cache_dir=tmp_path)
    np.testing.assert_allclose(mod.f(v)[0], expected, rtol=1e-12)


def test_float32_literals_print_short_and_compute_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    m = sd.placeholder("m", (784, 256))  # large: the multiply stays its own statement
    g = sd.placeholder("g", (4,))  # small: fused into one expression
    beta = 0.9
    functions = {"f": ([m, g], [m * (1.0 - beta), g * (1.0 - beta) + 0.001])}
    source = sd.generate(functions, "m")
    assert "0.09999999999999998" not in source and "0.1" in source, source
    mod = sd.compile(functions, "literals", cache_dir=tmp_path)
    mv = RNG.random((784, 256), dtype=np.float32)
    gv = RNG.random(4, dtype=np.float32)
    got_m, got_g = mod.f(mv, gv)
    np.testing.assert_array_equal(got_m, mv * (1.0 - beta))  # numpy casts the literal: bitwise
    np.testing.assert_array_equal(got_g, gv * (1.0 - beta) + 0.001)


@pytest.mark.parametrize("simplify", [True, False])
def test_a_body_sympy_cancels_an_input_from_keeps_the_statement_shape(
    tmp_path, simplify: bool  # type: ignore[no-untyped-def]
) -> None:
    # sympy reads (a + b) - b as a: the body no longer mentions b, which set the shape (3, 4),
    # nor y, which made the statement float64. Cancelling inputs the user wrote is fast math
    # (b = inf gives NaN in numpy); tests/test_ieee.py checks the default keeps them.
    a = sd.placeholder("a", (4,), "float32")
    b = sd.placeholder("b", (3, 4), "float32")
    y = sd.placeholder("y", (3, 1), "float64")
    functions = {"f": ([a, b, y], [sd.exp((a + b) - b) * 2.0, sd.exp(a * y / y + a)])}
    logs = Logs()
    bare, notes = annotate(functions["f"][1])
    run(Program(tuple(bare), notes), Options(fast_math=True), logs)
    assert logs.fusion.fused == 2, logs.fusion
    mod = sd.compile(functions, "cancelled", cache_dir=tmp_path, simplify=simplify,
                     fast_math=True)
    av = RNG.normal(size=4).astype(np.float32)
    bv = RNG.normal(size=(3, 4)).astype(np.float32)
    yv = RNG.uniform(1, 2, size=(3, 1))
    first, second = mod.f(av, bv, yv)
    assert first.shape == (3, 4) and first.dtype == np.float32
    np.testing.assert_allclose(first, np.broadcast_to(2 * np.exp(av), (3, 4)), rtol=1e-6)
    assert second.shape == (3, 4) and second.dtype == np.float64
    expected = np.exp(2.0 * av.astype(np.float64))  # in float64, as the unfused ops compute
    np.testing.assert_allclose(second, np.broadcast_to(expected, (3, 4)), rtol=1e-14)
