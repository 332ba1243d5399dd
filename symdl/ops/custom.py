"""User-defined elementwise functions from sympy expressions.

``softplus = sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus")`` makes an
op whose body is a sympy expression over scalar symbols. Its derivative with respect to each
argument is ``sympy.diff`` of the body: a new elementwise node, so gradients of gradients work.
The code generator prints bodies with sympy's numpy printer; derivations print them as LaTeX.
"""

from __future__ import annotations

import functools
import inspect
import keyword
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..errors import ElementwiseBodyError, InvalidNameError, NoDerivativeError, ShapeError
from ..ir import Expr
from ..types import Shape, broadcast_shapes
from . import elementwise as _ew
from . import shape as _shape
from .base import (
    ATOM,
    FUNC,
    NEG,
    OPS,
    POSTFIX,
    PROD,
    SUM,
    Latex,
    Op,
    as_expr,
    constant,
    register,
    require_float,
)

if TYPE_CHECKING:
    import sympy
else:
    from ..lazy_imports import sympy  # sympy runs on first use, not on import


def unevaluated(body: sympy.Basic) -> list[sympy.Basic]:
    """The unevaluated operations in ``body`` (outermost first; empty when it has none)."""
    # What sympy leaves unevaluated: operations on expressions (not functions of numbers),
    # which no numpy printer can write. `.doit()` evaluates them where sympy can.
    kinds = (
        sympy.Derivative,
        sympy.Subs,
        sympy.Limit,
        sympy.Order,
        sympy.concrete.expr_with_limits.ExprWithLimits,  # Integral, Sum, Product
    )
    return [e for e in sympy.preorder_traversal(body) if isinstance(e, kinds)]


@register
class Elementwise(Op):
    """a sympy expression applied elementwise to its inputs (with broadcasting)

    The shape and dtype are those of the inputs the body uses: what its printed expression
    computes. An input the body ignores (``d(a * exp(-b**2))/da`` is ``exp(-b**2)``) stays an
    input, with derivative 0, but does not shape the result; `ElementwiseFunction` broadcasts
    a user's call to all its arguments explicitly.
    """

    name = "elementwise"
    elementwise_math = True
    hint = "{fname}_{0}"

    @staticmethod
    def sympy_form(
        *args: sympy.Expr, body: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fname: str
    ) -> sympy.Expr:
        return body.xreplace(dict(zip(symbols, args)))

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""The body written out by sympy: ``\log\left(e^{z} + 1\right)``."""
        # sympy writes each argument's marker where the argument goes; the rest is literal.
        marks = {s: f"\x00{i}\x00" for i, s in enumerate(node.attr("symbols"))}
        if all(d == 1 for d in node.shape):
            text = sympy.latex(node.attr("body"), symbol_names=marks)
        else:
            # Over tensors a product in the body is elementwise: written \odot as everywhere
            # on the page, since ``v e^{-v}`` beside a matrix product would read as one.
            text = sympy.latex(node.attr("body"), symbol_names=marks, mul_symbol=r" \odot ")
            text = re.sub(r"(?<![\w}])(\d+(?:\.\d+)?) \\odot ", r"\1 \\, ", text)
        template = text.replace("{", "{{").replace("}", "}}")
        for i in range(len(marks)):
            template = template.replace(f"\x00{i}\x00", f"{{{i}}}")
        return Latex(template, _body_precedence(node.attr("body")), (ATOM,) * len(marks))

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """A call of the user's function: ``softplus(z)``."""
        return f"{node.attr('fname')}({', '.join(operands)})", 100

    @classmethod
    def infer(
        cls, *xs: Expr, body: sympy.Expr, symbols: tuple[sympy.Symbol, ...], fname: str
    ) -> tuple[Shape, str]:
        for x in xs:
            require_float(fname, x)
        used = [x for x, s in zip(xs, symbols, strict=True) if s in body.free_symbols]
        return broadcast_shapes(fname, *(x.shape for x in used)), _ew._promote(fname, *used)

    @staticmethod
    def vjp(
        g: Expr, out: Expr, *xs: Expr, body: sympy.Expr, symbols: tuple[sympy.Symbol, ...],
        fname: str,
    ) -> tuple[Expr | None, ...]:
        cotangents: list[Expr | None] = []
        for x, s in zip(xs, symbols):
            d = sympy.diff(body, s)
            left = unevaluated(d)
            if left:
                # floor, Mod: sympy returns the derivative unevaluated; it has no numpy form.
                raise NoDerivativeError(
                    f"{fname}: sympy cannot differentiate {body} with respect to {s}; it leaves "
                    f"{left[0]} unevaluated. Give {fname} a body sympy can differentiate, or "
                    f"take the gradient with respect to leaves {fname} does not depend on"
                )
            if d == 0:
                cotangents.append(None)
                continue
            local = _apply_body(d, symbols, xs, f"d{fname}_d{s.name}")
            cotangents.append(_ew.sum_to(g * local, x.shape))
        return tuple(cotangents)


def _body_precedence(body: sympy.Expr) -> int:
    """How tightly the body as sympy writes it binds: a sum (``z + z \\sigma``) is no atom,
    so ``\\bar{h} \\odot (A + B)`` keeps its brackets."""
    if isinstance(body, sympy.Add):
        return SUM
    if isinstance(body, sympy.Mul):
        # sympy writes a negative coefficient first (``- x y``) and a quotient as \frac.
        if body.could_extract_minus_sign():
            return NEG
        return ATOM if sympy.fraction(body)[1] != 1 else PROD
    if isinstance(body, sympy.Pow):
        return ATOM if body.exp.is_negative else POSTFIX
    if isinstance(body, (sympy.Symbol, sympy.Number)):
        return ATOM if not (isinstance(body, sympy.Number) and body < 0) else NEG
    return FUNC


