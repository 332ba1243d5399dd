"""Every printed formula of a derivation, evaluated: issue 15's check that a page is right.

`tests/latex_eval.py` reads the LaTeX a page shows (forward definitions, each step's incoming
adjoint and what its rule sends, the results) and computes it with numpy; the values bound to
the symbols and the values compared against come from a generated module of the same graph.
A formula that reads differently from what the code computes (a missing bracket, a transpose
on the wrong side, a constant where a symbol belongs) fails here.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy

import symdl as sd
from symdl.derive import derive, latex
from symdl.derive.latex import bar
from symdl.ir import toposort
from symdl.render import find_chromium
from tests.latex_eval import Ambiguous, evaluate
from tests.test_derive import CLASSROOM, EXAMPLES, feed_for, load


def values(outputs: list[sd.Expr], feed: dict[sd.Expr, np.ndarray]) -> list[np.ndarray]:
    """The outputs' values through a generated module (without rewrites: the IR as shown)."""
    inputs = [leaf for leaf in feed if any(leaf is n for n in toposort(outputs))]
    module = sd.compile({"f": (inputs, outputs)}, "derive_eval", simplify=False)
    return [np.asarray(v) for v in module.f(*(feed[i] for i in inputs))]


def check_page(d: sd.derive.Derivation, feed: dict[sd.Expr, np.ndarray], batch: int,
               rtol: float = 1e-9) -> int:
    """Evaluate every formula on ``d``'s page and compare; returns how many were checked."""
    nodes = [f.node for f in d.forward]
    adjoints = [s.adjoint for s in d.steps]
    sent = [c.expr for s in d.steps for c in s.contributions]
    results = [r.simplified for r in d.results]
    got = iter(values([*nodes, *adjoints, *sent, *results], feed))
    env: dict[str, object] = {"N": batch}
    env.update({d.symbols[leaf]: value for leaf, value in feed.items() if leaf in d.symbols})
    expected: list[tuple[str, str, np.ndarray]] = []
    for f in d.forward:
        env[f.symbol] = value = next(got)
        expected.append((f"{f.symbol} =", f.latex, value))
    for s in d.steps:
        env[bar(s.definition.symbol)] = value = next(got)
        if s.adjoint_latex != "1":
            expected.append((f"step {s.number}: incoming", s.adjoint_latex, value))
    for s in d.steps:
        for c in s.contributions:
            value = next(got)
            expected.append((f"step {s.number}: {bar(c.symbol)} +=", c.latex, value))
            # An elementwise step: its adjoint times the local derivative is what it sends.
            local = [dd for x, dd in s.local if x == c.symbol]
            alone = sum(1 for other in s.contributions if other.symbol == c.symbol) == 1
            if len(local) == 1 and alone and c.input.shape == s.node.shape:
                text = rf"{bar(s.definition.symbol)} \odot \left({local[0]}\right)"
                expected.append((f"step {s.number}: local d/d{c.symbol}", text, value))
    for r in d.results:
        value = next(got)
        expected.append((f"result d/d{r.wrt.name}", r.latex, value))
        if d.gathered.get(r.wrt):  # the final line per parameter, in the steps' symbols
            expected.append((f"gathered {r.wrt.name}", d.gathered[r.wrt], value))
    for where, text, want in expected:
        try:
            shown = evaluate(text, env)
        except ValueError as error:
            raise AssertionError(f"{where} {text}: cannot be evaluated: {error}") from error
        # A column (N, 1) and a vector (N,) are one column on paper.
        assert shown.squeeze().shape == want.squeeze().shape, \
            f"{where} {text}: shape {shown.shape} != {want.shape}"
        np.testing.assert_allclose(shown.squeeze(), want.squeeze(), rtol=rtol, atol=rtol,
                                   err_msg=f"{where} {text}")
    return len(expected)


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# The functions the plain-text derivation calls, in numpy (written here, not taken from symdl).
TEXT_FUNCTIONS = {
    "sum": lambda a, axis=None, keepdims=False: np.sum(a, axis=axis, keepdims=keepdims),
    "softmax": lambda z, axis: np.exp(_log_softmax(z, axis)),
    "softmax_cross_entropy": lambda z, y, axis: -(y * _log_softmax(z, axis)).sum(axis=axis),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)), "softplus": lambda z: np.logaddexp(0, z),
    "relu": lambda z: np.maximum(z, 0), "square": np.square, "log": np.log, "exp": np.exp,
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "ones": np.ones, "outer": np.outer,
    "swish": lambda z: z / (1 + np.exp(-z)),  # the user function of the swish case
    # TensorFlow's per-element loss, by its definition through the sigmoid
    "sigmoid_cross_entropy": lambda z, y: -(y * np.log(1 / (1 + np.exp(-z)))
                                            + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z)))),
}


