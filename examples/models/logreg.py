"""Softmax regression for MNIST as a model file for `symdl generate`."""

import symdl as sd

x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None, 10))
W = sd.parameter("W", (784, 10))
b = sd.parameter("b", (10,))

logits = (x @ W + b).named("logits")
loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
W_grad, b_grad = sd.grad(loss, [W, b])

name = "logreg"
functions = {"loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad])}
