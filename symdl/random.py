"""Random draws, as ``sd.random``: ``sd.random.uniform(rng, x.shape)``.

Randomness is an argument: declare the generator with ``rng = sd.rng("rng")`` and the
generated function takes a ``numpy.random.Generator`` there, drawing afresh on every call.
Each call of these functions is one independent draw (see `symdl.ops.random`).
"""

from __future__ import annotations

from .ops.random import bernoulli, normal, uniform

__all__ = ["bernoulli", "normal", "uniform"]
