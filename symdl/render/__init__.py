"""Rendering derivations for people: standalone HTML pages with math typeset offline by KaTeX."""

from symdl.render.browser import BrowserError, BrowserResult, find_chromium, screenshot
from symdl.render.html import html_page, markdown_to_html

__all__ = [
    "BrowserError",
    "BrowserResult",
    "find_chromium",
    "html_page",
    "markdown_to_html",
    "screenshot",
]
