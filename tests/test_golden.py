"""Golden generated modules: the committed, reviewed source must match what symdl generates.

When a change alters generated code on purpose, run ``python tests/golden/update.py`` and review
the diff line by line before committing it.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pytest
from golden.update import GOLDEN, HERE, render


@pytest.mark.parametrize("golden", sorted(GOLDEN))
def test_generated_module_matches_golden(golden: str) -> None:
    expected = (HERE / golden).read_text()
    actual = render(GOLDEN[golden])
    assert actual == expected, f"regenerate with tests/golden/update.py and review {golden}"


def _load(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("golden_logreg", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_logreg_computes_the_textbook_gradient() -> None:
    mod = _load(HERE / "logreg_gen.py")
    rng = np.random.default_rng(1)
    x = rng.random((7, 784), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 7)]
    W = (rng.standard_normal((784, 10)) * 0.1).astype(np.float32)
    b = (rng.standard_normal(10) * 0.1).astype(np.float32)
    loss, W_grad, b_grad = mod.loss_and_grads(x, y, W, b)
    z = x.astype(np.float64) @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.sum(y * np.log(p), 1)), rel=1e-5)
    np.testing.assert_allclose(W_grad, x.T @ (p - y) / 7, atol=1e-6)
    np.testing.assert_allclose(b_grad, (p - y).sum(0) / 7, atol=1e-6)
    assert W_grad.dtype == np.float32 and b_grad.dtype == np.float32


def test_golden_logreg_reads_like_the_textbook() -> None:
    source = (HERE / "logreg_gen.py").read_text()
    tree = ast.parse(source)
    imports = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert [alias.name for n in imports for alias in n.names] == ["numpy"]
    assert "grad of: x @ W" in source
    assert "W_grad = x.T @ logits_bar" in source  # a view used once prints where it is used
    assert "W -= " in source and "b -= " in source  # parameters updated in place
