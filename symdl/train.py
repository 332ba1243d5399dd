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
curves (drawn by matplotlib when installed, else by symdl.png).

Checkpoints are written atomically and durably (`symdl.files.write_atomically`) and carry the
run's signature (`run_signature`: optimizer, hyperparameters, learning rate, seed, batch size, a
hash of the data, the model's functions and shapes); a resume compares it with its own and refuses
a checkpoint of another run, listing the differences, unless ``force=True``. A damaged checkpoint
is a `CheckpointError` naming the file and the damage.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import CheckpointError, SymdlError
from .files import remove_stale_temporaries, write_atomically
from .ir import Expr
from .optim import TrainStep

# 2: ``meta`` is the run's signature (`run_signature`); 1 recorded sizes and names only.
CHECKPOINT_VERSION = 2
# Streams of a run's seed (``default_rng([seed, stream])``) for what a model draws (dropout):
# independent of the shuffling generator, ``default_rng(seed)``.
TRAINING_STREAM, EVALUATION_STREAM = 1, 2


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

# What a checkpoint's zip archive starts with (a local file header, or an empty archive): anything
# else is refused before numpy sees it, so a text file never meets numpy's pickle fallback.
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
# The fields of the ``position`` entry, and their JSON types.
_POSITION_FIELDS: dict[str, type] = {
    "version": int, "step": int, "epoch": int, "batch": int, "rng_state": dict, "epochs": list,
    "meta": dict,
}


def save_checkpoint(
    path: str | os.PathLike[str], params: Mapping[str, np.ndarray],
    state: Mapping[str, np.ndarray], *, step: int, epoch: int, batch: int,
    rng_state: Mapping, history: History, meta: Mapping[str, object],
    draw_rng_state: Mapping | None = None,
) -> Path:
    """Write a checkpoint ``.npz`` atomically and durably.

    ``epoch`` and ``batch`` are the position to continue from; ``rng_state`` is the shuffling
    generator's state at the start of that epoch (so its permutation can be drawn again);
    ``meta`` is what a resume compares (`run_signature`); ``draw_rng_state`` the state of the
    generator a model that draws (dropout) draws from, so that a resume continues its stream.
    The file is written beside ``path``, fsynced and renamed over it, so a crash leaves the old
    checkpoint or the new one, never half of one; temporaries that an earlier, killed write left
    behind are removed first.
    """
    path = Path(path)
    arrays: dict[str, np.ndarray] = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"state/{k}": v for k, v in state.items()})
    arrays["history/loss"] = np.asarray(history.loss, dtype=np.float64)
    for name, values in history.metrics.items():
        arrays[f"history/metric/{name}"] = np.asarray(values, dtype=np.float64)
    position = {"version": CHECKPOINT_VERSION, "step": step, "epoch": epoch, "batch": batch,
                "rng_state": rng_state, "epochs": history.epochs, "meta": dict(meta)}
    if draw_rng_state is not None:
        position["draw_rng_state"] = draw_rng_state
    arrays["position"] = np.array(json.dumps(position))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    remove_stale_temporaries(path)
    return write_atomically(path, buffer.getvalue())


@dataclass
class Checkpoint:
    """A loaded checkpoint: arrays by name, position, RNG state, history so far, and the
    signature of the run that wrote it (``meta``, see `run_signature`)."""

    params: dict[str, np.ndarray]
    state: dict[str, np.ndarray]
    step: int
    epoch: int
    batch: int
    rng_state: dict
    history: History
    meta: dict
    draw_rng_state: dict | None = None  # the draws' generator (dropout), where the model draws


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by `save_checkpoint` (no pickles are loaded).

    Raises:
        CheckpointError: naming the file and what is wrong with it: missing, not an ``.npz``
            archive (a text file, random bytes), truncated or corrupt, an entry missing or of
            the wrong kind, a position that does not parse or does not add up.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if head not in _ZIP_MAGIC:
            raise _damaged(path, f"it is not an .npz archive (it starts with {head!r})")
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, zlib.error) as exc:
        if isinstance(exc, CheckpointError):
            raise
        if "pickle" in str(exc):  # numpy refusing an object array, and advising pickle
            raise _damaged(path, "an entry holds Python objects, which symdl never loads") \
                from None
        raise _damaged(path, f"it is truncated or corrupt ({_reason(exc)})") from None
    position = _position(path, arrays.pop("position", None))
    loss = _history_array(path, arrays, "history/loss", position["step"])
    metrics = {k.split("/", 2)[2]: _history_array(path, arrays, k, position["step"])
               for k in sorted(arrays) if k.startswith("history/metric/")}
    history = History(loss=loss, metrics=metrics, epochs=position["epochs"])
    params = {k[6:]: v for k, v in arrays.items() if k.startswith("param/")}
    state = {k[6:]: v for k, v in arrays.items() if k.startswith("state/")}
    return Checkpoint(params, state, position["step"], position["epoch"], position["batch"],
                      position["rng_state"], history, position["meta"],
                      position.get("draw_rng_state"))


