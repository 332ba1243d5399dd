"""Tests for exercise sheets (issue 15, item 5): ``--exercise`` and ``--hide 3,5`` hide steps'
contributions and the results behind ``<details>`` reveal toggles in HTML, and the ``.tex``
prints blanks followed by an answer sheet after ``\\newpage``.

The HTML structure is read with the standard library's parser, not with string matching, so a
toggle that does not enclose its answer fails.
"""

from __future__ import annotations

import re
import runpy
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from symdl.derive import derive
from symdl.derive.exercise import Exercise, parse_hide
from symdl.render import find_chromium
from tests.test_derive import EXAMPLES

CLASSROOM = Path(__file__).resolve().parents[1] / "examples" / "classroom"


def load(name: str) -> dict:
    return runpy.run_path(str(CLASSROOM / f"{name}.py"), run_name="__test__")


@pytest.fixture(scope="module")
def softmax() -> dict:
    return load("softmax_regression")


def exercise(m: dict, steps: frozenset[int] | None = None):  # type: ignore[no-untyped-def]
    d = derive(m["loss"], m["WRT"])
    d.exercise = Exercise(steps)
    return d


class Toggles(HTMLParser):
    """The text inside and outside ``<details>`` elements, and whether each has a summary."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.inside: list[str] = []
        self.outside: list[str] = []
        self.summaries: list[str] = []
        self.in_summary = False
        self.scripts = 0
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "details":
            self.depth += 1
            self.inside.append("")
        elif tag == "summary":
            self.in_summary = True
            self.summaries.append("")
        elif tag == "script":
            self.scripts += 1
            self.in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.depth -= 1
        elif tag == "summary":
            self.in_summary = False
        elif tag == "script":
            self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            return
        if self.in_summary:
            self.summaries[-1] += data
        elif self.depth:
            self.inside[-1] += data
        else:
            self.outside.append(data)


def toggles(html: str) -> Toggles:
    parser = Toggles()
    parser.feed(html)
    assert parser.depth == 0, "unbalanced <details>"
    return parser


def test_exercise_hides_every_contribution_and_the_results(softmax: dict) -> None:
    d = exercise(softmax)
    page = toggles(d.to_html())
    numbered = [s for s in d.steps if s.number is not None and s.contributions]
    results = len(d.results)
    assert len(page.inside) >= len(numbered) + results
    assert all(s.strip() == "Reveal" for s in page.summaries)
    assert len(page.summaries) == len(page.inside)
    outside = "".join(page.outside)
    inside = "".join(page.inside)
    # Every answer is on the page, and only inside a toggle.
    for s in numbered:
        for c in s.contributions:
            assert c.latex in inside
            assert rf"\mathrel{{+}}= {c.latex}" not in outside
    for r in d.results:
        assert r.latex in inside and r.latex not in outside
    # The blanks stand where the answers were.
    assert outside.count(r"\underline{\qquad\qquad}") == sum(len(s.contributions)
                                                             for s in numbered)
    assert r"= {?}" in outside
    # The incoming adjoint of a later step would give an answer away: hidden too.
    assert r"\bar{v}_{3} = \frac{\overline{\text{loss}}}{N}" not in outside
    # No JavaScript beyond KaTeX's: the page's scripts are the same as a plain page's.
    plain = toggles(derive(softmax["loss"], softmax["WRT"]).to_html())
    assert page.scripts == plain.scripts


def test_hide_picks_steps(softmax: dict) -> None:
    d = exercise(softmax, frozenset({5}))
    step5 = next(s for s in d.steps if s.number == 5)
    page = toggles(d.to_html())
    inside, outside = "".join(page.inside), "".join(page.outside)
    for c in step5.contributions:
        assert c.latex in inside
    for s in d.steps:  # the other steps are shown
        if s.number not in (None, 5):
            for c in s.contributions:
                assert rf"\mathrel{{+}}= {c.latex}" in outside
    # toggles for step 5's contributions and its code, one per result: nothing else is hidden
    assert len(page.inside) == 1 + bool(step5.code) + len(d.results)
    for line in step5.code:  # the generated lines spell the answer out: hidden with it
        assert line.strip() in inside and line.strip() not in outside


def test_text_prints_blanks_then_answers(softmax: dict) -> None:
    d = exercise(softmax, frozenset({4, 5}))
    text = d.to_text()
    sheet, _, answers = text.partition("Answer sheet:")
    assert answers
    for s in d.steps:
        if s.number in (4, 5):
            for c in s.contributions:
                assert f"{c.text_symbol}_bar += {c.text}" in answers
                assert f"{c.text_symbol}_bar += {c.text}" not in sheet
    for r in d.results:
        assert r.text not in sheet and r.text in answers
    assert sheet.count("____") >= 3 + len(d.results)


def test_tex_prints_blanks_then_an_answer_sheet(softmax: dict) -> None:
    d = exercise(softmax)
    tex = d.to_latex()
    sheet, _, answers = tex.partition(r"\newpage")
    assert answers, "no answer sheet after \\newpage"
    assert r"\section*{Answer sheet}" in answers
    numbered = [s for s in d.steps if s.number is not None and s.contributions]
    assert sheet.count(r"\underline{\hspace{6cm}}") >= (
        sum(len(s.contributions) for s in numbered) + len(d.results))
    for s in numbered:
        assert rf"\paragraph{{Step {s.number}}}" in answers
        for c in s.contributions:
            assert c.latex in answers
            assert rf"\mathrel{{+}}= {c.latex}" not in sheet
    for r in d.results:
        assert r.latex in answers and r.latex not in sheet
    assert tex.count(r"\begin{align*}") == tex.count(r"\end{align*}")
    assert tex.count(r"\begin{equation*}") == tex.count(r"\end{equation*}")
    assert tex.rstrip().endswith(r"\end{document}")
    # the page without --exercise has neither blanks nor answer sheet
    plain = derive(softmax["loss"], softmax["WRT"]).to_latex()
    assert r"\newpage" not in plain and r"\underline" not in plain


def test_markdown_uses_details_blocks(softmax: dict) -> None:
    md = exercise(softmax, frozenset({3})).to_markdown()
    opened = re.findall(r"^<details><summary>Reveal</summary>$", md, flags=re.M)
    closed = re.findall(r"^</details>$", md, flags=re.M)
    assert len(opened) == len(closed) >= 2


def test_parse_hide() -> None:
    assert parse_hide("3,5") == {3, 5}
    assert parse_hide(" 2 ") == {2}
    with pytest.raises(ValueError, match="'x' is not a step number"):
        parse_hide("3,x")


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from symdl.cli import main

    model = str(CLASSROOM / "logistic_regression.py")
    out = tmp_path / "sheet.html"
    assert main(["derive", model, "--wrt", "w", "b", "--exercise", "-o", str(out)]) == 0
    assert "<details><summary>Reveal</summary>" in out.read_text()
    tex = tmp_path / "sheet.tex"
    assert main(["derive", model, "--wrt", "w", "b", "--hide", "2", "-o", str(tex)]) == 0
    assert r"\section*{Answer sheet}" in tex.read_text()
    assert main(["derive", model, "--wrt", "w", "--hide", "99"]) == 2
    assert "this derivation has steps" in capsys.readouterr().err


@pytest.mark.skipif(find_chromium() is None,
                    reason="chromium not installed (apt-get install chromium); the exercise page "
                    "is checked in a headless browser only where one is available")
def test_exercise_page_in_headless_chromium(softmax: dict, tmp_path: Path) -> None:
    from symdl.render import screenshot

    page = tmp_path / "exercise.html"
    exercise(softmax).save(str(page))
    result = screenshot(page, tmp_path / "exercise.png", width=1000, height=1200)
    assert result.console_errors == []  # no script errors, no KaTeX errors, no blocked loads
    assert 'data-math="rendered"' in result.dom
    assert 'class="katex-error"' not in result.dom
    assert result.dom.count("<details>") >= 5 and result.dom.count("<summary>Reveal") >= 5
    # The math inside the closed toggles is typeset too (it shows at once when revealed).
    hidden = result.dom.split("<details>", 1)[1]
    assert 'class="katex"' in hidden


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (apt-get install texlive-latex-base); the "
                    ".tex files are compiled only where it is available")
def test_tex_compiles_with_pdflatex(softmax: dict, tmp_path: Path) -> None:
    # The exercise sheet with its answer sheet, and the lecture page with traces and check.
    from symdl.derive import check, trace

    lecture = load("lecture_trace")
    d = derive(lecture["loss"], lecture["WRT"])
    d.trace = trace(lecture["loss"], lecture["WRT"], lecture["POINT"])
    d.check = check(lecture["loss"], lecture["WRT"])
    pages = {"sheet.tex": exercise(softmax), "lecture.tex": d}
    for name, page in pages.items():
        page.save(str(tmp_path / name))
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", name],
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
        assert (tmp_path / name).with_suffix(".pdf").stat().st_size > 1000


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex not installed (apt-get install texlive-latex-base); the "
                    ".tex files are compiled only where it is available")
@pytest.mark.parametrize("name", EXAMPLES)
def test_every_classroom_page_compiles_with_pdflatex(name: str, tmp_path: Path) -> None:
    m = load(name)
    d = derive(m["loss"], m["WRT"])
    d.save(str(tmp_path / f"{name}.tex"))
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                          f"{name}.tex"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / f"{name}.pdf").stat().st_size > 1000
