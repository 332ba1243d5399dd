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

from types import SimpleNamespace as _Namespace

from ..ir import Expr
from . import app, errors, input_data, losses, nn, summary, train

# --- issue 14: TF1 programs unchanged (scopes, sessions, app/flags, summaries, more ops) ---
from .deferred import Deferred
from .dtypes import DType, as_dtype, bool, double, float32, float64, int32, int64
from .graph import (
    AUTO_REUSE,
    Graph,
    Operation,
    Variable,
    get_default_graph,
    get_variable,
    get_variable_scope,
    global_variables,
    name_scope,
    placeholder,
    reset_default_graph,
    set_random_seed,
    trainable_variables,
    variable_scope,
)
from .init_ops import (
    constant_initializer,
    glorot_uniform_initializer,
    ones_initializer,
    random_normal_initializer,
    random_uniform_initializer,
    truncated_normal_initializer,
    xavier_initializer,
    zeros_initializer,
)
from .ops import (
    abs,
    add,
    add_n,
    argmax,
    assign,
    assign_add,
    assign_sub,
    cast,
    clip_by_value,
    concat,
    constant,
    divide,
    equal,
    exp,
    expand_dims,
    gather,
    global_variables_initializer,
    gradients,
    greater,
    greater_equal,
    group,
    identity,
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
    one_hot,
    ones,
    ones_like,
    pack,
    pad,
    pow,
    random_normal,
    random_uniform,
    reduce_logsumexp,
    reduce_max,
    reduce_mean,
    reduce_min,
    reduce_sum,
    relu,
    reshape,
    sigmoid,
    sign,
    split,
    sqrt,
    square,
    squeeze,
    stack,
    stop_gradient,
    subtract,
    tanh,
    tile,
    to_double,
    to_float,
    to_int32,
    to_int64,
    transpose,
    truncated_normal,
    variables_initializer,
    where,
    zeros,
    zeros_like,
)
from .session import InteractiveSession, Session, get_default_session, infer_variable_shapes

flags = app.flags
merge_all_summaries = summary.merge_all  # the 0.12-era names
merge_summary = summary.merge
scalar_summary = summary.scalar
histogram_summary = summary.histogram

Tensor = Expr  # tensors are symdl expressions

# tf.contrib: only the initializers TF1 programs reach for there.
contrib = _Namespace(layers=_Namespace(
    xavier_initializer=xavier_initializer, xavier_initializer_conv2d=xavier_initializer))

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
    # issue 14
    "AUTO_REUSE", "Deferred", "InteractiveSession", "add_n", "app", "clip_by_value", "concat",
    "constant_initializer", "expand_dims", "flags", "get_default_session", "get_variable",
    "get_variable_scope", "glorot_uniform_initializer", "histogram_summary", "identity",
    "infer_variable_shapes", "losses", "merge_all_summaries", "merge_summary", "name_scope",
    "one_hot", "ones_initializer", "ones_like", "pad", "random_normal_initializer",
    "random_uniform_initializer", "reduce_logsumexp", "scalar_summary", "split", "squeeze",
    "stack", "stop_gradient", "summary",
    "to_double", "to_float", "to_int32", "to_int64", "truncated_normal_initializer",
    "variable_scope", "zeros_initializer", "zeros_like",
    # issue 14, second half: ops on issue 13's core ops
    "gather", "pack", "tile",
    # issue 14, leftovers: random initializers drawn at run time
    "contrib", "xavier_initializer",
]
