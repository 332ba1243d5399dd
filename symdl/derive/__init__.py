"""Derivations for the classroom: the chain rule at work, step by step, tied to generated code.

`derive(y, wrt)` lists the forward definitions, then one step per node the backward pass
visits (incoming adjoint, local derivative, what the rule sends to each input, and the numpy
lines generated for it), then the simplified gradients. `trace(y, wrt, values)` evaluates the
forward primal, forward tangent (forward mode, from `jvp`) and reverse adjoint sweeps
numerically, as in a lecture's evaluation-trace tables. `check(y, wrt)` puts a float64
central-difference check beside the symbolic gradient; `Exercise` turns a page into an exercise
sheet (``d.exercise = Exercise({3, 5})``).
"""

from ..provenance import step_numbers
from .check import GradCheck, check
from .exercise import Exercise
from .latex import latex, to_sympy
from .steps import Derivation, Step, code_blocks, derive
from .trace import Trace, trace

__all__ = [
    "Derivation", "Step", "Trace", "code_blocks", "derive", "latex", "step_numbers", "to_sympy",
    "trace",
    "GradCheck", "check", "Exercise",
]
