"""Building a derivation: forward definitions, one chain-rule step per node, the final result.

A *step* is a forward node the backward pass visits: its incoming adjoint (the sum of what its
users' rules sent it), its local derivative, and what its own rule sends to each input. Steps
are numbered by `step_numbers`, a function of the gradient graph alone, so the code generator
prints the same numbers in its comments (``# step 3: grad of: logits = x @ W + b``) and a reader
can go from a line of code to its step and back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..autodiff import Walk, grad, reverse_walk
from ..errors import GradientError
from ..ir import Expr, leaves, toposort
from ..printing import formula
from ..provenance import Notes, annotate, depth_order, step_numbers
from ..types import format_shape
from .latex import bar, latex, local_derivative, name_latex, rule_latex, shown_value
from .textbook import textbook_form

if TYPE_CHECKING:
    from .check import GradCheck
    from .exercise import Exercise
    from .trace import Trace

__all__ = ["Contribution", "Derivation", "ForwardDef", "Step", "depth_order", "derive",
           "step_numbers"]


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
    # ``a``, ``b``, ... for the steps of a fused rule expanded on request (`derive`'s
    # ``expand``): they share the fused step's number, as they share its lines of code
    part: str = ""

    @property
    def label(self) -> str:
        """``step 3`` (``step 3b`` in an expansion) or, for a step without code,
        ``pass-through``."""
        return f"step {self.number}{self.part}" if self.number is not None else "pass-through"


@dataclass
class Result:
    """The gradient with respect to one leaf, as derived (``raw``: what `grad` returned, ready
    to generate) and after simplification."""

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
    target_name: str | None = None  # the name the user gave the target (``loss``)
    gathered_text: dict[Expr, str] = field(default_factory=dict)  # `gathered` as text
    # Issue 15, items 3-5: optional sections a page adds after the result (see render.extras_*)
    trace: Trace | None = None  # the three evaluation traces at a point (--at)
    check: GradCheck | None = None  # the finite-difference check (--check)
    exercise: Exercise | None = None  # which steps and results are hidden (--exercise, --hide)
    # 1-based line numbers in `code` of each step's block (its ``# step k:`` comment first)
    code_lines: dict[int, list[int]] = field(default_factory=dict)
    # the variable a forward value is assigned to in `code`, where the module computes it
    code_names: dict[Expr, str] = field(default_factory=dict)

    def _repr_html_(self) -> str:
        """The derivation in a notebook: self-contained HTML (see `render.to_notebook_html`)."""
        from .render import to_notebook_html

        return to_notebook_html(self)

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


def _symbols(forward: list[Expr], notes: Notes) -> tuple[dict[Expr, str], dict[Expr, str]]:
    """LaTeX and text symbols: leaves and labeled values by name, the others v_1, v_2, ..."""
    tex: dict[Expr, str] = {}
    text: dict[Expr, str] = {}
    count = 0
    for n in forward:
        if n.op.name in ("constant", "size"):
            continue
        name = notes.name(n)
        if name is None:
            count += 1
            tex[n], text[n] = f"v_{{{count}}}", f"v{count}"
        else:
            tex[n], text[n] = name_latex(name), name
    return tex, text


def text_formula(e: Expr, names: dict[Expr, str], *, keep: bool = False) -> str:
    """``e`` as infix text, with reshapes and broadcasts left out and transposes as ``.T``.

    Like `symdl.printing.formula`, ``e`` itself is written out even if it has a name, unless
    ``keep``; what ``e`` only reshapes or broadcasts keeps its name.
    """
    local = {n: t for n, t in names.items() if keep or n is not e}
    while (e.op.shows_as_operand and e not in local and not _spreads_a_scalar(e)
           and not _spreads_a_column(e)):
        e = e.inputs[0]
    spread: set[Expr] = set()
    for n in toposort([e]):
        if n in local or n.is_leaf:
            continue
        vectors = [_vector_of(i) for i in n.inputs] if n.op.name == "matmul" else []
        if any(v is not None for v in vectors) and _outer_product(n) is None:
            # numpy's @ promotes a vector itself: X.T @ v, not X.T @ v[:, None]
            a, b = (_operand_text(v if v is not None else i, local)
                    for v, i in zip(vectors, n.inputs))
            local[n] = f"({a} @ {b})"
            spread.add(n)
            continue
        if n.op.shows_as_operand or (
            n.op.name == "transpose" and n.attr("axes") == tuple(reversed(range(n.ndim)))
        ):
            inner = n.inputs[0]
            text = local.get(inner) or formula(inner, local)
            if inner not in local and not inner.is_leaf:
                text = f"({text})"
            column = n.op.name == "reshape" and inner.ndim == 1 and n.shape == (*inner.shape, 1)
            row = n.op.name == "reshape" and inner.ndim == 1 and n.shape == (1, *inner.shape)
            if column:  # a vector made a column, as numpy spells it (it broadcasts along rows)
                local[n] = f"{text}[:, None]"
            elif row:
                local[n] = f"{text}[None, :]"
            elif _spreads_a_scalar(n):  # the page's v 1_N: the transpose of the sum it undoes
                dims = ", ".join(map(str, n.shape)) + ("," if n.ndim == 1 else "")
                local[n] = f"({text} * ones(({dims})))"
                spread.add(n)
            elif _spreads_a_column(n):  # the page's v 1_K^T
                local[n] = f"({text} * ones({n.shape[1]}))"
                spread.add(n)
            else:
                local[n] = text if n.op.shows_as_operand else f"{text}.T"
    outer = _outer_product(e)
    if outer is not None:  # x (p - y)^T for one example: numpy's outer product
        a, b = (local.get(v) or formula(v, local) for v in outer)
        return f"outer({a}, {b})"
    if e in spread:
        return local[e][1:-1]
    return local[e] if e in local else formula(e, local)


def _outer_product(e: Expr) -> tuple[Expr, Expr] | None:
    """``(u, v)`` if ``e`` is ``u[None, :].T @ v[None, :]`` (the product of a column and a row
    made from vectors), reshaped back or not."""
    while e.op.name == "reshape" and e.inputs[0].op.name == "matmul":
        e = e.inputs[0]
    if e.op.name != "matmul":
        return None
    a, b = e.inputs
    if a.op.name != "transpose":
        return None
    rows = [x for x in (a.inputs[0], b) if x.op.name == "reshape" and x.ndim == 2
            and x.shape[0] == 1 and x.inputs[0].ndim == 1]
    if len(rows) != 2:
        return None
    return rows[0].inputs[0], rows[1].inputs[0]


def _vector_of(x: Expr) -> Expr | None:
    """The vector ``v`` if ``x`` is ``v`` made a row (1, n) or a column (n, 1), else None."""
    if x.op.name == "reshape" and x.ndim == 2 and x.inputs[0].ndim == 1 and 1 in x.shape:
        return x.inputs[0]
    return None


def _operand_text(x: Expr, local: dict[Expr, str]) -> str:
    """``x`` as an operand of ``@``: bracketed unless it is a name or a call."""
    text = local.get(x) or formula(x, local)
    atomic = x in local or x.is_leaf or text.isidentifier() or _one_group(text)
    return text if atomic else f"({text})"


def _one_group(text: str) -> bool:
    """Whether ``text`` is one bracketed group, ``(a - b)``, not ``(a) * (b)``."""
    if not (text.startswith("(") and text.endswith(")")):
        return False
    depth = 0
    for k, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and k < len(text) - 1:
            return False
    return True


def _spreads_a_column(n: Expr) -> bool:
    """Whether ``n`` broadcasts a column (n, 1) over the columns of a matrix."""
    source = n.inputs[0] if n.op.name == "broadcast_to" else None
    return (source is not None and n.ndim == 2 and source.ndim == 2 and source.shape[1] == 1
            and n.shape[1] != 1)


def _spreads_a_scalar(n: Expr) -> bool:
    """Whether ``n`` broadcasts one value over a vector or matrix (written out on a page)."""
    if n.op.name != "broadcast_to" or n.ndim not in (1, 2):
        return False
    return all(d == 1 for d in shown_value(n.inputs[0]).shape)


def _in_step_order(steps: list[Step]) -> list[Step]:
    """``steps`` by their numbers (those of the code's comments), a pass-through step staying
    after the numbered step it followed."""
    keys: list[float] = []
    last = 0.0
    for s in steps:
        last = float(s.number) if s.number is not None else last + 1e-3
        keys.append(last)
    return [s for _, s in sorted(zip(keys, steps), key=lambda t: t[0])]


def plus(terms: Iterable[str]) -> str:
    """The sum of ``terms`` as written by hand: ``a - b`` for ``a + -b``; ``0`` for none."""
    out = ""
    for t in terms:
        if not out:
            out = t
        elif t.startswith("-"):
            out += " - " + t[1:].lstrip()
        else:
            out += " + " + t
    return out or "0"


def _shown(e: Expr, names: dict[Expr, str], text_names: dict[Expr, str]) -> tuple[str, str]:
    """``e`` by its symbol if it has one, else written out (a name below it stays a name)."""
    if e in names:
        return names[e], text_names[e]
    return latex(e, names), text_formula(e, text_names, keep=True)


def derive(y: Expr, wrt: Expr | Sequence[Expr], *, code: bool = True,
           expand: Sequence[str] = ()) -> Derivation:
    """Derive ``d y / d wrt`` step by step, as a teacher would on the board.

    Returns a `Derivation`: the forward definitions, then for each node the backward pass
    visits (from the output down) its incoming adjoint, its local derivative and the expression
    its rule sends to each input, then the simplified gradients. With ``code=True`` each step
    also carries the generated numpy lines under its ``# step k:`` comment.

    ``wrt`` holds leaves or named values (``sd.derive(loss, [logits])`` for
    ``d loss / d logits``, see `cut_at`). Results are shown in textbook form (`textbook_form`:
    ``(1/N) X^T (σ(z) - y)``), each after the line gathering what the steps sent that leaf.

    ``expand`` names fused ops to differentiate through their definitions instead of their
    fused rules (``expand=["softmax_cross_entropy"]``: the steps go through ``log p`` and the
    softmax Jacobian and show the cancellation to ``p - y``). The expanded steps share the
    fused step's number (3a, 3b, ...), since the generated code still uses the fused rule; the
    results are the same.

    Example::

        d = sd.derive(loss, [W, b])
        d.save("derivation.html")   # or print(d), d.to_markdown(), d.to_latex()
    """
    targets = [wrt] if isinstance(wrt, Expr) else list(wrt)
    check_wrt(targets)
    y, targets = cut_at(y, targets)
    grads = grad(y, targets)
    bare, notes = annotate([y, *grads])
    written = bare[0]
    was: dict[Expr, Expr] = {}
    expanded: set[Expr] = set()
    if expand:
        # Walked as written: stabilizing would fuse the expansion back into the op.
        written, was, expanded = expand_fused(written, expand, notes)
        walk = reverse_walk(written, targets)
    else:
        walk = stable_walk(written, targets, notes)
    stable = walk.y  # what `grad` differentiates, so the steps are the code's steps
    forward_nodes = depth_order(walk.order)
    tex, text = _symbols(forward_nodes, notes)
    forward = [
        ForwardDef(n, tex[n], latex(n, tex), text[n], text_formula(n, text))
        for n in forward_nodes if not n.is_leaf and n in tex
    ]
    by_node = {f.node: f for f in forward}

    # What each node's users sent it, written with the users' adjoint symbols: the incoming
    # adjoint as a lecture writes it (a sum over users), not as one accumulated expression.
    incoming: dict[Expr, list[tuple[str, str]]] = {}
    steps: list[Step] = []
    for node in reversed(forward_nodes):
        if node not in walk.adjoints or node.is_leaf or not node.op.differentiable:
            continue
        g = walk.adjoints[node]
        sent = incoming.get(node, [])
        adjoint_latex = "1" if node is stable else plus(t for t, _ in sent)
        adjoint_text = "1" if node is stable else plus(t for _, t in sent)
        # Within this step the adjoint reads as this node's bar. The rule is applied again to a
        # stand-in leaf for it: the adjoint node itself may be a constant that also occurs in
        # the local derivative (grad of grad: ``1.0 * 1.0`` would print as ``v̄ v̄``), or an
        # expression of earlier adjoints that would be written out in place of its symbol.
        standin = adjoint_standin(g)
        names = {**tex, standin: bar(tex[node])}
        text_names = {**text, standin: f"{text[node]}_bar"}
        contributions = []
        sent_here = walk.sent.get(node, [])
        for (x, ct), shown in zip(sent_here, rule_sends(node, standin, sent_here)):
            ct_latex, ct_text = _shown(shown, names, text_names)
            contributions.append(Contribution(
                x, tex.get(x, latex(x)), text.get(x, str(x.name)), ct, ct_latex, ct_text))
            incoming.setdefault(x, []).append((ct_latex, ct_text))
        local = local_derivative(node, tex)
        steps.append(Step(
            number=notes.steps.get(was.get(node, node)), node=node, definition=by_node[node],
            adjoint=g,
            adjoint_latex=adjoint_latex, adjoint_text=adjoint_text,
            # Only the inputs the rule sends an adjoint to: data gets no derivative.
            local=[(tex.get(i, latex(i)), d) for i, d in local or []
                   if any(i is x for x, _ in sent_here)],
            rule=None if local is not None else rule_latex(node),
            contributions=contributions,
        ))
        if node in expanded:
            steps[-1].part = "?"  # lettered below, in step order
            if node.op.name == "softmax":
                # The per-example loss whose adjoint the cancellation is written with: the root
                # of this expansion (the negation, lettered a).
                ell = next((n for n in expanded if n.op.name == "negative"
                            and was.get(n) is was.get(node)), None)
                steps[-1].rule = SOFTMAX_CANCELS.format(
                    z=tex.get(node.inputs[0], "z"), ell=tex.get(ell, r"\ell"),
                    k=steps[-1].number)
    steps = _in_step_order(steps)
    _letter_parts(steps)
    gathered = {w: plus(t for t, _ in incoming.get(w, [])) for w in targets}
    gathered_text = {w: plus(t for _, t in incoming.get(w, [])) for w in targets}

    from ..simplify import simplify

    # With the origins, zeros the chain rule introduced fold (x * 0 only where no user wrote
    # it); a copy, so that the steps keep the names they were given.
    scratch = Notes(labels=dict(notes.labels), origins=dict(notes.origins))
    simplified = simplify(bare[1:], notes=scratch)
    # In the result only the user's names stay; unnamed intermediates are written out.
    named = {n: s for n, s in tex.items() if n.is_leaf or n in notes.labels}
    named_text = {n: text[n] for n in named}
    shown = [textbook_form(s) for s in simplified]
    results = [
        Result(w, g, s, latex(t, named), text_formula(t, named_text))
        for w, g, s, t in zip(targets, grads, simplified, shown)
    ]
    source, code_lines, code_names = "", {}, {}
    if code:
        source, code_lines, code_names = _generated(y, grads, steps)
    note = None
    if written is not stable:
        note = (latex(written, {}), latex(stable, {}), text_formula(written, {}),
                text_formula(stable, {}))
    return Derivation(stable, targets, forward, steps, results, source, tex, gathered, note,
                      target_name=notes.name(written), gathered_text=gathered_text,
                      code_lines=code_lines, code_names=code_names)


# The softmax step of an expanded softmax_cross_entropy: its Jacobian, and why the rule
# sends p - y (the adjoint it receives is -y / p per example, times the row's adjoint).
SOFTMAX_CANCELS = (
    r"p = \operatorname{{softmax}}(z) \text{{ per example has the Jacobian }} "
    r"\frac{{\partial p}}{{\partial z}} = \operatorname{{diag}}(p) - p \, p^\top"
    r"\text{{, so }} \bar{{z}} = (\operatorname{{diag}}(p) - p \, p^\top) \, \bar{{p}} "
    r"= p \odot (\bar{{p}} - (\bar{{p}} \odot p)\,\mathbf{{1}})"
    r"\text{{. Here }} \bar{{p}} = -\bar{{\ell}} \, y / p \text{{, so }} "
    r"\bar{{z}} = \bar{{\ell}} \, (-y + p \, (\mathbf{{1}}^\top y)) "
    r"= \bar{{\ell}} \, (p - y) \text{{: the rows of }} y \text{{ sum to 1 (}} z = {z}"
    r"\text{{, }} \ell = {ell} \text{{, the example's loss, step {k}a)}}"
)

#: Fused ops `derive` can expand into their definitions.
EXPANDABLE = ("softmax_cross_entropy",)


def expand_fused(y: Expr, ops: Sequence[str], notes: Notes
                 ) -> tuple[Expr, dict[Expr, Expr], set[Expr]]:
    """``y`` with each node of an op in ``ops`` replaced by its definition; a map from each
    rebuilt node to the node it replaces (for its step number), and the definitions' nodes.

    ``softmax_cross_entropy(z, y)`` becomes ``-sum(y * log(p), axis)`` with ``p = softmax(z)``
    (labeled ``p``). Names in ``notes`` move to the rebuilt nodes.
    """
    from ..ops import api

    unknown = [o for o in ops if o not in EXPANDABLE]
    if unknown:
        raise GradientError(
            f"derive: cannot expand {', '.join(map(repr, unknown))}; the fused rules that can "
            f"be expanded are {', '.join(EXPANDABLE)}"
        )
    memo: dict[Expr, Expr] = {}
    was: dict[Expr, Expr] = {}
    parts: set[Expr] = set()
    for node in toposort([y]):
        if node.is_leaf:
            memo[node] = node
            continue
        inputs = [memo[i] for i in node.inputs]
        if node.op.name == "softmax_cross_entropy" and node.op.name in ops:
            z, labels = inputs
            axis = node.attr("axis")
            if labels.dtype != z.dtype:
                raise GradientError(
                    "derive: expand=['softmax_cross_entropy'] needs one-hot labels of the "
                    f"logits' dtype {z.dtype}, got {labels.dtype} class indices; pass "
                    "sd.one_hot(labels, classes) to the loss"
                )
            p = api.softmax(z, axis=axis)
            log_p = api.log(p)
            product = labels * log_p
            row = api.sum(product, axis=axis)
            new = -row
            for part in (p, log_p, product, row, new):
                was[part] = node
                parts.add(part)
            notes.label(p, "p")
        else:
            changed = any(a is not b for a, b in zip(inputs, node.inputs))
            new = node.op.make(*inputs, **node.kwargs) if changed else node
        if new is not node:
            was.setdefault(new, node)
            name = notes.labels.get(node)
            if name is not None:
                notes.label(new, name)
        memo[node] = new
    return memo[y], was, parts


def _letter_parts(steps: list[Step]) -> None:
    """Letter the expanded steps of each fused step a, b, c, ... in step order."""
    count: dict[int | None, int] = {}
    for s in steps:
        if s.part:
            count[s.number] = count.get(s.number, 0) + 1
            s.part = "abcdefghijklmnopqrstuvwxyz"[count[s.number] - 1]


def adjoint_standin(g: Expr) -> Expr:
    """A leaf standing for the adjoint ``g`` in one step's printed rule."""
    from ..ops.base import placeholder

    return placeholder("derivation_adjoint", g.shape, g.dtype)


def rule_sends(node: Expr, standin: Expr, sent: list[tuple[Expr, Expr]]) -> list[Expr]:
    """What ``node``'s rule sends to each input in ``sent``, with ``standin`` as the adjoint.

    The walk's own cotangents are returned if the rule applied to the stand-in does not send
    to the same inputs (a rule whose structure depends on the adjoint's value).
    """
    cotangents = node.op.vjp(standin, node, *node.inputs, **node.kwargs)
    shown: list[Expr] = []
    for x, ct in zip(node.inputs, cotangents):
        if ct is None or len(shown) == len(sent) or sent[len(shown)][0] is not x:
            continue
        shown.append(ct)
    if len(shown) != len(sent) or any(a.shape != b.shape for a, (_, b) in zip(shown, sent)):
        return [ct for _, ct in sent]
    return shown


def stable_walk(y: Expr, wrt: Sequence[Expr], notes: Notes | None = None) -> Walk:
    """The reverse walk of the bare ``y`` in the stable form `grad` differentiates."""
    from ..simplify import stabilize

    return reverse_walk(stabilize([y], notes)[0], wrt)


def _generated(y: Expr, grads: list[Expr], steps: list[Step]
               ) -> tuple[str, dict[int, list[int]], dict[Expr, str]]:
    """Generate the module for (y, grads) and give each step the lines of its block.

    The lines come from the generator's line map (which step each line's block belongs to),
    not from reading the comments back. Returns the source, each step's line numbers, and the
    variable each value the module assigns is held in (``x_W`` for the derivation's ``v1``).
    """
    from codegen.module import assemble

    inputs = leaves([y, *grads])
    parts = assemble({"derivation": (inputs, [y, *grads])}, "derivation")
    blocks = parts.step_lines("derivation")
    for step in steps:
        if step.number is not None:
            step.code = blocks.get(step.number, [])
    # An expanded rule's lines are those of its last part, which sends the fused input's adjoint.
    for step, after in zip(steps, steps[1:]):
        if step.part and after.part and after.number == step.number:
            step.code = []
    text = parts.source.splitlines()
    lines: dict[int, list[int]] = {}
    names: dict[Expr, str] = {}
    for number, info in sorted(parts.lines.items()):
        if info.function != "derivation":
            continue
        if info.step is not None and text[number - 1].strip():
            lines.setdefault(info.step, []).append(number)
        # A statement's first line names what it assigns (``x_W = x @ W``); continuation
        # lines of a broken call name nothing.
        assigned = _ASSIGNED.match(text[number - 1])
        if info.node is not None and assigned and info.node not in names:
            names[info.node] = assigned[1]
    return parts.source, lines, names


_ASSIGNED = re.compile(r"^\s*([A-Za-z_]\w*) = ")


def code_blocks(source: str) -> dict[int, list[str]]:
    """The generated lines under each ``# step k:`` comment (comment included), by k.

    Read from the text, for a module at hand; `derive` uses the generator's line map instead.
    """
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


def cut_at(y: Expr, wrt: Sequence[Expr]) -> tuple[Expr, list[Expr]]:
    """``y`` with each intermediate value in ``wrt`` made a leaf of its name, and the leaves.

    ``d loss / d logits`` is the adjoint of a value, not of a leaf: the graph is cut there, so
    the derivation runs from the loss down to ``logits`` (a placeholder of its shape, named as
    the value is) and its result is written in terms of ``logits``.
    """
    from ..ops.base import Label, placeholder

    cuts: dict[Expr, Expr] = {}
    for k, w in enumerate(wrt):
        if w.is_leaf:
            continue
        name = w.attr("name") if w.op is Label else None
        if name is None:
            raise GradientError(
                f"derive: wrt[{k}] is an unnamed intermediate value ({w.op.name}, shape "
                f"{format_shape(w.shape)}); name it, as in logits = (x @ W + b).named('logits'), "
                "to differentiate with respect to it"
            )
        cuts[w] = placeholder(name, w.shape, w.dtype)
    if not cuts:
        return y, list(wrt)
    for w in cuts:
        below = [v for v in toposort([w]) if v in cuts and v is not w]
        if below:
            raise GradientError(
                f"derive: {w.attr('name')!r} is computed from {below[0].attr('name')!r}, and "
                "the derivation with respect to a value stops at it; derive with respect to "
                "one of them at a time"
            )
    memo: dict[Expr, Expr] = {}
    for node in toposort([y]):
        if node in cuts:
            memo[node] = cuts[node]
        elif node.is_leaf:
            memo[node] = node
        else:
            inputs = [memo[i] for i in node.inputs]
            changed = any(a is not b for a, b in zip(inputs, node.inputs))
            memo[node] = node.op.make(*inputs, **node.kwargs) if changed else node
    return memo[y], [cuts.get(w, w) for w in wrt]


def check_wrt(wrt: Sequence[Expr]) -> None:
    """Refuse an empty ``wrt`` with a message that says what to pass."""
    if not wrt:
        raise GradientError(
            "derive: wrt is empty; pass the leaves to differentiate with respect to"
        )
