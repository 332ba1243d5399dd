"""Softmax regression on MNIST with the TensorFlow-1 graph API, run by symdl.

The course's second program, unchanged except for its import lines (``import tensorflow as tf``
and ``from tensorflow.examples.tutorials.mnist import input_data``): symdl derives ``W_grad``
from the graph, and ``sess.source(train_step)`` prints the numpy code the step became, which
reads like the hand-written `numpy_softmax.py`.

Run: ``python examples/course/tinyflow_softmax.py [--data DIR] [--steps 1000] [--show-code]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import symdl.tf as tf
from symdl.tf import input_data

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def train(mnist, steps=1000, show_code=False):
    """The course's program; returns W, the test accuracy and the generated training code."""
    tf.reset_default_graph()
    learning_rate = 0.5
    # Create the model
    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    y = tf.nn.softmax(tf.matmul(x, W))
    # Define loss and optimizer
    y_ = tf.placeholder(tf.float32, [None, 10])
    cross_entropy = tf.reduce_mean(-tf.reduce_sum(y_ * tf.log(y), reduction_indices=[1]))
    W_grad = tf.gradients(cross_entropy, [W])[0]
    train_step = tf.assign(W, W - learning_rate * W_grad)
    # Training loop
    sess = tf.Session()
    sess.run(tf.initialize_all_variables())
    for _ in range(steps):
        batch_xs, batch_ys = mnist.train.next_batch(100)
        sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
    # Eval
    correct_prediction = tf.equal(tf.argmax(y, 1), tf.argmax(y_, 1))
    accuracy = tf.reduce_mean(tf.cast(correct_prediction, tf.float32))
    acc = sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels})
    code = sess.source(train_step)
    if show_code:
        print(code)
    return sess.run(W), float(acc), code


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Parse ``--data``, ``--steps`` and ``--show-code``, train, print the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                        help="directory with the four MNIST files (default: ../shared/data/mnist "
                        "or symdl's lookup order)")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (batch 100)")
    parser.add_argument("--show-code", action="store_true",
                        help="print the generated numpy module of the training step")
    args = parser.parse_args(argv)
    mnist = input_data.read_data_sets(args.data or None, one_hot=True)
    W, accuracy, code = train(mnist, args.steps, args.show_code)
    print(f"test accuracy: {accuracy:.4f}  ({mnist.source})")
    return {"W": W, "accuracy": accuracy, "code": code}


if __name__ == "__main__":
    main()
