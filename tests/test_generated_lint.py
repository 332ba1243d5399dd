"""Every generated module reads like careful hand-written numpy: it compiles, no line is over
100 characters, ruff finds nothing, and every name it binds is an identifier that shadows no
builtin.

The modules are those of every model in ``examples/`` (model files, classroom graphs, the course's
softmax regression, the MLP trained with each optimizer) and a model with the longest names symdl
allows, whose wide statements must wrap and still compute the same values.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import runpy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from codegen.layout import LINE_LIMIT
from symdl.commands.modelfile import load_model_file

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
MODEL_FILES = sorted((EXAMPLES / "models").glob("*.py")) + sorted(
    (EXAMPLES / "classroom").glob("*.py")
)
BUILTINS = frozenset(dir(builtins))
LONG = "a_name_as_long_as_symdl_allows_it_is_forty"[:40]  # `names.MAX_LENGTH`


def _mlp_parts(hidden: int = 16) -> tuple:
    """The MLP of ``examples/mlp_mnist.py`` (a narrow one: the layout is what is checked)."""
    build = runpy.run_path(str(EXAMPLES / "mlp_mnist.py"))["build"]
    return build(hidden)


def _train_step(optimizer: str) -> tuple[dict, str]:
    inputs, loss, params, metrics = _mlp_parts()
    spec = sd.optim.make_optimizer(optimizer).step_function(loss, params, inputs, metrics)
    return spec.functions, f"mlp_{optimizer}"


def _softmax_regression() -> tuple[dict, str]:
    build = runpy.run_path(str(EXAMPLES / "softmax_regression.py"))["build_model"]
    return build(), "softmax_regression"


def _read_the_gradient() -> tuple[dict, str]:
    return runpy.run_path(str(EXAMPLES / "read_the_gradient.py"))["functions"], "swish"


def _long_names() -> tuple[dict, str]:
    """Names of the longest length, many arguments, a constant of 300 values, a long formula."""
    x = sd.placeholder(LONG, (None, 7), "float64")
    t = sd.placeholder(LONG[:-1] + "t", (None, 3), "float64")
    w = sd.parameter(LONG[:-1] + "w", (7, 3), "float64")
    extra = [sd.parameter(f"{LONG[:-3]}_{i:02d}", (3,), "float64") for i in range(6)]
    lr = sd.placeholder("learning_rate_of_the_long_named_model_x", (), "float64")
    pre = (x @ w + extra[0] * extra[1] - extra[2] / (extra[3] + 2.0)).named(LONG[:-1] + "z")
    wide = sd.sum(x * np.linspace(0.5, 1.5, 7), axis=1, keepdims=True)
    scale = sd.reshape(sd.constant(np.linspace(-1.0, 1.0, 300)), (100, 3))[:1]
    loss = sd.mean(sd.sum((sd.tanh(pre) * scale + wide - t) ** 2, axis=1)).named(LONG[:-1] + "L")
    params = [w, *extra[:4]]
    grads = sd.grad(loss, params)
    updates = {p: p - lr * (g + extra[4] * extra[5]) for p, g in zip(params, grads)}
    return {"train_the_model_with_long_names": ([x, t, w, *extra, lr], loss, updates)}, "long"


CASES: dict[str, Callable[[], tuple[dict, str]]] = {
    **{
        str(path.relative_to(EXAMPLES)): (
            lambda path=path: (lambda m: (m["functions"], m["name"]))(load_model_file(path))
        )
        for path in MODEL_FILES
    },
    "softmax_regression.py": _softmax_regression,
    "read_the_gradient.py": _read_the_gradient,
    "curvature.py": lambda: (runpy.run_path(str(EXAMPLES / "curvature.py"))["build"](),
                             "curvature"),
    **{f"mlp_mnist.py {opt}": (lambda opt=opt: _train_step(opt)) for opt in sd.optim.OPTIMIZERS},
    "long names": _long_names,
}


def _bound_names(tree: ast.AST) -> list[str]:
    """Every name the module binds: functions, arguments, assignment targets."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            names.append(node.name)
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.append(node.id)
    return names


def _ruff(source: str) -> str:
    """What ruff's pycodestyle and pyflakes rules say about ``source`` ("" when nothing)."""
    pytest.importorskip("ruff")
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--select", "E,F,W",
         "--line-length", str(LINE_LIMIT), "--output-format", "concise", "-"],
        input=source, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode in (0, 1), done.stderr  # 1: findings, anything else: ruff failed
    return done.stdout if done.returncode else ""


@pytest.mark.parametrize("case", sorted(CASES))
def test_generated_module_is_lint_clean(case: str) -> None:
    functions, name = CASES[case]()
    source = sd.generate(functions, name)
    compile(source, f"{name}_gen.py", "exec")
    long = [f"{i}: {line}" for i, line in enumerate(source.splitlines(), 1)
            if len(line) > LINE_LIMIT]
    assert not long, "\n".join(long)
    for bound in _bound_names(ast.parse(source)):
        assert bound.isidentifier() and not keyword.iskeyword(bound), bound
        assert bound not in BUILTINS, f"{bound!r} shadows a builtin"
    findings = _ruff(source)
    assert not findings, findings


def test_long_names_wrap_and_compute_the_same(symdl_cache: Path) -> None:
    functions, _ = _long_names()
    source = sd.generate(functions, "long")
    assert "\n        0.5,\n" not in source  # the 300 values fill lines, not one per line
    (x, t, w, *extra, lr), loss, updates = functions["train_the_model_with_long_names"]
    mod = sd.compile(functions, "long", cache_dir=symdl_cache)
    rng = np.random.default_rng(3)
    xv, tv = rng.standard_normal((4, 7)), rng.standard_normal((4, 3))
    wv, ev = rng.standard_normal((7, 3)), [rng.standard_normal(3) for _ in extra]
    # numpy by hand: the loss, and the gradients by the chain rule.
    pre = xv @ wv + ev[0] * ev[1] - ev[2] / (ev[3] + 2.0)
    scale = np.linspace(-1.0, 1.0, 300).reshape(100, 3)[:1]
    wide = (xv * np.linspace(0.5, 1.5, 7)).sum(axis=1, keepdims=True)
    r = np.tanh(pre) * scale + wide - tv
    expected_loss = np.mean(np.sum(r**2, axis=1))
    pre_bar = 2 * r / len(xv) * scale * (1 - np.tanh(pre) ** 2)
    grads = [xv.T @ pre_bar, pre_bar.sum(0) * ev[1], pre_bar.sum(0) * ev[0],
             -pre_bar.sum(0) / (ev[3] + 2.0), pre_bar.sum(0) * ev[2] / (ev[3] + 2.0) ** 2]
    values = [wv.copy(), *(e.copy() for e in ev)]
    got_loss = mod.train_the_model_with_long_names(xv, tv, *values, 0.1)
    np.testing.assert_allclose(got_loss, expected_loss, rtol=1e-12)
    np.testing.assert_array_equal(values[5:], ev[4:])  # inputs, not updated
    for got, old, g in zip(values, [wv, *ev], grads):
        np.testing.assert_allclose(got, old - 0.1 * (g + ev[4] * ev[5]), rtol=1e-12, atol=1e-14)