def check_text(d: sd.derive.Derivation, feed: dict[sd.Expr, np.ndarray], batch: int,
               rtol: float = 1e-9) -> int:
    """E6: the plain text says what the page says: each of its formulas, run as numpy (a
    user function's derivative, written by name, is left out), gives the code's value."""
    nodes = [f.node for f in d.forward]
    adjoints = [s.adjoint for s in d.steps]
    sent = [c.expr for s in d.steps for c in s.contributions]
    results = [r.simplified for r in d.results]
    got = iter(values([*nodes, *adjoints, *sent, *results], feed))
    env: dict[str, object] = {**TEXT_FUNCTIONS, "N": batch}
    env.update({leaf.name: value for leaf, value in feed.items()})
    expected: list[tuple[str, np.ndarray]] = []
    for f in d.forward:
        env[f.text_symbol] = value = next(got)
        expected.append((f.text, value))
    for s in d.steps:
        env[f"{s.definition.text_symbol}_bar"] = value = next(got)
        expected.append((s.adjoint_text, value))
    expected += [(c.text, next(got)) for s in d.steps for c in s.contributions]
    for r in d.results:
        value = next(got)
        expected += [(r.text, value), (d.gathered_text.get(r.wrt) or r.text, value)]
    checked = 0
    for text, want in expected:
        if any(f"{name}(" in text for name in ("dswish_dz", "dsoftplus_dz")):
            continue
        shown = np.asarray(eval(text, {"__builtins__": {}}, env))  # noqa: S307 (our own text)
        if shown.size == 1 and want.size > 1:  # a scalar adjoint the text broadcasts
            shown = np.broadcast_to(shown, want.shape)
        assert shown.squeeze().shape == want.squeeze().shape, f"{text}: {shown.shape}"
        np.testing.assert_allclose(shown.squeeze(), want.squeeze(), rtol=rtol, atol=rtol,
                                   err_msg=text)
        checked += 1
    return checked


# --------------------------------------------------------------------------- the cases


@pytest.mark.parametrize("name", EXAMPLES)
def test_classroom_pages_evaluate_to_the_code(name: str) -> None:
    m = load(name)
    feed = feed_for(name, m, np.random.default_rng(0))
    float32 = any(np.asarray(v).dtype == np.float32 for v in feed.values())
    d = derive(m["loss"], m["WRT"])
    assert check_page(d, feed, 7, 2e-4 if float32 else 1e-9) > 3
    assert check_text(d, feed, 7, 2e-4 if float32 else 1e-9) > 3


swish = sd.elementwise(lambda z: z / (1 + sympy.exp(-z)), name="swish")


def swish_model() -> tuple[sd.Expr, list[sd.Expr], dict[sd.Expr, np.ndarray]]:
    rng = np.random.default_rng(1)
    X = sd.placeholder("X", (None, 3), "float64")
    W = sd.parameter("W", (3, 4), "float64")
    h = swish(X @ W).named("h")
    loss = sd.mean(sd.sum(h * h, axis=1)).named("loss")
    return loss, [W], {X: rng.normal(size=(5, 3)), W: rng.normal(size=(3, 4))}


def test_swish_page_evaluates_to_the_code() -> None:
    """E1: the derivative of swish is a sum; the page must bracket it."""
    loss, wrt, feed = swish_model()
    d = derive(loss, wrt)
    assert check_page(d, feed, 5) > 5
    assert check_text(d, feed, 5) > 5
    step = next(s for s in d.steps if s.definition.symbol == "h")
    assert r"\bar{h} \odot \left(" in step.contributions[0].latex


def test_no_batch_axis_is_an_outer_product() -> None:
    """E2: one example, no batch axis: dL/dW = x (p - y)^T."""
    rng = np.random.default_rng(2)
    x = sd.placeholder("x", (5,), "float64")
    y = sd.placeholder("y", (3,), "float64")
    W = sd.parameter("W", (5, 3), "float64")
    b = sd.parameter("b", (3,), "float64")
    logits = (x @ W + b).named("logits")
    loss = sd.softmax_cross_entropy(logits, y).named("loss")
    d = derive(loss, [W, b])
    feed = {x: rng.normal(size=5), y: np.eye(3)[1], W: rng.normal(size=(5, 3)),
            b: rng.normal(size=3)}
    check_page(d, feed, 1)
    check_text(d, feed, 1)
    w_result = d.results[0].latex
    assert w_result.startswith("x \\, {") and w_result.endswith("}^\\top"), w_result
    assert "1.0" not in w_result and "1.0" not in d.results[1].latex  # batch size 1


