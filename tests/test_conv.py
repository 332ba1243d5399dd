"""Convolution and pooling: values against naive loops, gradients against finite differences.

The references here are written from the definitions (a loop over every output pixel, padding
by TensorFlow's documented SAME rule), not from symdl's ops or the generated code.
"""

from __future__ import annotations

import ast
import math
import runpy
import time
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.errors import DTypeError, ShapeError
from tests.helpers import check_grads, run_one, seed_of

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- naive references


def tf_same(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's SAME padding (its documented formula)."""
    effective = (kernel - 1) * dilation + 1
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + effective - size, 0)
    return total // 2, total - total // 2


def naive_conv2d(x: np.ndarray, w: np.ndarray, strides: tuple[int, int] = (1, 1),
                 pads: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0)),
                 dilation: tuple[int, int] = (1, 1)) -> np.ndarray:
    """NHWC x HWIO cross-correlation, one output pixel and channel pair at a time."""
    n, h, wd, c = x.shape
    kh, kw, _, o = w.shape
    xp = np.zeros((n, h + sum(pads[0]), wd + sum(pads[1]), c), x.dtype)
    xp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + wd] = x
    eh, ew = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh = (xp.shape[1] - eh) // strides[0] + 1
    ow = (xp.shape[2] - ew) // strides[1] + 1
    out = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * strides[0]:i * strides[0] + eh:dilation[0],
                       j * strides[1]:j * strides[1] + ew:dilation[1], :]
            out[:, i, j, :] = np.einsum("nabc,abco->no", patch, w)
    return out


