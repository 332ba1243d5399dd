"""Standalone HTML pages with typeset math, and a small Markdown-to-HTML converter.

A page from `html_page` is one file that needs nothing else: KaTeX's script, stylesheet and
fonts are inlined (fonts as ``data:`` URIs), and a Content-Security-Policy forbids every network
load, so the page looks the same on a laptop without network as in CI.

`markdown_to_html` converts the small Markdown subset that derivations are written in. Math
(``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``) passes through untouched apart from HTML
escaping, and is typeset in the browser by KaTeX's auto-render.
"""

from __future__ import annotations

import base64
import functools
import html
import importlib.resources
import re

__all__ = ["KATEX_VERSION", "html_page", "markdown_to_html"]

#: Version of the KaTeX files in ``symdl/_vendor/katex`` (a test checks that they agree).
KATEX_VERSION = "0.19.1"

#: Every fetch is refused; only inline styles and scripts and ``data:`` fonts/images may load.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
    "font-src data:; img-src data:; base-uri 'none'; form-action 'none'"
)

DEFAULT_CSS = """\
:root { color-scheme: light; }
body {
  margin: 0; padding: 2rem 1.25rem; background: #fff; color: #1f2328;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 16px; line-height: 1.6;
}
main { max-width: 60rem; margin: 0 auto; }
h1, h2, h3 { line-height: 1.25; margin: 1.6em 0 0.6em; }
h1 { font-size: 1.9rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.3em; margin-top: 0; }
h2 { font-size: 1.45rem; border-bottom: 1px solid #eaeef2; padding-bottom: 0.2em; }
h3 { font-size: 1.15rem; }
p, ul, ol, table, pre, .math-display { margin: 0 0 1rem; }
code, pre {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  font-size: 0.9em;
}
:not(pre) > code { background: #f3f4f6; border-radius: 4px; padding: 0.1em 0.35em; }
pre code { font-size: inherit; }
pre {
  background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px;
  padding: 0.8rem 1rem; overflow-x: auto; line-height: 1.45;
}
table { border-collapse: collapse; display: block; max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: 0.35rem 0.75rem; vertical-align: top; }
th { background: #f6f8fa; font-weight: 600; }
tr:nth-child(even) td { background: #fbfcfd; }
.katex-display { overflow-x: auto; overflow-y: hidden; padding: 0.2em 0; }
.katex-error { color: #b00020; }
"""

# Runs after KaTeX and auto-render are defined. Unparseable math is left as red source text by
# `throwOnError: false`; reporting it on the console as well lets a headless check notice it.
_RENDER_SCRIPT = """\
renderMathInElement(document.body, {
  delimiters: [
    {left: "$$", right: "$$", display: true},
    {left: "\\\\[", right: "\\\\]", display: true},
    {left: "$", right: "$", display: false},
    {left: "\\\\(", right: "\\\\)", display: false}
  ],
  throwOnError: false
});
document.querySelectorAll(".katex-error").forEach(function (el) {
  console.error("symdl: KaTeX could not typeset: " + el.getAttribute("title"));
});
document.body.setAttribute("data-math", "rendered");
"""

# ---------------------------------------------------------------------------------------------
# Vendored KaTeX files


@functools.cache
def _vendor_text(relpath: str) -> str:
    """Return a vendored KaTeX text file (``relpath`` relative to ``_vendor/katex``)."""
    return _vendor_bytes(relpath).decode("utf-8")


@functools.cache
def _vendor_bytes(relpath: str) -> bytes:
    """Return a vendored KaTeX file's bytes, read once per process."""
    resource = importlib.resources.files("symdl") / "_vendor" / "katex"
    for part in relpath.split("/"):
        resource = resource / part
    return resource.read_bytes()


# One @font-face `src:` list in katex.min.css: the woff2 URL first, then woff/ttf fallbacks.
_FONT_SRC_RE = re.compile(r"src:\s*url\((?P<q>['\"]?)fonts/(?P<name>[\w.-]+\.woff2)(?P=q)\)[^;}]*")