def test_grad_of_grad_prints_the_local_derivative() -> None:
    """E3: in grad of grad the adjoint reads by its symbol even where it is the constant 1."""
    x = sd.placeholder("x", (), "float64")
    g = sd.grad((x * x * x).named("y"), x)
    d = derive(g, [x])
    check_page(d, {x: np.float64(1.3)}, 1)
    check_text(d, {x: np.float64(1.3)}, 1)
    for s in d.steps:
        for c in s.contributions:
            adjoint = bar(s.definition.symbol)
            assert f"{adjoint} \\, {adjoint}" not in c.latex
            assert f"{s.definition.text_symbol}_bar * {s.definition.text_symbol}_bar" \
                not in c.text


def test_text_shows_symbols_where_the_page_does() -> None:
    """E6: the .txt never writes out an adjoint's value where the page shows its symbol."""
    m = load("softmax_regression")
    text = derive(m["loss"], m["WRT"]).to_text()
    assert "1.0 / N" not in text
    assert "v2_bar += v3_bar" in text


def test_step_numbers_have_no_gaps_and_run_in_order() -> None:
    """E5: steps 1, 2, 3, ... in the order the page lists them."""
    loss, wrt, _ = textbook_logistic()
    d = derive(loss, wrt)
    numbers = [s.number for s in d.steps if s.number is not None]
    assert numbers == list(range(1, len(numbers) + 1))


def test_folded_is_said_only_where_true() -> None:
    """E7: no "folded into a later step" on the last step, nor where no step has code."""
    m = load("lecture_trace")
    md = derive(m["loss"], m["WRT"]).to_markdown()
    assert "later one" not in md
    x = sd.placeholder("x", (5,), "float64")
    W = sd.parameter("W", (5, 3), "float64")
    b = sd.parameter("b", (3,), "float64")
    d = derive(sd.sum(sd.square(x @ W + b)).named("loss"), [W, b])
    last = d.to_markdown().split("### Step")[-1]
    assert "later one" not in last


def test_hadamard_and_matrix_products_are_bracketed() -> None:
    """Notation: p (.) (a 1) never prints as p (.) a 1 (read as (p (.) a) 1)."""
    a = sd.placeholder("a", (None, 4), "float64")
    p = sd.placeholder("p", (None, 4), "float64")
    e = p * sd.sum(a, axis=1, keepdims=True)
    text = latex(e)
    rng = np.random.default_rng(3)
    va, vp = rng.normal(size=(6, 4)), rng.normal(size=(6, 4))
    assert text == r"p \odot \left(a \, \mathbf{1} \, \mathbf{1}_{4}^\top\right)"
    np.testing.assert_allclose(evaluate(text, {"a": va, "p": vp}),
                               vp * va.sum(axis=1, keepdims=True))
    with pytest.raises(Ambiguous):
        evaluate(r"p \odot a \, \mathbf{1}", {"a": va, "p": vp})


def test_heaviside_reads_as_an_iverson_bracket() -> None:
    m = load("mlp")
    md = derive(m["loss"], m["WRT"]).to_markdown()
    assert r"\theta" not in md and r"\left[a > 0\right]" in md


def test_data_gets_no_local_derivative() -> None:
    m = load("logistic_regression")
    d = derive(m["loss"], m["WRT"])
    for s in d.steps:
        assert all(sym not in ("X", "y") for sym, _ in s.local), s.definition.latex


# --------------------------------------------------------------------------- E4


def textbook_logistic() -> tuple[sd.Expr, list[sd.Expr], dict[sd.Expr, np.ndarray]]:
    """``-(y log p + (1 - y) log(1 - p))`` as a textbook writes it, with weight decay."""
    rng = np.random.default_rng(4)
    X = sd.placeholder("X", (None, 4), "float64")
    y = sd.placeholder("y", (None,), "float64")
    w = sd.parameter("w", (4,), "float64")
    lam = sd.placeholder("lam", (), "float64")
    p = sd.sigmoid(X @ w).named("p")
    data = sd.mean(-(y * sd.log(p) + (1 - y) * sd.log(1 - p)))
    loss = (data + 0.5 * lam * sd.sum(w * w)).named("loss")
    feed = {X: rng.normal(size=(6, 4)), y: rng.integers(0, 2, 6).astype(float),
            w: rng.normal(size=4), lam: np.float64(0.1)}
    return loss, [w], feed


