"""Bad input at every entry point: a typed error from `symdl.errors` that says what to do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.errors import (
    CodegenError,
    DTypeError,
    GradientError,
    InvalidNameError,
    NoDerivativeError,
    ShapeError,
)

X = sd.placeholder("x", (None, 3), "float64")
W = sd.parameter("w", (3, 2), "float64")


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: X @ sd.parameter("v", (4, 2), "float64"), ShapeError,
         r"matmul.*\(N, 3\).*\(4, 2\)"),
        (lambda: X + sd.parameter("v", (4,), "float64"), ShapeError, "add.*broadcast"),
        (lambda: sd.reshape(W, (5,)), ShapeError, "reshape"),
        (lambda: sd.sum(W, axis=2), ShapeError, "out of range"),
        (lambda: sd.concatenate([W, X], axis=0), ShapeError, "concatenate"),
        (lambda: W[5], ShapeError, "out of bounds"),
        (lambda: sd.placeholder("x", (3,), "float16x"), DTypeError, "unsupported dtype"),
        (lambda: sd.placeholder("x", (3,), "complex64"), DTypeError, "unsupported dtype"),
        (lambda: sd.exp(sd.placeholder("i", (3,), "int64")), DTypeError, "exp.*int64"),
        (lambda: sd.where(W, W, W), DTypeError, "condition must be bool"),
        (lambda: sd.placeholder("", (3,)), InvalidNameError, "name"),
        (lambda: sd.placeholder(None, (3,)), InvalidNameError, "name"),
        (lambda: sd.placeholder("x", (-1,)), ShapeError, ">= 0"),
        (lambda: sd.elementwise(lambda z: z, name="bad name"), InvalidNameError, "identifier"),
    ],
)
def test_building_bad_expressions_raises_typed_errors(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_grad_errors() -> None:
    loss = sd.sum(X @ W)
    with pytest.raises(GradientError, match="scalar"):
        sd.grad(X @ W, W)
    with pytest.raises(GradientError, match="placeholders or parameters"):
        sd.grad(loss, X @ W)
    other = sd.parameter("unused", (2,), "float64")
    with pytest.raises(GradientError, match="does not depend on"):
        sd.grad(loss, [W, other])
    zeros = sd.grad(loss, [W, other], allow_unused=True)[1]
    assert zeros.shape == (2,)
    with pytest.raises(GradientError, match="twice"):
        sd.grad(loss, [W, W])


def test_op_without_derivative_rule_names_it() -> None:
    from symdl.ops.shape import Zeros

    assert Zeros.vjp is None
    # argmax is not differentiable, so the gradient through it is refused or zero, never wrong
    z = sd.argmax(X @ W, axis=1).astype("float64")
    loss = sd.sum(z * sd.sum(W))
    g = sd.grad(loss, W)
    assert g.shape == W.shape


def test_no_derivative_error_is_raised_for_an_op_without_rule(monkeypatch) -> None:
    from symdl.ops import OPS

    monkeypatch.setattr(OPS["sin"], "vjp", None)
    with pytest.raises(NoDerivativeError, match="'sin'"):
        sd.grad(sd.sum(sd.sin(W)), W)


def test_codegen_errors() -> None:
    loss = sd.sum(X @ W)
    with pytest.raises(CodegenError, match="not among its inputs"):
        sd.generate({"f": ([X], [loss])})
    with pytest.raises(CodegenError, match="non-empty dict"):
        sd.generate({})
    with pytest.raises(InvalidNameError, match="listed twice"):
        sd.generate({"f": ([X, X, W], [loss])})
    with pytest.raises(InvalidNameError, match="share the name"):
        sd.generate({"f": ([X, sd.placeholder("x", (3,), "float64"), W], [loss])})
    with pytest.raises(CodegenError, match="must be"):
        sd.generate({"f": (X, )})
    with pytest.raises(InvalidNameError, match="undefined"):
        sd.elementwise(lambda z: sympy.Function("g")(z), name="g")


def test_generated_function_checks_its_arguments(symdl_cache: Path) -> None:
    loss = sd.sum(X @ W)
    mod = sd.compile({"f": ([X, W], loss)}, "checks", cache_dir=symdl_cache)
    x, w = np.ones((2, 3)), np.ones((3, 2))
    assert mod.f(x, w) == 12.0
    with pytest.raises(TypeError):
        mod.f(x)
    with pytest.raises(ValueError, match=r"'w'.*\(3, 2\).*\(2, 3\)"):
        mod.f(x, w.T.copy())
    with pytest.raises(ValueError, match="float64.*float32"):
        mod.f(x.astype(np.float32), w)
    with pytest.raises(ValueError, match="'x'"):
        mod.f(x.tolist(), w)
    with pytest.raises(ValueError, match="'x'"):
        mod.f(np.ones((2, 4)), w)


def test_errors_change_nothing(symdl_cache: Path) -> None:
    """A failed build leaves earlier expressions and compiled modules as they were."""
    loss = sd.sum(X @ W)
    before = sd.show(loss)
    with pytest.raises(ShapeError):
        (X @ W) + sd.parameter("v", (5,), "float64")
    with pytest.raises(GradientError):
        sd.grad(X @ W, W)
    assert sd.show(loss) == before
    files = sorted(symdl_cache.iterdir()) if symdl_cache.exists() else []
    with pytest.raises(CodegenError):
        sd.compile({"f": ([X], [loss])}, "nothing", cache_dir=symdl_cache)
    assert (sorted(symdl_cache.iterdir()) if symdl_cache.exists() else []) == files
