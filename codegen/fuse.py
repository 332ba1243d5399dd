"""Elementwise fusion: a chain of elementwise ops becomes one statement with a sympy body.

After simplification and lowering, ``step_size = lr * root_bc2 / (1.0 - 0.9 ** step_new)`` is
four IR nodes; printed one per line it reads like assembly. `fuse` merges each such chain into one
`Fused` node whose body is a sympy expression over the chain's inputs. sympy then simplifies the
body (within an operation budget, never on large expressions), `sympy.cse` names what the body
repeats, and sympy's numpy printer writes it. Which chains fuse is a cost decision, not only a
cosmetic one: each op inside a printed numpy expression allocates a temporary, while a separate
statement can write into a dead buffer (``out=``). So a node joins its consumer's statement only
if it is cheap to allocate: a scalar, or an array whose static size is small (a symbolic
batch dimension counts as 1). Large values stay statements of their own, and the root of a
fused body still writes into a dead buffer.

A node stays a statement of its own, too, when the reader needs it: when it has a user's name,
is an output or a parameter's new value, or feeds several statements (CSE: computed once).

IEEE semantics: sympy cancels as it builds a body (``a*0`` is 0, ``a - (a + a)`` is ``-a``)
and `simplify_body` factors and cancels more, exact for finite values only (numpy gives NaN
for ``inf - (inf + inf)``). So unless ``fast_math`` is on or differentiation built every op of
the group (its zeros are zero cotangents, as in `symdl.simplify.rules`), a group whose body
lost an input or an op is printed op by op, and its body is not simplified.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy

from symdl.ir import Expr, toposort
from symdl.ops.base import OPS, Op, SympyForm, is_weak, scalar_value
from symdl.ops.elementwise import cast
from symdl.ops.shape import broadcast_to
from symdl.provenance import Notes
from symdl.types import Shape, broadcast_shapes, promote

# An array with this many elements or more is large: glibc's malloc serves it with fresh pages
# (128 KiB and up), faulted in again on every call, while smaller ones come from its free lists
# at no cost. Large arrays are never temporaries inside a fused expression, and `plan_buffers`
# reuses dead ones as scratch.
LARGE_ELEMENTS = 16384
# A size known only at run time (the batch) counts as this many: a small batch, so that a
# softmax's (N, 10) stays small and fuses, while a Hessian's (N, 10, 150) tangents, 300,000
# floats at N = 200, are large. Counted as 1, they were temporaries inside one expression, and
# the step took 10 times the closed form's time (float32; 20 times in float64).
ASSUMED_SIZE = 32


def is_large(shape: Shape) -> bool:
    """Whether an array of ``shape`` is large (see `LARGE_ELEMENTS`, `ASSUMED_SIZE`)."""
    return math.prod(d if isinstance(d, int) else ASSUMED_SIZE for d in shape) >= LARGE_ELEMENTS

# At most this many ops in one statement: longer chains split, so that sympy (recursive) and
# the reader both get expressions of a manageable size.
MAX_FUSED_OPS = 32
# At most this deep a body (sympy tree levels): the op count alone does not bound it, as one
# `sd.elementwise` op brings its whole body. sympy's printers and `ast` recurse once or more
# per level, and Python refuses source nested more than 200 parentheses deep.
MAX_BODY_DEPTH = 40

# The budget for `simplify_body`, in operations (``sympy.count_ops``) rather than seconds, so
# that the generated code never depends on the speed of the machine. A body larger than
# `SIMPLIFY_MAX_OPS` is never simplified (simplify's time grows steeply with size); bodies are
# simplified in graph order until `SIMPLIFY_BUDGET_OPS` operations have gone through it.
SIMPLIFY_MAX_OPS = 24
SIMPLIFY_BUDGET_OPS = 400


class Fused(Op):
    """several elementwise ops as one sympy body (made by the code generator only)

    Not in the op table: users never build it, and it has no derivative.
    """

    name = "fused"

    @classmethod
    def infer(
        cls, *xs: Expr, body: sympy.Expr, symbols: tuple[sympy.Symbol, ...], shape: Shape,
        dtype: str,
    ) -> tuple[Shape, str]:
        # The shape and dtype are those of the statement it replaces, checked when that was built.
        return shape, dtype

    @classmethod
    def name_hint(cls, inputs: Sequence[str], attrs: Mapping[str, Any]) -> str:
        """Named as its outermost operation would be (``sqrt_step_new``, ``exp_z``)."""
        outer = _outermost(with_cse(attrs["body"]).result)
        if outer is None:
            return "value"
        op = _op_of_ufunc().get(outer[0])
        operands = [a for a in inputs if a.isidentifier()]
        return op.name_hint(operands, {}) if op is not None else outer[0].removeprefix("np.")


def _form(op: type[Op]) -> SympyForm | None:
    """The sympy form fused code computes for ``op``: its stable form where it has one."""
    return op.sympy_stable or op.sympy_form


@dataclass
class FusionLog:
    """What fusion did, for the report."""

    fused: int = 0  # statements made from more than one op
    absorbed: int = 0  # ops that stopped being statements of their own
    simplified: int = 0  # bodies sympy made shorter
    over_budget: int = 0  # bodies left as built: too large, or the budget was spent
    budget_left: int = SIMPLIFY_BUDGET_OPS
    _seen: dict[sympy.Expr, sympy.Expr] = field(default_factory=dict, repr=False)


def fuse(
    outputs: Sequence[Expr], log: FusionLog | None = None, notes: Notes | None = None,
    *, fast_math: bool = False, loops: bool = False, user_names: Collection[str] = (),
) -> list[Expr]:
    """Merge chains of elementwise ops into `Fused` nodes; values are unchanged.

    ``outputs`` must be lowered (no composite ops). Names and provenance of each chain's last
    node move to its fused node (in ``notes``), so names and ``# grad of:`` comments survive;
    a named node is never absorbed. ``fast_math`` allows cancellations that are exact only
    for finite values (see the module docstring). ``loops`` says that fused bodies are
    compiled loops (the numba backend), which make no temporaries: large arrays fuse too, and
    so do values that only lowering named (``softmax_logits``): a loop computes them in a
    register, and their formula is in the kernel. Names in ``user_names`` always stay.
    """
    log = log if log is not None else FusionLog()
    notes = notes if notes is not None else Notes()
    order = toposort(outputs)
    known = set(order)
    users: dict[Expr, set[Expr]] = {n: set() for n in order}
    for n in order:
        for x in n.inputs:
            users[x].add(n)
    kept = set(outputs)
    group_of: dict[Expr, Expr] = {}  # absorbed node -> the root of its statement
    members: dict[Expr, list[Expr]] = {}
    for root in reversed(order):
        if root in group_of or not _fusible(root):
            continue
        group = [root]
        stack = list(root.inputs)
        while stack and len(group) < MAX_FUSED_OPS:
            x = stack.pop()
            if x in group_of or x is root or not _absorbable(
                x, root, users, kept, notes, loops, user_names
            ):
                continue
            group_of[x] = root
            group.append(x)
            stack.extend(x.inputs)
        if len(group) > 1:
            members[root] = group
    memo: dict[Expr, Expr] = {}
    for n in order:
        if n in group_of:
            continue
        if n in members:
            memo[n] = _fused_node(n, set(members[n]), memo, log, notes, known, fast_math)
        else:
            inputs = tuple(memo[i] for i in n.inputs)
            changed = any(a is not b for a, b in zip(inputs, n.inputs))
            memo[n] = n.op.make(*inputs, **n.kwargs) if changed else n
            notes.carry(n, memo[n], known)
    return [memo[o] for o in outputs]


def _fusible(node: Expr) -> bool:
    # Comparisons and `where` are not elementwise math: sympy has no arithmetic on booleans.
    return node.op.elementwise_math and node.dtype in ("float32", "float64")


def _absorbable(
    x: Expr, root: Expr, users: dict[Expr, set[Expr]], kept: set[Expr], notes: Notes,
    loops: bool = False, user_names: Collection[str] = (),
) -> bool:
    """Whether ``x`` can be computed inside ``root``'s statement instead of on its own."""
    if not _fusible(x) or x.dtype != root.dtype or x in kept:
        return False
    label = notes.labels.get(x)
    if label is not None and (not loops or label in user_names):
        return False
    if len(users[x]) != 1:
        return False  # shared: computed once, as its own statement
    # Inside a numpy expression, x is a fresh temporary: fine if it is small, not if it is
    # large. Inside a compiled loop it is a scalar in a register, whatever its size.
    return loops or not is_large(x.shape)


