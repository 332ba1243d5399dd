"""Constants are kept exactly (shape, dtype, value) or refused, and a refusal names the op.

A constant made implicitly from an operand (``sd.where(c, x, -np.inf)``, ``x + np.nan``) is
refused by the op that received it, with the spelling that makes it legal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.errors import ConstantError

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


# --------------------------------------------------------------------------- shape and value


@pytest.mark.parametrize("shape", [(0, 3), (2, 0, 3), (3, 0), (0,), (0, 0)])
def test_empty_constants_keep_their_shape_in_generated_code(
    shape: tuple[int, ...], symdl_cache: Path
) -> None:
    """Regression: ``np.zeros((0, 3))`` printed as ``np.array([])``, of shape (0,)."""
    c = sd.constant(np.zeros(shape))
    assert c.shape == shape and c.dtype == "float64"
    x = sd.placeholder("x", shape, "float64")
    mod = sd.compile({"f": ([x], [x + c, c])}, "empty_const", cache_dir=symdl_cache)
    total, value = mod.f(np.ones(shape))
    assert total.shape == value.shape == shape
    assert value.dtype == np.float64


def test_int64_extremes_round_trip(symdl_cache: Path) -> None:
    values = np.array([INT64_MIN, INT64_MAX, -1, 0], dtype=np.int64)
    c = sd.constant(values)
    k = sd.placeholder("k", (4,), "int64")
    strong = sd.constant(np.int64(INT64_MIN))
    mod = sd.compile({"f": ([k], [k + c, c, k * 0 + strong])}, "int_extremes",
                     cache_dir=symdl_cache)
    total, value, scalar = mod.f(np.zeros(4, dtype=np.int64))
    np.testing.assert_array_equal(value, values)
    np.testing.assert_array_equal(total, values)
    np.testing.assert_array_equal(scalar, np.full(4, INT64_MIN))
    assert value.dtype == np.int64


@pytest.mark.parametrize("value", [np.uint64(2**63), np.array([1, 2**64 - 1], np.uint64), 2**63,
                                   [2**63, 2**63]])
def test_unsigned_values_beyond_int64_are_refused(value: object) -> None:
    """Regression: uint64 2**63 became int64 -2**63."""
    with pytest.raises(ConstantError, match="int64"):
        sd.constant(value)


def test_unsigned_values_that_fit_are_kept(symdl_cache: Path) -> None:
    c = sd.constant(np.array([0, INT64_MAX], dtype=np.uint64))
    assert c.dtype == "int64"
    assert c.attr("value").array.tolist() == [0, INT64_MAX]
    k = sd.placeholder("k", (2,), "int64")
    mod = sd.compile({"f": ([k], k + c)}, "uint_fits", cache_dir=symdl_cache)
    assert mod.f(np.zeros(2, dtype=np.int64)).tolist() == [0, INT64_MAX]


@pytest.mark.parametrize(
    ("value", "dtype", "match"),
    [
        (2**40, "int32", "int32"),
        (np.array([2**40]), "int32", "int32"),  # numpy's cast wraps this to 0
        (-(2**31) - 1, "int32", "int32"),
        (1.5, "int64", "not a whole number"),
        (np.array([1.0, np.nan]), "int64", "not a whole number"),
        (1e300, "int64", "int64"),
        (2, "bool", "bool"),
        (1e40, "float32", "float32"),
    ],
)
def test_a_dtype_that_changes_the_value_is_refused(value: object, dtype: str, match: str) -> None:
    with pytest.raises(ConstantError, match=match):
        sd.constant(value, dtype)


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [(2.0, "int64", 2), (np.array([-(2**31), 2**31 - 1]), "int32", [-(2**31), 2**31 - 1]),
     (1, "bool", True), (0.1, "float32", np.float32(0.1)), (3, "float64", 3.0)],
)
def test_a_dtype_that_keeps_the_value_is_accepted(value: object, dtype: str,
                                                  expected: object) -> None:
    c = sd.constant(value, dtype)
    assert c.dtype == dtype
    np.testing.assert_array_equal(c.attr("value").array, np.asarray(expected, dtype=dtype))


# --------------------------------------------------------------------------- implicit constants

COND = sd.placeholder("c", (3,), "bool")
X = sd.placeholder("x", (3,), "float64")


@pytest.mark.parametrize(
    ("build", "op", "fix"),
    [
        (lambda: sd.where(COND, X, -np.inf), "where", "sd.constant(-np.inf, allow_nonfinite=True)"),
        (lambda: sd.where(COND, np.nan, X), "where", "sd.constant(np.nan, allow_nonfinite=True)"),
        (lambda: X + np.inf, "add", "sd.constant(np.inf, allow_nonfinite=True)"),
        (lambda: np.nan * X, "multiply", "sd.constant(np.nan, allow_nonfinite=True)"),
        (lambda: sd.maximum(X, np.array([0.0, -np.inf, 1.0])), "maximum",
         "sd.constant(value, allow_nonfinite=True)"),
        (lambda: sd.exp(np.float64(np.inf)), "exp", "allow_nonfinite=True"),
    ],
)
def test_a_nonfinite_operand_is_refused_naming_the_op_and_the_fix(build, op: str,
                                                                  fix: str) -> None:
    with pytest.raises(ConstantError) as info:
        build()
    message = str(info.value)
    assert message.startswith(f"{op}:"), message
    assert fix in message, message


def test_nonfinite_operand_of_an_elementwise_function_names_it() -> None:
    import sympy

    f = sd.elementwise(lambda a, b: a * sympy.exp(b), name="scaled_exp")
    with pytest.raises(ConstantError, match=r"^scaled_exp:.*allow_nonfinite=True"):
        f(X, -np.inf)


def test_where_with_an_allowed_infinity_computes_as_numpy(symdl_cache: Path) -> None:
    out = sd.where(X > 0, X, sd.constant(-np.inf, allow_nonfinite=True))
    mod = sd.compile({"f": ([X], out)}, "where_inf", cache_dir=symdl_cache)
    xv = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(mod.f(xv), np.where(xv > 0, xv, -np.inf))


@pytest.mark.parametrize(
    "build",
    [lambda k: k + 2**40, lambda k: 2**31 * k, lambda k: sd.where(k > 0, k, -(2**31) - 1)],
)
def test_a_python_int_that_does_not_fit_the_other_operand_is_refused(build) -> None:
    """``k_int32 + 2**40`` used to build, and raise OverflowError only when the code ran."""
    k = sd.placeholder("k", (2,), "int32")
    with pytest.raises(ConstantError, match="does not fit int32"):
        build(k)
    assert (k + (2**31 - 1)).dtype == "int32"
    assert (sd.placeholder("j", (2,), "int64") + 2**40).dtype == "int64"


def test_an_operand_of_an_op_that_does_not_say_its_name_still_gets_the_fix() -> None:
    """Ops outside the elementwise family call as_expr without a name: the fix is still said."""
    with pytest.raises(ConstantError, match=r"sd.constant\(np.inf, allow_nonfinite=True\)"):
        sd.sum(np.inf)
