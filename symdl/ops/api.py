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
from .indexing import arange, take, take_along_axis
from .linalg import matmul
from .nn import log_softmax, logsumexp, one_hot, softmax, softmax_cross_entropy
from .random import dropout, rng
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

# isort: split
# Shape, creation, reductions and scans (issue 13, items 3 and 5)
from .creation import full, ones, ones_like, pad, repeat, stack, tile
from .reduce import all, any, argmin
from .scan import cumprod, cumsum, prod
from .shape import flip, split

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
    # integer-array indexing
    "arange", "take", "take_along_axis",
    # shape, creation, reductions and scans (issue 13, items 3 and 5)
    "all", "any", "argmin", "cumprod", "cumsum", "flip", "full", "ones", "ones_like", "pad",
    "prod", "repeat", "split", "stack", "tile",
    # random draws
    "dropout", "rng",
]

# ---- contractions (issue 13, item 6)
from .contract import einsum, tensordot  # noqa: E402

__all__ += ["einsum", "tensordot"]
__all__ += ["avg_pool2d", "conv1d", "conv2d", "max_pool2d"]  # convolution and pooling
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
