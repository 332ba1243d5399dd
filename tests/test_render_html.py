"""Tests for symdl.render: the Markdown subset, the offline HTML page, and a headless-browser check.

The browser tests need Chromium (`apt-get install chromium`) and are skipped, with that reason,
where it is missing. Everything else runs anywhere.
"""

from __future__ import annotations

import html.parser
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from symdl.render import browser
from symdl.render.html import (
    CONTENT_SECURITY_POLICY,
    KATEX_VERSION,
    html_page,
    markdown_to_html,
)

VENDOR = Path(__file__).resolve().parent.parent / "symdl" / "_vendor" / "katex"


class _TextAndRefs(html.parser.HTMLParser):
    """Collects a document's text (as a browser's ``textContent`` would read it) and every
    attribute value and ``<style>`` body that could make the browser fetch something."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        self.attrs.extend((tag, name, value or "") for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def text_of(fragment: str) -> str:
    """Return the text a browser (and so KaTeX's auto-render) reads from an HTML fragment."""
    parser = _TextAndRefs()
    parser.feed(fragment)
    parser.close()
    return "".join(parser.text)


# ---------------------------------------------------------------------------------------------
# Markdown subset

BLOCK_CASES = [
    # (markdown, expected HTML)
    ("# Title", "<h1>Title</h1>"),
    ("## Step 1 ##", "<h2>Step 1</h2>"),
    ("### C# notes", "<h3>C# notes</h3>"),
    ("#### four", "<p>#### four</p>"),
    ("one\ntwo\n\nthree", "<p>one\ntwo</p>\n<p>three</p>"),
    ("a **bold** and *it* word", "<p>a <strong>bold</strong> and <em>it</em> word</p>"),
    ("2 * 3 * 4 and a*b*c", "<p>2 * 3 * 4 and a*b*c</p>"),
    ("use `x <= y**2` here", "<p>use <code>x &lt;= y**2</code> here</p>"),
    ("`` a`b ``", "<p><code>a`b</code></p>"),
    ("<script>alert(1)</script> & co", "<p>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</p>"),
    ("- a\n- b\n  more", "<ul>\n<li>a</li>\n<li>b\nmore</li>\n</ul>"),
    ("1. a\n2. **b**", "<ol>\n<li>a</li>\n<li><strong>b</strong></li>\n</ol>"),
    ("3. c\n4. d", '<ol start="3">\n<li>c</li>\n<li>d</li>\n</ol>'),
    ("- a\n1. b", "<ul>\n<li>a</li>\n</ul>\n<ol>\n<li>b</li>\n</ol>"),
    ("text\n- item", "<p>text</p>\n<ul>\n<li>item</li>\n</ul>"),
    (
        "```python\ndef f(x):\n    return x**2 < 1 and $a$\n```",
        '<pre><code class="language-python">def f(x):\n    return x**2 &lt; 1 and $a$</code></pre>',
    ),
    ("```\nplain\n\n\nkept\n```", "<pre><code>plain\n\n\nkept</code></pre>"),
    ("```python\nunclosed", '<pre><code class="language-python">unclosed</code></pre>'),
    ("price \\$5 and \\*no\\*", '<p>price <span class="dollar">$</span>5 and *no*</p>'),
]


@pytest.mark.parametrize(("md", "expected"), BLOCK_CASES, ids=[c[0][:24] for c in BLOCK_CASES])
def test_markdown_blocks(md: str, expected: str) -> None:
    assert markdown_to_html(md) == expected


def test_markdown_table() -> None:
    md = (
        "| step | rule | value |\n"
        "|:---|:---:|---:|\n"
        "| 1 | `mul` | $|x| \\| y$ |\n"
        "| 2 | a \\| b |\n"
        "after"
    )
    assert markdown_to_html(md) == (
        "<table>\n<thead>\n"
        '<tr><th style="text-align: left">step</th><th style="text-align: center">rule</th>'
        '<th style="text-align: right">value</th></tr>\n'
        "</thead>\n<tbody>\n"
        '<tr><td style="text-align: left">1</td><td style="text-align: center"><code>mul</code>'
        '</td><td style="text-align: right">$|x| \\| y$</td></tr>\n'
        '<tr><td style="text-align: left">2</td><td style="text-align: center">a | b</td>'
        '<td style="text-align: right"></td></tr>\n'
        "</tbody>\n</table>\n"
        "<p>after</p>"
    )


def test_pipe_line_without_separator_is_a_paragraph() -> None:
    assert markdown_to_html("| not a table |") == "<p>| not a table |</p>"


# Math that must reach KaTeX unchanged: emphasis, code and escaping rules do not apply inside.
MATH_CASES = [
    "$a_{1} * b_{2}$",
    "$x^T$",
    "$a * b * c$",
    "$**not bold**$",
    "$`not code`$",
    "$a < b \\;\\&\\; c > d$",
    "$\\text{a $b$ c}$",
    "$$\\frac{\\partial y}{\\partial x}$$",
    "\\(W_{ij} * x_j\\)",
    "\\[\\sum_{i} x_i * y_i\\]",
]


@pytest.mark.parametrize("math", MATH_CASES)
def test_inline_math_survives(math: str) -> None:
    out = markdown_to_html(f"**Step**: see {math} here.")
    assert out.startswith("<p><strong>Step</strong>: see ")
    assert text_of(out) == f"Step: see {math} here."
    assert "<em>" not in out and "<code>" not in out


def test_math_escapes_only_html_specials() -> None:
    assert markdown_to_html("$a<b$ & $c>d$") == "<p>$a&lt;b$ &amp; $c&gt;d$</p>"


def test_emphasis_may_wrap_math() -> None:
    assert markdown_to_html("**the gradient $x_1 * y_1$**") == (
        "<p><strong>the gradient $x_1 * y_1$</strong></p>"
    )


def test_display_math_block_spans_lines() -> None:
    md = (
        "Before.\n"
        "$$\n"
        "\\begin{aligned}\n"
        "- a &= b_{1} * c \\\\\n"
        "\n"
        "| x | &= \\frac{\\partial y}{\\partial x}\n"
        "\\end{aligned}\n"
        "$$\n"
        "After."
    )
    out = markdown_to_html(md)
    math = md[md.index("$$") : md.rindex("$$") + 2]
    assert out.startswith('<p>Before.</p>\n<div class="math-display">')
    assert out.endswith("</div>\n<p>After.</p>")
    assert text_of(out) == "Before.\n" + math + "\nAfter."
    assert "<li>" not in out and "<td>" not in out


def test_math_in_heading_list_and_table() -> None:
    md = "## $\\partial L / \\partial W$\n\n- $x_{1} * y$\n\n| a |\n|---|\n| $W^T_{*}$ |"
    text = text_of(markdown_to_html(md))
    for math in ("$\\partial L / \\partial W$", "$x_{1} * y$", "$W^T_{*}$"):
        assert math in text


# ---------------------------------------------------------------------------------------------
# The page


@pytest.fixture(scope="module")
def page() -> str:
    return html_page(
        "Gradient of <loss> & co",
        markdown_to_html("# Softmax\n\n$$\\frac{\\partial L}{\\partial W}$$"),
        extra_css="h1 { color: #123456; }",
    )


def test_page_head(page: str) -> None:
    assert page.startswith('<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n')
    assert (
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">' in page
    )
    for directive in (
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "script-src 'unsafe-inline'",
        "font-src data:",
        "img-src data:",
    ):
        assert directive in CONTENT_SECURITY_POLICY
    assert "<title>Gradient of &lt;loss&gt; &amp; co</title>" in page
    assert "h1 { color: #123456; }" in page
    assert "max-width: 60rem" in page


def test_page_inlines_katex_and_calls_auto_render(page: str) -> None:
    assert page.count("<script>") == 3
    assert "<script src" not in page and "<link" not in page
    assert f'version:"{KATEX_VERSION}"' in page
    assert "renderMathInElement(document.body" in page
    assert '{left: "\\\\[", right: "\\\\]", display: true}' in page
    assert "throwOnError: false" in page
    assert "Khan Academy" in page  # the MIT notice travels with the copy


def test_page_loads_nothing_from_outside(page: str) -> None:
    parser = _TextAndRefs()
    parser.feed(page)
    parser.close()
    fetching = {"src", "href", "srcset", "action", "poster", "data", "background", "xlink:href"}
    outside = [(t, n, v) for t, n, v in parser.attrs if n in fetching and not v.startswith("data:")]
    assert outside == []
    css = "\n".join(parser.styles)
    assert "@import" not in css
    urls = re.findall(r"url\(\s*['\"]?([^'\")]*)", css)
    assert len(urls) == 20
    assert all(u.startswith("data:font/woff2;base64,") for u in urls)
    assert not re.search(r"\.(woff|ttf)\b", css)
    # The only absolute URLs are XML namespace names in KaTeX's code, which are never fetched.
    namespaces = {"http://www.w3.org/1998/Math/MathML", "http://www.w3.org/2000/svg"}
    assert set(re.findall(r"https?://[^\s\"'<>)]+", page)) <= namespaces


def test_page_is_deterministic_and_escapes_nothing_in_body() -> None:
    body = '<p class="x">$a_{1} * b$</p>'
    assert html_page("t", body) == html_page("t", body)
    assert f"<main>\n{body}\n</main>" in html_page("t", body)


def test_extra_css_cannot_close_the_style_element() -> None:
    with pytest.raises(ValueError, match="</style"):
        html_page("t", "", extra_css="</STYLE><script>alert(1)</script>")


def test_vendored_katex_is_complete_and_small() -> None:
    fonts = sorted(p.name for p in (VENDOR / "fonts").iterdir())
    assert len(fonts) == 20 and all(name.endswith(".woff2") for name in fonts)
    for name in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js", "LICENSE"):
        assert (VENDOR / name).is_file(), name
    assert "MIT" in (VENDOR / "LICENSE").read_text()
    assert f'version:"{KATEX_VERSION}"' in (VENDOR / "katex.min.js").read_text()
    assert f"version **{KATEX_VERSION}**" in (VENDOR / "README.md").read_text()
    total = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    assert total < 700_000, f"vendored KaTeX grew to {total} bytes"


def test_console_lines_are_parsed_from_the_chromium_log() -> None:
    log = (
        "/usr/bin/chromium: 9: [: 1: unexpected operator\n"
        "[1:2:1127/065846.55:ERROR:dbus/bus.cc:405] Failed to connect to the bus\n"
        '[1:1:1127/065846.92:INFO:CONSOLE:7] "Uncaught ReferenceError: f is not defined", '
        "source: file:///tmp/p.html (7)\n"
        '[1:1:1127/065846.93:INFO:CONSOLE(12)] "two\n'
        'lines", source: file:///tmp/p.html (12)\n'
        "24061 bytes written to file /tmp/p.png\n"
    )
    assert browser._console_lines(log) == [
        '"Uncaught ReferenceError: f is not defined", source: file:///tmp/p.html (7)',
        '"two\nlines", source: file:///tmp/p.html (12)',
    ]


# ---------------------------------------------------------------------------------------------
# Headless Chromium


def decode_png(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced, non-palette PNG to a (height, width, channels) array.

    Written out with zlib and struct so that the tests need no imaging library.
    """
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and interlace == 0 and colour in (0, 2, 4, 6), f"unsupported PNG: {header}"
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    stride = width * channels
    image = np.zeros((height, stride), dtype=np.uint8)
    previous = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, row = raw[y, 0], raw[y, 1:]
        if kind == 0:  # None
            out = row.copy()
        elif kind == 1:  # Sub: running sum per channel, modulo 256
            out = np.cumsum(row.reshape(width, channels), axis=0, dtype=np.uint8).ravel()
        elif kind == 2:  # Up
            out = row + previous
        else:  # Average (3) and Paeth (4) depend on the byte to the left: byte by byte
            out = np.zeros(stride, dtype=np.uint8)
            for x in range(stride):
                a = int(out[x - channels]) if x >= channels else 0
                b = int(previous[x])
                c = int(previous[x - channels]) if x >= channels else 0
                if kind == 3:
                    predictor = (a + b) // 2
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
                out[x] = (int(row[x]) + predictor) & 0xFF
        image[y] = out
        previous = out
    return image.reshape(height, width, channels)


DERIVATION_MD = r"""# Softmax regression

The loss is $L = -\frac{1}{N}\sum_{n} \log p_{n, y_n}$ with $p = \mathrm{softmax}(XW + b)$,
and its gradient with respect to $W$ is

$$\frac{\partial L}{\partial W} = X^T (\mathrm{softmax}(XW+b) - Y)/N$$

| step | expression | shape |
|---|---|---|
| 1 | $z = XW + b$ | $(N, K)$ |
| 2 | $\bar{z} = (p - Y)/N$ | $(N, K)$ |
| 3 | $\bar{W} = X^T \bar{z}$ | $(D, K)$ |

```python
W_grad = X.T @ ((softmax(X @ W + b) - Y) / N)
```
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    path = browser.find_chromium()
    if path is None:
        pytest.skip(
            "chromium not installed: none of chromium, chromium-browser, google-chrome is on "
            "PATH (apt-get install chromium)"
        )
    return path


@pytest.fixture(scope="module")
def rendered(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> browser.BrowserResult:
    folder = tmp_path_factory.mktemp("render")
    page_path = folder / "derivation.html"
    page_path.write_text(html_page("Softmax regression", markdown_to_html(DERIVATION_MD)))
    return browser.screenshot(page_path, folder / "derivation.png", width=1000, height=800)


def test_browser_logs_nothing(rendered: browser.BrowserResult) -> None:
    assert rendered.console_errors == []


def test_browser_typesets_every_formula(rendered: browser.BrowserResult) -> None:
    dom = rendered.dom
    assert 'data-math="rendered"' in dom  # our render script ran to its end
    assert dom.count('class="katex"') == 10  # 9 inline (3 + 6 in the table) + 1 display
    assert dom.count('class="katex-display"') == 1
    assert 'class="katex-error"' not in dom
    assert "$$" not in dom.split("<main>")[1].split("</main>")[0]


def test_browser_screenshot_is_not_blank(rendered: browser.BrowserResult) -> None:
    pixels = decode_png(rendered.png_path)[..., :3]
    assert pixels.shape == (800, 1000, 3)
    non_white = np.any(pixels < 250, axis=-1).sum()
    assert non_white > 5_000, f"only {non_white} non-white pixels"
    colours = np.unique(pixels.reshape(-1, 3), axis=0)
    assert len(colours) > 2


def test_browser_reports_blocked_loads_and_bad_math(chromium: str, tmp_path: Path) -> None:
    # Controls for the checks above: a CSP-blocked load and a formula KaTeX cannot parse must
    # both show up. The address is a closed local port, in case the CSP ever failed to apply.
    body = '<p>$\\frac{1}$</p><img alt="" src="http://127.0.0.1:9/blocked.png">'
    page_path = tmp_path / "bad.html"
    page_path.write_text(html_page("bad", body))
    result = browser.screenshot(page_path, tmp_path / "bad.png", width=400, height=300)
    joined = "\n".join(result.console_errors)
    assert "http://127.0.0.1:9/blocked.png" in joined and "Content Security Policy" in joined
    assert "symdl: KaTeX could not typeset" in joined
    assert 'class="katex-error"' in result.dom
