"""Train a model file on MNIST with a generated training step.

The model file builds expressions and defines

    inputs = [x, y]                 # placeholders a batch fills: images (N, 784), labels
    loss = ...                      # a scalar
    params = {W: sd.init.he_normal, b: sd.init.zeros, ...}   # or sd.layers.mlp(...)'s dict,
                                    # or [W, b] (Glorot uniform weights, zero biases)
    metrics = {"accuracy": acc}     # optional scalar means over the batch
    settings = {rate: (0.5, 0.0)}   # optional: scalar placeholders' (training, test) values

Labels are int ids when ``y`` is 1-D, one-hot rows when it is (N, 10). Example:

    symdl train examples/models/mlp.py --epochs 5 --optimizer adam --lr 1e-3 \\
        --checkpoint run.npz --plot curves.png

``--resume run.npz`` continues an interrupted run; the result equals an uninterrupted one bitwise.
A checkpoint written with other settings (optimizer, learning rate, seed, batch size, data, model)
is refused with the list of differences; ``--force`` resumes anyway.

``--workers N`` trains data-parallel on a Dask ``LocalCluster`` of N worker processes with one
thread each, ``--scheduler ADDRESS`` on an existing Dask cluster (`symdl.distributed`; needs
``pip install 'symdl[distributed]'``). The results equal a one-process run's to rounding, and
checkpoints move between the two.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

NAME = "train"
HELP = "train a model file on MNIST with a generated train_step"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``symdl train``."""
    parser.add_argument("model", type=Path, help="model file defining inputs, loss, params")
    add_training_arguments(parser, epochs=5)
    parser.add_argument("--checkpoint", type=Path, help="write a .npz checkpoint every epoch")
    parser.add_argument("--resume", type=Path, help="continue from a checkpoint .npz")
    parser.add_argument("--force", action="store_true",
                        help="with --resume: resume even if the checkpoint's settings differ")
    parser.add_argument("--max-steps", type=count(1), help="stop after this many steps")
    parser.add_argument("--plot", type=Path, help="write loss/accuracy curves to this PNG")
    parser.add_argument("-o", "--output", type=Path, help="also copy the generated module here")
    cluster = parser.add_mutually_exclusive_group()
    cluster.add_argument("--workers", type=count(1),
                         help="train data-parallel on a local Dask cluster of this many worker "
                              "processes (one thread each)")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="train data-parallel on the Dask cluster at this scheduler address")


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type: an int of at least ``minimum`` (a bad one is a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    parse.__name__ = "count"  # argparse names the type in its messages
    return parse


def positive_float(text: str) -> float:
    """An argparse type: a finite float above 0 (a learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, got {text}")
    return value


def optimizer_name(text: str) -> str:
    """An argparse type: an optimizer `symdl.optim.make_optimizer` knows."""
    from ..optim import OPTIMIZERS

    if text.lower() not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(
            f"unknown optimizer {text!r}; choose one of {', '.join(OPTIMIZERS)}"
        )
    return text


def add_training_arguments(parser: argparse.ArgumentParser, *, epochs: int) -> None:
    """The options `symdl train` and `symdl demo` share."""
    parser.add_argument("--epochs", type=count(0), default=epochs)
    parser.add_argument("--batch-size", type=count(1), default=128)
    parser.add_argument("--lr", type=positive_float,
                        help="learning rate (default: the optimizer's)")
    parser.add_argument("--optimizer", default="adam", type=optimizer_name,
                        help="sgd, momentum, nesterov, adam or adamw (default: adam)")
    parser.add_argument("--seed", type=int, default=0, help="seeds initialization and shuffling")
    parser.add_argument("--data", type=Path, help="directory with the four MNIST files")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no log")
    parser.add_argument("--progress", action="store_true",
                        help="show the progress bar even when stderr is not a terminal")
    parser.add_argument("--backend", choices=("numpy", "numba"), default="numpy",
                        help="numba: compile the fused elementwise statements with numba "
                        "(needs pip install 'symdl[numba]'; default: numpy)")


def check_paths(args: argparse.Namespace) -> None:
    """Refuse a --data directory or --resume file that does not exist (`UsageError`, exit 2),
    before the model runs and compiles."""
    from ..errors import UsageError

    if args.data is not None and not args.data.is_dir():
        raise UsageError(f"--data {args.data}: no such directory; point it at a directory "
                         "holding the four MNIST files (gzipped or not)")
    resume = getattr(args, "resume", None)
    if resume is not None and not resume.is_file():
        raise UsageError(f"--resume {resume}: no such checkpoint file; pass a .npz written by "
                         "--checkpoint")


def labels_for(y: Any, labels: np.ndarray) -> np.ndarray:
    """MNIST labels in the form the model's label placeholder takes (ids or one-hot rows)."""
    if y.ndim == 1:
        return labels.astype(y.dtype)
    from ..datasets import one_hot

    return one_hot(labels, y.shape[-1]).astype(y.dtype)


def train_model(model: Mapping[str, Any], args: argparse.Namespace, *, name: str,
                data_dir: Path | None, plot: Path | None, checkpoint: Path | None = None,
                resume: Path | None = None, max_steps: int | None = None,
                force: bool = False, client: Any = None) -> tuple:
    """Compile the model's train step with the chosen optimizer and run `symdl.fit` on MNIST
    (on the workers of a Dask ``client`` if one is given)."""
    import symdl as sd
    from symdl.datasets import load_mnist

    from .modelfile import ModelFileError

    for key in ("inputs", "loss", "params"):
        if key not in model:
            raise ModelFileError(
                f"the model file must define `{key}` for `symdl train`; see `symdl train --help`"
            )
    inputs = list(model["inputs"])
    if len(inputs) != 2:
        raise ModelFileError(
            f"symdl train feeds MNIST as (images, labels), so `inputs` must be two "
            f"placeholders [x, y]; the model file lists {len(inputs)}"
        )
    optimizer = sd.optim.make_optimizer(args.optimizer, args.lr)
    step = sd.optim.compile_train_step(model["loss"], model["params"], optimizer, inputs,
                                       model.get("metrics"), name=name,
                                       settings=model.get("settings"),
                                       split=client is not None,
                                       backend=getattr(args, "backend", "numpy"))
    data = load_mnist(data_dir, quiet=args.quiet)
    x, y = inputs
    train = (data.x_train.astype(x.dtype), labels_for(y, data.y_train))
    test = (data.x_test.astype(x.dtype), labels_for(y, data.y_test))
    # A {parameter: initializer} dict, or a list initialized by sd.init.default_initializer.
    values = sd.init.initialize(model["params"], seed=args.seed)
    history = sd.fit(
        step, values, train, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
        validation=test, checkpoint=checkpoint, resume=resume, force=force, max_steps=max_steps,
        progress=True if args.progress else None, quiet=args.quiet, plot=plot, client=client,
    )
    return step, history, data


def report(history: Any, module: Path | str, plot: Path | None) -> None:
    """The closing lines: accuracy, where the generated module and the plot are."""
    if history.epochs:
        row = history.epochs[-1]
        acc = row.get("val_accuracy")
        acc_text = f"test accuracy {acc:.4f}, " if acc is not None else ""
        print(f"{acc_text}test loss {row['val_loss']:.4f} after {history.step} steps")
    else:
        print(f"stopped after {history.step} steps")
    print(f"generated module: {module}")
    if plot is not None:
        print(f"plot: {history.plot}" if history.plot else f"plot: none ({history.plot_note})")


@contextlib.contextmanager
def dask_client(args: argparse.Namespace) -> Iterator[Any]:
    """The Dask client ``--workers`` or ``--scheduler`` asks for (None for neither), closed
    afterwards with the local cluster it started."""
    workers, address = getattr(args, "workers", None), getattr(args, "scheduler", None)
    if workers is None and address is None:
        yield None
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        from ..errors import UsageError

        raise UsageError("--workers and --scheduler need Dask distributed: pip install "
                         "'symdl[distributed]'") from None
    if address is not None:
        with Client(address) as client:
            yield client
        return
    # One BLAS thread per worker process: the workers share the machine's cores.
    with LocalCluster(n_workers=workers, processes=True, threads_per_worker=1) as cluster, \
            Client(cluster) as client:
        yield client


def run(args: argparse.Namespace) -> int:
    """Run ``symdl train``."""
    from .modelfile import run_model_file

    check_paths(args)
    model = run_model_file(args.model)
    name = model.get("name", args.model.stem)
    with dask_client(args) as client:
        step, history, _ = train_model(model, args, name=name, data_dir=args.data,
                                       plot=args.plot, checkpoint=args.checkpoint,
                                       resume=args.resume, max_steps=args.max_steps,
                                       force=args.force, client=client)
    module: Path | str = step.path
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(step.source)
        module = args.output
    if args.checkpoint is not None:
        print(f"checkpoint: {args.checkpoint}")
    report(history, module, args.plot)
    return 0


__all__ = ["NAME", "HELP", "add_arguments", "check_paths", "run", "train_model"]
