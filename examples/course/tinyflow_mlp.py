"""A 784-100-10 ReLU network on MNIST, trained with Adam through the TensorFlow-1 graph API.

Written as one would for ``import tensorflow as tf``; symdl derives the gradients and generates
one numpy function for the training step, which also updates Adam's moments in place
(``sess.source(train_step)`` shows it).

Run: ``python examples/course/tinyflow_mlp.py [--data DIR] [--epochs 10] [--show-code]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import symdl.tf as tf
from symdl.tf import input_data

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mnist"


def train(mnist, epochs=10, batch_size=100, hidden=100, show_code=False):
    """Train the MLP; returns the test accuracy and the generated training code."""
    tf.reset_default_graph()
    tf.set_random_seed(0)
    x = tf.placeholder(tf.float32, [None, 784])
    y_ = tf.placeholder(tf.int64, [None])
    W1 = tf.Variable(tf.truncated_normal([784, hidden], stddev=0.05))
    b1 = tf.Variable(tf.zeros([hidden]))
    W2 = tf.Variable(tf.truncated_normal([hidden, 10], stddev=0.05))
    b2 = tf.Variable(tf.zeros([10]))
    h = tf.nn.relu(tf.matmul(x, W1) + b1)
    logits = tf.matmul(h, W2) + b2
    loss = tf.reduce_mean(
        tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y_, logits=logits))
    train_step = tf.train.AdamOptimizer(1e-3).minimize(loss)
    correct = tf.equal(tf.argmax(logits, 1), y_)
    accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        steps = epochs * mnist.train.num_examples // batch_size
        for step in range(steps):
            batch_xs, batch_ys = mnist.train.next_batch(batch_size)
            _, batch_loss = sess.run([train_step, loss], feed_dict={x: batch_xs, y_: batch_ys})
            if (step + 1) % (steps // epochs) == 0:
                print(f"epoch {(step + 1) * epochs // steps}: batch loss {batch_loss:.4f}")
        acc = sess.run(accuracy, feed_dict={x: mnist.test.images, y_: mnist.test.labels})
        code = sess.source([train_step, loss])
    if show_code:
        print(code)
    return float(acc), code


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Parse ``--data``, ``--epochs`` and ``--show-code``, train, print the test accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA) if DEFAULT_DATA.is_dir() else None,
                        help="directory with the four MNIST files (default: ../shared/data/mnist "
                        "or symdl's lookup order)")
    parser.add_argument("--epochs", type=int, default=10, help="passes over the training set")
    parser.add_argument("--show-code", action="store_true",
                        help="print the generated numpy module of the training step")
    args = parser.parse_args(argv)
    mnist = input_data.read_data_sets(args.data or None, one_hot=False)
    accuracy, code = train(mnist, args.epochs, show_code=args.show_code)
    print(f"test accuracy: {accuracy:.4f}  ({mnist.source})")
    return {"accuracy": accuracy, "code": code}


if __name__ == "__main__":
    main()
