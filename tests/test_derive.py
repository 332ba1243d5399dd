"""Tests for symdl.derive: classroom derivations end in the textbook result, every step's
expression has the generated code's numbers, the lecture trace, rendering and the CLI.

References are independent: hand-written numpy formulas of the textbook gradients, central
finite differences in float64, and sympy's own differentiation for scalar forms.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from types import FrameType

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.derive import code_blocks, derive, to_sympy, trace
from symdl.ir import toposort
from symdl.provenance import annotate
from symdl.render import find_chromium

ROOT = Path(__file__).resolve().parents[1]
CLASSROOM = ROOT / "examples" / "classroom"


def load(name: str) -> dict:
    return runpy.run_path(str(CLASSROOM / f"{name}.py"), run_name="__test__")


def evaluate(outputs: list[sd.Expr], feed: dict[sd.Expr, np.ndarray]) -> list[np.ndarray]:
    """Values of ``outputs`` through a generated module, without rewrites (the IR as shown)."""
    inputs = [leaf for leaf in feed if any(leaf is n for n in toposort(outputs))]
    module = sd.compile({"f": (inputs, outputs)}, "derive_eval", simplify=False)
    return [np.asarray(v) for v in module.f(*(feed[i] for i in inputs))]


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def one_hot_rows(rng: np.random.Generator, n: int, k: int, dtype: str) -> np.ndarray:
    return np.eye(k, dtype=dtype)[rng.integers(0, k, n)]


# --------------------------------------------------------------------------- data per example


def feed_for(name: str, m: dict, rng: np.random.Generator) -> dict[sd.Expr, np.ndarray]:
    n = 7
    if name == "linear_regression_scalar":
        return {m[k]: np.float64(rng.normal()) for k in ("x", "y", "w", "b")}
    if name == "linear_regression_matrix":
        return {m["X"]: rng.normal(size=(n, 3)), m["y"]: rng.normal(size=n),
                m["w"]: rng.normal(size=3)}
    if name == "logistic_regression":
        return {m["X"]: rng.normal(size=(n, 4)), m["y"]: rng.integers(0, 2, n).astype(float),
                m["w"]: rng.normal(size=4), m["b"]: np.float64(rng.normal())}
    if name == "softmax_regression":
        return {m["x"]: rng.random((n, 784), dtype=np.float32),
                m["y"]: one_hot_rows(rng, n, 10, "float32"),
                m["W"]: (0.01 * rng.normal(size=(784, 10))).astype(np.float32),
                m["b"]: (0.1 * rng.normal(size=10)).astype(np.float32)}
    if name == "mlp":
        return {m["x"]: rng.random((n, 784), dtype=np.float32),
                m["y"]: one_hot_rows(rng, n, 10, "float32"),
                m["W1"]: (0.05 * rng.normal(size=(784, 32))).astype(np.float32),
                m["b1"]: (0.1 * rng.normal(size=32)).astype(np.float32),
                m["W2"]: (0.2 * rng.normal(size=(32, 10))).astype(np.float32),
                m["b2"]: (0.1 * rng.normal(size=10)).astype(np.float32)}
    if name == "softplus_sympy":
        return {m["x"]: rng.normal(size=n), m["w"]: np.float64(rng.normal())}
    if name == "lecture_trace":
        return {m["x1"]: np.float64(2.0), m["x2"]: np.float64(5.0)}
    raise KeyError(name)


def textbook(name: str, m: dict, f: dict) -> list[np.ndarray]:
    """The gradients as a textbook writes them, in numpy."""
    v = {k: f[m[k]] for k in m if isinstance(m[k], sd.Expr) and m[k] in f}
    if name == "linear_regression_scalar":
        r = v["w"] * v["x"] + v["b"] - v["y"]
        return [2 * r * v["x"], 2 * r]
    if name == "linear_regression_matrix":
        X, y, w = v["X"], v["y"], v["w"]
        return [2 / len(y) * X.T @ (X @ w - y)]
    if name == "logistic_regression":
        X, y = v["X"], v["y"]
        p = sigmoid(X @ v["w"] + v["b"])
        return [X.T @ (p - y) / len(y), np.sum(p - y) / len(y)]
    if name == "softmax_regression":
        x, y = v["x"].astype(float), v["y"].astype(float)
        logits_bar = (softmax(x @ v["W"] + v["b"]) - y) / len(y)
        return [x.T @ logits_bar, logits_bar.sum(axis=0)]
    if name == "mlp":
        x, y = v["x"].astype(float), v["y"].astype(float)
        a = x @ v["W1"] + v["b1"]
        h = np.maximum(a, 0)
        logits_bar = (softmax(h @ v["W2"] + v["b2"]) - y) / len(y)
        a_bar = (logits_bar @ v["W2"].T) * (a > 0)
        return [x.T @ a_bar, a_bar.sum(axis=0), h.T @ logits_bar, logits_bar.sum(axis=0)]
    if name == "softplus_sympy":
        return [np.sum(sigmoid(v["w"] * v["x"]) * v["x"])]
    if name == "lecture_trace":
        return [1 / v["x1"] + v["x2"], v["x1"] - np.cos(v["x2"])]
    raise KeyError(name)


EXAMPLES = [
    "linear_regression_scalar", "linear_regression_matrix", "logistic_regression",
    "softmax_regression", "mlp", "softplus_sympy", "lecture_trace",
]


@pytest.fixture(scope="module", params=EXAMPLES)
def example(request: pytest.FixtureRequest) -> tuple[str, dict, sd.derive.Derivation]:
    m = load(request.param)
    return request.param, m, derive(m["loss"], m["WRT"])


def test_result_is_the_textbook_gradient(example: tuple) -> None:
    name, m, d = example
    f = feed_for(name, m, np.random.default_rng(0))
    got = evaluate([r.simplified for r in d.results], f)
    tol = 1e-5 if m["loss"].dtype == "float32" else 1e-10
    for g, want in zip(got, textbook(name, m, f), strict=True):
        np.testing.assert_allclose(g, want, rtol=tol, atol=tol)
    # The unsimplified derivation agrees too (simplification changes the form, not the value).
    for g, r in zip(got, evaluate([r.raw for r in d.results], f)):
        np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


def test_least_squares_matches_central_differences() -> None:
    m = load("linear_regression_matrix")
    d = derive(m["loss"], m["WRT"])
    f = feed_for("linear_regression_matrix", m, np.random.default_rng(1))
    (g,) = evaluate([d.results[0].simplified], f)
    X, y, w = f[m["X"]], f[m["y"]], f[m["w"]]
    eps = 1e-6
    fd = np.array([
        (np.mean((X @ (w + e) - y) ** 2) - np.mean((X @ (w - e) - y) ** 2)) / (2 * eps)
        for e in np.eye(3) * eps
    ])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("linear_regression_scalar",
         lambda s: [sympy.diff((s["w"] * s["x"] + s["b"] - s["y"]) ** 2, s[k]) for k in "wb"]),
        ("lecture_trace", lambda s: [sympy.diff(sympy.log(s["x1"]) + s["x1"] * s["x2"]
                                                - sympy.sin(s["x2"]), s[k]) for k in ("x1", "x2")]),
    ],
)
def test_scalar_results_agree_with_sympy(name: str, expected) -> None:  # type: ignore[no-untyped-def]
    m = load(name)
    d = derive(m["loss"], m["WRT"])
    symbols = {k: sympy.Symbol(k, real=True) for k in ("x", "y", "w", "b", "x1", "x2")}
    for result, want in zip(d.results, expected(symbols), strict=True):
        assert sympy.simplify(to_sympy(result.simplified) - want) == 0
        assert sympy.simplify(to_sympy(result.raw) - want) == 0


def test_softplus_local_derivative_comes_from_sympy() -> None:
    m = load("softplus_sympy")
    d = derive(m["loss"], m["WRT"])
    step = next(s for s in d.steps if s.node.op.name == "elementwise")
    (_, derivative), = step.local
    assert "e^{" in derivative and "\\log" not in derivative  # e^z / (e^z + 1), not log(...)
    assert r"\log{\left(e^{" in step.definition.latex  # the body is written out by sympy


# --------------------------------------------------------------------------- steps vs code


def _generated_locals(source: str, args: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Run the generated ``derivation`` function and capture its local values at return."""
    namespace: dict = {}
    exec(compile(source, "<derivation>", "exec"), namespace)  # noqa: S102 - our generated code
    captured: dict[str, np.ndarray] = {}

    def tracer(frame: FrameType, event: str, arg: object):  # type: ignore[no-untyped-def]
        if frame.f_code.co_name != "derivation":
            return None
        if event == "return":
            captured.update({k: np.array(v) for k, v in frame.f_locals.items()
                             if isinstance(v, (np.ndarray, np.generic))})
        return tracer

    sys.settrace(tracer)
    try:
        namespace["derivation"](*args)
    finally:
        sys.settrace(None)
    return captured


