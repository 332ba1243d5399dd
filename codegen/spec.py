"""What to generate: the ``{name: (inputs, outputs[, updates])}`` mapping, checked.

`normalize` turns the mapping users pass to `generate` and `compile` into `FunctionSpec`s and
refuses, with an error naming the function and the value, everything that would otherwise fail
only when the generated code runs: a function name that is not a plain identifier, an input
that is not a leaf or is listed twice, an output that depends on a leaf not among the inputs,
an update of the wrong shape or of a placeholder (the caller's data), a symbolic size no input
binds.
"""

from __future__ import annotations

import keyword
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from symdl.errors import CodegenError, InvalidNameError
from symdl.ir import Expr, toposort
from symdl.types import format_shape

# {name: (inputs, outputs)} or {name: (inputs, outputs, updates)}; updates map an input leaf to
# its new value, written into the caller's array in place after every output is computed.
Functions = Mapping[str, tuple]


@dataclass
class FunctionSpec:
    """One function to generate: its name, inputs (leaves) and outputs."""

    name: str
    inputs: list[Expr]
    outputs: list[Expr]
    single: bool  # one output returned bare, not in a tuple
    updates: dict[Expr, Expr] = field(default_factory=dict)  # leaf -> new value, written in place


def normalize(functions: Functions) -> list[FunctionSpec]:
    """Check the ``{name: (inputs, outputs)}`` mapping and turn it into specs."""
    if not isinstance(functions, Mapping) or not functions:
        raise CodegenError(
            "codegen: functions must be a non-empty dict {name: (inputs, outputs)}"
        )
    return [_spec(name, value) for name, value in functions.items()]


def _spec(name: object, value: object) -> FunctionSpec:
    """One checked entry of the mapping."""
    if (
        not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
        or name.startswith("_") or name == "np" or not name.isascii()
    ):
        raise InvalidNameError(
            f"codegen: function name {name!r} must be a plain identifier (letters, digits, "
            "underscores; not a keyword, not starting with '_')"
        )
    try:
        inputs, outputs, *rest = value  # type: ignore[misc]
        updates = dict(rest[0]) if rest else {}
        if len(rest) > 1:
            raise ValueError
    except (TypeError, ValueError):
        raise CodegenError(
            f"codegen: functions[{name!r}] must be (inputs, outputs) or "
            "(inputs, outputs, updates)"
        ) from None
    single = isinstance(outputs, Expr)
    outs = [outputs] if single else list(outputs)
    ins = list(inputs)
    listed = _check_inputs(name, ins)
    for o in outs:
        if not isinstance(o, Expr):
            raise CodegenError(f"codegen: outputs of {name!r} must be expressions, got {o!r}")
    _check_updates(name, updates, listed)
    if not outs and not updates:
        raise CodegenError(f"codegen: {name!r} has no outputs and no updates")
    needed = [
        leaf
        for leaf in toposort([*outs, *updates.values()])
        if leaf.is_leaf and leaf.op.name != "constant"
    ]
    missing = [leaf for leaf in needed if id(leaf) not in listed]
    if missing:
        leaf = missing[0]
        raise CodegenError(
            f"codegen: outputs of {name!r} depend on {leaf.op.name} {leaf.name!r} "
            f"{format_shape(leaf.shape)}, which is not among its inputs; add it to the inputs"
        )
    _check_sizes_bound(name, ins, [*outs, *updates.values()])
    return FunctionSpec(name, ins, outs, single, updates)


def _check_inputs(name: str, inputs: list[Expr]) -> set[int]:
    """Inputs are distinct, distinctly named leaves; returns their ids."""
    for x in inputs:
        if not isinstance(x, Expr) or not x.is_leaf or x.op.name == "constant":
            raise CodegenError(
                f"codegen: inputs of {name!r} must be placeholders or parameters, got {x!r}"
            )
    listed = {id(x) for x in inputs}  # by id: a set lookup per leaf, not a scan of the inputs
    if len(listed) != len(inputs):
        raise InvalidNameError(f"codegen: an input of {name!r} is listed twice")
    counts = Counter(x.name for x in inputs)
    dupes = sorted(n for n, k in counts.items() if k > 1)
    if dupes:
        raise InvalidNameError(
            f"codegen: inputs of {name!r} share the name {dupes[0]!r} with different shapes "
            "or kinds; give each leaf its own name"
        )
    return listed


def _check_updates(name: str, updates: dict[Expr, Expr], listed: set[int]) -> None:
    """Each update maps an input parameter to an expression of the parameter's shape and dtype."""
    for leaf, new in updates.items():
        if id(leaf) not in listed or not isinstance(new, Expr):
            raise CodegenError(
                f"codegen: updates of {name!r} must map input leaves to expressions; "
                f"{leaf!r} is not an input"
            )
        if leaf.op.name == "placeholder":
            # A placeholder is the caller's data (a batch, labels): writing into it would
            # change an array the caller still holds and may feed again.
            raise CodegenError(
                f"codegen: {name!r} updates the placeholder {leaf.name!r}, which would write "
                f"into the caller's input array; only parameters are updated in place. Make it "
                f"sd.parameter({leaf.name!r}, {tuple(leaf.shape)!r}, {leaf.dtype!r}) if "
                f"{name!r} is meant to update it, or return the new value as an output"
            )
        if new.shape != leaf.shape or new.dtype != leaf.dtype:
            raise CodegenError(
                f"codegen: the update of {leaf.name!r} has shape {format_shape(new.shape)} "
                f"{new.dtype}, but the array is {format_shape(leaf.shape)} {leaf.dtype}"
            )


def _check_sizes_bound(name: str, inputs: list[Expr], outputs: list[Expr]) -> None:
    """Every symbolic size the outputs use must be read off an input's shape on entry.

    Otherwise the generated code would fail with a NameError only when called.
    """
    bound = {d for x in inputs for d in x.shape if isinstance(d, str)}
    for node in toposort(outputs):
        used = [d for d in node.shape if isinstance(d, str)]
        if node.op.name == "size":
            used += list(node.attr("symbols"))
        free = [d for d in used if d not in bound]
        if free:
            raise CodegenError(
                f"codegen: {name!r} uses the symbolic size {free[0]!r} ({node.op.name} of shape "
                f"{format_shape(node.shape)}), but no input of {name!r} has it in its shape; add "
                "an input with that size or use a static size"
            )
