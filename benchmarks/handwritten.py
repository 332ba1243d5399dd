"""Hand-written numpy training steps: the baselines the generated code is measured against.

Written as a careful person would for float32: a stable softmax (shift by the row max), the
cross-entropy taken from the log-sum-exp rather than from log(softmax), temporaries reused in
place where that saves a pass over memory, and in-place SGD updates (``W -= lr * W_grad``).
Each step returns the loss (the mean cross-entropy over the batch, before the update), like the
generated ``train_step``.

Assumption shared by every step: each row of the one-hot ``y`` sums to 1, so
``-sum(y * (z - lse)) = lse - sum(y * z)`` per row.
"""

from __future__ import annotations

import numpy as np


def _cross_entropy_and_delta(z: np.ndarray, y: np.ndarray) -> tuple[np.float32, np.ndarray]:
    """The mean cross-entropy of the logits ``z`` (shifted in place) against the one-hot ``y``,
    and its gradient with respect to ``z``, ``(softmax - y) / n``, in a new array."""
    n = z.shape[0]
    z -= z.max(axis=1, keepdims=True)  # stable: every exp <= 1
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = (np.log(s).sum() - np.vdot(y, z)) / np.float32(n)
    # d loss / d logits = (softmax - y) / n, built in e's buffer.
    e /= s
    e -= y
    e *= np.float32(1.0 / n)
    return loss, e


def softmax_step(x: np.ndarray, y: np.ndarray, W: np.ndarray, b: np.ndarray,
                 lr: np.float32) -> np.float32:
    """One SGD step of softmax regression: logits = x @ W + b, mean cross-entropy; updates W, b."""
    z = x @ W
    z += b
    loss, e = _cross_entropy_and_delta(z, y)
    W_grad = x.T @ e
    b_grad = e.sum(axis=0)
    W -= lr * W_grad
    b -= lr * b_grad
    return loss


def mlp_step(x: np.ndarray, y: np.ndarray, W1: np.ndarray, b1: np.ndarray, W2: np.ndarray,
             b2: np.ndarray, lr: np.float32) -> np.float32:
    """One SGD step of a one-hidden-layer ReLU MLP, softmax cross-entropy; updates all params."""
    h = x @ W1
    h += b1
    np.maximum(h, 0, out=h)  # ReLU in place: h > 0 exactly where the pre-activation was > 0
    z = h @ W2
    z += b2
    loss, e = _cross_entropy_and_delta(z, y)
    W2_grad = h.T @ e
    b2_grad = e.sum(axis=0)
    dh = e @ W2.T  # before W2 is updated
    dh *= h > 0
    W1_grad = x.T @ dh
    b1_grad = dh.sum(axis=0)
    W1 -= lr * W1_grad
    b1 -= lr * b1_grad
    W2 -= lr * W2_grad
    b2 -= lr * b2_grad
    return loss


def mlp_layers_step(x: np.ndarray, y: np.ndarray, *params_and_lr: np.ndarray) -> np.float32:
    """One SGD step of a ReLU MLP of any depth: ``W1, b1, W2, b2, ..., lr``; updates all params.

    The same careful numpy as `mlp_step` (ReLU in place, the mask from the activation, the
    gradient built in the softmax's buffer), one layer at a time from the top down.
    """
    *params, lr = params_and_lr
    weights, biases = params[0::2], params[1::2]
    activations = [x]
    for W, b in zip(weights[:-1], biases[:-1]):
        h = activations[-1] @ W
        h += b
        np.maximum(h, 0, out=h)
        activations.append(h)
    z = activations[-1] @ weights[-1]
    z += biases[-1]
    loss, delta = _cross_entropy_and_delta(z, y)
    for i in range(len(weights) - 1, -1, -1):
        W_grad = activations[i].T @ delta
        b_grad = delta.sum(axis=0)
        if i:
            below = delta @ weights[i].T  # before weights[i] is updated
            below *= activations[i] > 0
        weights[i] -= lr * W_grad
        biases[i] -= lr * b_grad
        if i:
            delta = below
    return loss


def mlp_layers_matmuls(weights: list[np.ndarray], activations: list[np.ndarray],
                       deltas: list[np.ndarray]) -> None:
    """Only the matrix products of an MLP step of any depth: ``activations[i]`` is layer i's
    input (the batch first), ``deltas[i]`` the gradient of its output."""
    for a, W in zip(activations, weights):
        a @ W
    for i, (a, d) in enumerate(zip(activations, deltas)):
        a.T @ d
        if i:
            d @ weights[i].T


def softmax_matmuls(x: np.ndarray, W: np.ndarray, g: np.ndarray) -> None:
    """Only the matrix products of a softmax-regression step: the floor for any implementation."""
    x @ W
    x.T @ g


def mlp_matmuls(x: np.ndarray, W1: np.ndarray, W2: np.ndarray, h: np.ndarray,
                g: np.ndarray, dh: np.ndarray) -> None:
    """Only the five matrix products of a 784-256-10 MLP step (forward two, backward three)."""
    x @ W1
    h @ W2
    h.T @ g
    g @ W2.T
    x.T @ dh
