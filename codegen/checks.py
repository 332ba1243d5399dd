"""Entry checks: every generated function checks its arguments before it reads or writes one.

Each argument is one call of a helper the module defines (`HELPER_SOURCE`): its type, dtype,
rank and sizes, a symbolic size bound by the first argument that has it and checked on the
others (``N=N``), and for an argument updated in place, that it is a writable array. A
function that updates arguments then checks, in one more call, that no updated array shares
memory with another argument. All of it runs on entry, before the first write, so that a step
applies all its updates or none, and the `ValueError` names the function, the argument, the
expected and the received shape and dtype (or the two arguments that overlap).

What is accepted, and why:

- Arrays are `np.ndarray` or `np.memmap` (what ``np.load(..., mmap_mode=...)`` returns), never
  another subclass: `np.matrix` turns ``a * b`` into a matrix product, a masked array skips
  masked entries, so the code, written for ndarray's operators, would compute something else.
- Float arrays have the declared dtype exactly: a float64 array where float32 is declared
  would silently change the precision of the whole computation.
- An integer array (class ids) that is not updated may have another integer dtype: it is cast
  to the declared one when that is safe (int8 to int64) or when its values fit (int64 ids into
  an int32 argument), and refused otherwise. Computed in its own dtype, int8 would wrap
  (``k + k`` = -56 for 100). The check returns the cast array, which the function uses.
- An updated argument has exactly the declared dtype: a cast copy would take the update.
- A float scalar may be a Python number, any scalar a numpy scalar; both become the declared
  numpy scalar type.
"""

from __future__ import annotations

import ast

from symdl.ir import Expr, toposort
from symdl.ops.random import Rng
from symdl.types import INT_DTYPES, format_shape, size_of

from .printer import dtype_text
from .spec import FunctionSpec

# The helpers every generated module defines after its functions. Their leading `_` keeps them
# out of reach of user names (`safe_identifier` strips it; function names may not start with it).
HELPER = "_check_argument"
UPDATED = "_check_updated"
FULL = "_check_argument_fully"
ERROR = "_argument_error"
DISJOINT = "_check_no_overlap"
DISJOINT_FULL = "_check_no_overlap_fully"
CAST = "_cast_integers"
INDICES = "_check_indices"
GENERATOR = "_check_generator"
HELPERS = (HELPER, UPDATED, FULL, ERROR, CAST, DISJOINT, DISJOINT_FULL, INDICES, GENERATOR)


def entry_checks(
    spec: FunctionSpec, names: dict[Expr, str]
) -> tuple[list[str], dict[str, str], dict[str, str]]:
    """One helper call per argument, the size names it binds (``N = x.shape[0]``), and where
    the function updates arguments, one call checking that they share no memory.

    Each call passes the expected shape as a tuple built at run time, sizes already bound by
    name (``(N, 10)``) and sizes this argument binds as ``None``, so that the common case is
    three comparisons; a shape with size names is also passed as declared (``('N', 10)``), for
    the error message. An argument updated in place is checked by `UPDATED`, which also wants
    a writable array. A float scalar may come as a Python number and an integer argument in
    another integer dtype: their lines assign what the helper returns, the value converted to
    the declared dtype. Returns the lines (indented),
    the names bound to sizes, and the line reading each size (so that an unused one can be
    dropped).
    """
    lines: list[str] = []
    bound: dict[str, str] = {}
    reads: dict[str, str] = {}
    for x in spec.inputs:
        arg = names[x]
        if x.op is Rng:
            # Only checked: the body draws from it, after every check has passed.
            lines.append(f"    {GENERATOR}({spec.name!r}, {x.name!r}, {arg})")
            continue
        expected = [
            str(d) if isinstance(d, int) else bound.get(d, "None") for d in x.shape
        ]
        call_args = [repr(spec.name), repr(x.name), arg, dtype_text(x.dtype),
                     format_shape(tuple(expected))]
        if any(isinstance(d, str) for d in x.shape):
            call_args.append(repr(x.shape))
        updated = x in spec.updates
        unbound = [d for d in x.shape if isinstance(d, str) and d not in bound]
        helper = UPDATED if updated else HELPER
        if len(unbound) != len(set(unbound)) and not updated:
            helper = FULL  # a size named twice in one argument: only the full check compares
        call = f"{helper}({', '.join(call_args)})"
        converts = not updated and (
            x.dtype in INT_DTYPES or x.ndim == 0 and x.dtype in ("float32", "float64")
        )
        lines.append(f"    {arg} = {call}" if converts else f"    {call}")
        for i, d in enumerate(x.shape):
            if isinstance(d, str) and d not in bound:
                # The writer reserved the size's own name: shapes and sizes print it verbatim.
                bound[d] = d
                reads[d] = f"    {d} = {arg}.shape[{i}]"
                lines.append(reads[d])
    if spec.updates:
        lines.append(_no_overlap_call(spec, names))
    return lines, bound, reads