def naive_pool(x: np.ndarray, window: tuple[int, int], strides: tuple[int, int],
               pads: tuple[tuple[int, int], tuple[int, int]], kind: str) -> np.ndarray:
    """NHWC max or average pooling; padding is left out of every window."""
    n, h, wd, c = x.shape
    oh = (h + sum(pads[0]) - window[0]) // strides[0] + 1
    ow = (wd + sum(pads[1]) - window[1]) // strides[1] + 1
    out = np.zeros((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            top, left = i * strides[0] - pads[0][0], j * strides[1] - pads[1][0]
            patch = x[:, max(top, 0):top + window[0], max(left, 0):left + window[1], :]
            out[:, i, j, :] = patch.max((1, 2)) if kind == "max" else patch.mean((1, 2))
    return out


def _values(shape: tuple[int, ...], seed: str, dtype: str = "float64") -> np.ndarray:
    return np.random.default_rng(seed_of(seed)).uniform(-1, 1, shape).astype(dtype)


# --------------------------------------------------------------------------- forward values

CONV_CASES = [
    # id, input (N, H, W, C), filter (KH, KW, C, O), strides, padding, dilation
    ("valid", (2, 7, 6, 3), (3, 2, 3, 4), 1, "VALID", 1),
    ("same_odd", (2, 7, 6, 3), (3, 3, 3, 2), 1, "SAME", 1),
    ("same_even_kernel", (1, 6, 5, 2), (4, 2, 2, 3), 1, "SAME", 1),
    ("strided_same", (2, 9, 8, 2), (3, 3, 2, 2), 2, "SAME", 1),
    ("strided_valid_remainder", (1, 10, 9, 2), (3, 2, 2, 3), (3, 2), "VALID", 1),
    ("explicit_pairs", (1, 6, 6, 2), (3, 3, 2, 2), 1, ((1, 2), (0, 1)), 1),
    ("dilated", (2, 9, 9, 2), (3, 2, 2, 2), 1, "VALID", (2, 3)),
    ("dilated_same_strided", (1, 10, 8, 1), (3, 3, 1, 2), 2, "SAME", 2),
]


def _pads_for(padding: object, x_shape: tuple[int, ...], w_shape: tuple[int, ...],
              strides: tuple[int, int], dilation: tuple[int, int]) -> tuple:
    if padding == "VALID":
        return ((0, 0), (0, 0))
    if padding == "SAME":
        return (tf_same(x_shape[1], w_shape[0], strides[0], dilation[0]),
                tf_same(x_shape[2], w_shape[1], strides[1], dilation[1]))
    return padding


def _pair(v: object) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
@pytest.mark.parametrize("data_format", ["NHWC", "NCHW"])
def test_conv2d_matches_naive_loops(case: tuple, data_format: str, symdl_cache: Path) -> None:
    name, xs, ws, strides, padding, dilation = case
    xv, wv = _values(xs, name + "x"), _values(ws, name + "w")
    expected = naive_conv2d(xv, wv, _pair(strides),
                            _pads_for(padding, xs, ws, _pair(strides), _pair(dilation)),
                            _pair(dilation))
    if data_format == "NCHW":
        xv, wv = xv.transpose(0, 3, 1, 2), wv.transpose(3, 2, 0, 1)
        expected = expected.transpose(0, 3, 1, 2)
    x = sd.placeholder("x", (None, *xv.shape[1:]), "float64")
    w = sd.parameter("w", wv.shape, "float64")
    y = sd.conv2d(x, w, strides=strides, padding=padding, dilation=dilation,
                  data_format=data_format)
    assert y.shape[1:] == expected.shape[1:]
    got = run_one([x, w], y, [xv, wv], symdl_cache)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CONV_CASES, ids=[c[0] for c in CONV_CASES])
def test_conv2d_gradients(case: tuple, symdl_cache: Path) -> None:
    name, xs, ws, strides, padding, dilation = case
    xv, wv = _values(xs, name + "x"), _values(ws, name + "w")
    x = sd.placeholder("x", xs, "float64")
    w = sd.parameter("w", ws, "float64")
    y = sd.conv2d(x, w, strides=strides, padding=padding, dilation=dilation)
    pads = _pads_for(padding, xs, ws, _pair(strides), _pair(dilation))

    def ref(xv: np.ndarray, wv: np.ndarray) -> np.ndarray:
        return naive_conv2d(xv, wv, _pair(strides), pads, _pair(dilation))

    check_grads(ref, [x, w], y, [xv, wv], cache_dir=symdl_cache, seed=seed_of(name))


def test_conv2d_second_derivative(symdl_cache: Path) -> None:
    """A Hessian-vector product runs through the three convolution ops' own derivatives."""
    xv, wv = _values((2, 5, 5, 2), "hx"), _values((3, 3, 2, 2), "hw")
    vv = _values((3, 3, 2, 2), "v")
    x = sd.placeholder("x", (2, 5, 5, 2), "float64")
    w = sd.parameter("w", (3, 3, 2, 2), "float64")
    v = sd.placeholder("v", (3, 3, 2, 2), "float64")
    loss = sd.sum(sd.tanh(sd.conv2d(x, w, padding="SAME")))
    got = run_one([x, w, v], sd.hvp(loss, w, v), [xv, wv, vv], symdl_cache)
    pads = (tf_same(5, 3, 1), tf_same(5, 3, 1))
    xp = np.pad(xv, ((0, 0), pads[0], pads[1], (0, 0)))

    def grad_w(wv: np.ndarray) -> np.ndarray:
        # The gradient of sum(tanh(conv)) by hand: windows of x against 1 - tanh^2.
        g = 1 - np.tanh(naive_conv2d(xv, wv, pads=pads)) ** 2
        return np.array([[np.einsum("nijc,nijo->co", xp[:, a:a + 5, b:b + 5], g)
                          for b in range(3)] for a in range(3)])

    eps = 1e-6
    numeric = (grad_w(wv + eps * vv) - grad_w(wv - eps * vv)) / (2 * eps)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-8)


def test_second_derivatives_through_a_conv_net(symdl_cache: Path) -> None:
    """Hessian-vector products through conv, max- and average pooling equal the central
    difference of the (finite-difference-checked) gradient."""
    x = sd.placeholder("x", (2, 9, 9, 2), "float64")
    w = sd.parameter("w", (3, 3, 2, 3), "float64")
    v = sd.placeholder("v", (3, 3, 2, 3), "float64")
    h = sd.max_pool2d(sd.tanh(sd.conv2d(x, w, padding="SAME")), 3, strides=2, padding="SAME")
    loss = sd.sum(sd.avg_pool2d(h, 2, strides=1) ** 2)
    mod = sd.compile({"grad": ([x, w], sd.grad(loss, w)), "hvp": ([x, w, v], sd.hvp(loss, w, v))},
                     "conv_hvp", cache_dir=symdl_cache)
    xv, wv = _values((2, 9, 9, 2), "hvp_x"), _values((3, 3, 2, 3), "hvp_w")
    vv = _values((3, 3, 2, 3), "hvp_v")
    eps = 1e-6
    numeric = (mod.grad(xv, wv + eps * vv) - mod.grad(xv, wv - eps * vv)) / (2 * eps)
    np.testing.assert_allclose(mod.hvp(xv, wv, vv), numeric, rtol=1e-5, atol=1e-8)


