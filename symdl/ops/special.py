"""Special functions numpy lacks: erf, erfc, lgamma, digamma and polygamma, from scipy.special.

Each op is one block like those of `symdl.ops.elementwise`, and declares ``needs =
("scipy.special",)``: a generated module imports ``scipy.special`` when, and only when, one of
its functions uses such an op (or an `sd.elementwise` body calls the sympy function one of them
computes, ``sympy.erf``), and its header says so. Only scipy's ufuncs are called, never its
BLAS or linalg, so generated code runs no second thread pool next to numpy's.

scipy itself is imported only when a constant is folded: ``import symdl`` stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ShapeError
from ..ir import Expr
from ..types import Shape
from .base import Latex, as_expr, latex_call, register
from .elementwise import UnaryOp, exp

if TYPE_CHECKING:
    import sympy
else:
    from ..lazy_imports import sympy  # sympy runs on first use, not on import

SCIPY_SPECIAL = ("scipy.special",)
# 2 / sqrt(pi), the factor in erf's derivative.
TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


def _scipy(function: str) -> Callable[..., np.ndarray]:
    """``scipy.special.<function>``, imported on the first call (constant folding only)."""

    def call(*args: np.ndarray) -> np.ndarray:
        import scipy.special

        return getattr(scipy.special, function)(*args)

    call.__name__ = function
    return call


@register
class Erf(UnaryOp):
    """the error function, 2 / sqrt(pi) * integral of exp(-t**2) from 0 to x"""

    name, numpy = "erf", "scipy.special.erf({0})"
    ufunc, inplace = "scipy.special.erf", "scipy.special.erf({0}, out={out})"
    fold, needs = staticmethod(_scipy("erf")), SCIPY_SPECIAL
    sympy_form = staticmethod(lambda a: sympy.erf(a))
    hint, latex = "erf_{0}", latex_call(r"\operatorname{erf}")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * (exp(-(x * x)) * TWO_OVER_SQRT_PI),)


@register
class Erfc(UnaryOp):
    """the complementary error function 1 - erf(x), accurate where erf(x) is near 1"""

    name, numpy = "erfc", "scipy.special.erfc({0})"
    ufunc, inplace = "scipy.special.erfc", "scipy.special.erfc({0}, out={out})"
    fold, needs = staticmethod(_scipy("erfc")), SCIPY_SPECIAL
    sympy_form = staticmethod(lambda a: sympy.erfc(a))
    hint, latex = "erfc_{0}", latex_call(r"\operatorname{erfc}")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * (exp(-(x * x)) * -TWO_OVER_SQRT_PI),)


@register
class Lgamma(UnaryOp):
    """log |Gamma(x)| (scipy.special.gammaln); its derivative is digamma(x)"""

    name, numpy = "lgamma", "scipy.special.gammaln({0})"
    ufunc, inplace = "scipy.special.gammaln", "scipy.special.gammaln({0}, out={out})"
    fold, needs = staticmethod(_scipy("gammaln")), SCIPY_SPECIAL
    # sympy's loggamma is log(Gamma(x)), the same for x > 0 (gammaln takes |Gamma| below 0).
    sympy_form = staticmethod(lambda a: sympy.loggamma(a))
    hint, latex = "lgamma_{0}", latex_call(r"\log\Gamma")

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr) -> tuple[Expr]:
        return (g * digamma(x),)


@register
class Polygamma(UnaryOp):
    """the n-th derivative of digamma: psi^(n)(x); n = 0 is digamma, the derivative of lgamma

    Printed by the code generator (`_print_Polygamma`): ``scipy.special.psi(x)`` for n = 0, and
    ``(-1)**(n+1) n! zeta(n + 1, x)`` above, through the Hurwitz zeta ufunc, which keeps
    float32 (scipy.special.polygamma returns float64).
    """

    name, needs = "polygamma", SCIPY_SPECIAL
    sympy_form = staticmethod(lambda a, *, n=0: sympy.polygamma(n, a))
    hint = "digamma_{0}"

    @classmethod
    def latex_form(cls, node: Expr) -> Latex:
        r"""``\psi(x)`` for digamma, ``\psi^{(n)}(x)`` above."""
        n = node.attr("n")
        return latex_call(r"\psi" if n == 0 else rf"\psi^{{({n})}}")

    @classmethod
    def infer(cls, x: Expr, *, n: int) -> tuple[Shape, str]:
        return super().infer(x)

    @classmethod
    def name_hint(cls, inputs: list[str], attrs: dict[str, object]) -> str:
        """``digamma_x`` for n = 0, ``trigamma_x`` for 1, ``polygamma3_x`` above."""
        n = attrs["n"]
        head = {0: "digamma", 1: "trigamma"}.get(n, f"polygamma{n}")  # type: ignore[call-overload]
        return f"{head}_{inputs[0]}" if inputs and inputs[0].isidentifier() else head

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, n: int) -> tuple[Expr]:
        return (g * polygamma(n + 1, x),)


def polygamma_text(n: int, x: str) -> str:
    """numpy text of psi^(n)(x) over the text ``x``: digamma, or a multiple of Hurwitz zeta."""
    if n == 0:
        return f"scipy.special.psi({x})"
    factor = (-1) ** (n + 1) * math.factorial(n)
    call = f"scipy.special.zeta({n + 1}, {x})"
    return call if factor == 1 else f"{factor} * {call}"


def erf(x: object) -> Expr:
    """Elementwise error function (``scipy.special.erf``); needs scipy in generated code."""
    return Erf.make(as_expr(x, "erf"))


def erfc(x: object) -> Expr:
    """Elementwise complementary error function 1 - erf(x) (``scipy.special.erfc``)."""
    return Erfc.make(as_expr(x, "erfc"))


def lgamma(x: object) -> Expr:
    """Elementwise log |Gamma(x)| (``scipy.special.gammaln``, JAX's ``lax.lgamma``).

    Its derivative is `digamma`. Below 0 the gradient is still digamma(x) (that of log|Gamma|).
    """
    return Lgamma.make(as_expr(x, "lgamma"))


def digamma(x: object) -> Expr:
    """Elementwise digamma psi(x), the derivative of lgamma (``scipy.special.psi``)."""
    return polygamma(0, x)


def polygamma(n: int, x: object) -> Expr:
    """Elementwise psi^(n)(x), the n-th derivative of digamma (``scipy.special.polygamma``).

    Raises:
        ShapeError: if ``n`` is not an int >= 0 (a static order, as one_hot's depth).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ShapeError(f"polygamma: the order n must be a static int >= 0, got {n!r}")
    return Polygamma.make(as_expr(x, "polygamma"), n=int(n))
