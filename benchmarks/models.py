"""The benchmarked models written in symdl: one SGD training step each, as codegen ``functions``.

Each builder returns ``{"train_step": (inputs, loss, updates)}``: the generated
``train_step(x, y, *params, lr)`` returns the mean cross-entropy and writes ``p - lr * p_grad``
into every parameter array in place.
"""

from __future__ import annotations

import symdl as sd


def softmax_regression() -> dict[str, tuple]:
    """Softmax regression 784 -> 10 on one-hot labels."""
    return mlp(depth=1)


def mlp(depth: int, width: int = 256, n_in: int = 784, n_out: int = 10) -> dict[str, tuple]:
    """A ReLU MLP with ``depth`` weight layers (``depth - 1`` hidden layers of ``width`` units).

    ``depth=1`` is softmax regression, ``depth=2`` the 784-256-10 MLP.
    """
    if depth < 1:
        raise ValueError(f"mlp(): depth must be >= 1, got {depth}")
    return mlp_sizes((n_in, *[width] * (depth - 1), n_out))


def mlp_sizes(sizes: tuple[int, ...]) -> dict[str, tuple]:
    """A ReLU MLP with the layer sizes given, inputs first: ``(784, 512, 256, 10)``.

    Two sizes are softmax regression (parameters ``W``, ``b``), more an MLP (``W1``, ``b1``, ...).
    """
    if len(sizes) < 2:
        raise ValueError(f"mlp_sizes(): give at least the input and output sizes, got {sizes}")
    depth = len(sizes) - 1
    n_in, n_out = sizes[0], sizes[-1]
    x = sd.placeholder("x", (None, n_in))
    y = sd.placeholder("y", (None, n_out))
    lr = sd.placeholder("lr", ())
    params = []
    h = x
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        suffix = "" if depth == 1 else str(i)
        W = sd.parameter(f"W{suffix}", (fan_in, fan_out))
        b = sd.parameter(f"b{suffix}", (fan_out,))
        params += [W, b]
        pre = (h @ W + b).named("logits" if i == depth else f"h{i}_pre")
        h = pre if i == depth else sd.relu(pre).named(f"h{i}")
    loss = sd.mean(sd.softmax_cross_entropy(h, y)).named("loss")
    grads = sd.grad(loss, params)
    updates = {p: p - lr * g for p, g in zip(params, grads)}
    return {"train_step": ([x, y, *params, lr], loss, updates)}
