"""The API of the CSE 599W (dlsys) first assignment's ``autodiff`` module, on `symdl.tf`.

The assignment's tests (``autodiff_test.py``) build expressions from ``Variable(name=...)``
nodes of unknown shape, take ``gradients`` and evaluate them with an ``Executor``; with
``import symdl.tf.dlsys as ad`` in place of ``import autodiff as ad`` they run unchanged. A node
is a `symdl.tf` tensor whose shape comes from the feed; values are float64 (the tests compare
with ``np.array_equal``, so integer inputs must stay exact).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import ops as _ops
from .deferred import Deferred, deferrable
from .graph import placeholder
from .session import Session

Node = Deferred  # every node of this API is a tensor whose shape comes from the feed


def Variable(name: str) -> Deferred:  # noqa: N802 - the assignment's name
    """An input node: a float64 placeholder of unknown shape named ``name``."""
    return placeholder("float64", None, name=name)  # type: ignore[return-value]


def gradients(output_node: Any, node_list: Sequence[Any]) -> list[Any]:
    """The gradient of (the sum of) ``output_node`` with respect to each node."""
    return _ops.gradients(output_node, list(node_list))


matmul_op = deferrable(_ops.matmul)


@deferrable
def oneslike_op(node: Any) -> Any:
    """Ones of ``node``'s shape."""
    return _ops.ones_like(node)


@deferrable
def zeroslike_op(node: Any) -> Any:
    """Zeros of ``node``'s shape."""
    return _ops.zeros_like(node)


class Executor:
    """Computes a list of nodes for the values fed to the input nodes."""

    def __init__(self, eval_node_list: Sequence[Any]) -> None:
        self.eval_node_list = list(eval_node_list)
        self._session = Session()

    def run(self, feed_dict: Mapping[Any, Any]) -> list[Any]:
        """The value of each node, in order, as numpy arrays."""
        return list(self._session.run(self.eval_node_list, feed_dict))


__all__ = ["Executor", "Node", "Variable", "gradients", "matmul_op", "oneslike_op",
           "zeroslike_op"]