def _apply_body(
    body: sympy.Expr, symbols: tuple[sympy.Symbol, ...], xs: tuple[Expr, ...], fname: str
) -> Expr:
    """The node computing ``body`` elementwise; a constant body gives a (weak) constant."""
    if not body.free_symbols:
        return as_expr(float(body))
    return Elementwise.make(*xs, body=body, symbols=symbols, fname=fname)


class ElementwiseFunction:
    """A callable made by `elementwise`: call it on expressions to apply the function."""

    def __init__(self, body: sympy.Expr, symbols: tuple[sympy.Symbol, ...], name: str) -> None:
        self.body = body
        self.symbols = symbols
        self.name = name

    def __call__(self, *args: object) -> Expr:
        if len(args) != len(self.symbols):
            raise TypeError(f"{self.name} takes {len(self.symbols)} argument(s), got {len(args)}")
        xs = tuple(as_expr(a, self.name) for a in args)
        for x in xs:
            require_float(self.name, x)
        # f(a, b) has the broadcast shape and dtype of all its arguments, used or not.
        shape = broadcast_shapes(self.name, *(x.shape for x in xs))
        dtype = _ew._promote(self.name, *xs)
        if not self.body.free_symbols:
            return _shape.broadcast_to(constant(float(self.body), dtype), shape)
        result = _apply_body(self.body, self.symbols, xs, self.name)
        return _shape.broadcast_to(_ew.cast(result, dtype), shape)

    def __repr__(self) -> str:
        args = ", ".join(s.name for s in self.symbols)
        return f"<elementwise {self.name}({args}) = {self.body}>"


def elementwise(fn: Callable[..., sympy.Expr], name: str) -> ElementwiseFunction:
    """Define an elementwise function from a sympy expression; its derivative comes from sympy.

    ``fn`` receives one real sympy symbol per parameter and returns a sympy expression, for
    example ``sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus")``.
    """
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise InvalidNameError(f"elementwise: name must be a Python identifier, got {name!r}")
    params = list(inspect.signature(fn).parameters)
    if not params:
        raise ShapeError(f"elementwise {name}: the function must take at least one argument")
    symbols = tuple(sympy.Symbol(p, real=True) for p in params)
    body = sympy.sympify(fn(*symbols))
    if not isinstance(body, sympy.Expr):
        raise TypeError(f"elementwise {name}: the function must return a sympy expression")
    unknown = body.free_symbols - set(symbols)
    if unknown:
        raise ShapeError(
            f"elementwise {name}: the body uses symbols {sorted(map(str, unknown))} that are not "
            "parameters of the function; pass constants as numbers"
        )
    left = unevaluated(body)
    if left:
        raise ElementwiseBodyError(
            f"elementwise {name}: the body holds the unevaluated {type(left[0]).__name__} "
            f"{left[0]}, which has no numpy form; evaluate it in the function (return "
            f"`(...).doit()`), or write the result out with sympy functions"
        )
    undefined = sorted({str(f.func) for f in body.atoms(sympy.core.function.AppliedUndef)})
    if undefined:
        # An undefined sympy function has no numpy meaning; its name would reach generated code.
        raise InvalidNameError(
            f"elementwise {name}: the body calls undefined functions {undefined}; use sympy's "
            "own functions (sympy.exp, sympy.log, ...) or another sd.elementwise"
        )
    return ElementwiseFunction(body, symbols, name)


# --------------------------------------------------------------------------- beyond numpy


@functools.cache
def special_functions() -> dict[type, type[Op]]:
    """Each sympy function numpy lacks that some op computes (``sympy.erf``), with that op.

    Read from the ops' facts: an op that ``needs`` a module beyond numpy, whose sympy form is
    a call of one sympy function. Printers of sympy bodies (a user's `elementwise`, a fused
    statement) write such a call as the op does (``sympy.erf(z)`` as ``scipy.special.erf(z)``),
    and the module imports what the op needs.
    """
    table: dict[type, type[Op]] = {}
    for op in OPS.values():
        if op.needs and op.sympy_form is not None:
            head = type(op.sympy_form(sympy.Symbol("a", real=True)))
            table.setdefault(head, op)
    return table


def modules_needed(node: Expr) -> tuple[str, ...]:
    """The modules beyond numpy that ``node``'s generated code calls: its op's `needs`, and
    for a node with a sympy body (`elementwise`, a fused statement), those of the functions
    the body calls (``scipy.special`` for ``sympy.erf``)."""
    found = set(node.op.needs)
    body = node.kwargs.get("body")
    if isinstance(body, sympy.Basic):
        table = special_functions()
        for call in body.atoms(sympy.Function):
            op = table.get(type(call))
            if op is not None:
                found.update(op.needs)
    return tuple(sorted(found))


def functions_needing(node: Expr) -> tuple[str, ...]:
    """The names of the ops beyond numpy that ``node`` computes (``erf``), for a module's
    header: its own op's name, or those a sympy body calls."""
    names = {node.op.name} if node.op.needs else set()
    body = node.kwargs.get("body")
    if isinstance(body, sympy.Basic):
        table = special_functions()
        names.update(table[type(c)].name for c in body.atoms(sympy.Function)
                     if type(c) in table)
    return tuple(sorted(names))
