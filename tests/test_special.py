"""Special functions (erf, lgamma, ...) and the new elementwise ops: what the generated module
imports, its header, exact GELU written both ways, and the gradients of clip, stop_gradient and
the step functions, against scipy, hand-written numpy and finite differences."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import sympy

import symdl as sd
from symdl.errors import DTypeError, ShapeError
from symdl.ir import toposort
from symdl.simplify import simplify
from tests.helpers import check_grads, compile_functions


def _imports(source: str) -> list[str]:
    """The modules a generated module imports, in order."""
    tree = ast.parse(source)
    return [alias.name for node in tree.body if isinstance(node, ast.Import)
            for alias in node.names]


def _docstring(source: str) -> str:
    return ast.get_docstring(ast.parse(source)) or ""


GELU = sd.elementwise(lambda z: z * (1 + sympy.erf(z / sympy.sqrt(2))) / 2, name="gelu")


def _gelu_reference(x: np.ndarray) -> np.ndarray:
    return x * (1 + scipy.special.erf(x / np.sqrt(2))) / 2


# --------------------------------------------------------------------------- imports, header


def test_a_module_without_special_functions_imports_numpy_only() -> None:
    x = sd.placeholder("x", (3, 4), "float64")
    y = sd.tanh(x) * 2 + sd.log2(sd.exp(x))
    source = sd.generate({"f": ([x], [y, sd.grad(sd.sum(y), x)])}, "plain")
    assert _imports(source) == ["numpy"]
    assert "scipy" not in source


@pytest.mark.parametrize("build, named", [
    (lambda x: sd.erf(x), "erf"),
    (lambda x: x * (1 + sd.erf(x / 2**0.5)) / 2, "erf"),  # fused into a larger statement
    (GELU, "erf"),  # a sympy body calling sympy.erf
    (lambda x: sd.lgamma(x + 1), "lgamma"),
])
def test_a_module_using_a_special_function_imports_scipy_special(build, named: str) -> None:
    x = sd.placeholder("x", (3, 4), "float64")
    source = sd.generate({"f": ([x], build(x))}, "special")
    assert _imports(source) == ["numpy", "scipy.special"]
    assert f"Needs scipy.special (for {named}, which numpy lacks), besides numpy." in (
        _docstring(source)
    )
    body = source[source.index("def f"):source.index("def _check_argument")]
    assert "scipy.special." in body and "math." not in body


def test_a_gradient_alone_can_need_scipy() -> None:
    # lgamma's derivative is digamma: a function returning only the gradient calls psi.
    x = sd.placeholder("x", (3,), "float64")
    source = sd.generate({"g": ([x], sd.grad(sd.sum(sd.lgamma(x)), x))}, "grad_only")
    assert _imports(source) == ["numpy", "scipy.special"]
    assert "scipy.special.psi(x)" in source
    assert "gammaln" not in source  # the forward value is not computed


def test_a_value_named_scipy_does_not_shadow_the_module(symdl_cache: Path) -> None:
    x = sd.placeholder("scipy", (3,), "float64")
    module = compile_functions({"f": ([x], sd.erf(x))}, symdl_cache, "shadow")
    values = np.array([-1.0, 0.0, 0.5])
    np.testing.assert_allclose(module.f(values), scipy.special.erf(values), rtol=1e-15)


RUN_WITHOUT_SYMDL = """
import importlib.util, sys
sys.modules["sympy"] = sys.modules["symdl"] = sys.modules["codegen"] = None  # ImportError
import numpy as np
spec = importlib.util.spec_from_file_location("gelu_generated", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(repr(module.f(np.array([-1.0, 0.0, 2.0])).tolist()))
"""


def test_a_module_using_erf_runs_with_numpy_and_scipy_only(tmp_path: Path) -> None:
    x = sd.placeholder("x", (3,), "float64")
    path = tmp_path / "gelu_generated.py"
    path.write_text(sd.generate({"f": ([x], GELU(x))}, "gelu_generated"))
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_SYMDL, str(path)],
                          capture_output=True, text=True, timeout=120, check=True)
    got = np.array(ast.literal_eval(done.stdout.strip()))
    np.testing.assert_allclose(got, _gelu_reference(np.array([-1.0, 0.0, 2.0])), rtol=1e-15)


# --------------------------------------------------------------------------- exact GELU


GELU_BUILDS = {
    "ops": lambda x: x * (1 + sd.erf(x / 2**0.5)) / 2,
    "elementwise": GELU,
}


@pytest.mark.parametrize("how", GELU_BUILDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gelu_values(how: str, dtype: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (5, 4), dtype)
    y = GELU_BUILDS[how](x)
    assert y.dtype == dtype
    module = compile_functions({"f": ([x], y)}, symdl_cache, f"gelu_{how}")
    values = np.linspace(-6, 6, 20).reshape(5, 4).astype(dtype)
    got = module.f(values)
    assert got.dtype == np.dtype(dtype)
    tol = 1e-14 if dtype == "float64" else 2e-6
    np.testing.assert_allclose(got, _gelu_reference(values.astype(np.float64)), rtol=tol,
                               atol=tol)


@pytest.mark.parametrize("how", GELU_BUILDS)
def test_gelu_gradient(how: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (5, 4), "float64")
    values = [np.linspace(-4, 4, 20).reshape(5, 4)]
    check_grads(_gelu_reference, [x], GELU_BUILDS[how](x), values, cache_dir=symdl_cache)
    # And the derivative itself, written out: Phi(x) + x phi(x).
    module = compile_functions({"g": ([x], sd.grad(sd.sum(GELU_BUILDS[how](x)), x))},
                               symdl_cache, f"gelu_grad_{how}")
    v = values[0]
    expected = (1 + scipy.special.erf(v / np.sqrt(2))) / 2 + v * np.exp(-v * v / 2) / np.sqrt(
        2 * np.pi
    )
    np.testing.assert_allclose(module.g(v), expected, rtol=1e-13, atol=1e-15)


# --------------------------------------------------------------------------- special functions


def test_second_derivative_of_lgamma_is_trigamma(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4,), "float64")
    v = sd.placeholder("v", (4,), "float64")
    hvp = sd.hvp(sd.sum(sd.lgamma(x)), x, v)
    module = compile_functions({"h": ([x, v], hvp)}, symdl_cache, "trigamma")
    xs, vs = np.array([0.5, 1.0, 2.5, 10.0]), np.array([1.0, -2.0, 0.5, 3.0])
    np.testing.assert_allclose(module.h(xs, vs), scipy.special.polygamma(1, xs) * vs,
                               rtol=1e-13)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_polygamma_keeps_float32(n: int, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4,), "float32")
    module = compile_functions({"f": ([x], sd.polygamma(n, x))}, symdl_cache, f"polygamma{n}")
    xs = np.array([0.5, 1.0, 2.5, 10.0], np.float32)
    got = module.f(xs)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, scipy.special.polygamma(n, xs.astype(np.float64)),
                               rtol=1e-5)


def test_erfc_is_accurate_where_erf_is_one(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (3,), "float64")
    module = compile_functions({"f": ([x], sd.erfc(x))}, symdl_cache, "erfc_tail")
    xs = np.array([5.0, 10.0, 20.0])
    got = module.f(xs)
    assert np.all(got > 0)  # 1 - erf(x) is exactly 0 here
    np.testing.assert_allclose(got, scipy.special.erfc(xs), rtol=1e-14)


def test_special_functions_refuse_bad_input() -> None:
    k = sd.placeholder("k", (3,), "int64")
    with pytest.raises(DTypeError, match="erf"):
        sd.erf(k)
    with pytest.raises(ShapeError, match="polygamma"):
        sd.polygamma(-1, sd.placeholder("x", (3,)))
    with pytest.raises(ShapeError, match="polygamma"):
        sd.polygamma(1.5, sd.placeholder("x", (3,)))  # type: ignore[arg-type]


def test_special_functions_fold_when_constant() -> None:
    folded = simplify(sd.erf(sd.constant(0.5)) + sd.placeholder("x", (), "float64"))
    constants = [n for n in toposort(folded) if n.op.name == "constant"]
    assert any(
        np.isclose(float(c.attr("value").array), scipy.special.erf(0.5)) for c in constants
    )


# --------------------------------------------------------------------------- clip


def test_clip_gradient_goes_to_x_on_the_closed_interval(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (7,), "float64")
    lo = sd.placeholder("lo", (7,), "float64")
    hi = sd.placeholder("hi", (7,), "float64")
    cot = sd.placeholder("c", (7,), "float64")
    y = sd.clip(x, lo, hi)
    grads = sd.grad(sd.sum(y * cot), [x, lo, hi])
    module = compile_functions({"f": ([x, lo, hi, cot], [y, *grads])}, symdl_cache, "clip")
    xs = np.array([-2.0, -1.0, -0.5, 0.0, 1.0, 2.0, 3.0])
    los = np.array([-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 4.0])  # last: lo > hi
    his = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0])
    c = np.arange(1.0, 8.0)
    value, gx, glo, ghi = module.f(xs, los, his, c)
    np.testing.assert_array_equal(value, np.clip(xs, los, his))
    inside = (los <= xs) & (xs <= his)  # ties at x == lo and x == hi included
    below = (xs < los) & (los <= his)
    np.testing.assert_array_equal(gx, np.where(inside, c, 0))
    np.testing.assert_array_equal(glo, np.where(below, c, 0))
    np.testing.assert_array_equal(ghi, np.where(inside | below, 0, c))
    assert gx[1] == c[1] and gx[4] == c[4]  # x == lo, x == hi: to x (torch.clamp's rule)


def test_clip_refuses_no_bounds_and_bools() -> None:
    x = sd.placeholder("x", (3,))
    with pytest.raises(ShapeError, match="clip"):
        sd.clip(x, None, None)
    with pytest.raises(DTypeError, match="clip"):
        sd.clip(x > 0, 0, 1)


def test_clip_prints_as_np_clip() -> None:
    x = sd.placeholder("x", (3,), "float64")
    source = sd.generate({"f": ([x], sd.clip(x, -1.0, 1.0))}, "clip_print")
    assert "np.clip(x, -1.0, 1.0)" in source


# --------------------------------------------------------------------------- stop_gradient


def test_stop_gradient_blocks_the_gradient_and_prints_as_the_value(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4,), "float64")
    y = sd.sum(sd.stop_gradient(x) * x)  # d/dx = x, not 2x
    # x - stop_gradient(x) is 0, but its gradient is 1: the op must survive simplification
    # until differentiation is done.
    z = sd.sum(x - sd.stop_gradient(x))
    outputs = [y, sd.grad(y, x), z, sd.grad(z, x)]
    source = sd.generate({"f": ([x], outputs)}, "stop")
    body = source[source.index("def f"):source.index("def _check_argument")]
    code = [line for line in body.splitlines() if not line.strip().startswith("#")]
    assert not any("stop_gradient" in line for line in code), body
    module = compile_functions({"f": ([x], outputs)}, symdl_cache, "stop")
    xs = np.array([1.0, -2.0, 3.0, 0.5])
    value, gy, zero, gz = module.f(xs)
    np.testing.assert_allclose(value, np.sum(xs * xs))
    np.testing.assert_array_equal(gy, xs)
    assert zero == 0.0
    np.testing.assert_array_equal(gz, np.ones(4))


def test_step_functions_have_zero_gradient(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4,), "float64")
    g = sd.grad(sd.sum(sd.floor(x) + sd.round(x) * 3), x)
    module = compile_functions({"g": ([x], g)}, symdl_cache, "steps")
    np.testing.assert_array_equal(module.g(np.array([0.3, 1.7, -2.2, 5.5])), np.zeros(4))


def test_isnan_and_logic(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (5,), "float64")
    safe = sd.where(sd.logical_or(sd.isnan(x), sd.logical_not(x > 0.0)), 0.0, x)
    module = compile_functions({"f": ([x], safe)}, symdl_cache, "logic")
    xs = np.array([np.nan, -1.0, 2.0, np.nan, 0.5])
    np.testing.assert_array_equal(module.f(xs), np.array([0.0, 0.0, 2.0, 0.0, 0.5]))
    k = sd.placeholder("k", (3,), "int64")  # as numpy: integers are never NaN
    ints = compile_functions({"f": ([k], sd.isnan(k))}, symdl_cache, "isnan_int")
    np.testing.assert_array_equal(ints.f(np.array([1, -2, 3])), np.zeros(3, bool))
