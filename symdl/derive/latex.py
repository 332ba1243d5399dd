"""Mathematical notation for IR nodes: matrix notation for tensor ops, sympy's LaTeX elementwise.

`latex(expr, names)` prints an expression the way a textbook writes it: ``X W`` for a matrix
product, ``X^\\top`` for a transpose, ``\\odot`` for an elementwise product of two tensors,
``a \\mathbf{1}`` for row sums, ``\\operatorname{softmax}(z)``; broadcasts and reshapes are shown
compactly (as their operand), since they only restore shapes. Nodes in ``names`` appear by their
symbol; everything else is inlined.

`local_derivative` gives the partial derivatives of an elementwise node with respect to its
inputs through sympy (so ``softplus`` shows as ``\\frac{e^{z}}{e^{z} + 1}``), and `rule_latex`
the derivative rule of a tensor op in matrix notation. `to_sympy` turns a graph of scalars into a
sympy expression, for checking a derivation against ``sympy.diff``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import sympy

from ..ir import Expr
from ..printing import constant_text

__all__ = ["latex", "local_derivative", "name_latex", "rule_latex", "to_sympy", "bar"]

GREEK = {
    "alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa",
    "lambda", "mu", "nu", "xi", "pi", "rho", "sigma", "tau", "phi", "chi", "psi", "omega",
}

# Precedences: a bigger number binds tighter.
SUM, NEG, PROD, FUNC, POSTFIX, ATOM = 10, 15, 20, 80, 90, 100

# Ops that only restore a shape; shown as their operand.
SHAPE_ONLY = ("reshape", "broadcast_to", "cast", "expand_dims", "squeeze")

# Unary functions printed as \name(x).
FUNCTIONS = {
    "log": r"\log", "sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh", "sigmoid": r"\sigma",
    "softplus": r"\operatorname{softplus}", "relu": r"\operatorname{relu}",
    "sign": r"\operatorname{sign}", "log1p": r"\operatorname{log1p}",
    "softmax": r"\operatorname{softmax}", "log_softmax": r"\log\operatorname{softmax}",
    "logsumexp": r"\operatorname{logsumexp}", "one_hot": r"\operatorname{onehot}",
    "argmax": r"\operatorname{argmax}",
}


def name_latex(name: str) -> str:
    """A user's name as a math symbol: ``x``, ``x_{1}``, ``\\alpha``, ``\\text{logits}``."""
    match = re.fullmatch(r"([A-Za-z])_?(\d+)", name)
    if match:
        return f"{match[1]}_{{{match[2]}}}"
    if len(name) == 1:
        return name
    if name in GREEK:
        return "\\" + name
    return r"\text{" + name.replace("_", r"\_") + "}"


def bar(symbol: str) -> str:
    """The adjoint's symbol: ``\\bar{x}`` for one letter, ``\\overline{\\text{logits}}`` else."""
    core = symbol.split("_", 1)[0] if re.fullmatch(r"[A-Za-z]_\{\d+\}", symbol) else symbol
    if len(core) == 1 and core != symbol:  # x_{1} -> \bar{x}_{1}
        return rf"\bar{{{core}}}" + symbol[1:]
    if len(symbol) == 1 or symbol.startswith("\\") and symbol[1:] in GREEK:
        return rf"\bar{{{symbol}}}"
    return rf"\overline{{{symbol}}}"


def strip_shape_ops(x: Expr) -> Expr:
    """``x`` without the reshapes and broadcasts around it (what a reader cares about)."""
    while x.op.name in SHAPE_ONLY and x.inputs:
        x = x.inputs[0]
    return x


def _scalar_like(x: Expr) -> bool:
    inner = strip_shape_ops(x)
    return all(d == 1 for d in inner.shape) or inner.op.name in ("constant", "size")


def latex(expr: Expr, names: Mapping[Expr, str] | None = None, *, top: bool = True) -> str:
    """``expr`` in mathematical notation; nodes in ``names`` (and leaves) appear by symbol."""
    return _latex(expr, names or {}, top)[0]


def _wrap(text_prec: tuple[str, int], min_prec: int) -> str:
    text, prec = text_prec
    return text if prec >= min_prec else rf"\left({text}\right)"


