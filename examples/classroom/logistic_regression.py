"""Logistic regression: p = sigma(X w + b), L = mean of -[y log p + (1 - y) log(1 - p)].

The loss is written in its stable form, softplus(z) - y z (equal to the cross-entropy above).

    symdl derive examples/classroom/logistic_regression.py --wrt w b -o derivation.html

Textbook result: grad_w = X^T (sigma(X w + b) - y) / N, grad_b = sum(sigma(X w + b) - y) / N.
"""

import symdl as sd

X = sd.placeholder("X", (None, 4), "float64")
y = sd.placeholder("y", (None,), "float64")
w = sd.parameter("w", (4,), "float64")
b = sd.parameter("b", (), "float64")

z = (X @ w + b).named("z")
loss = sd.mean(sd.softplus(z) - y * z).named("loss")
w_grad, b_grad = sd.grad(loss, [w, b])

name = "logistic"
functions = {"loss_and_grads": ([X, y, w, b], [loss, w_grad, b_grad])}
WRT = [w, b]

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
