"""Simplification: each rewrite fires on its pattern and keeps values; generated gradients are
as short as the textbook's (operations counted in the generated source with `ast`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from reference import evaluate

import symdl as sd
from codegen.report import count_operations
from symdl.ir import toposort
from symdl.ops.elementwise import Cast
from symdl.ops.shape import Reshape
from symdl.simplify import RULES, RewriteLog, is_finite_only, simplify

RNG = np.random.default_rng(7)
x = sd.placeholder("x", (3, 4), "float64")
y = sd.placeholder("y", (3, 4), "float64")
p = sd.placeholder("p", (3, 4), "float64")  # positive data, for logs
s = sd.placeholder("s", (), "float64")

# (rule, build, op that must be gone) -- every rule in RULES appears at least once.
CASES: list[tuple[str, Callable[[], sd.Expr], str]] = [
    ("log_of_softmax", lambda: sd.log(sd.softmax(x, axis=1)), "softmax"),
    ("log_of_sum_exp", lambda: sd.log(sd.sum(sd.exp(x), axis=1)), "exp"),
    ("log_one_plus_exp", lambda: sd.log(1 + sd.exp(x)), "exp"),
    ("log_of_sigmoid", lambda: sd.log(sd.sigmoid(x)), "sigmoid"),
    ("cross_entropy_of_log_softmax",
     lambda: -sd.sum(y * sd.log_softmax(x, axis=1), axis=1), "log_softmax"),
    ("sum_of_negated_cross_entropy",
     lambda: sd.sum(-(y * sd.log_softmax(x, axis=1)), axis=1), "log_softmax"),
    ("exp_of_log", lambda: sd.exp(sd.log(p)), "exp"),
    ("log_of_exp", lambda: sd.log(sd.exp(x)), "log"),
    ("fold_constants", lambda: x * (sd.constant(2.0) * sd.constant(3.0)), "constant*constant"),
    ("add_zero", lambda: x + 0.0, "add"),
    ("add_self", lambda: sd.exp(x) + sd.exp(x), "add"),
    ("subtract_zero", lambda: x - 0.0, "subtract"),
    ("subtract_self", lambda: x - x, "subtract"),
    ("multiply_one", lambda: x * 1.0, "multiply"),
    ("multiply_zero", lambda: x * 0.0, "multiply"),
    ("multiply_minus_one", lambda: x * -1.0, "multiply"),
    ("divide_one", lambda: x / 1.0, "divide"),
    ("double_negation", lambda: -(-x), "negative"),  # noqa: B002
    ("subtract_negation", lambda: x - (-y), "negative"),
    ("negation_of_product", lambda: -(x * 2.0) + y, "negative"),
    ("product_with_negation", lambda: (-x) * (-y), "negative"),
    ("constant_power", lambda: x ** 2.0, "power"),
    ("power_half", lambda: p ** 0.5, "power"),
    ("collect_constant_factors", lambda: (x * 2.0) * 3.0, "multiply*multiply"),
    ("multiply_by_reciprocal", lambda: x * (1.0 / s), "multiply"),
    ("divide_by_product", lambda: (3.0 * x) / 4.0, "divide"),
    ("scalar_first", lambda: x * 2.0 + y, "none"),
    ("transpose_of_transpose", lambda: x.T.T + y, "transpose"),
    ("transpose_of_matmul", lambda: (x @ y.T).T, "transpose(matmul)"),
    ("matrix_vector_product", lambda: sd.reshape(x @ sd.reshape(y[0], (4, 1)), (3,)), "reshape"),
    ("matrix_vector_product",
     lambda: sd.reshape(sd.reshape(y[:, 0], (1, 3)) @ x, (4,)), "reshape"),
    ("reshape_is_noop", lambda: Reshape.make(x, shape=x.shape) + y, "reshape"),
    ("cast_to_own_dtype", lambda: Cast.make(x, dtype="float64") + y, "cast"),
    ("reshape_of_reshape", lambda: sd.reshape(sd.reshape(x, (12,)), (4, 3)), "reshape*reshape"),
    ("reshape_of_scalar_broadcast",
     lambda: sd.reshape(sd.broadcast_to(s, (3, 4)), (12,)), "reshape"),
    ("broadcast_of_ones", lambda: sd.broadcast_to(sd.reshape(s, (1, 1)), (3, 4)), "reshape"),
    ("broadcast_of_broadcast",
     lambda: sd.broadcast_to(sd.broadcast_to(s, (4,)), (3, 4)), "broadcast*broadcast"),
    ("broadcast_of_scalar_into_scalar_math",
     lambda: sd.sum(sd.broadcast_to(s, (3, 4)) * s, axis=1), "multiply(broadcast_to)"),
    ("sum_of_broadcast", lambda: sd.sum(sd.broadcast_to(s, (3, 4)), axis=(0, 1)), "sum"),
    ("sum_of_scalar_times", lambda: sd.sum(s * x, axis=1), "none"),
    ("sum_of_negation", lambda: sd.sum(-x, axis=1), "none"),
    ("sum_of_sum", lambda: sd.sum(sd.sum(x, axis=1)), "sum*sum"),
    ("implicit_broadcast", lambda: x * sd.broadcast_to(sd.sum(y, axis=1, keepdims=True), (3, 4)),
     "broadcast_to"),
    # issue 13, item 7: the textbook binary cross-entropy
    ("sigmoid_of_reciprocal", lambda: 1.0 / (1.0 + sd.exp(-x)), "exp"),
    ("log_one_minus_sigmoid", lambda: sd.log(1.0 - sd.sigmoid(x)), "sigmoid"),
    ("binary_cross_entropy_of_sigmoid",
     lambda: -(y * sd.log(sd.sigmoid(x)) + (1.0 - y) * sd.log(1.0 - sd.sigmoid(x))), "softplus"),
]

# ---- contractions (issue 13, item 6)
CASES += [
    ("einsum_in_pairs", lambda: sd.einsum("ij,kj,kl->il", x, y, p), "einsum"),
    ("einsum_as_matmul", lambda: sd.einsum("ij,kj->ik", x, y), "einsum"),
    ("einsum_as_matmul", lambda: sd.einsum("bij,bkj->bki", x[None], y[None]), "einsum"),
    ("einsum_as_matmul", lambda: sd.einsum("ij,i->j", x, y[:, 0]), "einsum"),
    ("einsum_as_matmul", lambda: sd.einsum("bij,bj->bi", x[None], y[None, 0]), "einsum"),
    ("einsum_as_matmul", lambda: sd.einsum("bi,bij->bj", y[None, :, 0], x[None]), "einsum"),
    ("einsum_as_matmul", lambda: sd.einsum("kbj,k->bj", x[:, None], y[:, 1]), "einsum"),
    # split's gradient (issue 13): the scattered pieces of x join into one concatenate
    ("sum_of_unindexed_slices", lambda: sd.grad(
        sd.sum(x[:, :1] * y[:, :1]) + sd.sum(x[:, 1:] * y[:, 1:]), x), "unindex"),
]


def _feed() -> dict[sd.Expr, np.ndarray]:
    return {
        x: RNG.uniform(-2, 2, (3, 4)),
        y: np.eye(4)[RNG.integers(0, 4, 3)],
        p: RNG.uniform(0.5, 2, (3, 4)),
        s: np.array(RNG.uniform(0.5, 2)),
    }


def _has(expr: sd.Expr, what: str) -> bool:
    nodes = toposort([expr])
    if what == "none":
        return False
    if "*" in what:
        outer, inner = what.split("*")
        return any(
            n.op.name == outer and n.inputs and inner in (n.inputs[0].op.name, n.inputs[-1].op.name)
            for n in nodes
        )
    if "(" in what:
        outer, inner = what.rstrip(")").split("(")
        return any(n.op.name == outer and n.inputs[0].op.name == inner for n in nodes)
    return any(n.op.name == what for n in nodes)


def test_every_rule_has_a_case() -> None:
    assert {r.__name__ for r in RULES} == {c[0] for c in CASES}


def test_every_rule_has_its_pattern_in_the_docstring() -> None:
    for rule in RULES:
        assert rule.__doc__ and "->" in rule.__doc__.splitlines()[0], rule.__name__


@pytest.mark.parametrize(("rule", "build", "gone"), CASES, ids=[c[0] for c in CASES])
def test_rewrite_fires_and_preserves_value(rule: str, build: Callable[[], sd.Expr],
                                           gone: str) -> None:
    expr = build()
    log = RewriteLog()
    # Rules exact only for finite values rewrite what the user wrote under fast_math alone
    # (tests/test_ieee.py checks they leave it alone by default).
    fast_math = any(is_finite_only(r) for r in RULES if r.__name__ == rule)
    (simplified,) = simplify([expr], log, fast_math=fast_math)
    assert log.fired[rule] >= 1, f"{rule} did not fire; fired: {log.summary()}"
    assert not _has(simplified, gone), sd.show(simplified)
    assert simplified.shape == expr.shape and simplified.dtype == expr.dtype
    feed = _feed()
    (before,) = evaluate([expr], feed)
    (after,) = evaluate([simplified], feed)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=1e-12)


def test_rewrites_leave_other_patterns_alone() -> None:
    for expr in (2.0 * x, sd.log(p + 1.0), x - y, sd.sum(x * y, axis=1), sd.exp(x) + 1.0):
        log = RewriteLog()
        (simplified,) = simplify([expr], log)
        assert simplified is expr, (log.summary(), sd.show(simplified))


# --------------------------------------------------------------------------- textbook forms


def _course_model(dtype: str = "float32"):  # type: ignore[no-untyped-def]
    xs = sd.placeholder("x", (None, 784), dtype)
    ys = sd.placeholder("y", (None, 10), dtype)
    W = sd.parameter("W", (784, 10), dtype)
    b = sd.parameter("b", (10,), dtype)
    logits = (xs @ W + b).named("logits")
    loss = sd.mean(-sd.sum(ys * sd.log(sd.softmax(logits)), axis=1)).named("loss")
    W_grad, b_grad = sd.grad(loss, [W, b])
    return {"loss_and_grads": ([xs, ys, W, b], [loss, W_grad, b_grad])}


def test_course_formulation_differentiates_to_the_textbook_form() -> None:
    source = sd.generate(_course_model(), "course")
    ops = count_operations(source, "loss_and_grads")
    assert ops["@"] == 2, ops
    assert ops["np.exp"] == 1 and ops["np.log"] == 1, ops
    lines = source.splitlines()
    softmax_names = {ln.split(" = ")[0].strip() for ln in lines if "softmax_logits = " in ln}
    divisions = [ln for ln in lines if " / " in ln or "np.divide(" in ln]
    for line in divisions:  # nothing is divided by the softmax
        rhs = line.split(" = ", 1)[-1]
        assert not any(f"/ {n}" in rhs or f", {n}," in rhs for n in softmax_names), line


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_course_loss_is_finite_for_extreme_logits(dtype: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    mod = sd.compile(_course_model(dtype), "course_extreme", cache_dir=tmp_path)
    x_val = np.zeros((4, 784), dtype)
    x_val[:, 0] = 1.0
    W = np.zeros((784, 10), dtype)
    W[0] = [1e4, -1e4, 0, 0, 0, 0, 0, 0, 0, 5e3]
    b = np.zeros(10, dtype)
    y_val = np.eye(10, dtype=dtype)[[0, 1, 2, 9]]
    loss, W_grad, b_grad = mod.loss_and_grads(x_val, y_val, W, b)
    assert np.isfinite(loss) and np.all(np.isfinite(W_grad)) and np.all(np.isfinite(b_grad))
    # reference: per-row cross-entropy with logits row [1e4, -1e4, 0, ..., 5e3]
    row = W[0].astype(np.float64)
    lse = row.max() + np.log(np.sum(np.exp(row - row.max())))
    expected = np.mean([lse - row[k] for k in (0, 1, 2, 9)])
    assert loss == pytest.approx(expected, rel=1e-6)


HAND_WRITTEN_LOGREG = '''
def loss_and_grads(x, y, W, b):
    N = x.shape[0]
    logits = x @ W + b
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * (shifted - np.log(s))) / N
    g = (e / s - y) / N
    return loss, x.T @ g, g.sum(axis=0)
'''

HAND_WRITTEN_MLP = '''
def loss_and_grads(x, y, W1, b1, W2, b2):
    N = x.shape[0]
    z1 = x @ W1 + b1
    h = np.maximum(z1, 0)
    logits = h @ W2 + b2
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    loss = -np.sum(y * (shifted - np.log(s))) / N
    g = (e / s - y) / N
    W2_grad = h.T @ g
    b2_grad = g.sum(axis=0)
    dh = g @ W2.T
    dz1 = dh * (z1 > 0)
    return loss, x.T @ dz1, dz1.sum(axis=0), W2_grad, b2_grad
'''


def _mlp_model():  # type: ignore[no-untyped-def]
    xs = sd.placeholder("x", (None, 784))
    ys = sd.placeholder("y", (None, 10))
    W1, b1 = sd.parameter("W1", (784, 256)), sd.parameter("b1", (256,))
    W2, b2 = sd.parameter("W2", (256, 10)), sd.parameter("b2", (10,))
    h = sd.relu(xs @ W1 + b1).named("h")
    logits = (h @ W2 + b2).named("logits")
    loss = sd.mean(sd.softmax_cross_entropy(logits, ys)).named("loss")
    grads = sd.grad(loss, [W1, b1, W2, b2])
    return {"loss_and_grads": ([xs, ys, W1, b1, W2, b2], [loss, *grads])}


@pytest.mark.parametrize(("model", "hand"), [
    (_course_model, HAND_WRITTEN_LOGREG), (_mlp_model, HAND_WRITTEN_MLP)], ids=["logreg", "mlp"])
def test_generated_code_has_at_most_1_2x_the_handwritten_operations(model, hand) -> None:  # type: ignore[no-untyped-def]
    generated = sum(count_operations(sd.generate(model(), "m"), "loss_and_grads").values())
    reference = sum(count_operations(hand, "loss_and_grads").values())
    assert generated <= 1.2 * reference, (generated, reference)


def test_simplified_and_raw_modules_agree(tmp_path) -> None:  # type: ignore[no-untyped-def]
    functions = _mlp_model()
    fast = sd.compile(functions, "mlp_fast", cache_dir=tmp_path)
    raw = sd.compile(functions, "mlp_raw", cache_dir=tmp_path, simplify=False)
    rng = np.random.default_rng(3)
    args = [rng.random((5, 784), dtype=np.float32), np.eye(10, dtype=np.float32)[[1, 2, 3, 4, 5]],
            (rng.standard_normal((784, 256)) * 0.05).astype(np.float32),
            np.zeros(256, np.float32),
            (rng.standard_normal((256, 10)) * 0.05).astype(np.float32), np.zeros(10, np.float32)]
    for a, b in zip(fast.loss_and_grads(*args), raw.loss_and_grads(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