def _fused_node(
    root: Expr, group: set[Expr], memo: dict[Expr, Expr], log: FusionLog, notes: Notes,
    known: set[Expr], fast_math: bool = False,
) -> Expr:
    """The `Fused` node computing ``root`` from the inputs of ``group``.

    Where a member's body would be deeper than `MAX_BODY_DEPTH`, its deepest inputs in the
    group become statements of their own first (their bodies are already built: the part of
    the group below them), so no body is too deep for sympy and the parser.
    """
    leaves: dict[Expr, sympy.Symbol] = {}
    exprs: dict[Expr, sympy.Expr] = {}
    depths: dict[sympy.Basic, int] = {}
    cut: set[Expr] = set()  # members made statements of their own
    made = _Made(leaves, memo, log, notes, known, fast_math)
    for x in _inputs_first(root, group):
        if x not in group:
            number = _number(x, root.dtype)
            if number is None:
                number = leaves[x] = sympy.Symbol(f"a{len(leaves)}", real=True)
            exprs[x] = number
            continue
        exprs[x] = _body_of(x, exprs)
        while _depth(exprs[x], depths) > MAX_BODY_DEPTH:
            inner = [i for i in x.inputs if i in group and i not in cut]
            if not inner:
                break  # one op's own body: as deep as the user wrote it
            deepest = max(inner, key=lambda i: _depth(exprs[i], depths))
            memo[deepest] = _statement(
                deepest, exprs[deepest], _members(deepest, group, cut), made
            )
            cut.add(deepest)
            exprs[deepest] = leaves[deepest] = sympy.Symbol(f"a{len(leaves)}", real=True)
            exprs[x] = _body_of(x, exprs)
    return _statement(root, exprs[root], _members(root, group, cut), made)


