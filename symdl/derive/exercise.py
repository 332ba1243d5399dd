"""Exercise sheets (``symdl derive --exercise`` / ``--hide 3,5``): the same derivation with
chosen steps' contributions and the results hidden.

* HTML: each hidden part sits in a plain ``<details>`` element whose ``<summary>`` reads
  "Reveal"; the browser opens it on a click, so the page needs no JavaScript beyond KaTeX.
* Markdown: the same ``<details>`` elements as raw HTML (GitHub and Jupyter render them).
* TeX: blanks (``\\underline{\\hspace{6cm}}``) where the answers were, then, after a
  ``\\newpage``, a section "Answer sheet" with every hidden contribution and the results, so
  one file prints as the sheet followed by its answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .latex import bar

if TYPE_CHECKING:
    from .steps import Derivation, Step

__all__ = ["DETAILS_CLOSE", "DETAILS_OPEN", "Exercise", "answer_sheet_latex", "blank",
           "markdown_to_html_with_details", "parse_hide"]

# Lines that open and close a hidden part in the Markdown; they are the HTML itself, so the
# Markdown renders on GitHub, and `markdown_to_html_with_details` passes them through.
DETAILS_OPEN = "<details><summary>Reveal</summary>"
DETAILS_CLOSE = "</details>"

BLANK_LATEX = r"\underline{\hspace{6cm}}"


@dataclass
class Exercise:
    """Which steps are hidden: ``steps`` holds step numbers, or is None for every step.
    The results are always hidden: they are what the exercise asks for."""

    steps: frozenset[int] | None = None

    def hides(self, s: Step) -> bool:
        """Whether step ``s``'s contributions are hidden (pass-throughs show theirs)."""
        return s.number is not None and (self.steps is None or s.number in self.steps)


def parse_hide(text: str) -> frozenset[int]:
    """``"3,5"`` -> {3, 5}; a word that is not a step number is an error naming it."""
    out = set()
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit():
            raise ValueError(f"--hide {text}: {part!r} is not a step number; write --hide 3,5")
        out.add(int(part))
    return frozenset(out)


def check_hidden(d: Derivation, exercise: Exercise) -> None:
    """Refuse step numbers the derivation does not have (a typo would hide nothing)."""
    numbers = {s.number for s in d.steps if s.number is not None}
    unknown = sorted((exercise.steps or set()) - numbers)
    if unknown:
        raise ValueError(f"--hide {','.join(map(str, unknown))}: this derivation has steps "
                         f"{', '.join(map(str, sorted(numbers)))}")


def blank(d: Derivation, s: Step) -> bool:
    """Whether ``d`` is an exercise that hides step ``s``."""
    return d.exercise is not None and d.exercise.hides(s)


def adjoint_hidden(d: Derivation, s: Step) -> bool:
    """Whether step ``s``'s incoming adjoint would give away a hidden contribution: it is the
    sum of what its users sent, so it is hidden when any of those users' steps is."""
    if d.exercise is None:
        return False
    return any(blank(d, t) and any(c.input is s.node for c in t.contributions)
               for t in d.steps)


def hidden_block(lines: Iterable[str]) -> list[str]:
    """``lines`` (Markdown) inside a reveal toggle."""
    return ["", DETAILS_OPEN, "", *lines, "", DETAILS_CLOSE, ""]


def markdown_to_html_with_details(md: str) -> str:
    """`markdown_to_html`, with the `DETAILS_OPEN`/`DETAILS_CLOSE` lines kept as HTML.

    The converter escapes raw HTML (a page shows it, never runs it), so the Markdown is cut at
    those exact lines, each piece converted, and the two tags put back between the pieces.
    """
    from ..render import markdown_to_html

    parts = re.split(rf"^(?:{re.escape(DETAILS_OPEN)}|{re.escape(DETAILS_CLOSE)})$", md,
                     flags=re.MULTILINE)
    tags = re.findall(rf"^(?:{re.escape(DETAILS_OPEN)}|{re.escape(DETAILS_CLOSE)})$", md,
                      flags=re.MULTILINE)
    out = [markdown_to_html(parts[0])]
    for tag, part in zip(tags, parts[1:]):
        out += [tag, markdown_to_html(part)]
    return "\n".join(out)


def answer_sheet_latex(d: Derivation, partial: Callable[[str], str]) -> list[str]:
    """The TeX answer sheet: a new page with every hidden line (contributions, the incoming
    adjoints made of them) and the results.

    ``partial`` formats ``d y / d w`` for a parameter symbol (render's `_partial`).
    """
    from ..types import format_shape

    out = [r"\newpage", r"\section*{Answer sheet}"]
    for s in d.steps:
        rows = []
        if adjoint_hidden(d, s):
            rows.append(rf"{bar(s.definition.symbol)} &= {s.adjoint_latex}")
        if blank(d, s):
            rows += [rf"{bar(c.symbol)} &\mathrel{{+}}= {c.latex} \qquad "
                     rf"\text{{{format_shape(c.input.shape)}}}" for c in s.contributions]
        if not rows:
            continue
        head = f"Step {s.number}" if s.number is not None else "Pass-through"
        out += [rf"\paragraph{{{head}}}", r"\begin{align*}", r" \\".join(rows),
                r"\end{align*}"]
    out.append(r"\subsection*{Result}")
    for r in d.results:
        w = d.symbols.get(r.wrt, "?")
        gathered = d.gathered.get(r.wrt)
        if gathered:
            out += [r"\begin{equation*}", f"{bar(w)} = {gathered}", r"\end{equation*}"]
        out += [r"\begin{equation*}", f"{partial(w)} = {r.latex}", r"\end{equation*}"]
    return out
