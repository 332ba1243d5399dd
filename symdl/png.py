"""Training curves as a PNG without matplotlib: a small raster plot drawn with numpy and zlib.

`symdl demo` and `sd.fit(plot=...)` use matplotlib when it is installed; on a fresh install
they draw with `plot_curves` instead, so the picture is always written. `write_png` encodes an
RGB array (8 bits per channel, no interlace, filter 0 on every row) as the PNG specification
describes; nothing beyond numpy and the standard library is needed.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_curves", "write_png"]

WHITE = (255, 255, 255)
AXIS = (80, 80, 80)
GRID = (225, 228, 232)
BLUE = (31, 119, 180)  # train, as matplotlib's first colour
ORANGE = (255, 127, 14)  # validation, its second


def write_png(path: str | os.PathLike[str], rgb: np.ndarray) -> None:
    """Write ``rgb`` (shape (height, width, 3), uint8) to ``path`` as a PNG file."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"write_png: need a (height, width, 3) uint8 array, got "
                         f"{rgb.shape} {rgb.dtype}")
    height, width, _ = rgb.shape
    # Each scanline starts with its filter type; 0 (none) keeps the encoder trivial.
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, -1)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                           + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9))
                           + chunk(b"IEND", b""))


# A 3x5 pixel font for the few labels a curve plot needs: five rows of three, '#' is ink.
_GLYPHS = {
    char: rows.split("/") for char, rows in {
        "0": "###/# #/# #/# #/###", "1": " # /## / # / # /###", "2": "###/  #/###/#  /###",
        "3": "###/  #/ ##/  #/###", "4": "# #/# #/###/  #/  #", "5": "###/#  /###/  #/###",
        "6": "###/#  /###/# #/###", "7": "###/  #/  #/  #/  #", "8": "###/# #/###/# #/###",
        "9": "###/# #/###/  #/###", ".": "   /   /   /   / # ", "-": "   /   /###/   /   ",
        "a": "   / ##/# #/# #/ ##", "c": "   / ##/#  /#  / ##", "e": "###/# #/###/#  /###",
        "i": " # /   / # / # / # ", "l": "## / # / # / # /###", "n": "   /## /# #/# #/# #",
        "o": "   /###/# #/# #/###", "p": "   /###/# #/###/#  ", "r": "   /## /# #/#  /#  ",
        "s": "   / ##/#  /  #/## ", "t": " # /###/ # / # / ##", "u": "   /# #/# #/# #/###",
        "v": "   /# #/# #/# #/ # ", "d": "  #/  #/###/# #/###", "y": "   /# #/###/  #/###",
        "(": " # /#  /#  /#  / # ", ")": " # /  #/  #/  #/ # ", " ": "   /   /   /   /   ",
    }.items()
}


def _glyph(char: str) -> np.ndarray:
    rows = _GLYPHS.get(char, _GLYPHS[" "])
    return np.array([[c == "#" for c in row] for row in rows])


def _text(canvas: np.ndarray, x: int, y: int, text: str, color: tuple[int, int, int],
          scale: int = 2) -> None:
    """Draw ``text`` with its top-left corner at (x, y), each font pixel ``scale`` wide."""
    for k, char in enumerate(text):
        ink = np.kron(_glyph(char), np.ones((scale, scale), bool))
        x0 = x + k * 4 * scale
        region = canvas[y:y + ink.shape[0], x0:x0 + ink.shape[1]]
        region[ink[:region.shape[0], :region.shape[1]]] = color


