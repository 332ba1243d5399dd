"""symdl: symbolic tensor expressions, gradients by source transformation, readable numpy code.

Write a model as expressions, take gradients with `grad`, and turn them into a plain numpy
module with `compile` (or its source with `generate`)::

    import symdl as sd
    x = sd.placeholder("x", (None, 784))
    W = sd.parameter("W", (784, 10))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W, sd.placeholder("y", (None, 10))))
    mod = sd.compile({"loss_and_grad": ([x, y, W], [loss, sd.grad(loss, W)])}, name="logreg")
"""

from . import errors, init, layers, optim
from .autodiff import adjoints, grad, hvp, jvp
from .derive import derive
from .dot import to_dot
from .ir import Expr
from .ops.api import *  # noqa: F403 - the op constructors are the language's public surface
from .ops.api import __all__ as _op_names
from .printing import show
from .train import fit

__version__ = "0.1.0"


def generate(*args, **kwargs):  # type: ignore[no-untyped-def]
    """Generate a numpy module's source; see `codegen.generate`."""
    from codegen import generate as _generate

    return _generate(*args, **kwargs)


def compile(*args, **kwargs):  # type: ignore[no-untyped-def]  # noqa: A001
    """Generate, cache and import a numpy module; see `codegen.compile`."""
    from codegen import compile as _compile

    return _compile(*args, **kwargs)


__all__ = [
    *_op_names, "Expr", "adjoints", "compile", "errors", "generate", "grad", "hvp", "jvp", "show",
    "fit", "init", "layers", "optim",
    "derive", "to_dot",
]
