"""The training loop: `fit` runs a compiled `TrainStep` over a dataset for some epochs.

    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(1e-3), [x, y],
                                       metrics={"accuracy": acc})
    values = sd.init.initialize(params, seed=0)
    history = sd.fit(step, values, (x_train, y_train), epochs=5, batch_size=128,
                     validation=(x_test, y_test), checkpoint="run.npz", plot="curves.png")

What it does: seeded shuffling (one `numpy.random.Generator`), mini-batches (the last one may be
smaller), a per-epoch validation pass, a history of per-step and per-epoch numbers, a tqdm bar with
loss and accuracy (only on a terminal unless ``progress=True``), a clear error when the loss stops
being finite, ``.npz`` checkpoints with parameters, optimizer state, step, position in the epoch and
the shuffling RNG's state, so that ``resume=`` continues a run bitwise identically, and a PNG of the
curves when matplotlib is installed.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import CheckpointError, SymdlError
from .files import write_atomically
from .optim import TrainStep

CHECKPOINT_VERSION = 1


class TrainingDivergedError(SymdlError, FloatingPointError):
    """The loss became NaN or infinite during training."""


@dataclass
class History:
    """What `fit` recorded.

    Attributes:
        loss: the training loss of every step, in order.
        metrics: every step's training metrics by name (``{"accuracy": [...]}``).
        epochs: one dict per finished epoch: ``epoch``, ``step``, ``train_loss``, ``train_<metric>``
            (means over the epoch's steps) and ``val_loss``, ``val_<metric>`` with validation data.
        params, state: the trained arrays by name (the same objects `fit` updated).
        step: the number of steps done; stopped: True when ``max_steps`` ended the run early.
        plot: the PNG written, or None; plot_note says why there is none.
        module: the generated module's file (the code that ran).
    """

    loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[dict[str, float]] = field(default_factory=list)
    params: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)
    step: int = 0
    stopped: bool = False
    plot: str | None = None
    plot_note: str = ""
    module: str = ""

    def last(self, key: str) -> float:
        """The latest per-epoch value of ``key`` (``"val_accuracy"``), or NaN if none."""
        for row in reversed(self.epochs):
            if key in row:
                return row[key]
        return math.nan


# ------------------------------------------------------------------ checkpoints


def save_checkpoint(
    path: str | os.PathLike[str], params: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray], *, step: int, epoch: int, batch: int,
    rng_state: Mapping, history: History, meta: Mapping[str, object],
) -> Path:
    """Write a checkpoint ``.npz`` atomically (a crash never leaves half a file).

    ``epoch`` and ``batch`` are the position to continue from; ``rng_state`` is the shuffling
    generator's state at the start of that epoch (so its permutation can be drawn again).
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"state/{k}": v for k, v in state.items()})
    arrays["history/loss"] = np.asarray(history.loss, dtype=np.float64)
    for name, values in history.metrics.items():
        arrays[f"history/metric/{name}"] = np.asarray(values, dtype=np.float64)
    position = {"version": CHECKPOINT_VERSION, "step": step, "epoch": epoch, "batch": batch,
                "rng_state": rng_state, "epochs": history.epochs, "meta": dict(meta)}
    arrays["position"] = np.array(json.dumps(position))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return write_atomically(path, buffer.getvalue())


@dataclass
class Checkpoint:
    """A loaded checkpoint: arrays by name, position, RNG state, history so far."""

    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    step: int
    epoch: int
    batch: int
    rng_state: dict
    history: History
    meta: dict


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (no pickles are loaded)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if "position" not in arrays:
        raise CheckpointError(f"{path} is not a symdl checkpoint (no 'position' entry)")
    position = json.loads(str(arrays.pop("position")))
    history = History(
        loss=arrays.pop("history/loss").tolist(),
        metrics={k.split("/", 2)[2]: arrays.pop(k).tolist()
                 for k in list(arrays) if k.startswith("history/metric/")},
        epochs=position["epochs"],
    )
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    state = {k[6:]: v for k, v in arrays.items() if k.startswith("state/")}
    return Checkpoint(params, state, position["step"], position["epoch"], position["batch"],
                      position["rng_state"], history, position["meta"])


# ------------------------------------------------------------------ the loop


def _evaluate(step: TrainStep, data: Sequence[np.ndarray], params: Mapping[str, np.ndarray],
              batch_size: int) -> dict[str, float]:
    """Loss and metrics over ``data`` in chunks, weighted by chunk size (they are batch means)."""
    n = len(data[0])
    totals = np.zeros(1 + len(step.metric_names))
    for start in range(0, n, batch_size):
        chunk = [a[start : start + batch_size] for a in data]
        totals += np.array([float(v) for v in step.evaluate(chunk, params)]) * len(chunk[0])
    names = ["loss", *step.metric_names]
    return {f"val_{k}": float(v / n) for k, v in zip(names, totals, strict=True)}


