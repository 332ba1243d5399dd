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

The file runs with ``__name__ == "__symdl_model__"``, so code under
``if __name__ == "__main__":`` (a demo, a call to ``sys.exit``) does not run.
"""

from __future__ import annotations

import runpy
import traceback
from pathlib import Path
from typing import Any

from ..errors import SymdlError, UsageError


class ModelFileError(SymdlError, ValueError):
    """A model file that cannot be loaded or does not define what symdl needs."""


class MissingModelFileError(ModelFileError, UsageError):
    """The model file named on the command line does not exist (a usage error: exit 2)."""


def run_model_file(path: str | Path) -> dict[str, Any]:
    """Run a model file and return its globals.

    Raises:
        MissingModelFileError: if ``path`` is not a file.
        ModelFileError: if the file calls ``sys.exit`` (or raises `SystemExit`): it would end
            the calling program silently, so it is reported with the file, line and exit code.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingModelFileError(f"model file {path} does not exist")
    try:
        return runpy.run_path(str(path), run_name="__symdl_model__")
    except SystemExit as exc:
        line = model_line(exc, path)
        at = f" at line {line}" if line is not None else ""
        code = "sys.exit()" if exc.code is None else f"sys.exit({exc.code!r})"
        raise ModelFileError(
            f"model file {path} called {code}{at} while symdl ran it; a model file must only "
            "build expressions: put script code under `if __name__ == \"__main__\":`"
        ) from exc


def load_model_file(path: str | Path) -> dict[str, Any]:
    """Run a model file and return its globals (with ``functions`` checked to be present)."""
    path = Path(path)
    namespace = run_model_file(path)
    if "functions" not in namespace:
        raise ModelFileError(
            f"model file {path} must define `functions = {{name: (inputs, outputs)}}`; "
            "see `symdl generate --help`"
        )
    namespace.setdefault("name", path.stem)
    return namespace


def model_line(exc: BaseException, path: str | Path) -> int | None:
    """The line of the model file ``path`` that the traceback of ``exc`` passes last, if any.

    That line is where the user's own code went wrong, however deep in symdl the error was
    raised.
    """
    target = Path(path).resolve()
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == target:
            line = frame.lineno
    return line
