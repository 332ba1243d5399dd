"""The training loop: resume is bitwise identical, NaN is a clear error, MNIST is learned."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl import init, layers, optim
from symdl.train import CheckpointError, TrainingDivergedError, fit, load_checkpoint

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def _problem(n: int = 150, seed: int = 0):
    """A small separable 3-class problem in 8 dimensions and an MLP with accuracy."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(3, 8)) * 3
    labels = rng.integers(0, 3, size=n)
    data = (centers[labels] + rng.normal(size=(n, 8))).astype(np.float32)
    x = sd.placeholder("x", (None, 8))
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = layers.mlp(x, [16, 3], activation=sd.relu, name="small")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), "float32")).named("accuracy")
    return (data, labels), [x, y], loss, params, {"accuracy": acc}


@pytest.fixture
def adam_step(tmp_path):
    train, inputs, loss, params, metrics = _problem()
    step = optim.compile_train_step(loss, params, optim.Adam(0.01), inputs, metrics,
                                    name="small_adam", cache_dir=tmp_path)
    return step, params, train


def test_fit_learns_and_records_history(adam_step):
    step, params, train = adam_step
    values = init.initialize(params, seed=0)
    history = fit(step, values, train, epochs=4, batch_size=32, validation=train, quiet=True)
    assert history.step == 4 * 5 and len(history.loss) == 20
    assert len(history.metrics["accuracy"]) == 20 and len(history.epochs) == 4
    assert history.epochs[-1]["val_accuracy"] > 0.9
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]
    assert history.params is values
    assert history.state["step"] == 20


def test_resume_is_bitwise_identical(adam_step, tmp_path):
    step, params, train = adam_step
    straight = init.initialize(params, seed=0)
    full = fit(step, straight, train, epochs=3, batch_size=32, seed=5,
               lr=lambda s: 0.01 / (1 + s), validation=train, quiet=True)

    first = init.initialize(params, seed=0)
    ckpt = tmp_path / "run.npz"
    # Stop in the middle of the second epoch (5 steps per epoch).
    half = fit(step, first, train, epochs=3, batch_size=32, seed=5, lr=lambda s: 0.01 / (1 + s),
               validation=train, checkpoint=ckpt, max_steps=7, quiet=True)
    assert half.stopped and half.step == 7
    assert load_checkpoint(ckpt).batch == 2
    fresh = init.initialize(params, seed=99)  # resume must overwrite these
    resumed = fit(step, fresh, train, epochs=3, batch_size=32, seed=5,
                  lr=lambda s: 0.01 / (1 + s), validation=train, resume=ckpt, quiet=True)
    assert resumed.step == full.step == 15
    for name in straight:
        assert np.array_equal(resumed.params[name], full.params[name]), name
    for name in full.state:
        assert np.array_equal(resumed.state[name], full.state[name]), name
    assert resumed.loss == full.loss
    assert resumed.epochs == full.epochs


def test_resume_refuses_another_batch_size(adam_step, tmp_path):
    step, params, train = adam_step
    ckpt = tmp_path / "run.npz"
    fit(step, init.initialize(params), train, epochs=1, batch_size=32, checkpoint=ckpt,
        quiet=True)
    with pytest.raises(CheckpointError, match="batch_size"):
        fit(step, init.initialize(params), train, epochs=2, batch_size=16, resume=ckpt,
            quiet=True)


def test_nan_loss_names_step_and_last_finite_loss(tmp_path):
    train, inputs, loss, params, metrics = _problem()
    step = optim.compile_train_step(loss, params, optim.SGD(1.0), inputs, metrics,
                                    name="small_sgd", cache_dir=tmp_path)
    values = init.initialize(params, seed=0)
    data = (train[0].copy(), train[1])
    batch_size = 30
    # A NaN in the third batch of the (seeded) shuffled order: steps 1 and 2 are finite.
    order = np.random.default_rng(0).permutation(len(data[0]))
    data[0][order[2 * batch_size + 3], 0] = np.nan
    with pytest.raises(TrainingDivergedError) as err:
        fit(step, values, data, epochs=1, batch_size=batch_size, seed=0, quiet=True)
    message = str(err.value)
    assert "at step 3 (epoch 1, batch 3)" in message
    assert "the last finite loss was" in message and "at step 2" in message


def test_huge_learning_rate_diverges_with_a_clear_error(tmp_path):
    # Plain SGD: Adam's step is bounded by its learning rate whatever the gradient, so it can
    # stay finite where SGD's lr * gradient overflows.
    train, inputs, loss, params, metrics = _problem()
    step = optim.compile_train_step(loss, params, optim.SGD(0.1), inputs, metrics,
                                    name="small_sgd_huge", cache_dir=tmp_path)
    values = init.initialize(params, seed=0)
    scaled = (train[0] * 1e30, train[1])
    with pytest.raises(TrainingDivergedError, match=r"loss is (nan|inf) at step \d+"):
        fit(step, values, scaled, epochs=2, batch_size=32, lr=1e30, quiet=True)


def test_plot_written_when_matplotlib_is_installed(adam_step, tmp_path):
    pytest.importorskip("matplotlib")
    step, params, train = adam_step
    history = fit(step, init.initialize(params), train, epochs=2, batch_size=64,
                  validation=train, plot=tmp_path / "curves.png", quiet=True)
    assert history.plot is not None
    assert Path(history.plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_bar_only_when_asked(adam_step, capsys):
    pytest.importorskip("tqdm")
    step, params, train = adam_step
    fit(step, init.initialize(params), train, epochs=1, batch_size=64, progress=False)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "step/s" not in err and "it/s" not in err
    fit(step, init.initialize(params), train, epochs=1, batch_size=64, progress=True)
    assert "loss=" in capsys.readouterr().err
    fit(step, init.initialize(params), train, epochs=1, batch_size=64, quiet=True)
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_mlp_reaches_975_on_full_mnist(tmp_path):
    if not (MNIST_DIR / "train-images-idx3-ubyte.gz").exists() and not (
        MNIST_DIR / "train-images-idx3-ubyte"
    ).exists():
        pytest.skip(f"full MNIST not found in {MNIST_DIR}")
    import runpy

    example = runpy.run_path(str(Path(__file__).resolve().parents[1] / "examples" / "mlp_mnist.py"),
                             run_name="__test__")
    history = example["train"](data_dir=MNIST_DIR, cache_dir=tmp_path, quiet=True)
    assert history.epochs[-1]["val_accuracy"] >= 0.975
