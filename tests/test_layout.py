"""Line layout of generated code: statements split as black (``ruff format``) splits them, the
same AST after the split, comments and prose wrapped at spaces, nothing over the limit."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from codegen.layout import LINE_LIMIT, wrap, wrap_comment, wrap_text
from tests.test_generated_lint import LONG, _ruff

# (statement, the lines black prints for it at line length 100), checked against `ruff format`.
SPLITS = [
    (
        "    log_softmax_logits = np.subtract(logits_shifted, np.log(sum_exp_logits_shifted), "
        "out=logits_shifted)",
        [
            "    log_softmax_logits = np.subtract(",
            "        logits_shifted, np.log(sum_exp_logits_shifted), out=logits_shifted",
            "    )",
        ],
    ),
    (  # two operators of one kind: the right-hand side in parentheses
        "    dense0_b -= step_size * dense0_b_m_very_long_name / (np.sqrt(dense0_b_v_long_name_xyz)"
        " + eps_hat)",
        [
            "    dense0_b -= (",
            "        step_size * dense0_b_m_very_long_name / (np.sqrt(dense0_b_v_long_name_xyz)"
            " + eps_hat)",
            "    )",
        ],
    ),
    (  # a short trailer stays on the closing line
        "    pick_dense1_something_long = np.take_along_axis(dense1_something_long, "
        "y_long_name[..., None], axis=1)[..., 0]",
        [
            "    pick_dense1_something_long = np.take_along_axis(",
            "        dense1_something_long, y_long_name[..., None], axis=1",
            "    )[..., 0]",
        ],
    ),
    (  # arguments that do not fit on one line: one per line, trailing comma
        "    np.add(0.001 * dense0_b_grad_long_name ** 2, 0.999 * dense0_b_v_long_name_x, "
        "out=dense0_b_v_long_name_x)",
        [
            "    np.add(",
            "        0.001 * dense0_b_grad_long_name ** 2,",
            "        0.999 * dense0_b_v_long_name_x,",
            "        out=dense0_b_v_long_name_x,",
            "    )",
        ],
    ),
    (
        "    x = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa + bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb + "
        "ccccccccccccccccccccccccccccccccc + dddd",
        [
            "    x = (",
            "        aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "        + bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
            "        + ccccccccccccccccccccccccccccccccc",
            "        + dddd",
            "    )",
        ],
    ),
    (  # a sign is not an operator to split at
        "    value = -" + "a" * 47 + " * np.exp(-" + "b" * 46 + ")",
        ["    value = -" + "a" * 47 + " * np.exp(", "        -" + "b" * 46, "    )"],
    ),
    (
        "def train_step(x, y, dense0_W, dense0_b, dense1_W, dense1_b, dense0_W_m, dense0_W_v, "
        "dense0_b_m, lr):",
        [
            "def train_step(",
            "    x, y, dense0_W, dense0_b, dense1_W, dense1_b, dense0_W_m, dense0_W_v, dense0_b_m,"
            " lr",
            "):",
        ],
    ),
]

# An operand that is itself a chain of operators, inside a call, breaks before its operators
# (a fused product passed to an in-place np.multiply, issue 13; checked against `ruff format`).
_N = "a_name_as_long_as_symdl_allows_it_isn0"
SPLITS += [
    (
        f"    prod = np.multiply({_N}0, {_N}1 * {_N}2 * {_N}3, out={_N}0)",
        [
            "    prod = np.multiply(",
            f"        {_N}0,",
            f"        {_N}1",
            f"        * {_N}2",
            f"        * {_N}3,",
            f"        out={_N}0,",
            "    )",
        ],
    ),
    (
        f"    x -= np.exp(0.0, 1.5, {_N}1 + np.float32 == {_N}2)"
        " - x.max(axis=(0, 1), keepdims=True)",
        [
            "    x -= np.exp(",
            "        0.0,",
            "        1.5,",
            f"        {_N}1 + np.float32",
            f"        == {_N}2,",
            "    ) - x.max(axis=(0, 1), keepdims=True)",
        ],
    ),
]


@pytest.mark.parametrize("line, expected", SPLITS, ids=range(len(SPLITS)))
def test_long_statements_split_as_black_splits_them(line: str, expected: list[str]) -> None:
    assert len(line) > LINE_LIMIT
    got = wrap(line)
    assert got == expected
    assert all(len(piece) <= LINE_LIMIT for piece in got)


@pytest.mark.parametrize("line, _", SPLITS, ids=range(len(SPLITS)))
def test_a_split_statement_is_the_same_code(line: str, _: list[str]) -> None:
    def tree(text: str) -> str:
        source = text + "\n    pass" if text.startswith("def") else textwrap.dedent(text)
        return ast.dump(ast.parse(source))

    assert tree("\n".join(wrap(line))) == tree(line)


def test_many_arguments_go_one_per_line_and_numbers_fill_lines() -> None:
    names = ", ".join(f"argument_{i}" for i in range(12))
    got = wrap(f"def f({names}):")
    assert got == ["def f(", *(f"    argument_{i}," for i in range(12)), "):"]
    values = ", ".join(repr(i / 7) for i in range(60))
    got = wrap(f"_const_float64_60 = np.array([{values}], dtype=np.float64)")
    assert got[:2] == ["_const_float64_60 = np.array(", "    ["]
    assert got[-3:] == ["    ],", "    dtype=np.float64,", ")"]
    assert 10 < len(got) < 20 and all(len(piece) <= LINE_LIMIT for piece in got)
    assert ast.dump(ast.parse("\n".join(got))) == ast.dump(ast.parse(
        f"_const_float64_60 = np.array([{values}], dtype=np.float64)"
    ))


def test_short_lines_and_unsplittable_lines_are_left_alone() -> None:
    assert wrap("    x = y") == ["    x = y"]
    name = "a" * 120
    assert wrap(f"    {name}") == [f"    {name}"]


def test_comments_and_prose_wrap_at_spaces() -> None:
    comment = "    # step 3: grad of: " + " + ".join(f"term_{i}" for i in range(20))
    got = wrap(comment)
    assert got == wrap_comment(comment) and len(got) == 3
    assert all(len(p) <= LINE_LIMIT for p in got)
    assert got[0].startswith("    # step 3: grad of: ") and got[1].startswith("    #     term_")
    assert " ".join(p.strip("# ") for p in got) == comment.strip("# ")
    prose = "        " + ", ".join(f"name_{i}" for i in range(20))
    got = wrap_text(prose)
    assert all(len(p) <= LINE_LIMIT for p in got) and got[1].startswith("            name_")


def test_a_part_of_a_split_that_does_not_fit_splits_again() -> None:
    # `a == b - c / d - e` in parentheses: split at `==`, then the part `== b - c / d - e`
    # (still too long, with no bracket to split at) before its `-`s.
    line = f"    x -= {_N}0 == np.float32 - {_N}1 / {_N}2 - -0.0"
    got = wrap(line)
    assert got == [
        "    x -= (",
        f"        {_N}0",
        "        == np.float32",
        f"        - {_N}1 / {_N}2",
        "        - -0.0",
        "    )",
    ]
    assert ast.dump(ast.parse("\n".join(got).strip())) == ast.dump(ast.parse(line.strip()))


def test_max_over_two_axes_times_a_product_of_long_names_is_lint_clean(symdl_cache: Path) -> None:
    # Issue 13: the four named factors fuse into one product that is passed to an in-place
    # np.multiply; the operand (three 39-character names) was left on one 135-character line.
    x = sd.parameter(LONG, (None, 5, 7), "float32")
    leaves = [sd.placeholder(f"{LONG[:-3]}{c}{i:02d}", (None, 5, 7), "float32")
              for i, c in enumerate("pqrs")]
    factors = [(v * 1.5).named(f"{LONG[:-4]}n{i:02d}") for i, v in enumerate(leaves)]
    loss = sd.sum(sd.max(x * (factors[0] * factors[1] * factors[2] * factors[3]), axis=(0, 1)))
    functions = {"f": ([x, *leaves], [loss, sd.grad(loss, x)])}
    source = sd.generate(functions, "max_long")
    assert "np.max" in source or ".max(axis=(0, 1))" in source
    long = [line for line in source.splitlines() if len(line) > LINE_LIMIT]
    assert not long, "\n".join(long)
    findings = _ruff(source)
    assert not findings, findings
    # The wrapped module computes what numpy does: the loss, and the gradient shared equally
    # among the entries that reach each maximum.
    rng = np.random.default_rng(13)
    xv = rng.standard_normal((3, 5, 7)).astype(np.float32)
    vals = [rng.uniform(0.5, 1.5, (3, 5, 7)).astype(np.float32) for _ in leaves]
    got_loss, got_grad = sd.compile(functions, "max_long", cache_dir=symdl_cache).f(xv, *vals)
    product = np.prod([1.5 * v for v in vals], axis=0)
    z = xv * product
    mask = (z == z.max(axis=(0, 1))).astype(np.float32)
    np.testing.assert_allclose(got_loss, z.max(axis=(0, 1)).sum(), rtol=1e-5)
    np.testing.assert_allclose(got_grad, mask / mask.sum(axis=(0, 1)) * product, rtol=1e-5)
