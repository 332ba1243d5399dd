"""Statement order: each derivation step's block is printed once, in step order, and the line map
says which node and step each line of the module computes."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from codegen.module import assemble
from codegen.pipeline import PASSES, Options

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(
    [*(ROOT / "examples" / "models").glob("*.py"), *(ROOT / "examples" / "classroom").glob("*.py")]
)
STEP = re.compile(r"^\s*# step (\d+): ")


def _step_comments(source: str) -> dict[str, list[int]]:
    """The step numbers of the block comments of each function, in the order they appear."""
    steps: dict[str, list[int]] = {}
    function = ""
    for line in source.splitlines():
        if line.startswith("def "):
            function = line[4:].split("(")[0]
            steps[function] = []
        match = STEP.match(line)
        if match:
            steps[function].append(int(match[1]))
    return steps


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_each_step_block_is_printed_once_in_step_order(path: Path) -> None:
    functions = runpy.run_path(str(path), run_name="__test__")["functions"]
    for function, steps in _step_comments(sd.generate(functions, "example")).items():
        assert steps == sorted(set(steps)), (function, steps)


def test_the_line_map_names_each_statement_and_its_step() -> None:
    x = sd.placeholder("x", (None, 3), "float64")
    w = sd.parameter("w", (3,), "float64")
    y = sd.placeholder("y", (None,), "float64")
    loss = sd.mean(sd.square(x @ w - y)).named("loss")
    parts = assemble({"f": ([x, y, w], [loss, sd.grad(loss, w)])}, "m")
    lines = parts.source.splitlines()
    notes = parts.notes["f"]
    assert parts.lines, "no line map"
    for number, info in parts.lines.items():
        text = lines[number - 1].strip()
        assert info.function == "f" and text
        if info.node is not None and info.step is not None:
            # A statement in a step's block was built by that step's rule.
            assert notes.steps[notes.origins[info.node]] == info.step
    # Every step comment in the text is in the map, with its number.
    for number, text in enumerate(lines, start=1):
        match = STEP.match(text)
        if match:
            assert parts.lines[number].step == int(match[1])
    # and the module computes the textbook gradient: 2 X^T (X w - y) / N
    mod = sd.compile({"f": ([x, y, w], [loss, sd.grad(loss, w)])}, "m")
    rng = np.random.default_rng(3)
    xv, yv, wv = rng.standard_normal((5, 3)), rng.standard_normal(5), rng.standard_normal(3)
    _, grad = mod.f(xv, yv, wv)
    np.testing.assert_allclose(grad, 2 * xv.T @ (xv @ wv - yv) / 5)


def test_the_pass_list_is_the_documented_one() -> None:
    assert [p.name for p in PASSES] == [
        "stabilize", "simplify", "lower", "tidy", "fuse", "schedule", "fold into BLAS",
        "plan buffers",
    ]
    assert [p.name for p in PASSES if p.enabled(Options.of(simplify=False))] == [
        "lower", "schedule",
    ]
