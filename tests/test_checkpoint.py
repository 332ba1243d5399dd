"""Checkpoints: a damaged file is a `CheckpointError` naming it (never a raw zip, JSON or key
error, never advice to unpickle), a resume from another run's checkpoint lists the differences
unless forced, and writes are durable and leave no temporaries behind."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import symdl as sd
from symdl import init, optim
from symdl.errors import CheckpointError
from symdl.optim import TrainStep
from symdl.train import fit, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    x = (rng.normal(size=(3, 4))[labels] * 2 + rng.normal(size=(n, 4))).astype(np.float32)
    return x, labels


def _compile(optimizer: optim.Optimizer, cache: Path, width: int = 3) -> TrainStep:
    x = sd.placeholder("x", (None, 4))
    y = sd.placeholder("y", (None,), dtype="int64")
    w = sd.parameter("w", (4, width))
    b = sd.parameter("b", (width,))
    loss = sd.mean(sd.softmax_cross_entropy(x @ w + b, y)).named("loss")
    return optim.compile_train_step(loss, {w: init.glorot_uniform, b: init.zeros}, optimizer,
                                    [x, y], name=f"ckpt_{type(optimizer).__name__}",
                                    cache_dir=cache)


@pytest.fixture(scope="module")
def steps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainStep]:
    cache = tmp_path_factory.mktemp("ckpt_cache")
    return {"adam": _compile(optim.Adam(0.01), cache),
            "sgd": _compile(optim.SGD(0.1, momentum=0.9), cache),
            "wide": _compile(optim.Adam(0.01), cache, width=5)}


def _params(step: TrainStep) -> dict[str, np.ndarray]:
    return init.initialize(step.spec.initializers, seed=0)


def _run(step: TrainStep, ckpt: Path, **kwargs: object) -> sd.train.History:
    options = {"epochs": 2, "batch_size": 16, "seed": 1, "quiet": True, **kwargs}
    return fit(step, _params(step), _data(), **options)


@pytest.fixture
def checkpoint(steps: dict[str, TrainStep], tmp_path: Path) -> Path:
    """A checkpoint of the Adam run, stopped after 5 of its 8 steps."""
    ckpt = tmp_path / "run.npz"
    _run(steps["adam"], ckpt, checkpoint=ckpt, max_steps=5)
    return ckpt


# --------------------------------------------------------------------------- damaged files


def _entries(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _savez(path: Path, arrays: dict[str, np.ndarray], *, allow_pickle: bool = False) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=allow_pickle, **arrays)
    path.write_bytes(buffer.getvalue())


def _with_position(change: Callable[[dict], object]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        arrays = _entries(path)
        position = json.loads(str(arrays["position"]))
        change(position)
        arrays["position"] = np.array(json.dumps(position))
        _savez(path, arrays)

    return damage


def _without(key: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        arrays = _entries(path)
        del arrays[key]
        _savez(path, arrays)

    return damage


def _replace_entry(key: str, value: object, *, allow_pickle: bool = False) -> Callable:
    def damage(path: Path) -> None:
        arrays = _entries(path)
        arrays[key] = np.asarray(value)
        _savez(path, arrays, allow_pickle=allow_pickle)

    return damage


DAMAGE = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                  "truncated or corrupt"),
    "cut at the end": (lambda p: p.write_bytes(p.read_bytes()[:-30]), "truncated or corrupt"),
    "a flipped byte": (lambda p: p.write_bytes(_flip(p.read_bytes())), "truncated or corrupt"),
    "random bytes": (lambda p: p.write_bytes(np.random.default_rng(0).bytes(3000)),
                     "not an .npz archive"),
    "a text file": (lambda p: p.write_text("step,loss\n1,0.5\n2,0.4\n"), "not an .npz archive"),
    "an empty file": (lambda p: p.write_bytes(b""), "not an .npz archive"),
    "no history": (_without("history/loss"), "'history/loss' is missing"),
    "no position": (_without("position"), "not a symdl checkpoint"),
    "position not JSON": (_replace_entry("position", "{step: 3"), "not valid JSON"),
    "position a number": (_replace_entry("position", 3.0), "not a JSON string"),
    "no step": (_with_position(lambda d: d.pop("step")), "step=None"),
    "negative batch": (_with_position(lambda d: d.update(batch=-1)), "batch=-1"),
    "bad RNG state": (_with_position(lambda d: d.update(rng_state={"state": 1})),
                      "RNG state cannot be restored"),
    "future format": (_with_position(lambda d: d.update(version=99)), "format 99"),
    "loss not per step": (_replace_entry("history/loss", [0.5, 0.4]), "one float for each"),
    "a pickled entry": (_replace_entry("param/w", np.array([{"evil": 1}], dtype=object),
                                       allow_pickle=True), "Python objects"),
}


def _flip(data: bytes) -> bytes:
    middle = len(data) // 3  # inside the first parameter's bytes: only the CRC can tell
    return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_checkpoint_is_a_checkpoint_error(kind: str, checkpoint: Path,
                                                  steps: dict[str, TrainStep]) -> None:
    damage, what = DAMAGE[kind]
    damage(checkpoint)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(checkpoint)
    message = str(err.value)
    assert str(checkpoint) in message and what in message, message
    assert "pickle" not in message.replace("Python objects", "")
    # fit's resume says the same, and nothing else is raised on the way
    with pytest.raises(CheckpointError, match="cannot be read|not a symdl checkpoint|format 99"):
        _run(steps["adam"], checkpoint, resume=checkpoint)


def test_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'none.npz'} does not exist"):
        load_checkpoint(tmp_path / "none.npz")


# --------------------------------------------------------------------------- resuming another run


def test_resume_refuses_another_run_listing_every_difference(
    checkpoint: Path, steps: dict[str, TrainStep]
) -> None:
    x, y = _data()
    x = x.copy()
    x[7, 2] += 1.0  # same size, other data
    with pytest.raises(CheckpointError) as err:
        fit(steps["sgd"], _params(steps["sgd"]), (x, y), epochs=2, batch_size=16, seed=2,
            lr=0.05, resume=checkpoint, quiet=True)
    message = str(err.value)
    for line in [
        "optimizer.type: 'Adam' in the checkpoint, 'SGD' in this run",
        "optimizer.momentum: not recorded in the checkpoint, 0.9 in this run",
        "optimizer.betas: [0.9, 0.999] in the checkpoint, none in this run",
        "lr: 0.01 in the checkpoint, 0.05 in this run",
        "seed: 1 in the checkpoint, 2 in this run",
        "data.fingerprint: ",
        "model.state.w_momentum: not recorded in the checkpoint, 'float32 (4, 3)' in this run",
        "force=True",
    ]:
        assert line in message, (line, message)
    assert "data.size" not in message and "batch_size" not in message
    assert str(checkpoint) in message


@pytest.mark.parametrize("change, listed", [
    ({"lr": 0.02}, "lr: 0.01 in the checkpoint, 0.02"),
    ({"seed": 3}, "seed: 1 in the checkpoint, 3"),
    ({"batch_size": 8}, "batch_size: 16 in the checkpoint, 8"),
    ({"data": _data(n=50)}, "data.size: 60 in the checkpoint, 50"),
    ({"lr": lambda s: 0.01}, "lr: 0.01 in the checkpoint, 'schedule "),
])
def test_resume_refuses_each_difference(change: dict, listed: str, checkpoint: Path,
                                        steps: dict[str, TrainStep]) -> None:
    data = change.pop("data", _data())
    options = {"epochs": 2, "batch_size": 16, "seed": 1, "quiet": True, **change}
    with pytest.raises(CheckpointError, match="other settings") as err:
        fit(steps["adam"], _params(steps["adam"]), data, resume=checkpoint, **options)
    assert listed in str(err.value)


def test_same_run_resumes_without_force(checkpoint: Path, steps: dict[str, TrainStep]) -> None:
    resumed = _run(steps["adam"], checkpoint, resume=checkpoint)
    straight = _run(steps["adam"], checkpoint)
    assert resumed.step == straight.step == 8
    for name in straight.params:
        assert np.array_equal(resumed.params[name], straight.params[name])


def test_force_resumes_another_run(checkpoint: Path, steps: dict[str, TrainStep],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    saved = load_checkpoint(checkpoint)
    history = fit(steps["adam"], _params(steps["adam"]), _data(), epochs=2, batch_size=16,
                  seed=7, lr=0.02, resume=checkpoint, force=True, max_steps=5)
    assert "seed: 1 in the checkpoint, 7 in this run" in capsys.readouterr().err
    assert history.step == 5 and history.loss == saved.history.loss
    assert np.array_equal(history.params["w"], saved.params["w"])


def test_force_switches_optimizer_with_fresh_state(checkpoint: Path,
                                                   steps: dict[str, TrainStep]) -> None:
    saved = load_checkpoint(checkpoint)
    step = steps["sgd"]
    values = _params(step)
    state = step.init_state()
    history = fit(step, values, _data(), epochs=2, batch_size=16, seed=1, resume=checkpoint,
                  force=True, max_steps=5, state=state, quiet=True)
    assert np.array_equal(values["w"], saved.params["w"])
    assert not state["w_momentum"].any() and history.step == 5


def test_force_does_not_load_parameters_that_do_not_fit(checkpoint: Path,
                                                         steps: dict[str, TrainStep]) -> None:
    with pytest.raises(CheckpointError, match=r"parameter 'w' as float32 \(4, 3\); the model's "
                                              r"is float32 \(4, 5\)"):
        _run(steps["wide"], checkpoint, resume=checkpoint, force=True)


CLI_MODEL = """
import symdl as sd
x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None,), dtype="int64")
W = sd.parameter("W", (784, 10))
b = sd.parameter("b", (10,))
loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y)).named("loss")
inputs = [x, y]
params = {W: sd.init.zeros, b: sd.init.zeros}
"""


def test_cli_train_refuses_another_run_unless_forced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from symdl.cli import main
    from symdl.datasets import SUBSET_DIR

    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(CLI_MODEL)
    common = ["train", "model.py", "--data", str(SUBSET_DIR), "--epochs", "1", "--batch-size",
              "1000", "--optimizer", "sgd", "--quiet"]
    assert main([*common, "--lr", "0.5", "--checkpoint", "a.npz", "--max-steps", "2"]) == 0
    capsys.readouterr()
    try:  # an error is raised, or reported with a non-zero exit status
        refused = main([*common, "--lr", "0.1", "--resume", "a.npz"]) != 0
    except CheckpointError as err:
        refused = "lr: 0.5 in the checkpoint, 0.1 in this run" in str(err)
    assert refused
    assert main([*common, "--lr", "0.1", "--resume", "a.npz", "--force",
                 "--checkpoint", "b.npz"]) == 0
    assert load_checkpoint("b.npz").step == 5


# --------------------------------------------------------------------------- durable writes


KILLED_WRITE = textwrap.dedent(
    """
    import os, signal, sys
    import symdl.files as files

    def killed(src, dst):
        os.kill(os.getpid(), signal.SIGKILL)  # after the temporary is written, before the rename

    files.os.replace = killed
    files.write_atomically(sys.argv[1], b"half a checkpoint")
    """
)


def test_stray_temporary_of_a_killed_write_is_removed(checkpoint: Path,
                                                      steps: dict[str, TrainStep]) -> None:
    before = checkpoint.read_bytes()
    done = subprocess.run([sys.executable, "-c", KILLED_WRITE, str(checkpoint)], cwd=ROOT,
                          timeout=60)
    assert done.returncode == -9
    strays = [p.name for p in checkpoint.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(strays) == 1 and checkpoint.read_bytes() == before
    other = checkpoint.parent / ".other.npz.abcd1234.tmp"  # not this checkpoint's: kept
    other.write_bytes(b"")
    _run(steps["adam"], checkpoint, checkpoint=checkpoint, resume=checkpoint)
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == [other.name, "run.npz"]
    assert load_checkpoint(checkpoint).step == 8


def test_checkpoint_write_is_fsynced(tmp_path: Path, steps: dict[str, TrainStep],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, int]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src: str, dst: str) -> None:
        events.append(("replace", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    ckpt = tmp_path / "run.npz"
    _run(steps["adam"], ckpt, checkpoint=ckpt, epochs=1)
    file_inode, dir_inode = ckpt.stat().st_ino, tmp_path.stat().st_ino
    # the last write: the file's data, then the rename, then the directory entry
    assert events[-3:] == [("fsync", file_inode), ("replace", file_inode), ("fsync", dir_inode)]
