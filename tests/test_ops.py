"""The per-op table: every op's values against hand-written numpy, its gradient against central
finite differences (float64, random direction), in float64 and float32 variants.

One row per case: ``case(id, build, args, ref)``. ``build`` takes the leaves (one per `Arg`,
named a, b, c, ...) and returns an expression; ``ref`` takes the same values as numpy arrays and
returns the expected value. Adding an op to `symdl.ops.OPS` without a row here fails
`test_every_op_has_a_row`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.special
import sympy

import symdl as sd
from symdl.ir import Expr, toposort
from symdl.ops import OPS
from symdl.ops.conv import Windows
from symdl.ops.linalg import basis_product
from symdl.rewrite import lower
from tests.helpers import (
    Domain,
    assert_close,
    away_from_zero,
    check_grads,
    distinct,
    integers,
    one_hot_rows,
    probability_rows,
    run_one,
    seed_of,
    uniform,
    value_for,
)
from tests.test_conv import naive_conv2d, naive_pool, tf_same

FLOAT = "float"  # an Arg of this dtype takes the variant's float dtype (float64 or float32)
NAMES = "abcdefgh"


@dataclass(frozen=True)
class Arg:
    """One input of a row: its shape (None is the batch size N), domain, dtype and leaf kind."""

    shape: tuple[object, ...]
    domain: Domain = field(default_factory=uniform)
    dtype: str = FLOAT
    kind: str = "placeholder"


@dataclass(frozen=True)
class Case:
    """One row of the op table."""

    id: str
    build: Callable[..., Expr]
    args: tuple[Arg, ...]
    ref: Callable[..., np.ndarray]
    grad: bool = True  # check gradients (when the output and some input are float)
    f32: bool = True  # also run a float32 variant
    rtol: float = 1e-10
    atol: float = 1e-12
    rtol32: float = 1e-5
    atol32: float = 1e-5

    def leaves(self, float_dtype: str) -> list[Expr]:
        """The row's leaves, float args in ``float_dtype``."""
        result = []
        for name, arg in zip(NAMES, self.args, strict=False):
            dtype = float_dtype if arg.dtype == FLOAT else arg.dtype
            if arg.kind == "rng":
                result.append(sd.rng(name))
                continue
            make = sd.parameter if arg.kind == "parameter" else sd.placeholder
            result.append(make(name, arg.shape, dtype))
        return result

    def values(self, leaves: list[Expr]) -> list[np.ndarray]:
        """Random inputs from each arg's domain (seeded by the row id: reproducible)."""
        rng = np.random.default_rng(seed_of(self.id))
        return [_drawn() if a.kind == "rng" else value_for(x, a.domain, rng)
                for x, a in zip(leaves, self.args, strict=True)]


def case(id: str, build: Callable[..., Expr], args: list[Arg], ref: Callable[..., np.ndarray],
         **options: object) -> Case:
    """A row; ``args`` may hold bare shapes for uniform float inputs."""
    args_ = tuple(a if isinstance(a, Arg) else Arg(a) for a in args)
    return Case(id, build, args_, ref, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- numpy references


def np_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_logsumexp(x: np.ndarray, axis: int = -1, keepdims: bool = False) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    out = np.log(np.exp(x - m).sum(axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis)


def np_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return x - np_logsumexp(x, axis, keepdims=True)


def np_sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def np_sigmoid_cross_entropy(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    # -(y log sigmoid(z) + (1 - y) log(1 - sigmoid(z))), as TensorFlow computes it.
    return np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))


def np_huber(a: np.ndarray, b: np.ndarray, delta: float) -> np.ndarray:
    r = np.abs(a - b)
    return np.mean(np.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)))


