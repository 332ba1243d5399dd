"""Convolution and pooling: `conv2d`, `conv1d`, `max_pool2d`, `avg_pool2d`.

The ops work on channels-last tensors (NHWC inputs, HWIO filters, TensorFlow's layouts); the
channels-first forms (NCHW with OIHW filters, PyTorch's) transpose in and out around them.
Padding is `sd.pad`'s op (`creation.Pad`), so the convolution ops only stride and dilate, and the
gradient of the padding is a crop.

- `Patches` is im2col: each window of the input as one row, copied once and shared by the
  forward product and the filter gradient.
- `Conv2D` is one GEMM of the patches with the filter's rows (`np.tensordot`);
  `Conv2DBackpropFilter` contracts the patches with the cotangent over batch and pixels (one
  GEMM); `Conv2DBackpropPatches` gives each window's gradient (one GEMM), and `WindowsAdjoint`
  adds the windows back into the image (col2im), one strided slice per kernel offset, never
  a loop over pixels or batch entries. That is the transposed convolution, measured 1.4 to 7
  times faster than convolving the zero-spread cotangent with the flipped filter
  (`benchmarks/bench_conv.py`).
- `Windows` is the windows view ``(N, OH, OW, C, KH, KW)``. `MaxPool2D` prints as an
  elementwise maximum of the window's strided slices (20 times faster than reducing the view's
  small axes); its gradient is `max`'s (ties share it equally). Average pooling is a sum over
  the windows view.

The three products are bilinear, so each one's derivative is made of the other two, and
second derivatives come for free.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError
from ..ir import Expr
from ..types import Shape, format_shape
from . import creation as _creation
from . import elementwise as _ew
from . import reduce as _reduce
from . import shape as _shape
from .base import PROD, Latex, Op, as_expr, latex_call, register, require_float

Pair = tuple[int, int]
Pads = tuple[Pair, Pair]

# --------------------------------------------------------------------------- shape helpers


def _out_size(padded: int, kernel: int, stride: int, dilation: int) -> int:
    """Number of windows along one axis: ``(padded - effective kernel) // stride + 1``."""
    return (padded - (kernel - 1) * dilation - 1) // stride + 1


def _spatial(op: str, x: Expr) -> tuple[int, int]:
    """The static height and width of an NHWC tensor, refused with a message otherwise."""
    if x.ndim != 4:
        raise ShapeError(
            f"{op}: expected a 4-d input (batch, height, width, channels), got shape "
            f"{format_shape(x.shape)}"
        )
    h, w = x.shape[1], x.shape[2]
    if not isinstance(h, int) or not isinstance(w, int) or not isinstance(x.shape[3], int):
        raise ShapeError(
            f"{op}: height, width and channels must be known sizes (only the batch may be "
            f"symbolic), got input shape {format_shape(x.shape)}"
        )
    return h, w


def _check_float(op: str, *xs: Expr) -> str:
    """The operands' common float dtype; refused (naming ``op``) if one is not float or they
    differ."""
    for x in xs:
        require_float(op, x)
    if len({x.dtype for x in xs}) > 1:
        raise DTypeError(
            f"{op}: operands have different dtypes ({', '.join(x.dtype for x in xs)}); cast one "
            "with .astype() so they match"
        )
    return xs[0].dtype


# --------------------------------------------------------------------------- ops


@register
class Windows(Op):
    """the (strided, dilated) sliding windows of an NHWC tensor: (N, OH, OW, C, KH, KW), a view"""

    name = "windows"
    is_view = free = True
    hint, latex = "{0}_windows", latex_call(r"\operatorname{windows}")
    latex_rule = (r"C = \operatorname{windows}(A) \;\Rightarrow\; \bar{A} = "
                  r"\operatorname{windows}^\top(\bar{C}) \text{ (each window added back)}")

    @classmethod
    def infer(cls, x: Expr, *, window: Pair, strides: Pair, dilation: Pair) -> tuple[Shape, str]:
        h, w = _spatial("windows", x)
        oh = _out_size(h, window[0], strides[0], dilation[0])
        ow = _out_size(w, window[1], strides[1], dilation[1])
        return (x.shape[0], oh, ow, x.shape[3], window[0], window[1]), x.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, x: Expr, *, window: Pair, strides: Pair, dilation: Pair
    ) -> tuple[Expr]:
        size = (int(x.shape[1]), int(x.shape[2]))
        return (WindowsAdjoint.make(g, size=size, window=window, strides=strides,
                                    dilation=dilation, packed=False),)