def test_textbook_logistic_page_evaluates_to_the_code() -> None:
    loss, wrt, feed = textbook_logistic()
    d = derive(loss, wrt)
    check_page(d, feed, 6)
    check_text(d, feed, 6)


def test_textbook_logistic_is_finite_at_large_logits() -> None:
    """The module a user compiles (stabilized: simplify=False shows the raw IR, log(1 - p))."""
    loss, wrt, feed = textbook_logistic()
    (X,) = [k for k in feed if k.name == "X"]
    feed[X] = np.full((6, 4), 10.0)  # z = 40 and more: 1 - sigma(z) is 0 in float64
    feed[[k for k in feed if k.name == "w"][0]] = np.ones(4)
    inputs = list(feed)
    module = sd.compile({"f": (inputs, [loss, sd.grad(loss, wrt[0])])}, "derive_eval_e4")
    value, gradient = module.f(*(feed[i] for i in inputs))
    assert np.isfinite(value) and np.all(np.isfinite(gradient))


def test_textbook_logistic_result_is_the_textbook_form() -> None:
    """E4: the result reads lambda w + X^T (p - y) / N, with no 0.5 and no 1 - p."""
    loss, wrt, _ = textbook_logistic()
    result = derive(loss, wrt).results[0].latex
    assert "0.5" not in result and r"1 - p" not in result, result


def test_grad_of_grad_comments_are_formulas_not_ir() -> None:
    """Notation: a grad-of-grad module's comments read as formulas, not IR dumps."""
    x = sd.placeholder("x", (3,), "float64")
    g = sd.grad(sd.sum(sd.tanh(x) * x).named("y"), x)
    source = sd.generate({"f": ([x], [g, sd.grad(sd.sum(g * g), x)])}, "grad_of_grad")
    comments = [line for line in source.splitlines() if line.strip().startswith("# ")]
    assert any("grad of:" in c for c in comments)
    for c in comments:
        assert "broadcast_to(" not in c and "reshape(" not in c and "shape=" not in c, c


def test_batch_index_is_implicit_on_every_line() -> None:
    """Notation: matrix notation throughout (no sum over n beside an implicit batch index)."""
    for name in ("softmax_regression", "mlp", "logistic_regression"):
        m = load(name)
        d = derive(m["loss"], m["WRT"])
        shown = [f.latex for f in d.forward] + [r.latex for r in d.results] + [
            c.latex for s in d.steps for c in s.contributions]
        assert not any(r"\sum" in t or "_{j}" in t or "_{n}" in t for t in shown), shown


def test_lam_reads_as_lambda() -> None:
    loss, wrt, _ = textbook_logistic()
    assert r"\lambda" in derive(loss, wrt).results[0].latex


SIGMA_MINUS_Y = r"\left(\sigma\left(z\right) - y\right)"
P_MINUS_Y = r"\left(\operatorname{softmax}\left(\text{logits}\right) - y\right)"


@pytest.mark.parametrize(("name", "expected"), [
    ("logistic_regression", [r"\frac{1}{N} \, {X}^\top \, " + SIGMA_MINUS_Y,
                             r"\frac{1}{N} \, \mathbf{1}^\top " + SIGMA_MINUS_Y]),
    ("linear_regression_matrix", [r"\frac{2}{N} \, {X}^\top \, r"]),
    ("softmax_regression", [r"\frac{1}{N} \, {x}^\top \, " + P_MINUS_Y,
                            r"\frac{1}{N} \, \mathbf{1}^\top " + P_MINUS_Y]),
])
def test_results_in_textbook_form(name: str, expected: list[str]) -> None:
    """Item 2: 1/N factored out, X^T (sigma(z) - y) / N, (2/N) X^T r (values: the page test)."""
    m = load(name)
    assert [r.latex for r in derive(m["loss"], m["WRT"]).results] == expected


