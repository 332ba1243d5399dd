"""symdl: symbolic tensor expressions, gradients by source transformation, readable numpy code.

Write a model as expressions, take gradients with `grad`, and turn them into a plain numpy
module with `compile` (or its source with `generate`)::

    import symdl as sd
    x, y = sd.placeholder("x", (None, 784)), sd.placeholder("y", (None, 10))
    W = sd.parameter("W", (784, 10))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W, y))
    mod = sd.compile({"loss_and_grad": ([x, y, W], [loss, sd.grad(loss, W)])}, name="logreg")

The layers, from the bottom: the core (`ir`, `ops`, `autodiff`, `simplify`, `provenance`) imports
neither the code generator nor the applications; `codegen` imports the core only; the
applications (`derive`, `tf`, `optim`, `train`, `commands`) sit on top. `tests/test_layers.py`
checks these directions.
"""

from . import errors, init, layers, optim, random
from ._version import __version__
from .autodiff import adjoints, grad, hvp, jvp
from .derive import derive
from .dot import to_dot
from .forward import hessian, jacobian  # full Jacobians and Hessians (issue 17)
from .ir import Expr
from .ops.api import *  # noqa: F403 - the op constructors are the language's public surface
from .ops.api import __all__ as _op_names
from .printing import show


def __getattr__(name: str) -> object:
    # `compile` and `generate` are the code generator's own functions, with their real
    # signatures and docstrings; resolved on first use because codegen imports the core
    # modules (and so this package) itself.
    if name in ("compile", "generate"):
        import codegen

        return getattr(codegen, name)
    # Training (`fit`, checkpoints: zipfile, json) and data-parallel training (issue 16) are
    # loaded on first use: a process that only generates or imports a module never needs them.
    if name == "fit":
        from .train import fit

        return fit
    if name == "distributed":
        import importlib

        return importlib.import_module(".distributed", __name__)
    raise AttributeError(f"module 'symdl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [  # noqa: F405 - compile and generate come from __getattr__
    *_op_names, "Expr", "__version__", "adjoints", "compile", "errors", "generate", "grad", "hvp",
    "jvp", "show",
    "fit", "init", "layers", "optim",
    "derive", "to_dot",
    "random",
    "distributed",
    "hessian", "jacobian",
]