def _damaged(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} cannot be read: {what}. Resume from another checkpoint, or start "
        "the run again"
    )


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _position(path: Path, entry: np.ndarray | None) -> dict:
    """The ``position`` entry parsed and checked field by field."""
    if entry is None:
        raise CheckpointError(
            f"{path} is not a symdl checkpoint: it has no 'position' entry (it is some other "
            ".npz archive)"
        )
    if entry.shape != () or entry.dtype.kind != "U":
        raise _damaged(path, f"its 'position' entry is a {entry.dtype} array of shape "
                             f"{entry.shape}, not a JSON string")
    try:
        position = json.loads(str(entry))
    except json.JSONDecodeError as exc:
        raise _damaged(path, f"its 'position' entry is not valid JSON ({exc})") from None
    if not isinstance(position, dict):
        raise _damaged(path, "its 'position' entry is not a JSON object")
    for key, kind in _POSITION_FIELDS.items():
        value = position.get(key)
        if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 0)):
            expected = "a count >= 0" if kind is int else f"a JSON {kind.__name__}"
            raise _damaged(path, f"'position' has {key}={value!r}, expected {expected}")
    if not 1 <= position["version"] <= CHECKPOINT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format {position['version']}; this symdl reads formats 1 to "
            f"{CHECKPOINT_VERSION}. Resume it with the symdl version that wrote it"
        )
    if not all(isinstance(row, dict) for row in position["epochs"]):
        raise _damaged(path, "'position' lists epochs that are not JSON objects")
    try:
        np.random.PCG64().state = position["rng_state"]  # what `fit` will restore
    except (TypeError, ValueError, KeyError) as exc:
        raise _damaged(path, f"its shuffling RNG state cannot be restored ({_reason(exc)})") \
            from None
    if position.get("draw_rng_state") is not None:
        try:
            np.random.PCG64().state = position["draw_rng_state"]
        except (TypeError, ValueError, KeyError) as exc:
            raise _damaged(path, f"its draws' RNG state cannot be restored ({_reason(exc)})") \
                from None
    return position


def _history_array(path: Path, arrays: dict[str, np.ndarray], key: str,
                   steps: int) -> list[float]:
    """A per-step history entry: one float per step done."""
    value = arrays.pop(key, None)
    if value is None:
        raise _damaged(path, f"the entry {key!r} is missing")
    if value.ndim != 1 or value.dtype.kind != "f" or len(value) != steps:
        raise _damaged(path, f"the entry {key!r} is a {value.dtype} array of shape "
                             f"{value.shape}; it should hold one float for each of its {steps} "
                             "steps")
    return value.tolist()


