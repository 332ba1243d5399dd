"""Dropout's cost: a generated MLP loss-and-gradients with dropout against the same by hand.

The model is 784-256-10 with ReLU and dropout (rate 0.5) on the hidden layer, batch 128, float32;
both candidates draw the mask from a generator of the same seed (``rng.random(shape,
dtype=np.float32) < 0.5``), and their results are checked equal before timing. Also timed: the
generated step without dropout, to show what the draw costs.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_dropout.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import symdl as sd  # noqa: E402
from benchmarks.common import interleave  # noqa: E402

BATCH, HIDDEN, RATE = 128, 256, 0.5


def _build(dropout: bool):  # noqa: ANN202 - the compiled module's function
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None,), "int64")
    W1, b1 = sd.parameter("W1", (784, HIDDEN)), sd.parameter("b1", (HIDDEN,))  # noqa: N806
    W2, b2 = sd.parameter("W2", (HIDDEN, 10)), sd.parameter("b2", (10,))  # noqa: N806
    rng = sd.rng("rng")
    h = sd.relu(x @ W1 + b1)
    if dropout:
        h = sd.dropout(h, RATE, rng)
    loss = sd.mean(sd.softmax_cross_entropy(h @ W2 + b2, y))
    inputs = [x, y, W1, b1, W2, b2, *([rng] if dropout else [])]
    module = sd.compile({"f": (inputs, [loss, *sd.grad(loss, [W1, b1, W2, b2])])},
                        "bench_dropout" if dropout else "bench_no_dropout",
                        cache_dir=tempfile.mkdtemp())
    return module.f


def by_hand(x, y, W1, b1, W2, b2, rng):  # noqa: ANN001, ANN201, N803
    """Loss and gradients of the same model, written as a careful person writes numpy."""
    n = x.shape[0]
    pre = x @ W1 + b1
    relu = np.maximum(pre, 0)
    mask = rng.random(relu.shape, dtype=np.float32) < 1 - RATE
    h = relu * mask * np.float32(1 / (1 - RATE))
    logits = h @ W2 + b2
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = (np.log(s)[:, 0] - z[np.arange(n), y]).mean()
    d_logits = e / s
    d_logits[np.arange(n), y] -= 1
    d_logits /= n
    d_h = d_logits @ W2.T
    d_pre = d_h * mask * np.float32(1 / (1 - RATE)) * (pre > 0)
    return loss, x.T @ d_pre, d_pre.sum(0), h.T @ d_logits, d_logits.sum(0)


def main() -> None:
    """Check the candidates agree, then time them interleaved and print medians and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    data = np.random.default_rng(0)
    x = data.random((BATCH, 784), dtype=np.float32)
    y = data.integers(0, 10, BATCH)
    params = [(0.05 * data.standard_normal(s)).astype(np.float32)
              for s in ((784, HIDDEN), (HIDDEN,), (HIDDEN, 10), (10,))]
    generated, plain = _build(True), _build(False)
    got = generated(x, y, *params, np.random.default_rng(1))
    want = by_hand(x, y, *params, np.random.default_rng(1))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=1e-6)
    rngs = {k: np.random.default_rng(2) for k in ("hand", "gen")}
    timings = interleave({
        "hand-written numpy, dropout": lambda: by_hand(x, y, *params, rngs["hand"]),
        "generated, dropout": lambda: generated(x, y, *params, rngs["gen"]),
        "generated, no dropout": lambda: plain(x, y, *params),
    }, repeats=args.repeats)
    for name, t in timings.items():
        ratio = "" if t.median_ratio is None else f"  ratio to hand-written {t.median_ratio:.3f}"
        print(f"{name:30s} {t.median_us:9.1f} us{ratio}")


if __name__ == "__main__":
    main()
