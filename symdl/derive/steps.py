"""Building a derivation: forward definitions, one chain-rule step per node, the final result.

A *step* is a forward node the backward pass visits: its incoming adjoint (the sum of what its
users' rules sent it), its local derivative, and what its own rule sends to each input. Steps
are numbered by `step_numbers`, a function of the gradient graph alone, so the code generator
prints the same numbers in its comments (``# step 3: grad of: logits = x @ W + b``) and a reader
can go from a line of code to its step and back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ..autodiff import adjoints, grad
from ..errors import GradientError
from ..ir import Expr, is_gradient, label_of, leaves, origin_of, toposort
from ..printing import formula
from ..types import format_shape, is_float
from .latex import bar, latex, local_derivative, name_latex, rule_latex

__all__ = [
    "Contribution", "Derivation", "ForwardDef", "Step", "derive", "forward_anchors",
    "graph_origins", "step_numbers",
]


def depth_order(nodes: Sequence[Expr]) -> list[Expr]:
    """``nodes`` (a topological order) stably sorted by depth, the longest path from a leaf.

    Still a topological order, and the one a lecture uses: all first-level values (``ln x1``,
    ``x1 * x2``, ``sin x2``) before the values built from them.
    """
    depth: dict[Expr, int] = {}
    for n in nodes:
        depth[n] = 1 + max((depth.get(i, 0) for i in n.inputs), default=-1) if n.inputs else 0
    return sorted(nodes, key=lambda n: depth[n])


def is_forward(x: Expr) -> bool:
    """True if no part of ``x`` is a gradient that `grad` returned (a loss, not a gradient).

    Decided from what `grad` returned, not from recorded origins: those may come from another
    graph that shares nodes with this one (``1 / N`` is the same node in every model).
    """
    return not any(is_gradient(n) for n in toposort([x]))


def forward_anchors(outputs: Sequence[Expr]) -> list[Expr]:
    """The scalar forward outputs (the loss), in the stable form `grad` differentiated."""
    return [stable_form(o) for o in outputs if o.shape == () and not o.is_leaf
            and o.op.differentiable and is_float(o.dtype) and is_forward(o)]


def graph_origins(
    outputs: Sequence[Expr], anchors: list[Expr] | None = None
) -> Callable[[Expr], Expr | None]:
    """`origin_of` for the nodes of one graph: only origins that belong to that graph.

    Nodes are shared across graphs (``1 / N`` is one node in every model), so a gradient node
    may also have been built by another model's rules. An origin belongs here if it lies in the
    graph of the scalar forward outputs (the loss) when there are any, else if its leaves are
    all leaves of ``outputs``.
    """
    outputs = list(outputs)
    anchors = forward_anchors(outputs) if anchors is None else anchors
    if anchors:
        inside = set(toposort(anchors))
        return lambda node: origin_of(node, inside.__contains__)
    inputs = set(leaves(outputs))
    verdict: dict[Expr, bool] = {}

    def within(origin: Expr) -> bool:
        if origin not in verdict:
            verdict[origin] = set(leaves([origin])) <= inputs
        return verdict[origin]

    return lambda node: origin_of(node, within)


def step_numbers(
    outputs: Iterable[Expr], anchors: list[Expr] | None = None
) -> dict[Expr, int]:
    """Number the chain-rule steps behind the gradient nodes in ``outputs``: {forward node: k}.

    Computed from the graph alone (the forward nodes recorded by `symdl.ir.origin_of`), so
    `symdl.derive` and the code generator agree. The steps are the differentiable forward
    nodes below the outermost differentiated node and above a parameter (or a leaf that a
    derivative rule used), numbered from the output down in reverse depth order (step 1 is
    the loss). A node whose rule only passes its adjoint on unchanged above all others (the
    ``+`` of ``loss = data + reg``) has no code and no number. Pass the forward output along
    with the gradients (as a ``loss_and_grads`` function does) so that the origins can be
    told from those of other graphs sharing nodes. ``anchors`` are `forward_anchors` of
    ``outputs``, for a caller that already has them.
    """
    outputs = list(outputs)
    anchors = forward_anchors(outputs) if anchors is None else anchors
    resolve = graph_origins(outputs, anchors)
    origins: dict[Expr, None] = {}
    for node in toposort(outputs):
        origin = resolve(node)
        if origin is not None:
            origins[origin] = None
    if not origins:
        return {}
    if anchors:
        origins = {**dict.fromkeys(anchors), **origins}
    below: set[Expr] = set()
    for o in origins:
        below.update(toposort(o.inputs))
    roots = [o for o in origins if o not in below]
    sources = {
        i for o in origins for i in o.inputs
        if i.is_leaf and i.op.name != "constant" and is_float(i.dtype)
    }
    active: set[Expr] = set()
    forward = depth_order(toposort(roots))
    for n in forward:
        if n.is_leaf:
            if n in sources or n.op.name == "parameter":
                active.add(n)
        elif n.op.differentiable and any(i in active for i in n.inputs):
            active.add(n)
    steps = [n for n in reversed(forward) if not n.is_leaf and n in active]
    return {n: k for k, n in enumerate(steps, start=1)}


# --------------------------------------------------------------------------- the derivation


@dataclass
class ForwardDef:
    """One forward value: ``symbol = definition``, in LaTeX and in text."""

    node: Expr
    symbol: str
    latex: str
    text_symbol: str
    text: str

    @property
    def shape(self) -> str:
        """The value's shape as text, ``(N, 10)``."""
        return format_shape(self.node.shape)