def _latex(x: Expr, names: Mapping[Expr, str], top: bool) -> tuple[str, int]:
    if not top and x in names:
        return names[x], ATOM
    op = x.op.name
    if op == "constant":
        text = constant_text(x)
        if x.attr("value").array.ndim == 0:
            value = float(x.attr("value").array.item())
            text = str(int(value)) if value.is_integer() else repr(value)
            return text, (NEG if text.startswith("-") else ATOM)
        return r"\text{" + text.replace("_", r"\_") + "}", ATOM
    if x.is_leaf:
        return names.get(x, name_latex(x.name or "?")), ATOM
    if op == "size":
        static, symbols = x.attr("static"), x.attr("symbols")
        return " ".join(([str(static)] if static != 1 else []) + list(symbols)), PROD
    args = [_latex(i, names, False) for i in x.inputs]
    if op in SHAPE_ONLY:
        return args[0]
    if op == "add":
        return f"{_wrap(args[0], SUM)} + {_wrap(args[1], SUM)}", SUM
    if op == "subtract":
        return f"{_wrap(args[0], SUM)} - {_wrap(args[1], SUM + 1)}", SUM
    if op == "negative":
        return f"-{_wrap(args[0], PROD)}", NEG
    if op == "multiply":
        a, b = x.inputs
        if _scalar_like(a) or _scalar_like(b):
            # A scalar factor first, as written by hand: 2 x, \frac{1}{N} g.
            first, second = (args[0], args[1]) if _scalar_like(a) else (args[1], args[0])
            return rf"{_wrap(first, PROD)} \, {_wrap(second, PROD + 1)}", PROD
        return rf"{_wrap(args[0], PROD)} \odot {_wrap(args[1], PROD + 1)}", PROD
    if op == "divide":
        return rf"\frac{{{args[0][0]}}}{{{args[1][0]}}}", ATOM
    if op == "power":
        return f"{{{_wrap(args[0], ATOM)}}}^{{{args[1][0]}}}", POSTFIX
    if op == "square":
        return f"{{{_wrap(args[0], ATOM)}}}^{{2}}", POSTFIX
    if op == "sqrt":
        return rf"\sqrt{{{args[0][0]}}}", ATOM
    if op == "exp":
        return f"e^{{{args[0][0]}}}", POSTFIX
    if op == "abs":
        return rf"\left|{args[0][0]}\right|", ATOM
    if op in FUNCTIONS:
        return rf"{FUNCTIONS[op]}\left({args[0][0]}\right)", FUNC
    if op == "matmul":
        return rf"{_wrap(args[0], PROD)} \, {_wrap(args[1], PROD + 1)}", PROD
    if op == "transpose":
        return f"{{{_wrap(args[0], ATOM)}}}^\\top", POSTFIX
    if op in ("maximum", "minimum"):
        return rf"\{op[:3]}\left({args[0][0]}, {args[1][0]}\right)", FUNC
    if op == "where":
        return (rf"\begin{{cases}} {args[1][0]} & \text{{if }} {args[0][0]} \\ "
                rf"{args[2][0]} & \text{{otherwise}} \end{{cases}}"), ATOM
    if op in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"):
        sym = {"less": "<", "less_equal": r"\le", "greater": ">", "greater_equal": r"\ge",
               "equal": "=", "not_equal": r"\ne"}[op]
        return rf"\left[{args[0][0]} {sym} {args[1][0]}\right]", ATOM
    if op in ("sum", "max"):
        return _reduction(x, args[0])
    if op == "softmax_cross_entropy":
        logits, labels = args
        return (rf"-\textstyle\sum_{{j}} {_wrap(labels, ATOM)}_{{j}} \log "
                rf"\operatorname{{softmax}}\left({logits[0]}\right)_{{j}}"), NEG
    if op == "pick":
        return f"{_wrap(args[0], ATOM)}_{{{args[1][0]}}}", POSTFIX
    if op == "zeros":
        return r"\mathbf{0}", ATOM
    if op == "elementwise":
        return _elementwise(x, [_wrap(a, ATOM) for a in args]), FUNC
    if op == "index":
        from ..printing import index_text

        return f"{_wrap(args[0], ATOM)}_{{[{index_text(x.attr('index'))}]}}", POSTFIX
    if op == "unindex":
        return rf"\operatorname{{scatter}}\left({args[0][0]}\right)", FUNC
    if op == "concatenate":
        return r"\left[" + ", ".join(a for a, _ in args) + r"\right]", ATOM
    # Anything else reads as a call named after the op.
    op_text = op.replace("_", r"\_")
    joined = ", ".join(a for a, _ in args)
    return rf"\operatorname{{{op_text}}}\left({joined}\right)", FUNC