@register
class WindowsAdjoint(Op):
    """windows added back into an image of ``size`` (col2im): the adjoint of `Windows`

    The windows come as `Windows` gives them, ``(N, OH, OW, C, KH, KW)``, or ``packed``:
    ``(N, OH, OW, KH * KW * C)``, each window's pixels in (KH, KW, C) order, as a product with
    the rows of an HWIO filter gives them (the input gradient of a convolution).
    """

    name = "windows_adjoint"
    hint, latex = "{0}_col2im", latex_call(r"\operatorname{windows}^\top")
    latex_rule = (r"C = \operatorname{windows}^\top(A) \;\Rightarrow\; \bar{A} = "
                  r"\operatorname{windows}(\bar{C})")

    @classmethod
    def infer(
        cls, c: Expr, *, size: Pair, window: Pair, strides: Pair, dilation: Pair, packed: bool
    ) -> tuple[Shape, str]:
        channels = c.shape[3] // (window[0] * window[1]) if packed else c.shape[3]
        return (c.shape[0], size[0], size[1], channels), c.dtype

    @staticmethod
    def vjp(
        g: Expr, out: Expr, c: Expr, *, size: Pair, window: Pair, strides: Pair, dilation: Pair,
        packed: bool,
    ) -> tuple[Expr]:
        windows = Windows.make(g, window=window, strides=strides, dilation=dilation)
        if packed:
            windows = _shape.reshape(_shape.transpose(windows, (0, 1, 2, 4, 5, 3)), c.shape)
        return (windows,)


@register
class Patches(Op):
    """im2col: every window of an NHWC tensor as one row, ``(N, OH, OW, KH * KW * C)``, its
    pixels in (KH, KW, C) order (that of an HWIO filter's rows); a contiguous copy"""

    name = "patches"
    hint, shows_as_operand = "{0}_patches", True  # math shows the image, convolved
    latex_rule = (r"C = \operatorname{patches}(A) \;\Rightarrow\; \bar{A} = "
                  r"\operatorname{patches}^\top(\bar{C}) \text{ (each window added back)}")

    @classmethod
    def infer(cls, x: Expr, *, window: Pair, strides: Pair, dilation: Pair) -> tuple[Shape, str]:
        n, oh, ow, c, kh, kw = Windows.infer(x, window=window, strides=strides,
                                             dilation=dilation)[0]
        return (n, oh, ow, kh * kw * c), x.dtype  # type: ignore[operator]

    @staticmethod
    def vjp(
        g: Expr, out: Expr, x: Expr, *, window: Pair, strides: Pair, dilation: Pair
    ) -> tuple[Expr]:
        size = (int(x.shape[1]), int(x.shape[2]))
        return (WindowsAdjoint.make(g, size=size, window=window, strides=strides,
                                    dilation=dilation, packed=True),)


@register
class Conv2D(Op):
    """a convolution as one GEMM: the input's patches times the HWIO filter's rows"""

    name = "conv2d"
    hint = "conv_{0}"

    @classmethod
    def name_hint(cls, inputs: Sequence[str], attrs: Mapping[str, Any]) -> str:
        """``conv_x`` for the convolution of ``x`` (named after the image, not its patches)."""
        return super().name_hint([inputs[0].removesuffix("_patches"), *inputs[1:]], attrs)
    latex = Latex(r"{0} \star {1}", PROD, (PROD + 1, PROD + 1))
    latex_rule = (r"C = A \star W \;\Rightarrow\; \bar{A} = \operatorname{patches}^\top"
                  r"(\bar{C} W^\top),\; \bar{W} = \operatorname{patches}(A)^\top \bar{C}")

    @classmethod
    def infer(cls, p: Expr, w: Expr) -> tuple[Shape, str]:
        kh, kw, c_in, c_out = w.shape
        if p.shape[3] != kh * kw * c_in:  # type: ignore[operator]
            raise ShapeError(
                f"conv2d: patches {format_shape(p.shape)} do not fit the filter "
                f"{format_shape(w.shape)}; build convolutions with sd.conv2d"
            )
        return (*p.shape[:3], c_out), _check_float("conv2d", p, w)

    @staticmethod
    def vjp(g: Expr, out: Expr, p: Expr, w: Expr) -> tuple[Expr, Expr]:
        return Conv2DBackpropPatches.make(g, w), Conv2DBackpropFilter.make(p, g, kernel=w.shape)


