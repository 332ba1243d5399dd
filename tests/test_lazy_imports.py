"""sympy runs only when symdl generates, derives or fuses, never on ``import symdl`` or on a
warm start (issue 17: a warm start costs ``import symdl``, the graph and 50 ms; sympy was 0.4 s
of ``import symdl`` alone). Each check runs in a fresh interpreter: this one has sympy loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symdl.lazy_imports import defer, is_loaded


def _child(code: str, cache: Path) -> dict:
    """Run ``code`` in a fresh interpreter with ``$SYMDL_CACHE`` = ``cache``; its last stdout
    line is JSON."""
    env = dict(os.environ, SYMDL_CACHE=str(cache))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, timeout=300, cwd=cache)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


# One Adam step of a small MLP on fixed data: the loss, and whether sympy has run.
TRAIN_ONCE = """
    import json
    import numpy as np
    import symdl as sd
    from symdl.lazy_imports import is_loaded

    x = sd.placeholder("x", (None, 6))
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = sd.layers.mlp(x, [5, 3], activation=sd.relu, name="dense")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y))
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(0.01), [x, y], name="lazy")
    rng = np.random.default_rng(0)
    values = {p.name: (0.1 * rng.standard_normal(p.shape)).astype(np.float32) for p in params}
    state = step.init_state()
    xs = rng.standard_normal((4, 6)).astype(np.float32)
    ys = np.array([0, 1, 2, 1])
    (value,) = step([xs, ys], values, state)
    print(json.dumps({"sympy": is_loaded("sympy"), "loss": float(value)}))
"""


def test_import_symdl_does_not_run_sympy(tmp_path: Path) -> None:
    out = _child("""
        import json, sys
        import symdl
        from symdl.lazy_imports import is_loaded
        print(json.dumps({"sympy": is_loaded("sympy"), "listed": "sympy" in sys.modules}))
    """, tmp_path)
    assert out == {"sympy": False, "listed": False}


def test_threads_that_first_use_sympy_at_once_all_get_it(tmp_path: Path) -> None:
    # importlib's LazyLoader hands a half-run module to the other threads before Python 3.12
    # (CPython gh-114763): with it, 7 of these 8 threads failed on sympy.Symbol.
    out = _child("""
        import json, threading
        import symdl
        from symdl.lazy_imports import sympy

        errors, barrier = [], threading.Barrier(8)

        def use():
            barrier.wait()
            try:
                assert (sympy.Symbol("x") + 1).free_symbols == {sympy.Symbol("x")}
            except Exception as error:
                errors.append(repr(error))

        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print(json.dumps(errors))
    """, tmp_path)
    assert out == []


def test_a_cold_start_runs_sympy_and_a_warm_start_does_not(tmp_path: Path) -> None:
    cold = _child(TRAIN_ONCE, tmp_path)
    warm = _child(TRAIN_ONCE, tmp_path)
    assert cold["sympy"] is True  # generating fuses elementwise chains with sympy bodies
    assert warm["sympy"] is False  # the module came from the cache
    assert warm["loss"] == cold["loss"]  # the same module, the same step


def test_sympy_imported_after_symdl_is_the_whole_module(tmp_path: Path) -> None:
    # A user's own `import sympy` after `import symdl` runs it: an sd.elementwise body built
    # with it differentiates and generates, and computes what numpy computes.
    out = _child("""
        import json
        import numpy as np
        import symdl as sd
        import sympy
        from symdl.lazy_imports import is_loaded

        softplus = sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), "softplus")
        x = sd.placeholder("x", (3,), "float64")
        module = sd.compile({"f": ([x], [softplus(x), sd.grad(sd.sum(softplus(x)), x)])}, "sp")
        v = np.array([-2.0, 0.0, 3.0])
        value, slope = module.f(v)
        print(json.dumps({"sympy": is_loaded("sympy"), "version": sympy.__version__,
                          "value": np.abs(value - np.log1p(np.exp(v))).max(),
                          "slope": np.abs(slope - 1 / (1 + np.exp(-v))).max()}))
    """, tmp_path)
    assert out["sympy"] is True and out["version"]
    assert out["value"] < 1e-14 and out["slope"] < 1e-14


def test_sympy_imported_before_symdl_is_used_as_it_is(tmp_path: Path) -> None:
    out = _child("""
        import json
        import sympy
        import symdl.lazy_imports as lazy
        print(json.dumps({"same": lazy.sympy is sympy, "sympy": lazy.is_loaded("sympy")}))
    """, tmp_path)
    assert out == {"same": True, "sympy": True}


def test_defer_and_is_loaded_in_this_process() -> None:
    # sympy has run here (the test session generated modules); json is an ordinary import.
    assert defer("json") is sys.modules["json"] and is_loaded("json")
    assert not is_loaded("a_module_nobody_imported")
    with pytest.raises(ModuleNotFoundError, match="no_such_module_for_symdl"):
        defer("no_such_module_for_symdl")
