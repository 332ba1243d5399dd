"""The generated module on the derivation page (issue 15, item 8): each step links to its lines
and each ``# step k:`` comment links back; code names appear beside the math symbols."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from symdl.derive import derive
from symdl.render import markdown_to_html
from tests.test_derive import EXAMPLES, load


class Anchors(HTMLParser):
    """Every element's id, every link's target, and the text of each ``L<n>`` line span."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: dict[str, str] = {}  # id -> tag
        self.links: list[tuple[str | None, str]] = []  # (the link's own id, its href)
        self.lines: dict[int, str] = {}
        self._line: int | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids[a["id"]] = tag
        if tag == "a" and a.get("href"):
            self.links.append((a.get("id"), a["href"] or ""))
        if self._line is not None and tag == "span":
            self._depth += 1
        elif tag == "span" and (a.get("id") or "").startswith("L"):
            self._line, self._depth = int(a["id"][1:]), 0
            self.lines[self._line] = ""

    def handle_endtag(self, tag: str) -> None:
        if self._line is not None and tag == "span":
            if self._depth == 0:
                self._line = None
            else:
                self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._line is not None and self._depth == 0:
            self.lines[self._line] += data


def parse(page: str) -> Anchors:
    p = Anchors()
    p.feed(page)
    return p


@pytest.mark.parametrize("name", EXAMPLES)
def test_steps_and_code_link_both_ways(name: str) -> None:
    m = load(name)
    d = derive(m["loss"], m["WRT"])
    page = parse(d.to_html())
    # No link points at nothing, and no link leaves the page.
    for _, href in page.links:
        assert href.startswith("#"), href
        assert href[1:] in page.ids, f"{name}: link to missing #{href[1:]}"
    hrefs = {own: href for own, href in page.links}
    with_code = [s for s in d.steps if s.code]
    for s in with_code:
        k = s.number
        assert page.ids.get(f"step-{k}") == "h3"
        # The step links to its block ...
        assert f"#code-step-{k}" in {h for _, h in page.links}
        # ... whose comment links back to the step.
        assert hrefs.get(f"code-step-{k}") == f"#step-{k}"
        # The lines the step names are the lines it shows, and the first is its comment.
        numbers = d.code_lines[k]
        assert [page.lines[n].strip() for n in numbers] == s.code
        assert page.lines[numbers[0]].strip().startswith(f"# step {k}:")
        source = d.code.splitlines()
        assert [source[n - 1].strip() for n in numbers] == s.code
    # Every step comment in the module on the page is a link back.
    comments = [n for n, text in page.lines.items() if text.strip().startswith("# step ")]
    assert len(comments) == len(with_code)


def test_code_names_shown_where_they_differ() -> None:
    m = load("softmax_regression")
    d = derive(m["loss"], m["WRT"])
    renamed = {f.text_symbol: d.code_names[f.node] for f in d.forward
               if f.node in d.code_names and d.code_names[f.node] != f.text_symbol}
    assert renamed.get("v1") == "x_W"  # x W is held in x_W
    md = d.to_markdown()
    assert "| in the code |" in md
    row = next(line for line in md.splitlines() if line.startswith("| $v_{1}$"))
    assert row.endswith("| `x_W` |")
    # The name logits is the same on the page and in the code: its cell stays empty.
    row = next(line for line in md.splitlines() if line.startswith(r"| $\text{logits}$"))
    assert row.endswith("|  |")
    # and x_W is the variable the module assigns x @ W to
    assert "    x_W = x @ W" in d.code.splitlines()


def test_without_code_no_module_section() -> None:
    m = load("softmax_regression")
    d = derive(m["loss"], m["WRT"], code=False)
    page = d.to_html()
    assert "Generated module" not in page and 'id="code-step' not in page


def test_markdown_links_and_heading_ids() -> None:
    out = markdown_to_html("### Step 3: $x$ {#step-3}\n\nsee [the code](#code-step-3), "
                           "not [x](http://example.com)")
    assert '<h3 id="step-3">Step 3: $x$</h3>' in out
    assert '<a href="#code-step-3">the code</a>' in out
    assert "href=\"http" not in out  # only links within the page
    assert html.escape("[x](http://example.com)", quote=False) in out


def test_expanded_rule_links_to_the_part_holding_the_code() -> None:
    m = load("softmax_regression")
    d = derive(m["loss"], m["WRT"], expand=["softmax_cross_entropy"])
    page = parse(d.to_html())
    for _, href in page.links:
        assert href[1:] in page.ids, href
    holder = next(s for s in d.steps if s.part and s.code)
    assert dict(page.links).get(f"code-step-{holder.number}") == f"#step-{holder.label[5:]}"
