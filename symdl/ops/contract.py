"""Contractions: `einsum` with numpy's subscripts, and `tensordot` built on it.

An einsum node keeps its subscripts in one explicit form (``"ij,jk->ik"``): implicit output
written out, ``...`` replaced by letters of its own, spaces dropped. Its gradient is again an
einsum per operand: the cotangent contracted with the other operands down to that operand's
letters (``C = A B``: ``A_bar = einsum("ik,jk->ij", C_bar, B)``), broadcast along letters only
that operand had (summed away in the forward pass), and put back on the diagonal where the
operand repeats a letter (a trace ``"ii->"``).
"""

from __future__ import annotations

import string
from collections.abc import Sequence

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir import Expr
from ..types import Dim, Shape, broadcast_shapes, format_shape, is_float
from . import elementwise as _ew
from . import reduce as _reduce
from . import shape as _shape
from .base import ATOM, MAX_HINT, PROD, Latex, Op, as_expr, constant, is_weak, register

# numpy's einsum takes ASCII letters only; an ellipsis takes the ones a formula leaves unused.
LETTERS = string.ascii_letters


@register
class Einsum(Op):
    """np.einsum(subscripts, *operands): sums of products over named axes"""

    name = "einsum"
    hint = "einsum_{0}"  # one operand (a trace); more are named by `name_hint`
    latex_rule = (
        r"C = \textstyle\sum A \, B \cdots \;\Rightarrow\; \bar{A} = \textstyle\sum \bar{C} \, "
        r"B \cdots \text{ over } A\text{'s indices (broadcast along those only } A \text{ had)}"
    )

    @classmethod
    def infer(cls, *xs: Expr, subscripts: str) -> tuple[Shape, str]:
        terms, output = _split(subscripts)
        sizes = _letter_sizes(subscripts, terms, xs)
        return tuple(sizes[letter] for letter in output), _dtype(xs)

    @staticmethod
    def vjp(g: Expr, out: Expr, *xs: Expr, subscripts: str) -> tuple[Expr | None, ...]:
        terms, output = _split(subscripts)
        sizes = _letter_sizes(subscripts, terms, xs)
        grads: list[Expr | None] = []
        for k, x in enumerate(xs):
            if not is_float(x.dtype):
                grads.append(None)
                continue
            others = [j for j in range(len(xs)) if j != k]
            reached = set(output).union(*(terms[j] for j in others))
            own = "".join(dict.fromkeys(terms[k]))  # x's letters, each once
            kept = "".join(letter for letter in own if letter in reached)
            gx = _contract([output, *(terms[j] for j in others)], kept,
                           [g, *(xs[j] for j in others)])
            if kept != own:
                # Letters only x had were summed away: x_bar is constant along them.
                gx = _shape.reshape(gx, [sizes[c] if c in kept else 1 for c in own])
                gx = _shape.broadcast_to(gx, [sizes[c] for c in own])
            if own != terms[k]:
                gx = _on_diagonal(gx, own, terms[k], sizes)
            grads.append(gx)
        return tuple(grads)

    @staticmethod
    def jvp(t: tuple[Expr | None, ...], out: Expr, *xs: Expr, subscripts: str) -> Expr | None:
        # Linear in each operand: the same formula with one operand replaced by its tangent,
        # whose batch axes get letters of their own that the output keeps (last).
        terms, output = _split(subscripts)
        total = None
        for k, tk in enumerate(t):
            if tk is None:
                continue
            free = [c for c in string.ascii_letters if c not in subscripts]
            batch = "".join(free[: tk.ndim - xs[k].ndim])
            spelled = [term + batch if j == k else term for j, term in enumerate(terms)]
            operands = [tk if j == k else x for j, x in enumerate(xs)]
            term_k = _contract(spelled, output + batch, operands)
            total = term_k if total is None else total + term_k
        return total

    @classmethod
    def name_hint(cls, inputs: Sequence[str], attrs: dict[str, object]) -> str:
        """The operands' names joined (``q_k``, as `matmul` names ``x_W``); one operand's
        einsum (a trace) is ``einsum_x``."""
        text = "_".join(inputs)
        if len(inputs) == 1 or len(text) > MAX_HINT:
            return super().name_hint(inputs, attrs)
        return text

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""An explicit sum over the contracted indices: ``\sum_{j} A_{ij} \, B_{jk}``.

        Where the result's axes are not in the order they first appear, the indices of the
        result are written after it: ``\left[\sum_{j} A_{ij} \, B_{jk}\right]_{ki}``.
        """
        terms, output = _split(node.attr("subscripts"))
        factors = [
            f"{{{{{{{i}}}}}}}_{{{{{term}}}}}" if term else f"{{{i}}}"
            for i, term in enumerate(terms)
        ]
        body = r" \, ".join(factors)
        seen = "".join(dict.fromkeys("".join(terms)))
        summed = [c for c in seen if c not in output]
        if summed:
            body = r"\textstyle\sum_{{" + ",".join(summed) + "}} " + body
        if output != "".join(c for c in seen if c in output):
            body = r"\left[" + body + r"\right]_{{" + output + "}}"
        return Latex(body, PROD, (ATOM,) * len(terms))

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """numpy's spelling: ``einsum('ij,jk->ik', a, b)``."""
        return f"einsum({node.attr('subscripts')!r}, {', '.join(operands)})", 100


