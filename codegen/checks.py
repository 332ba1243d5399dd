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
    """One helper call per argument, then the size names it binds (``N = x.shape[0]``).

    Each call passes the expected shape as a tuple built at run time, sizes already bound by
    name (``(N, 10)``) and sizes this argument binds as ``None``, so that the common case is
    three comparisons; a shape with size names is also passed as declared (``('N', 10)``), for
    the error message. An argument updated in place is checked by `UPDATED`, which also wants
    a writable array. A float scalar may come as a Python number: its line assigns what the
    helper returns, the number converted to the declared dtype. Returns the lines (indented),
    the names bound to sizes, and the line reading each size (so that an unused one can be
    dropped).
    """
    lines: list[str] = []
    bound: dict[str, str] = {}
    reads: dict[str, str] = {}
    for x in spec.inputs:
        arg = names[x]
        expected = [
            str(d) if isinstance(d, int) else bound.get(d, "None") for d in x.shape
        ]
        call_args = [repr(spec.name), repr(x.name), arg, dtype_text(x.dtype),
                     _tuple_text(expected)]
        if any(isinstance(d, str) for d in x.shape):
            call_args.append(repr(x.shape))
        updated = x in spec.updates
        unbound = [d for d in x.shape if isinstance(d, str) and d not in bound]
        helper = UPDATED if updated else HELPER
        if len(unbound) != len(set(unbound)) and not updated:
            helper = FULL  # a size named twice in one argument: only the full check compares
        call = f"{helper}({', '.join(call_args)})"
        converts = x.ndim == 0 and x.dtype in ("float32", "float64") and not updated
        lines.append(f"    {arg} = {call}" if converts else f"    {call}")
        for i, d in enumerate(x.shape):
            if isinstance(d, str) and d not in bound:
                # The writer reserved the size's own name: shapes and sizes print it verbatim.
                bound[d] = d
                reads[d] = f"    {d} = {arg}.shape[{i}]"
                lines.append(reads[d])
    return lines, bound, reads


def _tuple_text(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def dtype_text(dtype: str) -> str:
    """The numpy scalar type of ``dtype``, as the checks compare it (``np.float32``)."""
    return "np.bool_" if dtype == "bool" else f"np.{dtype}"


HELPER_SOURCE = f'''
def {HELPER}(function, name, value, dtype, shape, declared=None, /):
    """Return ``value`` if it is a numpy array of ``dtype`` and ``shape``.

    Anything else goes to `{FULL}`, which converts, accepts or raises.

    ``shape`` holds the expected sizes, None for a size this argument binds; ``declared`` the
    shape with its size names, where it has any (for the error message).
    """
    if value.__class__ is np.ndarray and value.dtype.type is dtype:
        if value.shape == shape:
            return value  # the common case: three comparisons on every call
        if declared is not None and len(value.shape) == len(shape):
            # Sizes this argument binds (None) take any value. (A size named twice in one
            # argument is compared by the full check, which the module calls directly then.)
            for got, want in zip(value.shape, shape):
                if want is not None and got != want:
                    break
            else:
                return value
    elif not shape:
        if value.__class__ is dtype:
            return value  # a numpy scalar of the dtype (np.float32(0.01))
        if value.__class__ is float and (dtype is np.float32 or dtype is np.float64):
            return dtype(value)  # a learning rate given as a Python number
    return {FULL}(function, name, value, dtype, shape, declared)


def {UPDATED}(function, name, value, dtype, shape, declared=None, /):
    """`{HELPER}` for an argument updated in place, which must be a writable array.

    Checked on entry, before the first write, so that a step applies all its updates or none.
    """
    if value.__class__ is np.ndarray and value.flags.writeable:
        if value.dtype.type is dtype and value.shape == shape:
            return value
        return {FULL}(function, name, value, dtype, shape, declared)
    raise {ERROR}(function, name, value, dtype, shape, declared, "a writable numpy array")


def {FULL}(function, name, value, dtype, shape, declared):
    """The rest of `{HELPER}`: what its quick comparison does not accept outright.

    A float scalar may be a Python number (returned converted to ``dtype``), any scalar a numpy
    scalar; an integer array (class ids) may have any integer dtype; a size this argument binds
    (None in ``shape``) may be any size, the same wherever its name repeats.
    """
    if not shape and isinstance(value, (int, float)) and dtype in (np.float32, np.float64):
        value = dtype(value)
    if isinstance(value, np.ndarray) or (not shape and isinstance(value, np.generic)):
        kind = np.dtype(dtype).kind
        if value.dtype == dtype or (kind == "i" and value.dtype.kind in "iu"):
            if value.ndim == len(shape):
                names = declared or shape
                seen = {{}}
                for got, want, size in zip(value.shape, shape, names):
                    if want is None:
                        want = seen.setdefault(size, got)
                    if got != want:
                        break
                else:
                    return value
    raise {ERROR}(function, name, value, dtype, shape, declared, "a numpy array")


def {ERROR}(function, name, value, dtype, shape, declared, kind):
    """The ValueError naming the argument, the expected and the received shape and dtype."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        read_only = isinstance(value, np.ndarray) and not value.flags.writeable
        array = "a read-only array" if read_only else "an array"
        got = f"{{array}} of shape {{tuple(value.shape)}} and dtype {{value.dtype}}"
    else:
        got = f"a {{type(value).__name__}}"
    names = declared or shape
    expected = "(" + ", ".join(map(str, names)) + ("," if len(names) == 1 else "") + ")"
    sizes = {{n: s for n, s in zip(names, shape) if isinstance(n, str) and s is not None}}
    bound = "".join(f", {{n}} = {{s}}" for n, s in sizes.items())
    return ValueError(
        f"{{function}}(): argument {{name!r}} must be {{kind}} of shape {{expected}}{{bound}} "
        f"and dtype {{np.dtype(dtype).name}}; got {{got}}"
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