def test_conv1d_matches_conv_along_one_axis(symdl_cache: Path) -> None:
    xv, wv = _values((3, 11, 2), "c1x"), _values((4, 2, 3), "c1w")
    w = sd.parameter("w", (4, 2, 3), "float64")
    for fmt in ("NWC", "NCW"):
        xin = xv if fmt == "NWC" else xv.transpose(0, 2, 1)
        win = wv if fmt == "NWC" else wv.transpose(2, 1, 0)
        xs = sd.placeholder("x", (None, *xin.shape[1:]), "float64")
        ws = sd.parameter("w", win.shape, "float64")
        y = sd.conv1d(xs, ws, stride=2, padding="SAME", data_format=fmt)
        pads = ((0, 0), tf_same(11, 4, 2))
        expected = naive_conv2d(xv[:, None], wv[None], (1, 2), pads)[:, 0]
        if fmt == "NCW":
            expected = expected.transpose(0, 2, 1)
        got = run_one([xs, ws], y, [xin, win], symdl_cache)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    xf = sd.placeholder("x", (3, 11, 2), "float64")
    y = sd.conv1d(xf, w, padding=(1, 2))
    check_grads(lambda a, b: naive_conv2d(a[:, None], b[None], pads=((0, 0), (1, 2)))[:, 0],
                [xf, w], y, [xv, wv], cache_dir=symdl_cache)


# --------------------------------------------------------------------------- pooling

POOL_CASES = [
    # id, input, window, strides, padding
    ("2x2", (2, 6, 8, 3), 2, None, "VALID"),
    ("3x3_stride2_same", (2, 7, 6, 2), 3, 2, "SAME"),  # overlapping windows
    ("2x3_remainder", (1, 7, 8, 2), (2, 3), None, "VALID"),  # odd rows left over
    ("3x2_stride3_same", (1, 7, 5, 1), (3, 2), 3, "SAME"),  # gaps between windows
]


@pytest.mark.parametrize("case", POOL_CASES, ids=[c[0] for c in POOL_CASES])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_values_and_gradients(case: tuple, kind: str, symdl_cache: Path) -> None:
    name, xs, window, strides, padding = case
    window_, strides_ = _pair(window), _pair(window if strides is None else strides)
    pads = ((0, 0), (0, 0)) if padding == "VALID" else (
        tf_same(xs[1], window_[0], strides_[0]), tf_same(xs[2], window_[1], strides_[1]))
    rng = np.random.default_rng(seed_of(name))
    # Distinct values: max-pooling is differentiable away from ties.
    xv = rng.permutation(np.linspace(-1, 1, math.prod(xs))).reshape(xs)
    x = sd.placeholder("x", (None, *xs[1:]), "float64")
    pool = sd.max_pool2d if kind == "max" else sd.avg_pool2d
    y = pool(x, window, strides=strides, padding=padding)
    expected = naive_pool(xv, window_, strides_, pads, kind)
    np.testing.assert_allclose(run_one([x], y, [xv], symdl_cache), expected, rtol=1e-12,
                               atol=1e-12)
    xf = sd.placeholder("x", xs, "float64")
    check_grads(lambda a: naive_pool(a, window_, strides_, pads, kind), [xf],
                pool(xf, window, strides=strides, padding=padding), [xv], cache_dir=symdl_cache)
    # NCHW is the same pooling on transposed data.
    xc = sd.placeholder("x", (None, xs[3], xs[1], xs[2]), "float64")
    yc = pool(xc, window, strides=strides, padding=padding, data_format="NCHW")
    np.testing.assert_allclose(run_one([xc], yc, [xv.transpose(0, 3, 1, 2)], symdl_cache),
                               expected.transpose(0, 3, 1, 2), rtol=1e-12, atol=1e-12)