# --------------------------------------------------------------------------- subscripts


def _split(subscripts: str) -> tuple[list[str], str]:
    """The operand terms and the output of an explicit, normalized formula."""
    inputs, output = subscripts.split("->")
    return inputs.split(","), output


def _described(xs: Sequence[Expr]) -> str:
    return ", ".join(format_shape(x.shape) for x in xs)


def _letter_sizes(subscripts: str, terms: Sequence[str], xs: Sequence[Expr]) -> dict[str, Dim]:
    """The size of each letter; a letter of two different sizes is a ShapeError naming it."""
    sizes: dict[str, Dim] = {}
    where: dict[str, int] = {}
    for k, (term, x) in enumerate(zip(terms, xs, strict=True)):
        if len(term) != x.ndim:
            raise ShapeError(_rank_message(subscripts, k, term, x))
        for letter, dim in zip(term, x.shape, strict=True):
            if letter in sizes and sizes[letter] != dim:
                j = where[letter]
                raise ShapeError(
                    f"einsum: letter {letter!r} in {subscripts!r} is {sizes[letter]} in operand "
                    f"{j} (shape {format_shape(xs[j].shape)}) but {dim} in operand {k} (shape "
                    f"{format_shape(x.shape)}); operands have shapes {_described(xs)}. Make the "
                    "sizes equal (sd.broadcast_to a size-1 axis explicitly) or rename the letter"
                )
            sizes.setdefault(letter, dim)
            where.setdefault(letter, k)
    return sizes


def _rank_message(subscripts: str, k: int, term: str, x: Expr) -> str:
    return (f"einsum: operand {k} has shape {format_shape(x.shape)} (rank {x.ndim}) but "
            f"{len(term)} letters {term!r} in {subscripts!r}; give one letter per axis, or "
            "'...' for the leading axes")


def _dtype(xs: Sequence[Expr]) -> str:
    if any(x.dtype == "bool" for x in xs):
        shown = ", ".join(x.dtype for x in xs)
        raise DTypeError(f"einsum: operands of dtypes {shown} include bool; cast it with "
                         ".astype('float32')")
    return _ew._promote("einsum", *xs)


