"""Linear regression on one example, in scalars: L = (w x + b - y)^2.

    python examples/classroom/linear_regression_scalar.py          # the derivation as text
    symdl derive examples/classroom/linear_regression_scalar.py --wrt w b -o derivation.html

Textbook result: dL/dw = 2 (w x + b - y) x and dL/db = 2 (w x + b - y).
"""

import symdl as sd

x = sd.placeholder("x", (), "float64")
y = sd.placeholder("y", (), "float64")
w = sd.parameter("w", (), "float64")
b = sd.parameter("b", (), "float64")

loss = sd.square(w * x + b - y).named("loss")
w_grad, b_grad = sd.grad(loss, [w, b])

name = "linreg_scalar"
functions = {"loss_and_grads": ([x, y, w, b], [loss, w_grad, b_grad])}
WRT = [w, b]

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
