"""Read the generated gradient of a layer with a sympy-defined activation, and the report.

The activation is swish, ``z * sigmoid(z)`` written as a sympy expression; sympy derives its
derivative, fusion puts the chain rule's elementwise ops into one statement, and `sympy.cse`
computes the exponential once. The report shows what each pass bought.

    python examples/read_the_gradient.py
"""

from __future__ import annotations

import sympy

import symdl as sd
from codegen.report import report

swish = sd.elementwise(lambda z: z / (1 + sympy.exp(-z)), name="swish")

x = sd.placeholder("x", (None, 20))
y = sd.placeholder("y", (None, 3))
W, b = sd.parameter("W", (20, 3)), sd.parameter("b", (3,))
z = (x @ W + b).named("z")
loss = sd.mean(sd.sum((swish(z) - y) ** 2, axis=1)).named("loss")
functions = {"loss_and_grads": ([x, y, W, b], [loss, *sd.grad(loss, [W, b])])}

source = sd.generate(functions, "swish_regression")
body = source.split("def loss_and_grads", 1)[1].split("\n\n\ndef ", 1)[0]
print("def loss_and_grads" + body)
print(report(functions, "swish_regression").format())