def test_every_step_shows_its_shapes() -> None:
    """Item 1: the adjoint's and each contribution's shape on every step, in every format."""
    m = load("softmax_regression")
    d = derive(m["loss"], m["WRT"])
    md, text, tex = d.to_markdown(), d.to_text(), d.to_latex()
    assert r"$\overline{\text{logits}} \mathrel{+}= \left(\bar{v}_{2} \, \mathbf{1}_{10}^\top" \
        in md
    assert "`(N, 10)`" in md.split("### Step 3")[1].split("### Step 4")[0]
    assert "logits_bar += " in text and "    (N, 10)" in text.split("[step 3]")[1]
    assert r"\text{(N, 10)}" in tex
    assert r"\bar{W} = {x}^\top \, \bar{v}_{1}" in md  # the gathered line per parameter


def test_derivative_with_respect_to_logits() -> None:
    """Item 6: d loss / d logits, the most-taught quantity, is (softmax(logits) - y) / N."""
    m = load("softmax_regression")
    d = derive(m["loss"], [m["logits"]])
    rng = np.random.default_rng(5)
    (logits,) = d.wrt
    assert logits.is_leaf and logits.name == "logits"
    z = rng.normal(size=(7, 10))
    y = np.eye(10)[rng.integers(0, 10, 7)]
    feed = {logits: z.astype(np.float32), m["y"]: y.astype(np.float32)}
    check_page(d, feed, 7, rtol=2e-4)
    (value,) = values([d.results[0].simplified], feed)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(value, (p - y) / 7, rtol=2e-4, atol=1e-6)
    assert d.results[0].text == "(softmax(logits, axis=1) - y) / N"


def test_derivative_with_respect_to_a_hidden_value_and_a_parameter() -> None:
    m = load("mlp")
    d = derive(m["loss"], [m["a"], m["W2"]])
    feed = feed_for("mlp", m, np.random.default_rng(6))
    (a_leaf, _) = d.wrt
    x, W1, b1 = (feed[m[k]] for k in ("x", "W1", "b1"))
    feed = {k: v for k, v in feed.items() if k.name not in ("x", "W1", "b1")}
    feed[a_leaf] = x @ W1 + b1
    check_page(d, feed, 7, rtol=2e-4)


def test_derive_refuses_nested_or_unnamed_values() -> None:
    m = load("mlp")
    with pytest.raises(sd.errors.GradientError, match="one of them at a time"):
        derive(m["loss"], [m["logits"], m["a"]])
    x = sd.placeholder("x", (3,), "float64")
    with pytest.raises(sd.errors.GradientError, match="name it"):
        derive(sd.sum(sd.exp(x * 2.0)), [x * 2.0])


def test_cli_wrt_a_named_value(capsys: pytest.CaptureFixture[str]) -> None:
    from symdl.cli import main

    model = str(CLASSROOM / "softmax_regression.py")
    assert main(["derive", model, "--wrt", "logits"]) == 0
    assert "d loss / d logits = (softmax(logits, axis=1) - y) / N" in capsys.readouterr().out
    assert main(["derive", model, "--wrt", "nothing"]) == 2
    assert "its named values are logits" in capsys.readouterr().err


def test_result_collects_numbers_and_repeated_terms() -> None:
    """E4 (printing): weight decay 0.5 lam ||w||^2 reads lambda w, not 2 (0.5 lam w)."""
    loss, wrt, _ = textbook_logistic()
    result = derive(loss, wrt).results[0]
    assert result.latex.startswith(r"\lambda \, w + ") and result.text.startswith("lam * w + ")


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed")
def test_new_notation_typesets_in_headless_chromium(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The notation this issue added (ones vectors, \\odot in sympy bodies, Iverson brackets,
    shapes, gathered lines) typesets with the bundled KaTeX, without an error."""
    from symdl.render import screenshot

    m = load("mlp")
    loss, wrt, _ = swish_model()
    pages = {"mlp": derive(m["loss"], m["WRT"]), "swish": derive(loss, wrt)}
    for name, d in pages.items():
        page = tmp_path / f"{name}.html"
        d.save(str(page))
        result = screenshot(page, tmp_path / f"{name}.png", width=1000, height=1200)
        assert result.console_errors == [], name
        assert 'class="katex-error"' not in result.dom, name
        assert result.dom.count('class="katex"') > 30, name


def test_like_terms_are_joined() -> None:
    """Grad of grad of x^3 reads 6 x (it read 2 x + 2 x + x + x); swish's 2/N comes out front."""
    x = sd.placeholder("x", (), "float64")
    d = derive(sd.grad((x * x * x).named("y"), x), [x])
    assert d.results[0].text == "6.0 * x" and d.results[0].latex == r"6 \, x"
    loss, wrt, _ = swish_model()
    assert derive(loss, wrt).results[0].latex.startswith(r"\frac{2}{N} \, {X}^\top")
