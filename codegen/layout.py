"""Line layout of generated code: nothing over `LINE_LIMIT` characters.

A statement that does not fit is split the way black splits it: at its last bracket pair
(``np.subtract(`` / the arguments / ``)``), the right-hand side of an assignment wrapped in
parentheses when it is a chain of operators, and a part that still does not fit split at its
commas (one item per line, trailing comma; numbers filled into lines) or before its operators.
A comment or docstring line that does not fit is wrapped at spaces. The generated module needs
no formatter to read well.
"""

from __future__ import annotations

import io
import re
import textwrap
import tokenize
from dataclasses import dataclass

LINE_LIMIT = 100
INDENT = "    "

_OPENING = "([{"
_CLOSING = ")]}"
_AUGMENTED = {"=", "+=", "-=", "*=", "/=", "//=", "%=", "@=", "**=", "|=", "&=", "^="}
# black's delimiter priorities: a part is split at its loosest-binding delimiters first.
_PRIORITY = {
    ",": 18, "if": 16, "else": 16, "and": 14, "or": 14, "not": 10, "in": 10, "is": 10,
    "<": 10, ">": 10, "<=": 10, ">=": 10, "==": 10, "!=": 10,
    "|": 9, "^": 8, "&": 7, "<<": 6, ">>": 6, "+": 5, "-": 5,
    "*": 4, "/": 4, "//": 4, "%": 4, "@": 4, "**": 1,
}
_COMMA = _PRIORITY[","]
# Tokens after which `-` is a sign and `*` an unpacking, not binary operators.
_NO_OPERAND = frozenset([*_AUGMENTED, *_PRIORITY, *_OPENING, "return", ":", "lambda"])


@dataclass(frozen=True)
class _Token:
    text: str
    start: int  # column in the statement text
    end: int
    depth: int  # bracket depth around the token (a bracket has the depth outside it)


def wrap_lines(lines: list[str], limit: int = LINE_LIMIT) -> list[str]:
    """``lines`` of code (one statement or comment each) laid out within ``limit``."""
    return [piece for line in lines for piece in wrap(line, limit)]


def wrap(line: str, limit: int = LINE_LIMIT) -> list[str]:
    """One statement or ``#`` comment line as lines of at most ``limit`` characters.

    A line that cannot be split (one long name) is returned as it is.
    """
    if len(line) <= limit:
        return [line]
    text = line.lstrip(" ")
    indent = line[: len(line) - len(text)]
    if text.startswith("#"):
        return wrap_comment(line, limit)
    try:
        return _statement(text, indent, limit)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return [line]  # not one whole statement: leave it to the caller's eyes


def wrap_comment(line: str, limit: int = LINE_LIMIT) -> list[str]:
    """A ``#`` comment wrapped at spaces; continuation lines are indented under its text."""
    text = line.lstrip(" ")
    indent = line[: len(line) - len(text)]
    body = text[1:].strip()
    return textwrap.wrap(
        body, limit, initial_indent=f"{indent}# ", subsequent_indent=f"{indent}#     ",
        break_long_words=False, break_on_hyphens=False,
    ) or [line]


def wrap_text(line: str, limit: int = LINE_LIMIT) -> list[str]:
    """A line of prose (a docstring's) wrapped at spaces, continuation lines indented by 4."""
    if len(line) <= limit:
        return [line]
    text = line.lstrip(" ")
    indent = line[: len(line) - len(text)]
    return textwrap.wrap(
        text, limit, initial_indent=indent, subsequent_indent=indent + INDENT,
        break_long_words=False, break_on_hyphens=False,
    )


# --------------------------------------------------------------------------- statements


def _statement(text: str, indent: str, limit: int, *, item: bool = False) -> list[str]:
    """A statement (or, with ``item``, one item of a bracket's inside: ``out=x`` is then a
    keyword argument, not an assignment) laid out within ``limit``."""
    if len(indent) + len(text) <= limit:
        return [indent + text]
    tokens = _tokens(text)
    rhs = None if item else _right_hand_side(tokens)
    if rhs is not None:
        head, value = text[:rhs].rstrip() + " ", text[rhs:]
        value_tokens = _tokens(value)
        if _can_omit_parentheses(value_tokens, len(indent) + len(INDENT), limit):
            lines = _bracket_split(text, tokens, indent, limit)
            if lines is not None and len(lines[0]) <= limit:
                return lines
        # black's invisible parentheses around the right-hand side, made visible.
        return [f"{indent}{head}(", *_body(value, indent + INDENT, limit), f"{indent})"]
    lines = _bracket_split(text, tokens, indent, limit)
    fits = lines is not None and len(lines[0]) <= limit and len(lines[-1]) <= limit
    if item and not fits and _delimiters(tokens):
        # Inside brackets an operand chain may break before its operators, as black's
        # delimiter split does (``a + b == c`` as ``a + b`` / ``== c``). A part of a split
        # holds no delimiter of its parent's priority, so this ends.
        return _delimiter_split(text, tokens, indent, limit)
    return lines if lines is not None else [indent + text]


def _tokens(text: str) -> list[_Token]:
    """The tokens of one line of Python, with their bracket depth."""
    tokens: list[_Token] = []
    depth = 0
    skip = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in skip:
            continue
        if tok.string in _CLOSING and tok.type == tokenize.OP:
            depth -= 1
        tokens.append(_Token(tok.string, tok.start[1], tok.end[1], depth))
        if tok.string in _OPENING and tok.type == tokenize.OP:
            depth += 1
    return tokens


