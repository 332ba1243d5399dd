"""Results in textbook form: a scalar divisor such as ``1/N`` factored out of the products.

``X^T (σ(z)/N − y/N)`` reads ``(1/N) X^T (σ(z) − y)`` on a page. `textbook_form` moves a
division by a scalar (a size such as ``N`` or a constant) outward through matrix products,
elementwise products, sums, transposes and negations, and joins ``a/s ± b/s`` into
``(a ± b)/s``. The value is unchanged (the derivation's evaluation test checks it); only the
display uses the rewritten graph.
"""

from __future__ import annotations

from ..ir import Expr, toposort
from ..ops.base import OPS, constant
from .latex import shown_value

__all__ = ["scalar_factor", "textbook_form"]

# Ops a divisor moves out of, by the operand positions it may come from.
_THROUGH = {"matmul": (0, 1), "multiply": (0, 1), "sum": (0,), "transpose": (0,),
            "negative": (0,)}


def _scalar_divisor(x: Expr) -> Expr | None:
    """``s`` if ``x`` is ``c / s`` with ``s`` a scalar size or constant, else None."""
    if x.op.name != "divide":
        return None
    s = shown_value(x.inputs[1])
    if s.shape != () or s.op.name not in ("size", "constant"):
        return None
    return x.inputs[1] if x.inputs[1].shape == () else None


def scalar_factor(x: Expr) -> tuple[Expr, Expr] | None:
    """``(k, c)`` if ``x`` is ``k c`` with ``k`` a number (``2``, ``2 / N``), else None."""
    if x.op.name != "multiply":
        return None
    for k in (0, 1):
        factor = shown_value(x.inputs[k])
        if factor.shape == () and _is_number(factor) and (
                x.inputs[1 - k].shape == x.shape):
            return factor, x.inputs[1 - k]
    return None


def _is_number(x: Expr) -> bool:
    """Whether ``x`` is computed from constants and sizes alone (``2``, ``2 / N``)."""
    return all(n.op.name in ("constant", "size") for n in toposort([x]) if n.is_leaf)


def _number(x: Expr) -> float | None:
    """The value of a scalar constant (through reshapes and broadcasts), else None."""
    x = shown_value(x)
    if x.op.name != "constant" or x.attr("value").array.size != 1:
        return None
    return float(x.attr("value").array.reshape(-1)[0])


def _collect_numbers(x: Expr) -> Expr | None:
    """A product with its numbers in front, constants multiplied into one:
    ``2 (0.5 λ w)`` -> ``λ w``, ``(2/N) h ⊙ g`` -> ``(2/N) (h ⊙ g)``; None if nothing moves."""
    factors: list[Expr] = []
    stack = [x]
    while stack:  # the product's factors, left to right
        n = stack.pop()
        if n.op.name == "multiply":
            stack.extend(reversed(n.inputs))
        else:
            factors.append(n)
    coefficient = 1.0
    for v in (_number(f) for f in factors):
        coefficient *= 1.0 if v is None else v
    numbers = [f for f in factors if _number(f) is None and f.shape == () and _is_number(f)]
    rest = [f for f in factors if _number(f) is None and f not in numbers]
    if not rest:
        return None
    product = rest[0]
    for f in rest[1:]:
        product = OPS["multiply"].make(product, f)
    front = [constant(coefficient, x.dtype)] if coefficient != 1.0 else []
    front += numbers
    if front:
        scale = front[0]
        for f in front[1:]:
            scale = OPS["multiply"].make(scale, f)
        product = OPS["multiply"].make(scale, product)
    return None if product is x else product


def _tidy(x: Expr) -> Expr:
    """``x``, a node just built, with its numbers collected or its like terms joined."""
    tidied = _like_terms(x) if x.op.name == "add" else (
        _collect_numbers(x) if x.op.name == "multiply" else None)
    if tidied is None or tidied.shape != x.shape or tidied.dtype != x.dtype:
        return x
    return tidied


def _like_terms(x: Expr) -> Expr | None:
    """A sum with its like terms joined (``k a + a`` -> ``(k + 1) a``); None if there are
    none. Terms keep the order of their first appearance."""
    terms: list[Expr] = []
    stack = [x]
    while stack:
        n = stack.pop()
        if n.op.name == "add":
            stack.extend(reversed(n.inputs))
        else:
            terms.append(n)
    groups: dict[Expr, float] = {}
    for t in terms:
        factor = scalar_factor(t)
        k = _number(factor[0]) if factor is not None else None
        rest, k = (factor[1], k) if factor is not None and k is not None else (t, 1.0)
        groups[rest] = groups.get(rest, 0.0) + k
    if len(groups) == len(terms):
        return None
    new: Expr | None = None
    for rest, k in groups.items():
        term = rest if k == 1.0 else _tidy(OPS["multiply"].make(constant(k, x.dtype), rest))
        new = term if new is None else OPS["add"].make(new, term)
    return new


def textbook_form(expr: Expr) -> Expr:
    """``expr`` with scalar divisors factored out (same value; see the module docstring)."""
    divide = OPS["divide"]
    memo: dict[Expr, Expr] = {}
    for node in toposort([expr]):
        if node.is_leaf:
            memo[node] = node
            continue
        inputs = [memo[i] for i in node.inputs]
        name = node.op.name
        new = None
        positions = _THROUGH.get(name, ())
        for k in positions:
            s = _scalar_divisor(inputs[k])
            if s is None or (name == "multiply" and _scalar_divisor(inputs[1 - k]) is not None):
                continue
            inner = [*inputs]
            inner[k] = inputs[k].inputs[0]
            new = divide.make(node.op.make(*inner, **node.kwargs), s)
            break
        if new is None and name == "matmul":  # A (k c) -> k (A c), k a number
            for k in (0, 1):
                factor = scalar_factor(inputs[k])
                if factor is not None:
                    inner = [*inputs]
                    inner[k] = factor[1]
                    new = OPS["multiply"].make(factor[0], node.op.make(*inner))
                    break
        if new is None and name in ("add", "subtract"):
            sa, sb = (_scalar_divisor(i) for i in inputs)
            if sa is not None and sa is sb:
                joined = _tidy(node.op.make(inputs[0].inputs[0], inputs[1].inputs[0]))
                new = divide.make(joined, sa)
        if new is None and name == "add":  # 2 x + x + x -> 4 x; a + a -> 2 a
            new = _like_terms(node.op.make(*inputs))
        if new is None and name == "multiply":
            new = _collect_numbers(node.op.make(*inputs))
        if new is not None and new.op.name == "divide" and new.inputs[0].shape != ():
            factor = scalar_factor(new.inputs[0])  # (k m) / s -> (k / s) m: 2/N X^T r
            if factor is not None:
                new = OPS["multiply"].make(divide.make(factor[0], new.inputs[1]), factor[1])
        if new is None or new.shape != node.shape or new.dtype != node.dtype:
            changed = any(a is not b for a, b in zip(inputs, node.inputs))
            new = node.op.make(*inputs, **node.kwargs) if changed else node
        memo[node] = new
    return memo[expr]