def _body_of(x: Expr, exprs: dict[Expr, sympy.Expr]) -> sympy.Expr:
    """``x``'s op applied to its inputs' sympy expressions (the form fused code computes)."""
    return _form(x.op)(*(exprs[i] for i in x.inputs), **x.kwargs)  # type: ignore[misc]


@dataclass
class _Made:
    """What building one group's statements shares: the leaves' symbols, the rebuilt nodes,
    the log, the notes that names and origins move through, and whether cancellations that
    are exact only for finite values are allowed."""

    leaves: dict[Expr, sympy.Symbol]
    memo: dict[Expr, Expr]
    log: FusionLog
    notes: Notes
    known: set[Expr]
    fast_math: bool = False


def _statement(root: Expr, body: sympy.Expr, members: list[Expr], made: _Made) -> Expr:
    """The node computing ``root``, whose ``members`` make ``body`` over the leaves."""
    exact = not made.fast_math and not all(m in made.notes.origins for m in members)
    if body.is_Symbol or body.is_number or len(members) == 1 or (
        exact and _cancelled(members, body, made.leaves)
    ):
        # sympy's own evaluation cancelled the chain ((a + b) - b), or cancelled what numpy
        # computes with (inf * 0 is NaN), or there is one op left: print the ops as they are.
        return _plain(root, set(members), made.memo, made.notes, made.known)
    if not exact:  # sympy's rewrites (a*b + a*c -> a*(b + c)) hold for finite values only
        body = simplify_body(body, made.log)
    used = [x for x, s in made.leaves.items() if s in body.free_symbols]
    symbols = tuple(made.leaves[x] for x in used)
    args = _keep_dtype(tuple(made.memo[x] for x in used), body, root.dtype)
    # The printed body broadcasts the inputs it uses and no others. Where sympy cancelled an
    # input that set the statement's shape (``exp((a + b) - b)`` is ``exp(a)``), the node
    # computes what its body does and an explicit broadcast restores the statement's shape.
    shape = broadcast_shapes("fused", *(a.shape for a in args))
    node = Fused.make(*args, body=body, symbols=symbols, shape=shape, dtype=root.dtype)
    node = broadcast_to(node, root.shape)
    made.log.fused += 1
    made.log.absorbed += len(members) - 1
    made.notes.carry(root, node, made.known)
    return node


