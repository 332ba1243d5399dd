"""A finite-difference check beside the symbolic gradient (``symdl derive --check``).

Per parameter ``w`` the page shows the directional derivative along a random unit direction
``u`` twice: from the symbolic gradient, ``<dL/dw, u>``, and as the central difference
``(L(w + h u) - L(w - h u)) / (2 h)``, and their relative error. One direction per parameter
keeps the check at two evaluations of ``L`` whatever ``w``'s size (a 784 x 10 weight matrix
costs what a scalar does), and a wrong entry anywhere in the gradient shows up in it.

The check runs in float64 whatever the model's dtype: the graph is rebuilt on float64 leaves,
because a float32 difference quotient is good to about 1e-3 and would hide small errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..autodiff import grad
from ..ir import Expr, leaves
from .latex import tex_escape

__all__ = ["CheckRow", "GradCheck", "check", "random_values"]

STEP = 1e-6  # h: central differences in float64 err by about h^2 (truncation) + 1e-16/h


@dataclass
class CheckRow:
    """One parameter's check: the two directional derivatives and their relative error."""

    name: str
    symbolic: float
    central: float
    relative_error: float


@dataclass
class GradCheck:
    """The check of every parameter at one point (``seed``: the random draw, None for --at)."""

    rows: list[CheckRow]
    seed: int | None
    step: float = STEP

    def worst(self) -> float:
        """The largest relative error over the parameters."""
        return max((r.relative_error for r in self.rows), default=0.0)

    def to_markdown(self) -> str:
        """A Markdown section: the method in one paragraph, then one table row per parameter."""
        where = (f"random inputs (seed {self.seed})" if self.seed is not None
                 else "the inputs given with --at")
        out = ["## Finite-difference check", "",
               f"On {where}, in float64: for each parameter $w$ and a random unit direction $u$, "
               r"the symbolic $\langle \partial L/\partial w, u\rangle$ beside the central "
               rf"difference $(L(w + h u) - L(w - h u)) / 2h$ with $h = {self.step:g}$.", "",
               "| parameter | symbolic | central difference | relative error |",
               "|---|---:|---:|---:|"]
        out += [f"| `{r.name}` | {r.symbolic:.10g} | {r.central:.10g} | {r.relative_error:.2e} |"
                for r in self.rows]
        return "\n".join(out) + "\n"

    def to_text(self) -> str:
        """The table as plain text."""
        where = f"seed {self.seed}" if self.seed is not None else "at --at"
        out = [f"Finite-difference check (float64, central, h = {self.step:g}, {where}):"]
        out += [f"  {r.name:>10}: symbolic {r.symbolic:.10g}  central {r.central:.10g}  "
                f"relative error {r.relative_error:.2e}" for r in self.rows]
        return "\n".join(out) + "\n"

    def to_latex(self) -> str:
        """The table as a LaTeX ``tabular``."""
        out = [r"\subsection*{Finite-difference check}",
               rf"Central differences in float64, $h = {self.step:g}$, along a random unit "
               r"direction per parameter.", "", r"\begin{tabular}{lrrr}",
               r"parameter & symbolic & central & relative error \\ \hline"]
        out += [rf"{tex_escape(r.name)} & {r.symbolic:.10g} & {r.central:.10g} & "
                rf"{r.relative_error:.2e} \\" for r in self.rows]
        out.append(r"\end{tabular}")
        return "\n".join(out) + "\n"


def _float64(y: Expr) -> tuple[Expr, dict[Expr, Expr]]:
    """``y`` rebuilt on float64 leaves and constants; the map from old leaves to new."""
    from ..ops import api
    from ..provenance import strip_labels
    from ..rewrite import rebuild

    bare = strip_labels([y])[0]
    mapping: dict[Expr, Expr] = {}

    def widen(node: Expr) -> Expr | None:
        if node.dtype != "float32":
            return None
        if node.is_leaf and "dtype" in node.kwargs:  # placeholders and parameters alike
            new = node.op.make(**{**node.kwargs, "dtype": "float64"})
            mapping[node] = new
            return new
        if node.op.name == "constant":
            return api.constant(node.attr("value"), dtype="float64")
        return None

    (wide,) = rebuild([bare], widen)
    for leaf in leaves([bare]):
        mapping.setdefault(leaf, leaf)
    return wide, mapping


