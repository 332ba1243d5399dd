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


# --------------------------------------------------------------------------- convolutional layers


def conv2d(
    x: Expr,
    filters: int,
    kernel_size: int | Sequence[int],
    *,
    name: str,
    strides: int | Sequence[int] = 1,
    padding: str | int | Sequence[object] = "VALID",
    dilation: int | Sequence[int] = 1,
    activation: Callable[[Expr], Expr] | None = None,
    data_format: str = "NHWC",
    weight_init: Callable | None = None,
    bias_init: Callable = _init.zeros,
    use_bias: bool = True,
) -> tuple[Expr, Params]:
    """``activation(conv2d(x, W) + b)`` with ``filters`` output channels (see `symdl.conv2d`).

    The filter ``{name}_W`` is ``(KH, KW, C, filters)`` (HWIO) for NHWC input and
    ``(filters, C, KH, KW)`` (OIHW) for NCHW; the bias ``{name}_b`` is ``(filters,)``. The
    default initializer is He normal over the filter's fan-in ``KH * KW * C`` when the
    activation is `symdl.relu`, Glorot uniform otherwise.
    """
    from .ops.api import conv2d as _conv2d
    from .ops.api import relu, reshape

    channel_axis = 3 if data_format == "NHWC" else 1
    if x.ndim != 4 or not isinstance(x.shape[channel_axis], int):
        raise ShapeError(
            f"conv2d {name!r}: expected a 4-d {data_format} input with a known channel count, "
            f"got shape {x.shape}"
        )
    kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
    channels = x.shape[channel_axis]
    base = weight_init or (_init.he_normal if activation is relu else _init.glorot_uniform)
    if data_format == "NHWC":
        W = parameter(f"{name}_W", (kh, kw, channels, filters), dtype=x.dtype)
        params: Params = {W: _init.hwio(base)}
    else:
        W = parameter(f"{name}_W", (filters, channels, kh, kw), dtype=x.dtype)
        params = {W: _init.oihw(base)}
    y = _conv2d(x, W, strides=strides, padding=padding, dilation=dilation,
                data_format=data_format)
    if use_bias:
        b = parameter(f"{name}_b", (filters,), dtype=x.dtype)
        params[b] = bias_init
        y = y + (b if data_format == "NHWC" else reshape(b, (filters, 1, 1)))
    if activation is not None:
        y = activation(y.named(f"{name}_pre"))
    return y.named(name), params


def max_pool2d(
    x: Expr,
    window: int | Sequence[int] = 2,
    *,
    strides: int | Sequence[int] | None = None,
    padding: str | int | Sequence[object] = "VALID",
    data_format: str = "NHWC",
) -> Expr:
    """Max pooling (see `symdl.max_pool2d`); a layer without parameters, so no dict."""
    from .ops.api import max_pool2d as _max_pool2d

    return _max_pool2d(x, window, strides=strides, padding=padding, data_format=data_format)


def flatten(x: Expr) -> Expr:
    """``x`` reshaped to ``(N, everything else)``: the bridge from convolutions to `dense`."""
    from .ops.api import reshape

    if x.ndim < 2 or not all(isinstance(d, int) for d in x.shape[1:]):
        raise ShapeError(
            f"flatten: expected a batch axis and known sizes after it, got shape {x.shape}"
        )
    size = 1
    for d in x.shape[1:]:
        size *= d  # type: ignore[operator]
    return reshape(x, (x.shape[0], size))


__all__ = ["Params", "conv2d", "dense", "flatten", "max_pool2d", "mlp"]
