"""``tf.app``: ``tf.app.run()`` and ``tf.app.flags`` on argparse, as TensorFlow 1 programs use.

``flags.DEFINE_integer('max_steps', 2000, 'help')`` adds ``--max_steps`` to one argparse parser;
``FLAGS.max_steps`` parses ``sys.argv`` on first use (unknown arguments are left alone), and
``tf.app.run()`` parses the arguments, then calls ``main(argv)`` of the ``__main__`` module and
exits with its return value, as TensorFlow does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "t", "yes", "y"):
        return True
    if lowered in ("0", "false", "f", "no", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


class _Flags:
    """The parsed flags: attribute access parses ``sys.argv`` on first use."""

    def __init__(self) -> None:
        object.__setattr__(self, "_parser", argparse.ArgumentParser(add_help=False))
        object.__setattr__(self, "_values", None)
        object.__setattr__(self, "_defaults", {})

    def _define(self, name: str, default: Any, help_text: str, kind: Callable[[str], Any],
                boolean: bool = False) -> None:
        if name in self._defaults:
            raise ValueError(f"flag --{name} is defined twice")
        self._defaults[name] = default
        if boolean:
            self._parser.add_argument(f"--{name}", type=_bool, nargs="?", const=True,
                                      default=default, help=help_text)
            self._parser.add_argument(f"--no{name}", dest=name, action="store_false")
        else:
            self._parser.add_argument(f"--{name}", type=kind, default=default, help=help_text)
        if self._values is not None:
            setattr(self._values, name, default)

    def _parse(self, argv: Sequence[str]) -> list[str]:
        values, rest = self._parser.parse_known_args(list(argv[1:]))
        object.__setattr__(self, "_values", values)
        return [argv[0], *rest] if argv else rest

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._values is None:
            self._parse(sys.argv)
        if name not in self._defaults:
            raise AttributeError(f"no flag --{name} is defined; define it with tf.app.flags")
        return getattr(self._values, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._values is None:
            self._parse(sys.argv)
        setattr(self._values, name, value)


class _FlagsModule:
    """``tf.app.flags`` / ``tf.flags``: ``FLAGS`` and the ``DEFINE_*`` functions."""

    def __init__(self) -> None:
        self.FLAGS = _Flags()  # noqa: N815 - TensorFlow's name

    def DEFINE_string(self, name: str, default: str | None, help: str) -> None:  # noqa: A002,N802
        """Define ``--name`` holding a string."""
        self.FLAGS._define(name, default, help, str)

    def DEFINE_integer(self, name: str, default: int | None, help: str) -> None:  # noqa: A002,N802
        """Define ``--name`` holding an int."""
        self.FLAGS._define(name, default, help, int)

    def DEFINE_float(self, name: str, default: float | None, help: str) -> None:  # noqa: A002,N802
        """Define ``--name`` holding a float."""
        self.FLAGS._define(name, default, help, float)

    def DEFINE_boolean(self, name: str, default: bool | None, help: str) -> None:  # noqa: A002,N802
        """Define ``--name`` (and ``--noname``) holding a bool."""
        self.FLAGS._define(name, default, help, _bool, boolean=True)

    DEFINE_bool = DEFINE_boolean  # noqa: N815 - TensorFlow's name


flags = _FlagsModule()


def run(main: Callable[[list[str]], Any] | None = None,
        argv: Sequence[str] | None = None) -> None:
    """Parse the flags from ``argv`` (default ``sys.argv``), call ``main(remaining argv)``
    (default: ``main`` of the ``__main__`` module) and exit with its result."""
    args = list(sys.argv if argv is None else argv)
    rest = flags.FLAGS._parse(args)
    if main is None:
        main = sys.modules["__main__"].main
    sys.exit(main(rest))


__all__ = ["flags", "run"]