def _polyline(canvas: np.ndarray, xs: np.ndarray, ys: np.ndarray,
              color: tuple[int, int, int]) -> None:
    """Draw the segments through pixel points (xs, ys), 2 pixels thick, all at once: each
    segment is sampled at one point per pixel of its longer side."""
    if len(xs) == 1:
        xs, ys = np.repeat(xs, 2), np.repeat(ys, 2)
    dx, dy = np.diff(xs), np.diff(ys)
    counts = (np.maximum(np.abs(dx), np.abs(dy)).astype(int) + 1)
    segment = np.repeat(np.arange(len(dx)), counts)
    starts = np.cumsum(counts) - counts
    t = (np.arange(counts.sum()) - np.repeat(starts, counts)) / np.repeat(
        np.maximum(counts - 1, 1), counts)
    px = np.rint(xs[segment] + t * dx[segment]).astype(int)
    py = np.rint(ys[segment] + t * dy[segment]).astype(int)
    height, width, _ = canvas.shape
    for ox, oy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        cx, cy = np.clip(px + ox, 0, width - 1), np.clip(py + oy, 0, height - 1)
        canvas[cy, cx] = color


def _number(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.0f}"


def _panel(canvas: np.ndarray, box: tuple[int, int, int, int], title: str,
           curves: Sequence[tuple[np.ndarray, np.ndarray, tuple[int, int, int]]]) -> None:
    """One plot in ``box`` (left, top, right, bottom): frame, grid, the curves, the y range
    and the x range as numbers, the title above."""
    left, top, right, bottom = box
    canvas[top:bottom + 1, [left, right]] = AXIS
    canvas[[top, bottom], left:right + 1] = AXIS
    for k in range(1, 4):
        canvas[top + (bottom - top) * k // 4, left + 1:right] = GRID
    _text(canvas, left, top - 16, title, AXIS)
    shown = [(np.asarray(x, float), np.asarray(y, float), c) for x, y, c in curves
             if len(x) and np.isfinite(np.asarray(y, float)).any()]
    if not shown:
        return
    all_x = np.concatenate([x for x, _, _ in shown])
    all_y = np.concatenate([y[np.isfinite(y)] for _, y, _ in shown])
    x0, x1 = float(all_x.min()), float(all_x.max())
    y0, y1 = float(all_y.min()), float(all_y.max())
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    for x, y, color in shown:
        keep = np.isfinite(y)
        px = left + 2 + (x[keep] - x0) / (x1 - x0) * (right - left - 4)
        py = bottom - 2 - (y[keep] - y0) / (y1 - y0) * (bottom - top - 4)
        _polyline(canvas, px, py, color)
    _text(canvas, left + 4, top + 4, _number(y1), AXIS)
    _text(canvas, left + 4, bottom - 14, _number(y0), AXIS)
    _text(canvas, left, bottom + 6, _number(x0), AXIS)
    label = f"step {_number(x1)}"
    _text(canvas, right - len(label) * 8, bottom + 6, label, AXIS)


def plot_curves(path: str | os.PathLike[str], loss: Sequence[float],
                epochs: Sequence[dict[str, float]], accuracy: bool) -> str:
    """Draw the training loss per step (blue), validation loss and accuracy per epoch
    (orange; train accuracy blue) in two panels, write them to ``path`` and return it."""
    canvas = np.full((300, 800, 3), WHITE, np.uint8)
    steps = np.arange(1, len(loss) + 1)
    ends = np.array([row["step"] for row in epochs], float)
    loss_curves = [(steps, np.asarray(loss, float), BLUE)]
    if any("val_loss" in row for row in epochs):
        loss_curves.append((ends, np.array([row.get("val_loss", np.nan) for row in epochs]),
                            ORANGE))
    _panel(canvas, (40, 40, 380, 260), "loss", loss_curves)
    acc_curves = []
    if accuracy:
        acc_curves.append((ends, np.array([row.get("train_accuracy", np.nan) for row in epochs]),
                           BLUE))
        if any("val_accuracy" in row for row in epochs):
            acc_curves.append((ends, np.array([row.get("val_accuracy", np.nan)
                                               for row in epochs]), ORANGE))
    _panel(canvas, (440, 40, 780, 260), "accuracy", acc_curves)
    _text(canvas, 40, 284, "train", BLUE)
    _text(canvas, 100, 284, "validation", ORANGE)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(path, canvas)
    return str(path)