def _not_near_halves(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Integers and halves plus 0.1 to 0.2 either way: floor(2x), round and clip at +-0.5 are
    flat within any finite-difference step."""
    base = rng.integers(-4, 4, shape) / 2
    return base + rng.choice([-1.0, 1.0], shape) * rng.uniform(0.1, 0.2, shape)


def _with_nans(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    values = rng.uniform(-2, 2, shape)
    values[rng.random(shape) < 0.4] = np.nan
    return values


POSITIVE = uniform(0.5, 2.0)
UNIT = uniform(-0.9, 0.9)
AWAY = away_from_zero()
NOTIES = distinct()
LABELS4 = integers(4)
MASK: Domain = lambda rng, shape: rng.random(shape) < 0.5  # noqa: E731
C34 = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
# Random draws: an rng arg is fed a generator of this seed; a reference draws by hand from a
# new generator of the same seed, in the generated code's order (re-seeded on every call, so
# finite differences see one fixed mask).
RNG = Arg((), dtype="generator", kind="rng")
RNG_SEED = 1299


def _drawn() -> np.random.Generator:
    return np.random.default_rng(RNG_SEED)


C43 = np.linspace(0.5, 2.0, 12).reshape(4, 3)


def with_zeros(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform values in which row 0 has one exact zero and row 1 two (prod's hard cases)."""
    x = rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    x[0, 1] = 0.0
    x[1, 0] = x[1, -1] = 0.0
    return x

softplus_sym = sd.elementwise(lambda z: sympy.log(1 + sympy.exp(z)), name="softplus_sym")
bump = sd.elementwise(lambda u, w: u * sympy.exp(-(w**2)) + sympy.sin(u * w), name="bump")
affine2 = sd.elementwise(lambda u, w: 2 * u - w / 2, name="affine2")  # constant derivatives
first_sq = sd.elementwise(lambda u, w: u**2, name="first_sq")  # does not use its 2nd argument
gelu_sym = sd.elementwise(lambda z: z * (1 + sympy.erf(z / sympy.sqrt(2))) / 2, name="gelu")
NOT_NEAR_HALVES: Domain = _not_near_halves
WITH_NANS: Domain = _with_nans


# --------------------------------------------------------------------------- the table

CASES: list[Case] = [
    # ---- arithmetic (operators and functions), broadcasting
    case("add", lambda a, b: a + b, [(3, 4), (3, 4)], lambda a, b: a + b),
    case("add_fn_bcast_31_4", lambda a, b: sd.add(a, b), [(3, 1), (4,)], lambda a, b: a + b),
    case("add_python_scalar", lambda a: a + 1.5, [(3,)], lambda a: a + 1.5),
    case("radd_python_scalar", lambda a: 2 + a, [(2, 3)], lambda a: 2 + a),
    case("subtract", lambda a, b: a - b, [(3, 4), (4,)], lambda a, b: a - b),
    case("rsub", lambda a: 2.0 - a, [(3,)], lambda a: 2.0 - a),
    case("subtract_fn", lambda a, b: sd.subtract(a, b), [(2, 1, 3), (4, 1)], lambda a, b: a - b),
    case("multiply", lambda a, b: a * b, [(3, 4), (3, 4)], lambda a, b: a * b),
    case("scalar_times_matrix", lambda s, m: s * m, [(), (3, 4)], lambda s, m: s * m),
    case("multiply_fn_bcast", lambda a, b: sd.multiply(a, b), [(4, 1, 3), (2, 1)],
         lambda a, b: a * b),
    case("np_array_times_expr", lambda a: C34 * a, [(3, 4)], lambda a: C34 * a, f32=False),
    case("np_array_plus_expr", lambda a: C34[0] + a, [(3, 4)], lambda a: C34[0] + a, f32=False),
    case("np_array_matmul_expr", lambda a: C34 @ a, [(4, 2)], lambda a: C34 @ a, f32=False),
    case("divide", lambda a, b: a / b, [(3, 4), Arg((3, 4), POSITIVE)], lambda a, b: a / b),
    case("rtruediv", lambda a: 1.0 / a, [Arg((4,), POSITIVE)], lambda a: 1.0 / a),
    case("divide_fn_bcast", lambda a, b: sd.divide(a, b), [(2, 3), Arg((3,), POSITIVE)],
         lambda a, b: a / b),
    case("power", lambda a, b: a**b, [Arg((3, 4), POSITIVE), (3, 4)], lambda a, b: a**b),
    case("power_int_exponent", lambda a: a**3, [(3, 4)], lambda a: a**3),
    case("power_half", lambda a: a**0.5, [Arg((4,), POSITIVE)], lambda a: a**0.5),
    case("rpow", lambda a: 2.0**a, [(4,)], lambda a: 2.0**a),
    case("power_fn_bcast", lambda a, b: sd.power(a, b), [Arg((2, 3), POSITIVE), (3,)],
         lambda a, b: a**b),
    case("negative", lambda a: -a, [(3, 4)], lambda a: -a),
    case("negative_fn", lambda a: sd.negative(a), [(2,)], lambda a: -a),
    case("maximum", lambda a, b: sd.maximum(a, b), [(3, 4), (3, 4)], np.maximum),
    case("maximum_bcast_scalar", lambda a: sd.maximum(a, 0.25), [Arg((3, 4), AWAY)],
         lambda a: np.maximum(a, 0.25)),
    case("minimum", lambda a, b: sd.minimum(a, b), [(3, 4), (4,)], np.minimum),
    # ---- comparisons (bool, no gradient) and where
    case("less", lambda a, b: a < b, [(3, 4), (4,)], lambda a, b: a < b),
    case("less_fn", lambda a, b: sd.less(a, b), [(3,), (3,)], np.less),
    case("less_equal", lambda a, b: a <= b, [(3, 4), (3, 4)], lambda a, b: a <= b),
    case("less_equal_fn", lambda a: sd.less_equal(a, 0.5), [(4,)], lambda a: a <= 0.5),
    case("greater", lambda a: a > 0.0, [(3, 4)], lambda a: a > 0.0),
    case("greater_fn", lambda a, b: sd.greater(a, b), [(3, 4), (4,)], np.greater),
    case("greater_equal", lambda a, b: sd.greater_equal(a, b), [(3, 1), (4,)],
         np.greater_equal),
    case("equal_int", lambda k, m: sd.equal(k, m), [Arg((6,), LABELS4, "int64")] * 2, np.equal),
    case("not_equal_int", lambda k: sd.not_equal(k, 2), [Arg((6,), LABELS4, "int64")],
         lambda k: k != 2),
    case("where_greater", lambda a, b: sd.where(a > b, a, b), [(3, 4), (3, 4)],
         lambda a, b: np.where(a > b, a, b)),
    case("where_less_scalar_branch", lambda a: sd.where(a < 0.5, a * 2, 1.0), [(3, 4)],
         lambda a: np.where(a < 0.5, a * 2, 1.0)),
    case("where_less_equal_bcast", lambda a, b, c: sd.where(a <= b, c, -c),
         [(4,), (3, 1), (3, 4)], lambda a, b, c: np.where(a <= b, c, -c)),
    case("where_greater_equal", lambda a, b: sd.where(a >= 0.0, a, b), [Arg((5,), AWAY), ()],
         lambda a, b: np.where(a >= 0.0, a, b)),
    case("where_equal_int", lambda k, a, b: sd.where(sd.equal(k, 1), a, b),
         [Arg((6,), LABELS4, "int64"), (6,), (6,)], lambda k, a, b: np.where(k == 1, a, b)),
    case("where_not_equal_int", lambda k, a: sd.where(sd.not_equal(k, 0), a, -a),
         [Arg((3, 4), LABELS4, "int64"), (3, 4)], lambda k, a: np.where(k != 0, a, -a)),
    case("where_bool_leaf", lambda m, a, b: sd.where(m, a, b),
         [Arg((3, 4), MASK, "bool"), (3, 4), (4,)], np.where),
    # ---- unary math
    case("exp", sd.exp, [(3, 4)], np.exp),
    case("log", sd.log, [Arg((3, 4), POSITIVE)], np.log),
    case("log1p", sd.log1p, [Arg((3, 4), UNIT)], np.log1p),
    case("expm1", sd.expm1, [Arg((3, 4), UNIT)], np.expm1),
    case("sqrt", sd.sqrt, [Arg((3, 4), POSITIVE)], np.sqrt),
    case("square", sd.square, [(3, 4)], np.square),
    case("sin", sd.sin, [(3, 4)], np.sin),
    case("cos", sd.cos, [(3, 4)], np.cos),
    case("tanh", sd.tanh, [(3, 4)], np.tanh),
    case("sigmoid", sd.sigmoid, [Arg((3, 4), uniform(-6, 6))], np_sigmoid),
    case("softplus", sd.softplus, [Arg((3, 4), uniform(-6, 6))], lambda a: np.log1p(np.exp(a))),
    case("relu", sd.relu, [Arg((3, 4), AWAY)], lambda a: np.maximum(a, 0)),
    case("abs", sd.abs, [Arg((3, 4), AWAY)], np.abs),
    case("abs_builtin", lambda a: abs(a), [Arg((4,), AWAY)], np.abs),
    case("sign", sd.sign, [Arg((3, 4), AWAY)], np.sign),
    case("cast_to_float32", lambda a: sd.cast(a, "float32"), [(3, 4)],
         lambda a: a.astype(np.float32), grad=False, rtol=1e-6, atol=1e-7),
    case("astype_int_to_float", lambda k, a: k.astype(a.dtype) * a,
         [Arg((3, 4), LABELS4, "int64"), (3, 4)], lambda k, a: k * a),
    case("cast_float_to_int", lambda a: sd.cast(a * 4, "int64"), [Arg((3, 4), POSITIVE)],
         lambda a: (a * 4).astype(np.int64), f32=False),
    # ---- reductions: axis None / int / negative / tuple, keepdims
    case("sum_all", sd.sum, [(3, 4)], np.sum),
    case("sum_axis0", lambda a: sd.sum(a, axis=0), [(3, 4)], lambda a: a.sum(axis=0)),
    case("sum_axis_neg", lambda a: sd.sum(a, axis=-1), [(2, 3, 4)], lambda a: a.sum(axis=-1)),
    case("sum_axis_tuple", lambda a: sd.sum(a, axis=(0, 2)), [(2, 3, 4)],
         lambda a: a.sum(axis=(0, 2))),
    case("sum_keepdims", lambda a: sd.sum(a, axis=1, keepdims=True), [(2, 3, 4)],
         lambda a: a.sum(axis=1, keepdims=True)),
    case("sum_all_keepdims", lambda a: sd.sum(a, keepdims=True), [(3, 4)],
         lambda a: a.sum(keepdims=True)),
    case("sum_method_batch", lambda a: a.sum(1), [(None, 4)], lambda a: a.sum(1)),
    case("mean_all", sd.mean, [(3, 4)], np.mean),
    case("mean_batch_axis", lambda a: sd.mean(a, axis=0), [(None, 4)], lambda a: a.mean(0)),
    case("mean_tuple_keepdims", lambda a: a.mean(axis=(-1, 0), keepdims=True), [(2, 3, 4)],
         lambda a: a.mean(axis=(-1, 0), keepdims=True)),
    case("mean_batch_all", lambda a: sd.mean(a), [(None, 3)], np.mean),
    case("var_axis_ddof", lambda a: sd.var(a, axis=1, ddof=1), [(3, 4)],
         lambda a: a.var(1, ddof=1)),
    case("std_batch_axis", lambda a: sd.std(a, axis=0), [(None, 4)], lambda a: a.std(0)),
    case("norm_frobenius", sd.norm, [(3, 4)], np.linalg.norm),
    case("norm_1_axis", lambda a: sd.norm(a, 1, axis=1), [Arg((3, 4), away_from_zero())],
         lambda a: np.linalg.norm(a, 1, axis=1)),
    case("max_all", sd.max, [Arg((3, 4), NOTIES)], np.max),
    case("max_axis", lambda a: sd.max(a, axis=1), [Arg((3, 4), NOTIES)], lambda a: a.max(1)),
    case("max_neg_keepdims", lambda a: a.max(axis=-2, keepdims=True), [Arg((2, 3, 4), NOTIES)],
         lambda a: a.max(axis=-2, keepdims=True)),
    case("max_tuple", lambda a: sd.max(a, axis=(0, 2)), [Arg((2, 3, 4), NOTIES)],
         lambda a: a.max(axis=(0, 2))),
    case("min_axis", lambda a: sd.min(a, axis=0), [Arg((3, 4), NOTIES)], lambda a: a.min(0)),
    case("min_all_keepdims", lambda a: sd.min(a, keepdims=True), [Arg((3, 4), NOTIES)],
         lambda a: a.min(keepdims=True)),
    case("argmax_all", sd.argmax, [Arg((3, 4), NOTIES)], np.argmax),
    case("argmax_axis", lambda a: sd.argmax(a, axis=1), [Arg((None, 4), NOTIES)],
         lambda a: np.argmax(a, axis=1)),
    case("argmax_neg_axis", lambda a: sd.argmax(a, axis=-2), [Arg((2, 3, 4), NOTIES)],
         lambda a: np.argmax(a, axis=-2)),
    # ---- matmul: vector, 2-D, batched, broadcast-batched, symbolic batch
    case("matmul_vec_vec", lambda a, b: a @ b, [(3,), (3,)], lambda a, b: a @ b),
    case("matmul_vec_mat", lambda a, b: a @ b, [(3,), (3, 4)], lambda a, b: a @ b),
    case("matmul_mat_vec", lambda a, b: sd.matmul(a, b), [(4, 3), (3,)], np.matmul),
    case("matmul_2d", lambda a, b: a @ b, [(2, 3), (3, 4)], lambda a, b: a @ b),
    case("matmul_batched", lambda a, b: a @ b, [(2, 3, 4), (2, 4, 5)], np.matmul),
    case("matmul_batch_times_mat", lambda a, b: a @ b, [(2, 3, 4), (4, 5)], np.matmul),
    case("matmul_mat_times_batch", lambda a, b: a @ b, [(3, 4), (2, 4, 5)], np.matmul),
    case("matmul_broadcast_batch", lambda a, b: a @ b, [(2, 1, 3, 4), (3, 4, 2)], np.matmul),
    # a @ W along W's basis (full Jacobians): a[..., d] on the diagonal of each (c, j) block
    case("basis_product_vector", lambda a: basis_product(a, 3), [(4,)],
         lambda a: np.kron(np.eye(3)[:, None, :], a[None, :, None]).reshape(3, 12)),
    case("basis_product_batched", lambda a: basis_product(a, 2), [(2, 3, 4)],
         lambda a: np.einsum("bnd,cj->bncdj", a, np.eye(2)).reshape(2, 3, 2, 8)),
    case("matmul_batch_vec", lambda a, b: a @ b, [(2, 3, 4), (4,)], np.matmul),
    case("matmul_affine_params",
         lambda x, w, b: x @ w + b,
         [(None, 3), Arg((3, 2), kind="parameter"), Arg((2,), kind="parameter")],
         lambda x, w, b: x @ w + b),
    # ---- shapes: reshape (-1, symbolic N), transpose / .T, broadcast_to, expand_dims, squeeze
    case("reshape", lambda a: sd.reshape(a, (6, 4)), [(2, 3, 4)], lambda a: a.reshape(6, 4)),
    case("reshape_minus_one", lambda a: sd.reshape(a, (-1,)), [(2, 3, 4)],
         lambda a: a.reshape(-1)),
    case("reshape_minus_one_middle", lambda a: a.reshape(4, -1, 2), [(2, 3, 4)],
         lambda a: a.reshape(4, -1, 2)),
    case("reshape_symbolic_N", lambda a: sd.reshape(a, ("N", 6)), [(None, 2, 3)],
         lambda a: a.reshape(a.shape[0], 6)),
    case("reshape_minus_one_is_N", lambda a: sd.reshape(a, (-1, 6)), [(None, 2, 3)],
         lambda a: a.reshape(-1, 6)),
    case("reshape_split_N", lambda a: a.reshape((None, 3, 2)), [(None, 6)],
         lambda a: a.reshape(-1, 3, 2)),
    case("transpose_default", sd.transpose, [(2, 3, 4)], np.transpose),
    case("transpose_axes", lambda a: sd.transpose(a, (1, 0, 2)), [(2, 3, 4)],
         lambda a: np.transpose(a, (1, 0, 2))),
    case("transpose_neg_axes", lambda a: a.transpose(-1, 0, 1), [(2, 3, 4)],
         lambda a: np.transpose(a, (2, 0, 1))),
    case("dot_T", lambda a: a.T, [(3, 4)], lambda a: a.T),
    case("dot_T_batch", lambda a, w: a.T @ w, [(None, 3), (None, 2)], lambda a, w: a.T @ w),
    case("broadcast_to", lambda a: sd.broadcast_to(a, (2, 3, 4)), [(3, 1)],
         lambda a: np.broadcast_to(a, (2, 3, 4))),
    case("broadcast_to_N", lambda x, b: sd.broadcast_to(b, (None, 4)) * x, [(None, 4), (4,)],
         lambda x, b: np.broadcast_to(b, x.shape) * x),
    case("expand_dims_0", lambda a: sd.expand_dims(a, 0), [(3, 4)], lambda a: a[None]),
    case("expand_dims_neg", lambda a: sd.expand_dims(a, -1), [(3, 4)],
         lambda a: np.expand_dims(a, -1)),
    case("expand_dims_tuple", lambda a: sd.expand_dims(a, (0, 2)), [(3, 4)],
         lambda a: np.expand_dims(a, (0, 2))),
    case("squeeze_all", sd.squeeze, [(1, 3, 1, 4)], np.squeeze),
    case("squeeze_axis", lambda a: sd.squeeze(a, 1), [(3, 1, 4)], lambda a: np.squeeze(a, 1)),
    case("concatenate_axis0", lambda a, b: sd.concatenate([a, b]), [(2, 3), (4, 3)],
         lambda a, b: np.concatenate([a, b])),
    case("concatenate_neg_axis", lambda a, b, c: sd.concatenate([a, b, c], axis=-1),
         [(2, 3), (2, 1), (2, 2)], lambda a, b, c: np.concatenate([a, b, c], axis=-1)),
    case("concatenate_batch", lambda a, b: sd.concatenate([a, b], axis=1), [(None, 3), (None, 2)],
         lambda a, b: np.concatenate([a, b], axis=1)),
    # ---- indexing: ints, slices, None, ...
    case("index_int", lambda a: a[1], [(3, 4, 5)], lambda a: a[1]),
    case("index_neg_int", lambda a: a[-1, 2], [(3, 4, 5)], lambda a: a[-1, 2]),
    case("index_all_ints", lambda a: a[0, 1, 2], [(3, 4, 5)], lambda a: a[0, 1, 2]),
    case("index_slice", lambda a: a[:, 1:3], [(3, 4, 5)], lambda a: a[:, 1:3]),
    case("index_step", lambda a: a[::2, :, 1:5:2], [(3, 4, 5)], lambda a: a[::2, :, 1:5:2]),
    case("index_negative_step", lambda a: a[::-1], [(3, 4)], lambda a: a[::-1]),
    case("index_negative_step_bounds", lambda a: a[:, 3:0:-2], [(3, 4)],
         lambda a: a[:, 3:0:-2]),
    case("index_ellipsis", lambda a: a[..., 0], [(3, 4, 5)], lambda a: a[..., 0]),
    case("index_ellipsis_middle", lambda a: a[1, ..., 2:], [(3, 4, 5)],
         lambda a: a[1, ..., 2:]),
    case("index_none", lambda a: a[None, 1, ::2], [(3, 4)], lambda a: a[None, 1, ::2]),
    case("index_none_ellipsis", lambda a: a[1:, None, ...], [(3, 4)],
         lambda a: a[1:, None, ...]),
    case("index_batch_column", lambda a: a[:, 0], [(None, 4)], lambda a: a[:, 0]),
    case("index_fn", lambda a: sd.index(a, (slice(1, None), 0)), [(3, 4)], lambda a: a[1:, 0]),
    # ---- softmax family, cross-entropy, one-hot
    case("softmax", sd.softmax, [(3, 5)], np_softmax),
    case("softmax_axis0", lambda a: sd.softmax(a, axis=0), [(3, 5)],
         lambda a: np_softmax(a, axis=0)),
    case("log_softmax", sd.log_softmax, [(None, 5)], np_log_softmax),
    case("log_softmax_axis1_3d", lambda a: sd.log_softmax(a, axis=1), [(2, 3, 4)],
         lambda a: np_log_softmax(a, axis=1)),
    case("logsumexp", sd.logsumexp, [(3, 5)], np_logsumexp),
    case("logsumexp_axis0_keepdims", lambda a: sd.logsumexp(a, axis=0, keepdims=True),
         [(3, 5)], lambda a: np_logsumexp(a, axis=0, keepdims=True)),
    case("logsumexp_large", sd.logsumexp, [Arg((2, 4), uniform(500, 700))], np_logsumexp,
         f32=False),
    case("softmax_cross_entropy_onehot",
         lambda z, y: sd.softmax_cross_entropy(z, y), [(None, 4), Arg((None, 4), one_hot_rows())],
         lambda z, y: -(y * np_log_softmax(z)).sum(-1)),
    case("softmax_cross_entropy_probs_mean",
         lambda z, y: sd.mean(sd.softmax_cross_entropy(z, y)),
         [(None, 4), Arg((None, 4), probability_rows())],
         lambda z, y: np.mean(-(y * np_log_softmax(z)).sum(-1))),
    case("softmax_cross_entropy_int_labels",
         lambda z, k: sd.softmax_cross_entropy(z, k), [(None, 4), Arg((None,), LABELS4, "int64")],
         lambda z, k: -np_log_softmax(z)[np.arange(len(k)), k]),
    case("softmax_cross_entropy_axis0",
         lambda z, y: sd.softmax_cross_entropy(z, y, axis=0),
         [(4, 3), Arg((4, 3), lambda rng, s: one_hot_rows()(rng, s[::-1]).T)],
         lambda z, y: -(y * np_log_softmax(z, axis=0)).sum(0)),
    case("one_hot", lambda k: sd.one_hot(k, 5), [Arg((None,), integers(5), "int64")],
         lambda k: np.eye(5, dtype=np.float32)[k], f32=False),
    case("one_hot_times_x", lambda k, a: sd.one_hot(k, 4, a.dtype) * a,
         [Arg((3,), LABELS4, "int64"), (3, 4)], lambda k, a: np.eye(4)[k] * a),
    # ---- integer-array indexing: arange, take, take_along_axis, E[ids], x[arange(N), y]
    case("arange_times_x", lambda a: sd.arange(4).astype(a.dtype) * a, [(3, 4)],
         lambda a: np.arange(4) * a),
    case("arange_start_step", lambda a: a * sd.arange(1, 8, 2, dtype=a.dtype), [(4,)],
         lambda a: a * np.arange(1, 8, 2)),
    case("arange_batch", lambda a: a * sd.arange(a.shape[0]).astype(a.dtype)[:, None],
         [(None, 3)], lambda a: a * np.arange(len(a))[:, None]),
    case("take_rows_batch_ids", lambda e, k: sd.take(e, k, axis=0),
         [(5, 3), Arg((None,), integers(5), "int64")], lambda e, k: np.take(e, k, axis=0)),
    case("take_flat_constant", lambda a: sd.take(a, [0, 5, -1, 5]), [(2, 3)],
         lambda a: np.take(a, [0, 5, -1, 5])),
    case("take_axis1_2d_negative_ids", lambda a, k: sd.take(a, k, axis=-1),
         [(3, 4), Arg((2, 5), integers(4, -4), "int64")], lambda a, k: np.take(a, k, axis=-1)),
    case("getitem_embedding_tied_ids", lambda e, k: e[k],
         [Arg((4, 3), kind="parameter"), Arg((9,), integers(4), "int64")], lambda e, k: e[k]),
    case("getitem_pick_mean", lambda a, k: sd.mean(a[sd.arange(a.shape[0]), k]),
         [(None, 4), Arg((None,), LABELS4, "int64")],
         lambda a, k: np.mean(a[np.arange(len(k)), k])),
    case("getitem_int32_ids", lambda e, k: e[k], [(4, 3), Arg((2, 3), integers(4), "int32")],
         lambda e, k: e[k]),
    case("getitem_pick_arange", lambda a, k: a[sd.arange(a.shape[0]), k],
         [(None, 4), Arg((None,), LABELS4, "int64")], lambda a, k: a[np.arange(len(k)), k]),
    case("getitem_ids_then_int", lambda a, k: a[k, -1], [(3, 4), Arg((5,), integers(3), "int64")],
         lambda a, k: a[k, -1]),
    case("getitem_slice_then_ids", lambda a, k: a[1:, k],
         [(3, 4), Arg((5,), integers(4, -4), "int64")], lambda a, k: a[1:, k]),
    case("getitem_ids_middle_axis", lambda a, k: a[..., k, :],
         [(2, 3, 4), Arg((2,), integers(3), "int64")], lambda a, k: a[..., k, :]),
    case("getitem_constant_list", lambda a: a[[2, 0, 2]], [(3, 4)], lambda a: a[[2, 0, 2]]),
    case("take_along_axis", lambda a, k: sd.take_along_axis(a, k, 1),
         [(3, 4), Arg((3, 2), integers(4), "int64")], lambda a, k: np.take_along_axis(a, k, 1)),
    case("take_along_axis_axis0_broadcast", lambda a, k: sd.take_along_axis(a, k, 0),
         [(3, 4), Arg((5, 1), integers(3, -3), "int64")],
         lambda a, k: np.take_along_axis(a, k, 0)),
    case("take_along_axis_batch", lambda a, k: sd.take_along_axis(a, k[:, None], -1),
         [(None, 4), Arg((None,), LABELS4, "int64")],
         lambda a, k: np.take_along_axis(a, k[:, None], -1)),
    # ---- user elementwise functions from sympy
    case("elementwise_softplus", softplus_sym, [Arg((3, 4), uniform(-5, 5))],
         lambda a: np.log1p(np.exp(a))),
    case("elementwise_two_args_bcast", bump, [(3, 4), (4,)],
         lambda u, w: u * np.exp(-(w**2)) + np.sin(u * w)),
    case("elementwise_constant_derivative", affine2, [(3,), (3,)], lambda u, w: 2 * u - w / 2),
    case("elementwise_unused_arg", first_sq, [(3,), (3,)], lambda u, w: u**2),
    # ---- constants and zeros
    case("constant_array", lambda a: sd.constant(C43.T) * a, [(3, 4)], lambda a: C43.T * a,
         f32=False),
    case("constant_array_float32", lambda a: sd.constant(C34, "float32") + a, [(3, 4)],
         lambda a: C34.astype(np.float32) + a, rtol=1e-7, atol=1e-7),
    case("zeros_plus_x", lambda a: sd.zeros((3, 4), a.dtype) + a, [(3, 4)], lambda a: a + 0.0),
    case("zeros_like_batch", lambda a: sd.zeros_like(a) + a * 2, [(None, 4)], lambda a: a * 2),
    case("zeros_alone", lambda a: sd.zeros((2, 3), a.dtype), [(1,)],
         lambda a: np.zeros((2, 3), a.dtype), grad=False),
    # ---- integer and bool arithmetic (no gradient)
    case("int_add_mul", lambda k, m: k + m * 2, [Arg((6,), LABELS4, "int64")] * 2,
         lambda k, m: k + m * 2),
    case("int_abs_neg", lambda k: sd.abs(-k + 1), [Arg((6,), LABELS4, "int64")],
         lambda k: np.abs(-k + 1)),
    case("int_true_divide", lambda k: k / 2, [Arg((6,), LABELS4, "int64")], lambda k: k / 2),
    case("int_mean", lambda k: sd.mean(k), [Arg((None,), LABELS4, "int64")], np.mean),
    case("bool_sum", lambda a: sd.sum(a > 0.0, axis=1), [(3, 4)], lambda a: (a > 0).sum(1)),
    case("bool_astype_mean", lambda a: sd.mean((a > 0.0).astype(a.dtype)), [(3, 4)],
         lambda a: (a > 0).mean()),
    case("mixed_float_dtypes", lambda a, b: sd.concatenate([a, b]) * 2.0,
         [Arg((2,), dtype="float32"), (3,)], lambda a, b: np.concatenate([a, b]) * 2.0,
         grad=False, rtol=1e-7, atol=1e-7),
    # ---- more shapes for the broadcasting and reduction rules
    case("matmul_vec_batch", lambda a, b: a @ b, [(4,), (2, 4, 5)], np.matmul),
    case("where_cond_larger", lambda a, b, c: sd.where(a > 0.0, b, c), [(3, 4), (4,), ()],
         lambda a, b, c: np.where(a > 0, b, c)),
    case("mean_batch_keepdims", lambda a: sd.mean(a, axis=0, keepdims=True), [(None, 3)],
         lambda a: a.mean(0, keepdims=True)),
    case("expand_dims_batch", lambda a: sd.expand_dims(a, 1) * a[:, None, :], [(None, 3)],
         lambda a: a[:, None, :] ** 2),
    case("logsumexp_vector", sd.logsumexp, [(5,)], np_logsumexp),
    case("softmax_vector", sd.softmax, [(5,)], np_softmax),
    case("softmax_cross_entropy_int32_labels",
         lambda z, k: sd.mean(sd.softmax_cross_entropy(z, k)),
         [(None, 4), Arg((None,), LABELS4, "int32")],
         lambda z, k: np.mean(-np_log_softmax(z)[np.arange(len(k)), k])),
    case("sum_of_scalar", lambda s: sd.sum(s * 3.0), [()], lambda s: s * 3.0),
    case("index_new_axis_only", lambda a: a[None] + a[..., None, :], [(2, 3)],
         lambda a: a[None] + a[..., None, :]),
    # ---- negative literals (printed in parentheses where precedence needs them)
    case("power_negative_exponent", lambda a: a**-0.5, [Arg((3,), POSITIVE)], lambda a: a**-0.5),
    case("subtract_negative_literal", lambda a: a - (-2.0), [(3,)], lambda a: a + 2.0),
    case("divide_by_negative_int", lambda a: a / -4, [(3,)], lambda a: a / -4),
    case("where_negative_literal", lambda a: sd.where(a > 0.0, a, -1.0), [Arg((3,), AWAY)],
         lambda a: np.where(a > 0, a, -1.0)),
    # ---- shape, creation, reductions and scans (issue 13, items 3 and 5)
    case("stack_axis1", lambda a, b: sd.stack([a, b * 2.0], axis=1), [(3, 4), (3, 4)],
         lambda a, b: np.stack([a, b * 2.0], axis=1)),
    case("stack_batch_last", lambda a, b, c: sd.stack([a, b, c], axis=-1),
         [(None, 3), (None, 3), (None, 3)], lambda a, b, c: np.stack([a, b, c], axis=-1)),
    case("split_sections", lambda a: (lambda p: p[0] * p[1] - p[2])(sd.split(a, 3, axis=1)),
         [(2, 6)], lambda a: (lambda p: p[0] * p[1] - p[2])(np.split(a, 3, axis=1))),
    case("split_indices_batch", lambda a: (lambda p: p[0] + p[2] * 3.0)(sd.split(a, [1, 2], 1)),
         [(None, 3)], lambda a: (lambda p: p[0] + p[2] * 3.0)(np.split(a, [1, 2], 1))),
    case("pad_pairs_value", lambda a: sd.pad(a, ((1, 2), (0, 3)), constant_values=0.5),
         [(3, 4)], lambda a: np.pad(a, ((1, 2), (0, 3)), constant_values=0.5)),
    case("pad_batch", lambda a: sd.pad(a, ((0, 0), (2, 1))), [(None, 3)],
         lambda a: np.pad(a, ((0, 0), (2, 1)))),
    case("tile_reps", lambda a: sd.tile(a, (2, 3)), [(2, 3)], lambda a: np.tile(a, (2, 3))),
    case("tile_new_axis_batch", lambda a: sd.tile(a, (2, 1, 3)), [(None, 2)],
         lambda a: np.tile(a, (2, 1, 3))),
    case("repeat_axis_batch", lambda a: sd.repeat(a, 3, axis=1), [(None, 2)],
         lambda a: np.repeat(a, 3, axis=1)),
    case("repeat_flat", lambda a: sd.repeat(a, 2), [(2, 3)], lambda a: np.repeat(a, 2)),
    case("flip_axis", lambda a: sd.flip(a, 1), [(3, 4)], lambda a: np.flip(a, 1)),
    case("flip_all_batch", sd.flip, [(None, 3)], np.flip),
    case("ones_like_batch", lambda a: a * 2.0 + sd.ones_like(a), [(None, 3)],
         lambda a: a * 2.0 + 1.0),
    case("ones_batch", lambda a: a - sd.ones((None, 3), a.dtype), [(None, 3)],
         lambda a: a - 1.0),
    case("full_times", lambda a: sd.full((2, 3), 0.25, a.dtype) * a, [(2, 3)],
         lambda a: 0.25 * a),
    case("full_int", lambda a: sd.full((3,), 2) + sd.argmin(a, axis=1), [Arg((3, 4), NOTIES)],
         lambda a: 2 + np.argmin(a, axis=1)),
    case("cumsum_axis", lambda a: sd.cumsum(a, axis=1), [(3, 4)], lambda a: np.cumsum(a, 1)),
    case("cumsum_flat", sd.cumsum, [(2, 3)], np.cumsum),
    case("cumsum_batch_method", lambda a: a.cumsum(0), [(None, 3)], lambda a: a.cumsum(0)),
    case("cumprod_axis", lambda a: sd.cumprod(a, axis=0), [Arg((3, 4), with_zeros)],
         lambda a: np.cumprod(a, 0)),
    case("cumprod_flat_method", lambda a: a.cumprod(), [(2, 3)], lambda a: a.cumprod()),
    case("prod_axis", lambda a: sd.prod(a, axis=1), [(3, 4)], lambda a: np.prod(a, 1)),
    case("prod_zeros", lambda a: sd.prod(a, axis=1), [Arg((3, 4), with_zeros)],
         lambda a: np.prod(a, 1)),
    case("prod_all_zeros", sd.prod, [Arg((3, 4), with_zeros)], np.prod),
    case("prod_all_batch", lambda a: a.prod(), [(None, 3)], np.prod),
    case("prod_batch_axis_zeros", lambda a: sd.prod(a, axis=0), [Arg((None, 3), with_zeros)],
         lambda a: np.prod(a, 0)),
    case("prod_tuple_keepdims_batch", lambda a: a.prod(axis=(1, -1), keepdims=True),
         [(None, 2, 3)], lambda a: a.prod(axis=(1, 2), keepdims=True)),
    case("any_axis", lambda a: sd.any(a > 0.5, axis=1), [(3, 4)],
         lambda a: np.any(a > 0.5, axis=1)),
    case("all_keepdims_method", lambda m: m.all(axis=0, keepdims=True),
         [Arg((3, 4), MASK, "bool")], lambda m: m.all(axis=0, keepdims=True)),
    case("any_all_of_batch", lambda a: sd.stack([(a > 0.0).any(), sd.all(a < 1.9)]),
         [(None, 3)], lambda a: np.stack([(a > 0.0).any(), (a < 1.9).all()])),
    case("argmin_axis", lambda a: sd.argmin(a, axis=-1), [Arg((3, 4), NOTIES)],
         lambda a: np.argmin(a, -1)),
    case("argmin_flat_method", lambda a: a.argmin(), [Arg((3, 4), NOTIES)], np.argmin),
    case("logsumexp_tuple", lambda a: sd.logsumexp(a, axis=(0, 2)), [(2, 3, 4)],
         lambda a: np_logsumexp(a, axis=(0, 2))),
    case("logsumexp_all_keepdims_batch", lambda a: sd.logsumexp(a, None, keepdims=True),
         [Arg((None, 3), uniform(500, 700))],
         lambda a: np_logsumexp(a, axis=(0, 1), keepdims=True)),
    case("flatten_ravel", lambda a: a.flatten() * 2.0 + a.T.ravel(), [(2, 3)],
         lambda a: a.flatten() * 2.0 + a.T.ravel()),
    # ---- compositions the models use
    case("affine_relu_mean", lambda x, w: sd.mean(sd.relu(x @ w - 0.1)),
         [(None, 3), Arg((3, 4), kind="parameter")],
         lambda x, w: np.maximum(x @ w - 0.1, 0).mean()),
    case("naive_cross_entropy", lambda z, y: -sd.sum(y * sd.log(sd.softmax(z)), axis=1),
         [(None, 4), Arg((None, 4), one_hot_rows())],
         lambda z, y: -(y * np.log(np_softmax(z))).sum(1)),
    # ---- random draws (issue 13, item 8): f32=False, the float32 draws are another stream
    case("random_uniform", lambda a, r: a + sd.random.uniform(r, a.shape, dtype=a.dtype),
         [(None, 3), RNG], lambda a, r: a + _drawn().random(a.shape), f32=False),
    case("random_uniform_low_high",
         lambda a, r: a * sd.random.uniform(r, (4,), low=-1.0, high=2.0, dtype=a.dtype),
         [(3, 4), RNG], lambda a, r: a * (-1.0 + 3.0 * _drawn().random(4)), f32=False),
    case("random_normal",
         lambda a, r: a * sd.random.normal(r, a.shape, loc=1.0, scale=0.5, dtype=a.dtype),
         [(None, 3), RNG], lambda a, r: a * (1.0 + 0.5 * _drawn().standard_normal(a.shape)),
         f32=False),
    case("random_bernoulli", lambda a, r: sd.where(sd.random.bernoulli(r, 0.3, a.shape), a, 0.0),
         [(None, 4), RNG],
         lambda a, r: np.where(_drawn().random(a.shape, dtype=np.float32) < 0.3, a, 0.0),
         f32=False),
    case("dropout", lambda a, r: sd.dropout(a, 0.4, r), [(None, 5), RNG],
         lambda a, r: a * (_drawn().random(a.shape) < 0.6) / 0.6, f32=False),
    case("dropout_rate_placeholder", lambda a, p, r: sd.dropout(a, p, r),
         [(None, 5), Arg((), uniform(0.2, 0.6)), RNG],
         lambda a, p, r: a * (_drawn().random(a.shape) < 1 - p) / (1 - p), f32=False),
]

# ---- contractions (issue 13, item 6): einsum in numpy's notations, tensordot built on it
CASES += [
    case("einsum_matmul", lambda a, b: sd.einsum("ij,jk->ik", a, b), [(3, 4), (4, 5)],
         lambda a, b: a @ b),
    case("einsum_batched_matmul", lambda a, b: sd.einsum("bij,bjk->bik", a, b),
         [(None, 3, 4), (None, 4, 2)], np.matmul),
    case("einsum_outer", lambda a, b: sd.einsum("i,j->ij", a, b), [(3,), (4,)], np.outer),
    case("einsum_sum_axis", lambda a: sd.einsum("ij->i", a), [(3, 4)], lambda a: a.sum(1)),
    case("einsum_transpose", lambda a: sd.einsum("ij->ji", a), [(3, 4)], lambda a: a.T),
    case("einsum_attention", lambda q, k: sd.einsum("bhqd,bhkd->bhqk", q, k),
         [(2, 2, 3, 4), (2, 2, 5, 4)], lambda q, k: q @ np.swapaxes(k, -1, -2)),
    case("einsum_three_operands", lambda a, b, c: sd.einsum("ij,jk,kl->il", a, b, c),
         [(2, 3), (3, 4), (4, 2)], lambda a, b, c: a @ b @ c),
    case("einsum_implicit_summed_alone", lambda a, b: sd.einsum("ij,jk", a, b) + sd.einsum(
         "ij,kl->l", a, b), [(3, 4), (4, 2)], lambda a, b: a @ b + a.sum() * b.sum(0)),
    case("einsum_trace_diagonal", lambda a, b: sd.einsum("ii->", a) * sd.einsum("ii,i->i", a, b),
         [(3, 3), (3,)], lambda a, b: np.trace(a) * np.diag(a) * b),
    case("einsum_ellipsis_broadcast", lambda a, b: sd.einsum("...ij,...jk->...ik", a, b),
         [(2, 1, 3, 4), (5, 4, 2)], np.matmul),
    case("einsum_scalar_operand", lambda a: sd.einsum("ij,->ji", a, 2.0), [(3, 4)],
         lambda a: 2.0 * a.T),
    case("tensordot_int", lambda a, b: sd.tensordot(a, b), [(2, 3, 4), (3, 4, 5)],
         np.tensordot),
    case("tensordot_pairs", lambda a, b: sd.tensordot(a, b, axes=([0, 2], [2, 0])),
         [(2, 3, 4), (4, 5, 2)], lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 0]))),
    # ---- convolution and pooling (references: naive loops in tests/test_conv.py)
    case("conv2d_valid", sd.conv2d, [(None, 6, 5, 2), Arg((3, 2, 2, 3), kind="parameter")],
         lambda x, w: naive_conv2d(x, w)),
    case("conv2d_same_strided_dilated",
         lambda x, w: sd.conv2d(x, w, strides=2, padding="SAME", dilation=(1, 2)),
         [(None, 7, 8, 2), Arg((3, 2, 2, 2), kind="parameter")],
         lambda x, w: naive_conv2d(x, w, (2, 2), (tf_same(7, 3, 2), tf_same(8, 2, 2, 2)),
                                   (1, 2))),
    # (NCHW and conv1d results are views of an NHWC one; + 0.5 makes them arrays of their own.)
    case("conv2d_nchw_padded",
         lambda x, w: sd.conv2d(x, w, padding=1, data_format="NCHW") + 0.5,
         [(None, 2, 5, 4), Arg((3, 2, 3, 3), kind="parameter")],
         lambda x, w: naive_conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0),
                                   pads=((1, 1), (1, 1))).transpose(0, 3, 1, 2) + 0.5),
    case("conv1d_same", lambda x, w: sd.conv1d(x, w, padding="SAME") + 0.5,
         [(None, 7, 2), Arg((3, 2, 2), kind="parameter")],
         lambda x, w: naive_conv2d(x[:, None], w[None], pads=((0, 0), (1, 1)))[:, 0] + 0.5),
    case("max_pool2d_same", lambda x: sd.max_pool2d(x, 3, strides=2, padding="SAME"),
         [Arg((None, 7, 6, 2), NOTIES)],
         lambda x: naive_pool(x, (3, 3), (2, 2), (tf_same(7, 3, 2), tf_same(6, 3, 2)), "max")),
    case("windows_dilated_strided",
         lambda x: Windows.make(x, window=(2, 2), strides=(1, 2), dilation=(2, 1)),
         [(None, 6, 7, 2)],
         lambda x: np.stack([np.stack([x[:, i:i + 3:2, 2 * j:2 * j + 2]
                                       for j in range(3)], 1) for i in range(4)], 1)
         .transpose(0, 1, 2, 5, 3, 4)),
    case("avg_pool2d_same", lambda x: sd.avg_pool2d(x, 2, padding="SAME"),
         [(None, 5, 4, 3)],
         lambda x: naive_pool(x, (2, 2), (2, 2), (tf_same(5, 2, 2), tf_same(4, 2, 2)), "avg")),
    # ---- issue 13, items 4 and 7: more elementwise math, logic, special functions, losses
    case("log2", sd.log2, [Arg((3, 4), POSITIVE)], np.log2),
    case("tan", sd.tan, [Arg((3, 4), UNIT)], np.tan),
    case("arctan", sd.arctan, [(3, 4)], np.arctan),
    case("floor", sd.floor, [Arg((3, 4), NOT_NEAR_HALVES)], np.floor),
    case("floor_times_x", lambda a: sd.floor(a * 2) * a, [Arg((3, 4), NOT_NEAR_HALVES)],
         lambda a: np.floor(a * 2) * a),
    case("round", sd.round, [Arg((3, 4), NOT_NEAR_HALVES)], np.round),
    case("round_times_x", lambda a: sd.round(a) * a, [Arg((3, 4), NOT_NEAR_HALVES)],
         lambda a: np.round(a) * a),
    case("clip_scalars", lambda a: sd.clip(a, -0.5, 0.5), [Arg((3, 4), NOT_NEAR_HALVES)],
         lambda a: np.clip(a, -0.5, 0.5)),
    case("clip_exprs_bcast", lambda a, lo, hi: sd.clip(a, lo, hi),
         [Arg((3, 4), uniform(-2, 2)), Arg((4,), uniform(-1.5, -0.5)), Arg((), uniform(0.5, 1))],
         np.clip),
    case("clip_upper_only", lambda a: sd.clip(a, None, 0.5), [Arg((3, 4), NOT_NEAR_HALVES)],
         lambda a: np.clip(a, None, 0.5)),
    # No gradient flows through stop_gradient, which finite differences of a * b would see.
    case("stop_gradient", lambda a, b: sd.stop_gradient(a) * b, [(3, 4), (3, 4)],
         lambda a, b: a * b, grad=False),
    case("isnan", sd.isnan, [Arg((3, 4), WITH_NANS)], np.isnan),
    case("logical_and", lambda a, b: sd.logical_and(a > 0.0, b > 0.0), [(3, 4), (4,)],
         lambda a, b: np.logical_and(a > 0, b > 0)),
    case("logical_or_ints", lambda k, m: sd.logical_or(k, m), [Arg((6,), LABELS4, "int64")] * 2,
         np.logical_or),
    case("logical_not_where", lambda a: sd.where(sd.logical_not(a > 0.0), a * 2, a),
         [Arg((3, 4), AWAY)], lambda a: np.where(np.logical_not(a > 0), a * 2, a)),
    case("erf", sd.erf, [(3, 4)], scipy.special.erf),
    case("erfc", sd.erfc, [(3, 4)], scipy.special.erfc),
    case("lgamma", sd.lgamma, [Arg((3, 4), uniform(0.5, 4.0))], scipy.special.gammaln),
    case("digamma", sd.digamma, [Arg((3, 4), uniform(0.5, 4.0))], scipy.special.psi),
    case("polygamma_2", lambda a: sd.polygamma(2, a), [Arg((3, 4), uniform(0.5, 4.0))],
         lambda a: scipy.special.polygamma(2, a)),
    case("gelu_erf", lambda a: a * (1 + sd.erf(a / 2**0.5)) / 2, [(3, 4)],
         lambda a: a * (1 + scipy.special.erf(a / np.sqrt(2))) / 2),
    case("gelu_elementwise", gelu_sym, [(3, 4)],
         lambda a: a * (1 + scipy.special.erf(a / np.sqrt(2))) / 2),
    case("sigmoid_cross_entropy", sd.sigmoid_cross_entropy,
         [(None, 4), Arg((None, 4), uniform(0, 1))], np_sigmoid_cross_entropy),
    case("sigmoid_cross_entropy_bcast_labels", sd.sigmoid_cross_entropy,
         [Arg((3, 4), uniform(-30, 30)), Arg((4,), uniform(0, 1))], np_sigmoid_cross_entropy),
    case("textbook_binary_cross_entropy",
         lambda z, y: -(y * sd.log(sd.sigmoid(z)) + (1 - y) * sd.log(1 - sd.sigmoid(z))),
         [(None, 4), Arg((None, 4), uniform(0, 1))], np_sigmoid_cross_entropy),
    case("mse", sd.mse, [(3, 4), (3, 4)], lambda a, b: np.mean((a - b) ** 2)),
    case("mse_batch_bcast", sd.mse, [(None, 4), (4,)], lambda a, b: np.mean((a - b) ** 2)),
    case("huber", sd.huber, [(3, 4), (3, 4)], lambda a, b: np_huber(a, b, 1.0)),
    case("huber_delta", lambda a, b: sd.huber(a, b, delta=0.5), [(None, 4), (None, 4)],
         lambda a, b: np_huber(a, b, 0.5)),
]