def _cancelled(members: list[Expr], body: sympy.Expr, leaves: dict[Expr, sympy.Symbol]) -> bool:
    """Whether sympy, building ``body``, cancelled an input one of ``members`` uses, or
    combined or distributed ops (``a - (a + a)`` is ``-a``, but NaN for a = inf): whether the
    body's op count differs from the members' own, each over inputs that cannot cancel."""
    used = {leaves[i] for m in members for i in m.inputs if i in leaves}
    if used - body.free_symbols:
        return True
    own = sum(int(sympy.count_ops(_alone(m))) for m in members)
    return int(sympy.count_ops(body)) != own


def _alone(x: Expr) -> sympy.Expr:
    """``x``'s sympy form over distinct symbols (nothing to cancel against)."""
    args = [sympy.Symbol(f"_in{k}", real=True) for k in range(len(x.inputs))]
    return _form(x.op)(*args, **x.kwargs)  # type: ignore[misc]


def _members(root: Expr, group: set[Expr], cut: set[Expr]) -> list[Expr]:
    """``root`` and the members of ``group`` its statement computes (those not ``cut`` off)."""
    found, seen = [root], {root}
    stack = [i for i in root.inputs if i in group and i not in cut]
    while stack:
        x = stack.pop()
        if x not in seen:
            seen.add(x)
            found.append(x)
            stack.extend(i for i in x.inputs if i in group and i not in cut)
    return found


def _depth(expr: sympy.Basic, depths: dict[sympy.Basic, int]) -> int:
    """Levels in ``expr``'s tree (an atom is 0), remembered in ``depths`` (iterative)."""
    stack = [expr]
    while stack:
        e = stack[-1]
        if e in depths:
            stack.pop()
            continue
        todo = [a for a in e.args if a not in depths]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        depths[e] = 1 + max((depths[a] for a in e.args), default=-1)
    return depths[expr]


def _keep_dtype(args: tuple[Expr, ...], body: sympy.Expr, dtype: str) -> tuple[Expr, ...]:
    """``args``, cast to ``dtype`` where the body over them alone would compute in a smaller one.

    sympy may cancel the input that made the statement float64 (``a * y / y`` is ``a``); the
    statement then still computes in float64, as the ops it replaces did.
    """
    strong = [a.dtype for a in args if not is_weak(a)]
    if not strong:
        return args  # Python scalars only: the statement wraps its value in its dtype
    literals = ["float64"] if body.atoms(sympy.Float) else []
    if promote(strong, [a.dtype for a in args if is_weak(a)] + literals) == dtype:
        return args
    return tuple(a if is_weak(a) else cast(a, dtype) for a in args)