def index_checks(spec: FunctionSpec, names: dict[Expr, str], bound: dict[str, str]) -> list[str]:
    """One `INDICES` call per integer argument used as an index, with the size it indexes.

    numpy's own IndexError names neither the argument nor the array, and it comes where the
    gather runs, possibly after a parameter was written; checked on entry, a bad id stops the
    call before any write. An op says which of its inputs index what through ``index_bounds``
    (`symdl.ops.indexing`). An argument indexing several axes is checked against each distinct
    size, the smallest first. Indices computed inside the function (``ids + 1``) are left to
    numpy.
    """
    arguments = set(spec.inputs)
    found: dict[tuple[Expr, object], str] = {}
    for node in toposort([*spec.outputs, *spec.updates.values()]):
        bounds = getattr(node.op, "index_bounds", None)
        if bounds is None:
            continue
        for position, size, what in bounds(node):
            index = _viewed_whole(node.inputs[position])
            if index in arguments:
                found.setdefault((index, size), what)
    lines = []
    order = sorted(found.items(), key=lambda item: (
        spec.inputs.index(item[0][0]), isinstance(item[0][1], str), str(item[0][1])
    ))
    for (index, size), what in order:
        size_text = str(size) if isinstance(size, int) else bound.get(size, size)
        call_args = [repr(spec.name), repr(index.name), names[index], size_text, repr(what)]
        lines.append(f"    {INDICES}({', '.join(call_args)})")
    return lines


def _viewed_whole(x: Expr) -> Expr:
    """What ``x`` is a view of, through views that keep every element (``y[:, None]``,
    ``y.reshape(...)``, a transpose, a broadcast): their values are the source's values, so
    checking the source checks them. A view that drops elements (``y[1:]``) stops the walk: the
    dropped ones may be out of range without harm."""
    while x.op.is_view and x.inputs:
        source = x.inputs[0]
        static, symbols = size_of(x.shape)
        source_static, source_symbols = size_of(source.shape)
        if static < source_static or not set(source_symbols) <= set(symbols):
            break
        x = source
    return x


def _no_overlap_call(spec: FunctionSpec, names: dict[Expr, str]) -> str:
    """The call checking that no updated argument shares memory with another argument.

    Every argument that is not updated is compared too, not only those the body reads after
    its first write: that would have to be proved from the printed statements (a view bound
    before the write and read after it, an op that returns its input), and a wrong proof is a
    silent wrong result, while a refused call only asks for a copy.
    """
    # A generator holds no array memory: nothing to compare.
    arrays = [x for x in spec.inputs if x.op is not Rng]
    updated = [names[x] for x in arrays if x in spec.updates]
    read = [names[x] for x in arrays if x not in spec.updates]
    labels = [repr(x.name) for x in arrays if x in spec.updates]
    labels += [repr(x.name) for x in arrays if x not in spec.updates]
    call_args = [repr(spec.name), format_shape(tuple(labels)), format_shape(tuple(updated)),
                 format_shape(tuple(read))]
    return f"    {DISJOINT}({', '.join(call_args)})"


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
            if shape[0] is None and value.shape[1:] == shape[1:]:
                return value  # the batch axis binds N: the usual first argument
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
    """`{HELPER}` for an argument updated in place: a writable array of exactly ``dtype``.

    Checked on entry, before the first write, so that a step applies all its updates or none.
    """
    if value.__class__ is np.ndarray and value.dtype.type is dtype and value.shape == shape:
        if value.flags.writeable:
            return value
    return {FULL}(function, name, value, dtype, shape, declared, True)


