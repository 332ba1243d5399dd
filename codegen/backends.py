"""Which backend prints a module's elementwise statements: numpy (default) or numba.

Kept apart from `codegen.numba_backend` (which imports sympy and the printer) so that
`codegen.compile` can check the choice on a warm start without loading the code generator.
"""

from __future__ import annotations

from symdl.errors import CodegenError, UsageError

BACKENDS = ("numpy", "numba")
INSTALL_HINT = "pip install 'symdl[numba]'"


def check_backend(backend: str) -> None:
    """Raise unless ``backend`` is one symdl prints and is usable here (numba importable).

    Raises:
        UsageError: for an unknown backend name.
        CodegenError: for ``"numba"`` when numba cannot be imported; it says how to install it.
    """
    if backend not in BACKENDS:
        raise UsageError(
            f"codegen: unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} "
            '(default "numpy")'
        )
    if backend == "numba":
        try:
            import numba  # noqa: F401 - the generated module imports it; fail here, clearly
        except ImportError as exc:
            raise CodegenError(
                'codegen: backend="numba" needs numba, which cannot be imported here '
                f"({exc}); install it with {INSTALL_HINT}, or use the default "
                'backend="numpy"'
            ) from exc
