"""Names and provenance as data of one call: what `generate` and `derive` know about a graph.

Nodes are hash-consed: ``tanh(x)`` is one object in every graph of the process. So nothing that
belongs to one model may live on a node. What a generation needs to know beyond the values is
computed here, from the graphs it was given and nothing else:

- **labels**: ``expr.named("logits")`` puts a `label` node in the graph; `annotate` strips the
  labels and keeps ``{node: name}``. Adjoints of named values are called ``logits_bar``.
- **origins**: `grad` wraps each gradient in a label that says what it is the gradient of
  (`GradientOf`). `annotate` runs that reverse walk again (`symdl.autodiff.reverse_walk`, a pure
  function of the graph) and records which forward node's derivative rule built each node, for
  the ``# grad of: ...`` comments and the derivation's steps.
- **steps**: the chain-rule steps behind the gradients, numbered from the loss down
  (`step_numbers`), so the generated comments and `symdl.derive` agree.

Passes that rebuild the graph (simplification, lowering, fusion) move names and origins to the
replacement nodes with `Notes.carry`. The result: generating a set of functions gives the same
bytes whatever else the process built, named or generated before, in any order.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .ir import Expr, toposort
from .ops.base import GradientOf, Label
from .types import is_float


@dataclass
class Notes:
    """What one generation knows about its graph beyond the values (see the module docstring).

    ``labels`` names nodes, ``origins`` maps a node a derivative rule built to the forward node
    whose rule built it, ``forward_flags`` says for each output (by position) whether it is no
    gradient (the loss, a metric), and ``steps`` numbers the chain-rule steps.
    """

    labels: dict[Expr, str] = field(default_factory=dict)
    origins: dict[Expr, Expr] = field(default_factory=dict)
    forward_flags: list[bool] = field(default_factory=list)
    steps: dict[Expr, int] = field(default_factory=dict)

    def name(self, node: Expr) -> str | None:
        """A leaf's name or this graph's label of ``node``."""
        return node.name if node.is_leaf else self.labels.get(node)

    def label(self, node: Expr, name: str) -> None:
        """Name ``node`` unless it is a leaf or already has a name here (the first name wins)."""
        if not node.is_leaf:
            self.labels.setdefault(node, name)

    def carry(self, old: Expr, new: Expr, known: set[Expr]) -> None:
        """Move ``old``'s name and origin to ``new``, its replacement, and the nodes built for it.

        The nodes built for it are those below ``new`` that are not in ``known`` (the graph
        before the pass and what the pass has produced so far); the walk stops at known nodes.
        """
        if new is old:
            return
        name = self.labels.get(old)
        if name is not None:
            self.label(new, name)
        origin = self.origins.get(old)
        stack = [new]
        while stack:
            n = stack.pop()
            if n in known:
                continue
            known.add(n)
            if origin is not None:
                self.origins.setdefault(n, origin)
            stack.extend(n.inputs)


def strip_labels(
    outputs: Sequence[Expr], memo: dict[Expr, Expr] | None = None,
    notes: Notes | None = None, markers: list[GradientOf] | None = None,
) -> list[Expr]:
    """``outputs`` without their `label` nodes; the names go to ``notes`` (outermost wins).

    ``memo`` (old node -> bare node) may be shared between calls; gradient labels add what they
    are the gradient of to ``markers``. Iterative: deep graphs are fine.
    """
    memo = {} if memo is None else memo
    for node in toposort(outputs):
        if node in memo:
            continue
        if node.op is Label:
            bare = memo[node.inputs[0]]
            memo[node] = bare
            if notes is not None and not bare.is_leaf:
                notes.labels[bare] = node.attr("name")  # later in the order: nearer the output
            of = node.attr("of")
            if of is not None and markers is not None and of not in markers:
                markers.append(of)
            continue
        inputs = tuple(memo[i] for i in node.inputs)
        changed = any(a is not b for a, b in zip(inputs, node.inputs))
        memo[node] = node.op.make(*inputs, **node.kwargs) if changed else node
    return [memo[o] for o in outputs]


def gradient_flags(outputs: Sequence[Expr]) -> list[bool]:
    """For each output, whether its graph holds a value `grad` returned (so it is no forward
    output). One walk over all the outputs' graphs, however many outputs there are."""
    holds: dict[Expr, bool] = {}
    for n in toposort(outputs):
        holds[n] = (n.op is Label and n.attr("of") is not None) or any(
            holds[i] for i in n.inputs
        )
    return [holds[o] for o in outputs]