@pytest.mark.parametrize("name", ["softmax_regression", "mlp", "logistic_regression",
                                  "lecture_trace", "linear_regression_matrix"])
def test_every_step_has_the_generated_codes_numbers(name: str) -> None:
    m = load(name)
    d = derive(m["loss"], m["WRT"])
    f = feed_for(name, m, np.random.default_rng(2))
    inputs = [leaf for leaf in toposort([d.target, *(r.raw for r in d.results)])
              if leaf.is_leaf and leaf.op.name != "constant"]
    # Rewrites may move a factor from one step's lines to another's (y / N here, the minus
    # there), so each step is compared with the code generated without rewrites, where its
    # lines compute exactly its expression; the rewritten code must give the same gradients.
    raw_source = sd.generate({"derivation": (inputs, [d.target, *(r.raw for r in d.results)])},
                             "derivation", simplify=False)
    local = _generated_locals(raw_source, [f[leaf] for leaf in inputs])
    final = _generated_locals(d.code, [f[leaf] for leaf in inputs])
    shown = [c.expr for s in d.steps for c in s.contributions] + [s.adjoint for s in d.steps]
    values = evaluate(shown, f)
    tol = 1e-5 if m["loss"].dtype == "float32" else 1e-10

    def in_code(value: np.ndarray, names: list[str] | None = None) -> bool:
        pool = local if names is None else {k: local[k] for k in names if k in local}
        return any(v.shape == value.shape and np.allclose(v, value, rtol=tol, atol=tol)
                   for v in pool.values())

    k = 0
    raw_blocks = code_blocks(raw_source)
    origins = annotate([d.target, *(r.raw for r in d.results)])[1].origins
    for s in d.steps:
        contributions = values[k : k + len(s.contributions)]
        k += len(s.contributions)
        lines = raw_blocks.get(s.number, []) if s.number is not None else []
        assigned = [line.split(" = ")[0] for line in lines[1:] if " = " in line]
        for c, value in zip(s.contributions, contributions):
            # What the step sends is computed in its own lines, or is its incoming adjoint
            # passed on unchanged (the + of a sum), computed by the step above, or is a node
            # that an earlier step's rule built first (its code is in that step's lines).
            shared = origins.get(c.expr) is not s.node
            assert in_code(value, assigned) or c.expr is s.adjoint or (
                shared and in_code(value)), (s.number, c.text)
    for s, value in zip(d.steps, values[k:]):
        # Each incoming adjoint is a value of the code (the seed 1 is a literal there).
        assert in_code(value) or s.adjoint.op.name == "constant", (s.number, "adjoint")
    # The derivation's code is the rewritten one; its gradients are the ones shown.
    assert [s.code for s in d.steps if s.number] == [
        code_blocks(d.code).get(s.number, []) for s in d.steps if s.number]
    (_, *outputs) = evaluate([d.target, *(r.raw for r in d.results)], f)
    for r, value in zip(d.results, outputs):
        name = f"{r.wrt.name}_grad"
        np.testing.assert_allclose(final[name], value, rtol=tol, atol=tol)


