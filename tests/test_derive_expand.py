"""Expanding a fused rule on request (issue 15, item 7): softmax_cross_entropy differentiated
through log p and the softmax Jacobian, every printed formula evaluated against the code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.derive import derive
from symdl.errors import GradientError
from symdl.render import find_chromium
from tests.test_derive import feed_for, load
from tests.test_derive_eval import check_page


def softmax_regression() -> tuple[dict, dict]:
    m = load("softmax_regression")
    return m, feed_for("softmax_regression", m, np.random.default_rng(0))


def test_expanded_page_evaluates_to_the_code() -> None:
    m, feed = softmax_regression()
    float32 = any(np.asarray(v).dtype == np.float32 for v in feed.values())
    d = derive(m["loss"], m["WRT"], expand=["softmax_cross_entropy"])
    assert check_page(d, feed, 7, 2e-4 if float32 else 1e-9) > 15


def test_expanded_steps_go_through_log_p_and_the_softmax_jacobian() -> None:
    m, _ = softmax_regression()
    plain = derive(m["loss"], m["WRT"])
    d = derive(m["loss"], m["WRT"], expand=["softmax_cross_entropy"])
    fused = next(s for s in plain.steps if s.node.op.name == "softmax_cross_entropy")
    parts = [s for s in d.steps if s.part]
    # one fused step became the steps of its definition, lettered, under its number
    assert [s.label for s in parts] == [f"step {fused.number}{c}" for c in "abcde"]
    assert [s.node.op.name for s in parts][-2:] == ["log", "softmax"]
    assert all("softmax_cross_entropy" not in f.text for f in d.forward)
    # the other steps keep their numbers, and the code stays on the part that sends logits_bar
    assert [s.number for s in d.steps if not s.part] == [s.number for s in plain.steps
                                                        if s is not fused]
    assert [s.code for s in d.steps if s.code] == [s.code for s in plain.steps if s.code]
    assert parts[-1].code == fused.code
    # log: p_bar = v2_bar / p (the -y / p of the lecture, with v2_bar = -loss_bar y)
    log_step = parts[-2]
    assert log_step.local == [("p", r"\frac{1}{p}")]
    # softmax: the Jacobian diag(p) - p p^T, and the cancellation to p - y
    rule = parts[-1].rule or ""
    assert r"\operatorname{diag}(p) - p \, p^\top" in rule
    assert r"\bar{\ell} \, (p - y)" in rule
    # the result is the same, now written with p
    assert d.results[0].text == "x.T @ (p - y) / N"
    for a, b in zip(d.results, plain.results):
        assert a.simplified is b.simplified or a.text.replace("p", "softmax(logits, axis=1)") \
            == b.text


def test_expanded_adjoint_of_p_is_minus_y_over_p() -> None:
    """What the log step sends is -y / (N p) here (loss = mean): checked numerically."""
    m, feed = softmax_regression()
    d = derive(m["loss"], m["WRT"], expand=["softmax_cross_entropy"])
    log_step = next(s for s in d.steps if s.node.op.name == "log")
    (sent,) = log_step.contributions
    inputs = [m["x"], m["W"], m["b"], m["y"]]
    f64 = {k: np.asarray(v, np.float64) for k, v in feed.items()}
    module = sd.compile({"f": (inputs, [sent.expr, log_step.node.inputs[0]])}, "expand_eval",
                        simplify=False)
    got, p = module.f(*(feed[i] for i in inputs))
    n = f64[m["x"]].shape[0]
    np.testing.assert_allclose(got, -f64[m["y"]] / (n * p), rtol=2e-4, atol=1e-6)


def test_expand_refuses_what_it_cannot_expand() -> None:
    m, _ = softmax_regression()
    with pytest.raises(GradientError, match="cannot expand 'relu'.*softmax_cross_entropy"):
        derive(m["loss"], m["WRT"], expand=["relu"])
    x = sd.placeholder("x", (None, 3), "float64")
    labels = sd.placeholder("labels", (None,), "int64")
    W = sd.parameter("W", (3, 4), "float64")
    loss = sd.mean(sd.softmax_cross_entropy(x @ W, labels))
    with pytest.raises(GradientError, match="one-hot labels"):
        derive(loss, [W], expand=["softmax_cross_entropy"])


def test_cli_expand(tmp_path: Path) -> None:
    from symdl.cli import main

    out = tmp_path / "expanded.md"
    model = str(Path(__file__).resolve().parents[1] / "examples" / "classroom"
                / "softmax_regression.py")
    assert main(["derive", model, "--wrt", "W", "b", "--expand", "softmax_cross_entropy",
                 "-o", str(out)]) == 0
    page = out.read_text()
    assert "### Step 3e:" in page and r"\operatorname{diag}(p) - p \, p^\top" in page


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed")
def test_expanded_page_typesets_in_headless_chromium(tmp_path: Path) -> None:
    """The Jacobian rule (diag, text in math), step letters and the module section render with
    the bundled KaTeX without a console error."""
    from symdl.render import screenshot

    m, _ = softmax_regression()
    d = derive(m["loss"], m["WRT"], expand=["softmax_cross_entropy"])
    page = tmp_path / "expanded.html"
    d.save(str(page))
    result = screenshot(page, tmp_path / "expanded.png", width=1000, height=1400)
    assert result.console_errors == []
    assert 'class="katex-error"' not in result.dom
    assert result.dom.count('class="katex"') > 40
    assert 'id="code-step-3"' in result.dom and 'id="step-3e"' in result.dom
