"""Modules symdl imports on first use, not at ``import symdl``.

sympy takes most of ``import symdl`` (about 0.4 of 0.55 s), yet a process that imports a
generated module from the cache, or trains with one, never computes with it: only generating,
deriving and fusing do. `defer` returns a stand-in for such a module: its first attribute
access imports the module (an ordinary ``import``, under the import system's lock, so threads
that touch it at once import it once) and every attribute it has handed out is kept on the
stand-in. ``sys.modules`` only ever holds the real module, so ``import sympy`` anywhere, in
symdl or in the user's code, behaves as it always does.

Not `importlib.util.LazyLoader`: before Python 3.12 its module is not thread-safe. Threads that
touch it at once see it half-run (CPython gh-114763; 7 of 8 threads failed on
``sympy.Symbol`` here).

symdl's modules that ``import symdl`` loads take sympy from here::

    if TYPE_CHECKING:
        import sympy
    else:
        from symdl.lazy_imports import sympy

(The code generator's passes import it plainly: they run only when a module is generated,
and need it.)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any


class _Deferred(types.ModuleType):
    """Stands for the module of its name until that is needed, then hands out its
    attributes (see the module docstring)."""

    def __getattr__(self, attr: str) -> Any:
        # Called only for what the stand-in does not hold yet: import the module (once, under
        # the import lock) and keep the attribute here, so the next access is a plain lookup.
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)
        return value


def defer(name: str) -> types.ModuleType:
    """The module ``name``, imported when first used (itself, if it is already imported).

    Raises:
        ModuleNotFoundError: ``name`` is not installed (Python's own error, at once).
    """
    if name in sys.modules:
        return sys.modules[name]
    if importlib.util.find_spec(name) is None:
        return importlib.import_module(name)  # raises, naming the module
    return _Deferred(name)


def is_loaded(name: str) -> bool:
    """True once ``name`` has been imported: eagerly, or through a stand-in and then used."""
    return name in sys.modules


sympy = defer("sympy")
