"""What generating a module costs, counted rather than timed (issue 17).

Wall time on a shared machine is noise; the work is not. These tests count Python function
calls during `sd.generate` (through `sys.setprofile`) and the bodies fusion hands to sympy, so
that a pass turning quadratic in depth, or a memo keyed by node instead of by structure, fails
here on any machine. They also check that `import symdl` and a generation leave out the heavy
modules nothing of theirs uses (sympy's physics units, scipy), in a fresh interpreter, and that
the cheaper rewrite fusion gives a body (`codegen.fuse._shorten`) accepts what
``sympy.simplify`` did.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import sympy

import symdl as sd
from benchmarks.bench_generation import deep_mlp
from codegen import fuse


def _calls_to_generate(functions: dict[str, tuple]) -> int:
    """Python function calls made while generating ``functions``."""
    calls = 0

    def count(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event == "call":
            calls += 1

    sys.setprofile(count)
    try:
        sd.generate(functions, "cost")
    finally:
        sys.setprofile(None)
    return calls


def test_generation_work_is_linear_in_depth() -> None:
    # Build the graphs first: only generation is counted. A warm-up generation loads what
    # the first one loads, so each count is the work of its own graph.
    graphs = {depth: deep_mlp(depth) for depth in (4, 8, 16, 32)}
    sd.generate(deep_mlp(2), "warm_up")
    calls = {depth: _calls_to_generate(f) for depth, f in graphs.items()}
    # Differences cancel the fixed cost: linear work gives (c32 - c16) / (c8 - c4) = 16/4 = 4,
    # quadratic work 16 * 48 / (4 * 12) = 16.
    growth = (calls[32] - calls[16]) / (calls[8] - calls[4])
    assert 3.0 <= growth <= 5.5, calls
    per_layer = (calls[32] - calls[16]) / 16
    assert calls[32] < 40 * per_layer + calls[4], calls  # no hidden large constant either


@pytest.fixture
def shorten_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[sympy.Expr]]:
    """The bodies given to `fuse._shorten`, from an empty memo; the memo is emptied after."""
    seen: list[sympy.Expr] = []
    original = fuse._shorten

    def recording(body: sympy.Expr) -> sympy.Expr:
        seen.append(body)
        return original(body)

    monkeypatch.setattr(fuse, "_shorten", recording)
    fuse._safe_simplify.cache_clear()
    yield seen
    fuse._safe_simplify.cache_clear()


def test_each_distinct_body_is_rewritten_once_per_process(shorten_calls) -> None:  # type: ignore[no-untyped-def]
    sd.generate(deep_mlp(4), "shallow")
    shallow = list(shorten_calls)
    # The bodies of 8 and 48 layers are the same few, layer after layer: the memo is keyed by
    # a body's structure, so a deeper network rewrites none of them again.
    sd.generate(deep_mlp(8), "deeper")
    sd.generate(deep_mlp(48), "deepest")
    assert shallow and len(shorten_calls) == len(set(shorten_calls)) == len(shallow)


def _fresh(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, check=True)
    return proc.stdout.strip()


# Modules a generating user does not need at import or in a generation (their imports cost
# hundreds of milliseconds): sympy's physical units (imported by sympy.simplify's first call),
# scipy (only a model using a special function needs scipy.special, and only at run time),
# progress bars, Dask, plotting.
_HEAVY = ("sympy.physics", "scipy", "tqdm", "dask", "distributed", "matplotlib", "torch")


def test_import_symdl_leaves_out_heavy_modules() -> None:
    loaded = _fresh(
        "import sys, symdl\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {_HEAVY!r} "
        f"or m.startswith({_HEAVY!r})))"
    )
    assert loaded == "[]"


def test_training_is_loaded_on_first_use() -> None:
    # `fit` and `distributed` (checkpoints: zipfile, json) load when first named, and are
    # then what they always were.
    loaded = _fresh(
        "import sys, symdl as sd\n"
        "before = sorted(m for m in ('symdl.train', 'symdl.distributed', 'zipfile') "
        "if m in sys.modules)\n"
        "from symdl.train import fit\n"
        "import symdl.distributed\n"
        "print(before, sd.fit is fit, sd.distributed is sys.modules['symdl.distributed'], "
        "'fit' in dir(sd))"
    )
    assert loaded == "[] True True True"


def test_generating_leaves_out_sympy_physics() -> None:
    # Bodies sympy rewrites shorter (tanh, sigmoid and a quotient): `_shorten` runs, and
    # still nothing loads sympy's physical units.
    loaded = _fresh(
        "import sys, symdl as sd\n"
        "x = sd.placeholder('x', (None, 4)); y = sd.placeholder('y', (None, 4))\n"
        "W = sd.parameter('W', (4, 4))\n"
        "loss = sd.mean(sd.softmax_cross_entropy(sd.tanh(x @ W), y)) + sd.mean(sd.sigmoid(x))\n"
        "sd.generate({'f': ([x, y, W], [loss, sd.grad(loss, W)])}, 'm')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('sympy.physics', 'scipy'))))"
    )
    assert loaded == "[]"


_a = sympy.symbols("a0:5", real=True)
# Bodies fusion gave sympy in the test suite (the symbols are a statement's inputs), those
# sympy.simplify shortened first.
BODIES = [
    -_a[2] / _a[1] + (0.5 * sympy.tanh(_a[0] / 2) + 0.5) / _a[1],
    -2 * _a[0] * (1 - _a[1] ** 2),
    _a[0] * _a[1] + _a[0] * _a[2],
    _a[0] * _a[1] * _a[2] - _a[1] * _a[3] * _a[4],
    _a[0] * _a[3] + _a[0] * (_a[1] - _a[2]),
    2 * _a[0] * _a[1] + 2 * _a[2] * _a[3],  # sympy keeps the 2 inside: so must `_shorten`
    _a[0] * sympy.exp(_a[1]) / (sympy.exp(_a[1]) + 1),
    _a[0] * (0.5 * sympy.tanh(_a[1] / 2) + 0.5),
    2 * _a[0] / _a[1],
    (_a[0] - _a[1]) / _a[2],
    _a[0] * _a[2] / _a[1],
    _a[1] * (1 - _a[0] ** 2),
    (_a[0] / _a[1] - _a[2]) / _a[3],
    _a[0] * _a[1] * _a[2],
    1 - _a[0] ** 2,
    _a[2] * (-2 * _a[0] + _a[1]),
    2 * _a[0] / (_a[1] * _a[2]),
    sympy.exp(_a[0] - _a[1]),
    _a[0] * (_a[1] - _a[2]),
    1 - sympy.tanh(_a[0]) ** 2,
    # GELU's derivative: over one denominator it is longer, so sympy keeps the body as built.
    _a[0] * (sympy.sqrt(2) * _a[1] * sympy.exp(-_a[1] ** 2 / 2) / (2 * sympy.sqrt(sympy.pi))
             + sympy.erf(sympy.sqrt(2) * _a[1] / 2) / 2 + sympy.Rational(1, 2)),
]


@pytest.mark.parametrize("body", BODIES, ids=str)
def test_shortened_body_is_what_sympy_simplify_gave(body: sympy.Expr,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The reference: sympy.simplify itself, through the same acceptance checks.
    fuse._safe_simplify.cache_clear()
    with monkeypatch.context() as m:
        m.setattr(fuse, "_shorten",
                  lambda b: sympy.simplify(b, ratio=1.0, rational=False))
        expected = fuse._safe_simplify(body)
    fuse._safe_simplify.cache_clear()
    assert fuse._safe_simplify(body) == expected


def test_exponential_of_a_new_argument_is_refused() -> None:
    # swish's derivative over exp(-x): over a common denominator it is written with exp(x),
    # which overflows to inf / inf = NaN for x > 710 where exp(-x) only underflows to 0.
    x = _a[1]
    body = _a[0] * (x * sympy.exp(-x) / (1 + sympy.exp(-x)) ** 2 + 1 / (1 + sympy.exp(-x)))
    assert sympy.exp(x) in sympy.together(body).atoms(sympy.exp)
    assert fuse._safe_simplify(body) == body