@functools.lru_cache(maxsize=1)
def _katex_css_inlined() -> str:
    """Return KaTeX's CSS with each ``@font-face`` source replaced by one woff2 ``data:`` URI.

    The woff/ttf fallbacks are dropped rather than kept as relative URLs: they are not vendored,
    and the CSP would block them anyway, which shows up as console errors.
    """

    def inline_font(match: re.Match[str]) -> str:
        data = base64.b64encode(_vendor_bytes("fonts/" + match["name"])).decode("ascii")
        return f'src:url(data:font/woff2;base64,{data}) format("woff2")'

    css = _FONT_SRC_RE.sub(inline_font, _vendor_text("katex.min.css"))
    leftover = re.search(r"url\((?!data:)[^)]*\)", css)
    if leftover:
        raise RuntimeError(
            f"katex.min.css still references {leftover[0]} after inlining fonts; "
            "the vendored CSS changed format, update _FONT_SRC_RE in symdl/render/html.py"
        )
    return css


def _licence_comment() -> str:
    """Return KaTeX's MIT notice as an HTML comment, as the licence asks of copies."""
    notice = _vendor_text("LICENSE").strip().replace("--", "- -")
    intro = f"KaTeX {KATEX_VERSION}, inlined below, is distributed under this licence:"
    return f"<!--\n{intro}\n\n{notice}\n-->"


def _raw_text_safe(text: str, element: str) -> str:
    """Check that ``text`` can sit inside a ``<script>``/``<style>`` element without ending it."""
    if re.search(rf"</{element}", text, re.IGNORECASE):
        raise ValueError(
            f"text for an inline <{element}> contains '</{element}', which would end it early"
        )
    return text


# ---------------------------------------------------------------------------------------------
# The page