def _inputs_first(root: Expr, group: set[Expr]) -> list[Expr]:
    """The group's nodes and their inputs, each after its inputs (iterative: no recursion)."""
    order: list[Expr] = []
    done: set[Expr] = set()
    stack: list[tuple[Expr, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if node in done:
            continue
        if expanded or node not in group:
            done.add(node)
            order.append(node)
            continue
        stack.append((node, True))
        stack.extend((i, False) for i in reversed(node.inputs) if i not in done)
    return order


def _plain(
    root: Expr, group: set[Expr], memo: dict[Expr, Expr], notes: Notes, known: set[Expr]
) -> Expr:
    """``root`` rebuilt op by op, its group's members as statements of their own."""
    for n in _inputs_first(root, group):
        if n in group and n not in memo:
            memo[n] = n.op.make(*(memo[i] for i in n.inputs), **n.kwargs)
            notes.carry(n, memo[n], known)
    return memo[root]


def _number(x: Expr, dtype: str) -> sympy.Expr | None:
    """A scalar constant as a sympy number (printed as a literal), where that keeps the dtype.

    A Python number (weak) always does; a numpy scalar of the statement's own dtype does too,
    since numpy casts the literal to that dtype (``np.float32(1.0)`` and ``1.0`` next to a
    float32 array). Others, say a float64 scalar in a float32 statement, stay arguments.
    """
    if x.op.name != "constant" or x.shape != () or not (x.attr("weak") or x.dtype == dtype):
        return None
    value = scalar_value(x)
    if value is None or not math.isfinite(value):
        return None
    if x.dtype.startswith("int") or x.dtype == "bool":
        return sympy.Integer(int(value))
    return sympy.Float(value)


# ------------------------------------------------------------------------ simplifying a body


def simplify_body(body: sympy.Expr, log: FusionLog) -> sympy.Expr:
    """``body`` rewritten shorter (`_shorten`) if that is shorter and safe; within the budget.

    Safe means: no function application the body did not already compute. sympy may rewrite
    ``1 - tanh(x)**2`` as ``1/cosh(x)**2``, or ``exp(-x)/(1 + exp(-x))`` over ``exp(x)``,
    shorter but overflowing where the original does not; such results are refused, as are
    results that are not strictly shorter. Exact for finite values only: the caller decides
    whether that is allowed (see the module docstring).
    """
    if body in log._seen:
        return log._seen[body]
    ops = int(sympy.count_ops(body))
    if ops > SIMPLIFY_MAX_OPS or ops > log.budget_left:
        log.over_budget += 1
        return body
    log.budget_left -= ops
    result = _safe_simplify(body)
    if result is not body:
        log.simplified += 1
    log._seen[body] = result
    return result


# Keyed by the body's structure (sympy expressions compare and hash by value), not by node:
# the bodies of a deep network repeat layer after layer over the same numbered symbols
# (``a0 - a1*a2`` for every ``W - lr * W_grad``), and each is rewritten once per process.
@functools.lru_cache(maxsize=4096)
def _safe_simplify(body: sympy.Expr) -> sympy.Expr:
    try:
        candidate = _shorten(body)
    except (TypeError, ValueError, NotImplementedError, RecursionError):
        return body
    if _applications(candidate) - _applications(body):
        return body  # a function evaluated at a new argument: exp(x) for exp(-x) overflows
    if _functions(candidate) - _functions(body):
        return body
    if candidate.free_symbols - body.free_symbols or candidate.is_Symbol or candidate.is_number:
        return body  # a bare input would be an alias of it; a number, a constant array
    if sympy.count_ops(candidate) >= sympy.count_ops(body) or candidate.has(sympy.nan, sympy.zoo):
        return body
    if _fractions(candidate) - _fractions(body):
        return body  # exact fractions the floats did not have: keep the user's constants
    return candidate


def _shorten(body: sympy.Expr) -> sympy.Expr:
    """The shortest (``sympy.count_ops``) of ``body``'s exact rational rewrites: each part over
    one denominator (``normal``), then ``cancel`` (one polynomial over another) or ``together``
    (one common denominator, also inside function arguments), then common factors pulled out
    (``factor_terms``, but not a bare number) and a leading minus sign moved into the numerator
    (``-2*a*(1 - b**2)`` is ``2*a*(b**2 - 1)``). The caller keeps the body where this is not
    shorter.

    These are the steps of ``sympy.simplify`` that can shorten a fused body, which holds
    arithmetic and elementary functions of real symbols; its other steps (trigonometric,
    hypergeometric, logarithm combining) only ever gave results that `_safe_simplify` refuses,
    and its first call imports ``sympy.physics.units`` (a third of a cold generation's time)
    to look for physical quantities a body never holds.
    """
    expr = sympy.signsimp(body)
    # Each part over one denominator, innermost first, as sympy.simplify starts: the other
    # forms are then taken from this one, never from the body as built.
    expr = expr.replace(_has_args, lambda e: e.normal())
    expr = sympy.Mul(*sympy.powsimp(expr).as_content_primitive())
    cancelled = sympy.cancel(expr)
    cancelled = _shortest(cancelled, sympy.expand_mul(sympy.expand_multinomial(cancelled)).cancel())
    expr = _shortest(sympy.together(expr, deep=True), sympy.together(cancelled, deep=True),
                     cancelled, expr)
    expr = sympy.factor_terms(expr, sign=False)
    # As sympy.simplify does, a number times a sum is multiplied out again (2*a + 2*b, not
    # 2*(a + b)): the sum's terms stay as the ops computed them.
    expr = expr.replace(_number_times_sum, lambda e: sympy.Mul(*e.args))
    if expr.could_extract_minus_sign():
        numerator, denominator = sympy.fraction(expr)
        expr = sympy.signsimp(-numerator / -denominator)
    return expr


def _has_args(expr: sympy.Basic) -> bool:
    return bool(expr.args) and isinstance(expr, sympy.Expr)


def _number_times_sum(expr: sympy.Basic) -> bool:
    return bool(expr.is_Mul and len(expr.args) == 2 and expr.args[0].is_Number
                and expr.args[1].is_Add)


def _shortest(*choices: sympy.Expr) -> sympy.Expr:
    """The choice with the fewest operations; the first of those tied."""
    return min(choices, key=sympy.count_ops)


def _applications(expr: sympy.Expr) -> set[sympy.Expr]:
    return set(expr.atoms(sympy.Function))


def _fractions(expr: sympy.Expr) -> set[sympy.Rational]:
    return {r for r in expr.atoms(sympy.Rational) if not r.is_Integer}


def _functions(expr: sympy.Expr) -> set[type]:
    return {type(f) for f in expr.atoms(sympy.Function)} | (
        {sympy.Pow} if any(not e.exp.is_Integer for e in expr.atoms(sympy.Pow)) else set()
    )


# ------------------------------------------------------------------------ printing a body


@dataclass(frozen=True)
class Body:
    """A fused body after `sympy.cse`: named subexpressions, then the result."""

    temporaries: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
    result: sympy.Expr


@functools.lru_cache(maxsize=4096)
def with_cse(body: sympy.Expr) -> Body:
    """``body`` with each repeated subexpression computed once (``sympy.cse``)."""
    symbols = sympy.numbered_symbols("_t", real=True)
    pairs, (result,) = sympy.cse(body, symbols=symbols, order="none")
    return Body(tuple(pairs), result)


def writes_into(node: Expr) -> bool:
    """Whether ``node``'s statement can write its result into an existing array (``out=``)."""
    return _outermost(with_cse(node.attr("body")).result) is not None


def _outermost(expr: sympy.Expr) -> tuple[str, list[sympy.Expr]] | None:
    """The numpy ufunc at the top of ``expr`` and its operands, if ``out=`` can be given."""
    if isinstance(expr, sympy.Add):
        positive = [t for t in expr.args if not t.could_extract_minus_sign()]
        negative = [-t for t in expr.args if t.could_extract_minus_sign()]
        if positive and negative:
            return "np.subtract", [sympy.Add(*positive), sympy.Add(*negative)]
        if len(positive) >= 2:
            return "np.add", [positive[0], sympy.Add(*positive[1:])]
        return None
    if isinstance(expr, sympy.Mul):
        numerator, denominator = [], []
        for factor in expr.args:
            if isinstance(factor, sympy.Pow) and factor.exp.is_number and factor.exp < 0:
                denominator.append(factor.base ** (-factor.exp))
            else:
                numerator.append(factor)
        if denominator:
            return "np.divide", [sympy.Mul(*numerator), sympy.Mul(*denominator)]
        if expr.args[0] == -1:
            return "np.negative", [sympy.Mul(*expr.args[1:])]
        return "np.multiply", [expr.args[0], sympy.Mul(*expr.args[1:])]
    if isinstance(expr, sympy.Pow):
        if expr.exp == 2:
            return "np.square", [expr.base]
        if expr.exp == sympy.Rational(1, 2):
            return "np.sqrt", [expr.base]
        if expr.exp == -1:
            return "np.divide", [sympy.Integer(1), expr.base]
        return "np.power", [expr.base, expr.exp]
    ufunc = _ufunc_of_function().get(type(expr))
    if ufunc is None:
        return None
    if isinstance(expr, (sympy.Max, sympy.Min)):
        # The array first (sympy puts numbers first); np.maximum takes two operands (a third
        # would be `out`), so the rest fold into one.
        ordered = sorted(expr.args, key=lambda a: a.is_number)
        rest = ordered[1] if len(ordered) == 2 else type(expr)(*ordered[1:])
        return ufunc, [ordered[0], rest]
    return ufunc, list(expr.args)


@functools.cache
def _ufunc_of_function() -> dict[type, str]:
    """The numpy ufunc of each sympy function an op's fused form is (sympy.exp: ``np.exp``).

    Read from the ops' facts (`ufunc`); arithmetic (sympy's Add, Mul, Pow) is matched by its
    structure in `_outermost` instead, since sympy writes ``a / b`` as ``a * b**-1``.
    """
    table: dict[type, str] = {}
    for op in OPS.values():
        form = _form(op)
        if op.ufunc is None or form is None:
            continue
        # One symbol per input, as many as its shape rule takes (ops with a ufunc have a fixed
        # number of inputs).
        parameters = inspect.signature(op.infer).parameters.values()
        arity = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
        head = type(form(*(sympy.Symbol(f"a{i}", real=True) for i in range(arity))))
        if head not in (sympy.Add, sympy.Mul, sympy.Pow):
            table.setdefault(head, op.ufunc)
    return table


@functools.cache
def _op_of_ufunc() -> dict[str, type[Op]]:
    """The op each numpy ufunc computes (the first registered, for ``np.maximum``: maximum)."""
    table: dict[str, type[Op]] = {}
    for op in OPS.values():
        if op.ufunc is not None:
            table.setdefault(op.ufunc, op)
    return table


def print_body(
    node: Expr, args: Sequence[str], out: str | None, new_name: Callable[[str], str],
    printer: Callable[[dict[sympy.Symbol, str], str | None], Callable[[sympy.Expr], str]],
    literal_dtype: str | None = None, *, final: bool = False,
) -> tuple[list[str], str]:
    """Lines naming the body's repeated parts, and the expression computing the result.

    ``out`` names a dead array to write into (the expression is then a ufunc call with
    ``out=``); ``final`` says that the write is a statement of its own, the last write of a
    parameter (an augmented assignment ``W -= ...`` where it fits). ``new_name(hint)`` returns
    a fresh variable name; ``printer(names, literal_dtype)`` is sympy's numpy printer over them,
    printing float literals as their ``literal_dtype`` value (see `scalar_literal`).
    """
    names = dict(zip(node.attr("symbols"), args))
    body = with_cse(node.attr("body"))
    lines = []
    for symbol, value in body.temporaries:
        name = new_name(_hint(value, names))
        lines.append(f"{name} = {printer(names, literal_dtype)(value)}")
        names[symbol] = name
    text = printer(names, literal_dtype)
    if out is None:
        return lines, text(body.result)
    ufunc, operands = _outermost(body.result)  # type: ignore[misc]
    printed = [text(o) for o in operands]
    augmented = _AUGMENTED.get(ufunc)
    if not final:
        augmented = None
    if augmented is not None and printed[0] == out:
        return lines, f"{out} {augmented}= {printed[1]}"  # W -= lr * W_grad
    if augmented in ("+", "*") and printed[1] == out:
        return lines, f"{out} {augmented}= {printed[0]}"
    return lines, f"{ufunc}({', '.join(printed)}, out={out})"


_AUGMENTED = {"np.add": "+", "np.subtract": "-", "np.multiply": "*", "np.divide": "/"}


def _hint(value: sympy.Expr, names: dict[sympy.Symbol, str]) -> str:
    """A name saying what a repeated subexpression is: ``exp_z`` for ``exp(z)``."""
    head = type(value).__name__.lower() if isinstance(value, sympy.Function) else {
        sympy.Add: "total", sympy.Mul: "prod", sympy.Pow: "power"  # as the ops' hints
    }.get(type(value), "t")
    symbols = [names[s] for s in _ordered_symbols(value.free_symbols) if s in names]
    return f"{head}_{symbols[0]}" if len(symbols) == 1 else head


def _ordered_symbols(symbols: Iterable[sympy.Symbol]) -> list[sympy.Symbol]:
    return sorted(symbols, key=lambda s: s.name)