def random_values(y: Expr, seed: int = 0, batch: int = 3) -> dict[Expr, np.ndarray]:
    """Seeded inputs for every leaf of ``y``: normal floats (symbolic sizes become ``batch``),
    zeros-and-ones for integer leaves.

    A leaf fed as the labels of an op whose rule needs one kind (the op's `labels` fact:
    ``"one_hot"`` for softmax cross-entropy, whose ``p - y`` holds only for rows summing to one)
    is drawn as one-hot rows: normal labels would fail a gradient that is right.
    """
    from ..ir import toposort
    from ..provenance import strip_labels

    rng = np.random.default_rng(seed)
    labels: dict[Expr, str] = {}
    for n in toposort(strip_labels([y])):
        if n.op.labels is not None and n.inputs[1].is_leaf:
            labels[n.inputs[1]] = n.op.labels
    out: dict[Expr, np.ndarray] = {}
    for leaf in leaves([y]):
        shape = tuple(d if isinstance(d, int) else batch for d in leaf.shape)
        kind = labels.get(leaf)
        if kind == "one_hot" and shape and leaf.dtype.startswith("float"):
            rows = rng.integers(0, shape[-1], size=shape[:-1])
            out[leaf] = np.eye(shape[-1], dtype=leaf.dtype)[rows]
        elif leaf.dtype.startswith("float"):
            out[leaf] = rng.normal(size=shape).astype(leaf.dtype)
        else:
            out[leaf] = rng.integers(0, 2, size=shape).astype(leaf.dtype)
    return out


def check(y: Expr, wrt: Sequence[Expr], values: Mapping[Expr, object] | None = None,
          seed: int = 0) -> GradCheck:
    """Check ``grad(y, wrt)`` against central differences, per parameter, in float64.

    ``values`` ({leaf: array}) fixes the point; without it every leaf is drawn from a normal
    distribution seeded by ``seed`` (symbolic sizes become 3). ``wrt`` holds leaves of ``y`` or
    named values (``logits``), which are cut into leaves as `derive` does.
    """
    from codegen import compile as compile_module

    from .steps import cut_at

    y, wrt = cut_at(y, list(wrt))  # a named value (logits) becomes a leaf, as in `derive`
    grad(y, wrt)  # checks y and wrt, with its error messages
    point = dict(values) if values is not None else random_values(y, seed)
    wide, mapping = _float64(y)
    inputs = leaves([wide])
    by_new = {new: old for old, new in mapping.items()}
    missing = [by_new[n].name for n in inputs if by_new.get(n) not in point]
    if missing:
        raise ValueError(f"check: no value given for {missing}; pass {{leaf: array}} for each")
    params = [mapping[w] for w in wrt]
    module = compile_module({"value": (inputs, [wide]), "grads": (inputs, grad(wide, params))},
                            "fd_check")
    args = {n: np.asarray(point[by_new[n]], dtype=n.dtype) for n in inputs}
    grads = module.grads(*args.values())
    rng = np.random.default_rng(seed + 1)
    rows = []
    for w, p, g in zip(wrt, params, grads):
        u = rng.normal(size=np.shape(args[p]))
        u = u / max(float(np.linalg.norm(u)), 1e-300)
        symbolic = float(np.sum(np.asarray(g) * u))
        plus_args = {**args, p: args[p] + STEP * u}
        minus_args = {**args, p: args[p] - STEP * u}
        (high,) = module.value(*plus_args.values())
        (low,) = module.value(*minus_args.values())
        central = float(high - low) / (2 * STEP)
        # Relative to the larger of the two, floored so that a zero gradient checks as exact.
        scale = max(abs(symbolic), abs(central), 1e-8)
        rows.append(CheckRow(w.name or "?", symbolic, central, abs(symbolic - central) / scale))
    return GradCheck(rows, seed if values is None else None)
