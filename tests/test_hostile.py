"""Hostile names and constants: nothing they smuggle in runs, and results stay right.

Every leaf name, label, module name and size name below is fed through `sd.compile`; the test
asserts that a sentinel file is never created, the generated source parses, no hostile text
appears outside comments and string literals, and the compiled values match numpy.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.errors import ConstantError, InvalidNameError, ShapeError

SENTINEL = "PWNED_SYMDL"

HOSTILE_NAMES = [
    "import os", f"__import__('os').system('touch {SENTINEL}')", "np", "numpy", "def", "class",
    "sum", "lambda", "print", "isinstance", "__class__", "__builtins__", "x; import os", "1abc",
    "a-b", "ünïcødé", "λ", "x" * 300, "it's", 'say "hi"', "back\\slash", "new\nline",
    f"x\nimport os; os.system('touch {SENTINEL}')", "tab\there", "\r\nopen('f','w')", "None",
    "True", "self", "_bad_argument", "N", "x\u2028y", "#comment", "'''", '"""', "{out}", "{0}",
    "_check_argument", "_check_updated", "_argument_error", "check_argument", "sizes", "shape",
    "_check_no_overlap", "_check_no_overlap_fully", "_cast_integers", "names", "updated", "read",
]
HOSTILE_FUNCTION_NAMES = [
    "import os", "def", "np", "_private", "__init__", "x y", "1f", "ünï", "f;g", "", 3, None,
    "_bad_argument", "_check_argument", "_check_updated", "_check_argument_fully",
    "_argument_error", "_check_no_overlap", "_check_no_overlap_fully", "_cast_integers",
]


def _code_tokens(source: str) -> list[str]:
    """Names and operators of the source, without comments and string literals."""
    skip = (tokenize.COMMENT, tokenize.STRING, tokenize.NL, tokenize.NEWLINE)
    return [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in skip and t.string]


def _assert_safe(source: str) -> None:
    ast.parse(source)
    tokens = _code_tokens(source)
    names = {t for t in tokens if t.isidentifier()}
    assert not names & {"os", "system", "__import__", "open", "eval", "exec", "PWNED_SYMDL"}
    assert "import" not in tokens[tokens.index("import") + 1 :]  # only `import numpy as np`
    for line in source.splitlines():
        assert "\u2028" not in line and "\r" not in line


@pytest.fixture
def sentinel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / SENTINEL


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_leaf_names_and_labels_compile_safely(
    name: str, sentinel: Path, symdl_cache: Path
) -> None:
    x = sd.placeholder(name, (None, 3), "float64")
    w = sd.parameter(name + "_w", (3,), "float64")
    hidden = sd.tanh(x * w).named(name)
    loss = sd.sum(hidden * hidden).named(name + " loss")
    functions = {"f": ([x, w], [loss, sd.grad(loss, w)])}
    source = sd.generate(functions, name="m")
    _assert_safe(source)
    mod = sd.compile(functions, name=name, cache_dir=symdl_cache)
    xv = np.arange(6.0).reshape(2, 3) / 7
    wv = np.array([0.5, -1.0, 2.0])
    got_loss, got_grad = mod.f(xv, wv)
    h = np.tanh(xv * wv)
    np.testing.assert_allclose(got_loss, np.sum(h * h), rtol=1e-12)
    np.testing.assert_allclose(got_grad, np.sum(2 * h * (1 - h * h) * xv, axis=0), rtol=1e-12)
    assert not sentinel.exists()
    with pytest.raises(ValueError, match="argument"):
        mod.f(xv.astype(np.float32), wv)


@pytest.mark.parametrize("name", HOSTILE_FUNCTION_NAMES, ids=range(len(HOSTILE_FUNCTION_NAMES)))
def test_hostile_function_names_are_refused(name: object) -> None:
    x = sd.placeholder("x", (3,), "float64")
    with pytest.raises(InvalidNameError, match="function name"):
        sd.generate({name: ([x], [sd.sum(x)])})  # type: ignore[dict-item]