def _check_data(name: str, arrays: Sequence[np.ndarray], step: TrainStep) -> int:
    if len(arrays) != len(step.input_names):
        raise ValueError(
            f"fit: {name} has {len(arrays)} arrays but the step takes {len(step.input_names)} "
            f"inputs ({', '.join(step.input_names)})"
        )
    sizes = {len(a) for a in arrays}
    if len(sizes) != 1:
        raise ValueError(f"fit: the arrays of {name} have different lengths {sorted(sizes)}")
    return sizes.pop()


def _use_bar(progress: bool | None, quiet: bool) -> bool:
    if quiet:
        return False
    if progress is not None:
        return progress
    return sys.stderr.isatty()


def fit(
    step: TrainStep,
    params: dict[str, np.ndarray],
    train: Sequence[np.ndarray],
    *,
    epochs: int = 1,
    batch_size: int = 128,
    lr: float | Callable[[int], float] | None = None,
    seed: int = 0,
    validation: Sequence[np.ndarray] | None = None,
    state: dict[str, np.ndarray] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    max_steps: int | None = None,
    progress: bool | None = None,
    quiet: bool = False,
    plot: str | os.PathLike[str] | None = None,
    eval_batch_size: int = 2000,
) -> History:
    """Train ``params`` (arrays by name, updated in place) with ``step`` on ``train``.

    Args:
        step: a compiled step (`symdl.optim.compile_train_step`).
        params: initial parameter arrays by name (see `symdl.init.initialize`).
        train: the arrays a batch is cut from, in the step's input order (``(x, y)``).
        epochs, batch_size: passes over the data and the batch size (last batch may be smaller).
        lr: the learning rate, or a schedule ``lr(step) -> float`` (step counts from 0); default
            the optimizer's.
        seed: seeds the shuffling generator (`numpy.random.default_rng`).
        validation: arrays evaluated after every epoch (``val_loss``, ``val_accuracy``...).
        state: optimizer state to continue from (default: fresh zeros).
        checkpoint: ``.npz`` written at the end of every epoch, every ``checkpoint_every``
            steps if given, and when ``max_steps`` stops the run.
        resume: a checkpoint to continue from; the run then equals an uninterrupted one bitwise.
        max_steps: stop after this many steps in all (counting those before a resume).
        progress: show a tqdm bar (default: only when stderr is a terminal); quiet: print nothing.
        plot: write a PNG of loss and accuracy curves there (needs matplotlib).

    Raises:
        TrainingDivergedError: when a step's loss is NaN or infinite; it names the step and the
            last finite loss.
        CheckpointError: when ``resume`` does not fit this model or data.
    """
    n = _check_data("train", train, step)
    if validation is not None:
        _check_data("validation", validation, step)
    if batch_size < 1 or epochs < 0:
        raise ValueError(
            f"fit: batch_size must be >= 1 and epochs >= 0, got {batch_size} and {epochs}"
        )
    state = step.init_state() if state is None else state
    history = History(params=params, state=state, module=step.path,
                      metrics={name: [] for name in step.metric_names})
    rng = np.random.default_rng(seed)
    meta = {"n_train": n, "batch_size": batch_size, "seed": seed,
            "params": step.param_names, "state": step.state_names}
    epoch, first_batch, done = 0, 0, 0
    epoch_rng_state = rng.bit_generator.state
    if resume is not None:
        ckpt = load_checkpoint(resume)
        for key in ("n_train", "batch_size", "params", "state"):
            if ckpt.meta.get(key) != meta[key]:
                raise CheckpointError(
                    f"fit: checkpoint {resume} was written with {key}={ckpt.meta.get(key)!r}, "
                    f"this run has {meta[key]!r}; resume with the same model, data and batch size"
                )
        for name in step.param_names:
            params[name] = ckpt.params[name]
        for name in step.state_names:
            state[name] = ckpt.state[name]
        epoch, first_batch, done = ckpt.epoch, ckpt.batch, ckpt.step
        epoch_rng_state = ckpt.rng_state
        history.loss, history.epochs = ckpt.history.loss, ckpt.history.epochs
        history.metrics.update(ckpt.history.metrics)
    history.step = done
    default_lr = step.optimizer.lr if lr is None else lr
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs if max_steps is None else min(steps_per_epoch * epochs,
                                                                   max_steps)
    show_bar = _use_bar(progress, quiet)
    bar = None
    if show_bar:
        from tqdm.auto import tqdm  # lazily: importing symdl must not need tqdm

        bar = tqdm(total=total, initial=done, unit="step", file=sys.stderr, dynamic_ncols=True)
    has_acc = "accuracy" in history.metrics

    def save(next_epoch: int, next_batch: int, rng_state: Mapping) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, params, state, step=history.step, epoch=next_epoch,
                            batch=next_batch, rng_state=rng_state, history=history, meta=meta)

    def say(text: str) -> None:
        if bar is not None:
            bar.write(text, file=sys.stderr)
        elif not quiet:
            print(text, file=sys.stderr)

    try:
        # The loss is checked after every step; numpy's overflow warnings would only repeat it.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
            while epoch < epochs:
                rng.bit_generator.state = epoch_rng_state
                order = rng.permutation(n)
                epoch_start = history.step - first_batch
                for b in range(first_batch, steps_per_epoch):
                    if max_steps is not None and history.step >= max_steps:
                        history.stopped = True
                        save(epoch, b, epoch_rng_state)
                        return history
                    idx = order[b * batch_size : (b + 1) * batch_size]
                    batch = [a[idx] for a in train]
                    rate = default_lr(history.step) if callable(default_lr) else default_lr
                    out = step(batch, params, state, rate)
                    loss = float(out[0])
                    if not math.isfinite(loss):
                        _diverged(history, loss, epoch, b, rate)
                    history.loss.append(loss)
                    for name, value in zip(step.metric_names, out[1:], strict=True):
                        history.metrics[name].append(float(value))
                    history.step += 1
                    if bar is not None:
                        bar.update(1)
                        if history.step % 10 == 0 or b == steps_per_epoch - 1:
                            post = {"loss": f"{loss:.4f}"}
                            if has_acc:
                                post["acc"] = f"{history.metrics['accuracy'][-1]:.3f}"
                            bar.set_postfix(post, refresh=False)
                    if checkpoint_every and history.step % checkpoint_every == 0:
                        save(epoch, b + 1, epoch_rng_state)
                row: dict[str, float] = {"epoch": epoch + 1, "step": history.step,
                                         "train_loss": float(np.mean(history.loss[epoch_start:]))}
                for name, values in history.metrics.items():
                    row[f"train_{name}"] = float(np.mean(values[epoch_start:]))
                if validation is not None:
                    row.update(_evaluate(step, validation, params, eval_batch_size))
                history.epochs.append(row)
                say(_epoch_line(row, epochs))
                epoch, first_batch = epoch + 1, 0
                epoch_rng_state = rng.bit_generator.state
                save(epoch, 0, epoch_rng_state)
    finally:
        if bar is not None:
            bar.close()
        if plot is not None and history.loss:
            history.plot, history.plot_note = plot_history(history, plot)
    return history


