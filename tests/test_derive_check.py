"""Tests for the finite-difference check beside the symbolic gradient (issue 15, item 4):
``symdl.derive.check`` and ``symdl derive --check``.

References: hand-written numpy gradients and numpy central differences, independent of the
module the check compiles.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.derive import derive
from symdl.derive.check import check, random_values

CLASSROOM = Path(__file__).resolve().parents[1] / "examples" / "classroom"

EXAMPLES = [
    ("linear_regression_scalar", ["w", "b"]),
    ("linear_regression_matrix", ["w"]),
    ("logistic_regression", ["w", "b"]),
    ("softmax_regression", ["W", "b"]),
    ("mlp", ["W1", "b1", "W2", "b2"]),
    ("softplus_sympy", ["w"]),
    ("lecture_trace", ["x1", "x2"]),
]


def load(name: str) -> dict:
    return runpy.run_path(str(CLASSROOM / f"{name}.py"), run_name="__test__")


@pytest.mark.parametrize(("name", "wrt"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_classroom_gradients_pass(name: str, wrt: list[str]) -> None:
    m = load(name)
    result = check(m["loss"], [m[k] for k in wrt], seed=3)
    assert [r.name for r in result.rows] == wrt
    # float64 central differences with h = 1e-6 agree to about 1e-8 on these smooth losses
    # (the ReLU MLP is smooth almost everywhere; a kink within h of a draw is improbable).
    assert result.worst() < 1e-6, result.to_text()
    assert all(abs(r.symbolic) > 1e-6 for r in result.rows)  # a real, non-zero comparison


def test_least_squares_against_numpy() -> None:
    # The check's two numbers, recomputed by hand: (2/N) X^T (Xw - y) along the same direction.
    m = load("linear_regression_matrix")
    values = random_values(m["loss"], seed=5)
    by_name = {k.name: v for k, v in values.items()}
    X, y, w = by_name["X"], by_name["y"], by_name["w"]
    result = check(m["loss"], [m["w"]], values, seed=5)
    u = np.random.default_rng(6).normal(size=w.shape)
    u /= np.linalg.norm(u)
    grad = 2 / len(y) * X.T @ (X @ w - y)

    def loss(wv: np.ndarray) -> float:
        return float(np.mean((X @ wv - y) ** 2))

    (row,) = result.rows
    assert row.symbolic == pytest.approx(grad @ u, rel=1e-12)
    assert row.central == pytest.approx((loss(w + 1e-6 * u) - loss(w - 1e-6 * u)) / 2e-6,
                                        rel=1e-9)
    assert result.seed is None  # values given: the page says "--at", not a seed


def test_float32_models_are_checked_in_float64() -> None:
    # softmax regression is float32; in float32 a difference quotient errs by ~1e-3.
    m = load("softmax_regression")
    assert m["W"].dtype == "float32"
    assert check(m["loss"], [m["W"], m["b"]], seed=0).worst() < 1e-6


def test_a_wrong_gradient_is_caught() -> None:
    # Labels that do not sum to one break the fused rule's p - y (it assumes a distribution):
    # the gradient symdl derives is then not the loss's, and the check must say so.
    m = load("softmax_regression")
    values = random_values(m["loss"], seed=0)
    y = next(k for k in values if k.name == "y")
    values[y] = 2.0 * values[y]
    assert check(m["loss"], [m["W"], m["b"]], values).worst() > 1e-2


def test_random_labels_are_what_the_loss_expects() -> None:
    m = load("softmax_regression")
    values = {k.name: v for k, v in random_values(m["loss"], seed=1).items()}
    assert values["y"].shape == (3, 10) and values["x"].shape == (3, 784)
    assert np.array_equal(values["y"].sum(axis=1), np.ones(3, dtype=np.float32))
    assert set(np.unique(values["y"])) == {0.0, 1.0}


def test_missing_value_is_named() -> None:
    m = load("lecture_trace")
    with pytest.raises(ValueError, match="x2"):
        check(m["loss"], m["WRT"], {m["x1"]: np.float64(2.0)})


def test_every_format_shows_the_check(tmp_path: Path) -> None:
    m = load("logistic_regression")
    d = derive(m["loss"], [m["w"], m["b"]])
    d.check = check(m["loss"], [m["w"], m["b"]], seed=0)
    md, text, tex = d.to_markdown(), d.to_text(), d.to_latex()
    assert "## Finite-difference check" in md and "| `w` |" in md and "| `b` |" in md
    assert "relative error" in md and "random inputs (seed 0)" in md
    assert "Finite-difference check (float64, central, h = 1e-06, seed 0)" in text
    assert r"\subsection*{Finite-difference check}" in tex
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 1
    assert "relative error" in d.to_html()


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from symdl.cli import main

    model = str(CLASSROOM / "mlp.py")
    out = tmp_path / "mlp.md"
    assert main(["derive", model, "--wrt", "W1", "W2", "--check", "--seed", "4",
                 "-o", str(out)]) == 0
    page = out.read_text()
    assert "| `W1` |" in page and "| `W2` |" in page and "(seed 4)" in page
    assert main(["derive", str(CLASSROOM / "lecture_trace.py"), "--wrt", "x1", "x2",
                 "--at", "x1=2", "x2=5", "--check"]) == 0
    text = capsys.readouterr().out
    assert "at --at" in text and "symbolic 5.5 " in text


def test_check_is_deterministic() -> None:
    x = sd.placeholder("x", (5,), "float64")
    w = sd.parameter("w", (5,), "float64")
    loss = sd.sum(sd.exp(w * x))
    first, second = check(loss, [w], seed=2), check(loss, [w], seed=2)
    assert first.rows == second.rows
    assert check(loss, [w], seed=3).rows != first.rows


def test_named_value_is_checked_as_derive_cuts_it() -> None:
    # --wrt logits: d loss / d logits = (softmax(logits) - y) / N, checked at the cut.
    m = load("softmax_regression")
    result = check(m["loss"], [m["logits"]], seed=1)
    assert [r.name for r in result.rows] == ["logits"]
    assert result.worst() < 1e-6