def run_signature(
    step: TrainStep, train: Sequence[np.ndarray], *, batch_size: int, seed: int,
    lr: float | Callable[[int], float] | None,
) -> dict[str, object]:
    """What a run must share with the one that wrote a checkpoint to continue it.

    The optimizer and its hyperparameters, the learning rate (a schedule by its qualified
    name), the seed, the batch size, the training data (size and a SHA-256 of its arrays) and
    the model (its generated functions, and the names, dtypes and shapes of its inputs,
    parameters, optimizer state and metrics). Plain JSON, stored in every checkpoint.
    """
    spec = step.spec
    optimizer = {k: v for k, v in vars(step.optimizer).items() if k not in ("lr", "slots")}
    if lr is None:
        rate: object = step.optimizer.lr
    elif callable(lr):
        rate = f"schedule {getattr(lr, '__qualname__', type(lr).__qualname__)}"
    else:
        rate = float(lr)
    signature = {
        "optimizer": {"type": type(step.optimizer).__name__, **optimizer},
        "lr": rate,
        "seed": seed,
        "batch_size": batch_size,
        "data": {"size": len(train[0]) if train else 0, "fingerprint": data_fingerprint(train)},
        "model": {
            # A split step's grads and apply are train_step cut in two: a checkpoint of a
            # data-parallel run resumes in one process, and the other way round.
            "functions": sorted(f for f in spec.functions if f not in ("grads", "apply")),
            "inputs": {x.name: _leaf_text(x) for x in spec.inputs},
            "params": {p.name: _leaf_text(p) for p in spec.params},
            "state": {s.name: _leaf_text(s) for s in spec.state},
            "metrics": list(spec.metric_names),
        },
    }
    if spec.settings:  # only where the model has them: earlier checkpoints still match
        signature["model"]["settings"] = {  # type: ignore[index]
            x.name: [float(v) for v in pair] for x, pair in spec.settings.items()
        }
    # Through JSON and back, as a loaded checkpoint's would be (tuples become lists).
    return json.loads(json.dumps(signature))


def _leaf_text(leaf: Expr) -> str:
    """``"float32 (N, 784)"``: the shape as Python prints a tuple, size names unquoted."""
    dims = ", ".join(str(d) for d in leaf.shape)
    return f"{leaf.dtype} ({dims},)" if len(leaf.shape) == 1 else f"{leaf.dtype} ({dims})"