@register
class Conv2DBackpropPatches(Op):
    """the patches' gradient of `Conv2D`: g times the filter's rows transposed, one GEMM"""

    name = "conv2d_backprop_patches"
    hint = "{0}_filter_T"
    latex = Latex(r"{0} \, {1}^\top", PROD, (PROD, PROD + 1))
    latex_rule = (r"C = G W^\top \;\Rightarrow\; \bar{G} = \bar{C} \star W,\; "
                  r"\bar{W} = \bar{C}^\top G")

    @classmethod
    def infer(cls, g: Expr, w: Expr) -> tuple[Shape, str]:
        kh, kw, c_in, _ = w.shape
        return (*g.shape[:3], kh * kw * c_in), _check_float("conv2d", g, w)  # type: ignore[operator]

    @staticmethod
    def vjp(gp: Expr, out: Expr, g: Expr, w: Expr) -> tuple[Expr, Expr]:
        return Conv2D.make(gp, w), Conv2DBackpropFilter.make(gp, g, kernel=w.shape)


@register
class Conv2DBackpropFilter(Op):
    """the filter gradient of `Conv2D`: the patches contracted with g over batch and pixels"""

    name = "conv2d_backprop_filter"
    hint = "{0}_conv_filter"
    latex = Latex(r"{0}^\top {1}", PROD, (PROD + 1, PROD + 1))
    latex_rule = (r"C = P^\top G \;\Rightarrow\; \bar{P} = G \bar{C}^\top,\; "
                  r"\bar{G} = P \star \bar{C}")

    @classmethod
    def infer(cls, p: Expr, g: Expr, *, kernel: Shape) -> tuple[Shape, str]:
        return kernel[:3] + (g.shape[3],), _check_float("conv2d", p, g)

    @staticmethod
    def vjp(gw: Expr, out: Expr, p: Expr, g: Expr, *, kernel: Shape) -> tuple[Expr, Expr]:
        return Conv2DBackpropPatches.make(g, gw), Conv2D.make(p, gw)


@register
class MaxPool2D(Op):
    """the maximum of each window of an NHWC tensor (unpadded: `creation.Pad` pads with -inf)"""

    name = "max_pool2d"
    hint, latex = "pool_{0}", latex_call(r"\operatorname{maxpool}")
    latex_rule = (r"c = \max_{i \in \text{window}} a_i \;\Rightarrow\; \bar{a} = "
                  r"\bar{c} \odot [a = c] / \textstyle\sum_i [a_i = c] \text{ per window}")

    @classmethod
    def infer(cls, x: Expr, *, window: Pair, strides: Pair) -> tuple[Shape, str]:
        n, oh, ow, c, _, _ = Windows.infer(x, window=window, strides=strides,
                                           dilation=(1, 1))[0]
        return (n, oh, ow, c), x.dtype

    @staticmethod
    def vjp(g: Expr, out: Expr, x: Expr, *, window: Pair, strides: Pair) -> tuple[Expr]:
        # As `max` does: each window's gradient goes to its maxima, shared equally by ties.
        share = MaxPoolShare.make(x, out, g, window=window, strides=strides)
        return (MaxPool2DGrad.make(x, out, share, window=window, strides=strides),)


def _window_hits(x: Expr, out: Expr, window: Pair, strides: Pair) -> Expr:
    """1.0 where a window's pixel is its maximum, else 0.0: ``(N, OH, OW, C, KH, KW)``."""
    windows = Windows.make(x, window=window, strides=strides, dilation=(1, 1))
    return _ew.cast(_ew.equal(windows, _shape.expand_dims(out, (4, 5))), x.dtype)


@register
class MaxPoolShare(Op):
    """g divided by the number of maxima in its window: what each maximum of `MaxPool2D` gets"""

    name = "max_pool2d_share"
    hint, latex = "{2}_share", Latex(r"{2} / \#\max", PROD, (PROD, 0, PROD + 1))
    latex_rule = (r"c = g / \#\{i: a_i = \max a\} \;\Rightarrow\; \bar{g} = \bar{c} / "
                  r"\#\{i: a_i = \max a\}, \text{ no gradient to } a")

    @classmethod
    def infer(cls, x: Expr, out: Expr, g: Expr, *, window: Pair,
              strides: Pair) -> tuple[Shape, str]:
        return g.shape, g.dtype

    @staticmethod
    def vjp(gs: Expr, share: Expr, x: Expr, out: Expr, g: Expr, *, window: Pair,
            strides: Pair) -> tuple[Expr | None, Expr | None, Expr]:
        # Linear in g; the count of maxima is piecewise constant in x (no gradient).
        return None, None, MaxPoolShare.make(x, out, gs, window=window, strides=strides)


