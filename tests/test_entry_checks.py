"""Calls of generated functions that used to give silent wrong results (issue 12).

Aliased updated arguments, a step that fails half-way, ndarray subclasses whose operators
differ, and integers narrower or wider than declared. Each case is compared with the same
arithmetic written by hand in numpy, or must raise before anything is written.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import symdl as sd
from tests.helpers import compile_functions

# np.matrix warns that it is not recommended: these tests pass one on purpose.
MATRIX_WARNING = "ignore:the matrix subclass:PendingDeprecationWarning"
BETAS, EPS = (0.9, 0.999), 1e-8


def _adam_step() -> dict[str, tuple]:
    """Adam on a two-parameter linear model: ``train_step(x, y, A, B, A_m, A_v, B_m, B_v,
    step, lr)``, every array but ``x``, ``y`` and ``lr`` updated in place."""
    x = sd.placeholder("x", (None, 3), "float64")
    y = sd.placeholder("y", (None, 2), "float64")
    a = sd.parameter("A", (3, 2), "float64")
    b = sd.parameter("B", (3, 2), "float64")
    loss = sd.mean(sd.square(x @ a + sd.tanh(x) @ b - y))
    return sd.optim.Adam(0.1, BETAS, EPS).step_function(loss, [a, b], [x, y]).functions


@pytest.fixture(scope="module")
def adam(symdl_cache: Path) -> ModuleType:
    return compile_functions(_adam_step(), symdl_cache, "adam_entry_checks")


def _adam_args() -> list[np.ndarray | float]:
    rng = np.random.default_rng(12)
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 2))
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    slots = [rng.random((3, 2)) for _ in range(4)]  # nonzero slots: a write would show
    return [x, y, a, b, *slots, np.array(3.0), 0.1]


def _adam_by_hand(x: np.ndarray, y: np.ndarray, a: np.ndarray, b: np.ndarray,
                  slots: list[np.ndarray], step: float, lr: float) -> list[np.ndarray]:
    """The new ``A, B, A_m, A_v, B_m, B_v`` of one Adam step, written in numpy."""
    residual = x @ a + np.tanh(x) @ b - y
    g_out = 2 * residual / residual.size
    grads = [x.T @ g_out, np.tanh(x).T @ g_out]
    t = step + 1
    new_params, new_slots = [], []
    for p, g, m, v in zip([a, b], grads, slots[0::2], slots[1::2]):
        m = BETAS[0] * m + (1 - BETAS[0]) * g
        v = BETAS[1] * v + (1 - BETAS[1]) * g**2
        m_hat, v_hat = m / (1 - BETAS[0] ** t), v / (1 - BETAS[1] ** t)
        new_params.append(p - lr * m_hat / (np.sqrt(v_hat) + EPS))
        new_slots += [m, v]
    return [*new_params, *new_slots]


def _snapshot(args: list) -> list:
    return [np.copy(v) if isinstance(v, np.ndarray) else v for v in args]


def _assert_unchanged(args: list, before: list) -> None:
    """Every array argument holds the bytes it held before the call."""
    for got, want in zip(args, before):
        if isinstance(got, np.ndarray):
            assert got.tobytes() == want.tobytes()


def test_the_adam_step_matches_numpy(adam: ModuleType) -> None:
    """The reference the cases below rely on: a plain call computes the step by hand."""
    args = _adam_args()
    x, y, a, b, *slots, step, lr = _snapshot(args)
    adam.train_step(*args)
    np.testing.assert_allclose(args[2:8], _adam_by_hand(x, y, a, b, slots, float(step), lr),
                               rtol=1e-12)
    assert args[8] == 4.0


# --------------------------------------------------------------------------- aliasing


def test_one_array_passed_as_two_updated_parameters_is_refused(adam: ModuleType) -> None:
    """Tied weights (``step(x, y, W, W, ...)``) would write each update over the other."""
    args = _adam_args()
    args[3] = args[2]
    before = _snapshot(args)
    with pytest.raises(ValueError, match=r"train_step\(\): arguments 'A' and 'B' share memory"):
        adam.train_step(*args)
    _assert_unchanged(args, before)


@pytest.mark.parametrize("view", ["reversed", "overlapping_rows"])
def test_overlapping_views_as_updated_parameters_are_refused(adam: ModuleType, view: str) -> None:
    args = _adam_args()
    if view == "reversed":  # the same memory seen as another (3, 2) array
        args[3] = args[2][::-1]
    else:
        buffer = np.random.default_rng(0).standard_normal((4, 2))
        args[2], args[3] = buffer[:3], buffer[1:]  # rows 1 and 2 are in both
    before = _snapshot(args)
    with pytest.raises(ValueError, match="'A' and 'B' share memory, and both are updated in place"):
        adam.train_step(*args)
    _assert_unchanged(args, before)


def test_disjoint_views_of_one_buffer_are_accepted(adam: ModuleType) -> None:
    """Interleaved columns of one array never overlap: the exact test lets them through."""
    args = _adam_args()
    buffer = np.empty((3, 4))
    buffer[:, 0::2], buffer[:, 1::2] = args[2], args[3]
    args[2], args[3] = buffer[:, 0::2], buffer[:, 1::2]
    x, y, a, b, *slots, step, lr = _snapshot(args)
    adam.train_step(*args)
    np.testing.assert_allclose(args[2:8], _adam_by_hand(x, y, a, b, slots, float(step), lr),
                               rtol=1e-12)


def test_an_input_sharing_memory_with_an_updated_argument_is_refused(adam: ModuleType) -> None:
    """``x`` is read after ``A`` may have been written: refused, naming both."""
    args = _adam_args()
    x_and_a = np.random.default_rng(1).standard_normal((7, 3))
    args[0], args[2] = x_and_a[:4], x_and_a[3:6, :2]  # row 3 is x's last row and A's first
    before = _snapshot(args)
    with pytest.raises(ValueError, match=r"argument 'x' shares memory with 'A'.*x\.copy\(\)"):
        adam.train_step(*args)
    _assert_unchanged(args, before)


def test_a_scalar_view_of_a_parameter_is_refused(adam: ModuleType) -> None:
    args = _adam_args()
    args[9] = args[2][:1, :1].reshape(())  # the learning rate, a 0-d view into A
    with pytest.raises(ValueError, match="'lr' shares memory with 'A'"):
        adam.train_step(*args)


def test_inputs_may_share_memory_with_each_other(adam: ModuleType) -> None:
    """Inputs are only read: one array may fill several of them."""
    args = _adam_args()
    xy = np.random.default_rng(2).standard_normal((4, 5))
    args[0], args[1] = xy[:, :3], xy[:, 3:]
    x, y, a, b, *slots, step, lr = _snapshot(args)
    adam.train_step(*args)
    np.testing.assert_allclose(args[2:8], _adam_by_hand(x, y, a, b, slots, float(step), lr),
                               rtol=1e-12)


# --------------------------------------------------------------------------- all or nothing


def _second_parameter_bad(kind: str, args: list) -> None:
    if kind == "read_only":
        args[3].flags.writeable = False
    elif kind == "aliased_with_a_slot":
        args[3] = args[6]  # B is B_m
    elif kind == "float32":
        args[3] = args[3].astype(np.float32)
    elif kind == "matrix":
        args[3] = np.asmatrix(args[3])
    elif kind == "last_slot_shape":
        args[7] = np.zeros((2, 3))


@pytest.mark.filterwarnings(MATRIX_WARNING)
@pytest.mark.parametrize(
    "kind", ["read_only", "aliased_with_a_slot", "float32", "matrix", "last_slot_shape"]
)
def test_a_failing_step_changes_nothing(adam: ModuleType, kind: str) -> None:
    """The first parameter and its Adam slots stay bit for bit what they were."""
    args = _adam_args()
    _second_parameter_bad(kind, args)
    before = _snapshot(args)
    with pytest.raises(ValueError, match="train_step"):
        adam.train_step(*args)
    _assert_unchanged(args, before)


# --------------------------------------------------------------------------- subclasses


@pytest.fixture(scope="module")
def square(symdl_cache: Path) -> ModuleType:
    t = sd.placeholder("t", (2, 2), "float64")
    w = sd.parameter("w", (2, 2), "float64")
    functions = {"elementwise": ([t], t * t), "scale": ([t, w], [], {w: w * t})}
    return compile_functions(functions, symdl_cache, "subclasses")


@pytest.mark.filterwarnings(MATRIX_WARNING)
@pytest.mark.parametrize(
    "make, pattern",
    [
        (np.asmatrix, r"'t'.*got a numpy\.matrix.*np\.asarray"),
        (lambda a: np.ma.masked_array(a, mask=[[0, 1], [0, 0]]), r"'t'.*got a numpy\.ma\."),
        (lambda a: np.rec.array(a), r"'t'.*got a numpy\.rec"),
    ],
    ids=["matrix", "masked", "recarray"],
)
def test_ndarray_subclasses_are_refused(square: ModuleType, make, pattern: str) -> None:  # type: ignore[no-untyped-def]
    value = make(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert isinstance(value, np.ndarray)
    with pytest.raises(ValueError, match=pattern):
        square.elementwise(value)  # np.matrix would give the matrix product [[7, 10], ...]
    w = np.ones((2, 2))
    with pytest.raises(ValueError, match=pattern.replace("'t'", "'w'")):
        square.scale(np.ones((2, 2)), make(w))


def test_a_memmap_is_an_array(square: ModuleType, tmp_path: Path) -> None:
    """np.memmap (np.load(..., mmap_mode=...)) keeps ndarray's operators: accepted, also
    updated in place."""
    values = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.save(tmp_path / "t.npy", values)
    np.save(tmp_path / "w.npy", np.ones((2, 2)))
    t = np.load(tmp_path / "t.npy", mmap_mode="r")
    np.testing.assert_array_equal(square.elementwise(t), values * values)
    np.testing.assert_array_equal(square.elementwise(t[:, :]), values * values)
    w = np.load(tmp_path / "w.npy", mmap_mode="r+")
    square.scale(t, w)
    np.testing.assert_array_equal(np.asarray(w), values)
    with pytest.raises(ValueError, match="'w'.*writable.*read-only"):
        square.scale(t, np.load(tmp_path / "w.npy", mmap_mode="r"))


# --------------------------------------------------------------------------- integer dtypes


@pytest.fixture(scope="module")
def doubling(symdl_cache: Path) -> ModuleType:
    k = sd.placeholder("k", (3,), "int64")
    j = sd.placeholder("j", (3,), "int32")
    s = sd.placeholder("s", (), "int64")
    c = sd.parameter("c", (3,), "int64")
    return compile_functions(
        {"twice": ([k], k + k), "twice32": ([j], j + j), "twice_scalar": ([s], s + s),
         "count": ([k, c], [], {c: c + k})},
        symdl_cache, "integer_dtypes",
    )


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.int32, np.uint32])
def test_a_narrower_integer_array_computes_in_the_declared_dtype(
    doubling: ModuleType, dtype: type
) -> None:
    k = np.array([100, 1, 120], dtype)
    got = doubling.twice(k)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, k.astype(np.int64) + k.astype(np.int64))  # 200, not -56
    assert k.dtype == dtype  # the caller's array is not changed


def test_a_narrower_integer_scalar_computes_in_the_declared_dtype(doubling: ModuleType) -> None:
    got = doubling.twice_scalar(np.int8(100))
    assert got == 200 and got.dtype == np.int64


def test_a_wider_integer_array_is_cast_only_if_its_values_fit(doubling: ModuleType) -> None:
    """int64 class ids into an int32 argument: computed in int32, as declared, when they fit."""
    got = doubling.twice32(np.array([1, 2, 3], np.int64))
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [2, 4, 6])
    with pytest.raises(ValueError, match=r"'j'.*int32.*int64.*values.*do not fit"):
        doubling.twice32(np.array([2**40, 0, 0], np.int64))
    too_big = r"'k'.*int64.*uint64; its values \(from 0 to 9223372036854775808\) do not fit int64"
    with pytest.raises(ValueError, match=too_big):
        doubling.twice(np.array([2**63, 0, 0], np.uint64))  # would read as a negative int64
    np.testing.assert_array_equal(doubling.twice(np.array([5, 0, 0], np.uint64)), [10, 0, 0])


def test_an_updated_integer_array_must_have_the_declared_dtype(doubling: ModuleType) -> None:
    """A cast copy would take the update and the caller's array would not see it."""
    c = np.array([100, 100, 100], np.int8)
    with pytest.raises(ValueError, match=r"'c'.*dtype int64.*int8"):
        doubling.count(np.array([100, 1, 2]), c)
    assert (c == 100).all()
    c64 = np.array([100, 100, 100])
    doubling.count(np.array([100, 1, 2], np.int8), c64)  # the input is cast, the update is not
    np.testing.assert_array_equal(c64, [200, 101, 102])


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int64, np.bool_])
def test_a_float32_argument_takes_float32_only(symdl_cache: Path, dtype: type) -> None:
    """No silent change of precision, and no integers or booleans where floats are declared."""
    t = sd.placeholder("t", (2,), "float32")
    module = compile_functions({"f": ([t], t * 2.0)}, symdl_cache, "float32_only")
    with pytest.raises(ValueError, match=rf"'t'.*float32; got an array .* {np.dtype(dtype).name}"):
        module.f(np.ones(2, dtype))


def _defined_helpers(source: str) -> set[str]:
    return set(re.findall(r"^def (_\w+)\(", source, re.MULTILINE))


def test_a_module_defines_only_the_check_helpers_it_calls() -> None:
    # A reader of a module without updates should not meet an overlap check it never runs.
    x = sd.placeholder("x", (None, 3), "float64")
    W = sd.parameter("W", (3, 2), "float64")
    loss = sd.mean(sd.square(x @ W))
    plain = sd.generate({"loss_and_grad": ([x, W], [loss, sd.grad(loss, W)])}, "plain")
    stepping = sd.generate(_adam_step(), "stepping")
    assert _defined_helpers(plain) == {"_check_argument", "_check_argument_fully",
                                      "_cast_integers", "_argument_error"}
    assert {"_check_updated", "_check_no_overlap", "_check_no_overlap_fully"} <= \
        _defined_helpers(stepping)
    for source in (plain, stepping):
        for name in _defined_helpers(source):  # every helper defined is called somewhere
            assert re.search(rf"(?<!def ){name}\(", source), name
