"""Statement order and buffer plan: the last two passes before printing.

`schedule` orders the statements: scalars computed from scalar inputs first (Adam's bias
corrections, once, at the top), then forward values, then each derivation step's statements
together and in step order, as far as the dependencies allow (a priority topological sort).
`plan_buffers` decides which statements write into an array that is dead by then (``out=``)
instead of allocating a new one. `views_used_once` picks the views printed inline at their use.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Mapping, Sequence, Set

from symdl.ir import Expr
from symdl.ir import schedule as deep_first
from symdl.provenance import Notes

from .fuse import Fused, is_large, writes_into


def schedule(outputs: Sequence[Expr], notes: Notes, forward: set[Expr]) -> list[Expr]:
    """Every node the outputs need, inputs first, in the order the module prints them.

    The base order is `symdl.ir.schedule` (deep operands first, so a rule's statements stay
    together), with scalars of scalar inputs first (`scalars_of_scalars`). Then a topological sort
    picks, among the nodes whose inputs are done, the lowest `_steps` rank first (hoisted
    scalars, forward values, then each derivation step's statements), ties in base order:
    each step's block is printed once, in step order where dependencies allow.
    """
    deep = deep_first(list(outputs))
    early = scalars_of_scalars(deep)
    base = [n for n in deep if n in early] + [n for n in deep if n not in early]
    position = {n: k for k, n in enumerate(base)}
    users: dict[Expr, list[Expr]] = {n: [] for n in base}
    for n in base:
        for i in set(n.inputs):
            users[i].append(n)
    step = _steps(base, users, notes, forward, early)
    # Within a step, the statements of one named value (a parameter's new value) stay together:
    # a node sorts by the position of the nearest named node or output it feeds, then its own.
    kept = set(outputs)
    owner: dict[Expr, int] = {}
    for n in reversed(base):
        named = n.is_leaf or n in notes.labels or n in kept or not users[n]
        owner[n] = position[n] if named else min(owner[u] for u in users[n])
    key = {n: (step[n], owner[n], position[n]) for n in base}
    waiting = {n: len(set(n.inputs)) for n in base}
    ready = [(key[n], n) for n in base if waiting[n] == 0]
    heapq.heapify(ready)
    order: list[Expr] = []
    while ready:
        _, n = heapq.heappop(ready)
        order.append(n)
        for u in users[n]:
            waiting[u] -= 1
            if waiting[u] == 0:
                heapq.heappush(ready, (key[u], u))
    return order


def _steps(
    base: list[Expr], users: dict[Expr, list[Expr]], notes: Notes, forward: set[Expr],
    early: set[Expr],
) -> dict[Expr, int]:
    """The step each statement is printed with: -1 for hoisted scalars and leaves, 0 for
    forward values, the derivation step of the forward node whose rule built a gradient node.

    Other statements (an optimizer's arithmetic on a gradient) go with the latest step among
    their inputs; one that needs no gradient at all (``0.9 * m``, the first half of a moment
    update) goes with its first user, so it is computed where it is used, not at the top.
    """
    last = 1 + max(notes.steps.values(), default=0)
    step: dict[Expr, int] = {}
    glue: list[Expr] = []
    for n in base:
        if n in early or n.is_leaf:
            step[n] = -1
        elif n in forward:
            step[n] = 0
        elif n in notes.origins:
            step[n] = notes.steps.get(notes.origins[n], last)
        else:
            step[n] = max((step[i] for i in n.inputs), default=0)
            glue.append(n)
    for n in reversed(glue):
        if step[n] <= 0 and users[n]:
            step[n] = max(0, min(step[u] for u in users[n]))
    return step


def scalars_of_scalars(order: list[Expr]) -> set[Expr]:
    """The scalars computed from scalar inputs alone: `schedule` prints them first.

    Adam's step count, bias corrections and step size then read as a person writes them:
    once, before the arrays, not interleaved with the first parameter's update.
    """
    early: set[Expr] = set()
    for n in order:
        if n.shape == () and not n.is_leaf and all(
            i in early or (i.is_leaf and i.shape == ()) for i in n.inputs
        ):
            early.add(n)
    return early


def plan_buffers(
    order: list[Expr], outputs: list[Expr], updates: Mapping[Expr, Expr],
    skipped: Set[Expr] = frozenset(),
) -> dict[Expr, Expr]:
    """Which statements can write into an existing array instead of allocating a new one.

    A statement of an elementwise op may reuse an input's array when that array is a
    temporary of the same shape and dtype that nothing reads afterwards (neither the value,
    nor a view of it, nor a value already sharing its memory); the final value of a parameter
    update may be written straight into the parameter once the old value is no longer read.
    Failing those, it takes any temporary of its shape and dtype that died earlier, as a careful
    person reuses one scratch array: fresh large arrays cost page faults on every call.
    ``skipped`` are statements never printed (a product folded into a gemm, `codegen.blas`):
    they have no array to lend. Returns {node: the node whose array it reuses}.
    """
    statements = [n for n in order if not n.is_leaf and n.op.name != "size"]
    last_use: dict[Expr, int] = {}
    for i, n in enumerate(statements):
        for x in n.inputs:
            last_use[x] = i
    kept = set(outputs) | set(updates.values())
    for n in kept:
        last_use[n] = len(statements)
    targets = {new: leaf for leaf, new in updates.items()}
    root: dict[Expr, Expr] = {}
    # The last statement reading any value held in a root's array (the value, its views, what
    # was written into it): the array is free after that. Kept up to date as values join it.
    dead_at: dict[Expr, int] = {}
    views: set[Expr] = set()
    scratch: dict[tuple[object, str], list[Expr]] = {}  # dead-able arrays by shape and dtype

    def root_of(n: Expr) -> Expr:
        return root.get(n, n)

    def free_after(buffer_root: Expr, i: int) -> bool:
        return dead_at.get(buffer_root, last_use.get(buffer_root, -1)) <= i

    def may_hold(n: Expr, buffer_root: Expr) -> bool:
        # A parameter's array may hold temporaries, and finally its own new value, but never
        # another kept value: the parameter's final write would overwrite it.
        return not buffer_root.is_leaf or n not in kept or targets.get(n) is buffer_root

    plan: dict[Expr, Expr] = {}
    for i, n in enumerate(statements):
        if n.op.is_view:
            root[n] = root_of(n.inputs[0])
            views.add(n)
        if _writes_into(n) and n.shape != ():
            for x in _candidates(n, targets.get(n), views, kept, updates):
                if (
                    x not in skipped and x.shape == n.shape and x.dtype == n.dtype
                    and may_hold(n, root_of(x)) and free_after(root_of(x), i)
                    and not (x in views and root_of(x).is_leaf)
                ):
                    plan[n] = x
                    root[n] = root_of(x)
                    break
            else:
                # A dead scratch array; strictly dead (``i - 1``) so that no input reads it.
                for r in reversed(scratch.get((n.shape, n.dtype), [])):
                    if free_after(r, i - 1):
                        plan[n] = r
                        root[n] = r
                        break
        if n not in plan and n not in views and n not in skipped and _fresh_array(n):
            scratch.setdefault((n.shape, n.dtype), []).append(n)
        r = root_of(n)
        dead_at[r] = max(dead_at.get(r, last_use.get(r, -1)), last_use.get(n, -1))
    return plan


def _candidates(
    n: Expr, own: Expr | None, views: set[Expr], kept: set[Expr], updates: Mapping[Expr, Expr]
) -> list[Expr]:
    """The arrays ``n``'s statement may write into, best first: its parameter's own array
    (for a parameter's new value), then its inputs that are temporaries or updated leaves."""
    candidates: list[Expr] = [] if own is None else [own]
    for x in n.inputs:
        # A reshaped temporary is its array under another shape (or, where numpy had to copy,
        # an array of its own): writable either way. Other views may be read-only
        # (broadcast_to) or strided.
        if (x in views and x.op.name != "reshape") or x in kept or x.op.name in (
            "size", "constant"
        ):
            continue
        if x.is_leaf and x not in updates:
            continue  # the caller's data is never written
        if _alias(x):
            continue  # prints as its argument: an alias, not a fresh array
        candidates.append(x)
    return candidates


def _fresh_array(node: Expr) -> bool:
    """Whether ``node``'s statement makes a large new array that later statements may reuse.

    Only large arrays (`is_large`) are worth it: reusing small ones buys nothing and would only
    obscure the code.
    """
    if node.shape == () or node.op.name in ("size", "constant") or _alias(node):
        return False
    return is_large(node.shape)


def _writes_into(node: Expr) -> bool:
    """Whether ``node``'s statement can write into an existing array (``out=``)."""
    if node.op is Fused:
        return writes_into(node)
    return node.op.inplace is not None


def _alias(node: Expr) -> bool:
    """A sympy body that is just its argument prints as that name: no array of its own."""
    return node.op.name == "elementwise" and node.attr("body").is_Symbol


def buffer_root(node: Expr, plan: Mapping[Expr, Expr]) -> Expr:
    """The node whose array ``node``'s value ends up in, following buffer reuse."""
    while node in plan:
        node = plan[node]
    return node


def views_used_once(
    order: list[Expr], kept: list[Expr], labels: Mapping[Expr, str]
) -> set[Expr]:
    """The views whose one use is a later statement: they print inline there.

    A view used twice keeps its line (one name for one value), and so do a returned or written
    view and one the user named. Buffer reuse is unaffected: `plan_buffers` reasons about
    nodes, and a view inlined still shares its source's memory, never a buffer of its own.
    """
    uses = Counter(i for node in order if not node.is_leaf for i in node.inputs)
    kept_set = set(kept)
    return {
        node for node in order
        if not node.is_leaf and node.op.is_view and uses[node] == 1
        and node not in kept_set and node not in labels
    }


def array_root(node: Expr, reuse: Mapping[Expr, Expr]) -> Expr:
    """The node whose array ``node``'s value lives in: through buffer reuse and views."""
    while True:
        if node in reuse:
            node = reuse[node]
        elif not node.is_leaf and node.op.is_view:
            node = node.inputs[0]
        else:
            return node


def frees(
    order: Sequence[Expr], reuse: Mapping[Expr, Expr], kept: Set[Expr],
    relocated: Mapping[Expr, Expr],
) -> dict[Expr, list[Expr]]:
    """``{statement: the values held in arrays nothing reads after it}``, for ``del`` lines.

    A local name keeps its array alive until the function returns; deleting the names of an
    array the rest of the step does not read lets the backward pass reuse its memory, which
    lowers the step's peak (the forward pass's activations, the softmax's scratch). Only
    arrays worth it are listed: batch-sized ones (`FREE_MIN_ROW`) or large ones, that are
    neither kept (returned, written to a parameter) nor an argument, and only where a later
    statement still allocates. An array is identified by its root (`array_root`), and read by
    any value held in it or viewing it.
    ``relocated`` maps statements never printed (folded into one BLAS call) to the statement
    that reads their inputs in their place.
    """
    last_read: dict[Expr, Expr] = {}
    held: dict[Expr, list[Expr]] = {}
    last_alloc = -1
    for k, n in enumerate(order):
        if n.is_leaf:
            continue
        at = relocated.get(n, n)
        for i in n.inputs:
            last_read[array_root(i, reuse)] = at
        held.setdefault(array_root(n, reuse), []).append(n)
        if (n.shape != () and n not in reuse and not n.op.is_view and n not in relocated
                and n.op.name not in ("size", "constant")):
            last_alloc = k
    position = {n: k for k, n in enumerate(order)}
    result: dict[Expr, list[Expr]] = {}
    for root, statement in last_read.items():
        if root.is_leaf or root.shape == () or position[statement] >= last_alloc:
            continue
        if any(m in kept for m in held.get(root, [])) or root.op.name in ("size", "constant"):
            continue
        if not _worth_freeing(root.shape):
            continue
        result.setdefault(statement, []).extend(held[root])
    return result


# A batch-sized array is worth a ``del`` from this many values per row (the batch axis counts
# as 1): a softmax's (N, 10) logits are; its (N, 1) row sums, a tenth of that, are not worth
# the line.
FREE_MIN_ROW = 8


def _worth_freeing(shape: tuple) -> bool:
    if all(isinstance(d, int) for d in shape):
        return is_large(shape)
    row = 1
    for d in shape:
        row *= d if isinstance(d, int) else 1
    return row >= FREE_MIN_ROW
