"""The optional numba backend: fused elementwise bodies as small compiled loops.

With ``backend="numba"`` (`codegen.compile`, `symdl.optim.compile_train_step`) each fused
elementwise statement of an array (`codegen.fuse.Fused`) is printed as a kernel: a plain Python
function of nested loops over the statement's shape, decorated with
``@numba.njit(cache=True, fastmath=False, error_model="numpy")``, written into the generated
module next to the functions calling it. Everything else (GEMMs, reductions, views, single
ops) stays numpy.

Why loops pay: a numpy expression ``(a - y) / N`` makes one pass over memory per operator and
allocates a temporary for each; the kernel reads each input once and writes its result once.
Fusion (`codegen.fuse.fuse` with ``loops=True``) therefore also absorbs large arrays under the
numba backend, which it refuses for numpy (there, each would be a fresh temporary).

What a kernel computes is what the numpy statement computes, in the same dtype: a float32 body
stays float32 (number literals print as ``np.float32(0.5)``, and scalar arguments are passed
as the statement's dtype), since numba, unlike numpy, promotes ``float32 * 0.5`` to float64.
``fastmath=False`` keeps IEEE semantics (inf, NaN, signed zeros) as numpy has them, and
``error_model="numpy"`` divides as numpy does: by zero, to inf or NaN. numba's default, Python's
model, tests every divisor and raises ZeroDivisionError, and that test kept LLVM from vectorizing
the loop (Adam's update kernel ran 8 times slower, 576 against 74 us for a 784 x 256 weight).
``cache=True`` stores the machine code in ``__pycache__`` beside the module file in the symdl
cache, so a warm start in a fresh process compiles nothing.

Two shapes of kernel go beyond one statement: a kernel whose one reader is a sum computes the
sum as it goes (`KernelWriter.reduction_call`), and an optimizer's updates of one parameter
(Adam's ``m``, ``v`` and the weight) are one loop (`update_groups`, `KernelWriter.group_call`).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import sympy

from symdl.ir import Expr
from symdl.ops.custom import special_functions

from .fuse import Fused, with_cse
from .layout import LINE_LIMIT, wrap, wrap_text
from .names import Namespace, safe_identifier
from .printer import _SympyNumpy, dtype_text, scalar_literal, sympy_printer

DECORATOR = "@numba.njit(cache=True, fastmath=False, error_model='numpy')"
# Loop indices, outermost first; a rank beyond these (rare) continues with i6, i7, ...
_INDICES = ("i", "j", "k", "l", "m", "n")


def compiles(node: Expr) -> bool:
    """Whether ``node`` is printed as a kernel: a fused body computing an array, with no
    function numba lacks (erf and the other scipy.special functions stay numpy)."""
    if node.op is not Fused or node.shape == () or node.dtype not in ("float32", "float64"):
        return False
    body = node.attr("body")
    return not any(isinstance(f, tuple(special_functions())) for f in body.atoms(sympy.Function))


class _KernelPrinter(_SympyNumpy):
    """sympy's numpy printer for one element of a kernel: every number in the statement's
    dtype (numba would compute ``float32 * 0.5`` in float64, numpy in float32)."""

    def _number(self, value: float) -> str:
        text = scalar_literal(value, self._dtype)
        # A bare literal is a float64 in numba: right in a float64 body, promoting in float32.
        return f"np.float32({text})" if self._dtype == "float32" else text

    def _print_Float(self, expr: sympy.Float) -> str:  # noqa: N802 - sympy's naming
        return self._number(float(expr))

    def _print_Rational(self, expr: sympy.Rational) -> str:  # noqa: N802
        return self._number(float(expr))

    def _print_Integer(self, expr: sympy.Integer) -> str:  # noqa: N802
        return self._number(float(expr))

    def _print_NegativeOne(self, expr: sympy.Integer) -> str:  # noqa: N802
        return self._number(-1.0)

    def _print_One(self, expr: sympy.Integer) -> str:  # noqa: N802
        return self._number(1.0)

    def _print_Zero(self, expr: sympy.Integer) -> str:  # noqa: N802
        return self._number(0.0)

    def _print_Half(self, expr: sympy.Rational) -> str:  # noqa: N802
        return self._number(0.5)

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:  # noqa: N802
        base = self.parenthesize(expr.base, 60)
        if expr.exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(expr.base)})"
        if expr.exp.is_Integer and expr.exp < 0:
            power = expr.base ** -expr.exp
            return f"{self._number(1.0)} / {self.parenthesize(power, 50)}"
        if expr.exp.is_Integer:
            return f"{base} ** {int(expr.exp)}"  # an integer power keeps the float's dtype
        return f"{base} ** {self.parenthesize(expr.exp, 60)}"


def _element_printer(names: dict[sympy.Symbol, str], dtype: str) -> Callable[[sympy.Expr], str]:
    printer = _KernelPrinter(names, dtype)
    # Spaced as the rest of the module (`ast.unparse`), as `codegen.printer.sympy_printer` does.
    return lambda expr: ast.unparse(ast.parse(printer.doprint(expr), mode="eval"))


@dataclass
class KernelWriter:
    """The kernels of one module: made by the functions' writers, printed once each.

    Two statements computing the same body over inputs of the same shapes share a kernel
    (``train_step`` and ``loss_and_grads`` have the same backward tail).
    """

    module_names: Namespace
    sources: list[list[str]] = field(default_factory=list)
    _made: dict[tuple[object, ...], str] = field(default_factory=dict)

    def call(self, node: Expr, args: Sequence[str], hint: str, out: str | None) -> str:
        """The expression calling ``node``'s kernel on the inputs named ``args``.

        ``out`` names a dead array of the node's shape and dtype to write into; without one,
        the call site allocates the result (``np.empty``). Scalar arguments are passed as the
        statement's dtype, so that a Python number or an integer size (``N``) computes in it.
        """
        dtype = node.dtype
        # An input whose array is the output (``W -= ...``, or a dead temporary reused) is
        # read through ``out`` itself: LLVM then knows the loop reads and writes one array at
        # one index and vectorizes it; as two parameters, it must assume they overlap anyhow.
        in_out = tuple(a == out and x.shape == node.shape for x, a in zip(node.inputs, args))
        key = (node.attr("body"), node.attr("symbols"), tuple(x.shape for x in node.inputs),
               node.shape, dtype, in_out)
        name = self._made.get(key)
        if name is None:
            # Module globals start with "_", as constants do: no local can shadow them.
            name = self._made[key] = "_" + self.module_names.create(f"{hint}_kernel")
            self.sources.append(_kernel_source(node, args, name, in_out))
        passed = [f"{dtype_text(dtype)}({a})" if x.shape == () else a
                  for x, a, o in zip(node.inputs, args, in_out) if not o]
        if out is None:
            out = f"np.empty({_shape_text(node)}, dtype={dtype_text(dtype)})"
        # `out` positional: numba's dispatcher folds keyword arguments on every call (~2 µs).
        return f"{name}({', '.join([*passed, out])})"

    def reduction_call(self, total: Expr, node: Expr, args: Sequence[str], hint: str) -> str:
        """The expression calling the kernel that sums ``node`` (a compiled `Fused` statement
        read by nothing else) as ``total`` (a `sum` over some axes) does, without ever storing
        ``node``: one pass instead of two, and no array for the summands."""
        dtype = node.dtype
        axes, keepdims = total.attr("axis"), total.attr("keepdims")
        key = ("sum", node.attr("body"), node.attr("symbols"),
               tuple(x.shape for x in node.inputs), node.shape, dtype, axes, keepdims)
        name = self._made.get(key)
        if name is None:
            name = self._made[key] = "_" + self.module_names.create(f"{hint}_kernel")
            self.sources.append(_reduction_source(node, args, name, axes, keepdims))
        passed = [f"{dtype_text(dtype)}({a})" if x.shape == () else a
                  for x, a in zip(node.inputs, args)]
        if total.shape == ():
            # numba returns a float32 as a Python float: the statement keeps its numpy dtype.
            return f"{dtype_text(dtype)}({name}({', '.join(passed)}))"
        zeros = f"np.zeros({_shape_text(total)}, dtype={dtype_text(dtype)})"
        return f"{name}({', '.join([*passed, zeros])})"

    def group_call(self, nodes: Sequence[Expr], args: Sequence[Sequence[str]],
                   targets: Sequence[str], hint: str) -> str:
        """The call of one kernel computing ``nodes`` (see `update_groups`) in one loop:
        ``nodes[k]`` from the inputs named ``args[k]``, written into the array ``targets[k]``.

        A name given twice (an input two updates read, an array one update writes and the
        next reads) is one parameter; scalars are passed as the statements' dtype.
        """
        dtype = nodes[0].dtype
        params: list[str] = []  # each distinct argument text, in order of first use
        for a in [*(a for member in args for a in member), *targets]:
            if a not in params:
                params.append(a)
        where = [tuple(params.index(a) for a in member) for member in args]
        key = ("group", tuple((n.attr("body"), n.attr("symbols"), tuple(x.shape for x in n.inputs))
                              for n in nodes),
               nodes[0].shape, dtype, tuple(where), tuple(params.index(t) for t in targets))
        name = self._made.get(key)
        if name is None:
            name = self._made[key] = "_" + self.module_names.create(f"{hint}_kernel")
            self.sources.append(_group_source(nodes, args, targets, params, name))
        scalars = {a for n, member in zip(nodes, args)
                   for x, a in zip(n.inputs, member) if x.shape == ()}
        passed = [f"{dtype_text(dtype)}({a})" if a in scalars else a for a in params]
        return f"{name}({', '.join(passed)})"

    def module_lines(self) -> list[str]:
        """The kernels as module source (empty when there are none)."""
        lines: list[str] = []
        for source in self.sources:
            lines += ["", "", *source]
        return lines


def _reduction_source(node: Expr, args: Sequence[str], name: str, axes: tuple[int, ...],
                      keepdims: bool) -> list[str]:
    """The source of the kernel summing ``node``'s body over ``axes`` (numpy's `sum`).

    A full sum returns a scalar, accumulated row by row (each innermost loop into its own
    partial sum, as numpy's pairwise summation keeps rounding error small); a sum over some
    axes adds into ``out``, which the caller passes zeroed.
    """
    rank = len(node.shape)
    indices = _loop_indices(rank)
    local = Namespace({"out", "total", "partial", *indices})
    params = [_param_name(local, a) for a in args]
    full = len(axes) == rank
    formula = sympy_printer(dict(zip(node.attr("symbols"), params)), node.dtype)(node.attr("body"))
    over = "every axis" if full else f"axes {axes}" + (", keeping them" if keepdims else "")
    doc = f'    """Sum of {formula} over {over}, in {node.dtype}."""'
    if len(doc) > LINE_LIMIT:
        doc = f'    """Sum of the fused statement over {over}, in {node.dtype}."""'
    lines = [DECORATOR, *wrap(f"def {name}({', '.join(params if full else [*params, 'out'])}):"),
             doc]
    zero = "np.float32(0.0)" if node.dtype == "float32" else "0.0"
    if full:
        lines.append(f"    total = {zero}")
    for depth, index in enumerate(indices):
        pad = "    " * (depth + 1)
        if full and depth == rank - 1 and rank > 1:
            lines.append(f"{pad}partial = {zero}")
        lines.append(f"{pad}for {index} in range({_extent(node, params, depth)}):")
    pad = "    " * (rank + 1)
    temporaries, result = _element_lines(node, params, indices, local, pad)
    lines += temporaries
    if full:
        target = "partial" if rank > 1 else "total"
        lines += wrap(f"{pad}{target} += {result}")
        if rank > 1:
            lines.append(f"{'    ' * (rank - 1)}    total += partial")
        lines.append("    return total")
    else:
        kept = [("0" if a in axes else index) for a, index in enumerate(indices)]
        if not keepdims:
            kept = [k for a, k in enumerate(kept) if a not in axes]
        lines += wrap(f"{pad}out[{', '.join(kept)}] += {result}")
        lines.append("    return out")
    return lines


def _extent(node: Expr, params: Sequence[str], axis: int) -> str:
    """``x.shape[k]`` of an input that spans ``node``'s ``axis`` (its loop's bound)."""
    size = node.shape[axis]
    for param, x in zip(params, node.inputs):
        offset = len(node.shape) - len(x.shape)
        if axis >= offset and x.shape[axis - offset] == size:
            return f"{param}.shape[{axis - offset}]"
    return "1"  # an axis of size 1 that no input has


def _shape_text(node: Expr) -> str:
    dims = [str(d) for d in node.shape]
    return f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"


def _kernel_source(node: Expr, args: Sequence[str], name: str,
                   in_out: Sequence[bool]) -> list[str]:
    """The source of the kernel computing ``node`` (a `Fused` array statement).

    Its parameters are named after the first call's arguments; each input is indexed as
    numpy broadcasts it (an axis of size 1 against a longer one reads index 0, missing
    leading axes are not indexed), so no broadcast copy is ever made. The inputs flagged in
    ``in_out`` are the output array itself, read as ``out``.
    """
    rank = len(node.shape)
    indices = _loop_indices(rank)
    local = Namespace({"out", *indices})
    params = ["out" if o else _param_name(local, a) for a, o in zip(args, in_out)]
    pad = "    " * (rank + 1)
    own = [p for p, o in zip(params, in_out) if not o]
    lines = [DECORATOR, *wrap(f"def {name}({', '.join([*own, 'out'])}):")]
    shown = [a if o else p for a, p, o in zip(args, params, in_out)]
    formula = sympy_printer(dict(zip(node.attr("symbols"), shown)), node.dtype)(node.attr("body"))
    held = [a for a, o in zip(args, in_out) if o]
    doc = f'    """out = {formula}, elementwise in {node.dtype}.'
    if len(doc) > LINE_LIMIT:
        doc = f'    """The fused statement, elementwise in {node.dtype}.'
    if held:  # said where the reader wonders what `out[i, j]` on the right is
        lines += [doc, "", f"    out holds {held[0]} on entry: each element is read, then "
                  "overwritten.", '    """']
    else:
        lines.append(doc + '"""')
    for depth, index in enumerate(indices):
        lines.append(f"{'    ' * (depth + 1)}for {index} in range(out.shape[{depth}]):")
    temporaries, result = _element_lines(node, params, indices, local, pad)
    lines += [*temporaries, *wrap(f"{pad}out[{', '.join(indices)}] = {result}")]
    lines.append("    return out")
    return lines


