"""Softmax regression (MNIST shapes): L = -(1/N) sum_n sum_j y_nj log softmax(x W + b)_nj.

    symdl derive examples/classroom/softmax_regression.py --wrt W b -o derivation.html

Textbook result: logits_bar = (softmax(logits) - y) / N, W_grad = x^T logits_bar,
b_grad = 1^T logits_bar.
"""

import symdl as sd

x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None, 10))
W = sd.parameter("W", (784, 10))
b = sd.parameter("b", (10,))

logits = (x @ W + b).named("logits")
loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
W_grad, b_grad = sd.grad(loss, [W, b])

name = "softmax_regression"
functions = {"loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad])}
WRT = [W, b]

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
