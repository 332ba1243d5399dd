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
