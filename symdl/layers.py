"""Model building that stays symbolic: dense layers and MLPs as plain functions.

Each helper returns the output expression and an ordered ``{parameter: initializer}`` dict, the
one thing training needs besides the loss. Layers compose by merging those dicts::

    x = sd.placeholder("x", (None, 784))
    logits, params = sd.layers.mlp(x, [256, 10], activation=sd.relu)   # 784-256-10
    values = sd.init.initialize(params, seed=0)                        # {"dense0_W": ..., ...}

Nothing here is a class with hidden state: a layer is ``activation(x @ W + b)`` with named leaves,
and the generated code shows exactly that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from . import init as _init
from .errors import ShapeError
from .ir import Expr
from .ops.api import parameter

Params = dict[Expr, Callable]


def dense(
    x: Expr,
    units: int,
    *,
    name: str,
    activation: Callable[[Expr], Expr] | None = None,
    weight_init: Callable = _init.glorot_uniform,
    bias_init: Callable = _init.zeros,
    use_bias: bool = True,
) -> tuple[Expr, Params]:
    """``activation(x @ W + b)`` with parameters ``{name}_W`` ``(in, units)`` and ``{name}_b``.

    Args:
        x: input of shape ``(..., in)``.
        units: output width.
        name: prefix of the parameter names (they must be unique in a model).
        activation: an elementwise function such as `symdl.relu`, or None for linear.
        weight_init, bias_init: initializers (see `symdl.init`).

    Returns:
        The output (labeled ``name``; the pre-activation ``{name}_pre``) and
        ``{W: weight_init, b: bias_init}``.
    """
    if x.ndim < 1 or not isinstance(x.shape[-1], int):
        raise ShapeError(
            f"dense {name!r}: the input's last dimension must be a known size, got shape {x.shape}"
        )
    W = parameter(f"{name}_W", (x.shape[-1], units), dtype=x.dtype)
    params: Params = {W: weight_init}
    y = x @ W
    if use_bias:
        b = parameter(f"{name}_b", (units,), dtype=x.dtype)
        params[b] = bias_init
        y = y + b
    if activation is not None:
        y = activation(y.named(f"{name}_pre"))  # the pre-activation, named in generated code
    return y.named(name), params


def mlp(
    x: Expr,
    sizes: Sequence[int],
    *,
    activation: Callable[[Expr], Expr],
    name: str = "dense",
    weight_init: Callable | None = None,
    dropout: float | Expr = 0.0,
    rng: Expr | None = None,
) -> tuple[Expr, Params]:
    """A multi-layer perceptron: dense layers of ``sizes``, ``activation`` between them.

    The last layer is linear (it returns logits). Hidden layers use He initialization when the
    activation is `symdl.relu` and Glorot otherwise, unless ``weight_init`` says; layer ``i``'s
    parameters are ``{name}{i}_W`` and ``{name}{i}_b``. With ``dropout`` (a rate or a scalar
    rate placeholder, see `symdl.dropout`), each hidden layer's output is dropped out, drawing
    from ``rng`` (an `symdl.rng` generator, which the generated step then takes).
    """
    from .ops.api import dropout as _dropout
    from .ops.api import relu

    if not sizes:
        raise ShapeError("mlp: sizes must list at least one layer width")
    # A rate expression (a placeholder) is kept even where its value may be 0 at run time.
    drops = isinstance(dropout, Expr) or bool(dropout)
    if drops and rng is None:
        raise ValueError("mlp: dropout needs a generator to draw from: pass rng=sd.rng('rng')")
    hidden_init = weight_init or (_init.he_normal if activation is relu else _init.glorot_uniform)
    params: Params = {}
    h = x
    for i, units in enumerate(sizes):
        last = i == len(sizes) - 1
        h, p = dense(
            h, units, name=f"{name}{i}", activation=None if last else activation,
            weight_init=(weight_init or _init.glorot_uniform) if last else hidden_init,
        )
        if drops and not last:
            h = _dropout(h, dropout, rng)  # type: ignore[arg-type]
        params.update(p)
    return h, params


__all__ = ["Params", "dense", "mlp"]
