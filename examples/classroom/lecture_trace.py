"""The lecture example y = ln x1 + x1 x2 - sin x2, with its evaluation trace at (2, 5).

    python examples/classroom/lecture_trace.py

Forward: v_{-1} = x1 = 2, v_0 = x2 = 5, v1 = ln v_{-1}, v2 = v_{-1} v_0, v3 = sin v_0,
v4 = v1 + v2, v5 = v4 - v3 = 11.652. Reverse: dy/dx1 = 1/x1 + x2 = 5.5,
dy/dx2 = x1 - cos x2 = 2 - cos 5 = 1.716.
"""

import symdl as sd
from symdl.derive import trace

x1 = sd.placeholder("x1", (), "float64")
x2 = sd.placeholder("x2", (), "float64")

loss = (sd.log(x1) + x1 * x2 - sd.sin(x2)).named("y")
grads = sd.grad(loss, [x1, x2])

name = "lecture"
functions = {"y_and_grads": ([x1, x2], [loss, *grads])}
WRT = [x1, x2]
POINT = {x1: 2.0, x2: 5.0}

if __name__ == "__main__":
    print(sd.derive(loss, WRT))
    print(trace(loss, WRT, POINT).to_text())
