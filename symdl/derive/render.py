"""Rendering a `Derivation`: plain text, Markdown with LaTeX, a standalone HTML page, a TeX file.

The HTML page reuses `symdl.render.html_page`, which inlines KaTeX and its fonts and forbids every
network load, so a derivation opens the same way offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..types import format_shape
from .exercise import (
    BLANK_LATEX,
    adjoint_hidden,
    answer_sheet_latex,
    blank,
    hidden_block,
    markdown_to_html_with_details,
)
from .latex import bar, tex_escape

if TYPE_CHECKING:
    from .steps import Derivation, ForwardDef, Step
    from .trace import Trace

__all__ = ["equations", "module_html", "no_code_reason", "save", "to_html", "to_latex",
           "to_markdown", "to_notebook_html", "to_text", "trace_notebook_html"]


def _title(d: Derivation) -> str:
    wrt = ", ".join(w.name or "?" for w in d.wrt)
    return f"Derivation of d {d.target_name or 'y'} / d ({wrt})"


def _partial(d: Derivation, w_symbol: str) -> str:
    y = d.symbols.get(d.target, "y")
    return rf"\frac{{\partial {y}}}{{\partial {w_symbol}}}"


# What a reader needs to read every formula one way (the page evaluation test reads them so).
NOTATION = (
    r"Notation: vectors are columns and $v^\top$ a row; side by side is the matrix product, "
    r"$\odot$ the elementwise one; $\mathbf{1}_K$ is a vector of $K$ ones, so "
    r"$\bar{c} \, \mathbf{1}_N$ copies a number to every example and $\mathbf{1}^\top A$ "
    r"sums $A$ over the examples (its rows); $[a > 0]$ is 1 where $a > 0$, else 0."
)


# --------------------------------------------------------------------------- text


def to_text(d: Derivation) -> str:
    """The derivation as plain text (formulas as in generated-code comments)."""
    lines = [_title(d), ""]
    if d.stabilized:
        lines += [f"Differentiated in its stable form: {d.stabilized[2]}  ->  {d.stabilized[3]}",
                  ""]
    lines.append("Forward definitions:")
    for f in d.forward:
        lines.append(f"  {f.text_symbol} = {f.text}    {f.shape}")
    lines += ["", "Backward pass (chain rule, from the output down):"]
    for s in d.steps:
        shape = format_shape(s.node.shape)
        lines.append(f"  [{s.label}] {s.definition.text_symbol} = {s.definition.text}")
        incoming = "____" if adjoint_hidden(d, s) else s.adjoint_text
        lines.append(f"      incoming adjoint: {s.definition.text_symbol}_bar = {incoming}"
                     f"    {shape}")
        for c in s.contributions:
            shown = "____" if blank(d, s) else c.text
            lines.append(f"      {c.text_symbol}_bar += {shown}    {format_shape(c.input.shape)}")
        for code in [] if blank(d, s) else s.code:
            lines.append(f"      | {code}")
    if d.exercise is not None:  # the results and the hidden lines go to an answer sheet
        lines += ["", "Result:"]
        lines += [f"  d {d.target_name or 'y'} / d {r.wrt.name} = ____" for r in d.results]
        lines += ["", "Answer sheet:"]
        for s in d.steps:
            if adjoint_hidden(d, s):
                lines.append(f"  [{s.label}] {s.definition.text_symbol}_bar = {s.adjoint_text}")
            if blank(d, s):
                lines += [f"  [{s.label}] {c.text_symbol}_bar += {c.text}"
                          for c in s.contributions]
    lines += ["", "Result (simplified):"]
    for r in d.results:
        gathered = d.gathered_text.get(r.wrt)
        if gathered:
            lines.append(f"  {r.wrt.name}_bar = {gathered}    {format_shape(r.wrt.shape)}")
        lines.append(f"  d {d.target_name or 'y'} / d {r.wrt.name} = {r.text}")
    lines += extras_text(d)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Markdown


def _step_markdown(d: Derivation, s: Step, links: bool = False) -> list[str]:
    sym = s.definition.symbol
    head = f"Step {s.number}{s.part}" if s.number is not None else "Pass-through"
    shape = format_shape(s.node.shape)
    anchor = f" {{#step-{s.number}{s.part}}}" if links and s.number is not None else ""
    out = [f"### {head}: ${sym} = {s.definition.latex}${anchor}", ""]
    incoming = f"- incoming adjoint: ${bar(sym)} = {s.adjoint_latex}$ `{shape}`"
    if adjoint_hidden(d, s):  # it is the sum of hidden answers: hidden with them
        out += [rf"- incoming adjoint: ${bar(sym)} = {{?}}$ (what the hidden steps sent) "
                f"`{shape}`", *hidden_block([incoming])]
    else:
        out.append(incoming)
    for x_sym, derivative in s.local:
        out.append(rf"- local derivative: $\frac{{\partial {sym}}}{{\partial {x_sym}}} = "
                   f"{derivative}$ (elementwise, `{shape}`: a diagonal Jacobian)")
    if s.rule:
        out.append(f"- rule: ${s.rule}$")
    shown = [rf"- result: ${bar(c.symbol)} \mathrel{{+}}= {c.latex}$ "
             f"`{format_shape(c.input.shape)}`" for c in s.contributions]
    if blank(d, s) and shown:  # exercise: blanks, the answers behind a reveal toggle
        out += [rf"- result: ${bar(c.symbol)} \mathrel{{+}}= \underline{{\qquad\qquad}}$"
                for c in s.contributions]
        out += hidden_block(shown)
    else:
        out += shown
    if not s.contributions:
        out.append("- no input needs an adjoint")
    out.append("")
    if s.code:
        lines = d.code_lines.get(s.number or 0, [])
        where = ""
        if links and lines:
            span = f"line {lines[0]}" if len(lines) == 1 else f"lines {lines[0]}–{lines[-1]}"
            where = f" ({span} of [the generated module](#code-step-{s.number}))"
        code = [f"Generated code{where}:", "", "```python", *s.code, "```", ""]
        out += hidden_block(code) if blank(d, s) else code  # the code spells the answer out
    else:
        reason = no_code_reason(d, s)
        out += [reason, ""] if reason else []
    return out


def no_code_reason(d: Derivation, s: Step) -> str | None:
    """Why step ``s`` shows no generated lines, as true for this derivation (None: it has some
    or the derivation was made without code)."""
    if s.code or not d.code:
        return None
    if s.number is None:
        return "The adjoint passes through unchanged: no generated code."
    later = s in d.steps and any(t.code for t in d.steps[d.steps.index(s) + 1:])
    if later:
        return ("No generated code of its own: simplification folded this step into the "
                "lines of a later one.")
    own = f"{s.definition.text_symbol}_bar"
    if s.contributions and all(c.text == own for c in s.contributions):
        return ("No generated code of its own: it sends its adjoint on unchanged, and the "
                "code uses that array as it is.")
    if not any(t.code for t in d.steps):
        return ("No generated code of its own: the generated module computes the simplified "
                "result (below) directly, without the intermediate adjoints.")
    return ("No generated code of its own: simplification merged it into the lines of an "
            "earlier step.")


def _code_name(d: Derivation, f: ForwardDef) -> str:
    """The generated module's variable for forward value ``f``, where it differs from its symbol
    (empty otherwise)."""
    name = d.code_names.get(f.node)
    return f"`{name}`" if name and name != f.text_symbol else ""


def to_markdown(d: Derivation, *, links: bool = False) -> str:
    """The derivation as Markdown; math between ``$`` (inline) and ``$$`` (display).

    With ``links`` (the HTML page), step headings carry ``{#step-k}`` anchors and each step's
    code names its lines in the module printed below the result, linked to them.
    """
    out = [f"# {_title(d)}", ""]
    if d.stabilized:
        out += [f"The target as written, ${d.stabilized[0]}$, is differentiated in its "
                f"numerically stable form ${d.stabilized[1]}$ (the same value).", ""]
    # Where the module holds a value under another name than the page's symbol (v1 in x_W), a
    # column says so: a reader going between the page and the code needs both names.
    renamed = any(_code_name(d, f) for f in d.forward)
    out += ["## Forward definitions", ""]
    if renamed:
        out += ["| value | definition | shape | in the code |", "|---|---|---|---|"]
    else:
        out += ["| value | definition | shape |", "|---|---|---|"]
    for f in d.forward:
        code = f" {_code_name(d, f)} |" if renamed else ""
        out.append(f"| ${f.symbol}$ | ${f.latex}$ | `{f.shape}` |{code}")
    out += ["", "## Backward pass", "",
            "Each step takes the adjoint $\\bar{v} = \\partial y / \\partial v$ of one value "
            "(the sum of what its users sent it) and applies the chain rule to send "
            "adjoints to its inputs. The step numbers are those in the generated code's "
            "comments (`# step k:`).", "", NOTATION, ""]
    for s in d.steps:
        out += _step_markdown(d, s, links)
    out += ["## Result (simplified)", ""]
    for r in d.results:
        w = d.symbols.get(r.wrt, r.wrt.name or "?")
        gathered = d.gathered.get(r.wrt)
        answer = []
        if gathered:
            shape = format_shape(r.wrt.shape)
            answer += [f"What the steps sent to ${w}$, gathered (shape `{shape}`):", "",
                       "$$", f"{bar(w)} = {gathered}", "$$", ""]
        answer += ["$$", f"{_partial(d, w)} = {r.latex}", "$$", ""]
        if d.exercise is not None:  # the result is the exercise's answer
            out += [f"${_partial(d, w)} = {{?}}$", *hidden_block(answer)]
        else:
            out += answer
    out += extras_markdown(d)
    return "\n".join(out)


def to_html(d: Derivation, title: str | None = None) -> str:
    """A standalone HTML page; KaTeX is inlined and no network request is made."""
    from ..render import html_page, markdown_to_html

    if d.exercise is not None:  # the module would spell out the hidden answers: left off
        body = markdown_to_html_with_details(to_markdown(d))
        return html_page(title or _title(d), body)
    body = markdown_to_html(to_markdown(d, links=True)) + module_html(d)
    return html_page(title or _title(d), body, extra_css=MODULE_CSS)


MODULE_CSS = """\
pre.module a.step-comment { color: #0550ae; font-weight: 600; text-decoration: none; }
pre.module a.step-comment:hover { text-decoration: underline; }
pre.module .line-number { color: #8c959f; user-select: none; display: inline-block;
  width: 3em; }
pre.module :target { background: #fff8c5; }
h3:target { background: #fff8c5; }
"""


def _function_span(source: str, function: str) -> tuple[int, int]:
    """The 1-based first and last line of ``def function`` in ``source`` (its helpers, which
    only check arguments, are left off the page)."""
    text = source.splitlines()
    start = next(k for k, line in enumerate(text) if line.startswith(f"def {function}("))
    end = start + 1
    while end < len(text) and not (text[end] and not text[end][0].isspace()):
        end += 1
    while end > start and not text[end - 1].strip():
        end -= 1
    return start + 1, end


def module_html(d: Derivation) -> str:
    """The generated function as an HTML section: numbered lines (``id="L12"``), and each
    ``# step k:`` comment a link back to step k (``id="code-step-k"``, ``href="#step-k"``).

    Empty when the derivation was made without code.
    """
    import html

    if not d.code:
        return ""
    first, last = _function_span(d.code, "derivation")
    text = d.code.splitlines()
    starts = {lines[0]: step for step, lines in d.code_lines.items() if lines}
    # The step a block links back to: in an expanded rule, the part that holds its lines.
    target = {s.number: f"{s.number}{s.part}" for s in d.steps if s.code}
    rows = []
    for number in range(first, last + 1):
        line = html.escape(text[number - 1], quote=False)
        step = starts.get(number)
        if step is not None:
            indent = len(line) - len(line.lstrip())
            line = (f'{line[:indent]}<a class="step-comment" id="code-step-{step}" '
                    f'href="#step-{target.get(step, step)}">{line[indent:]}</a>')
        rows.append(f'<span id="L{number}"><span class="line-number">{number}</span>'
                    f"{line}</span>")
    return ("\n<h2 id=\"module\">Generated module</h2>\n"
            f"<p>The function the steps above come from (lines {first}–{last} of the module; "
            "its argument-checking helpers are left out). Each <code># step k:</code> comment "
            "links back to its step.</p>\n"
            '<pre class="module"><code class="language-python">' + "\n".join(rows)
            + "</code></pre>")


def to_notebook_html(d: Derivation) -> str:
    """The HTML page in an ``<iframe srcdoc>``, for Jupyter's ``_repr_html_``.

    The page is self-contained (KaTeX and its fonts inlined), so it typesets offline; in the
    frame its scripts and styles cannot touch the notebook, and a notebook that does not run
    scripts (an untrusted one) still shows the text with its TeX source.
    """
    return iframe(to_html(d))


def trace_notebook_html(t: Trace) -> str:
    """An evaluation trace's tables as a self-contained page in an ``<iframe srcdoc>``."""
    from ..render import html_page, markdown_to_html

    page = html_page("Evaluation trace", markdown_to_html(t.to_markdown()))
    rows = len(t.forward) + len(t.tangent) + len(t.reverse)
    return iframe(page, height=min(220 + 42 * rows, 1000))


def iframe(page: str, height: int = 640) -> str:
    """``page`` (a whole HTML document) in a sandboxed ``<iframe srcdoc>``."""
    import html

    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {height}px; border: 1px solid #d0d7de;"></iframe>')


# --------------------------------------------------------------------------- LaTeX


def equations(d: Derivation) -> str:
    """The derivation's equations as one ``aligned`` block (for notebooks' ``_repr_latex_``)."""
    rows = [rf"{f.symbol} &= {f.latex}" for f in d.forward]
    for s in d.steps:
        rows.append(rf"{bar(s.definition.symbol)} &= {s.adjoint_latex}")
    for r in d.results:
        rows.append(rf"{_partial(d, d.symbols.get(r.wrt, '?'))} &= {r.latex}")
    return r"\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}"


def _tex_shape(shape: tuple[object, ...]) -> str:
    return rf"\qquad \text{{{tex_escape(format_shape(shape))}}}"


def to_latex(d: Derivation) -> str:
    """A standalone LaTeX document (amsmath; code in ``verbatim``)."""
    out = [r"\documentclass{article}", r"\usepackage{amsmath,amssymb}",
           r"\usepackage[margin=2cm]{geometry}", r"\begin{document}",
           rf"\section*{{{tex_escape(_title(d))}}}", r"\subsection*{Forward definitions}",
           r"\begin{align*}"]
    out.append(r" \\".join(rf"{f.symbol} &= {f.latex}" for f in d.forward))
    out += [r"\end{align*}", r"\subsection*{Backward pass}", NOTATION, ""]
    for s in d.steps:
        head = f"Step {s.number}{s.part}" if s.number is not None else "Pass-through"
        sym = s.definition.symbol
        out.append(rf"\paragraph{{{head}: ${sym} = {s.definition.latex}$}}")
        shape = _tex_shape(s.node.shape)
        incoming = BLANK_LATEX if adjoint_hidden(d, s) else s.adjoint_latex
        rows = [rf"{bar(sym)} &= {incoming} {shape}"]
        rows += [rf"\frac{{\partial {sym}}}{{\partial {x}}} &= {dd} \quad \text{{(elementwise)}}"
                 for x, dd in s.local]
        rows += [rf"{bar(c.symbol)} &\mathrel{{+}}= "
                 rf"{BLANK_LATEX if blank(d, s) else c.latex} {_tex_shape(c.input.shape)}"
                 for c in s.contributions]
        out += [r"\begin{align*}", r" \\".join(rows), r"\end{align*}"]
        if s.rule:
            out.append(rf"Rule: ${s.rule}$")
        if s.code and not blank(d, s):  # an exercise's code would spell the answer out
            out += [r"\begin{verbatim}", *s.code, r"\end{verbatim}"]
    out += [r"\subsection*{Result (simplified)}"]
    for r in d.results:
        w = d.symbols.get(r.wrt, "?")
        gathered = d.gathered.get(r.wrt)
        if d.exercise is not None:
            out += [r"\begin{equation*}", f"{_partial(d, w)} = {BLANK_LATEX}",
                    r"\end{equation*}"]
            continue
        if gathered:
            out += [r"\begin{equation*}", f"{bar(w)} = {gathered}", r"\end{equation*}"]
        out += [r"\begin{equation*}", f"{_partial(d, w)} = {r.latex}", r"\end{equation*}"]
    out += extras_latex(d)
    if d.exercise is not None:
        out += answer_sheet_latex(d, lambda w: _partial(d, w))
    out.append(r"\end{document}")
    return "\n".join(out) + "\n"


def save(d: Derivation, path: str | Path) -> None:
    """Write ``d`` to ``path`` in the format its suffix names: .html, .md, .tex or .txt."""
    path = Path(path)
    writers = {".html": to_html, ".md": to_markdown, ".tex": to_latex, ".txt": to_text}
    writer = writers.get(path.suffix.lower())
    if writer is None:
        raise ValueError(
            f"derive: cannot write {path.name!r}: use a .html, .md, .tex or .txt file name"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(writer(d), encoding="utf-8")


# --------------------------------------------------------------------------- issue 15, items 3-4
# The trace tables (--at) and the finite-difference check (--check), after the result.


def extras_markdown(d: Derivation) -> list[str]:
    """The evaluation traces and the finite-difference check as Markdown sections."""
    out: list[str] = []
    if d.trace is not None:
        out += ["## Evaluation trace", "", d.trace.to_markdown(), ""]
    if d.check is not None:
        out += [d.check.to_markdown(), ""]
    return out


def extras_text(d: Derivation) -> list[str]:
    """The evaluation traces and the finite-difference check as plain text."""
    out: list[str] = []
    if d.trace is not None:
        out += ["", "Evaluation trace:", d.trace.to_text().rstrip("\n")]
    if d.check is not None:
        out += ["", d.check.to_text().rstrip("\n")]
    return out


def extras_latex(d: Derivation) -> list[str]:
    """The evaluation traces and the finite-difference check as LaTeX."""
    out: list[str] = []
    if d.trace is not None:
        out += [r"\subsection*{Evaluation trace}", d.trace.to_latex()]
    if d.check is not None:
        out.append(d.check.to_latex())
    return out