def data_fingerprint(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 (16 hex digits) of the arrays' dtypes, shapes and bytes, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.data)
    return digest.hexdigest()[:16]


def run_differences(saved: Mapping[str, object], current: Mapping[str, object]) -> list[str]:
    """One line per setting that differs between two `run_signature` results, as
    ``"optimizer.type: Adam in the checkpoint, SGD in this run"``."""
    old, new = _flatten(saved), _flatten(current)
    lines = []
    keys = [*new, *(k for k in old if k not in new)]
    groups = list(dict.fromkeys(k.split(".")[0] for k in keys))
    # In the signature's order, a setting the checkpoint alone has next to its group.
    for key in sorted(keys, key=lambda k: groups.index(k.split(".")[0])):
        if old.get(key, _ABSENT) != new.get(key, _ABSENT):
            was = repr(old[key]) if key in old else "not recorded"
            now = repr(new[key]) if key in new else "none"
            lines.append(f"{key}: {was} in the checkpoint, {now} in this run")
    return lines


_ABSENT = object()


def _flatten(tree: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _restore(path: str | os.PathLike[str], ckpt: Checkpoint, step: TrainStep,
             params: dict[str, np.ndarray], state: dict[str, np.ndarray], force: bool) -> None:
    """Put the checkpoint's arrays in ``params`` and ``state``. Every parameter must be there
    with the model's dtype and shape, even with ``force``; state the checkpoint lacks starts
    fresh only with ``force`` (a resume that switched optimizers)."""
    leaves = [("parameter", p, ckpt.params, params) for p in step.spec.params]
    leaves += [("optimizer state", s, ckpt.state, state) for s in step.spec.state]
    for kind, leaf, saved, target in leaves:
        value = saved.get(leaf.name)
        if value is None:
            if kind == "optimizer state" and force:
                continue
            raise CheckpointError(f"fit: checkpoint {path} has no {kind} {leaf.name!r}; resume "
                                  "with the model that wrote it")
        if value.dtype != np.dtype(leaf.dtype) or value.shape != tuple(leaf.shape):
            raise CheckpointError(
                f"fit: checkpoint {path} holds {kind} {leaf.name!r} as {value.dtype} "
                f"{value.shape}; the model's is {leaf.dtype} {tuple(leaf.shape)}. Resume with "
                "the model that wrote it"
            )
        target[leaf.name] = value


# ------------------------------------------------------------------ the loop


def _evaluate(step: TrainStep, data: Sequence[np.ndarray], params: Mapping[str, np.ndarray],
              batch_size: int, seed: int) -> dict[str, float]:
    """Loss and metrics over ``data`` in chunks, weighted by chunk size (they are batch means).

    A model that draws (dropout) draws from a generator made afresh from ``seed`` for each
    evaluation, so that every epoch's figures are reproducible and comparable.
    """
    rng = np.random.default_rng([seed, EVALUATION_STREAM]) if step.draws else None
    n = len(data[0])
    totals = np.zeros(1 + len(step.metric_names))
    for start in range(0, n, batch_size):
        chunk = [a[start : start + batch_size] for a in data]
        totals += np.array([float(v) for v in step.evaluate(chunk, params, rng)]) * len(chunk[0])
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



def _resume(resume: str | os.PathLike[str], meta: Mapping[str, Any], force: bool, quiet: bool,
            step: TrainStep, params: dict[str, np.ndarray], state: dict[str, np.ndarray],
            history: History) -> Checkpoint:
    """Load the checkpoint ``resume`` into ``params``, ``state`` and ``history``; return it.

    A checkpoint written by a run with other settings (``meta``, `run_signature`) is refused,
    or with ``force`` resumed anyway with the differences printed (unless ``quiet``).
    """
    ckpt = load_checkpoint(resume)
    differences = run_differences(ckpt.meta, meta)
    if differences and not force:
        raise CheckpointError(
            f"fit: checkpoint {resume} was written by a run with other settings, so resuming "
            "would not continue it:\n  " + "\n  ".join(differences) + "\nResume with the "
            "same settings, or pass force=True (symdl train --force) to resume anyway"
        )
    if differences and not quiet:
        print(f"fit: resuming from {resume} although it differs from this run: "
              + "; ".join(differences), file=sys.stderr)
    _restore(resume, ckpt, step, params, state, force)
    history.loss, history.epochs = ckpt.history.loss, ckpt.history.epochs
    for name in step.metric_names:
        # A metric the checkpoint lacks (a forced resume) has no values for earlier steps.
        history.metrics[name] = ckpt.history.metrics.get(name, [math.nan] * ckpt.step)
    return ckpt

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
    force: bool = False,
    max_steps: int | None = None,
    progress: bool | None = None,
    quiet: bool = False,
    plot: str | os.PathLike[str] | None = None,
    eval_batch_size: int = 2000,
    client: object | None = None,
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
            Its optimizer, hyperparameters, learning rate, seed, batch size, data (size and a
            hash) and model (functions, names, dtypes and shapes) must be this run's
            (`run_signature`).
        force: resume even when those differ (the differences are printed unless ``quiet``);
            parameters must still fit the model, and optimizer state the checkpoint lacks
            starts fresh.
        max_steps: stop after this many steps in all (counting those before a resume).
        progress: show a tqdm bar (default: only when stderr is a terminal); quiet: print nothing.
        plot: write a PNG of loss and accuracy curves there (by matplotlib or symdl.png).
        client: a ``dask.distributed.Client``: train data-parallel on its workers, with the
            same results as one process (`symdl.distributed.fit`, which also takes ``workers``
            and ``update``); ``step`` must be compiled with ``split=True``.

    Raises:
        TrainingDivergedError: when a step's loss is NaN or infinite; it names the step and the
            last finite loss.
        CheckpointError: when ``resume`` cannot be read (names the file and the damage), or
            was written by a run with other settings (lists each difference).
    """
    if client is not None:
        from .distributed import fit as fit_distributed

        return fit_distributed(
            step, params, train, client=client, epochs=epochs, batch_size=batch_size, lr=lr,
            seed=seed, validation=validation, state=state, checkpoint=checkpoint,
            checkpoint_every=checkpoint_every, resume=resume, force=force, max_steps=max_steps,
            progress=progress, quiet=quiet, plot=plot, eval_batch_size=eval_batch_size,
        )
    return run_epochs(
        step, params, train, lambda state: LocalSteps(step, train, params, state, seed),
        epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, validation=validation,
        state=state, checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume,
        force=force, max_steps=max_steps, progress=progress, quiet=quiet, plot=plot,
        eval_batch_size=eval_batch_size,
    )


class Steps(Protocol):
    """How `run_epochs` takes its steps: `LocalSteps` in this process, or on Dask workers
    (`symdl.distributed`). `run_epochs` is the one loop (shuffling, checkpoints, validation,
    progress) over either."""

    def greeting(self) -> str | None: ...
    def start(self) -> None: ...
    def run(self, idx: np.ndarray, rate: float, number: int) -> tuple[float, list[float]]: ...
    def draw_state(self) -> Mapping | None: ...
    def restore_draws(self, saved: Mapping | None) -> None: ...
    def sync(self) -> None: ...
    def close(self) -> None: ...


class LocalSteps:
    """The steps of a run in this process: the compiled step on the batch's rows."""

    def __init__(self, step: TrainStep, train: Sequence[np.ndarray],
                 params: dict[str, np.ndarray], state: dict[str, np.ndarray], seed: int) -> None:
        self.step, self.train, self.params, self.state = step, train, params, state
        # A model that draws (dropout) draws from its own generator, made once per run from
        # the seed: the shuffling generator is rewound to each epoch's start, this one never is.
        self.draws = np.random.default_rng([seed, TRAINING_STREAM]) if step.draws else None

    def greeting(self) -> str | None:
        """A line to print when the run starts (none in one process)."""
        return None

    def start(self) -> None:
        """Prepare the run (nothing to do in one process)."""

    def run(self, idx: np.ndarray, rate: float, number: int) -> tuple[float, list[float]]:
        """Step ``number`` (0-based over the run) on rows ``idx``: the loss and the metrics."""
        out = self.step([a[idx] for a in self.train], self.params, self.state, rate, self.draws)
        return float(out[0]), [float(v) for v in out[1:]]

    def draw_state(self) -> Mapping | None:
        """The draw generator's state for a checkpoint (None for a model that draws nothing)."""
        return None if self.draws is None else self.draws.bit_generator.state

    def restore_draws(self, saved: Mapping | None) -> None:
        """Continue the draws where a checkpoint left them."""
        if self.draws is not None and saved is not None:
            self.draws.bit_generator.state = saved

    def sync(self) -> None:
        """Make ``params`` and ``state`` current (they always are in one process)."""

    def close(self) -> None:
        """Release what the run holds (nothing in one process)."""


def run_epochs(
    step: TrainStep,
    params: dict[str, np.ndarray],
    train: Sequence[np.ndarray],
    make_steps: Callable[[dict[str, np.ndarray]], Steps],
    *,
    epochs: int,
    batch_size: int,
    lr: float | Callable[[int], float] | None,
    seed: int,
    validation: Sequence[np.ndarray] | None,
    state: dict[str, np.ndarray] | None,
    checkpoint: str | os.PathLike[str] | None,
    checkpoint_every: int | None,
    resume: str | os.PathLike[str] | None,
    force: bool,
    max_steps: int | None,
    progress: bool | None,
    quiet: bool,
    plot: str | os.PathLike[str] | None,
    eval_batch_size: int,
) -> History:
    """The loop of `fit` (arguments as there) over the steps ``make_steps(state)`` takes: in
    this process (`LocalSteps`) or on Dask workers (`symdl.distributed`)."""
    n = _check_data("train", train, step)
    if validation is not None:
        _check_data("validation", validation, step)
    if batch_size < 1 or epochs < 0:
        raise ValueError(
            f"fit: batch_size must be >= 1 and epochs >= 0, got {batch_size} and {epochs}"
        )
    state = step.init_state() if state is None else state
    steps = make_steps(state)
    history = History(params=params, state=state, module=step.path,
                      metrics={name: [] for name in step.metric_names})
    rng = np.random.default_rng(seed)
    # Hashing the data costs a pass over it: only for runs that write or read checkpoints.
    meta = (run_signature(step, train, batch_size=batch_size, seed=seed, lr=lr)
            if checkpoint is not None or resume is not None else {})
    epoch, first_batch, done = 0, 0, 0
    epoch_rng_state = rng.bit_generator.state
    if resume is not None:
        ckpt = _resume(resume, meta, force, quiet, step, params, state, history)
        epoch, first_batch, done = ckpt.epoch, ckpt.batch, ckpt.step
        epoch_rng_state = ckpt.rng_state
        steps.restore_draws(ckpt.draw_rng_state)
    history.step = done
    default_lr = step.optimizer.lr if lr is None else lr
    steps_per_epoch = math.ceil(n / batch_size)
    total = steps_per_epoch * epochs if max_steps is None else min(steps_per_epoch * epochs,
                                                                   max_steps)
    bar = None
    if _use_bar(progress, quiet):
        from tqdm.auto import tqdm  # lazily: importing symdl must not need tqdm

        bar = tqdm(total=total, initial=done, unit="step", file=sys.stderr, dynamic_ncols=True)
    has_acc = "accuracy" in history.metrics
    started, rows_done = time.perf_counter(), 0

    def save(next_epoch: int, next_batch: int, rng_state: Mapping) -> None:
        if checkpoint is not None:
            steps.sync()
            save_checkpoint(checkpoint, params, state, step=history.step, epoch=next_epoch,
                            batch=next_batch, rng_state=rng_state, history=history, meta=meta,
                            draw_rng_state=steps.draw_state())

    def say(text: str) -> None:
        if bar is not None:
            bar.write(text, file=sys.stderr)
        elif not quiet:
            print(text, file=sys.stderr)

    greeting = steps.greeting()
    if greeting:
        say(greeting)
    try:
        steps.start()
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
                    rate = default_lr(history.step) if callable(default_lr) else default_lr
                    loss, metrics = steps.run(idx, rate, history.step)
                    if not math.isfinite(loss):
                        steps.sync()
                        _diverged(history, loss, epoch, b, rate)
                    history.loss.append(loss)
                    for name, value in zip(step.metric_names, metrics, strict=True):
                        history.metrics[name].append(value)
                    history.step += 1
                    rows_done += len(idx)
                    if bar is not None:
                        bar.update(1)
                        if history.step % 10 == 0 or b == steps_per_epoch - 1 \
                                or history.step == total:
                            post = {"loss": f"{loss:.4f}"}
                            if has_acc:
                                post["acc"] = f"{history.metrics['accuracy'][-1]:.3f}"
                            seconds = max(time.perf_counter() - started, 1e-9)
                            post["samples/s"] = f"{rows_done / seconds:.0f}"
                            bar.set_postfix(post, refresh=False)
                    if checkpoint_every and history.step % checkpoint_every == 0:
                        save(epoch, b + 1, epoch_rng_state)
                row: dict[str, float] = {"epoch": epoch + 1, "step": history.step,
                                         "train_loss": float(np.mean(history.loss[epoch_start:]))}
                for name, values in history.metrics.items():
                    row[f"train_{name}"] = float(np.mean(values[epoch_start:]))
                if validation is not None:
                    steps.sync()
                    row.update(_evaluate(step, validation, params, eval_batch_size, seed))
                history.epochs.append(row)
                say(_epoch_line(row, epochs))
                epoch, first_batch = epoch + 1, 0
                epoch_rng_state = rng.bit_generator.state
                save(epoch, 0, epoch_rng_state)
        steps.sync()
    finally:
        steps.close()
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
    """Write loss and accuracy curves as a PNG; ``(path, "")``, or ``(None, why not)``.

    With matplotlib when it is installed, else with `symdl.png.plot_curves` (no dependency).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed; must precede pyplot's import
        import matplotlib.pyplot as plt
    except ImportError:
        # A fresh install still gets its picture: drawn with numpy and zlib (symdl.png).
        from .png import plot_curves

        return plot_curves(path, history.loss, history.epochs,
                           "accuracy" in history.metrics), ""
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
    "Checkpoint", "CheckpointError", "History", "TrainingDivergedError", "data_fingerprint",
    "fit", "load_checkpoint", "plot_history", "run_differences", "run_signature",
    "save_checkpoint",
]