def annotate(outputs: Sequence[Expr]) -> tuple[list[Expr], Notes]:
    """The bare graph of ``outputs`` (no labels) and its `Notes`: names, origins, steps.

    Every gradient's reverse walk is run again on the bare target, so the origins are those of
    this graph alone; a name given in the outputs wins over one from a differentiated target's
    graph, which wins over an adjoint's ``_bar`` name.
    """
    from .autodiff import reverse_walk
    from .simplify import stabilize

    notes = Notes()
    memo: dict[Expr, Expr] = {}
    markers: list[GradientOf] = []
    bare = strip_labels(outputs, memo, notes, markers)
    notes.forward_flags = [not g for g in gradient_flags(outputs)]
    anchors: list[Expr] = []
    sources: list[Expr] = []
    done = 0
    while done < len(markers):  # a target may hold gradients itself (Hessians): a worklist
        of = markers[done]
        done += 1
        target_notes = Notes()
        (y,) = strip_labels([of.y], memo, target_notes, markers)
        for node, name in target_notes.labels.items():
            notes.label(node, name)
        stable = stabilize([y], notes)[0]
        anchors.append(stable)
        sources.extend(of.wrt)
        walk = reverse_walk(stable, of.wrt)
        for node, forward in walk.built.items():
            notes.origins.setdefault(node, forward)
        for node, adjoint in walk.adjoints.items():
            name = notes.name(node)
            if name is not None and not node.is_leaf:
                notes.label(adjoint, f"{name}_bar")
    used = [notes.origins[n] for n in toposort(bare) if n in notes.origins]
    notes.steps = step_numbers(used, anchors, sources)
    return bare, notes


def depth_order(nodes: Sequence[Expr]) -> list[Expr]:
    """``nodes`` (a topological order) stably sorted by depth, the longest path from a leaf.

    Still a topological order, and the one a lecture uses: all first-level values (``ln x1``,
    ``x1 * x2``, ``sin x2``) before the values built from them.
    """
    depth: dict[Expr, int] = {}
    for n in nodes:
        depth[n] = 1 + max((depth.get(i, 0) for i in n.inputs), default=-1) if n.inputs else 0
    return sorted(nodes, key=lambda n: depth[n])


def step_numbers(
    origins: Iterable[Expr], anchors: Sequence[Expr] = (), wrt: Iterable[Expr] | None = None,
) -> dict[Expr, int]:
    """Number the chain-rule steps: ``{forward node: k}``, step 1 being the loss.

    ``origins`` are the forward nodes whose rules built gradient code; ``anchors`` the targets
    that were differentiated (in the stable form `grad` used). The steps are the differentiable
    forward nodes below the outermost one and above a parameter (or a leaf that a derivative
    rule used), numbered from the output down in reverse depth order. A node whose rule only
    passes its adjoint on unchanged above all others (the ``+`` of ``loss = data + reg``) has
    no code and no number. Given ``wrt`` (the leaves differentiated with respect to), only
    nodes above one of them are steps: a value computed from data alone (``1 - y``) gets no
    adjoint, so a number for it would leave a gap in the derivation's steps.
    """
    found = dict.fromkeys(origins)
    if not found:
        return {}
    found = {**dict.fromkeys(a for a in anchors if not a.is_leaf), **found}
    below = set(toposort([i for o in found for i in o.inputs]))  # one walk, not one per node
    roots = [o for o in found if o not in below]
    sources = set(wrt) if wrt is not None else {
        i for o in found for i in o.inputs
        if i.is_leaf and i.op.name != "constant" and is_float(i.dtype)
    }
    active: set[Expr] = set()
    forward = depth_order(toposort(roots))
    for n in forward:
        if n.is_leaf:
            if n in sources or (wrt is None and n.op.name == "parameter"):
                active.add(n)
        elif n.op.differentiable and any(i in active for i in n.inputs):
            active.add(n)
    steps = [n for n in reversed(forward) if not n.is_leaf and n in active]
    return {n: k for k, n in enumerate(steps, start=1)}