def _parse(subscripts: object, xs: Sequence[Expr]) -> tuple[list[str], str, str]:
    """numpy's subscripts for operands ``xs``, as explicit terms with ``...`` spelled out, and
    the letters spelling it (none where no operand has ``...``).

    Implicit mode (no ``->``) keeps, as numpy does, the ellipsis axes and then the letters
    that appear exactly once, in alphabetical order.
    """
    if not isinstance(subscripts, str):
        raise ShapeError(f"einsum: subscripts must be a string such as 'ij,jk->ik', got "
                         f"{subscripts!r}")
    text = subscripts.replace(" ", "")

    def bad(why: str) -> ShapeError:
        return ShapeError(f"einsum: bad subscripts {subscripts!r}: {why}; write one letter per "
                          "axis, operands separated by ',', e.g. 'ij,jk->ik' or 'bij,bjk->bik'")

    unknown = sorted(set(text) - set(LETTERS + ",.->"))
    if unknown:
        raise bad(f"{unknown[0]!r} is not a letter")
    if text.count("->") > 1 or text.replace("->", "").count("-") or text.replace(
            "->", "").count(">"):
        raise bad("'->' must appear at most once, between the operands and the output")
    lhs, arrow, out = text.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(xs):
        raise ShapeError(
            f"einsum: subscripts {subscripts!r} name {len(terms)} operand(s), but "
            f"{len(xs)} were given (shapes {_described(xs)}); give one term per operand"
        )
    for term in [*terms, out]:
        if term.replace("...", "", 1).count("."):
            raise bad("'.' must come in one '...' per term")
    # Letters ... stands for: right-aligned, as numpy broadcasts it.
    ranks = [x.ndim - len(t.replace("...", "")) for t, x in zip(terms, xs, strict=True)
             if "..." in t]
    if any(r < 0 for r in ranks):
        k = next(i for i, t in enumerate(terms) if "..." in t and xs[i].ndim < len(t) - 3)
        raise ShapeError(
            f"einsum: operand {k} has shape {format_shape(xs[k].shape)} but {terms[k]!r} names "
            f"more axes than that in {subscripts!r}"
        )
    rank = max(ranks, default=0)
    free = [c for c in LETTERS if c not in text]
    dots = "".join(free[:rank])
    if not arrow:
        counts = "".join(terms).replace("...", "")
        once = sorted(c for c in set(counts) if counts.count(c) == 1)
        out = dots + "".join(once)
    elif "..." in out and not ranks:
        raise bad("the output has '...' but no operand has")
    spelled = []
    for t, x in zip(terms, xs, strict=True):
        r = x.ndim - len(t.replace("...", ""))
        spelled.append(t.replace("...", dots[rank - r:]))
    for k, (term, x) in enumerate(zip(spelled, xs, strict=True)):
        if len(term) != x.ndim:
            raise ShapeError(_rank_message(subscripts, k, terms[k], x))
    output = out.replace("...", dots)
    repeated = sorted(c for c in set(output) if output.count(c) > 1)
    if repeated:
        raise bad(f"the output repeats {repeated[0]!r}")
    missing = sorted(set(output) - set("".join(spelled)))
    if missing:
        raise bad(f"the output letter {missing[0]!r} names no operand axis")
    return spelled, output, dots


def _ellipsis_broadcast(subscripts: str, terms: list[str], xs: list[Expr], dots: str) -> list[Expr]:
    """Operands broadcast along the ``...`` axes where numpy would (size 1 against n)."""
    shapes = []
    for term, x in zip(terms, xs, strict=True):
        shapes.append(tuple(d for c, d in zip(term, x.shape, strict=True) if c in dots))
    # One size per letter of ``dots``: the operand with the most '...' axes has them all.
    target = broadcast_shapes(f"einsum {subscripts!r}: the '...' axes", *shapes)
    result = []
    for term, x in zip(terms, xs, strict=True):
        full = [target[dots.index(c)] if c in dots else d
                for c, d in zip(term, x.shape, strict=True)]
        result.append(_shape.broadcast_to(x, full))
    return result


def _contract(terms: Sequence[str], output: str, xs: Sequence[Expr]) -> Expr:
    """The einsum of ``xs``; one operand that only sums or permutes axes is a sum or transpose,
    which print as ``x.sum(axis=1)`` and ``x.T`` (views, no loop over the formula), and a
    product that sums nothing over operands whose axes end the output's (``"bi,i->bi"``) is
    ``a * b``, which numpy broadcasts and fusion joins with the elementwise math around it."""
    if len(xs) > 1 and all(output.endswith(t) and len(set(t)) == len(t) for t in terms):
        product = xs[0]
        for x in xs[1:]:
            product = _ew.multiply(product, x)
        if product.shape == tuple(_letter_sizes(output, terms, xs)[c] for c in output):
            return product
    if len(xs) == 1 and len(set(terms[0])) == len(terms[0]):
        (term,), (x,) = terms, xs
        summed = tuple(i for i, c in enumerate(term) if c not in output)
        kept = "".join(c for c in term if c in output)
        y = _reduce.sum(x, axis=summed) if summed else x
        return _shape.transpose(y, [kept.index(c) for c in output])
    return Einsum.make(*xs, subscripts=",".join(terms) + "->" + output)


