"""Tests for the three evaluation traces (issue 15, item 3): the forward primal, the forward-mode
tangent (built from `jvp`) and the reverse adjoint trace, in the API, on every page format and
in ``symdl derive --at``.

References: Baydin et al. 2018, "Automatic differentiation in machine learning: a survey",
Table 2 (f(x1, x2) = ln x1 + x1 x2 - sin x2 at (2, 5): y = 11.652, y_dot = 5.5 with
x1_dot = 1, x1_bar = 5.5, x2_bar = 1.716), and central finite differences in float64.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.derive import derive, trace
from symdl.render import find_chromium

CLASSROOM = Path(__file__).resolve().parents[1] / "examples" / "classroom"


def lecture() -> dict:
    return runpy.run_path(str(CLASSROOM / "lecture_trace.py"), run_name="__test__")


def f(x1: float, x2: float) -> float:
    """The lecture function, written independently of symdl."""
    return float(np.log(x1) + x1 * x2 - np.sin(x2))


def central(fn, x: np.ndarray, direction: np.ndarray, h: float = 1e-6) -> float:  # type: ignore[no-untyped-def]
    return (fn(*(x + h * direction)) - fn(*(x - h * direction))) / (2 * h)


def test_the_papers_table_2() -> None:
    m = lecture()
    t = trace(m["loss"], m["WRT"], m["POINT"])
    # The paper prints three decimals.
    assert float(t.value("v5")) == pytest.approx(11.652, abs=5e-4)
    assert float(t.value("v5_dot")) == pytest.approx(5.5, abs=5e-4)  # y_dot, x1_dot = 1
    assert float(t.value("v-1_bar")) == pytest.approx(5.5, abs=5e-4)  # x1_bar
    assert float(t.value("v0_bar")) == pytest.approx(1.716, abs=5e-4)  # x2_bar
    # Table 2's tangent column, row by row.
    tangent = {r.text: float(r.value) for r in t.tangent}
    assert tangent == pytest.approx({
        "v-1_dot": 1.0, "v0_dot": 0.0, "v1_dot": 0.5, "v2_dot": 5.0, "v3_dot": 0.0,
        "v4_dot": 5.5, "v5_dot": 5.5}, abs=1e-12)
    assert t.seed == {"x1": 1.0, "x2": 0.0}


@pytest.mark.parametrize("seed", [{"x1": 1.0}, {"x2": 1.0}, {"x1": 0.3, "x2": -2.0}])
def test_tangents_match_central_differences(seed: dict[str, float]) -> None:
    m = lecture()
    rng = np.random.default_rng(0)
    point = np.array([rng.uniform(0.5, 3.0), rng.uniform(-3.0, 3.0)])
    direction = np.array([seed.get("x1", 0.0), seed.get("x2", 0.0)])
    t = trace(m["loss"], m["WRT"], {m["x1"]: point[0], m["x2"]: point[1]},
              {m[k]: v for k, v in seed.items()})
    # Each intermediate's tangent against the central difference of that intermediate.
    intermediates = {
        "v1": lambda a, b: np.log(a), "v2": lambda a, b: a * b, "v3": lambda a, b: np.sin(b),
        "v4": lambda a, b: np.log(a) + a * b, "v5": f,
    }
    for symbol, fn in intermediates.items():
        assert float(t.value(f"{symbol}_dot")) == pytest.approx(
            central(fn, point, direction), rel=1e-7, abs=1e-8), symbol
    # Forward mode along e_i equals reverse mode's i-th adjoint (J v = <grad, v>).
    gradient = np.array([float(t.value("v-1_bar")), float(t.value("v0_bar"))])
    assert float(t.value("v5_dot")) == pytest.approx(gradient @ direction, rel=1e-12)


def test_tangent_rows_write_the_chain_rule() -> None:
    m = lecture()
    md = trace(m["loss"], m["WRT"], m["POINT"]).to_markdown(digits=3)
    assert "**Forward tangent trace**" in md and r"\dot{x}_{1} = 1, \dot{x}_{2} = 0" in md
    assert r"| $\dot{v}_{1}$ | $\frac{1}{v_{-1}} \, \dot{v}_{-1}$ | 0.500 |" in md
    assert r"| $\dot{v}_{2}$ | $v_{0} \, \dot{v}_{-1} + v_{-1} \, \dot{v}_{0}$ | 5.000 |" in md
    assert r"| $\dot{v}_{5}$ | $\dot{v}_{4} - \dot{v}_{3}$ | 5.500 |" in md
    # The tables come in the paper's order: primal, tangent, adjoint.
    assert md.index("primal") < md.index("tangent trace") < md.index("adjoint trace")


def test_trace_on_tensors_matches_central_differences() -> None:
    # A tensor model: the tangent rows come from jvp through matmul and a reduction.
    rng = np.random.default_rng(1)
    X = sd.placeholder("X", (4, 3), "float64")
    w = sd.parameter("w", (3,), "float64")
    loss = sd.mean(sd.tanh(X @ w) ** 2)
    Xv, wv = rng.normal(size=(4, 3)), rng.normal(size=3)
    t = trace(loss, [w], {X: Xv, w: wv})
    last = t.tangent[-1]
    assert last.node is t.forward[-1].node

    def ref(*wflat: float) -> float:
        return float(np.mean(np.tanh(Xv @ np.array(wflat)) ** 2))

    direction = np.ones(3)  # the default seed: every entry of the first wrt has dot 1
    assert float(last.value) == pytest.approx(central(ref, wv, direction), rel=1e-7)


def test_every_format_shows_the_three_tables(tmp_path: Path) -> None:
    m = lecture()
    d = derive(m["loss"], m["WRT"])
    d.trace = trace(m["loss"], m["WRT"], m["POINT"])
    md, text, tex = d.to_markdown(), d.to_text(), d.to_latex()
    for page in (md, tex):
        assert "Forward primal trace" in page and "Forward tangent trace" in page
        assert "Reverse adjoint trace" in page
        assert "11.6521" in page and "5.5000" in page and "1.7163" in page
    assert "v5_dot = 5.5000" in " ".join(text.split())
    assert "Evaluation trace:" in text and "v-1_bar = 5.5000" in " ".join(text.split())
    assert tex.count(r"\begin{tabular}") == tex.count(r"\end{tabular}") == 3
    html = d.to_html()
    assert html.count("<table>") >= 4 and "11.6521" in html  # forward defs + three traces


def test_cli_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from symdl.cli import main

    model = str(CLASSROOM / "lecture_trace.py")
    out = tmp_path / "lecture.html"
    assert main(["derive", model, "--wrt", "x1", "x2", "--at", "x1=2", "x2=5",
                 "-o", str(out)]) == 0
    page = out.read_text()
    assert "Forward tangent trace" in page and "11.6521" in page and "1.7163" in page
    assert main(["derive", model, "--wrt", "x1", "x2", "--at", "x1=2", "x2=5",
                 "--tangent", "x2"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "x1_dot = 0, x2_dot = 1" in text
    assert f"v5_dot = {2 - np.cos(5):.4f}" in text  # dy/dx2 by forward mode
    assert main(["derive", model, "--wrt", "x1", "--at", "x1=2"]) == 2  # x2 has no value
    assert "x2" in capsys.readouterr().err
    assert main(["derive", model, "--wrt", "x1", "--at", "z=2"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


@pytest.mark.skipif(find_chromium() is None,
                    reason="chromium not installed (apt-get install chromium); the lecture page "
                    "is checked in a headless browser only where one is available")
def test_lecture_page_in_headless_chromium(tmp_path: Path) -> None:
    from symdl.render import screenshot

    m = lecture()
    d = derive(m["loss"], m["WRT"])
    d.trace = trace(m["loss"], m["WRT"], m["POINT"])
    page = tmp_path / "lecture.html"
    d.save(str(page))
    result = screenshot(page, tmp_path / "lecture.png", width=1000, height=1200)
    assert result.console_errors == []  # no script errors, no KaTeX errors, no blocked loads
    assert 'data-math="rendered"' in result.dom and 'class="katex-error"' not in result.dom
    assert "11.6521" in result.dom and "Forward tangent trace" in result.dom