def test_max_pool_ties_share_the_gradient(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (1, 2, 4, 1), "float64")
    xv = np.array([[1.0, 1.0, 0.0, 3.0], [1.0, 0.5, 3.0, 3.0]]).reshape(1, 2, 4, 1)
    (g,) = sd.grad(sd.sum(sd.max_pool2d(x, 2) * np.array([2.0, 6.0])[:, None]), [x])
    got = run_one([x], g, [xv], symdl_cache)
    # First window: three tied ones share 2; second: three tied threes share 6.
    expected = np.array([[2 / 3, 2 / 3, 0.0, 2.0], [2 / 3, 0.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)
    np.testing.assert_allclose(got, expected, rtol=1e-15)


def test_float32_stays_float32(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 8, 8, 3), "float32")
    w = sd.parameter("w", (3, 3, 3, 4), "float32")
    h = sd.max_pool2d(sd.relu(sd.conv2d(x, w, padding="SAME", strides=1)), 2)
    h = sd.avg_pool2d(h, 2, padding="SAME", strides=1)
    loss = sd.mean(h * h)
    grads = sd.grad(loss, [x, w])
    assert h.dtype == "float32" and all(g.dtype == "float32" for g in grads)
    xv, wv = _values((4, 8, 8, 3), "f32x", "float32"), _values((3, 3, 3, 4), "f32w", "float32")
    mod = sd.compile({"f": ([x, w], [h, *grads])}, "conv32", cache_dir=symdl_cache)
    out = mod.f(xv, wv)
    assert [o.dtype for o in out] == [np.float32] * 3
    expected = naive_pool(naive_pool(np.maximum(naive_conv2d(
        xv.astype(np.float64), wv.astype(np.float64), pads=((1, 1), (1, 1))), 0), (2, 2), (2, 2),
        ((0, 0), (0, 0)), "max"), (2, 2), (1, 1), ((0, 1), (0, 1)), "avg")
    np.testing.assert_allclose(out[0], expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- bad input


def test_errors_name_the_shapes() -> None:
    x = sd.placeholder("x", (None, 8, 8, 3))
    with pytest.raises(ShapeError, match=r"\(3, 3, 4, 5\).*3 input channels|expects 4 input"):
        sd.conv2d(x, sd.parameter("w", (3, 3, 4, 5)))
    with pytest.raises(ShapeError, match=r"larger than the padded input.*\(N, 8, 8, 3\).*"
                                         r"\(9, 3, 3, 2\)"):
        sd.conv2d(x, sd.parameter("w", (9, 3, 3, 2)))
    with pytest.raises(ShapeError, match=r"window.*larger.*\(N, 8, 8, 3\)"):
        sd.max_pool2d(x, (9, 2))
    with pytest.raises(ShapeError, match=r"padding \(3, 3\).*\(N, 8, 8, 3\).*\(3, 3, 3, 2\)"):
        sd.conv2d(x, sd.parameter("w", (3, 3, 3, 2)), padding=3)
    with pytest.raises(ShapeError, match=r"stride 9.*\(N, 8, 8, 3\)"):
        sd.conv2d(x, sd.parameter("w", (3, 3, 3, 2)), strides=9)
    with pytest.raises(ShapeError, match="strides must be an int >= 1"):
        sd.conv2d(x, sd.parameter("w", (3, 3, 3, 2)), strides=0)
    with pytest.raises(ShapeError, match="padding must be"):
        sd.conv2d(x, sd.parameter("w", (3, 3, 3, 2)), padding="FULL")
    with pytest.raises(ShapeError, match="4-d"):
        sd.conv2d(sd.placeholder("v", (None, 8, 3)), sd.parameter("w", (3, 3, 3, 2)))
    with pytest.raises(ShapeError, match="data_format"):
        sd.max_pool2d(x, 2, data_format="HWCN")
    with pytest.raises(ShapeError, match="known sizes"):
        sd.conv2d(sd.placeholder("v", (None, "H", 8, 3)), sd.parameter("w", (3, 3, 3, 2)))
    with pytest.raises(DTypeError, match="conv2d"):
        sd.conv2d(x, sd.parameter("w", (3, 3, 3, 2), "float64"))
    with pytest.raises(DTypeError, match="max_pool2d"):
        sd.max_pool2d(sd.placeholder("k", (None, 4, 4, 1), "int64"), 2)
    # NCHW names the layout the filter should have.
    with pytest.raises(ShapeError, match=r"\(O, C, KH, KW\)"):
        sd.conv2d(sd.placeholder("c", (None, 3, 8, 8)), sd.parameter("w", (4, 2, 3, 3)),
                  data_format="NCHW")


# --------------------------------------------------------------------------- generated code


def _loops(source: str) -> list[str]:
    return [ast.unparse(n).splitlines()[0] for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.For, ast.While, ast.comprehension))]


