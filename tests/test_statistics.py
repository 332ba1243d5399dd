"""`sd.var`, `sd.std`, `sd.norm` and the numpy-style expression methods, against numpy itself
and against central finite differences in float64."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.errors import DTypeError, ShapeError
from tests.helpers import check_grads, compile_functions

RNG = np.random.default_rng(7)

# (name, symdl function, numpy reference)
CASES = [
    ("var all", lambda x: sd.var(x), lambda a: np.var(a)),
    ("var axis 0", lambda x: sd.var(x, axis=0), lambda a: np.var(a, axis=0)),
    ("var axis 1 ddof 1 keepdims", lambda x: sd.var(x, axis=1, keepdims=True, ddof=1),
     lambda a: np.var(a, axis=1, keepdims=True, ddof=1)),
    ("std axis -1", lambda x: sd.std(x, axis=-1), lambda a: np.std(a, axis=-1)),
    ("std axes (0, 1) ddof 1", lambda x: sd.std(x, axis=(0, 1), ddof=1),
     lambda a: np.std(a, axis=(0, 1), ddof=1)),
    ("norm frobenius", lambda x: sd.norm(x), lambda a: np.linalg.norm(a)),
    ("norm 2 axis 1", lambda x: sd.norm(x, 2, axis=1), lambda a: np.linalg.norm(a, 2, axis=1)),
    ("norm 1 axis 0 keepdims", lambda x: sd.norm(x, 1, axis=0, keepdims=True),
     lambda a: np.linalg.norm(a, 1, axis=0, keepdims=True)),
    ("norm inf axis 1", lambda x: sd.norm(x, np.inf, axis=1),
     lambda a: np.linalg.norm(a, np.inf, axis=1)),
    ("method var", lambda x: x.var(axis=0, ddof=1), lambda a: a.var(axis=0, ddof=1)),
    ("method std", lambda x: x.std(), lambda a: a.std()),
    ("method min", lambda x: x.min(axis=1), lambda a: a.min(axis=1)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_values_match_numpy(case: tuple, dtype: str, symdl_cache: Path) -> None:
    _, build, reference = case
    x = sd.placeholder("x", (None, 5), dtype)
    a = RNG.standard_normal((4, 5)).astype(dtype)
    got = compile_functions({"f": ([x], build(x))}, symdl_cache, "stats").f(a)
    expected = reference(a)
    assert np.shape(got) == np.shape(expected)
    assert np.asarray(got).dtype == np.dtype(dtype)
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", [c for c in CASES if "min" not in c[0] and "inf" not in c[0]],
                         ids=lambda c: c[0])
def test_gradients_match_finite_differences(case: tuple, symdl_cache: Path) -> None:
    _, build, reference = case
    x = sd.placeholder("x", (4, 5), "float64")
    a = RNG.standard_normal((4, 5)) + 0.5  # away from |x| = 0, where norm 1 has a kink
    check_grads(reference, [x], build(x), [a], cache_dir=symdl_cache)


def test_methods_argmax_and_squeeze_are_numpys() -> None:
    x = sd.placeholder("x", (3, 1, 4), "float64")
    a = RNG.standard_normal((3, 1, 4))
    module = sd.compile({"f": ([x], [x.argmax(axis=2), x.squeeze(1), x.squeeze()])}, "methods")
    arg, one, every = module.f(a)
    np.testing.assert_array_equal(arg, a.argmax(axis=2))
    np.testing.assert_array_equal(one, a.squeeze(1))
    np.testing.assert_array_equal(every, a.squeeze())


def test_bad_arguments_say_what_to_do() -> None:
    k = sd.placeholder("k", (3,), "int64")
    m = sd.placeholder("m", (3, 3), "float64")
    with pytest.raises(DTypeError, match=r"var: .*int64.*astype"):
        sd.var(k)
    with pytest.raises(ShapeError, match="ddof"):
        sd.std(m, ddof=-1)
    with pytest.raises(ShapeError, match=r"norm: ord=2 .*Frobenius"):
        sd.norm(m, 2)


@pytest.mark.parametrize("shape", [(4, 5), (None, 5)])
def test_float32_stays_float32_with_ddof(shape: tuple) -> None:
    x = sd.placeholder("x", shape, "float32")
    for axis in (0, 1, None):
        assert sd.var(x, axis=axis, ddof=1).dtype == "float32", axis
        assert sd.std(x, axis=axis, ddof=1).dtype == "float32", axis
