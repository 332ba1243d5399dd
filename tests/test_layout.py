"""Line layout of generated code: statements split as black (``ruff format``) splits them, the
same AST after the split, comments and prose wrapped at spaces, nothing over the limit."""

from __future__ import annotations

import ast
import textwrap

import pytest

from codegen.layout import LINE_LIMIT, wrap, wrap_comment, wrap_text

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
