"""Softmax regression on MNIST, written with symdl (the course's first program).

W and b start at zero; 784 -> 10 softmax; mean cross-entropy; SGD with learning rate 0.5 for
1000 steps of batch 100. symdl derives the gradient, generates a numpy module, imports it, and
the loop below calls it. Run offline on the shipped subset, or on the full set with --data.

    python examples/softmax_regression.py [--data DIR] [--steps 1000] [--show-code]
"""

from __future__ import annotations

import argparse
import inspect
import time

import numpy as np

import symdl as sd
from symdl.datasets import load_mnist, one_hot


def build_model() -> dict:
    """The symbolic model: one generated function for the training step, one for predictions."""
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None, 10))
    W = sd.parameter("W", (784, 10))
    b = sd.parameter("b", (10,))
    lr = sd.placeholder("lr", ())

    logits = (x @ W + b).named("logits")
    loss = sd.mean(-sd.sum(y * sd.log(sd.softmax(logits)), axis=1)).named("loss")
    W_grad, b_grad = sd.grad(loss, [W, b])
    predictions = sd.argmax(logits, axis=1).named("predictions")
    return {
        "train_step": ([x, y, W, b, lr], loss, {W: W - lr * W_grad, b: b - lr * b_grad}),
        "predict": ([x, W, b], predictions),
    }


def train(data_dir: str | None = None, steps: int = 1000, batch: int = 100, lr: float = 0.5,
          seed: int = 0, show_code: bool = False) -> float:
    """Train and return the test accuracy."""
    mnist = load_mnist(data_dir)
    module = sd.compile(build_model(), name="softmax_regression")
    if show_code:
        print(inspect.getsource(module))
    print(f"generated module: {module.__file__}")

    W = np.zeros((784, 10), dtype=np.float32)
    b = np.zeros(10, dtype=np.float32)
    targets = one_hot(mnist.y_train, 10)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for step in range(steps):
        idx = rng.integers(0, len(mnist.x_train), batch)
        loss = module.train_step(mnist.x_train[idx], targets[idx], W, b, lr)
        if step % 200 == 0 or step == steps - 1:
            print(f"step {step:4d}  loss {float(loss):.4f}")
    elapsed = time.perf_counter() - start
    accuracy = float(np.mean(module.predict(mnist.x_test, W, b) == mnist.y_test))
    print(f"test accuracy {accuracy:.4f} ({mnist.source}; {steps} steps in {elapsed:.2f} s)")
    return accuracy


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="MNIST IDX directory (default: the shipped subset)")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--show-code", action="store_true", help="print the generated module")
    args = parser.parse_args(argv)
    return train(args.data, steps=args.steps, show_code=args.show_code)


if __name__ == "__main__":
    main()