def _on_diagonal(gx: Expr, own: str, term: str, sizes: dict[str, Dim]) -> Expr:
    """``gx`` over ``own`` (each letter once) written onto the diagonal of ``term`` (a letter
    repeated: ``ii``), zero elsewhere: a product with an identity matrix per repetition."""
    free = iter(c for c in LETTERS if c not in term)
    spelled, eyes = [], []
    for c in term:
        if c not in spelled:
            spelled.append(c)
            continue
        twin = next(free)
        eyes.append((c + twin, constant(np.eye(int(sizes[c]), dtype=gx.dtype))))
        spelled.append(twin)
    return Einsum.make(gx, *(e for _, e in eyes),
                       subscripts=",".join([own, *(s for s, _ in eyes)]) + "->" + "".join(spelled))


# A symbolic size (the batch size N) counts as this large when `in_pairs` chooses the order of
# the contractions: models run on batches of hundreds to thousands.
NOMINAL_SIZE = 1024


def in_pairs(node: Expr) -> Expr:
    """An einsum of three or more operands as einsums of two, in the order numpy's
    ``einsum_path`` finds cheapest for the operands' sizes (``a @ (b @ c)`` where ``b @ c`` is
    small). Each pair prints as a statement of its own, or as ``@``; one ``np.einsum(...,
    optimize=True)`` would search for that order again on every call (17x slower on a chain of
    three small matrices, benchmarks/bench_einsum.py).
    """
    terms, output = _split(node.attr("subscripts"))
    operands = list(zip(terms, node.inputs, strict=True))
    # einsum_path reads shapes only: zero-stride views stand in for the arrays.
    stand_ins = [np.broadcast_to(np.empty(()), [d if isinstance(d, int) else NOMINAL_SIZE
                                                for d in x.shape]) for x in node.inputs]
    search = "optimal" if len(operands) <= 4 else "greedy"
    path = np.einsum_path(node.attr("subscripts"), *stand_ins, optimize=search)[0]
    for step in path[1:]:
        # As numpy does: the contracted operands leave the list, their result joins its end.
        chosen = [operands[i] for i in sorted(step)]
        rest = [o for i, o in enumerate(operands) if i not in step]
        needed = set(output).union(*(t for t, _ in rest))
        letters = "".join(dict.fromkeys("".join(t for t, _ in chosen)))
        out = "".join(c for c in letters if c in needed) if rest else output
        value = _contract([t for t, _ in chosen], out, [x for _, x in chosen])
        operands = [*rest, (out, value)]
    ((_, value),) = operands
    return value


# --------------------------------------------------------------------------- public functions


def einsum(subscripts: str, *operands: object) -> Expr:
    """Einstein summation over named axes, as ``np.einsum``.

    ``sd.einsum("ij,jk->ik", a, b)`` is ``a @ b``; ``"bhqd,bhkd->bhqk"`` the scores of
    attention. Without ``->`` the output is, as in numpy, the letters that appear once, in
    alphabetical order. ``...`` stands for leading axes, broadcast as numpy broadcasts them;
    a letter repeated in one operand takes its diagonal (``"ii->"`` is the trace; that needs
    a static size). Unlike numpy, a letter must have the same size in every operand: a size-1
    axis against a larger one is refused rather than silently broadcast (broadcast it
    explicitly with `broadcast_to`).

    Raises:
        ShapeError: bad subscripts, a term per operand missing or one too many, a term whose
            letters do not match its operand's rank, or a letter of two sizes.
        DTypeError: a bool operand.
    """
    xs = [as_expr(x, "einsum") for x in operands]
    if not xs:
        raise ShapeError(f"einsum: {subscripts!r} needs at least one operand")
    dtype = _dtype(xs)
    # A Python number (or a size, N) adopts the other operands' dtype elsewhere, but numpy's
    # einsum makes it float64 or int64: give it the result's dtype to keep float32 in float32.
    xs = [x if not is_weak(x) else constant(x.attr("value").array, dtype) if x.op.is_leaf
          else _ew.cast(x, dtype) for x in xs]
    terms, output, dots = _parse(subscripts, xs)
    if dots:
        xs = _ellipsis_broadcast(subscripts, terms, xs, dots)
    for term, x in zip(terms, xs, strict=True):
        sizes = {c: d for c, d in zip(term, x.shape, strict=True)}
        symbolic = [c for c in set(term) if term.count(c) > 1 and isinstance(sizes[c], str)]
        if symbolic:
            raise ShapeError(
                f"einsum: {subscripts!r} repeats {symbolic[0]!r} in the term {term!r} over the "
                f"symbolic size {sizes[symbolic[0]]}; a diagonal needs a static size"
            )
    _letter_sizes(subscripts, terms, xs)  # the error names the letter and both operands
    return _contract(terms, output, xs)


