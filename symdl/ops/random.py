"""Random draws: a `numpy.random.Generator` argument and the draws made from it.

Randomness is an argument. ``sd.rng("rng")`` declares a generator input; a generated function
that draws takes a ``numpy.random.Generator`` there, so a run is reproducible from a seed and
every call draws afresh (the generator's state advances).

A draw is not a function of its inputs: two calls of ``uniform(rng, (3,))`` are two independent
draws, which hash-consing would merge into one node. Each draw therefore carries a serial
(``draw``), a hidden attribute (`Op.hidden_attrs`): it keeps distinct draws distinct nodes, and
one draw used twice (dropout's mask, read by the forward value and by the gradient) is one node,
computed once per call. The serial is never printed and nothing orders by it, so the generated
code depends on the graph alone, not on what else the process built. A draw is not
differentiable, not elementwise math and never folded, so no pass merges, fuses or precomputes
it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, InvalidNameError, ShapeError
from ..ir import Expr
from ..types import FLOAT_DTYPES, Shape, as_dtype, as_shape, broadcast_shapes, format_shape
from . import elementwise as ew
from .base import FUNC, Latex, Leaf, Op, as_expr, latex_literal, register, require_float

GENERATOR = "generator"
"""The dtype of an `rng` leaf: not an array dtype, so no arithmetic accepts it."""

# Serials that tell draws apart (see the module docstring); their values never print.
_serials = itertools.count(1)


@register
class Rng(Leaf):
    """a numpy.random.Generator given at run time, which draws advance"""

    name = "rng"


def rng(name: str) -> Expr:
    """Declare a random generator argument: ``rng = sd.rng("rng")``.

    Functions whose outputs draw from it (`symdl.random.uniform`, `dropout`, ...) take a
    ``numpy.random.Generator`` there (``np.random.default_rng(seed)``) and advance it on every
    call. Like other leaves, asking twice for the same name gives the same node.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidNameError(f"rng: name must be a non-empty string, got {name!r}")
    return Rng.make(name=name, shape=(), dtype=GENERATOR)


def check_rng(op: str, generator: object) -> Expr:
    """``generator`` if it is an `rng` leaf; a TypeError naming ``op`` and the fix otherwise."""
    if isinstance(generator, Expr) and generator.op is Rng:
        return generator
    got = repr(generator) if isinstance(generator, Expr) else type(generator).__name__
    raise TypeError(
        f"{op}: the generator must be declared with sd.rng('rng') and passed to the generated "
        f"function as a numpy.random.Generator at run time; got {got}"
    )


def _float_dtype(op: str, dtype: object) -> str:
    name = as_dtype(dtype)
    if name not in FLOAT_DTYPES:
        raise DTypeError(f"{op}: dtype must be float32 or float64, got {name}")
    return name


class Draw(Op):
    """A fresh random array from the generator (the first input) on every call."""

    differentiable = False  # a sample has no derivative with respect to anything
    hidden_attrs = ("draw",)

    @classmethod
    def text_form(cls, node: Expr, operands: Sequence[str]) -> tuple[str, int]:
        """``uniform(rng, (N, 3))``: the generator and the shape, never the serial."""
        return f"{cls.name}({', '.join([*operands, format_shape(node.shape)])})", 100


@register
class Uniform(Draw):
    """rng.random(shape, dtype): uniform on [0, 1)"""

    name, hint = "uniform", "uniform"
    latex = latex_literal(r"\mathcal{U}[0, 1)")

    @classmethod
    def infer(cls, rng: Expr, *, shape: Shape, dtype: str, draw: int) -> tuple[Shape, str]:
        return shape, dtype


@register
class Normal(Draw):
    """rng.standard_normal(shape, dtype): normal with mean 0 and variance 1"""

    name, hint = "normal", "normal"
    latex = latex_literal(r"\mathcal{N}(0, 1)")

    @classmethod
    def infer(cls, rng: Expr, *, shape: Shape, dtype: str, draw: int) -> tuple[Shape, str]:
        return shape, dtype


@register
class Bernoulli(Draw):
    """rng.random(shape, dtype) < p: True with probability p (bool)

    ``dtype`` is the precision of the uniform draw compared with ``p``.
    """

    name, hint = "bernoulli", "mask"
    latex = Latex(r"\mathrm{{Bernoulli}}\left({1}\right)", FUNC)

    @classmethod
    def infer(
        cls, rng: Expr, p: Expr, *, shape: Shape, dtype: str, draw: int
    ) -> tuple[Shape, str]:
        if p.dtype not in FLOAT_DTYPES:
            raise DTypeError(f"bernoulli: p must be a float probability, got {p.dtype}")
        if broadcast_shapes("bernoulli", p.shape, shape) != shape:
            raise ShapeError(
                f"bernoulli: p of shape {format_shape(p.shape)} does not broadcast to the draw's "
                f"shape {format_shape(shape)}; pass a scalar p or one of a broadcastable shape"
            )
        return shape, "bool"


