"""The curvature of softmax regression: its full Hessian as one generated numpy function.

MNIST's images average-pooled to 7 x 7, so the weights W are 49 x 10 and the Hessian of the
mean cross-entropy (plus a little L2) is 490 x 490. symdl builds it as forward mode over the
gradient with all 490 directions at once (`sd.hessian`), generates one vectorized function and
prints it; then the Hessian is checked against its Hessian-vector product (`sd.hvp`, reverse
over reverse), its eigenvalues say how the loss bends, and three Newton steps,
``W -= H^-1 grad``, are set against three gradient steps.

    python examples/curvature.py [--data DIR] [--images 2000] [--show-code]
"""

from __future__ import annotations

import argparse
import inspect

import numpy as np

import symdl as sd
from symdl.datasets import load_mnist, one_hot

L2 = 1e-3  # makes the Hessian positive definite: the loss alone is flat along some directions


def pooled(images: np.ndarray) -> np.ndarray:
    """28 x 28 images (or rows of 784 pixels) as rows of 49: the mean of each 4 x 4 block."""
    blocks = images.reshape(-1, 7, 4, 7, 4).mean(axis=(2, 4), dtype=np.float64)
    return blocks.reshape(-1, 49)


def build() -> dict:
    """The loss, its gradient, Hessian and Hessian-vector product with respect to W."""
    x = sd.placeholder("x", (None, 49), "float64")
    y = sd.placeholder("y", (None, 10), "float64")
    W = sd.parameter("W", (49, 10), "float64")
    b = sd.parameter("b", (10,), "float64")
    V = sd.placeholder("V", (49, 10), "float64")
    data_loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))
    loss = (data_loss + L2 / 2 * sd.sum(W * W)).named("loss")
    return {
        "loss_and_grad": ([x, y, W, b], [loss, sd.grad(loss, W)]),
        "hessian": ([x, y, W, b], sd.hessian(loss, W)),
        "hvp": ([x, y, W, b, V], sd.hvp(loss, W, V)),
    }


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the example; returns its figures (for the test that runs it)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="a directory with the four MNIST files")
    parser.add_argument("--images", type=int, default=2000, help="training images used")
    parser.add_argument("--show-code", action="store_true", help="print the whole module")
    args = parser.parse_args(argv)

    mnist = load_mnist(args.data, download=False, quiet=True)
    x = pooled(mnist.x_train[: args.images])
    y = one_hot(mnist.y_train[: args.images], 10, dtype="float64")
    module = sd.compile(build(), "curvature")
    print(inspect.getsource(module) if args.show_code else inspect.getsource(module.hessian))

    W, b = np.zeros((49, 10)), np.zeros(10)
    H = module.hessian(x, y, W, b).reshape(490, 490)
    V = np.random.default_rng(0).standard_normal((49, 10))
    hvp_gap = float(np.abs(H @ V.ravel() - module.hvp(x, y, W, b, V).ravel()).max())
    eigenvalues = np.linalg.eigvalsh(H)
    print(f"Hessian {H.shape}: symmetric to {np.abs(H - H.T).max():.1e}, H @ V equals the "
          f"HVP to {hvp_gap:.1e}")
    print(f"eigenvalues {eigenvalues[0]:.2e} .. {eigenvalues[-1]:.2e} (condition number "
          f"{eigenvalues[-1] / eigenvalues[0]:.0f}): gradient descent is only stable below a "
          f"step of 2 / {eigenvalues[-1]:.3f} = {2 / eigenvalues[-1]:.2f}")

    # The smallest eigenvalue is the L2 term's: along some directions the data loss is flat
    # (adding one vector to every class's column of W moves no probability).
    lr = 1 / eigenvalues[-1]
    newton, descent = W.copy(), W.copy()
    print(f"start: loss {float(module.loss_and_grad(x, y, W, b)[0]):.4f}")
    for step in range(1, 4):
        grad_n = module.loss_and_grad(x, y, newton, b)[1]
        newton -= np.linalg.solve(module.hessian(x, y, newton, b).reshape(490, 490),
                                  grad_n.ravel()).reshape(49, 10)
        descent -= lr * module.loss_and_grad(x, y, descent, b)[1]
        final_newton = float(module.loss_and_grad(x, y, newton, b)[0])
        final_descent = float(module.loss_and_grad(x, y, descent, b)[0])
        print(f"after step {step}: Newton {final_newton:.4f}, gradient descent (lr {lr:.2f}) "
              f"{final_descent:.4f}")
    return {"hvp_gap": hvp_gap, "smallest": float(eigenvalues[0]),
            "newton": final_newton, "descent": final_descent}


if __name__ == "__main__":
    main()
