"""`symdl train` and `symdl demo` run end to end (small models, few steps, the shipped subset)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from symdl.cli import main
from symdl.datasets import SUBSET_DIR
from symdl.train import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

SMALL_MODEL = '''
import symdl as sd
x = sd.placeholder("x", (None, 784))
y = sd.placeholder("y", (None, 10))           # one-hot labels this time
W = sd.parameter("W", (784, 10))
b = sd.parameter("b", (10,))
logits = (x @ W + b).named("logits")
loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
accuracy = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), sd.argmax(y, axis=1)),
                           "float32"))
inputs = [x, y]
params = {W: sd.init.zeros, b: sd.init.zeros}
metrics = {"accuracy": accuracy}
name = "small_logreg"
'''


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYMDL_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_train_command_checkpoints_and_resumes(isolated, capsys):
    model = isolated / "small.py"
    model.write_text(SMALL_MODEL)
    common = [str(model), "--data", str(SUBSET_DIR), "--epochs", "1", "--batch-size", "500",
              "--optimizer", "sgd", "--lr", "0.5", "--seed", "3", "--quiet"]
    assert main(["train", *common, "--checkpoint", "a.npz", "--max-steps", "4",
                 "-o", "gen/small.py"]) == 0
    out = capsys.readouterr().out
    assert "stopped after 4 steps" in out and "generated module: gen/small.py" in out
    assert "def train_step(x, y, W, b, lr):" in (isolated / "gen" / "small.py").read_text()
    assert load_checkpoint(isolated / "a.npz").step == 4

    assert main(["train", *common, "--resume", "a.npz", "--checkpoint", "b.npz"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert main(["train", *common, "--checkpoint", "c.npz"]) == 0
    resumed, straight = load_checkpoint("b.npz"), load_checkpoint("c.npz")
    assert resumed.step == straight.step == 10
    for name in ("W", "b"):
        assert np.array_equal(resumed.params[name], straight.params[name])
    assert resumed.history.epochs == straight.history.epochs
    assert straight.history.epochs[0]["val_accuracy"] > 0.6


def test_train_command_on_the_example_model_file(isolated, capsys):
    model = ROOT / "examples" / "models" / "mlp.py"
    assert main(["train", str(model), "--data", str(SUBSET_DIR), "--max-steps", "3",
                 "--optimizer", "adamw", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "stopped after 3 steps" in out and "mlp_" in out


def test_train_command_refuses_an_incomplete_model_file(isolated, capsys):
    from symdl.commands.modelfile import ModelFileError
    from symdl.commands.train import train_model

    bad = isolated / "bad.py"
    bad.write_text("import symdl as sd\nloss = None\n")
    assert main(["train", str(bad), "--data", str(SUBSET_DIR), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "must define `inputs`" in err and str(bad) in err
    with pytest.raises(ModelFileError, match="inputs"):
        train_model({"loss": None}, None, name="bad", data_dir=SUBSET_DIR, plot=None)


def test_demo_writes_module_and_reports(isolated, capsys):
    assert main(["demo", "--epochs", "1", "--hidden", "32", "--out", "demo"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out
    assert "generated module: demo/mlp_gen.py" in out
    source = (isolated / "demo" / "mlp_gen.py").read_text()
    assert "def train_step(" in source and "def evaluate(" in source
    acc = float(out.split("test accuracy ")[1].split(",")[0])
    assert acc > 0.7
    # The curves are drawn with or without matplotlib (symdl.png), and the report says where.
    assert "plot: demo/curves.png" in out
    assert (isolated / "demo" / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_generate_accepts_the_training_model_file(isolated, capsys):
    assert main(["generate", str(ROOT / "examples" / "models" / "mlp.py"), "-o", "mlp_gen.py"]) == 0
    source = (isolated / "mlp_gen.py").read_text()
    assert "def train_step(" in source and "dense0_W_m" in source