def {FULL}(function, name, value, dtype, shape, declared, updated=False, /):
    """The rest of `{HELPER}` and `{UPDATED}`: what they do not accept outright.

    Arrays are np.ndarray or np.memmap, never another subclass (np.matrix makes ``*`` a
    matrix product). A float scalar may be a Python number, any scalar a numpy scalar (returned
    converted to ``dtype``). An integer argument that is not ``updated`` may have another
    integer dtype: it is returned cast to ``dtype`` if that is safe or its values fit. A size
    this argument binds (None in ``shape``) may be any size, the same wherever its name repeats.
    """
    kind = "a writable numpy array" if updated else "a numpy array"
    problem = ""
    if not updated and not shape and isinstance(value, (int, float)):
        if dtype is np.float32 or dtype is np.float64:
            value = dtype(value)
    if value.__class__ is np.ndarray or value.__class__ is np.memmap or (
        not updated and not shape and isinstance(value, np.generic)
    ):
        if value.dtype != dtype:
            if updated:
                problem = f"it is updated in place, so its dtype must be {{np.dtype(dtype).name}}"
            elif value.dtype.kind in "iu" and np.dtype(dtype).kind == "i":
                value, problem = {CAST}(value, dtype)
            elif np.dtype(dtype).kind == "f":
                problem = (
                    "nothing is converted to a float dtype for you (it could change the "
                    f"precision silently): pass {{name}}.astype(np.{{np.dtype(dtype).name}})"
                )
        if value.dtype == dtype and value.ndim == len(shape) and (
            not updated or value.flags.writeable
        ):
            names = declared or shape
            seen = {{}}
            for got, want, size in zip(value.shape, shape, names):
                if want is None:
                    want = seen.setdefault(size, got)
                if got != want:
                    break
            else:
                return value
    raise {ERROR}(function, name, value, dtype, shape, declared, kind, problem)


def {CAST}(value, dtype):
    """``value`` cast to the integer ``dtype`` if no value changes, and what is wrong if not.

    Computed in a narrower dtype than declared, integers would wrap (int8: 100 + 100 = -56).
    """
    if not np.can_cast(value.dtype, dtype, "safe") and value.size:
        low, high, bounds = int(value.min()), int(value.max()), np.iinfo(dtype)
        if low < bounds.min or high > bounds.max:
            return value, f"its values (from {{low}} to {{high}}) do not fit {{bounds.dtype}}"
    return value.astype(dtype), ""


def {ERROR}(function, name, value, dtype, shape, declared, kind, problem=""):
    """The ValueError naming the argument, the expected and the received shape and dtype."""
    plain = value.__class__ is np.ndarray or value.__class__ is np.memmap
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        if plain or isinstance(value, np.generic):
            read_only = plain and not value.flags.writeable
            array = "a read-only array" if read_only else "an array"
        else:
            array = f"a {{type(value).__module__}}.{{type(value).__qualname__}}"
        got = f"{{array}} of shape {{tuple(value.shape)}} and dtype {{value.dtype}}"
        if isinstance(value, np.ndarray) and not plain:
            problem = (
                "only np.ndarray and np.memmap are accepted, since a subclass may change what "
                f"operators compute (np.matrix makes * a matrix product): pass np.asarray({{name}})"
            )
    else:
        got = f"a {{type(value).__name__}}"
    names = declared or shape
    expected = "(" + ", ".join(map(str, names)) + ("," if len(names) == 1 else "") + ")"
    sizes = {{n: s for n, s in zip(names, shape) if isinstance(n, str) and s is not None}}
    bound = "".join(f", {{n}} = {{s}}" for n, s in sizes.items())
    return ValueError(
        f"{{function}}(): argument {{name!r}} must be {{kind}} of shape {{expected}}{{bound}} "
        f"and dtype {{np.dtype(dtype).name}}; got {{got}}" + (f"; {{problem}}" if problem else "")
    )


def {DISJOINT}(function, names, updated, read, /):
    """Raise unless each of the ``updated`` arrays has memory of its own.

    An updated array that overlaps another one (one array passed as two tied parameters) would
    take both updates, each written over the other; an argument that is read (``read``) would
    change under the step as it writes. ``names`` are the arguments' names, updated first.

    The quick path proves it for arrays that own their memory or are views of one that does,
    each updated array of a different owner than every other argument: one attribute and one
    set lookup per argument. Anything else is compared by `{DISJOINT_FULL}`.
    """
    owners = set()
    for value in updated:
        base = value.base
        if base is not None:
            if base.__class__ is not np.ndarray or base.base is not None:
                return {DISJOINT_FULL}(function, names, updated, read)
            value = base
        owners.add(id(value))
    if len(owners) == len(updated):
        for value in read:
            base = value.base
            if base is not None:
                if base.__class__ is not np.ndarray or base.base is not None:
                    break
                value = base
            if id(value) in owners:
                break
        else:
            return None
    return {DISJOINT_FULL}(function, names, updated, read)