def html_page(title: str, body_html: str, *, extra_css: str = "") -> str:
    """Return one self-contained HTML document that typesets the math in ``body_html``.

    Args:
        title: Page title, plain text (it is HTML-escaped).
        body_html: HTML for the page body, for example from `markdown_to_html`. Math between
            ``$$``/``\\[`` (display) or ``$``/``\\(`` (inline) delimiters is typeset by KaTeX.
        extra_css: Stylesheet appended after the default one.

    Returns:
        The document. It loads nothing from the network: KaTeX and its fonts are inlined and a
        Content-Security-Policy refuses every other load.

    Raises:
        ValueError: If ``extra_css`` contains ``</style``.
    """
    styles = [_katex_css_inlined(), DEFAULT_CSS]
    if extra_css:
        styles.append(_raw_text_safe(extra_css, "style"))
    style_tags = "\n".join(f"<style>\n{css}\n</style>" for css in styles)
    scripts = [
        _raw_text_safe(_vendor_text("katex.min.js"), "script"),
        _raw_text_safe(_vendor_text("contrib/auto-render.min.js"), "script"),
        _RENDER_SCRIPT,
    ]
    script_tags = "\n".join(f"<script>\n{js}\n</script>" for js in scripts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        # Must precede everything that could load a resource.
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n"
        f"{style_tags}\n"
        "</head>\n"
        "<body>\n"
        "<main>\n"
        f"{body_html}\n"
        "</main>\n"
        f"{_licence_comment()}\n"
        f"{script_tags}\n"
        "</body>\n"
        "</html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Markdown subset


def markdown_to_html(md: str) -> str:
    """Convert the Markdown subset used by derivations to HTML.

    Supported: ``#``/``##``/``###`` headings; paragraphs; fenced code blocks (an info string
    such as ``python`` becomes ``class="language-python"``); inline ``code``; ``**bold**`` and
    ``*italic*``; one-level ordered (``1.``) and unordered (``-``/``*``) lists; pipe tables with a
    ``|---|`` separator row (``:---:`` sets alignment); and math. Math is every ``$$...$$``,
    ``$...$``, ``\\[...\\]`` or ``\\(...\\)`` span, found the way KaTeX's auto-render finds it;
    it is HTML-escaped but otherwise untouched, so ``*``, ``_`` and backticks inside it stay
    LaTeX. A display-math block may span lines. ``\\$`` is a literal dollar sign.

    Everything else is text: it is HTML-escaped, so raw HTML in ``md`` is shown, not run.
    """
    lines = md.replace("\r\n", "\n").replace("\r", "\n").replace("\0", "").split("\n")
    blocks: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif _FENCE_RE.match(line):
            i = _code_block(lines, i, blocks)
        elif (end := _display_math_block(lines, i)) is not None:
            math = "\n".join(lines[i:end]).strip()
            blocks.append(f'<div class="math-display">{html.escape(math, quote=False)}</div>')
            i = end
        elif m := _HEADING_RE.match(line):
            level = len(m["hashes"])
            text, anchor = m["text"], ""
            # `### Title {#id}` gives the heading an id, as in Pandoc (a link target).
            if a := _HEADING_ID_RE.search(text):
                text, anchor = text[: a.start()], f' id="{a[1]}"'
            blocks.append(f"<h{level}{anchor}>{_inline(text)}</h{level}>")
            i += 1
        elif _table_starts(lines, i):
            i = _table(lines, i, blocks)
        elif _LIST_ITEM_RE.match(line):
            i = _list(lines, i, blocks)
        else:
            i = _paragraph(lines, i, blocks)
    return "\n".join(blocks)


_FENCE_RE = re.compile(r"^\s{0,3}(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)[^`]*$")
_HEADING_RE = re.compile(r"^\s{0,3}(?P<hashes>#{1,3})\s+(?P<text>.*?)(?:\s+#+)?\s*$")
_LIST_ITEM_RE = re.compile(r"^\s{0,3}(?:(?P<bullet>[-*+])|(?P<number>\d{1,9})[.)])\s+(?P<text>.*)$")
_HEADING_ID_RE = re.compile(r"\s*\{#([A-Za-z][\w-]*)\}$")
_TABLE_SEPARATOR_RE = re.compile(r"^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$")


def _code_block(lines: list[str], start: int, blocks: list[str]) -> int:
    """Append the fenced code block opening at ``lines[start]``; return the index after it."""
    opening = _FENCE_RE.match(lines[start])
    assert opening is not None
    fence, info = opening["fence"], opening["info"]
    end = start + 1
    # An unclosed fence runs to the end of the document, as in CommonMark.
    while end < len(lines) and not (
        lines[end].strip().startswith(fence) and lines[end].strip().strip(fence[0]) == ""
    ):
        end += 1
    code = html.escape("\n".join(lines[start + 1 : end]), quote=False)
    lang = f' class="language-{html.escape(info)}"' if info else ""
    blocks.append(f"<pre><code{lang}>{code}</code></pre>")
    return end + 1


def _display_math_block(lines: list[str], start: int) -> int | None:
    """Return the index after a display-math block opening at ``lines[start]``, if it is one.

    A block opens a line with ``$$`` (or ``\\[``) and ends with the closing delimiter at the end
    of a line, with nothing but the math in between; the math may span lines, including blank
    lines and lines that would otherwise look like lists or tables.
    """
    if not lines[start].strip().startswith(("$$", "\\[")):
        return None
    rest = "\n".join(lines[start:]).strip()
    left, right = ("$$", "$$") if rest.startswith("$$") else ("\\[", "\\]")
    close = _find_math_end(rest, len(left), right)
    if close is None:
        return None
    after = close + len(right)
    line_end = rest.find("\n", after)
    if rest[after : len(rest) if line_end < 0 else line_end].strip():
        return None  # text follows the math on its line: part of a paragraph
    return start + rest.count("\n", 0, after) + 1


def _heading_or_block_start(lines: list[str], i: int) -> bool:
    """Return whether ``lines[i]`` starts a block other than a paragraph."""
    line = lines[i]
    return bool(
        not line.strip()
        or _FENCE_RE.match(line)
        or _HEADING_RE.match(line)
        or _LIST_ITEM_RE.match(line)
        or _table_starts(lines, i)
        or _display_math_block(lines, i) is not None
    )


def _paragraph(lines: list[str], start: int, blocks: list[str]) -> int:
    """Append the paragraph starting at ``lines[start]``; return the index after it."""
    end = start + 1
    while end < len(lines) and not _heading_or_block_start(lines, end):
        end += 1
    text = "\n".join(line.strip() for line in lines[start:end])
    blocks.append(f"<p>{_inline(text)}</p>")
    return end


def _list(lines: list[str], start: int, blocks: list[str]) -> int:
    """Append the list starting at ``lines[start]``; return the index after it.

    The first item decides between ``<ul>`` and ``<ol>``; an item of the other kind ends the
    list. Indented lines continue the item above them.
    """
    first = _LIST_ITEM_RE.match(lines[start])
    assert first is not None
    ordered = first["number"] is not None
    items: list[str] = []
    i = start
    while i < len(lines):
        item = _LIST_ITEM_RE.match(lines[i])
        if item is not None and (item["number"] is not None) == ordered:
            items.append(item["text"].strip())
        elif item is None and items and lines[i][:1] in (" ", "\t") and lines[i].strip():
            items[-1] += "\n" + lines[i].strip()
        else:
            break
        i += 1
    tag = "ol" if ordered else "ul"
    start_attr = ""
    if ordered and int(first["number"]) != 1:
        start_attr = f' start="{int(first["number"])}"'
    body = "\n".join(f"<li>{_inline(text)}</li>" for text in items)
    blocks.append(f"<{tag}{start_attr}>\n{body}\n</{tag}>")
    return i


def _table_starts(lines: list[str], i: int) -> bool:
    """Return whether a pipe table (header row, then ``|---|`` row) starts at ``lines[i]``."""
    return (
        lines[i].lstrip().startswith("|")
        and i + 1 < len(lines)
        and "-" in lines[i + 1]
        and _TABLE_SEPARATOR_RE.match(lines[i + 1]) is not None
    )


def _table(lines: list[str], start: int, blocks: list[str]) -> int:
    """Append the pipe table starting at ``lines[start]``; return the index after it."""
    header = _split_row(lines[start])
    aligns = []
    for cell in _split_row(lines[start + 1]):
        left, right = cell.startswith(":"), cell.endswith(":")
        aligns.append("center" if left and right else "right" if right else "left" if left else "")
    rows: list[list[str]] = []
    i = start + 2
    while i < len(lines) and lines[i].lstrip().startswith("|"):
        rows.append(_split_row(lines[i]))
        i += 1

    def cell_html(tag: str, text: str, column: int) -> str:
        align = aligns[column] if column < len(aligns) else ""
        style = f' style="text-align: {align}"' if align else ""
        return f"<{tag}{style}>{_inline(text)}</{tag}>"

    head = "".join(cell_html("th", text, c) for c, text in enumerate(header))
    body_rows = []
    for row in rows:
        # Short rows are padded and long rows cut to the header's width, as GFM does.
        cells = (row + [""] * len(header))[: len(header)]
        body_rows.append(
            "<tr>" + "".join(cell_html("td", t, c) for c, t in enumerate(cells)) + "</tr>"
        )
    body = "\n".join(body_rows)
    blocks.append(
        f"<table>\n<thead>\n<tr>{head}</tr>\n</thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    )
    return i


def _split_row(line: str) -> list[str]:
    """Split a table row on ``|``, except inside math or code spans and after a backslash."""
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    cells: list[str] = []
    current: list[str] = []
    pos = 0
    while pos < len(text):
        span = _protected_span(text, pos)
        if span is not None:
            current.append(text[pos:span])
            pos = span
        elif text.startswith("\\|", pos):
            current.append("|")
            pos += 2
        elif text[pos] == "\\":
            current.append(text[pos : pos + 2])  # keeps `\$` from opening math here
            pos += 2
        elif text[pos] == "|":
            cells.append("".join(current).strip())
            current = []
            pos += 1
        else:
            current.append(text[pos])
            pos += 1
    if "".join(current).strip():
        cells.append("".join(current).strip())
    return cells


# ---------------------------------------------------------------------------------------------
# Inline content

# Same order as the delimiters given to auto-render in the page: at one position, `$$` wins.
_MATH_DELIMITERS = (("$$", "$$"), ("\\[", "\\]"), ("$", "$"), ("\\(", "\\)"))


def _find_math_end(text: str, start: int, right: str) -> int | None:
    """Return where the closing ``right`` delimiter of math starting at ``start`` is, if any.

    Mirrors auto-render's ``findEndOfMath``: a backslash skips the next character, and the
    delimiter only counts outside braces (so ``$\\text{$x$}$`` is one span).
    """
    depth = 0
    pos = start
    while pos < len(text):
        char = text[pos]
        if depth <= 0 and text.startswith(right, pos):
            return pos
        if char == "\\":
            pos += 1
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
        pos += 1
    return None


def _protected_span(text: str, pos: int) -> int | None:
    """Return the end of a math or code span starting at ``text[pos]``, or None if none does."""
    if text[pos] == "`":
        ticks = len(text[pos:]) - len(text[pos:].lstrip("`"))
        code_end = text.find("`" * ticks, pos + ticks)
        return None if code_end < 0 else code_end + ticks
    for left, right in _MATH_DELIMITERS:
        if text.startswith(left, pos):
            math_end = _find_math_end(text, pos + len(left), right)
            if math_end is not None and math_end > pos + len(left):
                return math_end + len(right)
    return None


# Backslash escapes: `\$`, `\*` and `\``. (`\(` and `\[` are math delimiters, not escapes.)
_ESCAPABLE = frozenset("$*`")
_BOLD_RE = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*", re.DOTALL)
_ITALIC_RE = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])", re.DOTALL)
_LINK_RE = re.compile(r"\[([^\]\n]+)\]\(#([A-Za-z][\w-]*)\)")
_PLACEHOLDER_RE = re.compile("\0(\\d+)\0")


