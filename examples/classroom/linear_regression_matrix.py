"""Least squares in matrix form: L = (1/N) ||X w - y||^2.

    symdl derive examples/classroom/linear_regression_matrix.py --wrt w -o derivation.html

Textbook result: grad_w = (2/N) X^T (X w - y).
"""

import symdl as sd

X = sd.placeholder("X", (None, 3), "float64")
y = sd.placeholder("y", (None,), "float64")
w = sd.parameter("w", (3,), "float64")

residual = (X @ w - y).named("r")
loss = sd.mean(sd.square(residual)).named("loss")
w_grad = sd.grad(loss, w)

name = "linreg_matrix"
functions = {"loss_and_grad": ([X, y, w], [loss, w_grad])}
WRT = [w]

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