def update_groups(order: Sequence[Expr], prints: Callable[[Expr], bool],
                  target: Callable[[Expr], Expr | None], root: Callable[[Expr], Expr]
                  ) -> dict[Expr, list[Expr]]:
    """``{first: [first, ...]}``: runs of kernels that the numba backend merges into one loop.

    An optimizer updates each parameter with a few statements over its shape, printed one
    after the other (Adam: ``m``, then ``v``, then the parameter from both). As three kernels
    they read the gradient twice and ``m`` and ``v`` back from memory; merged, each element
    of every array is read and written once (Adam's step: 6-8 % faster on a 784 x 256 weight).

    ``order`` is the function's statements in print order, ``prints`` whether a node prints a
    statement of its own, ``target`` the parameter a node is a compiled final write into
    (None for any other statement), ``root`` the array a value lives in. A run is a sequence
    of such writes with nothing printed between them, all of one shape and dtype, each into
    another parameter. A write joins the run only where the merged loop computes what the
    statements compute one after the other: what it reads from the run's writes it reads at
    its own index (an element written earlier in the same iteration), and an array it writes
    was read by the run only at that index (before the write, in the same iteration). A
    broadcast or a view of one of the run's arrays would read elements of other iterations.
    """
    groups: dict[Expr, list[Expr]] = {}
    run: list[Expr] = []
    written: dict[Expr, Expr] = {}  # member -> the parameter it writes

    def close() -> None:
        if len(run) >= 2:
            groups[run[0]] = list(run)
        run.clear()
        written.clear()

    for node in order:
        if not prints(node):
            continue
        leaf = target(node)
        if leaf is None:
            close()
            continue
        if run and not _joins(run, written, node, leaf, root):
            close()
        run.append(node)
        written[node] = leaf
    close()
    return groups


