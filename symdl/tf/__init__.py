"""``symdl.tf``: the course's TensorFlow-1 static-graph API as a thin layer over symdl.

``import symdl.tf as tf`` runs programs written for ``import tensorflow as tf`` (the subset the
course uses): tensors are symdl expressions, `gradients` is symdl's reverse mode, and a
`Session` turns each set of fetches into one generated numpy function (`Session.source` shows
it)::

    x = tf.placeholder(tf.float32, [None, 784])
    W = tf.Variable(tf.zeros([784, 10]))
    y = tf.nn.softmax(tf.matmul(x, W))
    ...
    train_step = tf.assign(W, W - 0.5 * tf.gradients(cross_entropy, [W])[0])
    sess = tf.Session(); sess.run(tf.global_variables_initializer())
    sess.run(train_step, feed_dict={x: batch_xs, y_: batch_ys})
"""

from ..ir import Expr
from . import errors, input_data, nn, train
from .dtypes import DType, as_dtype, bool, double, float32, float64, int32, int64
from .graph import (
    Graph,
    Operation,
    Variable,
    get_default_graph,
    global_variables,
    placeholder,
    reset_default_graph,
    set_random_seed,
    trainable_variables,
)
from .ops import (
    abs,
    add,
    argmax,
    assign,
    assign_add,
    assign_sub,
    cast,
    constant,
    divide,
    equal,
    exp,
    global_variables_initializer,
    gradients,
    greater,
    greater_equal,
    group,
    initialize_all_variables,
    less,
    less_equal,
    log,
    log1p,
    matmul,
    maximum,
    minimum,
    multiply,
    negative,
    no_op,
    normal,
    not_equal,
    ones,
    pow,
    random_normal,
    random_uniform,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_sum,
    relu,
    reshape,
    sigmoid,
    sign,
    sqrt,
    square,
    subtract,
    tanh,
    transpose,
    truncated_normal,
    variables_initializer,
    where,
    zeros,
)
from .session import Session

Tensor = Expr  # tensors are symdl expressions

__all__ = [
    "DType", "Graph", "Operation", "Session", "Tensor", "Variable", "abs", "add", "argmax",
    "as_dtype", "assign", "assign_add", "assign_sub", "bool", "cast", "constant", "divide",
    "double", "equal", "errors", "exp", "float32", "float64", "get_default_graph",
    "global_variables", "global_variables_initializer", "gradients", "greater", "greater_equal",
    "group", "initialize_all_variables", "input_data", "int32", "int64", "less", "less_equal",
    "log", "log1p", "matmul", "maximum", "minimum", "multiply", "negative", "nn", "no_op",
    "normal", "not_equal", "ones", "placeholder", "pow", "random_normal", "random_uniform",
    "reduce_max", "reduce_mean", "reduce_min", "reduce_sum", "relu", "reset_default_graph",
    "reshape", "set_random_seed", "sigmoid", "sign", "sqrt", "square", "subtract", "tanh",
    "train", "trainable_variables", "transpose", "truncated_normal", "variables_initializer",
    "where", "zeros",
]
