"""Look at a page the way a reader will: headless Chromium takes a screenshot and the DOM.

Used by tests and by anyone checking a derivation page by eye. This module only drives a
browser that is already installed (`find_chromium`); nothing here is needed to build a page.

How the check works, and why this way:

* ``--screenshot`` and ``--dump-dom`` run in two separate Chromium processes: older headless
  shells take only one of them per run, and two short runs cost about a second more.
* The page's console comes from Chromium's own log (``--enable-logging=stderr --v=0``), which
  writes every console message, uncaught exception and Content-Security-Policy violation as a
  ``CONSOLE`` line. The log does not record the message's level, so every such line is returned:
  symdl's pages write nothing to the console unless something is wrong. The log's other
  ``ERROR:`` lines (D-Bus, GPU, sandbox) are the browser's, not the page's, and are dropped.
* A blocked network load shows up as a CSP-violation console line, so "no console lines" also
  means "nothing tried to reach the network". A driver speaking the DevTools protocol would see
  levels and requests directly, but needs a websocket client; the log needs nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from symdl.errors import SymdlError

__all__ = ["BrowserError", "BrowserResult", "find_chromium", "screenshot"]

_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")

# One Chromium log record: `[pid:tid:date/time.usec:LEVEL:source] message`.
_LOG_RECORD_RE = re.compile(r"^\[\d+:\d+:[^\]]*\]")
# A page console record, e.g. `[..:INFO:CONSOLE:74] "text", source: file:///p.html (74)`.
_CONSOLE_RE = re.compile(r"^\[[^\]]*:CONSOLE\b[^\]]*\]\s?(?P<message>.*)$")
# A console message may span lines; it ends with its source location.
_CONSOLE_END_RE = re.compile(r", source: \S* \(\d+\)$")


class BrowserError(SymdlError, RuntimeError):
    """Chromium could not be run, timed out, or produced no screenshot or DOM."""


@dataclass(frozen=True)
class BrowserResult:
    """What headless Chromium saw of a page.

    Attributes:
        png_path: The screenshot (PNG) of the first ``width`` x ``height`` pixels.
        console_errors: Every console message, uncaught exception and CSP violation the page
            produced, as ``"text", source: URL (line)``; empty for a healthy page.
        dom: The document as serialised after its scripts ran (``--dump-dom``).
    """

    png_path: Path
    console_errors: list[str]
    dom: str


def find_chromium() -> str | None:
    """Return the path of a Chromium or Chrome executable on ``PATH``, or None if none is."""
    for name in _CHROMIUM_NAMES:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def screenshot(
    html_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    *,
    width: int = 1000,
    height: int = 800,
    timeout: float = 60,
) -> BrowserResult:
    """Open ``html_path`` in headless Chromium; save a screenshot and return console and DOM.

    Args:
        html_path: The page, a local file.
        png_path: Where to write the PNG screenshot.
        width: Viewport width in CSS pixels.
        height: Viewport height in CSS pixels (the screenshot is this tall, not the full page).
        timeout: Seconds allowed for each of the two Chromium runs.

    Returns:
        The screenshot's path, the page's console lines and its rendered DOM.

    Raises:
        BrowserError: If no Chromium is installed, a run times out or fails, or the screenshot
            or DOM is missing.
    """
    chromium = find_chromium()
    if chromium is None:
        raise BrowserError(
            f"no Chromium found on PATH (looked for {', '.join(_CHROMIUM_NAMES)}); "
            "install one, e.g. `apt-get install chromium`"
        )
    url = Path(html_path).resolve().as_uri()
    png = Path(png_path).resolve()
    png.unlink(missing_ok=True)  # so that a stale file cannot pass for a fresh screenshot

    _, shot_log = _run_chromium(
        chromium, [f"--screenshot={png}", f"--window-size={width},{height}"], url, timeout
    )
    if not png.is_file() or png.stat().st_size == 0:
        raise BrowserError(f"Chromium wrote no screenshot of {url} to {png}; its log:\n{shot_log}")
    dom, dom_log = _run_chromium(chromium, ["--dump-dom"], url, timeout)
    if "<html" not in dom.lower():
        raise BrowserError(f"Chromium returned no DOM for {url}; its log:\n{dom_log}")

    # Both runs execute the page; report a message once even if both logged it.
    console = list(dict.fromkeys(_console_lines(shot_log) + _console_lines(dom_log)))
    return BrowserResult(png_path=png, console_errors=console, dom=dom)


def _run_chromium(chromium: str, action: list[str], url: str, timeout: float) -> tuple[str, str]:
    """Run headless Chromium once on ``url``; return its (stdout, stderr).

    Every run gets a fresh profile, and the switches turn off all of Chromium's own traffic
    (updates, sync, QUIC probing) so that the only network activity could come from the page.
    """
    with tempfile.TemporaryDirectory(prefix="symdl-chromium-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",  # the sandbox refuses to start as root, as in containers and CI
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",  # lets scripts and web fonts finish before capture
            "--enable-logging=stderr",
            "--v=0",
            *action,
            url,
        ]
        # A session of its own, so that a timeout can end Chromium's helper processes too.
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise BrowserError(
                f"Chromium did not finish {action[0]} of {url} within {timeout} s; "
                "raise `timeout` or check that the page does not loop"
            ) from exc
    if process.returncode != 0:
        raise BrowserError(
            f"Chromium exited with status {process.returncode} on {action[0]} of {url}; "
            f"its log:\n{stderr}"
        )
    return stdout, stderr


def _console_lines(log: str) -> list[str]:
    """Return the page's console messages from a Chromium log, one string per message."""
    messages: list[str] = []
    current: list[str] | None = None  # lines of the console message being read
    for line in log.splitlines():
        if _LOG_RECORD_RE.match(line):
            if current is not None:  # its source line never came; keep what there is
                messages.append("\n".join(current))
            match = _CONSOLE_RE.match(line)
            current = [match["message"]] if match else None
        elif current is not None:
            current.append(line)  # a message with newlines continues on the next log line
        if current is not None and _CONSOLE_END_RE.search(current[-1]):
            messages.append("\n".join(current))
            current = None
    if current is not None:
        messages.append("\n".join(current))
    return messages
