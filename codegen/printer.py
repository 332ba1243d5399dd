"""The numpy printer: one `_print_<Op>` method per op that needs more than its template.

`NumpyPrinter.statement(node, args)` gives the right-hand side of the statement computing
``node`` from its inputs' names (or a list of lines, with ``{out}`` for the node's own name,
for the few ops that need more than one). An op with neither a method here nor a ``numpy``
template raises `CodegenError` naming it: there is no silent fallback.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence

import numpy as np
import sympy
from sympy.printing.numpy import NumPyPrinter

from symdl.errors import CodegenError
from symdl.ir import Expr
from symdl.ops.base import Op
from symdl.ops.custom import special_functions
from symdl.ops.shape import flip_index_text
from symdl.ops.special import polygamma_text
from symdl.printing import index_text, size_text
from symdl.types import Shape, format_shape

Lines = list[str]


def dtype_text(dtype: str) -> str:
    """``np.float32`` for ``"float32"``."""
    return "np.bool_" if dtype == "bool" else f"np.{dtype}"


def shape_text(shape: Shape) -> str:
    """A Python tuple expression for a shape; symbolic sizes are the names bound on entry."""
    return format_shape(shape)


def scalar_literal(value: object, dtype: str | None = None) -> str:
    """Exact Python text for a scalar: floats round-trip through repr; inf and nan spelled out.

    With ``dtype="float32"`` (a Python number that numpy will cast to float32, as it does next
    to a float32 array), the shortest text with the same float32 value: ``1 - 0.9`` prints as
    ``0.1``, not ``0.09999999999999998``, and computes exactly the same.
    """
    if isinstance(value, (bool, np.bool_)):
        return "True" if value else "False"
    if isinstance(value, (int, np.integer)):
        return repr(int(value))
    value = float(value)  # type: ignore[arg-type]
    if math.isnan(value):
        return "np.nan"
    if math.isinf(value):
        return "np.inf" if value > 0 else "-np.inf"
    if dtype == "float32" and abs(value) < float(np.finfo(np.float32).max):
        short = float(str(np.float32(value)))
        if np.float32(short) == np.float32(value):
            return repr(short)
    return repr(value)


def _axis_text(axis: tuple[int, ...] | int | None) -> str:
    if isinstance(axis, tuple) and len(axis) == 1:
        return str(axis[0])
    return repr(axis)


class _SympyNumpy(NumPyPrinter):
    """sympy's numpy printer, writing ``np.`` and mapping symbols to argument names."""

    def __init__(self, names: dict[sympy.Symbol, str], dtype: str | None = None) -> None:
        super().__init__({"fully_qualified_modules": False, "inline": True})
        self._arg_names = names
        self._dtype = dtype

    def _module_format(self, fqn: str, register: bool = True) -> str:
        head, _, tail = fqn.partition(".")
        if head in ("numpy", "np"):
            return "np." + tail
        # sympy falls back to the `math` module (math.erf, math.gamma), which fails on arrays
        # at call time; generated modules import numpy only.
        raise CodegenError(
            f"codegen: an elementwise body needs {fqn}, which numpy does not have; write the "
            "body with functions numpy supports (exp, log, sqrt, tanh, ...)"
        )

    def _print_Symbol(self, expr: sympy.Symbol) -> str:  # noqa: N802 - sympy's naming
        return self._arg_names[expr]

    def _print_Float(self, expr: sympy.Float) -> str:  # noqa: N802
        # Exact (sympy's own printing rounds to 15 digits); shortest in a float32 body.
        return scalar_literal(float(expr), self._dtype)

    def _print_Rational(self, expr: sympy.Rational) -> str:  # noqa: N802
        return str(expr.p) if expr.q == 1 else scalar_literal(float(expr), self._dtype)

    def _print_Max(self, expr: sympy.Max) -> str:  # noqa: N802
        return self._fold("np.maximum", expr.args)

    def _print_Min(self, expr: sympy.Min) -> str:  # noqa: N802
        # min(max(x, lo), hi) with number bounds is what np.clip computes (clip, Huber's
        # gradient), and how one writes it by hand.
        bounds = [a for a in expr.args if a.is_number]
        inner = [a for a in expr.args if isinstance(a, sympy.Max)]
        if len(expr.args) == 2 and len(bounds) == 1 and len(inner) == 1:
            lows = [a for a in inner[0].args if a.is_number]
            if len(inner[0].args) == 2 and len(lows) == 1:
                (x,) = [a for a in inner[0].args if not a.is_number]
                return (f"np.clip({self._print(x)}, {self._print(lows[0])}, "
                        f"{self._print(bounds[0])})")
        return self._fold("np.minimum", expr.args)

    def _print_Abs(self, expr: sympy.Abs) -> str:  # noqa: N802
        return f"np.abs({self._print(expr.args[0])})"

    # Functions numpy lacks, printed as the op computing them does (``scipy.special.erf``);
    # sympy's own printer would write ``math.erf``, which fails on arrays.

    def _print_erf(self, expr: sympy.Function) -> str:
        return self._special(expr)

    def _print_erfc(self, expr: sympy.Function) -> str:
        return self._special(expr)

    def _print_loggamma(self, expr: sympy.Function) -> str:
        return self._special(expr)

    def _print_polygamma(self, expr: sympy.Function) -> str:
        order, x = expr.args
        if not (order.is_Integer and order >= 0):
            raise CodegenError(f"codegen: polygamma of order {order} has no numpy form")
        text = polygamma_text(int(order), self._print(x))
        # A multiple of zeta: parenthesized as an operand (`ast.unparse` drops what is spare).
        return text if text.startswith("scipy.") else f"({text})"

    def _special(self, expr: sympy.Function) -> str:
        op = special_functions()[type(expr)]
        return op.numpy.format(*(self._print(a) for a in expr.args))

    def _fold(self, ufunc: str, args: tuple[sympy.Expr, ...]) -> str:
        # sympy orders arguments with numbers first; numpy reads best with the array first.
        ordered = sorted(args, key=lambda a: a.is_number)
        text = self._print(ordered[0])
        for a in ordered[1:]:
            text = f"{ufunc}({text}, {self._print(a)})"
        return text

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:  # noqa: N802
        if expr.is_number and self._dtype == "float32":
            # np.sqrt(2) is a float64 scalar, which would make a float32 statement float64
            # (GELU's erf(z / sqrt(2))); its value as a Python number takes the array's dtype.
            return scalar_literal(float(expr), self._dtype)
        if expr.exp == -1:
            return f"1 / {self.parenthesize(expr.base, 50)}"
        if expr.exp == sympy.Rational(1, 2):
            return f"np.sqrt({self._print(expr.base)})"
        if expr.exp.is_Integer and expr.exp < 0:
            return f"1 / {self.parenthesize(expr.base ** -expr.exp, 50)}"
        return super()._print_Pow(expr, rational=rational)


