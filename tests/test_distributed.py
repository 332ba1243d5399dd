"""Data-parallel training: the split step (`grads` + `apply`) and `sd.fit(..., client=...)` on a
Dask `LocalCluster` of two worker processes, against the fused single-process step.

Tolerances: the split step sums the shards' gradient sums and divides once by the batch size,
where the fused step divides inside the backward pass, so the two differ by rounding only:
1e-12 relative in float64, 1e-5 relative in float32 (a few ulps of each update, over 6 steps).
"""

from __future__ import annotations

import numpy as np
import pytest

import symdl as sd
from symdl import layers, optim

TOL = {"float64": 1e-12, "float32": 1e-5}


def _model(dtype: str):
    """A hidden tanh layer and a softmax: two weight shapes, two biases, an accuracy metric."""
    x = sd.placeholder("x", (None, 6), dtype=dtype)
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = layers.mlp(x, [5, 3], activation=sd.tanh, name="dp")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), dtype)).named("accuracy")
    return [x, y], loss, params, {"accuracy": acc}


def _data(n: int, dtype: str, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(dtype)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    return x, y


OPTIMIZERS = {
    "sgd": lambda: optim.SGD(0.1),
    "momentum": lambda: optim.SGD(0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda: optim.Adam(1e-2),
}


def _compile(dtype: str, opt: str, tmp_path, split: bool = True):
    inputs, loss, params, metrics = _model(dtype)
    step = optim.compile_train_step(loss, params, OPTIMIZERS[opt](), inputs, metrics,
                                    name=f"dp_{opt}_{dtype}", cache_dir=str(tmp_path),
                                    split=split)
    return step, sd.init.initialize(params, seed=0)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("opt", sorted(OPTIMIZERS))
def test_grads_of_two_shards_plus_apply_equal_the_fused_step(dtype, opt, tmp_path):
    step, fused_params = _compile(dtype, opt, tmp_path)
    split_params = {k: v.copy() for k, v in fused_params.items()}
    fused_state, split_state = step.init_state(), step.init_state()
    x, y = _data(45, dtype)
    for t in range(6):
        rows = slice(t * 7, t * 7 + 13)  # unequal shards: 13 rows cut 9 + 4
        xb, yb = x[rows], y[rows]
        fused = step([xb, yb], fused_params, fused_state)
        first, second = step.grads([xb[:9], yb[:9]], split_params), \
            step.grads([xb[9:], yb[9:]], split_params)
        total = [a + b for a, b in zip(first, second)]
        step.apply(total[2:], split_params, split_state, len(xb))
        np.testing.assert_allclose(total[0] / len(xb), fused[0], rtol=TOL[dtype])
        np.testing.assert_allclose(total[1] / len(xb), fused[1], rtol=TOL[dtype])
        for name in step.param_names:
            np.testing.assert_allclose(split_params[name], fused_params[name], rtol=TOL[dtype],
                                       atol=TOL[dtype], err_msg=f"{opt} step {t}: {name}")
        for name in step.state_names:
            np.testing.assert_allclose(split_state[name], fused_state[name], rtol=TOL[dtype],
                                       atol=TOL[dtype], err_msg=f"{opt} step {t}: {name}")


def test_split_grads_are_sums_over_rows(tmp_path):
    """``grads`` on a shard equals the fused gradient times the shard's size: a sum, not a mean."""
    step, params = _compile("float64", "sgd", tmp_path)
    x, y = _data(20, "float64")
    out = step.grads([x, y], params)
    assert out[0] == pytest.approx(20 * float(step.evaluate([x, y], params)[0]), rel=1e-12)
    before = {k: v.copy() for k, v in params.items()}
    state = step.init_state()
    step([x, y], params, state, lr=1.0)  # plain SGD with lr 1: the update is -grad
    for name, g in zip(step.param_names, out[2:]):
        np.testing.assert_allclose(g / 20, before[name] - params[name], rtol=1e-12, atol=1e-15)


def test_unsplit_step_refuses_grads_with_the_fix(tmp_path):
    step, params = _compile("float64", "sgd", tmp_path, split=False)
    with pytest.raises(sd.errors.CodegenError, match="split=True"):
        step.grads(list(_data(4, "float64")), params)


def test_a_worker_refuses_a_module_whose_hash_changed_in_transit():
    with pytest.raises(sd.errors.CodegenError, match="changed in transit"):
        sd.distributed._install("run", "x = 1\n", "tampered", {}, "0" * 16)
    assert "run" not in sd.distributed._RUNS


def _dropout_step(tmp_path):
    """The `_model` MLP with dropout on its hidden layer, the rate fed 0.5 in training."""
    x = sd.placeholder("x", (None, 6), dtype="float64")
    y = sd.placeholder("y", (None,), dtype="int64")
    rate = sd.placeholder("rate", (), dtype="float64")
    logits, params = layers.mlp(x, [5, 3], activation=sd.tanh, name="dp", dropout=rate,
                                rng=sd.rng("rng"))
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    step = optim.compile_train_step(loss, params, optim.SGD(0.1), [x, y], name="dp_dropout",
                                    cache_dir=str(tmp_path), settings={rate: (0.5, 0.0)},
                                    split=True)
    return step, sd.init.initialize(params, seed=0)


def test_a_split_step_draws_the_masks_the_fused_step_draws(tmp_path):
    """With dropout, ``grads`` on the whole batch plus ``apply`` is the fused step when both
    draw from generators in the same state (one shard: the same draws in the same order)."""
    step, fused_params = _dropout_step(tmp_path)
    split_params = {k: v.copy() for k, v in fused_params.items()}
    x, y = _data(16, "float64")
    fused = step([x, y], fused_params, step.init_state(), rng=np.random.default_rng(5))
    total = step.grads([x, y], split_params, rng=np.random.default_rng(5))
    step.apply(total[1:], split_params, step.init_state(), len(x))
    np.testing.assert_allclose(total[0] / len(x), fused[0], rtol=1e-12)
    for name in step.param_names:
        np.testing.assert_allclose(split_params[name], fused_params[name], rtol=1e-12,
                                   atol=1e-12, err_msg=name)
    other = step.grads([x, y], split_params, rng=np.random.default_rng(6))
    assert not np.array_equal(other[0], total[0])  # another generator: other masks


# ------------------------------------------------------------------ on a Dask cluster

distributed = pytest.importorskip("dask.distributed",
                                  reason="dask[distributed] is not installed (pip install "
                                         "'symdl[distributed]')")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """Two worker processes with one thread each, started and closed by this module; they
    compile into a cache of their own, never the user's."""
    cache = str(tmp_path_factory.mktemp("worker_cache"))
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=":0", env={"SYMDL_CACHE": cache}) as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


def _single(step, params, data, **kwargs):
    values = {k: v.copy() for k, v in params.items()}
    return sd.fit(step, values, data, quiet=True, **kwargs)


@pytest.mark.parametrize("dtype, update", [("float64", "driver"), ("float32", "driver"),
                                           ("float64", "replicas")])
def test_two_workers_match_one_process(client, dtype, update, tmp_path):
    step, params = _compile(dtype, "adam", tmp_path)
    data = _data(90, dtype)  # batches of 32, 32 and 26 rows: shards of 16+16 and 13+13
    held_out = _data(20, dtype, seed=2)
    one = _single(step, params, data, epochs=2, batch_size=32, seed=3, validation=held_out)
    values = {k: v.copy() for k, v in params.items()}
    two = sd.distributed.fit(step, values, data, client=client, update=update, epochs=2,
                             batch_size=32, seed=3, quiet=True, validation=held_out)
    for mine, theirs in zip(two.epochs, one.epochs, strict=True):  # validated on the driver
        assert mine.keys() == theirs.keys()
        np.testing.assert_allclose(list(mine.values()), list(theirs.values()), rtol=TOL[dtype])
    np.testing.assert_allclose(two.loss, one.loss, rtol=TOL[dtype])
    np.testing.assert_allclose(two.metrics["accuracy"], one.metrics["accuracy"], rtol=TOL[dtype])
    for name in step.param_names:
        np.testing.assert_allclose(values[name], one.params[name], rtol=TOL[dtype],
                                   atol=TOL[dtype], err_msg=name)
    assert two.step == one.step == 6


def test_a_run_is_bitwise_reproducible_from_its_seed(client, tmp_path, capsys):
    step, params = _compile("float32", "momentum", tmp_path)
    data = _data(70, "float32")
    runs = []
    for progress in (True, False):
        values = {k: v.copy() for k, v in params.items()}
        history = sd.fit(step, values, data, client=client, epochs=1, batch_size=16, seed=5,
                         progress=progress)
        runs.append((history.loss, values))
    assert runs[0][0] == runs[1][0]
    for name in step.param_names:
        assert np.array_equal(runs[0][1][name], runs[1][1][name]), name
    err = capsys.readouterr().err
    assert "dashboard: http" in err and "samples/s=" in err


def test_a_worker_with_another_version_is_refused(client, monkeypatch, tmp_path):
    step, params = _compile("float64", "sgd", tmp_path)
    monkeypatch.setattr(sd.distributed, "_report_versions",
                        lambda: {"symdl": "0.0.1", "numpy": np.__version__})
    with pytest.raises(sd.distributed.WorkerVersionError,
                       match=rf"runs symdl 0\.0\.1, the driver symdl {sd.__version__}"):
        sd.fit(step, params, _data(8, "float64"), client=client, quiet=True)


def test_an_unsplit_step_is_refused_with_the_fix(client, tmp_path):
    step, params = _compile("float64", "sgd", tmp_path, split=False)
    with pytest.raises(sd.errors.CodegenError, match="split=True"):
        sd.fit(step, params, _data(8, "float64"), client=client, quiet=True)


def test_train_command_on_a_scheduler_matches_one_process(client, tmp_path, monkeypatch, capsys):
    from symdl.cli import main
    from symdl.datasets import SUBSET_DIR

    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYMDL_OFFLINE", "1")
    model = tmp_path / "small.py"
    model.write_text(SMALL_MODEL)
    common = [str(model), "--data", str(SUBSET_DIR), "--batch-size", "250", "--max-steps", "3",
              "--optimizer", "momentum", "--lr", "0.1", "--quiet"]
    assert main(["train", *common, "--checkpoint", str(tmp_path / "one.npz")]) == 0
    assert main(["train", *common, "--checkpoint", str(tmp_path / "two.npz"),
                 "--scheduler", client.scheduler.address]) == 0
    assert "stopped after 3 steps" in capsys.readouterr().out
    one = sd.train.load_checkpoint(tmp_path / "one.npz")
    two = sd.train.load_checkpoint(tmp_path / "two.npz")
    np.testing.assert_allclose(two.history.loss, one.history.loss, rtol=TOL["float32"])
    for name in ("W", "b"):
        np.testing.assert_allclose(two.params[name], one.params[name], rtol=TOL["float32"],
                                   atol=TOL["float32"])


SMALL_MODEL = """
import symdl as sd
x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None,), dtype="int64")
W = sd.parameter("W", (784, 10))
b = sd.parameter("b", (10,))
loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y)).named("loss")
inputs = [x, y]
params = {W: sd.init.zeros, b: sd.init.zeros}
"""


def test_a_killed_worker_stops_the_run_and_its_checkpoint_resumes_on_one_worker(client,
                                                                                 tmp_path):
    """Worker 1 dies at step 5: the run stops naming it, the checkpoint of step 4 is intact,
    and resuming it on the one worker left ends where an uninterrupted run ends."""
    import os
    import signal

    step, params = _compile("float64", "adam", tmp_path)
    data = _data(96, "float64")
    whole = _single(step, params, data, epochs=2, batch_size=16, seed=7)
    victim = next(a for a, w in client.scheduler_info()["workers"].items() if str(w["name"]) == "1")
    pid = client.cluster.workers[1].process.process.pid  # the worker process under its nanny

    killed = []

    def schedule(n: int) -> float:
        if n == 4 and not killed:  # the driver asks for step 5's rate: kill worker 1 first
            killed.append(victim)
            os.kill(pid, signal.SIGKILL)
        return 1e-2

    values = {k: v.copy() for k, v in params.items()}
    ckpt = tmp_path / "run.npz"
    with pytest.raises(sd.distributed.WorkerLostError, match=f"worker 1 \\({victim}\\) died"):
        sd.fit(step, values, data, client=client, epochs=2, batch_size=16, seed=7, lr=schedule,
               checkpoint=ckpt, checkpoint_every=2, quiet=True)
    saved = sd.train.load_checkpoint(ckpt)
    assert saved.step == 4
    client.wait_for_workers(2)  # the nanny restarts worker 1; resume on worker 0 alone
    resumed = {k: v.copy() for k, v in params.items()}
    history = sd.distributed.fit(step, resumed, data, client=client, workers=["0"], epochs=2,
                                 batch_size=16, seed=7, lr=schedule, resume=ckpt,
                                 quiet=True)
    assert history.step == whole.step == 12
    np.testing.assert_allclose(history.loss, whole.loss, rtol=1e-12)
    for name in step.param_names:
        np.testing.assert_allclose(resumed[name], whole.params[name], rtol=1e-12, atol=1e-14)


def test_a_model_with_dropout_trains_on_two_workers_reproducibly(client, tmp_path):
    """Each shard draws from default_rng([seed, 3, step, shard]): the same seed repeats a run
    bit for bit, another seed draws other masks."""
    step, params = _dropout_step(tmp_path)
    data = _data(64, "float64")
    runs = {}
    for label, seed in (("first", 4), ("again", 4), ("other", 5)):
        values = {k: v.copy() for k, v in params.items()}
        history = sd.fit(step, values, data, client=client, epochs=2, batch_size=16, seed=seed,
                         quiet=True)
        assert all(np.isfinite(history.loss))
        runs[label] = (history.loss, values)
    assert runs["first"][0] == runs["again"][0]
    for name in step.param_names:
        assert np.array_equal(runs["first"][1][name], runs["again"][1][name]), name
    assert runs["first"][0] != runs["other"][0]


def test_a_split_step_keeps_its_constants_on_a_warm_start(tmp_path):
    """A worker is sent the module's .npy constants with its source: a split step has them
    whether it was generated now or found in the cache (a second compile imports it)."""
    x = sd.placeholder("x", (None, 6), dtype="float64")
    y = sd.placeholder("y", (None,), dtype="int64")
    scale = sd.constant(np.linspace(0.5, 1.5, 6 * 400).reshape(6, 400))  # over 1000: a .npy
    logits, params = layers.mlp(x @ scale, [3], activation=sd.tanh,
                               name="dp_const")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    steps = [optim.compile_train_step(loss, params, optim.SGD(0.1), [x, y], name="dp_const",
                                      cache_dir=str(tmp_path), split=True) for _ in range(2)]
    assert steps[0].arrays, "the model has no .npy constant: the test checks nothing"
    assert steps[0].arrays.keys() == steps[1].arrays.keys()
    for name, value in steps[0].arrays.items():
        assert np.array_equal(value, steps[1].arrays[name])
        assert (tmp_path / name).is_file()
