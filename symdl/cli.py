"""The ``symdl`` command line: one subcommand per module in `symdl.commands`.

Each command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``;
adding a command is one module and one entry in `COMMANDS`.

An error is one line on stderr naming the file and what to do, and an exit status: 2 for a
command line that cannot be used (a missing file, an unknown ``--wrt`` name: `UsageError`, and
argparse's own errors), 1 for an error in the model or the data. ``--debug`` adds the traceback.
An exception symdl did not expect (a bug in symdl) prints its traceback and asks for a report.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from .errors import SymdlError, UsageError

COMMANDS = ("generate", "train", "demo", "derive")

# Exceptions whose message is written for the user: symdl's own, and those that numpy, the file
# system or the user's model file raise with a message that says what is wrong.
_REPORTED = (SymdlError, ValueError, TypeError, OSError, ArithmeticError, KeyError, NameError,
             ImportError)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="symdl",
        description="Symbolic tensor expressions to readable, vectorized numpy code.",
        epilog="Exit status: 0 on success, 1 for an error in the model or the data, 2 for a "
               "command line that cannot be used.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error, not only its one-line message")
    # Also accepted after the subcommand (`symdl generate m.py --debug`); SUPPRESS keeps a
    # subcommand's default from overwriting a --debug given before it.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the traceback of an error, not only its one-line message")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"symdl.commands.{name}")
        p = sub.add_parser(
            module.NAME, help=module.HELP, description=module.__doc__, parents=[debug],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``symdl`` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        # argparse has printed the usage and the error (status 2) or the help (status 0).
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        print(f"symdl {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - every error becomes a message and a status
        return report_error(exc, args)


def report_error(exc: Exception, args: argparse.Namespace) -> int:
    """Print ``exc`` as one line on stderr (the traceback first with --debug); return the status.

    The line names the model file (and the line in it the traceback passes, where it does),
    unless the message names it already.
    """
    prog = f"symdl {args.command}"
    model = getattr(args, "model", None)
    line = None
    if isinstance(model, Path):
        from .commands.modelfile import model_line

        line = model_line(exc, model)
    if not isinstance(exc, _REPORTED) and line is None:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        print(f"{prog}: internal error: {type(exc).__name__}: {exc}; this is a bug in symdl, "
              "please report it with the traceback above", file=sys.stderr)
        return 1
    if getattr(args, "debug", False):
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    message = str(exc).strip()
    if not isinstance(exc, SymdlError):
        message = f"{type(exc).__name__}: {message}"
    if isinstance(model, Path) and str(model) not in message:
        where = f"model file {model}" + (f", line {line}" if line is not None else "")
        message = f"{where}: {message}"
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
