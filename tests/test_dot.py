"""Tests for symdl.to_dot: deterministic DOT text, shared values and gradient nodes marked."""

from __future__ import annotations

import re
import shutil

import pytest

import symdl as sd
from symdl.dot import render


def _model() -> tuple[sd.Expr, list[sd.Expr]]:
    x = sd.placeholder("x", (None, 4))
    W = sd.parameter("W", (4, 3))
    z = (x @ W).named("z")
    loss = sd.mean(sd.exp(z) * sd.exp(z)).named("loss")  # exp(z) is one shared node
    return loss, [loss, sd.grad(loss, W)]


def test_dot_is_deterministic_and_well_formed() -> None:
    loss, outs = _model()
    dot = sd.to_dot(outs)
    assert dot == sd.to_dot(outs)
    assert dot.startswith('digraph "symdl" {') and dot.rstrip().endswith("}")
    node_ids = re.findall(r"^  (n\d+) \[", dot, flags=re.M)
    assert node_ids == [f"n{k}" for k in range(len(node_ids))]
    for a, b in re.findall(r"^  (n\d+) -> (n\d+)", dot, flags=re.M):
        assert int(a[1:]) < int(b[1:])  # inputs come first
    assert 'label="z = matmul\\n(N, 3) float32"' in dot
    assert 'label="W\\nparameter (4, 3)"' in dot


def test_shared_and_gradient_nodes_are_marked() -> None:
    loss, outs = _model()
    forward = sd.to_dot(loss)
    exp_line = next(line for line in forward.splitlines() if 'label="exp' in line)
    assert "fillcolor=\"#fff2cc\"" in exp_line  # two users: the product uses it twice
    assert "dashed" not in forward  # no gradient nodes in the forward graph
    both = sd.to_dot(outs)
    grad_lines = [line for line in both.splitlines() if "grad of: " in line]
    assert grad_lines and all("dashed" in line for line in grad_lines)
    assert both.count("peripheries=2") == 2


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
def test_render_svg() -> None:
    pytest.importorskip("graphviz", reason="the graphviz Python package is not installed")
    loss, _ = _model()
    assert b"<svg" in render(loss, format="svg")


# --- issue 15, item 10: the derivation's symbols, the simplified gradient graph, PNG/SVG


def _softmax_regression() -> tuple[dict, sd.derive.Derivation]:
    from tests.test_derive import load

    m = load("softmax_regression")
    return m, sd.derive(m["loss"], m["WRT"])


def _labels(dot: str) -> list[str]:
    return re.findall(r'label="([^"]*)"', dot)


def test_nodes_labeled_with_the_derivations_symbols() -> None:
    m, d = _softmax_regression()
    dot = sd.to_dot(d.target, symbols=d)
    labels = _labels(dot)
    # every forward value of the page appears under its symbol, once
    for f in d.forward:
        mine = [lab for lab in labels if lab.startswith(f"{f.text_symbol} = ")]
        assert len(mine) == 1, (f.text_symbol, labels)
    assert "v1 = matmul\\n(N, 10) float32" in labels
    assert "x\\nplaceholder (N, 784)" in labels  # leaves keep their names
    # a plain map works too, and nothing else changes
    plain = sd.to_dot(d.target)
    assert plain.count(" -> ") == dot.count(" -> ")
    named = sd.to_dot(d.target, symbols={d.forward[0].node: "xW"})
    assert "xW = matmul" in named


def test_simplified_gradient_graph() -> None:
    m, _ = _softmax_regression()
    outs = [m["loss"], *sd.grad(m["loss"], m["WRT"])]
    raw, simple = sd.to_dot(outs), sd.to_dot(outs, simplified=True)
    edges = [s.count(" -> ") for s in (raw, simple)]
    assert edges[1] < edges[0]  # simplification removes work
    # the graph drawn is the one simplify returns
    from symdl.ir import toposort
    from symdl.provenance import annotate
    from symdl.simplify import simplify

    bare, notes = annotate(outs)
    assert len(re.findall(r"^  n\d+ \[", simple, re.M)) == len(toposort(simplify(bare,
                                                                             notes=notes)))
    assert simple.count("peripheries=2") == 3


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz `dot` not installed")
def test_render_png_with_symbols(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("graphviz", reason="the graphviz Python package is not installed")
    _, d = _softmax_regression()
    data = render(d.target, format="png", path=tmp_path / "g.png", symbols=d)
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and (tmp_path / "g.png").read_bytes() == data
    from symdl.dot import to_svg

    assert "v1 = matmul" in to_svg(d.target, symbols=d)
