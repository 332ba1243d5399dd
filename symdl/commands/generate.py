"""Generate a numpy module from a model file.

The model file is a Python file that builds symdl expressions and defines

    functions = {"loss_and_grads": ([x, y, W, b], [loss, W_grad, b_grad])}

(the dict `symdl.compile` takes; an entry may be (inputs, outputs, updates)) and optionally
`name = "logreg"` (the module's name; default: the file's stem). Example:

    symdl generate examples/models/logreg.py -o logreg_gen.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "generate"
HELP = "generate a numpy module from a model file"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``symdl generate``."""
    parser.add_argument("model", type=Path, help="model file defining `functions`")
    parser.add_argument("-o", "--output", type=Path, help="output .py file (default: stdout)")
    parser.add_argument("--no-simplify", action="store_true", help="print the raw derivative")
    parser.add_argument(
        "--fast-math", action="store_true",
        help="fold x*0, x-x, x+0 in what you wrote as if values were finite (not IEEE-exact)",
    )
    parser.add_argument(
        "--backend", choices=("numpy", "numba"), default="numpy",
        help="numba: print fused elementwise statements as numba kernels (the module then "
        "needs numba; default: numpy only)",
    )
    parser.add_argument(
        "--report", action="store_true",
        help="print, per function, operations and lines after each stage and the rewrites fired",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``symdl generate``."""
    from codegen import generate

    from .modelfile import load_model_file

    model = load_model_file(args.model)
    if args.report:
        from codegen.report import report

        made = report(model["functions"], model["name"], fast_math=args.fast_math)
        print(made.format(), file=sys.stderr)
    source = generate(model["functions"], model["name"], simplify=not args.no_simplify,
                      fast_math=args.fast_math, backend=args.backend)
    if args.output is None:
        sys.stdout.write(source)
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(source)
        print(f"wrote {args.output} ({source.count(chr(10))} lines)", file=sys.stderr)
    return 0