def draw(op: type[Draw], generator: Expr, *inputs: Expr, **attrs: Any) -> Expr:
    """A new draw of ``op``: a node of its own, distinct from every earlier draw."""
    return op.make(generator, *inputs, **attrs, draw=next(_serials))


def probability(op: str, p: object) -> Expr:
    """``p`` as an expression; a Python number must lie in [0, 1]."""
    if not isinstance(p, Expr) and isinstance(p, (int, float)) and not 0 <= p <= 1:
        raise ValueError(f"{op}: p must be a probability in [0, 1], got {p!r}")
    return as_expr(p, op)


# --------------------------------------------------------------------------- constructors


def uniform(
    rng: Expr, shape: object = (), low: object = 0.0, high: object = 1.0,
    dtype: object = "float32",
) -> Expr:
    """Samples uniform on ``[low, high)``, fresh on every call: ``rng.random(shape, dtype)``
    scaled to the interval (numpy's ``Generator.uniform``; float32 by default, as symdl's
    placeholders). ``shape`` may hold size names or be ``x.shape``: ``uniform(rng, x.shape)``.
    ``low`` and ``high`` may be numbers or scalar expressions.
    """
    generator = check_rng("uniform", rng)
    dtype = _float_dtype("uniform", dtype)
    u = draw(Uniform, generator, shape=as_shape(shape, where="uniform"), dtype=dtype)
    if _is_number(low, 0) and _is_number(high, 1):
        return u  # exactly the generator's numbers: no arithmetic on them
    return low + (high - low) * u  # type: ignore[operator]


def normal(
    rng: Expr, shape: object = (), loc: object = 0.0, scale: object = 1.0,
    dtype: object = "float32",
) -> Expr:
    """Normal samples with mean ``loc`` and standard deviation ``scale``, fresh on every call:
    ``loc + scale * rng.standard_normal(shape, dtype)`` (numpy's ``Generator.normal``)."""
    generator = check_rng("normal", rng)
    dtype = _float_dtype("normal", dtype)
    z = draw(Normal, generator, shape=as_shape(shape, where="normal"), dtype=dtype)
    if _is_number(loc, 0) and _is_number(scale, 1):
        return z
    return loc + scale * z  # type: ignore[operator]


def bernoulli(rng: Expr, p: object, shape: object = ()) -> Expr:
    """A bool array, True with probability ``p``, fresh on every call: ``rng.random(shape) < p``.

    ``p`` is a number in [0, 1] or a float expression broadcasting to ``shape``. The result is
    bool (``.astype("float32")`` for 0/1 values); the uniform numbers compared with ``p`` are
    float32, or float64 where ``p`` is a float64 expression.
    """
    generator = check_rng("bernoulli", rng)
    prob = probability("bernoulli", p)
    precision = "float32" if is_weak_scalar(prob) else prob.dtype
    return draw(Bernoulli, generator, prob, shape=as_shape(shape, where="bernoulli"),
                dtype=precision)


def dropout(x: object, rate: object, rng: Expr) -> Expr:
    """Inverted dropout: each entry of ``x`` is zeroed with probability ``rate`` and the rest
    are scaled by ``1 / (1 - rate)``, so the mean is unchanged: ``x * mask / (1 - rate)`` with
    ``mask ~ bernoulli(1 - rate)``, a new mask on every call.

    The gradient uses the same mask as the forward value within one call (one draw, computed
    once). ``rate`` is a number in [0, 1) (0 returns ``x`` itself) or a float scalar expression,
    such as a placeholder fed 0.0 at test time (then the mask keeps everything and the result
    equals ``x``); fed 1.0, every entry is dropped and the result is 0.
    """
    x = as_expr(x, "dropout")
    generator = check_rng("dropout", rng)
    require_float("dropout", x)
    if not isinstance(rate, Expr):
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(
                f"dropout: rate must be a number in [0, 1) or a float scalar expression, got "
                f"{rate!r}; a rate of 1 would drop everything and divide by zero"
            )
        if rate == 0:
            return x
        keep = 1.0 - float(rate)
        # The uniform numbers compared with keep have x's precision.
        mask = draw(Bernoulli, generator, as_expr(keep), shape=x.shape, dtype=x.dtype)
        return x * mask / keep
    if rate.shape != () or rate.dtype not in FLOAT_DTYPES:
        raise DTypeError(
            f"dropout: rate must be a float scalar, got shape {format_shape(rate.shape)} and "
            f"dtype {rate.dtype}"
        )
    keep = 1 - ew.cast(rate, x.dtype)
    mask = draw(Bernoulli, generator, keep, shape=x.shape, dtype=x.dtype)
    # At rate 1 the mask is all False: dividing the zeros by the smallest positive number
    # instead of by 0 keeps the result 0, not 0/0.
    return x * mask / ew.maximum(keep, float(np.finfo(x.dtype).tiny))


def _is_number(value: object, target: float) -> bool:
    return not isinstance(value, Expr) and isinstance(value, (int, float)) and value == target


def is_weak_scalar(x: Expr) -> bool:
    """A Python number turned into a constant (it adapts to the other operand's dtype)."""
    return x.op.name == "constant" and bool(x.attr("weak"))