def _ids(cases: list[Case]) -> list[str]:
    return [c.id for c in cases]


def _is_float(dtype: str) -> bool:
    return dtype in ("float32", "float64")


def test_row_ids_are_unique() -> None:
    ids = _ids(CASES)
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("row", CASES, ids=_ids(CASES))
def test_values_float64(row: Case, symdl_cache: Path) -> None:
    leaves = row.leaves("float64")
    out = row.build(*leaves)
    assert isinstance(out, Expr)
    values = row.values(leaves)
    got = run_one(leaves, out, values, symdl_cache)
    expected = np.asarray(row.ref(*values))
    assert np.asarray(got).dtype == np.dtype(out.dtype), (got.dtype, out.dtype)
    assert_close(got, expected, rtol=row.rtol, atol=row.atol, what=f"{row.id} (float64)")


F32_CASES = [c for c in CASES if c.f32 and any(a.dtype == FLOAT for a in c.args)]


@pytest.mark.parametrize("row", F32_CASES, ids=_ids(F32_CASES))
def test_values_float32(row: Case, symdl_cache: Path) -> None:
    out64 = row.build(*row.leaves("float64"))
    leaves = row.leaves("float32")
    out = row.build(*leaves)
    # float32 inputs must give float32 outputs: no silent promotion to float64.
    expected_dtype = "float32" if out64.dtype == "float64" else out64.dtype
    assert out.dtype == expected_dtype, f"{row.id}: {out.dtype}, expected {expected_dtype}"
    values = row.values(leaves)
    got = run_one(leaves, out, values, symdl_cache)
    assert np.asarray(got).dtype == np.dtype(expected_dtype), got.dtype
    as64 = [v.astype(np.float64) if v.dtype == np.float32 else v for v in values]
    expected = np.asarray(row.ref(*as64))
    if expected_dtype == "float32":
        assert_close(got, expected, rtol=row.rtol32, atol=row.atol32, what=f"{row.id} (float32)")
    else:
        assert_close(got, expected, rtol=0, atol=0, what=f"{row.id} (float32)")


