"""Train a 784-256-10 MLP on the MNIST subset shipped with symdl, offline, in seconds.

The demo builds the MLP from symdl expressions, generates one numpy function that does forward,
backward and the Adam update in place, trains it for a few seeded epochs, prints the test
accuracy, and says where the generated module and the loss/accuracy plot were written:

    symdl demo                      # writes ./symdl-demo/mlp_gen.py and ./symdl-demo/curves.png
    symdl demo --data DIR --out run # the full MNIST from DIR, files in ./run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from .train import add_training_arguments, check_paths, count, report, train_model

NAME = "demo"
HELP = "train an MLP on the shipped MNIST subset and show the generated code"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``symdl demo``."""
    add_training_arguments(parser, epochs=5)
    parser.add_argument("--hidden", type=count(1), default=256, help="hidden width (default 256)")
    parser.add_argument("--out", type=Path, default=Path("symdl-demo"),
                        help="directory for mlp_gen.py and curves.png (default ./symdl-demo)")


def model(hidden: int) -> dict:
    """The demo's MLP in the model-file convention of `symdl train`."""
    import symdl as sd

    x = sd.placeholder("x", (None, 784))
    y = sd.placeholder("y", (None,), dtype="int64")
    logits, params = sd.layers.mlp(x, [hidden, 10], activation=sd.relu, name="dense")
    loss = sd.mean(sd.softmax_cross_entropy(logits, y)).named("loss")
    acc = sd.mean(sd.cast(sd.equal(sd.argmax(logits, axis=1), y), "float32")).named("accuracy")
    return {"inputs": [x, y], "loss": loss, "params": params, "metrics": {"accuracy": acc}}


def run(args: argparse.Namespace) -> int:
    """Run ``symdl demo``."""
    from ..datasets import SUBSET_DIR

    check_paths(args)
    start = time.perf_counter()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    data_dir = args.data if args.data is not None else SUBSET_DIR
    plot = out / "curves.png"
    step, history, data = train_model(model(args.hidden), args, name="mlp", data_dir=data_dir,
                                      plot=plot)
    module = out / "mlp_gen.py"
    module.write_text(step.source)
    if not args.quiet:
        print(f"trained on {len(data.y_train)} images ({data.source}), tested on "
              f"{len(data.y_test)}, in {time.perf_counter() - start:.1f} s")
    report(history, module, plot)
    return 0
