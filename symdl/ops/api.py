"""Every public op constructor in one namespace (what `symdl` re-exports and operators call)."""

from .base import constant, parameter, placeholder
from .custom import elementwise
from .elementwise import (
    abs,
    add,
    cast,
    cos,
    divide,
    equal,
    exp,
    expm1,
    greater,
    greater_equal,
    less,
    less_equal,
    log,
    log1p,
    maximum,
    minimum,
    multiply,
    negative,
    not_equal,
    power,
    relu,
    sigmoid,
    sign,
    sin,
    softplus,
    sqrt,
    square,
    subtract,
    tanh,
    where,
)
from .linalg import matmul
from .nn import log_softmax, logsumexp, one_hot, softmax, softmax_cross_entropy
from .reduce import argmax, max, mean, min, sum
from .shape import (
    broadcast_to,
    concatenate,
    expand_dims,
    index,
    reshape,
    squeeze,
    transpose,
    zeros,
    zeros_like,
)
from .statistics import norm, std, var

__all__ = [
    "abs", "add", "argmax", "broadcast_to", "cast", "concatenate", "constant", "cos", "divide",
    "elementwise", "equal", "exp", "expand_dims", "expm1", "greater", "greater_equal", "index",
    "less",
    "less_equal", "log", "log1p", "log_softmax", "logsumexp", "matmul", "max", "maximum", "mean",
    "min", "minimum", "multiply", "negative", "not_equal", "one_hot", "parameter", "placeholder",
    "power", "relu", "reshape",
    "sigmoid", "sign", "sin", "softmax", "softmax_cross_entropy", "softplus", "sqrt", "square",
    "squeeze", "std", "subtract", "sum", "tanh", "transpose", "var", "where", "zeros",
    "zeros_like", "norm",
]

# Issue 13, items 4 and 7: more elementwise math, logic, scipy's special functions, losses. A
# block of its own below the list, so that merges with other groups stay easy.
from .elementwise import (  # noqa: E402
    arctan,
    clip,
    floor,
    isnan,
    log2,
    logical_and,
    logical_not,
    logical_or,
    round,
    stop_gradient,
    tan,
)
from .nn import huber, mse, sigmoid_cross_entropy  # noqa: E402
from .special import digamma, erf, erfc, lgamma, polygamma  # noqa: E402

__all__ += [
    "arctan", "clip", "floor", "isnan", "log2", "logical_and", "logical_not", "logical_or",
    "round", "stop_gradient", "tan",
    "huber", "mse", "sigmoid_cross_entropy",
    "digamma", "erf", "erfc", "lgamma", "polygamma",
]
