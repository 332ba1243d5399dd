"""Names and provenance are data of one generation: nothing one graph does reaches another.

Nodes are hash-consed and shared by every graph in the process; a `.named()` label, a gradient's
origin or a step number must not be stored on them. These tests build, name and generate other
graphs around a model and check that the model's module keeps the same bytes, and that names
can never shadow what the module defines.
"""

from __future__ import annotations

import hashlib
import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.ir import toposort

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(
    [*(ROOT / "examples" / "models").glob("*.py"), *(ROOT / "examples" / "classroom").glob("*.py")]
)


def _tanh(x: sd.Expr) -> sd.Expr:
    return sd.tanh(x)


def _softplus_sympy(x: sd.Expr) -> sd.Expr:
    return sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus_user")(x)


ACTIVATIONS = {
    "tanh": _tanh, "exp": sd.exp, "softplus": sd.softplus, "elementwise": _softplus_sympy,
}


@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_generating_another_graph_or_naming_elsewhere_changes_nothing(act: str) -> None:
    f = ACTIVATIONS[act]
    x = sd.placeholder("x", (3, 4), "float64")
    w = sd.placeholder("w", (3, 4), "float64")
    fn = {"f": ([x, w], sd.grad(sd.sum(f(x) * w), x))}
    first = sd.generate(fn, "m")
    sd.generate({"h": ([x], sd.grad(sd.sum(f(x)), x))}, "other")
    assert sd.generate(fn, "m") == first
    t = f(x)
    for node in toposort([sd.grad(sd.sum(t * w), x)]):  # name every value of a similar graph
        if not node.is_leaf:
            node.named("bar")
    (1 - t * t).named("bar")
    second = sd.generate(fn, "m")
    assert second == first
    assert "bar" not in second
    # and the module still computes the gradient: w * f'(x), by central differences in float64
    mod = sd.compile(fn, "m")
    rng = np.random.default_rng(0)
    xv, wv = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    value = sd.compile({"v": ([x, w], sd.sum(f(x) * w))}, "v").v
    eps = 1e-6
    numeric = np.zeros_like(xv)
    for i in np.ndindex(xv.shape):
        d = np.zeros_like(xv)
        d[i] = eps
        numeric[i] = (value(xv + d, wv) - value(xv - d, wv)) / (2 * eps)
    np.testing.assert_allclose(mod.f(xv, wv), numeric, rtol=1e-6, atol=1e-8)


def test_a_name_belongs_to_the_graph_that_uses_it() -> None:
    x = sd.placeholder("x", (5,), "float64")
    h = sd.exp(x)
    named = h.named("hidden")
    assert named is not h and named.name == "hidden" and h.name is None
    assert "hidden" in sd.generate({"f": ([x], sd.sum(named * 2))}, "m")
    assert "hidden" not in sd.generate({"f": ([x], sd.sum(h * 2))}, "m")


def test_a_leaf_named_like_a_module_constant_does_not_shadow_it() -> None:
    x = sd.placeholder("const_float64_3", (3,), "float64")
    c = np.array([1.0, 2.0, 3.0])
    h = (x + 1).named("const_float64_3_1")
    mod = sd.compile({"f": ([x], [x * c, h * c])}, "shadow")
    xv = np.array([4.0, 5.0, 6.0])
    a, b = mod.f(xv)
    np.testing.assert_array_equal(a, xv * c)
    np.testing.assert_array_equal(b, (xv + 1) * c)


def test_a_label_named_like_the_argument_helper_does_not_shadow_it() -> None:
    x = sd.placeholder("x", (3,), "float64")
    mod = sd.compile({"f": ([x], (x * 2).named("_bad_argument"))}, "shadow_helper")
    np.testing.assert_array_equal(mod.f(np.ones(3)), np.full(3, 2.0))
    with pytest.raises(ValueError, match="argument 'x'"):
        mod.f(np.ones(4))


def _functions(path: Path) -> dict:
    return runpy.run_path(str(path), run_name="__test__")["functions"]


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


ALONE = """
import hashlib, json, runpy, sys
import symdl as sd
out = {}
for path in sys.argv[1:]:
    fns = runpy.run_path(path, run_name="__test__")["functions"]
    out[path] = hashlib.sha256(sd.generate(fns, "example").encode()).hexdigest()
print(json.dumps(out))
"""


def _alone(path: Path) -> str:
    """The example's module digest, generated in a fresh process that builds nothing else."""
    done = subprocess.run([sys.executable, "-c", ALONE, str(path)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, check=True)
    return json.loads(done.stdout)[str(path)]


def test_every_example_generates_the_same_bytes_alone_after_others_and_after_naming() -> None:
    alone = {path: _alone(path) for path in EXAMPLES}
    # All in one process, in both orders, naming every value of every graph in between.
    for order in (EXAMPLES, EXAMPLES[::-1]):
        for path in order:
            functions = _functions(path)
            assert _digest(sd.generate(functions, "example")) == alone[path], path.name
            for _, (_, outputs, *rest) in functions.items():
                outs = [outputs] if isinstance(outputs, sd.Expr) else list(outputs)
                updates = list(rest[0].values()) if rest else []
                for k, node in enumerate(toposort([*outs, *updates])):
                    if not node.is_leaf:
                        node.named(f"elsewhere_{k}")
