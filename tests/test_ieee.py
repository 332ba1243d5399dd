"""IEEE semantics: what the user wrote computes what numpy computes, inf, NaN and -0.0 included.

Rewrites and fusion fold ``x * 0`` and ``x - x`` only where differentiation built them (zero
cotangents), unless the user asks for ``fast_math=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import symdl as sd
from codegen.report import count_operations
from symdl.simplify import RewriteLog, simplify

SPECIAL = np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 1.5, -1.5])
# Every pair of special values: x runs over them slowly, y fast.
XS = np.repeat(SPECIAL, SPECIAL.size)
YS = np.tile(SPECIAL, SPECIAL.size)

Build = Callable[[Any, Any], Any]  # the same formula on symdl expressions and numpy arrays

# (name, formula): each is written once and evaluated by symdl and by numpy.
CASES: list[tuple[str, Build]] = [
    ("x*0", lambda x, y: x * 0.0),
    ("0*x+x", lambda x, y: 0.0 * x + x),
    ("x-x", lambda x, y: x - x),
    ("exp((x-x)*2+y)", lambda x, y: _exp(x)((x - x) * 2.0 + y)),
    ("-0.0*x", lambda x, y: -0.0 * x),
    ("x+0", lambda x, y: x + 0.0),
    ("x*y+x*y", lambda x, y: x * y + x * y),  # add_self: doubling is exact
    ("0-x", lambda x, y: 0.0 - x),
    ("(x*0)*y", lambda x, y: (x * 0.0) * y),
    ("x*y/y", lambda x, y: x * y / y),
    ("x**0.5", lambda x, y: x ** 0.5),
]


def _exp(x: Any) -> Callable[[Any], Any]:
    return np.exp if isinstance(x, np.ndarray) else sd.exp


def _assert_bitwise(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got, want)  # NaNs compare equal by position
    real = ~np.isnan(want)
    np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(want[real]))  # -0.0


@pytest.mark.parametrize("simplify_on", [True, False], ids=["simplified", "raw"])
@pytest.mark.parametrize(("name", "formula"), CASES, ids=[c[0] for c in CASES])
def test_generated_code_computes_what_numpy_computes(
    name: str, formula: Build, simplify_on: bool, symdl_cache: Path
) -> None:
    x = sd.placeholder("x", (XS.size,), "float64")
    y = sd.placeholder("y", (YS.size,), "float64")
    mod = sd.compile({"f": ([x, y], formula(x, y))}, "ieee", cache_dir=symdl_cache,
                     simplify=simplify_on)
    with np.errstate(all="ignore"):
        want = np.asarray(formula(XS.copy(), YS.copy()))
        got = mod.f(XS.copy(), YS.copy())
    _assert_bitwise(np.asarray(got), want)


def test_fast_math_folds_what_the_user_wrote() -> None:
    x = sd.placeholder("x", (4,), "float64")
    y = sd.placeholder("y", (4,), "float64")
    functions = {"f": ([x, y], [x * 0.0, (x - x) + y])}
    strict = count_operations(sd.generate(functions, "strict"), "f")
    fast = count_operations(sd.generate(functions, "fast", fast_math=True), "f")
    assert strict.get("*", 0) >= 1 and strict.get("-", 0) >= 1, strict
    assert fast.get("*", 0) == 0 and fast.get("-", 0) == 0, fast


@pytest.mark.parametrize("rule", ["multiply_zero", "subtract_self", "add_zero",
                                  "subtract_zero", "exp_of_log", "power_half"])
def test_finite_only_rules_leave_user_expressions_alone(rule: str) -> None:
    x = sd.placeholder("x", (3,), "float64")
    expr = {
        "multiply_zero": lambda: x * 0.0,
        "subtract_self": lambda: x - x,
        "add_zero": lambda: x + 0.0,
        "subtract_zero": lambda: 0.0 - x,
        "exp_of_log": lambda: sd.exp(sd.log(x)),
        "power_half": lambda: x ** 0.5,
    }[rule]()
    log = RewriteLog()
    (strict,) = simplify([expr], log)
    assert log.fired[rule] == 0 and strict.op is expr.op, log.summary()
    fast_log = RewriteLog()
    simplify([expr], fast_log, fast_math=True)
    assert fast_log.fired[rule] >= 1, fast_log.summary()


def test_zero_cotangents_still_fold() -> None:
    # d/dx sum(x * c) builds g * c and zero cotangents where x meets nothing; those fold.
    x = sd.placeholder("x", (4,), "float64")
    w = sd.placeholder("w", (4,), "float64")
    loss = sd.sum(sd.exp(x) * w)
    (x_grad,) = sd.grad(loss, [x])
    source = sd.generate({"f": ([x, w], [loss, x_grad])}, "folds")
    ops = count_operations(source, "f")
    assert ops.get("np.exp", 0) == 1 and ops.get("*", 0) <= 2, (ops, source)


def test_the_report_runs_with_fast_math() -> None:
    from codegen.report import report

    x = sd.placeholder("x", (4,), "float64")
    functions = {"f": ([x], x * 0.0 + x)}
    # IEEE-exact keeps x * 0 (NaN for inf); the report of a fast-math module shows it folded.
    assert "multiply_zero" not in report(functions, "m").rewrites.fired
    assert report(functions, "m", fast_math=True).rewrites.fired["multiply_zero"] == 1
