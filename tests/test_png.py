"""symdl.png: PNGs without matplotlib (issue 15, item 10), read back by an independent decoder
written here from the PNG specification (chunks, CRCs, zlib, filter type 0)."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from symdl.png import BLUE, ORANGE, plot_curves, write_png


def read_png(path: Path) -> np.ndarray:
    """An 8-bit RGB, non-interlaced PNG as an (height, width, 3) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body), kind
        chunks.append((kind, body))
        pos += 12 + length
    assert [k for k, _ in chunks][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (depth, colour, interlace) == (8, 2, 0)
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == b"IDAT"))
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()  # filter type none on every row
    return rows[:, 1:].reshape(height, width, 3)


def test_write_png_round_trip(tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (7, 11, 3)).astype(np.uint8)
    write_png(tmp_path / "a.png", rgb)
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), rgb)
    with pytest.raises(ValueError, match="uint8"):
        write_png(tmp_path / "b.png", rgb.astype(np.float32))


def test_curves_follow_the_loss(tmp_path: Path) -> None:
    loss = list(np.linspace(2.0, 0.5, 50))  # falling: the blue curve goes down to the right
    epochs = [{"step": 25.0, "train_accuracy": 0.6, "val_accuracy": 0.55, "val_loss": 1.5},
              {"step": 50.0, "train_accuracy": 0.8, "val_accuracy": 0.7, "val_loss": 0.9}]
    path = plot_curves(tmp_path / "sub" / "curves.png", loss, epochs, accuracy=True)
    image = read_png(Path(path))
    assert image.shape == (300, 800, 3)
    blue = np.all(image == BLUE, axis=2)
    orange = np.all(image == ORANGE, axis=2)
    # loss panel (x < 400): blue ink high on the left, low on the right
    rows, cols = np.nonzero(blue[40:261, 40:381])
    left, right = rows[cols < 40].mean(), rows[cols > 300].mean()
    assert left < right - 100
    # both panels hold validation (orange) ink, the accuracy one rising
    assert orange[40:261, 40:381].any()
    rows, cols = np.nonzero(orange[40:261, 440:781])
    assert rows[cols < 40].mean() > rows[cols > 300].mean()