@pytest.mark.parametrize("name", ["np", "print", "isinstance", "def", "_n", "a b", "x\ny", "ñ"])
def test_hostile_size_names_are_refused(name: str) -> None:
    with pytest.raises(ShapeError, match="symbolic size"):
        sd.placeholder("x", (name, 3))


@pytest.mark.parametrize("name", ["import os", "def", "x y", "__import__('os')", ""])
def test_hostile_elementwise_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidNameError):
        sd.elementwise(lambda z: z * z, name=name)


def test_elementwise_body_with_undefined_function_is_refused() -> None:
    evil = sympy.Function(f"__import__('os').system('touch {SENTINEL}')")
    with pytest.raises(InvalidNameError, match="undefined functions"):
        sd.elementwise(lambda z: evil(z) + z, name="evil")


@pytest.mark.parametrize("name", ["const_float64_3", "_const_float64_3", "HERE", "_HERE"])
def test_leaf_named_like_a_module_constant_does_not_change_the_value(
    name: str, symdl_cache: Path
) -> None:
    """Regression: an argument named like a module-level constant shadowed it (a wrong answer)."""
    x = sd.placeholder(name, (3,), "float64")
    functions = {"f": ([x], x * np.array([1.0, 2.0, 3.0]))}
    _assert_safe(sd.generate(functions, "m"))
    mod = sd.compile(functions, name="shadow", cache_dir=symdl_cache)
    np.testing.assert_array_equal(mod.f(np.array([10.0, 10.0, 10.0])), [10.0, 20.0, 30.0])


def test_leaf_named_like_a_size_does_not_change_the_value(symdl_cache: Path) -> None:
    """A scalar input named ``N`` next to a batch size ``N`` used to take the size's place."""
    n = sd.placeholder("N", (), "float64")
    x = sd.placeholder("x", (None, 3), "float64")
    out = sd.mean(x) * n
    mod = sd.compile({"f": ([x, n], [out, sd.grad(out, x)])}, "sizes", cache_dir=symdl_cache)
    xv = np.arange(6.0).reshape(2, 3)
    got, grad = mod.f(xv, 5.0)
    np.testing.assert_allclose(got, xv.mean() * 5.0)
    np.testing.assert_allclose(grad, np.full((2, 3), 5.0 / 6))


CONSTANTS = [-0.0, 1e-308, 5e-324, 1.7976931348623157e308, 0.1, 1 / 3, -2.5e-17, 123456789.125]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("value", CONSTANTS)
def test_constants_round_trip_exactly(value: float, dtype: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (2,), dtype)
    top = float(np.finfo(dtype).max)
    value = min(max(value, -top), top)  # the float64 extremes stand for float32's own
    c = np.array([value, -value], dtype=dtype)
    s = np.asarray(value, dtype=dtype)  # a strong scalar of that dtype
    out = [x + sd.constant(c), x * 0 + sd.constant(s)]
    mod = sd.compile({"f": ([x], out)}, "consts", cache_dir=symdl_cache)
    zero = np.zeros(2, dtype=dtype)
    got = mod.f(zero)
    np.testing.assert_array_equal(got[0], zero + c)
    assert np.signbit(got[0]).tolist() == np.signbit(zero + c).tolist()
    np.testing.assert_array_equal(got[1], zero * 0 + s)
    assert got[0].dtype == got[1].dtype == np.dtype(dtype)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, [1.0, np.nan]])
def test_nonfinite_constants_refused_unless_asked(value: object, symdl_cache: Path) -> None:
    with pytest.raises(ConstantError, match="allow_nonfinite"):
        sd.constant(value)
    x = sd.placeholder("x", (2,), "float64")
    c = sd.constant(value, allow_nonfinite=True)
    mod = sd.compile({"f": ([x], x + c)}, "nonfinite", cache_dir=symdl_cache)
    np.testing.assert_array_equal(mod.f(np.zeros(2)), np.zeros(2) + np.asarray(value))


@pytest.mark.parametrize("value", ["import os", b"x", {"a": 1}, 1 + 2j, object(),
                                   np.array(["a"]), np.array([1], dtype=object)])
def test_non_numeric_constants_refused(value: object) -> None:
    with pytest.raises((ConstantError, TypeError)):
        sd.placeholder("x", (1,), "float64") + value
