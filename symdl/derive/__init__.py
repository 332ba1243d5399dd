"""Derivations for the classroom: the chain rule at work, step by step, tied to generated code.

`derive(y, wrt)` lists the forward definitions, then one step per node the backward pass
visits (incoming adjoint, local derivative, what the rule sends to each input, and the numpy
lines generated for it), then the simplified gradients. `trace(y, wrt, values)` evaluates the
forward and reverse sweeps numerically, as in a lecture's evaluation-trace table.
"""

from ..provenance import step_numbers
from .latex import latex, to_sympy
from .steps import Derivation, Step, code_blocks, derive
from .trace import Trace, trace

__all__ = [
    "Derivation", "Step", "Trace", "code_blocks", "derive", "latex", "step_numbers", "to_sympy",
    "trace",
]
