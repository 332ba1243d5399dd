"""Softmax regression on MNIST in plain numpy, with the gradient derived by hand.

The course's first program: ``y = softmax(x W)``; the cross-entropy's gradient is
``W_grad = x.T (y - y_)``, and each step moves ``W`` by ``0.5 / 100`` of it (the mean over a
batch of 100 with learning rate 0.5). `tinyflow_softmax.py` is the same model written with the
graph API, where symdl derives this gradient; fed the same batches, the two end with the same
weights to float32 precision.

Run: ``python examples/course/numpy_softmax.py [--data DIR] [--steps 1000]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from symdl.tf import input_data

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def softmax(x):
    x = x - np.max(x, axis=1, keepdims=True)
    x = np.exp(x)
    x = x / np.sum(x, axis=1, keepdims=True)
    return x


def train(mnist, steps=1000):
    """Train W (784, 10) from zeros; returns W and the test accuracy."""
    learning_rate = 0.5 / 100
    W = np.zeros((784, 10), dtype=np.float32)
    for _ in range(steps):
        batch_xs, batch_ys = mnist.train.next_batch(100)
        # forward
        y = softmax(np.dot(batch_xs, W))
        # backward
        y_grad = y - batch_ys
        W_grad = np.dot(batch_xs.T, y_grad)
        # update
        W = W - learning_rate * W_grad
    # evaluate
    y = softmax(np.dot(mnist.test.images, W))
    correct_prediction = np.equal(np.argmax(y, 1), np.argmax(mnist.test.labels, 1))
    accuracy = np.mean(correct_prediction)
    return W, float(accuracy)


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Parse ``--data`` and ``--steps``, train, print the test accuracy, return the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                        help="directory with the four MNIST files (default: ../shared/data/mnist "
                        "or symdl's lookup order)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (batch 100)")
    args = parser.parse_args(argv)
    mnist = input_data.read_data_sets(args.data or None, one_hot=True)
    W, accuracy = train(mnist, args.steps)
    print(f"test accuracy: {accuracy:.4f}  ({mnist.source})")
    return {"W": W, "accuracy": accuracy}


if __name__ == "__main__":
    main()
