"""Softmax regression for MNIST as a model file for `symdl generate`.

    symdl generate examples/models/logreg.py -o logreg_gen.py

The loss is written as in the course material; symdl computes it stably and differentiates it
to the textbook form ``logits_bar = (softmax(logits) - y) / N``, ``W_grad = x.T @ logits_bar``.
"""

import symdl as sd

x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None, 10))
W = sd.parameter("W", (784, 10))
b = sd.parameter("b", (10,))
lr = sd.placeholder("lr", ())

logits = (x @ W + b).named("logits")
loss = sd.mean(-sd.sum(y * sd.log(sd.softmax(logits)), axis=1)).named("loss")
W_grad, b_grad = sd.grad(loss, [W, b])

name = "logreg"
functions = {
    "loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad]),
    "train_step": ([x, y, W, b, lr], loss, {W: W - lr * W_grad, b: b - lr * b_grad}),
    "predict": ([x, W, b], sd.argmax(logits, axis=1).named("predictions")),
}
