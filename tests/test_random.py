"""Random draws and dropout: a generator argument, fresh draws per call, reproducible per seed.

Draws are compared bitwise with hand-written numpy drawing from a generator of the same seed in
the same order; dropout's gradient with central differences of a numpy dropout whose mask is
fixed by re-seeding the generator before every evaluation.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl.cli import main
from symdl.datasets import SUBSET_DIR
from symdl.errors import CodegenError, DTypeError
from symdl.ir import toposort
from symdl.train import load_checkpoint
from tests.helpers import check_grads, compile_functions

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261128


def _gen(seed: int = SEED) -> np.random.Generator:
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------- draws


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_draws_equal_numpy_with_the_same_seed_and_order(dtype: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 3), dtype)
    rng = sd.rng("rng")
    u = sd.random.uniform(rng, x.shape, dtype=dtype)
    z = sd.random.normal(rng, (2, 4), dtype=dtype)
    m = sd.random.bernoulli(rng, 0.3, (4,))
    mod = compile_functions({"f": ([x, rng], [u, z, m])}, symdl_cache)
    xv = np.zeros((5, 3), dtype)
    got = mod.f(xv, _gen())
    ref = _gen()
    expected = [ref.random((5, 3), dtype=dtype), ref.standard_normal((2, 4), dtype=dtype),
                ref.random((4,), dtype=np.float32) < 0.3]
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape
        assert np.array_equal(g, e)


def test_draws_are_fresh_on_every_call_and_reproducible_per_seed(symdl_cache: Path) -> None:
    rng = sd.rng("rng")
    mod = compile_functions({"f": ([rng], sd.random.uniform(rng, (100,)))}, symdl_cache)
    g = _gen()
    first, second = mod.f(g), mod.f(g)
    assert not np.array_equal(first, second)
    g2 = _gen()
    assert np.array_equal(mod.f(g2), first) and np.array_equal(mod.f(g2), second)


def test_two_calls_are_two_independent_draws(symdl_cache: Path) -> None:
    rng = sd.rng("rng")
    a = sd.random.uniform(rng, (50,))
    b = sd.random.uniform(rng, (50,))
    assert a is not b  # hash-consing must not merge two draws
    mod = compile_functions({"f": ([rng], [a, b, a - b])}, symdl_cache)
    va, vb, diff = mod.f(_gen())
    assert not np.array_equal(va, vb)
    assert np.array_equal(diff, va - vb)  # the same node a used twice is drawn once


def test_one_draw_used_twice_is_drawn_once(symdl_cache: Path) -> None:
    rng = sd.rng("rng")
    u = sd.random.uniform(rng, (6,))
    mod = compile_functions({"f": ([rng], [u * 2.0, u + 1.0])}, symdl_cache)
    source = Path(mod.__file__).read_text()
    assert source.count("rng.random(") == 1
    doubled, shifted = mod.f(_gen())
    base = _gen().random((6,), dtype=np.float32)
    assert np.array_equal(doubled, base * np.float32(2.0))
    assert np.array_equal(shifted, base + np.float32(1.0))


def test_uniform_and_normal_parameters(symdl_cache: Path) -> None:
    rng = sd.rng("rng")
    u = sd.random.uniform(rng, (4000,), low=-2.0, high=3.0, dtype="float64")
    z = sd.random.normal(rng, (4000,), loc=1.5, scale=0.5, dtype="float64")
    got_u, got_z = compile_functions({"f": ([rng], [u, z])}, symdl_cache).f(_gen())
    ref = _gen()
    np.testing.assert_allclose(got_u, -2.0 + 5.0 * ref.random(4000), rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(got_z, 1.5 + 0.5 * ref.standard_normal(4000), rtol=1e-15)
    assert -2.0 <= got_u.min() and got_u.max() < 3.0


def test_bernoulli_with_a_probability_expression(symdl_cache: Path) -> None:
    rng = sd.rng("rng")
    p = sd.placeholder("p", (), "float64")
    m = sd.random.bernoulli(rng, p, (2000,))
    assert m.dtype == "bool"
    mod = compile_functions({"f": ([p, rng], m)}, symdl_cache)
    got = mod.f(0.25, _gen())
    assert np.array_equal(got, _gen().random(2000) < 0.25)
    assert not mod.f(0.0, _gen()).any() and mod.f(1.0, _gen()).all()


def test_draws_are_not_differentiable_and_print_no_serial() -> None:
    rng = sd.rng("rng")
    w = sd.parameter("w", (3,), "float64")
    u = sd.random.uniform(rng, (3,), dtype="float64")
    (g,) = sd.grad(sd.sum(w * u), [w])
    assert u in toposort([g])  # the gradient reads the same draw
    text = str(sd.random.uniform(rng, (3,)))
    assert "draw" not in text and "uniform(%rng, shape=(3,)" in text


def test_bad_input_to_the_language() -> None:
    x = sd.placeholder("x", (3,))
    rng = sd.rng("rng")
    with pytest.raises(TypeError, match="sd.rng"):
        sd.random.uniform(np.random.default_rng(0), (3,))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="sd.rng"):
        sd.dropout(x, 0.5, x)
    with pytest.raises(DTypeError, match="float32 or float64"):
        sd.random.normal(rng, (3,), dtype="int64")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        sd.dropout(x, 1.0, rng)
    with pytest.raises(ValueError, match="probability"):
        sd.random.bernoulli(rng, 1.5, (3,))
    with pytest.raises(DTypeError, match="draw from it"):
        x * rng  # noqa: B018 - a slip for a draw


# --------------------------------------------------------------------------- entry check


def test_entry_check_names_the_argument_and_what_to_pass(symdl_cache: Path) -> None:
    x = sd.parameter("x", (4,), "float64")
    rng = sd.rng("rng")
    new = x + sd.random.uniform(rng, (4,), dtype="float64")
    mod = compile_functions({"f": ([x, rng], [], {x: new})}, symdl_cache)
    xv = np.zeros(4)
    for bad in (np.random.RandomState(0), 0, None):
        with pytest.raises(TypeError, match=r"f\(\): argument 'rng' .*default_rng"):
            mod.f(xv, bad)
    assert not xv.any()  # all or nothing: refused before any write
    g = _gen()
    mod.f(xv, g)
    assert np.array_equal(xv, _gen().random(4))


# --------------------------------------------------------------------------- dropout


def _dropout_ref(x: np.ndarray, rate: float, seed: int, dtype: str) -> np.ndarray:
    """Inverted dropout by hand, drawing the mask like the generated code does."""
    mask = np.random.default_rng(seed).random(x.shape, dtype=np.dtype(dtype)) < 1 - rate
    return x * mask / (1 - rate)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_forward_equals_numpy(dtype: str, symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 8), dtype)
    rng = sd.rng("rng")
    y = sd.dropout(x, 0.25, rng)
    assert y.dtype == dtype
    xv = _gen(1).standard_normal((5, 8)).astype(dtype)
    got = compile_functions({"f": ([x, rng], y)}, symdl_cache).f(xv, _gen())
    tol = 1e-6 if dtype == "float32" else 1e-15
    np.testing.assert_allclose(got, _dropout_ref(xv, 0.25, SEED, dtype), rtol=tol, atol=tol)
    assert got.dtype == dtype


def test_dropout_gradient_uses_the_forward_mask(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (4, 6), "float64")
    w = sd.parameter("w", (6, 3), "float64")
    rng = sd.rng("rng")
    out = sd.tanh(sd.dropout(x, 0.4, rng) @ w)
    loss = sd.sum(out * out)
    gx, gw = sd.grad(loss, [x, w])
    mod = compile_functions({"f": ([x, w, rng], [loss, gx, gw])}, symdl_cache)
    source = Path(mod.__file__).read_text()
    assert source.count("rng.random(") == 1  # one mask for the forward value and the gradient
    xv, wv = _gen(2).standard_normal((4, 6)), _gen(3).standard_normal((6, 3))
    _, got_gx, _ = mod.f(xv, wv, _gen())
    mask = _gen().random((4, 6)) < 0.6
    assert np.all(got_gx[~mask] == 0) and np.any(got_gx[mask] != 0)

    def ref(xa: np.ndarray, wa: np.ndarray, _rng: object) -> np.ndarray:
        # The generator is re-seeded before every evaluation: the mask stays fixed.
        return np.tanh(_dropout_ref(xa, 0.4, SEED, "float64") @ wa)

    values = [xv, wv, _gen()]
    check_grads(ref, [x, w, rng], sd.tanh(sd.dropout(x, 0.4, rng) @ w), values,
                wrt=[x, w], cache_dir=symdl_cache)


def test_dropout_new_mask_each_call_same_with_the_same_seed(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 16))
    rng = sd.rng("rng")
    f = compile_functions({"f": ([x, rng], sd.dropout(x, 0.5, rng))}, symdl_cache).f
    xv = np.ones((8, 16), np.float32)
    g = _gen()
    a, b = f(xv, g), f(xv, g)
    assert not np.array_equal(a, b)
    g2 = _gen()
    assert np.array_equal(f(xv, g2), a) and np.array_equal(f(xv, g2), b)


def test_dropout_rate_zero_is_the_identity(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 5))
    rng = sd.rng("rng")
    assert sd.dropout(x, 0.0, rng) is x
    rate = sd.placeholder("rate", (), "float32")
    f = compile_functions({"f": ([x, rate, rng], sd.dropout(x, rate, rng))}, symdl_cache).f
    xv = _gen(4).standard_normal((7, 5)).astype(np.float32)
    assert np.array_equal(f(xv, 0.0, _gen()), xv)  # exactly: x * True / 1
    dropped = f(xv, 0.5, _gen())
    assert np.array_equal(dropped, _dropout_ref(xv, 0.5, SEED, "float32"))
    assert np.array_equal(f(xv, 1.0, _gen()), np.zeros_like(xv))  # defined: all dropped


def test_dropout_preserves_the_mean(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 100), "float64")
    rng = sd.rng("rng")
    f = compile_functions({"f": ([x, rng], sd.dropout(x, 0.3, rng))}, symdl_cache).f
    xv = np.full((200, 100), 2.0)
    out = f(xv, _gen())
    # 20,000 entries: the mean's standard error is 2 * sqrt(0.3 / 0.7) / sqrt(20000) ~ 0.009.
    assert abs(out.mean() - 2.0) < 0.05
    assert abs((out == 0).mean() - 0.3) < 0.02


# --------------------------------------------------------------------------- same bytes

_MODEL = """
import symdl as sd
x = sd.placeholder("x", (None, 6))
W = sd.parameter("W", (6, 3))
rng = sd.rng("rng")
h = sd.dropout(sd.tanh(x @ W), 0.5, rng)
noise = sd.random.normal(rng, h.shape)
loss = sd.mean(h + 0.1 * noise)
functions = {"f": ([x, W, rng], [loss, sd.grad(loss, W)])}
"""

_OTHERS = """
import symdl as sd
r = sd.rng("rng")
a = sd.placeholder("x", (None, 6))
for _ in range(5):
    sd.random.uniform(r, (3,)); sd.random.bernoulli(r, 0.2, a.shape); sd.dropout(a, 0.1, r)