@register
class MaxPool2DGrad(Op):
    """the gradient of `MaxPool2D`: each window's share added at its maxima"""

    name = "max_pool2d_grad"
    hint, latex = "{0}_bar", latex_call(r"\operatorname{maxpool}^\top")
    latex_rule = (r"C = \operatorname{maxpool}^\top(S) \;\Rightarrow\; \bar{S} = "
                  r"\textstyle\sum_{i \in \text{window}} \bar{C}_i [a_i = \max a]")

    @classmethod
    def infer(cls, x: Expr, out: Expr, share: Expr, *, window: Pair,
              strides: Pair) -> tuple[Shape, str]:
        return x.shape, share.dtype

    @staticmethod
    def vjp(gx: Expr, dx: Expr, x: Expr, out: Expr, share: Expr, *, window: Pair,
            strides: Pair) -> tuple[Expr | None, Expr | None, Expr]:
        # Linear in the shares; where the maxima are is piecewise constant in x.
        windows = Windows.make(gx, window=window, strides=strides, dilation=(1, 1))
        hits = _window_hits(x, out, window, strides)
        return None, None, _reduce.sum(windows * hits, axis=(4, 5))


# --------------------------------------------------------------------------- arguments


def _pair(op: str, name: str, value: object) -> Pair:
    """An int or a pair of ints (height, width), each at least 1."""
    items = (value, value) if isinstance(value, (int, np.integer)) else value
    ok = isinstance(items, (tuple, list)) and len(items) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
        for v in items
    )
    if not ok:
        raise ShapeError(
            f"{op}: {name} must be an int >= 1 or a pair of them (height, width), "
            f"got {value!r}"
        )
    return int(items[0]), int(items[1])  # type: ignore[index]


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> Pair:
    """TensorFlow's SAME padding along one axis: output ``ceil(size / stride)``, the odd pixel
    of padding at the end."""
    effective = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def _pads(op: str, padding: object, size: Pair, kernel: Pair, strides: Pair,
          dilation: Pair) -> Pads:
    """The explicit ``((top, bottom), (left, right))`` padding for a user's ``padding``."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0), (0, 0)
        if mode == "SAME":
            return (_same_pads(size[0], kernel[0], strides[0], dilation[0]),
                    _same_pads(size[1], kernel[1], strides[1], dilation[1]))
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) and padding >= 0:
        return (int(padding), int(padding)), (int(padding), int(padding))
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        axes = []
        for p in padding:
            if isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0:
                axes.append((int(p), int(p)))
            elif (isinstance(p, (tuple, list)) and len(p) == 2 and all(
                    isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                    for v in p)):
                axes.append((int(p[0]), int(p[1])))
            else:
                break
        else:
            return axes[0], axes[1]
    raise ShapeError(
        f"{op}: padding must be 'VALID', 'SAME', an int >= 0, or a pair (height, width) of "
        f"ints or of (before, after) pairs, got {padding!r}"
    )


def _check_fit(op: str, x_shape: Shape, kernel_shape: Shape, what: str, size: Pair,
               kernel: Pair, strides: Pair, dilation: Pair, pads: Pads) -> None:
    """Refuse a window larger than the padded input, a stride beyond it, or padding that makes
    a window of padding only; the message names both shapes."""
    both = f"input {format_shape(x_shape)}, {what} {format_shape(kernel_shape)}"
    for axis, name in ((0, "height"), (1, "width")):
        effective = (kernel[axis] - 1) * dilation[axis] + 1
        before, after = pads[axis]
        padded = size[axis] + before + after
        if effective > padded:
            raise ShapeError(
                f"{op}: the {what}'s {name} ({effective} with dilation) is larger than the "
                f"padded input's ({padded}) ({both}); use a smaller {what}, padding='SAME', "
                "or a larger input"
            )
        if max(before, after) >= effective:
            raise ShapeError(
                f"{op}: padding {pads[axis]} along the {name} is not smaller than the {what} "
                f"({effective}), so a window would hold padding only ({both}); pad less"
            )
        if strides[axis] > padded:
            raise ShapeError(
                f"{op}: the stride {strides[axis]} along the {name} is larger than the padded "
                f"input ({padded}) ({both}); use a stride <= {padded}"
            )


def _to_nhwc(op: str, x: Expr, data_format: str) -> Expr:
    if data_format not in ("NHWC", "NCHW"):
        raise ShapeError(f"{op}: data_format must be 'NHWC' or 'NCHW', got {data_format!r}")
    if x.ndim != 4:
        raise ShapeError(
            f"{op}: expected a 4-d input in {data_format} layout, got shape {format_shape(x.shape)}"
        )
    return x if data_format == "NHWC" else _shape.transpose(x, (0, 2, 3, 1))


def _from_nhwc(y: Expr, data_format: str) -> Expr:
    return y if data_format == "NHWC" else _shape.transpose(y, (0, 3, 1, 2))


def _padded(x: Expr, pads: Pads, value: float) -> Expr:
    """The spatial axes of an NHWC tensor padded with ``value`` (-inf under a max-pool)."""
    if pads == ((0, 0), (0, 0)):
        return x
    fill = _creation._fill_value("pad", value, x.dtype, True)
    return _creation.Pad.make(x, pad_width=((0, 0), *pads, (0, 0)), constant_values=fill)


# --------------------------------------------------------------------------- public API


def conv2d(
    x: object,
    w: object,
    strides: int | Sequence[int] = 1,
    padding: str | int | Sequence[object] = "VALID",
    dilation: int | Sequence[int] = 1,
    data_format: str = "NHWC",
) -> Expr:
    """2-d convolution (cross-correlation, as in every deep-learning framework).

    Args:
        x: the input, ``(N, H, W, C)`` for ``data_format="NHWC"`` or ``(N, C, H, W)`` for
            ``"NCHW"``; the batch size may be symbolic, the other sizes must be known.
        w: the filter, ``(KH, KW, C, O)`` (HWIO, TensorFlow's) with NHWC, or ``(O, C, KH, KW)``
            (OIHW, PyTorch's) with NCHW.
        strides, dilation: an int or a ``(height, width)`` pair, each >= 1.
        padding: ``"VALID"`` (none), ``"SAME"`` (TensorFlow's rule: output ``ceil(H / stride)``,
            the odd pixel at the end), an int, or a pair of ints or of ``(before, after)`` pairs.
        data_format: ``"NHWC"`` or ``"NCHW"``.

    Returns:
        ``(N, OH, OW, O)`` (NHWC) or ``(N, O, OH, OW)`` (NCHW).

    Raises:
        ShapeError: bad ranks, a channel count that does not match, a filter larger than the
            padded input, a stride or padding that does not fit; DTypeError: non-float operands.
    """
    x, w = as_expr(x, "conv2d"), as_expr(w, "conv2d")
    xh = _to_nhwc("conv2d", x, data_format)
    if w.ndim != 4:
        layout = "(KH, KW, C, O)" if data_format == "NHWC" else "(O, C, KH, KW)"
        raise ShapeError(
            f"conv2d: expected a 4-d filter {layout}, got shape {format_shape(w.shape)} for "
            f"input {format_shape(x.shape)}"
        )
    wh = w if data_format == "NHWC" else _shape.transpose(w, (2, 3, 1, 0))
    size = _spatial("conv2d", xh)
    if not all(isinstance(d, int) for d in wh.shape):
        raise ShapeError(f"conv2d: the filter's sizes must be known, got {format_shape(w.shape)}")
    if wh.shape[2] != xh.shape[3]:
        raise ShapeError(
            f"conv2d: the filter {format_shape(w.shape)} expects {wh.shape[2]} input channels "
            f"but the input {format_shape(x.shape)} ({data_format}) has {xh.shape[3]}; the "
            f"filter is {'(KH, KW, C, O)' if data_format == 'NHWC' else '(O, C, KH, KW)'}"
        )
    _check_float("conv2d", x, w)
    kernel = (int(wh.shape[0]), int(wh.shape[1]))
    strides_ = _pair("conv2d", "strides", strides)
    dilation_ = _pair("conv2d", "dilation", dilation)
    pads = _pads("conv2d", padding, size, kernel, strides_, dilation_)
    _check_fit("conv2d", x.shape, w.shape, "filter", size, kernel, strides_, dilation_, pads)
    patches = Patches.make(_padded(xh, pads, 0.0), window=kernel, strides=strides_,
                           dilation=dilation_)
    return _from_nhwc(Conv2D.make(patches, wh), data_format)


def conv1d(
    x: object,
    w: object,
    stride: int = 1,
    padding: str | int | Sequence[int] = "VALID",
    dilation: int = 1,
    data_format: str = "NWC",
) -> Expr:
    """1-d convolution: ``x`` ``(N, W, C)`` with ``w`` ``(K, C, O)`` (NWC), or ``(N, C, W)``
    with ``(O, C, K)`` (NCW); `conv2d` over a unit height.

    ``padding`` is ``"VALID"``, ``"SAME"``, an int or a ``(before, after)`` pair.
    """
    x, w = as_expr(x, "conv1d"), as_expr(w, "conv1d")
    if data_format not in ("NWC", "NCW"):
        raise ShapeError(f"conv1d: data_format must be 'NWC' or 'NCW', got {data_format!r}")
    if x.ndim != 3 or w.ndim != 3:
        raise ShapeError(
            f"conv1d: expected a 3-d input and a 3-d filter in {data_format} layout, got "
            f"input {format_shape(x.shape)} and filter {format_shape(w.shape)}"
        )
    if data_format == "NCW":
        x = _shape.transpose(x, (0, 2, 1))
        w = _shape.transpose(w, (2, 1, 0))
    if isinstance(padding, str) or isinstance(padding, (int, np.integer)):
        pad2: object = padding if isinstance(padding, str) else (0, int(padding))
    else:
        pad2 = ((0, 0), tuple(padding))
    y = conv2d(_shape.expand_dims(x, 1), _shape.expand_dims(w, 0), strides=(1, stride),
               padding=pad2, dilation=(1, dilation))
    y = _shape.squeeze(y, 1)
    return y if data_format == "NWC" else _shape.transpose(y, (0, 2, 1))


def _pool_windows(op: str, x: object, window: object, strides: object, padding: object,
                  data_format: str, value: float) -> tuple[Expr, Pads, Pair]:
    x = as_expr(x, op)
    xh = _to_nhwc(op, x, data_format)
    size = _spatial(op, xh)
    _check_float(op, x)
    window_ = _pair(op, "window", window)
    strides_ = window_ if strides is None else _pair(op, "strides", strides)
    pads = _pads(op, padding, size, window_, strides_, (1, 1))
    _check_fit(op, x.shape, window_, "window", size, window_, strides_, (1, 1), pads)
    windows = Windows.make(_padded(xh, pads, value), window=window_, strides=strides_,
                           dilation=(1, 1))
    return windows, pads, size


def max_pool2d(
    x: object,
    window: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | int | Sequence[object] = "VALID",
    data_format: str = "NHWC",
) -> Expr:
    """Max pooling over ``window`` (an int or a pair); ``strides`` default to the window.

    SAME padding pads with -inf (padding never wins). The gradient goes to the maximum of each
    window; tied maxima share it equally, as `symdl.max` does.
    """
    windows, _, _ = _pool_windows("max_pool2d", x, window, strides, padding, data_format,
                                  -math.inf)
    pooled = MaxPool2D.make(windows.inputs[0], window=windows.attr("window"),
                            strides=windows.attr("strides"))
    return _from_nhwc(pooled, data_format)


def avg_pool2d(
    x: object,
    window: int | Sequence[int],
    strides: int | Sequence[int] | None = None,
    padding: str | int | Sequence[object] = "VALID",
    data_format: str = "NHWC",
) -> Expr:
    """Average pooling over ``window``; with padding, each window's mean is over its pixels
    inside the input (TensorFlow's rule: padding is not counted)."""
    windows, pads, size = _pool_windows("avg_pool2d", x, window, strides, padding, data_format,
                                        0.0)
    total = _reduce.sum(windows, axis=(4, 5))
    kh, kw = windows.shape[4], windows.shape[5]
    if pads == ((0, 0), (0, 0)):
        return _from_nhwc(total / float(kh * kw), data_format)
    # How many input pixels each window covers, known when the graph is built.
    inside = np.zeros((size[0] + sum(pads[0]), size[1] + sum(pads[1])))
    inside[pads[0][0]:pads[0][0] + size[0], pads[1][0]:pads[1][0] + size[1]] = 1.0
    sh, sw = windows.attr("strides")
    counts = np.lib.stride_tricks.sliding_window_view(inside, (kh, kw))[::sh, ::sw].sum((2, 3))
    divisor = as_expr(np.asarray(counts[:, :, None], dtype=windows.dtype), "avg_pool2d")
    return _from_nhwc(total / divisor, data_format)


__all__ = ["avg_pool2d", "conv1d", "conv2d", "max_pool2d"]
