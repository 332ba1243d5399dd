"""Loading a model file: a Python file that builds expressions and says what to generate.

A model file defines ``functions``: the same ``{name: (inputs, outputs)}`` dict that
`symdl.compile` takes (optionally ``(inputs, outputs, updates)``), and may define ``name`` (the
module name; default: the file's stem). Example ``logreg.py``::

    import symdl as sd
    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None, 10))
    W = sd.parameter("W", (784, 10))
    b = sd.parameter("b", (10,))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y)).named("loss")
    functions = {"loss_and_grads": ([x, y, W, b], [loss, *sd.grad(loss, [W, b])])}
"""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

from ..errors import SymdlError


class ModelFileError(SymdlError, ValueError):
    """A model file that cannot be loaded or does not define what symdl needs."""


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Run a model file and return its globals (with ``functions`` checked to be present)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file {path} does not exist")
    namespace = runpy.run_path(str(path), run_name="__symdl_model__")
    if "functions" not in namespace:
        raise ModelFileError(
            f"model file {path} must define `functions = {{name: (inputs, outputs)}}`; "
            "see `symdl generate --help`"
        )
    namespace.setdefault("name", path.stem)
    return namespace
