"""Every public op constructor in one namespace (what `symdl` re-exports and operators call)."""

from .base import constant, parameter, placeholder
from .conv import avg_pool2d, conv1d, conv2d, max_pool2d
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
__all__ += ["avg_pool2d", "conv1d", "conv2d", "max_pool2d"]  # convolution and pooling