def {DISJOINT_FULL}(function, names, updated, read):
    """`{DISJOINT}` for every pair with an updated array: their memory bounds first
    (np.may_share_memory, cheap), then the exact test (np.shares_memory), so that disjoint
    views of one buffer (its even and odd columns) pass.
    """
    values = (*updated, *read)
    for i, first in enumerate(updated):
        for j in range(i + 1, len(values)):
            second = values[j]
            if np.may_share_memory(first, second) and np.shares_memory(first, second):
                a, b = names[i], names[j]
                if j < len(updated):
                    raise ValueError(
                        f"{{function}}(): arguments {{a!r}} and {{b!r}} share memory, and both "
                        "are updated in place: each update would be written over the other. "
                        "Pass separate arrays (for tied weights, use one parameter in the "
                        f"model, or pass {{b}}.copy())"
                    )
                raise ValueError(
                    f"{{function}}(): argument {{b!r}} shares memory with {{a!r}}, which is "
                    f"updated in place: the step may read {{b!r}} after writing {{a!r}}. "
                    f"Pass a copy ({{b}}.copy())"
                )
    return None
'''


INDEX_HELPER_SOURCE = f'''
def {INDICES}(function, name, value, size, what, /):
    """Raise an IndexError unless every entry of ``value`` indexes an axis of ``size``.

    numpy's range: -size to size - 1 (negative indices count from the end). Checked on entry,
    before the first write, and naming the argument, which numpy's own message does not.
    """
    if value.size:
        low, high = value.min(), value.max()
        if low < -size or high >= size:
            bad = low if low < -size else high
            where = tuple(int(i) for i in np.argwhere(value == bad)[0])
            raise IndexError(
                f"{{function}}(): argument {{name!r}} indexes {{what}}, of size {{size}}, so its "
                f"values must lie in [{{-size}}, {{size - 1}}]; got {{bad}} at position {{where}}"
            )
'''


GENERATOR_SOURCE = f'''

def {GENERATOR}(function, name, value, /):
    """Raise unless ``value`` is a numpy.random.Generator, which the function draws from."""
    if isinstance(value, np.random.Generator):
        return None
    if isinstance(value, np.random.RandomState) or value is np.random:
        hint = "the legacy np.random API has no Generator methods; "
    else:
        hint = ""
    raise TypeError(
        f"{{function}}(): argument {{name!r}} must be a numpy.random.Generator, which the "
        f"function draws from; got {{type(value).__module__}}.{{type(value).__qualname__}}. "
        f"{{hint}}pass np.random.default_rng(seed) (the same seed gives the same draws)"
    )
'''


# What each entry-check helper calls: a module defines those its functions call, and these.
CALLS = {HELPER: (FULL,), UPDATED: (FULL,), FULL: (CAST, ERROR), DISJOINT: (DISJOINT_FULL,)}


def _blocks(source: str) -> dict[str, str]:
    """``{helper name: its def block}`` of a helper source, in the source's order."""
    return {block[len("def "):].split("(", 1)[0]: block
            for block in source.strip("\n").split("\n\n\n")}


def check_helpers_source(code: str) -> str:
    """The entry-check helpers that ``code`` (a module's functions) calls, with the helpers
    they call, in the order of `HELPER_SOURCE`, `INDEX_HELPER_SOURCE` and `GENERATOR_SOURCE`:
    a module without updates defines no overlap check, one without index or generator
    arguments no check of theirs, and a reader meets no helper the module never runs."""
    blocks = {**_blocks(HELPER_SOURCE), **_blocks(INDEX_HELPER_SOURCE),
              **_blocks(GENERATOR_SOURCE)}
    needed: set[str] = set()
    stack = [name for name in blocks if f"{name}(" in code]
    while stack:
        name = stack.pop()
        if name not in needed:
            needed.add(name)
            stack.extend(CALLS.get(name, ()))
    if not needed:
        return ""
    return "\n" + "\n\n\n".join(b for name, b in blocks.items() if name in needed) + "\n"


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
