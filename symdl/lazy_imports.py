"""Modules symdl imports on first use, not at ``import symdl``.

sympy takes most of ``import symdl`` (about 0.4 of 0.55 s), yet a process that imports a
generated module from the cache, or trains with one, never computes with it: only generating,
deriving and fusing do. `defer` registers such a module with the standard library's
`importlib.util.LazyLoader`: the module object exists at once (in ``sys.modules``, so sympy's
own imports find it) and runs on its first attribute access, after which it is the ordinary
module. A module already imported is returned as it is.

symdl's modules that ``import symdl`` loads take sympy from here::

    if TYPE_CHECKING:
        import sympy
    else:
        from symdl.lazy_imports import sympy

not with ``import sympy``, which reads the module's ``__spec__`` and so runs it. (The code
generator's passes import it plainly: they run only when a module is generated, and need it.)
"""

from __future__ import annotations

import importlib.util
import sys
import types

_deferred: dict[str, type[types.ModuleType]] = {}  # name -> the class of its module until it runs


def defer(name: str) -> types.ModuleType:
    """The module ``name``, to run when first used (at once if it is already imported)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        return importlib.import_module(name)  # not installed: Python's own error, now
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    _deferred[name] = type(module)  # `type`, not `.__class__`: an attribute access would run it
    return module


def is_loaded(name: str) -> bool:
    """True once ``name`` has run: imported eagerly, or deferred and then used."""
    module = sys.modules.get(name)
    return module is not None and type(module) is not _deferred.get(name)


sympy = defer("sympy")
