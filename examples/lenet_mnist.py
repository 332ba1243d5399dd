"""A LeNet-5-like convolutional net trained with Adam on MNIST.

conv 5x5x6 (SAME) + ReLU, 2x2 max-pool, conv 5x5x16 + ReLU, 2x2 max-pool, dense 120 + ReLU,
dense 10, with dropout (rate 0.5) on the 120 units while training. The whole training step
(forward, both convolution gradients, the max-pool routing, the Adam update) is one generated
numpy function; the loop around it is `symdl.fit`, called once per epoch so that each epoch's
time is printed.

    python examples/lenet_mnist.py [--data DIR] [--epochs 3] [--batch-size 64]

Without ``--data`` (or ``$SYMDL_DATA``) symdl's lookup order applies, down to the MNIST subset
shipped with symdl.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import symdl as sd
from symdl.datasets import load_mnist
from symdl.train import History


def build(dropout: float | None = 0.5) -> tuple[list[sd.Expr], sd.Expr, dict, dict, dict]:
    """Inputs, loss, ``{parameter: initializer}``, metrics and settings of the net (NHWC, HWIO).

    With a ``dropout`` rate the dense layer's units are dropped while training: the rate is a
    placeholder that `settings` feeds ``dropout`` in training and 0 in evaluation, and the step
    takes a numpy Generator (`sd.fit` seeds it). ``None`` builds the net without dropout.
    """
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None,), dtype="int64")
    image = sd.reshape(x, (None, 28, 28, 1)).named("image")
    h, p1 = sd.layers.conv2d(image, 6, 5, name="conv1", padding="SAME", activation=sd.relu)
    h = sd.layers.max_pool2d(h, 2).named("pool1")  # (N, 14, 14, 6)
    h, p2 = sd.layers.conv2d(h, 16, 5, name="conv2", activation=sd.relu)
    h = sd.layers.max_pool2d(h, 2).named("pool2")  # (N, 5, 5, 16)
    h, p3 = sd.layers.dense(sd.layers.flatten(h), 120, name="dense1", activation=sd.relu,
                            weight_init=sd.init.he_normal)
    settings = {}
    if dropout is not None:
        rate = sd.placeholder("rate", ())
        h = sd.dropout(h, rate, sd.rng("rng")).named("dense1_dropped")
        settings = {rate: (dropout, 0.0)}
    logits, p4 = sd.layers.dense(h, 10, name="logits")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), "float32")).named("accuracy")
    return [x, y], loss, {**p1, **p2, **p3, **p4}, {"accuracy": acc}, settings


def train(data_dir: str | Path | None = None, *, epochs: int = 3, batch_size: int = 64,
          lr: float = 1e-3, seed: int = 0, cache_dir: str | Path | None = None,
          quiet: bool = False, limit: int | None = None) -> History:
    """Train on MNIST from ``data_dir`` (or symdl's lookup order); return the last history.

    The returned history's ``epochs`` lists every epoch, each with its ``seconds``; ``limit``
    keeps the first ``limit`` training images (for quick runs).
    """
    data = load_mnist(data_dir, quiet=quiet)
    x_train, y_train = data.x_train[:limit], data.y_train[:limit]
    inputs, loss, params, metrics, settings = build()
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(lr), inputs, metrics,
                                       name="lenet_mnist", cache_dir=cache_dir, settings=settings)
    values = sd.init.initialize(params, seed=seed)
    state = None
    rows: list[dict[str, float]] = []
    history = History()
    for epoch in range(epochs):
        start = time.perf_counter()
        history = sd.fit(step, values, (x_train, y_train), epochs=1, batch_size=batch_size,
                         seed=seed + epoch, state=state, validation=(data.x_test, data.y_test),
                         quiet=True)
        seconds = time.perf_counter() - start
        state = history.state
        row = {**history.epochs[-1], "epoch": epoch + 1, "seconds": seconds}
        rows.append(row)
        if not quiet:
            print(f"epoch {epoch + 1}: loss {row['train_loss']:.4f}, test accuracy "
                  f"{row['val_accuracy']:.4f}, {seconds:.1f} s", flush=True)
    history.epochs = rows
    return history


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: train and print the test accuracy and the time per epoch."""
    parser = argparse.ArgumentParser(description="LeNet-5-like convolutional net on MNIST")
    parser.add_argument("--data", type=Path, default=None, help="directory with the MNIST files")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="use the first LIMIT images")
    args = parser.parse_args(argv)
    history = train(args.data, epochs=args.epochs, batch_size=args.batch_size, limit=args.limit)
    seconds = [row["seconds"] for row in history.epochs]
    print(f"test accuracy {history.last('val_accuracy'):.4f}")
    print(f"time per epoch {sum(seconds) / len(seconds):.1f} s (training and test evaluation)")
    print(f"generated module: {history.module}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