def _right_hand_side(tokens: list[_Token]) -> int | None:
    """Where the value of ``target = value`` (or ``x -= ...``, ``return ...``) starts."""
    if tokens and tokens[0].text == "return" and len(tokens) > 1:
        return tokens[1].start
    for i, tok in enumerate(tokens[:-1]):
        if tok.depth == 0 and tok.text in _AUGMENTED:
            return tokens[i + 1].start
    return None


def _delimiters(tokens: list[_Token]) -> list[tuple[int, int]]:
    """(index, priority) of the top-level delimiters a part may be split before (or after)."""
    found = []
    for i, tok in enumerate(tokens):
        priority = _PRIORITY.get(tok.text)
        if tok.depth != 0 or priority is None or i == 0:
            continue
        if tok.text in ("+", "-", "*", "**") and tokens[i - 1].text in _NO_OPERAND:
            continue  # a sign, or *args: not a binary operator
        found.append((i, priority))
    return found


def _can_omit_parentheses(tokens: list[_Token], body_indent: int, limit: int) -> bool:
    """black's `can_omit_invisible_parens`: split the value at its own last bracket instead.

    Yes for a call or subscript (``np.subtract(...)``), no for a chain of two or more
    operators of the same kind (``a * b / (c + d)`` reads better in parentheses).
    """
    delimiters = _delimiters(tokens)
    if not delimiters:
        return True
    top = max(p for _, p in delimiters)
    if sum(1 for _, p in delimiters if p == top) > 1:
        return False
    if len(tokens) < 2 or tokens[-1].text not in _CLOSING or tokens[-2].text in _OPENING:
        return False
    opening = _opening_of(tokens, len(tokens) - 1)
    seen_other = any(t.text in _OPENING for t in tokens[:opening])
    return seen_other or body_indent + tokens[opening].end <= limit


def _opening_of(tokens: list[_Token], closing: int) -> int:
    depth = tokens[closing].depth
    for i in range(closing - 1, -1, -1):
        if tokens[i].depth == depth and tokens[i].text in _OPENING:
            return i
    raise SyntaxError("unbalanced brackets")


def _bracket_split(
    text: str, tokens: list[_Token], indent: str, limit: int
) -> list[str] | None:
    """Split at the last top-level bracket pair whose opening line fits (black's right-hand
    split, omitting short trailers such as ``[..., 0]``); None if there is no such pair."""
    pairs = [
        (_opening_of(tokens, i), i)
        for i in range(len(tokens) - 1, -1, -1)
        if tokens[i].depth == 0 and tokens[i].text in _CLOSING
    ]
    pairs = [(o, c) for o, c in pairs if c > o + 1]  # `f()` has nothing to split
    if not pairs:
        return None
    chosen = pairs[0]
    for opening, closing in pairs:
        head = text[: tokens[opening].end]
        tail = text[tokens[closing].start :]
        if len(indent) + len(head) <= limit and len(indent) + len(tail) <= limit:
            chosen = (opening, closing)
            break
    opening, closing = chosen
    head = text[: tokens[opening].end]
    body = text[tokens[opening].end : tokens[closing].start].strip()
    tail = text[tokens[closing].start :]
    return [indent + head, *_body(body, indent + INDENT, limit), indent + tail]


def _body(text: str, indent: str, limit: int) -> list[str]:
    """The inside of a bracket pair, one line if it fits, else split at its delimiters."""
    if len(indent) + len(text) <= limit:
        return [indent + text]
    tokens = _tokens(text)
    if not _delimiters(tokens):
        return _statement(text, indent, limit, item=True)
    return _delimiter_split(text, tokens, indent, limit)


def _delimiter_split(text: str, tokens: list[_Token], indent: str, limit: int) -> list[str]:
    """The inside of a bracket pair split at its loosest-binding top-level delimiters."""
    delimiters = _delimiters(tokens)
    top = max(p for _, p in delimiters)
    cuts = [i for i, p in delimiters if p == top]
    if top == _COMMA:
        starts = [0, *(i + 1 for i in cuts)]
        ends = [*cuts, len(tokens)]
        items = [
            text[tokens[s].start : tokens[e - 1].end] for s, e in zip(starts, ends) if e > s
        ]
        if all(_NUMBER.fullmatch(item) for item in items):
            return _packed(items, indent, limit)
        lines = []
        for item in items:
            item_lines = _statement(item, indent, limit - 1, item=True)
            item_lines[-1] += ","  # black's trailing comma: one item per line
            lines.extend(item_lines)
        return lines
    # Operators start the continuation lines (``+ b``), as black and PEP 8 put them.
    bounds = [0, *cuts, len(tokens)]
    lines = []
    for s, e in zip(bounds, bounds[1:]):
        part = text[tokens[s].start : tokens[e - 1].end]
        lines.extend(_statement(part, indent, limit, item=True))
    return lines


# A number as `array_text` and `scalar_literal` print it (``-1.5e-08``, ``np.nan``, ``True``).
_NUMBER = re.compile(r"-?(?:[0-9][0-9a-zA-Z_.]*(?:[eE][+-]?[0-9]+)?|np\.nan|np\.inf|True|False)")


def _packed(items: list[str], indent: str, limit: int) -> list[str]:
    """Numbers filled into lines as numpy prints an array, not one number per line as black
    would (a constant of a thousand values stays readable)."""
    lines: list[str] = []
    current = ""
    for item in items:
        candidate = f"{current} {item}," if current else f"{item},"
        if current and len(indent) + len(candidate) > limit:
            lines.append(indent + current)
            candidate = f"{item},"
        current = candidate
    lines.append(indent + current)
    return lines