def test_generated_code_has_no_python_loops() -> None:
    x = sd.placeholder("x", (None, 12, 12, 2))
    w = sd.parameter("w", (3, 3, 2, 4))
    h = sd.conv2d(x, w, padding="SAME", strides=2, dilation=1)
    h = sd.max_pool2d(sd.relu(h), 3, strides=2, padding="SAME")  # overlapping windows
    h = sd.avg_pool2d(h, 2, padding="SAME")
    loss = sd.sum(h * h)
    source = sd.generate({"f": ([x, w], [loss, *sd.grad(loss, [x, w])])}, "noloop")
    body = source[:source.index("def _check_argument(")]  # the shared entry-check helpers
    assert _loops(body) == [], _loops(body)
    assert "np.tensordot(" in body and "sliding_window_view" in body


# --------------------------------------------------------------------------- layers


def test_layers_build_a_conv_net(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 10, 10, 1))
    h, p1 = sd.layers.conv2d(x, 4, 3, name="c1", activation=sd.relu, padding="SAME")
    h = sd.layers.max_pool2d(h, 2)
    flat = sd.layers.flatten(h)
    logits, p2 = sd.layers.dense(flat, 3, name="out")
    assert flat.shape == ("N", 5 * 5 * 4) and logits.shape == ("N", 3)
    params = {**p1, **p2}
    assert [p.name for p in params] == ["c1_W", "c1_b", "out_W", "out_b"]
    values = sd.init.initialize(params, seed=0)
    # He normal over the filter's fan-in (3 * 3 * 1).
    assert values["c1_W"].shape == (3, 3, 1, 4) and values["c1_W"].dtype == np.float32
    big = sd.init.hwio(sd.init.he_normal)((5, 5, 16, 400), np.random.default_rng(0))
    assert abs(big.std() / math.sqrt(2 / (5 * 5 * 16)) - 1) < 0.02
    big = sd.init.oihw(sd.init.he_normal)((400, 16, 5, 5), np.random.default_rng(0))
    assert abs(big.std() / math.sqrt(2 / (5 * 5 * 16)) - 1) < 0.02
    xv = _values((2, 10, 10, 1), "layers", "float32")
    got = run_one([x, *params], logits, [xv, *values.values()], symdl_cache)
    wv, bv = values["c1_W"].astype(np.float64), values["c1_b"]
    conv = np.maximum(naive_conv2d(xv.astype(np.float64), wv, pads=((1, 1), (1, 1))) + bv, 0)
    pooled = naive_pool(conv, (2, 2), (2, 2), ((0, 0), (0, 0)), "max").reshape(2, -1)
    np.testing.assert_allclose(got, pooled @ values["out_W"] + values["out_b"], rtol=1e-5,
                               atol=1e-5)


# --------------------------------------------------------------------------- the LeNet example


def test_lenet_step_equals_the_handwritten_baseline(symdl_cache: Path) -> None:
    """The benchmark's hand-written numpy LeNet computes what the generated step computes (loss
    and updated parameters over three Adam steps), so its timing ratio compares like with like."""
    from benchmarks.bench_conv import HandwrittenLeNet

    example = runpy.run_path(str(ROOT / "examples" / "lenet_mnist.py"))
    inputs, loss, params, metrics, _ = example["build"](dropout=None)
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(1e-3), inputs, metrics,
                                       name="lenet_smoke", cache_dir=symdl_cache)
    values = sd.init.initialize(params, seed=0)
    hand = HandwrittenLeNet(values)
    state = step.init_state()
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.random((8, 784), dtype=np.float32)
        y = rng.integers(0, 10, 8)
        got = float(step((x, y), values, state)[0])
        assert abs(got - hand.step(x, y)) < 1e-5
    for name, value in values.items():
        np.testing.assert_allclose(value, hand.p[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.mark.slow
def test_lenet_example_learns_the_shipped_subset(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("SYMDL_DATA", raising=False)
    monkeypatch.setenv("SYMDL_OFFLINE", "1")
    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path))  # not a full MNIST in the user cache
    example = runpy.run_path(str(ROOT / "examples" / "lenet_mnist.py"))
    start = time.perf_counter()
    history = example["train"](None, epochs=3, quiet=True, cache_dir=tmp_path)
    assert history.last("val_accuracy") >= 0.85, history.epochs
    assert time.perf_counter() - start < 300
