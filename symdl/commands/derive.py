"""Write the step-by-step derivation of a model's gradient.

The model file is the one `symdl generate` takes; it must also define the scalar to
differentiate, as `loss` (or name another variable with --target). --wrt names the leaves
(placeholders or parameters) by their names. The format follows the output's suffix:

    symdl derive examples/classroom/softmax_regression.py --wrt W b -o derivation.html
    symdl derive MODEL.py --wrt w -o derivation.md      # also .tex and .txt; no -o: text
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "derive"
HELP = "write the step-by-step derivation of a gradient (html, md, tex, txt)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``symdl derive``."""
    parser.add_argument("model", type=Path, help="model file (as for `symdl generate`)")
    parser.add_argument("--wrt", nargs="+", required=True, metavar="NAME",
                        help="names of the leaves to differentiate with respect to")
    parser.add_argument("--target", default="loss",
                        help="variable in the model file holding the scalar (default: loss)")
    parser.add_argument("-o", "--output", type=Path,
                        help="output file: .html, .md, .tex or .txt (default: text on stdout)")


def run(args: argparse.Namespace) -> int:
    """Run ``symdl derive``."""
    from ..derive import derive
    from ..ir import Expr, leaves
    from .modelfile import ModelFileError, load_model_file

    model = load_model_file(args.model)
    y = model.get(args.target)
    if not isinstance(y, Expr):
        raise ModelFileError(
            f"model file {args.model} defines no expression {args.target!r}; define it or "
            "pass --target NAME"
        )
    by_name = {leaf.name: leaf for leaf in leaves([y])}
    unknown = [w for w in args.wrt if w not in by_name]
    if unknown:
        raise ModelFileError(
            f"--wrt {', '.join(unknown)}: {args.target} does not depend on a leaf of that name; "
            f"its leaves are {', '.join(sorted(by_name))}"
        )
    derivation = derive(y, [by_name[w] for w in args.wrt])
    if args.output is None:
        sys.stdout.write(derivation.to_text())
    else:
        derivation.save(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0
