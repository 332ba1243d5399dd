"""Typed errors raised by symdl.

Every error names what went wrong (the op, the shapes, the user's names) and says what to do.
They subclass the built-in exception a caller would naturally catch (`ValueError`, `TypeError`,
`OSError`), so code that does not know symdl still handles them sensibly.
"""

from __future__ import annotations


class SymdlError(Exception):
    """Base class of every error symdl raises on purpose."""


class ShapeError(SymdlError, ValueError):
    """Shapes that do not fit an op: names the op and the shapes involved."""


class DTypeError(SymdlError, TypeError):
    """An unknown dtype, or dtypes an op cannot combine."""


class InvalidNameError(SymdlError, ValueError):
    """An invalid or duplicate name for a leaf or a generated function."""


class GradientError(SymdlError, ValueError):
    """A gradient that cannot be taken: non-scalar target, `wrt` not a leaf, a disconnected leaf."""


class NoDerivativeError(GradientError):
    """An op on the path from the target to a `wrt` leaf has no derivative rule."""


class ConstantError(SymdlError, ValueError):
    """A constant that cannot be used: NaN or inf (unless allowed), object arrays, strings."""


class ElementwiseBodyError(SymdlError, ValueError):
    """A sympy body `symdl.elementwise` cannot compute: unevaluated calculus (a `Derivative`,
    `Integral`, `Sum`, ...), which has no numpy form; the message names the function."""


class CodegenError(SymdlError, ValueError):
    """The code generator was given something it cannot print."""


class OpDefinitionError(SymdlError, TypeError):
    """An op class that leaves out a fact its category needs (`symdl.ops.base.missing_facts`)."""


class DatasetError(SymdlError, OSError):
    """A data file that is missing, truncated or corrupt: names the file."""


class UsageError(SymdlError, ValueError):
    """A command-line argument that cannot be used: a missing file, an unknown ``--wrt`` name.

    The ``symdl`` command exits with status 2 for it (as argparse does for a malformed command
    line), and 1 for an error in the model itself.
    """


class CacheError(SymdlError, OSError):
    """Neither the module cache directory nor the private fallback could hold a module: names
    the directory, the file and why (a full disk, no permission)."""


class CheckpointError(SymdlError, ValueError):
    """A checkpoint that cannot be read (names the file and what is wrong with it), or that
    belongs to another run than the one resuming from it (lists the differences)."""


class CacheWarning(UserWarning):
    """The module cache directory is unusable or unsafe (full, unwritable, writable by other
    users, owned by another user); symdl fell back to a private one."""

__all__ = [
    "CacheError",
    "CacheWarning",
    "CheckpointError",
    "CodegenError",
    "ConstantError",
    "DTypeError",
    "DatasetError",
    "ElementwiseBodyError",
    "GradientError",
    "InvalidNameError",
    "NoDerivativeError",
    "OpDefinitionError",
    "ShapeError",
    "SymdlError",
    "UsageError",
]
