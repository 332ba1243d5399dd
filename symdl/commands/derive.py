"""Write the step-by-step derivation of a model's gradient.

The model file is the one `symdl generate` takes; it must also define the scalar to
differentiate, as `loss` (or name another variable with --target). --wrt names the leaves
(placeholders or parameters) or named values (`--wrt logits`: d loss / d logits) by name.
The format follows the output's suffix:

    symdl derive examples/classroom/softmax_regression.py --wrt W b -o derivation.html
    symdl derive MODEL.py --wrt w -o derivation.md      # also .tex and .txt; no -o: text

--at x1=2 x2=5 adds the evaluation traces at that point (forward primal, forward-mode tangent
seeded on the first --wrt or on --tangent NAME, reverse adjoint); --check adds a float64
central-difference check per parameter (at --at, else on seeded random inputs, --seed);
--exercise hides every step's contributions and the results behind reveal toggles (HTML) or
blanks with an answer sheet after a page break (TeX); --hide 3,5 hides only those steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ir import Expr

NAME = "derive"
HELP = "write the step-by-step derivation of a gradient (html, md, tex, txt)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``symdl derive``."""
    parser.add_argument("model", type=Path, help="model file (as for `symdl generate`)")
    parser.add_argument("--wrt", nargs="+", required=True, metavar="NAME",
                        help="names of the leaves or named values (logits) to differentiate "
                             "with respect to")
    parser.add_argument("--target",
                        help="variable in the model file holding the scalar (default: loss)")
    parser.add_argument("--expand", nargs="+", default=[], metavar="OP",
                        help="fused ops to differentiate through their definitions "
                             "(softmax_cross_entropy: through log p and the softmax Jacobian)")
    parser.add_argument("-o", "--output", type=Path,
                        help="output file: .html, .md, .tex or .txt (default: text on stdout)")
    parser.add_argument("--at", nargs="+", metavar="NAME=VALUE", default=None,
                        help="a point (x1=2 x2=5): add the primal, tangent and adjoint traces")
    parser.add_argument("--tangent", metavar="NAME",
                        help="the input whose dot is 1 in the tangent trace (default: first --wrt)")
    parser.add_argument("--check", action="store_true",
                        help="add a float64 central-difference check per parameter")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of --check's random inputs and directions (default 0)")
    parser.add_argument("--exercise", action="store_true",
                        help="hide every step's contributions and the results (an exercise sheet)")
    parser.add_argument("--hide", metavar="STEPS",
                        help="an exercise hiding only these steps' contributions: --hide 3,5")


FORMATS = (".html", ".md", ".tex", ".txt")


def run(args: argparse.Namespace) -> int:
    """Run ``symdl derive``."""
    from ..derive import derive
    from ..errors import UsageError
    from ..ir import Expr, leaves
    from .modelfile import ModelFileError, load_model_file

    if args.output is not None and args.output.suffix.lower() not in FORMATS:
        # Checked before the model runs: a wrong name should not cost a derivation.
        raise UsageError(
            f"-o {args.output}: unknown format {args.output.suffix or '(no suffix)'!r}; name "
            f"a {', '.join(FORMATS)} file"
        )
    model = load_model_file(args.model)
    target = args.target or "loss"
    y = model.get(target)
    if not isinstance(y, Expr):
        # A --target the user gave is a usage error; the default name missing is the model's.
        error = UsageError if args.target else ModelFileError
        scalars = _scalars(model)
        known = f" (its scalar expressions: {', '.join(scalars)})" if scalars else ""
        raise error(
            f"model file {args.model} defines no expression {target!r}; define it or "
            f"pass --target NAME{known}"
        )
    by_name = {leaf.name: leaf for leaf in leaves([y])}
    named = _named_values(y)  # --wrt logits: the derivative with respect to a named value
    unknown = [w for w in args.wrt if w not in by_name and w not in named]
    if unknown:
        values = f"; its named values are {', '.join(sorted(named))}" if named else ""
        raise UsageError(
            f"--wrt {', '.join(unknown)}: {target} in model file {args.model} does not depend "
            f"on a leaf of that name; its leaves are {', '.join(sorted(by_name))}{values}"
        )
    by_name = {**named, **by_name}
    derivation = derive(y, [by_name[w] for w in args.wrt], expand=args.expand)
    _add_sections(args, derivation, y, [by_name[w] for w in args.wrt], by_name)
    if args.output is None:
        sys.stdout.write(derivation.to_text())
    else:
        derivation.save(args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _named_values(y: Expr) -> dict[str, Expr]:
    """The values ``y`` depends on that carry a name (``.named("logits")``), by name."""
    from ..ir import toposort
    from ..ops.base import Label

    return {n.attr("name"): n for n in toposort([y])
            if n.op is Label and n.attr("of") is None and n is not y}


def _scalars(model: dict[str, object]) -> list[str]:
    """The names of the scalar expressions a model file defines (candidates for --target)."""
    from ..ir import Expr

    return sorted(k for k, v in model.items()
                  if isinstance(v, Expr) and v.shape == () and not k.startswith("_"))


def _point(at: list[str], by_name: dict[str, Expr]) -> dict[Expr, object]:
    """``["x1=2", "x2=5"]`` -> {leaf: value}; a scalar fills a leaf of a fixed shape."""
    import numpy as np

    from ..errors import UsageError

    out: dict[Expr, object] = {}
    for item in at:
        name, sep, text = item.partition("=")
        if not sep or name not in by_name:
            raise UsageError(f"--at {item}: write NAME=VALUE with NAME one of "
                             f"{', '.join(sorted(by_name))}")
        leaf = by_name[name]
        if not all(isinstance(n, int) for n in leaf.shape):
            raise UsageError(f"--at {item}: {name} has the symbolic shape {leaf.shape}; --at "
                             "gives numbers to leaves of fixed shape (use symdl.derive.trace "
                             "with arrays for the others)")
        try:
            number = float(text)
        except ValueError:
            raise UsageError(f"--at {item}: {text!r} is not a number") from None
        out[leaf] = np.full(leaf.shape, number, dtype=leaf.dtype)
    return out


def _add_sections(args: argparse.Namespace, d: object, y: Expr, wrt: list[Expr],
                  by_name: dict[str, Expr]) -> None:
    """The optional sections of issue 15, items 3-5: traces (--at), check, exercise."""
    from ..derive.check import check
    from ..derive.exercise import Exercise, check_hidden, parse_hide
    from ..derive.trace import trace
    from ..errors import UsageError

    point = _point(args.at, by_name) if args.at else None
    if point is not None:
        tangent = None
        if args.tangent:
            if args.tangent not in by_name:
                raise UsageError(f"--tangent {args.tangent}: not a leaf of the model")
            tangent = {by_name[args.tangent]: 1.0}
        try:
            d.trace = trace(y, wrt, point, tangent)  # type: ignore[attr-defined]
        except ValueError as e:
            raise UsageError(f"--at: {e}") from None
    if args.check:
        try:
            d.check = check(y, wrt, point, seed=args.seed)  # type: ignore[attr-defined]
        except ValueError as e:
            raise UsageError(f"--check: {e}") from None
    if args.exercise or args.hide:
        try:
            exercise = Exercise(parse_hide(args.hide) if args.hide else None)
            check_hidden(d, exercise)  # type: ignore[arg-type]
        except ValueError as e:
            raise UsageError(str(e)) from None
        d.exercise = exercise  # type: ignore[attr-defined]