def _joins(run: list[Expr], written: Mapping[Expr, Expr], node: Expr, leaf: Expr,
           root: Callable[[Expr], Expr]) -> bool:
    """Whether ``node`` (a write into ``leaf``) may join ``run`` (see `update_groups`)."""
    first = run[0]
    if node.shape != first.shape or node.dtype != first.dtype or leaf in written.values():
        return False
    arrays = set(written.values())
    for x in node.inputs:
        if x in written:
            if x.shape != node.shape:
                return False
        elif root(x) in arrays:
            return False  # the old value of an array the run has overwritten
    for member in run:
        for x in member.inputs:
            if root(x) is leaf and (x is not leaf or x.shape != node.shape):
                return False
    return True


def _group_source(nodes: Sequence[Expr], args: Sequence[Sequence[str]], targets: Sequence[str],
                  params: Sequence[str], name: str) -> list[str]:
    """The source of the kernel of `KernelWriter.group_call`: one loop over the shape, each
    statement's element computed and stored in order."""
    first = nodes[0]
    rank = len(first.shape)
    indices = _loop_indices(rank)
    local = Namespace(set(indices))
    own = {a: _param_name(local, a) for a in params}
    formulas = []
    for node, member, out in zip(nodes, args, targets):
        shown = dict(zip(node.attr("symbols"), member))
        formulas.append(f"{out} = {sympy_printer(shown, node.dtype)(node.attr('body'))}")
    doc = [f'    """In one pass over the elements, in {first.dtype}:', ""]
    for text in formulas:
        doc += wrap_text(f"    {text}") if len(text) + 4 <= 3 * LINE_LIMIT else \
            [f"    {text.partition(' = ')[0]} = (a fused statement)"]
    lines = [DECORATOR, *wrap(f"def {name}({', '.join(own[a] for a in params)}):"),
             *doc, '    """']
    for depth, index in enumerate(indices):
        lines.append(f"{'    ' * (depth + 1)}for {index} in range({own[targets[0]]}"
                     f".shape[{depth}]):")
    pad = "    " * (rank + 1)
    for node, member, out in zip(nodes, args, targets):
        temporaries, result = _element_lines(node, [own[a] for a in member], indices, local,
                                             pad)
        lines += [*temporaries, *wrap(f"{pad}{own[out]}[{', '.join(indices)}] = {result}")]
    return lines