def sympy_printer(
    names: dict[sympy.Symbol, str], dtype: str | None = None
) -> Callable[[sympy.Expr], str]:
    """sympy's numpy printer over the given argument names, as a function of the expression.

    ``dtype`` is that of the statement: float literals print as their float32 value in a
    float32 one (see `scalar_literal`).
    """
    printer = _SympyNumpy({s: _operand(n) for s, n in names.items()}, dtype)
    # sympy writes ``lr*W_grad``; `ast.unparse` spaces operators as the rest of the module does
    # (and keeps float literals exact: they print by repr).
    return lambda expr: ast.unparse(ast.parse(printer.doprint(expr), mode="eval"))


class NumpyPrinter:
    """Prints one IR node as numpy, given the names (or literals) of its inputs."""

    @classmethod
    def prints(cls, op: type[Op]) -> bool:
        """Whether nodes of ``op`` can be printed: a ``_print_<Op>`` method or a template."""
        return hasattr(cls, f"_print_{op.__name__}") or op.numpy is not None

    def statement(self, node: Expr, args: Sequence[str]) -> str | Lines:
        """The expression computing ``node``, or statement lines using ``{out}``."""
        method = getattr(self, f"_print_{node.op.__name__}", None)
        if method is not None:
            return method(node, list(args))
        template = node.op.numpy
        if template is None:
            raise CodegenError(
                f"codegen: op {node.op.name!r} has no numpy printing (no template and no "
                f"_print_{node.op.__name__} method); composite ops must be lowered first"
            )
        return template.format(*(_operand(a) for a in args))

    # ----------------------------------------------------------------- reductions

    def _print_Sum(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "sum", node.attr("axis"), node.attr("keepdims"), node)

    def _print_Max(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "max", node.attr("axis"), node.attr("keepdims"), node)

    def _print_Argmax(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        return f"np.argmax({args[0]})" if axis is None else f"np.argmax({args[0]}, axis={axis})"

    def _print_Argmin(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        return f"np.argmin({args[0]})" if axis is None else f"np.argmin({args[0]}, axis={axis})"

    def _print_AnyOf(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "any", node.attr("axis"), node.attr("keepdims"), node)

    def _print_AllOf(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "all", node.attr("axis"), node.attr("keepdims"), node)

    def _print_Size(self, node: Expr, args: list[str]) -> str:
        return size_text(node)

    # ----------------------------------------------------------------- contractions

    def _print_Einsum(self, node: Expr, args: list[str]) -> str:
        # With three or more operands the order of the pairwise contractions decides the cost
        # (a chain of matrices); numpy finds it with optimize=True (benchmarks/bench_einsum.py).
        optimize = ", optimize=True" if len(args) > 2 else ""
        operands = ", ".join(args)
        return f'np.einsum("{node.attr("subscripts")}", {operands}{optimize})'

    # ----------------------------------------------------------------- shapes

    def _print_Reshape(self, node: Expr, args: list[str]) -> str:
        source, target = node.inputs[0].shape, node.attr("shape")
        inserted = _inserted_axes(source, target)
        if inserted is not None:
            parts = ["None" if i in inserted else ":" for i in range(len(target))]
            while parts and parts[-1] == ":":
                parts.pop()
            return f"{args[0]}[{', '.join(parts)}]"
        return f"{args[0]}.reshape({shape_text(target)})"

    def _print_Transpose(self, node: Expr, args: list[str]) -> str:
        axes = node.attr("axes")
        if axes == tuple(reversed(range(len(axes)))):
            return f"{args[0]}.T"
        return f"np.transpose({args[0]}, {axes!r})"

    def _print_BroadcastTo(self, node: Expr, args: list[str]) -> str:
        return f"np.broadcast_to({args[0]}, {shape_text(node.shape)})"

    def _print_Concatenate(self, node: Expr, args: list[str]) -> str:
        return f"np.concatenate([{', '.join(args)}], axis={node.attr('axis')})"

    def _print_Index(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}[{index_text(node.attr('index'))}]"

    def _print_Unindex(self, node: Expr, args: list[str]) -> Lines:
        return [
            f"{{out}} = np.zeros({shape_text(node.shape)}, dtype={dtype_text(node.dtype)})",
            f"{{out}}[{index_text(node.attr('index'))}] = {args[0]}",
        ]

    def _print_Zeros(self, node: Expr, args: list[str]) -> str:
        return f"np.zeros({shape_text(node.shape)}, dtype={dtype_text(node.dtype)})"

    # ----------------------------------------------------------------- creation, scans

    def _print_Full(self, node: Expr, args: list[str]) -> str:
        shape, dtype = shape_text(node.shape), dtype_text(node.dtype)
        value = node.attr("fill_value").array
        if value == 1:
            return f"np.ones({shape}, dtype={dtype})"
        return f"np.full({shape}, {scalar_literal(value.item(), node.dtype)}, dtype={dtype})"

    def _print_Stack(self, node: Expr, args: list[str]) -> str:
        return f"np.stack([{', '.join(args)}], axis={node.attr('axis')})"

    def _print_Pad(self, node: Expr, args: list[str]) -> str:
        widths = node.attr("pad_width")
        value = node.attr("constant_values").array
        text = f"np.pad({args[0]}, {widths!r})"
        if value != 0 or np.signbit(value):
            text = text[:-1] + f", constant_values={scalar_literal(value.item(), node.dtype)})"
        return text

    def _print_Tile(self, node: Expr, args: list[str]) -> str:
        return f"np.tile({args[0]}, {node.attr('reps')!r})"

    def _print_Repeat(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        where = "" if axis is None else f", axis={axis}"
        return f"np.repeat({args[0]}, {node.attr('repeats')}{where})"

    def _print_Flip(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}[{flip_index_text(node)}]"

    def _print_Cumsum(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        return f"np.cumsum({args[0]})" if axis is None else f"np.cumsum({args[0]}, axis={axis})"

    def _print_Cumprod(self, node: Expr, args: list[str]) -> str:
        return f"np.cumprod({args[0]}, axis={node.attr('axis')})"

    def _print_Shift(self, node: Expr, args: list[str]) -> Lines:
        # Two slice assignments into a fresh array: np.pad of the one end and a slice of the
        # other would read better but costs five times as much (measured at (1000, 64)).
        axis, forward = node.attr("axis"), node.attr("forward")
        value = scalar_literal(node.attr("fill").array.item(), node.dtype)
        before = ":, " * axis
        enter, to, source = ("0", "1:", ":-1") if forward else ("-1", ":-1", "1:")
        return [
            f"{{out}} = np.empty_like({args[0]})",
            f"{{out}}[{before}{enter}] = {value}",
            f"{{out}}[{before}{to}] = {_operand(args[0])}[{before}{source}]",
        ]

    def _print_Prod(self, node: Expr, args: list[str]) -> str:
        return _method_call(args[0], "prod", node.attr("axis"), node.attr("keepdims"), node)

    # ----------------------------------------------------------------- dtypes and labels

    def _print_Cast(self, node: Expr, args: list[str]) -> str:
        if node.shape == ():
            # A scalar may be a Python number at run time (``N - 1`` from a size), which has
            # no ``.astype``; numpy's scalar type converts numbers and numpy scalars alike.
            return f"{dtype_text(node.dtype)}({args[0]})"
        return f"{_operand(args[0])}.astype({dtype_text(node.dtype)})"

    def _print_OneHot(self, node: Expr, args: list[str]) -> str:
        return f"np.eye({node.attr('depth')}, dtype={dtype_text(node.dtype)})[{args[0]}]"

    def _print_Pick(self, node: Expr, args: list[str]) -> str:
        axis = node.attr("axis")
        return f"np.take_along_axis({args[0]}, {args[1]}[..., None], axis={axis})[..., 0]"

    # ----------------------------------------------------------------- integer-array indexing

    def _print_Arange(self, node: Expr, args: list[str]) -> str:
        start, stop, step = node.attr("start"), node.attr("stop"), node.attr("step")
        bounds = [str(stop)] if (start, step) == (0, 1) else [str(start), str(stop)]
        if step != 1:
            bounds.append(str(step))
        if node.dtype != "int64":  # int64 is numpy's default for integer bounds
            bounds.append(f"dtype={dtype_text(node.dtype)}")
        return f"np.arange({', '.join(bounds)})"

    def _print_Gather(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}[{', '.join([':'] * node.attr('axis') + args[1:])}]"

    def _print_ScatterAdd(self, node: Expr, args: list[str]) -> Lines:
        # np.add.at, not fancy assignment: repeated indices (a tied id) must add up.
        axis, indices = node.attr("axis"), args[1:]
        if axis == 0 and len(indices) == 1:
            where = indices[0]
        else:
            where = "(" + ", ".join(["slice(None)"] * axis + indices) + ")"
        return [
            f"{{out}} = np.zeros({shape_text(node.shape)}, dtype={dtype_text(node.dtype)})",
            f"np.add.at({{out}}, {where}, {args[0]})",
        ]

    def _print_BasisProduct(self, node: Expr, args: list[str]) -> Lines:
        # Zeros, then a[..., d] on the diagonal of each (c, j) block: one assignment of the
        # operand's size, not a product with the identity.
        *lead, cols, n = node.shape
        blocks = shape_text((*lead, cols, n // cols, cols))
        return [
            f"{{out}} = np.zeros({shape_text(node.shape)}, dtype={dtype_text(node.dtype)})",
            f"{{out}}.reshape({blocks})[..., np.arange({cols}), :, np.arange({cols})] = {args[0]}",
        ]

    def _print_TakeAlongAxis(self, node: Expr, args: list[str]) -> str:
        return f"np.take_along_axis({args[0]}, {args[1]}, axis={node.attr('axis')})"
    # ----------------------------------------------------------------- random draws

    def _print_Uniform(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}.random({_draw_params(node)})"

    def _print_Normal(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}.standard_normal({_draw_params(node)})"

    def _print_Bernoulli(self, node: Expr, args: list[str]) -> str:
        return f"{args[0]}.random({_draw_params(node)}) < {_operand(args[1])}"
    # ----------------------------------------------------------------- convolution
    # Windows are numpy's sliding_window_view (a view); every contraction over them is one
    # np.tensordot, which copies the windows into one matrix and runs one GEMM (im2col).

    def _print_Windows(self, node: Expr, args: list[str]) -> str:
        return _windows_text(args[0], node.attr("window"), node.attr("strides"),
                             node.attr("dilation"))

    def _print_WindowsAdjoint(self, node: Expr, args: list[str]) -> Lines:
        """col2im: non-overlapping windows (stride >= window) are one transposed copy into a
        zero image; overlapping ones add one slice per kernel offset (never a loop over pixels)."""
        (kh, kw), (sh, sw), (dh, dw) = (node.attr(a) for a in ("window", "strides", "dilation"))
        packed = node.attr("packed")
        oh, ow = node.inputs[0].shape[1:3]
        n, h, w, c = node.shape
        dtype = dtype_text(node.dtype)
        if (dh, dw) == (1, 1) and sh >= kh and sw >= kw and not packed:
            lines = [
                f"{{out}} = np.zeros({shape_text((n, oh, sh, ow, sw, c))}, dtype={dtype})",
                f"{{out}}[:, :, :{kh}, :, :{kw}] = {args[0]}.transpose(0, 1, 4, 2, 5, 3)",
                f"{{out}} = {{out}}.reshape({shape_text((n, oh * sh, ow * sw, c))})",
            ]
            if oh * sh > h or ow * sw > w:
                lines.append(f"{{out}} = {{out}}[:, :{h}, :{w}]")
            if oh * sh < h or ow * sw < w:
                pads = ((0, 0), (0, max(h - oh * sh, 0)), (0, max(w - ow * sw, 0)), (0, 0))
                lines.append(f"{{out}} = np.pad({{out}}, {pads!r})")
            return lines
        # Straight-line code, one statement per kernel offset: each adds every window's pixel
        # at that offset, for all windows and the whole batch at once.
        lines = [f"{{out}} = np.zeros({shape_text(node.shape)}, dtype={dtype})"]
        for i in range(kh):
            for j in range(kw):
                rows = _slice_text(i * dh, oh, sh)
                cols = _slice_text(j * dw, ow, sw)
                k = (i * kw + j) * c
                part = f"[..., {k}:{k + c}]" if packed else f"[..., {i}, {j}]"
                lines.append(f"{{out}}[:, {rows}, {cols}] += {args[0]}{part}")
        return lines

    def _print_Patches(self, node: Expr, args: list[str]) -> str:
        """im2col: the windows view, window axes before channels, copied into C order."""
        x = node.inputs[0]
        window, strides, dilation = (node.attr(a) for a in ("window", "strides", "dilation"))
        windows = _windows_text(args[0], window, strides, dilation)
        text = (f"np.ascontiguousarray({windows}.transpose(0, 1, 2, 4, 5, 3))"
                f".reshape({shape_text(node.shape)})")
        # Where the windows are the input's own layout (a 1x1 kernel), that is no copy.
        probe = np.lib.stride_tricks.sliding_window_view(
            np.empty((2, *x.shape[1:]), np.int8),
            ((window[0] - 1) * dilation[0] + 1, (window[1] - 1) * dilation[1] + 1), axis=(1, 2),
        )[:, :: strides[0], :: strides[1], :, :: dilation[0], :: dilation[1]]
        if probe.transpose(0, 1, 2, 4, 5, 3).flags.c_contiguous:
            text += ".copy()"
        return text

    def _print_Conv2D(self, node: Expr, args: list[str]) -> str:
        rows = _filter_rows(node.inputs[1], args[1])
        return f"np.tensordot({args[0]}, {rows}, axes=1)"

    def _print_Conv2DBackpropPatches(self, node: Expr, args: list[str]) -> str:
        rows = _filter_rows(node.inputs[1], args[1])
        return f"np.tensordot({args[0]}, {rows}, axes=([3], [1]))"

    def _print_Conv2DBackpropFilter(self, node: Expr, args: list[str]) -> str:
        contraction = f"np.tensordot({args[0]}, {args[1]}, axes=([0, 1, 2], [0, 1, 2]))"
        return f"{contraction}.reshape({shape_text(node.shape)})"

    def _print_MaxPool2D(self, node: Expr, args: list[str]) -> Lines:
        """The elementwise maximum of the window's strided slices, one per window offset."""
        slices = _pool_slices(node, _operand(args[0]))
        if len(slices) == 1:
            return [f"{{out}} = {slices[0]}.copy()"]
        lines = [f"{{out}} = np.maximum({slices[0]}, {slices[1]})"]
        lines += [f"np.maximum({{out}}, {s}, out={{out}})" for s in slices[2:]]
        return lines

    def _print_MaxPoolShare(self, node: Expr, args: list[str]) -> Lines:
        """Count each window's maxima, one strided slice per offset; divide g by the count."""
        x, out, g = (_operand(a) for a in args)
        slices = _pool_slices(node, x)
        lines = [f"{{out}} = ({slices[0]} == {out}).astype({dtype_text(node.dtype)})"]
        lines += [f"{{out}} += {s} == {out}" for s in slices[1:]]
        lines.append(f"{{out}} = np.divide({g}, {{out}}, out={{out}})")
        return lines

    def _print_MaxPool2DGrad(self, node: Expr, args: list[str]) -> Lines:
        """Each window's share written at its maxima, one strided slice per offset."""
        x, out, share = (_operand(a) for a in args)
        (kh, kw), (sh, sw) = node.attr("window"), node.attr("strides")
        _, h, w, _ = node.shape
        _, oh, ow, _ = node.inputs[1].shape
        targets = _pool_slices(node, "{out}")
        sources = _pool_slices(node, x)
        shape, dtype = shape_text(node.shape), dtype_text(node.dtype)
        if (kh, kw) == (sh, sw) and (oh * kh, ow * kw) == (h, w):
            # The windows tile the image: every pixel is written once, straight into place.
            lines = [f"{{out}} = np.empty({shape}, dtype={dtype})"]
            lines += [f"np.multiply({source} == {out}, {share}, out={target})"
                      for target, source in zip(targets, sources)]
            return lines
        lines = [f"{{out}} = np.zeros({shape}, dtype={dtype})"]
        # Windows that overlap add into the same pixels; disjoint ones only write.
        assign = "=" if sh >= kh and sw >= kw else "+="
        for target, source in zip(targets, sources):
            lines.append(f"{target} {assign} ({source} == {out}) * {share}")
        return lines
    # ----------------------------------------------------------------- elementwise

    def _print_Clip(self, node: Expr, args: list[str]) -> str:
        # Call arguments need no parentheses: ``np.clip(x, -1.0, 1.0)``, not ``(-1.0)``.
        return f"np.clip({', '.join(args)})"

    # ----------------------------------------------------------------- special functions

    def _print_Polygamma(self, node: Expr, args: list[str]) -> str:
        return polygamma_text(node.attr("n"), _operand(args[0]))

    # ----------------------------------------------------------------- sympy bodies

    def _print_Elementwise(self, node: Expr, args: list[str]) -> str:
        try:
            names = dict(zip(node.attr("symbols"), args))
            return sympy_printer(names, node.dtype)(node.attr("body"))
        except NotImplementedError as exc:  # sympy: PrintMethodNotImplementedError
            raise CodegenError(
                f"codegen: elementwise {node.attr('fname')!r} uses a function numpy does not "
                f"have ({exc.args[0].splitlines()[0]}); rewrite the body with sympy functions "
                "that numpy supports"
            ) from None


def _draw_params(node: Expr) -> str:
    """``(N, 3), dtype=np.float32``: a draw's shape, and its dtype where it is not numpy's
    default (float64)."""
    dtype = node.attr("dtype")
    shape = shape_text(node.shape)
    return shape if dtype == "float64" else f"{shape}, dtype={dtype_text(dtype)}"
def _filter_rows(w: Expr, text: str) -> str:
    """An HWIO filter as the ``(KH * KW * C, O)`` matrix of its rows (a view)."""
    kh, kw, c, o = w.shape
    return f"{_operand(text)}.reshape(({kh * kw * c}, {o}))"  # type: ignore[operator]


def _pool_slices(node: Expr, x: str) -> list[str]:
    """``x[:, rows, cols]`` for each offset of a pooling window, in row-major order: the slice
    holding that offset's pixel of every window (``node`` has the window and the strides)."""
    (kh, kw), (sh, sw) = node.attr("window"), node.attr("strides")
    pooled = node.shape if node.op.name != "max_pool2d_grad" else node.inputs[1].shape
    _, oh, ow, _ = pooled
    return [f"{x}[:, {_slice_text(i, oh, sh)}, {_slice_text(j, ow, sw)}]"
            for i in range(kh) for j in range(kw)]


def _slice_text(start: int, count: int, step: int) -> str:
    """``start:stop:step`` picking ``count`` elements (the step left out when it is 1)."""
    stop = start + (count - 1) * step + 1
    return f"{start}:{stop}" if step == 1 else f"{start}:{stop}:{step}"


def _windows_text(x: str, window: tuple[int, int], strides: tuple[int, int],
                  dilation: tuple[int, int]) -> str:
    """The ``(N, OH, OW, C, KH, KW)`` windows of ``x`` as a view: numpy's sliding windows of
    the dilated kernel's extent, subsampled by the strides and the dilation."""
    (kh, kw), (sh, sw), (dh, dw) = window, strides, dilation
    extent = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    text = f"np.lib.stride_tricks.sliding_window_view({x}, {extent!r}, axis=(1, 2))"
    steps = [f"::{s}" if s != 1 else ":" for s in (sh, sw)]
    if (dh, dw) != (1, 1):
        steps += [":", f"::{dh}" if dh != 1 else ":", f"::{dw}" if dw != 1 else ":"]
    while steps and steps[-1] == ":":
        steps.pop()
    return text if not steps else f"{text}[:, {', '.join(steps)}]"


def _operand(text: str) -> str:
    """Parenthesize negative literals so templates like ``{0} ** {1}`` stay correct."""
    return f"({text})" if text.startswith("-") else text


def _method_call(arg: str, method: str, axis: tuple[int, ...], keepdims: bool, node: Expr) -> str:
    full = axis == tuple(range(node.inputs[0].ndim))
    params = [] if full and not keepdims else [f"axis={_axis_text(axis)}"]
    if keepdims:
        params.append("keepdims=True")
    target = arg if _is_primary(arg) else f"np.asarray({arg})"
    return f"{target}.{method}({', '.join(params)})"


def _is_primary(text: str) -> bool:
    """Whether ``text`` (a name, or a view inlined at its use: ``x.T``, ``x[:, None]``) takes a
    method call as it is; a literal (``1.0``, ``-x``) needs ``np.asarray`` first."""
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(tree, (ast.Name, ast.Attribute, ast.Subscript, ast.Call))


def _inserted_axes(source: Shape, target: Shape) -> set[int] | None:
    """Positions of size-1 axes ``target`` inserts into ``source``, if that is all it does."""
    if len(target) <= len(source):
        return None
    inserted: set[int] = set()
    i = 0
    for j, d in enumerate(target):
        if i < len(source) and source[i] == d:
            i += 1
        elif d == 1:
            inserted.add(j)
        else:
            return None
    return inserted if i == len(source) else None