def _inline(text: str) -> str:
    """Convert inline Markdown to HTML: math and code spans first, then bold and italic.

    Math and code spans are swapped for NUL-delimited placeholders (NULs were removed from the
    input) before emphasis is applied, so nothing inside them is touched and emphasis may still
    wrap around them.
    """
    pieces: list[str] = []
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos] == "\\" and text[pos + 1 : pos + 2] in _ESCAPABLE:
            char = text[pos + 1]
            # A literal dollar gets an element of its own: auto-render looks for delimiters in
            # each text node, so it cannot pair this one with a dollar elsewhere.
            pieces.append('<span class="dollar">$</span>' if char == "$" else char)
            out.append(f"\0{len(pieces) - 1}\0")
            pos += 2
            continue
        end = _protected_span(text, pos)
        if end is None:
            out.append(text[pos])
            pos += 1
            continue
        span = text[pos:end]
        if span.startswith("`"):
            ticks = len(span) - len(span.lstrip("`"))
            code = span[ticks:-ticks]
            # CommonMark strips one space each side so that `` `x` `` can show a backtick.
            if len(code) > 2 and code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            pieces.append(f"<code>{html.escape(code, quote=False)}</code>")
        else:
            pieces.append(html.escape(span, quote=False))
        out.append(f"\0{len(pieces) - 1}\0")
        pos = end
    escaped = html.escape("".join(out), quote=False)
    escaped = _BOLD_RE.sub(r"<strong>\1</strong>", escaped)
    escaped = _ITALIC_RE.sub(r"<em>\1</em>", escaped)
    # Links within the page only (``[text](#id)``): nothing on a page may point elsewhere.
    escaped = _LINK_RE.sub(r'<a href="#\2">\1</a>', escaped)
    return _PLACEHOLDER_RE.sub(lambda m: pieces[int(m[1])], escaped)