@dataclass
class Contribution:
    """What a step's rule sends to one input: ``\\bar{input} += expr``."""

    input: Expr
    symbol: str
    text_symbol: str
    expr: Expr
    latex: str
    text: str


@dataclass
class Step:
    """One chain-rule step: a visited forward node, its adjoint and its rule applied."""

    number: int | None
    node: Expr
    definition: ForwardDef
    adjoint: Expr
    adjoint_latex: str
    adjoint_text: str
    local: list[tuple[str, str]]  # (d node / d input in LaTeX) pairs: (input symbol, derivative)
    rule: str | None  # the op's rule in matrix notation, for tensor ops
    contributions: list[Contribution]
    code: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``step 3`` or, for a step without code, ``pass-through``."""
        return f"step {self.number}" if self.number is not None else "pass-through"


@dataclass
class Result:
    """The gradient with respect to one leaf, as derived and after simplification."""

    wrt: Expr
    raw: Expr
    simplified: Expr
    latex: str
    text: str


@dataclass
class Derivation:
    """A derivation of ``d target / d wrt``: see `derive`. Renders as text, Markdown, HTML, TeX."""

    target: Expr
    wrt: list[Expr]
    forward: list[ForwardDef]
    steps: list[Step]
    results: list[Result]
    code: str
    symbols: dict[Expr, str]
    gathered: dict[Expr, str] = field(default_factory=dict)  # leaf -> sum of what it was sent
    # (as written, as differentiated) in LaTeX and text, when grad used a stable form of y
    stabilized: tuple[str, str, str, str] | None = None

    def to_text(self) -> str:
        """Plain text."""
        from .render import to_text

        return to_text(self)

    def to_markdown(self) -> str:
        """Markdown with ``$...$`` LaTeX math."""
        from .render import to_markdown

        return to_markdown(self)

    def to_html(self, title: str | None = None) -> str:
        """A standalone HTML page; the math is typeset offline by the bundled KaTeX."""
        from .render import to_html

        return to_html(self, title)

    def to_latex(self) -> str:
        """A standalone LaTeX document."""
        from .render import to_latex

        return to_latex(self)

    def save(self, path: str) -> None:
        """Write the derivation; the format follows the suffix (.html, .md, .tex, .txt)."""
        from .render import save

        save(self, path)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        from .render import equations

        return "$$" + equations(self) + "$$"

    def __str__(self) -> str:
        return self.to_text()


def _symbols(forward: list[Expr]) -> tuple[dict[Expr, str], dict[Expr, str]]:
    """LaTeX and text symbols: leaves and labeled values by name, the others v_1, v_2, ..."""
    tex: dict[Expr, str] = {}
    text: dict[Expr, str] = {}
    count = 0
    for n in forward:
        if n.op.name in ("constant", "size"):
            continue
        name = n.name
        if name is None:
            count += 1
            tex[n], text[n] = f"v_{{{count}}}", f"v{count}"
        else:
            tex[n], text[n] = name_latex(name), name
    return tex, text


def stable_form(y: Expr) -> Expr:
    """The form of ``y`` that `symdl.grad` differentiates (naive losses made stable)."""
    try:
        from ..simplify import stabilize
    except ImportError:  # an older simplifier without the stabilizing pass
        return y
    return stabilize([y])[0]


def text_formula(e: Expr, names: dict[Expr, str]) -> str:
    """``e`` as infix text, with reshapes and broadcasts left out and transposes as ``.T``.

    Like `symdl.printing.formula`, ``e`` itself is written out even if it has a name.
    """
    while e.op.shows_as_operand and e not in names:
        e = e.inputs[0]
    local = {n: t for n, t in names.items() if n is not e}
    for n in toposort([e]):
        if n in local or n.is_leaf:
            continue
        if n.op.shows_as_operand or (
            n.op.name == "transpose" and n.attr("axes") == tuple(reversed(range(n.ndim)))
        ):
            inner = n.inputs[0]
            text = local.get(inner) or formula(inner, local)
            if inner not in local and not inner.is_leaf:
                text = f"({text})"
            local[n] = text if n.op.shows_as_operand else f"{text}.T"
    return local[e] if e in local else formula(e, local)


def _shown(e: Expr, names: dict[Expr, str], text_names: dict[Expr, str]) -> tuple[str, str]:
    if e in names:
        return names[e], text_names[e]
    return latex(e, names), text_formula(e, text_names)


def derive(y: Expr, wrt: Expr | Sequence[Expr], *, code: bool = True) -> Derivation:
    """Derive ``d y / d wrt`` step by step, as a teacher would on the board.

    Returns a `Derivation`: the forward definitions, then for each node the backward pass
    visits (from the output down) its incoming adjoint, its local derivative and the expression
    its rule sends to each input, then the simplified gradients. With ``code=True`` each step
    also carries the generated numpy lines under its ``# step k:`` comment.

    Example::

        d = sd.derive(loss, [W, b])
        d.save("derivation.html")   # or print(d), d.to_markdown(), d.to_latex()
    """
    targets = [wrt] if isinstance(wrt, Expr) else list(wrt)
    check_wrt(targets)
    grads = grad(y, targets)
    written = y
    y = stable_form(y)  # what `grad` differentiates, so the steps are the code's steps
    table = adjoints(y, targets)
    forward_nodes = depth_order(toposort([y]))
    tex, text = _symbols(forward_nodes)
    forward = [
        ForwardDef(n, tex[n], latex(n, tex), text[n], text_formula(n, text))
        for n in forward_nodes if not n.is_leaf and n in tex
    ]
    by_node = {f.node: f for f in forward}
    numbers = step_numbers([y, *grads])

    # What each node's users sent it, written with the users' adjoint symbols: the incoming
    # adjoint as a lecture writes it (a sum over users), not as one accumulated expression.
    incoming: dict[Expr, list[tuple[str, str]]] = {}
    steps: list[Step] = []
    for node in reversed(forward_nodes):
        if node not in table or node.is_leaf or not node.op.differentiable:
            continue
        g = table[node]
        sent = incoming.get(node, [])
        adjoint_latex = "1" if node is y else " + ".join(t for t, _ in sent) or "0"
        adjoint_text = "1" if node is y else " + ".join(t for _, t in sent) or "0"
        # Within this step, the adjoint node reads as this node's bar (it may be shared).
        names = {**tex, g: bar(tex[node])}
        text_names = {**text, g: f"{text[node]}_bar"}
        cotangents = node.op.vjp(g, node, *node.inputs, **node.kwargs)
        contributions = []
        for x, ct in zip(node.inputs, cotangents):
            if ct is None or x not in table:
                continue
            ct_latex, ct_text = _shown(ct, names, text_names)
            contributions.append(Contribution(
                x, tex.get(x, latex(x)), text.get(x, str(x.name)), ct, ct_latex, ct_text))
            incoming.setdefault(x, []).append((ct_latex, ct_text))
        local = local_derivative(node, tex)
        steps.append(Step(
            number=numbers.get(node), node=node, definition=by_node[node], adjoint=g,
            adjoint_latex=adjoint_latex, adjoint_text=adjoint_text,
            local=[(tex.get(i, latex(i)), d) for i, d in local or []],
            rule=None if local is not None else rule_latex(node),
            contributions=contributions,
        ))
    gathered = {w: " + ".join(t for t, _ in incoming.get(w, [])) for w in targets}

    from ..simplify import simplify

    simplified = simplify(grads)
    # In the result only the user's names stay; unnamed intermediates are written out.
    named = {n: s for n, s in tex.items() if n.is_leaf or label_of(n) is not None}
    named_text = {n: text[n] for n in named}
    results = [
        Result(w, g, s, latex(s, named), text_formula(s, named_text))
        for w, g, s in zip(targets, grads, simplified)
    ]
    source = ""
    if code:
        source = _generated(y, grads, steps)
    note = None
    if written is not y:
        note = (latex(written, {}), latex(y, {}), text_formula(written, {}), text_formula(y, {}))
    return Derivation(y, targets, forward, steps, results, source, tex, gathered, note)


def _generated(y: Expr, grads: list[Expr], steps: list[Step]) -> str:
    """Generate the module for (y, grads) and give each step the lines under its comment."""
    from codegen import generate

    inputs = leaves([y, *grads])
    source = generate({"derivation": (inputs, [y, *grads])}, "derivation")
    blocks = code_blocks(source)
    for step in steps:
        if step.number is not None:
            step.code = blocks.get(step.number, [])
    return source


def code_blocks(source: str) -> dict[int, list[str]]:
    """The generated lines under each ``# step k:`` comment (comment included), by k."""
    blocks: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith("# step ") and ":" in stripped:
            number = stripped[len("# step "):].split(":", 1)[0]
            if number.isdigit():
                current = blocks.setdefault(int(number), [])
                current.append(stripped)
                continue
        if not stripped or stripped.startswith("#") or stripped.startswith("return"):
            current = None
        elif current is not None:
            current.append(stripped)
    return blocks


def check_wrt(wrt: Sequence[Expr]) -> None:
    """Refuse an empty ``wrt`` with a message that says what to pass."""
    if not wrt:
        raise GradientError(
            "derive: wrt is empty; pass the leaves to differentiate with respect to"
        )
