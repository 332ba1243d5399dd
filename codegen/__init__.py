"""The code generator: symdl expressions to a plain numpy Python module.

`generate` returns the module's source; `compile` also writes it to the content-addressed cache
and imports it. The generated module imports numpy only.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from symdl.errors import InvalidNameError

from .backends import check_backend
from .cache import input_key, load_indexed, load_module, usable_cache_dir, write_index
from .names import safe_identifier
from .spec import Functions

if TYPE_CHECKING:
    from .module import ModuleParts


def _module_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"codegen: the module name must be a non-empty string, got {name!r}")
    return safe_identifier(name)


def assemble(functions: Functions, name: str, **options: Any) -> ModuleParts:
    """`codegen.module.assemble`, imported on first use: a warm start never loads the passes,
    the printer or the writer."""
    from .module import assemble as run_passes

    return run_passes(functions, name, **options)


def generate(functions: Functions, name: str = "model", *, simplify: bool = True,
             fast_math: bool = False, check: bool = True, backend: str = "numpy") -> str:
    """Source of a numpy module defining one function per entry of ``functions``.

    ``functions`` maps a function name to ``(inputs, outputs)``: a list of placeholders and
    parameters (the function's arguments, in order) and a list of expressions (returned as a
    tuple in order), or one expression (returned bare). ``simplify=False`` prints the raw
    derivative without rewrites.

    By default the module computes what numpy computes for the expressions as written, inf,
    NaN and -0.0 included; only zeros that differentiation introduced are folded away.
    ``fast_math=True`` also folds what the user wrote as if every value were finite and zeros
    unsigned (``x * 0 -> 0``, ``x - x -> 0``, ``x + 0 -> x``, sympy's cancellations).

    ``check=False`` leaves out the entry checks of every function (for a caller that calls
    it in a hot loop with arguments it knows are right); the module's docstring says so.

    ``backend="numba"`` prints each fused elementwise statement as a small
    ``@numba.njit(cache=True)`` loop kernel in the module (`codegen.numba_backend`); GEMMs and
    the rest stay numpy. It needs numba (``pip install 'symdl[numba]'``).
    """
    check_backend(backend)
    return assemble(functions, _module_name(name), simplify=simplify,
                    fast_math=fast_math, check=check, backend=backend).source


def compile(  # noqa: A001 - the verb users expect
    functions: Functions,
    name: str = "model",
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    simplify: bool = True,
    report: bool = False,
    fast_math: bool = False,
    check: bool = True,
    backend: str = "numpy",
) -> ModuleType:
    """Generate a module, write it to the cache (``cache_dir``, ``$SYMDL_CACHE`` or
    ``~/.cache/symdl``) under a name derived from its content hash, and import it from the file.

    ``report=True`` prints to stderr what each pass bought (operations and lines per stage,
    rewrites fired, fusion), as ``symdl generate --report`` does. ``fast_math`` is as in
    `generate`: off, the module computes what numpy does for inf, NaN and -0.0. ``check=False``
    generates functions without entry checks (wrong dtypes or shapes are then numpy's errors, or
    none); the default checks every argument on entry. ``backend="numba"`` compiles the fused
    elementwise statements with numba, as in `generate`; its kernels are compiled on first call
    and cached beside the module, so a later process compiles nothing.

    A cache directory that cannot be written, that another user owns or may write to, or
    whose files keep changing while they are imported is replaced by a private temporary one,
    with a `CacheWarning` saying why.

    Raises:
        CacheError: when no directory can hold the module (a full disk); it names the
            directories, the file and the reason.
        CodegenError: for ``backend="numba"`` without numba installed.

    Example::

        mod = sd.compile({"loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad])}, "logreg")
        loss, W_grad, b_grad = mod.loss_and_grads(x_val, y_val, W_val, b_val)
    """
    module_name = _module_name(name)
    check_backend(backend)
    if report:
        from .report import report as make_report

        print(make_report(functions, module_name, fast_math=fast_math).format(), file=sys.stderr)
    # A warm start: the key comes from the graphs and options alone (one linear pass), so a
    # module an earlier process generated is imported without running any pass.
    options = f"simplify={simplify} fast_math={fast_math} check={check} external_arrays=True"
    if backend != "numpy":
        options += f" backend={backend}"
    key = input_key(functions, module_name, options)
    directory = usable_cache_dir(cache_dir)
    if key is not None:
        module = load_indexed(module_name, key, directory)
        if module is not None:
            return module
    parts = assemble(functions, module_name, simplify=simplify, external_arrays=True,
                     fast_math=fast_math, check=check, backend=backend)
    module = load_module(parts.source, module_name, parts.arrays, directory)
    # The .npy files beside the module that it loads (what a Dask worker is sent with it).
    module.__symdl_constants__ = sorted(parts.arrays)  # type: ignore[attr-defined]
    if key is not None:
        write_index(module, module_name, key, sorted(parts.arrays))
    return module


__all__ = ["compile", "generate"]
