"""Misuse that used to fail late or raw: each is refused early with a typed, helpful error, or
accepted as the documentation shows it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.errors import CodegenError, ElementwiseBodyError, NoDerivativeError

# --------------------------------------------------------------------------- sd.init.initialize


def test_initialize_takes_a_list_of_parameters_as_fit_documents() -> None:
    """``sd.init.initialize([W, b])`` raised AttributeError ('list' object has no 'items')."""
    W = sd.parameter("W", (4, 3), "float64")
    b = sd.parameter("b", (3,), "float64")
    values = sd.init.initialize([W, b], seed=1)
    assert list(values) == ["W", "b"]
    assert values["W"].shape == (4, 3) and values["W"].dtype == np.float64
    np.testing.assert_array_equal(values["b"], np.zeros(3))
    # The same draws as the mapping with the documented defaults spelled out.
    spelled = sd.init.initialize({W: sd.init.glorot_uniform, b: sd.init.zeros}, seed=1)
    np.testing.assert_array_equal(values["W"], spelled["W"])
    assert np.abs(values["W"]).max() <= np.sqrt(6 / 7)


def test_initialize_list_serves_compile_train_step_and_fit(symdl_cache: Path) -> None:
    """The train module's docstring, run as written with a list of parameters."""
    x = sd.placeholder("x", (None, 4), "float32")
    y = sd.placeholder("y", (None,), "int64")
    W = sd.parameter("W", (4, 3))
    b = sd.parameter("b", (3,))
    params = [W, b]
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y)).named("loss")
    step = sd.optim.compile_train_step(loss, params, sd.optim.SGD(0.1), [x, y],
                                       cache_dir=symdl_cache)
    values = sd.init.initialize(params, seed=0)
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((20, 4)).astype(np.float32), rng.integers(0, 3, 20))
    history = sd.fit(step, values, data, epochs=1, batch_size=10, quiet=True)
    assert history.step == 2


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({sd.parameter("W", (2, 2))}, "set"),
        (sd.parameter("W", (2, 2)), "in a list"),
        ([sd.placeholder("x", (2,))], "sd.parameter"),
        ({sd.parameter("W", (2, 2)): 0.5}, "must be a function"),
    ],
)
def test_initialize_refuses_what_it_cannot_use(params: object, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        sd.init.initialize(params)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- elementwise bodies

Z = sympy.Symbol("z", real=True)


@pytest.mark.parametrize(
    ("fn", "kind"),
    [
        (lambda z: sympy.Derivative(sympy.sin(z) * z, z, evaluate=False), "Derivative"),
        (lambda z: z + sympy.Integral(sympy.sin(z), z), "Integral"),
        (lambda z: sympy.Sum(z ** sympy.Symbol("k"), (sympy.Symbol("k"), 0, 3)), "Sum"),
        (lambda z: sympy.Subs(z**2, z, z + 1), "Subs"),
        (lambda z: z * sympy.Limit(sympy.sin(z) / z, z, 0), "Limit"),
    ],
)
def test_unevaluated_bodies_are_refused_at_definition(fn, kind: str) -> None:
    """An unevaluated Derivative reached the printer, which raised sympy's raw ValueError."""
    with pytest.raises(ElementwiseBodyError) as info:
        sd.elementwise(fn, name="lazy")
    message = str(info.value)
    assert "lazy" in message and kind in message and ".doit()" in message


def test_an_evaluated_derivative_body_works(symdl_cache: Path) -> None:
    f = sd.elementwise(lambda z: sympy.Derivative(sympy.sin(z) * z, z).doit(), name="dsin")
    x = sd.placeholder("x", (3,), "float64")
    mod = sd.compile({"f": ([x], f(x))}, "dsin", cache_dir=symdl_cache)
    xv = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(mod.f(xv), np.cos(xv) * xv + np.sin(xv))


def test_a_body_sympy_cannot_differentiate_is_refused_by_grad() -> None:
    """floor's derivative is an unevaluated Derivative: the gradient names the function."""
    f = sd.elementwise(lambda z: sympy.floor(z) * z, name="stairs")
    x = sd.placeholder("x", (3,), "float64")
    y = sd.sum(f(x))
    with pytest.raises(NoDerivativeError, match=r"stairs.*floor"):
        sd.grad(y, x)


# --------------------------------------------------------------------------- updates


def test_updating_a_placeholder_is_refused(symdl_cache: Path) -> None:
    """``{x: x + 1.0}`` with x a placeholder wrote into the caller's input array."""
    x = sd.placeholder("x", (3,), "float64")
    functions = {"bump": ([x], sd.sum(x), {x: x + 1.0})}
    for build in (lambda: sd.generate(functions, "m"),
                  lambda: sd.compile(functions, "m", cache_dir=symdl_cache)):
        with pytest.raises(CodegenError) as info:
            build()
        message = str(info.value)
        assert "placeholder 'x'" in message and "'bump'" in message
        assert "sd.parameter('x', (3,), 'float64')" in message


def test_updating_a_parameter_still_works(symdl_cache: Path) -> None:
    w = sd.parameter("w", (3,), "float64")
    mod = sd.compile({"bump": ([w], sd.sum(w), {w: w + 1.0})}, "bump", cache_dir=symdl_cache)
    wv = np.zeros(3)
    assert mod.bump(wv) == 0.0
    np.testing.assert_array_equal(wv, np.ones(3))