def tensordot(a: object, b: object, axes: int | Sequence[object] = 2) -> Expr:
    """Sum of products over axes of ``a`` and ``b``, as ``np.tensordot``.

    ``axes=n`` contracts the last ``n`` axes of ``a`` with the first ``n`` of ``b``; a pair
    ``(axes_a, axes_b)`` (ints or sequences of equal length) contracts ``a``'s axes with
    ``b``'s, pairwise. The result has ``a``'s remaining axes, then ``b``'s. Built as an
    `einsum`, so the generated code reads as one with its subscripts.
    """
    a, b = as_expr(a, "tensordot"), as_expr(b, "tensordot")
    if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
        n = int(axes)
        if not 0 <= n <= min(a.ndim, b.ndim):
            raise ShapeError(
                f"tensordot: axes={n} needs that many axes in both operands, shapes "
                f"{format_shape(a.shape)} and {format_shape(b.shape)}"
            )
        axes_a, axes_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        try:
            first, second = axes  # type: ignore[misc]
        except (TypeError, ValueError):
            raise ShapeError(f"tensordot: axes must be an int or a pair of axis sequences, got "
                             f"{axes!r}") from None
        axes_a = [first] if isinstance(first, (int, np.integer)) else list(first)
        axes_b = [second] if isinstance(second, (int, np.integer)) else list(second)
        if len(axes_a) != len(axes_b):
            raise ShapeError(f"tensordot: axes {axes!r} pair {len(axes_a)} axes of a with "
                             f"{len(axes_b)} of b; give as many of each")
        axes_a = [_axis("a", a, ax) for ax in axes_a]
        axes_b = [_axis("b", b, ax) for ax in axes_b]
        if len(set(axes_a)) != len(axes_a) or len(set(axes_b)) != len(axes_b):
            raise ShapeError(f"tensordot: axes {axes!r} repeat an axis")
    for i, j in zip(axes_a, axes_b, strict=True):
        if a.shape[i] != b.shape[j]:
            raise ShapeError(
                f"tensordot: axis {i} of a (shape {format_shape(a.shape)}) has size {a.shape[i]} "
                f"but axis {j} of b (shape {format_shape(b.shape)}) has {b.shape[j]}; "
                "contracted axes must have equal sizes"
            )
    term_a = LETTERS[: a.ndim]
    rest = iter(LETTERS[a.ndim:])
    term_b = "".join(term_a[axes_a[axes_b.index(j)]] if j in axes_b else next(rest)
                     for j in range(b.ndim))
    output = "".join(c for i, c in enumerate(term_a) if i not in axes_a) + "".join(
        c for j, c in enumerate(term_b) if j not in axes_b)
    return einsum(f"{term_a},{term_b}->{output}", a, b)


def _axis(which: str, x: Expr, axis: object) -> int:
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not (
            -x.ndim <= axis < x.ndim):
        raise ShapeError(f"tensordot: axis {axis!r} of {which} is not an axis of shape "
                         f"{format_shape(x.shape)}")
    return int(axis) % x.ndim