def test_step_numbers_are_the_codes() -> None:
    m = load("softmax_regression")
    d = derive(m["loss"], m["WRT"])
    numbers = annotate([m["loss"], *(r.raw for r in d.results)])[1].steps
    assert [s.number for s in d.steps] == [1, 2, 3, 4, 5]
    assert [numbers[s.node] for s in d.steps] == [1, 2, 3, 4, 5]
    assert d.steps[0].node is d.target  # step 1 is the loss, then down to x @ W
    source = sd.generate(m["functions"], "softmax_regression")
    blocks = code_blocks(source)
    assert blocks and set(blocks) <= {1, 2, 3, 4, 5}
    by_number = {s.number: s for s in d.steps}
    for k, lines in blocks.items():
        formula = lines[0].split("grad of: ", 1)[1]
        node = by_number[k].node
        assert formula.split(" = ", 1)[-1].startswith(node.op.name.split("_")[0]) or (
            node.name and formula.startswith(node.name)) or node.op.name in ("matmul", "add")
    assert any(line.startswith("W_grad = ") for line in blocks[5])


def test_lecture_steps_follow_the_lecture_order() -> None:
    m = load("lecture_trace")
    d = derive(m["loss"], m["WRT"])
    assert [f.text_symbol for f in d.forward] == ["v1", "v2", "v3", "v4", "y"]
    assert [s.definition.text for s in d.steps] == [
        "v4 - v3", "v1 + v2", "sin(x2)", "x1 * x2", "log(x1)"]
    add_step = d.steps[1]
    assert add_step.number == 2 and add_step.code == []  # the + passes its adjoint through


# --------------------------------------------------------------------------- trace


def test_lecture_trace_values() -> None:
    m = load("lecture_trace")
    t = trace(m["loss"], m["WRT"], m["POINT"])
    x1, x2 = 2.0, 5.0
    forward = {r.text: float(r.value) for r in t.forward}
    assert forward == pytest.approx({
        "v-1": x1, "v0": x2, "v1": np.log(x1), "v2": x1 * x2, "v3": np.sin(x2),
        "v4": np.log(x1) + x1 * x2, "v5": np.log(x1) + x1 * x2 - np.sin(x2)}, rel=1e-12)
    reverse = {r.text: float(r.value) for r in t.reverse}
    assert reverse == pytest.approx({
        "v5_bar": 1.0, "v4_bar": 1.0, "v3_bar": -1.0, "v2_bar": 1.0, "v1_bar": 1.0,
        "v0_bar": x1 - np.cos(x2), "v-1_bar": 1 / x1 + x2}, rel=1e-12)
    md = t.to_markdown(digits=3)
    for shown in ("11.652", "5.500", "1.716", r"\bar{v}_{-1}"):
        assert shown in md
    assert r"\bar{v}_{3} \, \cos\left(v_{0}\right) + \bar{v}_{2} \, v_{-1}" in md


