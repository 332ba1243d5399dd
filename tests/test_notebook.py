"""Derivations and traces in Jupyter (issue 15, item 9): their ``_repr_html_`` is a
self-contained page, and ``examples/classroom/lecture.ipynb`` runs from top to bottom."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.derive import trace
from symdl.render import find_chromium
from tests.test_derive import load

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "classroom" / "lecture.ipynb"


def framed_page(fragment: str) -> str:
    """The page inside an ``<iframe srcdoc>`` fragment, unescaped."""
    m = re.fullmatch(r'<iframe srcdoc="([^"]*)" sandbox="allow-scripts" style="[^"]*"></iframe>',
                     fragment)
    assert m, fragment[:200]
    return html.unescape(m[1])


def test_derivation_repr_html_is_the_offline_page() -> None:
    m = load("softmax_regression")
    d = sd.derive(m["loss"], m["WRT"])
    page = framed_page(d._repr_html_())
    assert page == d.to_html()  # the page a file gets: KaTeX inlined, every load refused
    assert "Content-Security-Policy" in page and "renderMathInElement" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_trace_repr_html_holds_its_numbers() -> None:
    m = load("lecture_trace")
    t = trace(m["loss"], m["WRT"], m["POINT"])
    page = framed_page(t._repr_html_())
    assert all(heading in page for heading in ("Forward primal trace", "Forward tangent trace",
                                               "Reverse adjoint trace"))
    # y = ln 2 + 10 - sin 5 and dy/dx1 = 1/2 + 5, as printed in the tables (4 digits)
    y = np.log(2.0) + 10.0 - np.sin(5.0)
    assert f"{y:.4g}"[:5] in page and "5.5" in page
    assert "Content-Security-Policy" in page


def test_lecture_notebook_runs() -> None:
    nbformat = pytest.importorskip("nbformat", reason="the notebook extra: pip install "
                                   "'symdl[notebook]'")
    nbclient = pytest.importorskip("nbclient", reason="pip install 'symdl[notebook]'")
    pytest.importorskip("ipykernel", reason="pip install 'symdl[notebook]'")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    htmls = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    # the trace and the derivation render as pages in frames
    assert len([h for h in htmls if h.startswith("<iframe srcdoc=")]) == 2
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "y = v5 = 11.652" in text
    assert "dy/dx1 = 5.5000" in text and f"dy/dx2 = {2 - np.cos(5.0):.4f}" in text
    assert "x2_grad = x1 - np.cos(x2)" in text  # the generated function, dy/dx2 simplified
    final = re.search(r"loss (\S+) -> (\S+), training accuracy (\S+)", text)
    assert final and float(final[2]) < float(final[1]) and float(final[3]) >= 0.9


@pytest.mark.skipif(find_chromium() is None, reason="headless Chromium not installed")
def test_reprs_typeset_inside_a_host_page(tmp_path: Path) -> None:
    """As a notebook shows them: both frames in one host page load in headless Chromium with
    no console error (a CSP refusal or a KaTeX error, which the pages log, would show)."""
    from symdl.render import screenshot

    m = load("lecture_trace")
    t = trace(m["loss"], m["WRT"], m["POINT"])
    d = sd.derive(m["loss"], m["WRT"])
    host = tmp_path / "host.html"
    host.write_text("<!DOCTYPE html><html><body>" + t._repr_html_() + d._repr_html_()
                    + "</body></html>", encoding="utf-8")
    result = screenshot(host, tmp_path / "host.png", width=1000, height=1400)
    assert result.console_errors == []
    image = (tmp_path / "host.png").read_bytes()
    assert image[:8] == b"\x89PNG\r\n\x1a\n"
