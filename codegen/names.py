"""Safe, unique, readable identifiers for generated code.

User names never reach generated code unchecked: anything that is not a plain ASCII identifier,
or that is a keyword, a builtin, ``np``, ``scipy`` or a dunder, is rewritten; collisions get
``_1``, ``_2``.
"""

from __future__ import annotations

import builtins
import keyword
import re

RESERVED = frozenset(
    keyword.kwlist
    + getattr(keyword, "softkwlist", [])
    + dir(builtins)
    + ["np", "numpy", "self", "scipy"]  # scipy: the module of the special functions (erf)
)
MAX_LENGTH = 40

def safe_identifier(name: str) -> str:
    """``name`` turned into a plain identifier that shadows nothing (``x-in`` -> ``x_in``)."""
    text = re.sub(r"[^0-9A-Za-z_]", "_", name)
    text = re.sub(r"_+", "_", text).strip("_")[:MAX_LENGTH].rstrip("_")
    if not text:
        text = "v"
    if text[0].isdigit():
        text = "v" + text
    if text in RESERVED:
        text += "_"
    return text


class Namespace:
    """Hands out unique identifiers; the first request for a base name gets it unchanged."""

    def __init__(self, taken: set[str] | None = None) -> None:
        self._taken: set[str] = set(RESERVED) | (taken or set())
        self._counts: dict[str, int] = {}

    def reserve(self, name: str) -> None:
        """Mark ``name`` as used (helper functions and module globals)."""
        self._taken.add(name)

    def __contains__(self, name: str) -> bool:
        return name in self._taken

    def create(self, hint: str) -> str:
        """A fresh identifier based on ``hint``."""
        base = safe_identifier(hint)
        name = base
        while name in self._taken:
            self._counts[base] = self._counts.get(base, 0) + 1
            # `sum_` (escaped builtin) continues as `sum_1`, not `sum__1`
            name = f"{base.rstrip('_')}_{self._counts[base]}"
        self._taken.add(name)
        return name