def test_trace_needs_every_value() -> None:
    m = load("lecture_trace")
    with pytest.raises(ValueError, match="x2"):
        trace(m["loss"], m["WRT"], {m["x1"]: 2.0})


# --------------------------------------------------------------------------- rendering


@pytest.fixture(scope="module")
def softmax_derivation() -> sd.derive.Derivation:
    m = load("softmax_regression")
    return derive(m["loss"], m["WRT"])


def test_markdown_uses_matrix_notation(softmax_derivation) -> None:  # type: ignore[no-untyped-def]
    md = softmax_derivation.to_markdown()
    assert r"{x}^\top" in md and r"\operatorname{softmax}\left(\text{logits}\right)" in md
    assert r"\overline{\text{logits}}" in md and r"\mathbf{1}^\top" in md
    assert "```python" in md and "# step 5: grad of: x @ W" in md
    assert softmax_derivation._repr_markdown_() == md
    assert softmax_derivation._repr_latex_().startswith(r"$$\begin{aligned}")


def test_text_and_tex(softmax_derivation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    text = str(softmax_derivation)
    assert "logits_bar += v2_bar[:, None] * (softmax(logits, axis=1) - y)" in text  # numpy
    assert "W_bar += x.T @ v1_bar" in text
    tex = softmax_derivation.to_latex()
    assert tex.startswith(r"\documentclass{article}") and tex.rstrip().endswith(r"\end{document}")
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}") >= 6
    for suffix in (".html", ".md", ".tex", ".txt"):
        softmax_derivation.save(str(tmp_path / f"d{suffix}"))
        assert (tmp_path / f"d{suffix}").stat().st_size > 500
    with pytest.raises(ValueError, match=r"\.html, \.md"):
        softmax_derivation.save(str(tmp_path / "d.pdf"))


def test_derive_refuses_empty_wrt() -> None:
    m = load("softmax_regression")
    with pytest.raises(sd.errors.GradientError, match="wrt is empty"):
        derive(m["loss"], [])


def test_cli_writes_each_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from symdl.cli import main

    model = str(CLASSROOM / "linear_regression_matrix.py")
    out = tmp_path / "lsq.md"
    assert main(["derive", model, "--wrt", "w", "-o", str(out)]) == 0
    assert r"\frac{\partial \text{loss}}{\partial w}" in out.read_text()
    assert main(["derive", model, "--wrt", "w"]) == 0
    assert "d loss / d w = 2 / N * (X.T @ r)" in capsys.readouterr().out  # textbook form
    assert main(["derive", model, "--wrt", "W"]) == 2  # a usage error, on one line
    err = capsys.readouterr().err
    assert "its leaves are X, w, y" in err and "Traceback" not in err


def test_size_products_print_with_brackets() -> None:
    # Regression: `sum / (2 * N)` printed as `sum / 2 * N` in comments and derivations.
    x = sd.placeholder("x", (None, 2))
    text = sd.derive(sd.mean(x * sd.parameter("p", (None, 2))).named("m"),
                     sd.parameter("p", (None, 2))).to_text()
    assert "/ (2 * N)" in text


# --------------------------------------------------------------------------- browser


def _png_decoder():  # type: ignore[no-untyped-def]
    """The dependency-free PNG decoder of tests/test_render_html.py."""
    namespace = runpy.run_path(str(Path(__file__).with_name("test_render_html.py")))
    return namespace["decode_png"]


@pytest.mark.skipif(find_chromium() is None,
                    reason="chromium not installed (apt-get install chromium); the HTML page "
                    "is checked in a headless browser only where one is available")
def test_html_page_in_headless_chromium(softmax_derivation, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from symdl.render import screenshot
    decode_png = _png_decoder()

    page = tmp_path / "derivation.html"
    softmax_derivation.save(str(page))
    result = screenshot(page, tmp_path / "derivation.png", width=1000, height=1200)
    assert result.console_errors == []  # no script errors, no KaTeX errors, no blocked loads
    assert 'data-math="rendered"' in result.dom
    assert result.dom.count('class="katex"') > 25
    assert 'class="katex-error"' not in result.dom
    pixels = decode_png(result.png_path)[..., :3]
    non_white = np.any(pixels < 250, axis=-1).sum()
    assert non_white > 20_000, f"only {non_white} non-white pixels"