def _diverged(history: History, loss: float, epoch: int, batch: int, lr: float) -> None:
    number = history.step + 1
    finite = [(i + 1, v) for i, v in enumerate(history.loss) if math.isfinite(v)]
    if finite:
        last_step, last = finite[-1]
        before = f"the last finite loss was {last:.6g} at step {last_step}"
    else:
        before = "no earlier step had a finite loss"
    raise TrainingDivergedError(
        f"fit: the loss is {loss} at step {number} (epoch {epoch + 1}, batch {batch + 1}); "
        f"{before}. The parameters now hold non-finite values. Lower the learning rate (it was "
        f"{lr:g}), check the data for NaN or inf, or resume from an earlier checkpoint."
    )


def _epoch_line(row: Mapping[str, float], epochs: int) -> str:
    parts = [f"epoch {int(row['epoch'])}/{epochs}"]
    parts += [f"{k} {v:.4f}" for k, v in row.items() if k not in ("epoch", "step")]
    return "  ".join(parts)


def plot_history(history: History, path: str | os.PathLike[str]) -> tuple[str | None, str]:
    """Write loss and accuracy curves as a PNG; ``(path, "")``, or ``(None, why not)``."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; must precede pyplot's import
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "matplotlib is not installed (pip install 'symdl[plot]')"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    steps = np.arange(1, len(history.loss) + 1)
    ax_loss.plot(steps, history.loss, lw=0.8, alpha=0.6, label="train (per step)")
    ends = [row["step"] for row in history.epochs]
    if any("val_loss" in row for row in history.epochs):
        ax_loss.plot(ends, [row.get("val_loss", np.nan) for row in history.epochs], "o-",
                     label="validation")
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    ax_loss.legend()
    if "accuracy" in history.metrics:
        ax_acc.plot(ends, [row["train_accuracy"] for row in history.epochs], "o-", label="train")
        if any("val_accuracy" in row for row in history.epochs):
            ax_acc.plot(ends, [row.get("val_accuracy", np.nan) for row in history.epochs], "o-",
                        label="validation")
        ax_acc.legend()
    ax_acc.set(xlabel="step", ylabel="accuracy", title="accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path), ""


__all__ = [
    "Checkpoint", "CheckpointError", "History", "TrainingDivergedError", "fit",
    "load_checkpoint", "plot_history", "save_checkpoint",
]