def _elementwise(x: Expr, args: list[str]) -> str:
    r"""A user's elementwise function written out by sympy: ``\log(e^{z} + 1)``."""
    names = dict(zip(x.attr("symbols"), args))
    return sympy.latex(x.attr("body"), symbol_names=names)


def _reduction(x: Expr, arg: tuple[str, int]) -> tuple[str, int]:
    """Sums as matrix products with a ones vector where that reads naturally, else \\sum."""
    (inner,) = x.inputs
    axes = x.attr("axis")
    op = x.op.name
    if op == "sum" and inner.ndim == 2 and axes == (1,):
        return rf"{_wrap(arg, PROD)} \, \mathbf{{1}}", PROD  # row sums
    if op == "sum" and inner.ndim == 2 and axes == (0,):
        return rf"\mathbf{{1}}^\top {_wrap(arg, PROD + 1)}", PROD  # column sums
    dims = [inner.shape[a] for a in axes]
    index = ",".join("n" if isinstance(d, str) else "ijkl"[k % 4] for k, d in enumerate(dims))
    if op == "sum":
        return rf"\textstyle\sum_{{{index}}} {_wrap(arg, PROD)}", PROD
    return rf"\max_{{{index}}} {_wrap(arg, PROD)}", PROD


# --------------------------------------------------------------------------- sympy bridge


def _sympy_of_op(op: str, args: list[sympy.Expr], x: Expr) -> sympy.Expr | None:
    """The scalar function an elementwise op computes, as a sympy expression of ``args``."""
    table = {
        "add": lambda a, b: a + b, "subtract": lambda a, b: a - b,
        "multiply": lambda a, b: a * b, "divide": lambda a, b: a / b,
        "power": lambda a, b: a**b, "negative": lambda a: -a, "exp": sympy.exp,
        "log": sympy.log, "log1p": lambda a: sympy.log(1 + a), "sqrt": sympy.sqrt,
        "square": lambda a: a**2, "sin": sympy.sin, "cos": sympy.cos, "tanh": sympy.tanh,
        "sigmoid": lambda a: 1 / (1 + sympy.exp(-a)),
        "softplus": lambda a: sympy.log(1 + sympy.exp(a)),
        "relu": lambda a: sympy.Max(a, 0), "abs": sympy.Abs,
        "maximum": sympy.Max, "minimum": sympy.Min, "cast": lambda a: a,
    }
    if op == "elementwise":
        return x.attr("body").subs(dict(zip(x.attr("symbols"), args)), simultaneous=True)
    fn = table.get(op)
    return None if fn is None else fn(*args)


def local_derivative(node: Expr, names: Mapping[Expr, str]) -> list[tuple[Expr, str]] | None:
    """``[(input, latex of d node / d input)]`` through sympy for an elementwise node, else None.

    Inputs that are constants get no entry. The derivative is elementwise: a reader multiplies
    it (Hadamard) with the incoming adjoint and sums over broadcast axes.
    """
    symbols = [sympy.Symbol(f"a{i}", real=True) for i in range(len(node.inputs))]
    body = _sympy_of_op(node.op.name, list(symbols), node)
    if body is None:
        return None
    shown = {s: latex(i, names, top=False) for s, i in zip(symbols, node.inputs)}
    result = []
    for s, i in zip(symbols, node.inputs):
        if i.op.name == "constant" or i.op.name == "size":
            continue
        d = sympy.simplify(sympy.diff(body, s))
        result.append((i, sympy.latex(d, symbol_names=shown)))
    return result