def _loop_indices(rank: int) -> list[str]:
    """The loop variables of a kernel over ``rank`` axes, outermost first."""
    return [_INDICES[a] if a < len(_INDICES) else f"i{a}" for a in range(rank)]


def _param_name(local: Namespace, arg: str) -> str:
    """A kernel parameter named after the argument text the call passes."""
    return local.create(safe_identifier(arg) if arg.isidentifier() else _param_hint(arg))


def _element_lines(node: Expr, params: Sequence[str], indices: list[str], local: Namespace,
                   pad: str) -> tuple[list[str], str]:
    """One element of ``node``'s fused body, each input read from its parameter in ``params``
    as numpy broadcasts it (`_index`): the lines binding the body's repeated parts
    (`with_cse`) to locals, and the result's text."""
    names = {symbol: param if x.shape == () else f"{param}[{_index(x, node, indices)}]"
             for symbol, param, x in zip(node.attr("symbols"), params, node.inputs)}
    body = with_cse(node.attr("body"))
    text = _element_printer(names, node.dtype)
    lines: list[str] = []
    for symbol, value in body.temporaries:
        temp = local.create(_temp_hint(value))
        lines += wrap(f"{pad}{temp} = {text(value)}")
        names[symbol] = temp
        text = _element_printer(names, node.dtype)
    return lines, text(body.result)


def _index(x: Expr, node: Expr, indices: list[str]) -> str:
    """How the kernel reads input ``x`` at the output's index (numpy's broadcasting rule)."""
    offset = len(node.shape) - len(x.shape)
    picked = ["0" if size == 1 and node.shape[offset + a] != 1 else indices[offset + a]
              for a, size in enumerate(x.shape)]
    return ", ".join(picked)


def _param_hint(text: str) -> str:
    # An inline view (``W2.T``) or a literal: a parameter named after what it is.
    return safe_identifier(text.replace(".T", "_T")) or "value"


def _temp_hint(value: sympy.Expr) -> str:
    if isinstance(value, sympy.Function):
        return type(value).__name__.lower()
    return {sympy.Add: "total", sympy.Mul: "prod", sympy.Pow: "power"}.get(type(value), "t")
