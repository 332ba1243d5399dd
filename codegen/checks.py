"""Entry checks: every generated function checks its arguments before it reads or writes one.

Each argument is one call of a helper the module defines (`HELPER_SOURCE`): its type, dtype,
rank and sizes, a symbolic size bound by the first argument that has it and checked on the
others (``N=N``), and for an argument updated in place, that it is a writable array. All of it
runs on entry, before the first write, so that a step applies all its updates or none, and the
`ValueError` names the function, the argument, the expected and the received shape and dtype.
"""

from __future__ import annotations

import ast

from symdl.ir import Expr

from .spec import FunctionSpec

# The helpers every generated module defines after its functions. Their leading `_` keeps them
# out of reach of user names (`safe_identifier` strips it; function names may not start with it).
HELPER = "_check_argument"
UPDATED = "_check_updated"
FULL = "_check_argument_fully"
ERROR = "_argument_error"
HELPERS = (HELPER, UPDATED, FULL, ERROR)


def entry_checks(
    spec: FunctionSpec, names: dict[Expr, str]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """One helper call per argument (type, dtype, rank, sizes), then its new size names.

    An argument updated in place is checked by `UPDATED`, which also wants a writable array.
    A size name is read off the first argument that has it (``N = x.shape[0]``, safe once
    that argument's rank is checked) and passed to the checks of the later ones (``N=N``).
    A float scalar may come as a Python number: its line assigns what the helper returns,
    the number converted to the declared dtype. Returns the lines (indented), the names bound
    to sizes, and the line reading each size (so that an unused one can be dropped).
    """
    lines: list[str] = []
    bound: dict[str, str] = {}
    reads: dict[str, str] = {}
    for x in spec.inputs:
        arg = names[x]
        sizes = [d for d in dict.fromkeys(x.shape) if isinstance(d, str) and d in bound]
        call_args = [repr(spec.name), repr(x.name), arg, repr(x.dtype), repr(x.shape)]
        call_args += [f"{d}={bound[d]}" for d in sizes]
        updated = x in spec.updates
        call = f"{UPDATED if updated else HELPER}({', '.join(call_args)})"
        converts = x.ndim == 0 and x.dtype in ("float32", "float64") and not updated
        lines.append(f"    {arg} = {call}" if converts else f"    {call}")
        for i, d in enumerate(x.shape):
            if isinstance(d, str) and d not in bound:
                # The writer reserved the size's own name: shapes and sizes print it verbatim.
                bound[d] = d
                reads[d] = f"    {d} = {arg}.shape[{i}]"
                lines.append(reads[d])
    return lines, bound, reads


HELPER_SOURCE = f'''
def {HELPER}(function, name, value, dtype, shape, /, **sizes):
    """Return ``value`` if it is a numpy array of ``dtype`` and ``shape``; else raise ValueError.

    ``shape`` holds sizes and size names; ``sizes`` gives the names that earlier arguments bound.
    """
    expected = tuple([sizes.get(d, d) for d in shape]) if sizes else shape
    numpy_value = isinstance(value, (np.ndarray, np.generic))  # a scalar's shape is ()
    if numpy_value and value.dtype == dtype and value.shape == expected:
        return value  # the common case: three comparisons on every call
    return {FULL}(function, name, value, dtype, shape, sizes)


def {UPDATED}(function, name, value, dtype, shape, /, **sizes):
    """`{HELPER}` for an argument updated in place, which must be a writable array.

    Checked on entry, before the first write, so that a step applies all its updates or none.
    """
    if isinstance(value, np.ndarray) and value.flags.writeable:
        # `{HELPER}`'s quick comparison, repeated: one call per parameter on every step.
        expected = tuple([sizes.get(d, d) for d in shape]) if sizes else shape
        if value.dtype == dtype and value.shape == expected:
            return value
        return {FULL}(function, name, value, dtype, shape, sizes)
    raise {ERROR}(function, name, value, dtype, shape, sizes, "a writable numpy array")


def {FULL}(function, name, value, dtype, shape, sizes):
    """The rest of `{HELPER}`: what its quick comparison does not accept outright.

    A float scalar may be a Python number (returned converted to ``dtype``), any scalar a numpy
    scalar; an integer array (class ids) may have any integer dtype; a size name that no earlier
    argument bound takes its size from ``value``, the same wherever it repeats.
    """
    if not shape and isinstance(value, (int, float)) and dtype in ("float32", "float64"):
        value = np.dtype(dtype).type(value)
    if isinstance(value, np.ndarray) or (not shape and isinstance(value, np.generic)):
        if value.dtype == dtype or (dtype.startswith("int") and value.dtype.kind in "iu"):
            if value.ndim == len(shape):
                seen = dict(sizes)
                for got, want in zip(value.shape, shape):
                    if isinstance(want, str):
                        want = seen.setdefault(want, got)
                    if got != want:
                        break
                else:
                    return value
    raise {ERROR}(function, name, value, dtype, shape, sizes, "a numpy array")


def {ERROR}(function, name, value, dtype, shape, sizes, kind):
    """The ValueError naming the argument, the expected and the received shape and dtype."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        read_only = isinstance(value, np.ndarray) and not value.flags.writeable
        array = "a read-only array" if read_only else "an array"
        got = f"{{array}} of shape {{tuple(value.shape)}} and dtype {{value.dtype}}"
    else:
        got = f"a {{type(value).__name__}}"
    expected = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
    bound = "".join(f", {{k}} = {{v}}" for k, v in sizes.items())
    return ValueError(
        f"{{function}}(): argument {{name!r}} must be {{kind}} of shape {{expected}}{{bound}} "
        f"and dtype {{dtype}}; got {{got}}"
    )
'''


def is_entry_check(statement: ast.stmt) -> bool:
    """Whether a statement of a generated function is one of its entry checks: a helper call
    (``_check_argument(...)``, ``lr = _check_argument(...)``) or a size read (``N = x.shape[0]``).
    """
    value = getattr(statement, "value", None)
    if isinstance(value, ast.Call):
        return isinstance(value.func, ast.Name) and value.func.id in HELPERS
    return (
        isinstance(statement, ast.Assign) and isinstance(value, ast.Subscript)
        and isinstance(value.value, ast.Attribute) and value.value.attr == "shape"
    )
