"""A function defined from a sympy expression: softplus(z) = log(1 + e^z), derivative by sympy.

    symdl derive examples/classroom/softplus_sympy.py --wrt w -o derivation.html

sympy differentiates the body: d softplus / dz = e^z / (e^z + 1) = sigma(z), so for
L = sum_n softplus(w x_n) the gradient is dL/dw = sum_n sigma(w x_n) x_n.
"""

import sympy

import symdl as sd

softplus = sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus")

x = sd.placeholder("x", (None,), "float64")
w = sd.parameter("w", (), "float64")

loss = sd.sum(softplus(w * x)).named("loss")
w_grad = sd.grad(loss, w)

name = "softplus_sympy"
functions = {"loss_and_grad": ([x, w], [loss, w_grad])}
WRT = [w]

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