def _has_gradient(row: Case) -> bool:
    out = row.build(*row.leaves("float64"))
    return row.grad and _is_float(out.dtype) and any(a.dtype == FLOAT for a in row.args)


GRAD_CASES = [c for c in CASES if _has_gradient(c)]


@pytest.mark.parametrize("row", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_gradients(row: Case, symdl_cache: Path) -> None:
    leaves = row.leaves("float64")
    out = row.build(*leaves)
    values = row.values(leaves)
    check_grads(row.ref, leaves, out, values, cache_dir=symdl_cache, seed=seed_of(row.id))


def _ops_used(row: Case) -> set[str]:
    """Op names in a row's forward graph, its gradient graph, and both after lowering."""
    leaves = row.leaves("float64")
    out = row.build(*leaves)
    graphs = [out]
    if _has_gradient(row):
        cot = sd.placeholder("cotangent", out.shape, out.dtype)
        wrt = [x for x in leaves if x.dtype == "float64"]
        graphs += sd.grad(sd.sum(out * cot), wrt)
    return {n.op.name for n in toposort([*graphs, *lower(graphs)])}


def test_every_op_has_a_row() -> None:
    covered: set[str] = set()
    for row in CASES:
        covered |= _ops_used(row)
    missing = sorted(set(OPS) - covered)
    assert not missing, f"ops without a row in the op table: {missing}"


def test_every_public_constructor_is_used() -> None:
    # Public constructors that build no op of their own (min, mean, squeeze, ...) still need a row.
    source = inspect.getsource(inspect.getmodule(test_every_public_constructor_is_used))
    table = source[source.index("softplus_sym = "):source.index("\ndef _ids")]
    leaves = ("placeholder", "parameter", "rng")  # every row's inputs (Case.leaves)
    unused = [
        n for n in sd.ops.api.__all__
        if n not in leaves and not re.search(rf"\bsd\.{n}\b", table)
    ]
    assert not unused, f"public ops never called in the table: {unused}"


def test_numpy_array_on_the_left_builds_an_expr() -> None:
    a = sd.placeholder("a", (3, 4), "float64")
    for result in (C34 * a, C34 + a, C34 - a, C34 / (a * a + 1), C43.T @ a.T, C34 > a):
        assert isinstance(result, Expr), type(result)
        assert result.shape in ((3, 4), (3, 3)), result.shape


def test_python_scalars_keep_float32() -> None:
    a = sd.placeholder("a", (3,), "float32")
    for result in (a * 2, 2.0 * a, a + 1, a / 3, a**2, 1.0 - a, sd.where(a > 0, a, 0)):
        assert result.dtype == "float32", sd.show(result)
