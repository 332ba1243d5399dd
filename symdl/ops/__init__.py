"""The op set. Each module holds related ops, one class per op; `OPS` maps names to ops."""

from .. import ir as _ir
from . import api
from .base import OPS, Op

# Expr's operators call these functions.
_ir._api = api

__all__ = ["OPS", "Op", "api"]