def to_sympy(expr: Expr, symbols: Mapping[Expr, sympy.Symbol] | None = None) -> sympy.Expr:
    """A graph of scalars (and shape-only ops on them) as a sympy expression.

    Leaves become real symbols named after them (or as given in ``symbols``). Raises
    ValueError for a node that is not elementwise over scalars.
    """
    table: dict[Expr, sympy.Expr] = dict(symbols or {})
    from ..ir import toposort

    for node in toposort([expr]):
        if node in table:
            continue
        op = node.op.name
        if op == "constant":
            table[node] = sympy.nsimplify(float(node.attr("value").array.reshape(-1)[0]))
            if node.attr("value").array.size != 1:
                raise ValueError(f"to_sympy: a constant of shape {node.shape} is not a scalar")
        elif node.is_leaf:
            table[node] = sympy.Symbol(node.name or "x", real=True)
        elif op in SHAPE_ONLY or op == "label" or (op == "sum" and all(node.inputs[0].shape[a] == 1
                                                        for a in node.attr("axis"))):
            table[node] = table[node.inputs[0]]
        elif op == "size" and not node.attr("symbols"):
            table[node] = sympy.Integer(node.attr("static"))
        else:
            value = _sympy_of_op(op, [table[i] for i in node.inputs], node)
            if value is None or any(d != 1 for d in node.shape):
                raise ValueError(f"to_sympy: op {op!r} of shape {node.shape} is not scalar math")
            table[node] = value
    return table[expr]


# --------------------------------------------------------------------------- rules of tensor ops

# The derivative rule of each tensor op in matrix notation: C is the op's result, \bar{C} its
# adjoint. Elementwise ops need no entry: their local derivative comes from sympy.
RULES = {
    "matmul": r"C = A B \;\Rightarrow\; \bar{A} = \bar{C} B^\top, \quad \bar{B} = A^\top \bar{C}",
    "transpose": r"C = A^\top \;\Rightarrow\; \bar{A} = \bar{C}^\top",
    "sum": (r"c = \textstyle\sum_i a_i \;\Rightarrow\; \partial c / \partial a_i = 1: "
            r"\; \bar{a} = \bar{c} \text{ copied along the summed axes}"),
    "max": (r"c = \max_i a_i \;\Rightarrow\; \bar{a} = \bar{c} \odot "
            r"[a = c] / \textstyle\sum_i [a_i = c]"),
    "softmax": (r"p = \operatorname{softmax}(z) \;\Rightarrow\; \bar{z} = p \odot "
                r"(\bar{p} - (\bar{p} \odot p)\,\mathbf{1})"),
    "log_softmax": (r"l = \log\operatorname{softmax}(z) \;\Rightarrow\; \bar{z} = \bar{l} - "
                    r"\operatorname{softmax}(z) \odot (\bar{l}\,\mathbf{1})"),
    "logsumexp": (r"l = \operatorname{logsumexp}(z) \;\Rightarrow\; \bar{z} = \bar{l} \, "
                  r"\operatorname{softmax}(z)"),
    "softmax_cross_entropy": (
        r"\ell = -\textstyle\sum_j y_j \log \operatorname{softmax}(z)_j \;\Rightarrow\; "
        r"\frac{\partial \ell}{\partial z} = \operatorname{softmax}(z) - y"
        r"\text{ (rows of } y \text{ sum to 1)}"),
    "reshape": (r"C = \operatorname{reshape}(A) \;\Rightarrow\; \bar{A} = \bar{C}"
                r"\text{ reshaped back}"),
    "broadcast_to": (r"C = \operatorname{broadcast}(A) \;\Rightarrow\; \bar{A} = \bar{C} "
                     r"\text{ summed over the broadcast axes}"),
    "index": r"C = A_{[i]} \;\Rightarrow\; \bar{A} = \bar{C} \text{ at } [i], \text{ 0 elsewhere}",
    "concatenate": r"C = [A, B] \;\Rightarrow\; \bar{A}, \bar{B} = \text{the pieces of } \bar{C}",
    "pick": r"c = a_{y} \;\Rightarrow\; \bar{a} = \bar{c}\,\operatorname{onehot}(y)",
    "where": (r"C = \begin{cases} A & \text{if } k \\ B & \text{else}\end{cases} \;\Rightarrow\; "
              r"\bar{A} = [k] \odot \bar{C}, \; \bar{B} = [\lnot k] \odot \bar{C}"),
}


def rule_latex(node: Expr) -> str | None:
    """The derivative rule of ``node``'s op in matrix notation, if it is a tensor op."""
    return RULES.get(node.op.name)