sd.generate({"g": ([a, r], sd.dropout(a, 0.5, r) + sd.random.uniform(r, a.shape))}, "other")
"""


def _source_in_fresh_process(prelude: str) -> str:
    script = (prelude + _MODEL + "\nimport json\nprint(json.dumps(sd.generate(functions, 'm')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_same_bytes_alone_and_after_other_draws() -> None:
    alone = _source_in_fresh_process("")
    after = _source_in_fresh_process(_OTHERS)
    assert alone == after
    assert "rng.random(" in alone and "rng.standard_normal(" in alone


def test_draw_order_is_that_of_the_graph(symdl_cache: Path) -> None:
    rng = sd.rng("rng")
    a = sd.random.uniform(rng, (3,))
    b = sd.random.normal(rng, (3,))
    f = compile_functions({"f": ([rng], [b, a])}, symdl_cache).f
    got_b, got_a = f(_gen())
    ref = _gen()
    first_b = ref.standard_normal(3, dtype=np.float32)
    then_a = ref.random(3, dtype=np.float32)
    assert np.array_equal(got_b, first_b) and np.array_equal(got_a, then_a)


# --------------------------------------------------------------------------- training


def _dropout_model() -> tuple:
    x = sd.placeholder("x", (None, 6))
    y = sd.placeholder("y", (None,), "int64")
    W1 = sd.parameter("W1", (6, 16))  # noqa: N806
    W2 = sd.parameter("W2", (16, 3))  # noqa: N806
    rng = sd.rng("rng")
    h = sd.dropout(sd.relu(x @ W1), 0.5, rng)
    loss = sd.mean(sd.softmax_cross_entropy(h @ W2, y))
    return x, y, [W1, W2], loss


def _data() -> tuple[np.ndarray, np.ndarray]:
    g = _gen(7)
    xs = g.standard_normal((64, 6)).astype(np.float32)
    return xs, (xs[:, 0] > 0).astype(np.int64) + (xs[:, 1] > 0)


def _fresh_params() -> dict[str, np.ndarray]:
    g = _gen(8)
    return {"W1": (0.3 * g.standard_normal((6, 16))).astype(np.float32),
            "W2": (0.3 * g.standard_normal((16, 3))).astype(np.float32)}


def test_training_with_dropout_is_reproducible_from_the_seed(
    symdl_cache: Path, tmp_path: Path
) -> None:
    x, y, params, loss = _dropout_model()
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(0.01), inputs=[x, y],
                                       cache_dir=str(symdl_cache))
    assert step.draws
    data = _data()
    runs = []
    for seed in (1, 1, 2):
        values = _fresh_params()
        history = sd.fit(step, values, data, epochs=3, batch_size=16, seed=seed, quiet=True,
                         validation=data)
        runs.append((values, history.loss))
    assert all(np.array_equal(runs[0][0][k], runs[1][0][k]) for k in runs[0][0])
    assert runs[0][1] == runs[1][1]
    assert runs[0][1] != runs[2][1]
    assert runs[0][1][-1] < runs[0][1][0]  # it learns

    # Interrupted and resumed, the run draws the same masks as an uninterrupted one.
    ckpt = tmp_path / "run.npz"
    values = _fresh_params()
    sd.fit(step, values, data, epochs=3, batch_size=16, seed=1, quiet=True,
           checkpoint=ckpt, max_steps=5)
    resumed = sd.fit(step, values, data, epochs=3, batch_size=16, seed=1, quiet=True,
                     resume=ckpt)
    assert resumed.loss == runs[0][1]
    assert all(np.array_equal(values[k], runs[0][0][k]) for k in values)


def test_a_step_that_draws_needs_the_generator(symdl_cache: Path) -> None:
    x, y, params, loss = _dropout_model()
    step = sd.optim.compile_train_step(loss, params, sd.optim.SGD(0.1), inputs=[x, y],
                                       cache_dir=str(symdl_cache))
    xs, ys = _data()
    with pytest.raises(TypeError, match="default_rng"):
        step([xs, ys], _fresh_params(), step.init_state())
    out = step.evaluate([xs, ys], _fresh_params(), rng=_gen())
    assert np.isfinite(out[0])


def test_cli_trains_the_dropout_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYMDL_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    model = ROOT / "examples" / "models" / "mlp_dropout.py"
    common = [str(model), "--data", str(SUBSET_DIR), "--epochs", "1", "--batch-size", "250",
              "--optimizer", "adam", "--lr", "1e-3", "--seed", "3", "--quiet"]
    assert main(["train", *common, "--checkpoint", "a.npz"]) == 0
    assert main(["train", *common, "--checkpoint", "b.npz"]) == 0
    a, b = load_checkpoint("a.npz"), load_checkpoint("b.npz")
    assert a.draw_rng_state is not None and a.draw_rng_state == b.draw_rng_state
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)
    assert a.history.epochs == b.history.epochs
    assert a.history.epochs[0]["val_accuracy"] > 0.6
    assert "test" in capsys.readouterr().out


def test_reference_interpreter_draws_in_the_generated_order(symdl_cache: Path) -> None:
    from tests.reference import evaluate

    x = sd.placeholder("x", (None, 4), "float64")
    rng = sd.rng("rng")
    out = [sd.dropout(x, 0.5, rng) + sd.random.normal(rng, x.shape, dtype="float64"),
           sd.random.bernoulli(rng, 0.7, (3,))]
    xv = _gen(5).standard_normal((6, 4))
    got = compile_functions({"f": ([x, rng], out)}, symdl_cache).f(xv, _gen())
    expected = evaluate(out, {x: xv, rng: _gen()})
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-15, atol=1e-15)


def test_mlp_with_dropout_draws_once_per_hidden_layer(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 5), "float64")
    rng = sd.rng("rng")
    logits, params = sd.layers.mlp(x, [7, 6, 3], activation=sd.tanh, dropout=0.5, rng=rng)
    plain, _ = sd.layers.mlp(x, [7, 6, 3], activation=sd.tanh)
    values = sd.init.initialize(params, seed=0)
    leaves = list(params)
    f = compile_functions({"f": ([x, *leaves, rng], logits)}, symdl_cache).f
    xv = _gen(6).standard_normal((4, 5))
    got = f(xv, *(values[p.name] for p in leaves), _gen())
    ref, h = _gen(), xv
    w = [values[p.name] for p in leaves]
    for i in range(3):
        h = h @ w[2 * i] + w[2 * i + 1]
        if i < 2:
            h = np.tanh(h) * (ref.random(h.shape) < 0.5) / 0.5
    np.testing.assert_allclose(got, h, rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="rng"):
        sd.layers.mlp(x, [3], activation=sd.tanh, dropout=0.5)
    assert not any(n.op.name == "rng" for n in toposort([plain]))


def test_settings_switch_dropout_off_for_evaluation(symdl_cache: Path) -> None:
    x = sd.placeholder("x", (None, 6))
    y = sd.placeholder("y", (None,), "int64")
    W = sd.parameter("W", (6, 3))  # noqa: N806
    rate = sd.placeholder("rate", ())
    rng = sd.rng("rng")
    loss = sd.mean(sd.softmax_cross_entropy(sd.dropout(x, rate, rng) @ W, y))
    plain = sd.mean(sd.softmax_cross_entropy(x @ W, y))
    step = sd.optim.compile_train_step(loss, [W], sd.optim.SGD(0.1), inputs=[x, y],
                                       cache_dir=str(symdl_cache), settings={rate: (0.5, 0.0)})
    xs, ys = _data()
    w = {"W": _fresh_params()["W2"][:6].copy()}
    reference = compile_functions({"f": ([x, y, W], plain)}, symdl_cache).f(xs, ys, w["W"])
    # Evaluation keeps every unit: the loss without dropout, exactly.
    assert step.evaluate([xs, ys], w, rng=_gen())[0] == reference
    trained = step([xs, ys], w, step.init_state(), rng=_gen())[0]
    assert trained != reference  # training drops half the inputs
    history = sd.fit(step, w, (xs, ys), epochs=1, batch_size=16, quiet=True,
                     validation=(xs, ys))
    assert np.isfinite(history.epochs[0]["val_loss"])
    with pytest.raises(CodegenError, match="settings"):
        sd.optim.compile_train_step(loss, [W], sd.optim.SGD(0.1), inputs=[x, y],
                                    cache_dir=str(symdl_cache), settings={rate: 0.5})


def test_passes_neither_fuse_fold_nor_reorder_draws(symdl_cache: Path) -> None:
    """Each draw is one statement of its own; simplified, fused and raw modules draw the same."""
    import codegen

    x = sd.placeholder("x", (None, 4), "float64")
    rng = sd.rng("rng")
    a, b = sd.random.uniform(rng, x.shape, dtype="float64"), sd.random.normal(rng, (4,))
    out = [sd.exp(sd.dropout(x, 0.3, rng) * a) + b * 0.0 + (a - a), a - b]
    functions = {"f": ([x, rng], out)}
    xv = _gen(9).standard_normal((3, 4))
    results = []
    for simplify in (True, False):
        module = codegen.compile(functions, f"draws_{simplify}", symdl_cache, simplify=simplify)
        source = Path(module.__file__).read_text()
        draws = [line.strip() for line in source.splitlines() if "rng.random(" in line
                 or "rng.standard_normal(" in line]
        assert len(draws) == 3, draws  # none merged, duplicated or dropped
        assert all(line.split(" = ", 1)[1].startswith("rng.") for line in draws), draws
        results.append(module.f(xv, _gen()))
    for fast, raw in zip(*results, strict=True):
        np.testing.assert_allclose(fast, raw, rtol=1e-6, atol=1e-6)
