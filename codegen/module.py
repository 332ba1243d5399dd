"""Assembling a generated module: entry checks, statements, provenance comments, docstrings.

Output is straight-line SSA, one statement per value, named from the user's names, deterministic
to the byte (every order follows the graph's input order, never object ids or hash seeds).
"""

from __future__ import annotations

import hashlib
import keyword
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from symdl import __version__
from symdl.errors import CodegenError, InvalidNameError
from symdl.ir import Expr, label_of, schedule, toposort
from symdl.printing import formula
from symdl.rewrite import lower
from symdl.simplify import RewriteLog
from symdl.types import format_shape

from .fuse import Fused, FusionLog, fused_hint, is_large, print_body, writes_into
from .fuse import fuse as run_fusion
from .names import ARITHMETIC_HINTS, Namespace, safe_identifier
from .printer import NumpyPrinter, dtype_text, scalar_literal, sympy_printer

# {name: (inputs, outputs)} or {name: (inputs, outputs, updates)}; updates map an input leaf to
# its new value, written into the caller's array in place after every output is computed.
Functions = Mapping[str, tuple]
HELPER = "_bad_argument"
INLINE_ARRAY_LIMIT = 64
# A block comment writes out subexpressions up to this many characters (longer ones read
# `...`): the formula of a layer deep in a network would otherwise repeat the whole network
# below it, and a module's comments would grow with the square of its depth.
COMMENT_FORMULA_LIMIT = 60


@dataclass
class FunctionSpec:
    """One function to generate: its name, inputs (leaves) and outputs."""

    name: str
    inputs: list[Expr]
    outputs: list[Expr]
    single: bool  # one output returned bare, not in a tuple
    updates: dict[Expr, Expr] = field(default_factory=dict)  # leaf -> new value, written in place


@dataclass
class ModuleParts:
    """What `assemble` produced: the source, and the arrays to store beside the module file
    (``{file name: array}``, saved as ``.npy`` and loaded by the module from its own folder)."""

    source: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


def normalize(functions: Functions) -> list[FunctionSpec]:
    """Check the ``{name: (inputs, outputs)}`` mapping and turn it into specs."""
    if not isinstance(functions, Mapping) or not functions:
        raise CodegenError(
            "codegen: functions must be a non-empty dict {name: (inputs, outputs)}"
        )
    specs = []
    for name, value in functions.items():
        if (
            not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name)
            or name.startswith("_") or name in ("np", HELPER) or not name.isascii()
        ):
            raise InvalidNameError(
                f"codegen: function name {name!r} must be a plain identifier (letters, digits, "
                "underscores; not a keyword, not starting with '_')"
            )
        try:
            inputs, outputs, *rest = value
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
        for x in ins:
            if not isinstance(x, Expr) or not x.is_leaf or x.op.name == "constant":
                raise CodegenError(
                    f"codegen: inputs of {name!r} must be placeholders or parameters, got {x!r}"
                )
        listed = {id(x) for x in ins}  # by id: a set lookup per leaf, not a scan of the inputs
        if len(listed) != len(ins):
            raise InvalidNameError(f"codegen: an input of {name!r} is listed twice")
        counts = Counter(x.name for x in ins)
        dupes = sorted(n for n, k in counts.items() if k > 1)
        if dupes:
            raise InvalidNameError(
                f"codegen: inputs of {name!r} share the name {dupes[0]!r} with different shapes "
                "or kinds; give each leaf its own name"
            )
        for o in outs:
            if not isinstance(o, Expr):
                raise CodegenError(f"codegen: outputs of {name!r} must be expressions, got {o!r}")
        for leaf, new in updates.items():
            if id(leaf) not in listed or not isinstance(new, Expr):
                raise CodegenError(
                    f"codegen: updates of {name!r} must map input leaves to expressions; "
                    f"{leaf!r} is not an input"
                )
            if new.shape != leaf.shape or new.dtype != leaf.dtype:
                raise CodegenError(
                    f"codegen: the update of {leaf.name!r} has shape {format_shape(new.shape)} "
                    f"{new.dtype}, but the array is {format_shape(leaf.shape)} {leaf.dtype}"
                )
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
        specs.append(FunctionSpec(name, ins, outs, single, updates))
    return specs


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


class _FunctionWriter:
    """Writes one function; names are unique within it."""

    def __init__(self, spec: FunctionSpec, module_names: Namespace, consts: dict[Expr, str],
                 arrays: dict[str, np.ndarray], inplace: bool = True) -> None:
        self.spec = spec
        self.inplace = inplace
        self.reuse: dict[Expr, Expr] = {}
        self.module_names = module_names
        self.consts = consts
        self.arrays = arrays
        self.ns = Namespace({HELPER, *module_names_taken(module_names)})
        self.names: dict[Expr, str] = {}
        self.printer = NumpyPrinter()
        self.lines: list[str] = []

    # -------------------------------------------------------------- naming

    def _hint(self, node: Expr) -> str:
        label = label_of(node)
        if label is not None:
            return label
        args = [self.names.get(i, "c") for i in node.inputs]
        op = node.op.name
        if op == "matmul":
            hint = f"{args[0]}_{args[1]}"
        elif op == "transpose":
            hint = f"{args[0]}_T"
        elif op in ("reshape", "broadcast_to", "cast", "index"):
            hint = args[0]
        elif op == "elementwise":
            hint = f"{node.attr('fname')}_{args[0]}"
        elif op == "fused":
            hint = fused_hint(node, args)
        elif op in ARITHMETIC_HINTS:
            hint = ARITHMETIC_HINTS[op]
            if args and len(args[0]) <= 12:
                hint = f"{hint}_{args[0]}" if op == "negative" else hint
        else:
            hint = f"{op}_{args[0]}" if args else op
        if len(hint) > 28:
            hint = op
        return hint

    def name_of(self, node: Expr, context: str | None = None) -> str:
        """The identifier or literal text standing for ``node`` in statements.

        ``context`` is the dtype of the statement using it: a Python number in a float32
        statement prints as its float32 value (`scalar_literal`).
        """
        if node in self.names:
            return self.names[node]
        if node.op.name == "constant":
            return self._constant(node, context)
        raise KeyError(node)

    def _constant(self, node: Expr, context: str | None = None) -> str:
        array = node.attr("value").array
        if array.ndim == 0:
            weak_float = node.attr("weak") and array.dtype.kind == "f"
            literal = scalar_literal(array.item(), context if weak_float else None)
            # A strong scalar keeps its dtype and stays indexable (`np.float32(1.0)[None]`);
            # only a weak one (a Python number in user code) may print as a bare literal.
            return literal if node.attr("weak") else f"{dtype_text(node.dtype)}({literal})"
        if node not in self.consts:
            dims = "x".join(map(str, array.shape))
            name = self.module_names.create(f"_const_{array.dtype}_{dims}")
            self.consts[node] = name
            self.arrays[name] = array
        return self.consts[node]

    # -------------------------------------------------------------- entry checks

    def _entry_checks(self) -> None:
        bound: dict[str, str] = {}
        for x in self.spec.inputs:
            arg = self.names[x]
            conds = [f"isinstance({arg}, np.ndarray)"]
            if x.dtype in ("float32", "float64", "bool"):
                conds.append(f"{arg}.dtype == {dtype_text(x.dtype)}")
            else:
                conds.append(f"{arg}.dtype.kind in 'iu'")
            known = all(isinstance(d, int) or d in bound for d in x.shape)
            new_sizes: list[tuple[str, int]] = []
            if known:
                dims = ", ".join(str(d) if isinstance(d, int) else bound[d] for d in x.shape)
                conds.append(f"{arg}.shape == ({dims}{',' if len(x.shape) == 1 else ''})")
            else:
                conds.append(f"{arg}.ndim == {x.ndim}")
                first: dict[str, int] = {}
                for i, d in enumerate(x.shape):
                    if isinstance(d, int):
                        conds.append(f"{arg}.shape[{i}] == {d}")
                    elif d in bound:
                        conds.append(f"{arg}.shape[{i}] == {bound[d]}")
                    elif d in first:
                        conds.append(f"{arg}.shape[{i}] == {arg}.shape[{first[d]}]")
                    else:
                        first[d] = i
                        new_sizes.append((d, i))
            if x.ndim == 0 and x.dtype in ("float32", "float64"):
                # Scalars such as a learning rate may come as Python numbers.
                self.lines.append(f"    if isinstance({arg}, (int, float)):")
                self.lines.append(f"        {arg} = {dtype_text(x.dtype)}({arg})")
                conds[0] = f"isinstance({arg}, (np.ndarray, np.generic))"
            sizes = ", ".join(f"{d}={bound[d]}" for d in dict.fromkeys(
                d for d in x.shape if isinstance(d, str) and d in bound))
            expected = format_shape(x.shape)
            self.lines.append(f"    if not ({' and '.join(conds)}):")
            call_args = f"{self.spec.name!r}, {x.name!r}, {arg}, {expected!r}, {x.dtype!r}"
            self.lines.append(f"        {HELPER}({call_args}{', ' + sizes if sizes else ''})")
            for d, i in new_sizes:
                # `write` reserved the size's own name: shapes and sizes print it verbatim.
                name = d
                bound[d] = name
                self.lines.append(f"    {name} = {arg}.shape[{i}]")
        self.sizes = bound

    # -------------------------------------------------------------- body

    def write(self, outputs: list[Expr], updates: dict[Expr, Expr],
              display: Mapping[str, Expr]) -> list[str]:
        """The function's lines: signature, docstring, entry checks, statements, return."""
        spec = self.spec
        for d in dict.fromkeys(d for x in spec.inputs for d in x.shape if isinstance(d, str)):
            self.ns.reserve(d)  # a leaf named like a size (`N`) gets `N_1`, not the size's name
        for x in spec.inputs:
            self.names[x] = self.ns.create(x.name or "arg")
        args = ", ".join(self.names[x] for x in spec.inputs)
        self.lines = []
        self._entry_checks()
        order = hoist_scalars(schedule([*outputs, *updates.values()]))
        blocks = _blocks(order, display, [*spec.outputs, *spec.updates.values()],
                         forward_nodes(spec.outputs, outputs))
        self.reuse = plan_buffers(order, outputs, updates) if self.inplace else {}
        self.final_values = set(updates.values())
        current: object = None
        for node in order:
            if node.is_leaf or node in self.names:
                continue
            if node.op.name == "size" and _size_is_bound(node, self.sizes):
                self.names[node] = self.sizes[node.attr("symbols")[0]]
                continue
            block = blocks.get(node)
            if block is not None and block != current:
                current = block
                self.lines.append("")
                self.lines.append(f"    # {comment_text(block[1])}")
            self._statement(node)
        self.lines = _drop_echo_comments(self.lines)
        copies = [(leaf, new) for leaf, new in updates.items()
                  if new is not leaf and buffer_root(new, self.reuse) is not leaf]
        targets = {leaf: self.names[leaf] for leaf, _ in copies}
        self._snapshot_aliases(outputs, copies)
        if copies:
            self.lines.append("")
            self.lines.append("    # update in place")
            for leaf, new in copies:
                self.lines.append(f"    {targets[leaf]}[...] = {self.name_of(new)}")
        self.lines.append("")
        returned = [self._returned(o) for o in outputs]
        if not returned:
            self.lines.append("    return None")
        elif spec.single:
            self.lines.append(f"    return {returned[0]}")
        else:
            tail = "," if len(returned) == 1 else ""
            self.lines.append(f"    return {', '.join(returned)}{tail}")
        header = [f"def {spec.name}({args}):", _docstring(spec, self.names, outputs)]
        return header + self.lines

    def _snapshot_aliases(self, outputs: list[Expr], copies: list[tuple[Expr, Expr]]) -> None:
        """Copy values that are an updated parameter or a view of one before the writes.

        Otherwise a returned ``W`` or ``W.T`` would show the new value, and a swap
        (``a <- b, b <- a``) would read ``a`` after writing it.
        """
        written = {leaf for leaf, _ in copies}
        for node in dict.fromkeys([*outputs, *(new for _, new in copies)]):
            root = node
            while root.op.name in _VIEWS:
                root = root.inputs[0]
            if root in written and node in self.names:
                name = self.ns.create(f"{self.names[node]}_old")
                self.lines.append(f"    {name} = {self.names[node]}.copy()")
                self.names[node] = name

    def _statement(self, node: Expr) -> None:
        # A literal prints as its float32 value where it meets a float32 operand (see
        # `scalar_literal`), not where it meets an integer size first (`0.1 - N`).
        exact = all(i.dtype == node.dtype or i.op.name == "constant" for i in node.inputs)
        literal_dtype = node.dtype if exact else None
        args_text = [self.name_of(i, literal_dtype) for i in node.inputs]
        buffer = self.reuse.get(node)
        if node.op is Fused:
            self._fused_statement(node, buffer, args_text, literal_dtype)
            return
        if buffer is not None:
            self._inplace_statement(node, buffer, args_text)
            return
        stmt = self.printer.statement(node, args_text)
        if isinstance(stmt, list):
            name = self.ns.create(self._hint(node))
            self.lines.extend(f"    {line.format(out=name)}" for line in stmt)
            self.names[node] = name
        else:
            self._assign(node, stmt)

    def _assign(self, node: Expr, value: str) -> None:
        """``name = value`` for ``node``; a scalar made of Python numbers keeps its dtype."""
        if _scalar_only(node):
            value = f"{dtype_text(node.dtype)}({value})"
        name = self.ns.create(self._hint(node))
        self.lines.append(f"    {name} = {value}")
        self.names[node] = name

    def _fused_statement(
        self, node: Expr, buffer: Expr | None, args: list[str], literal_dtype: str | None
    ) -> None:
        """A fused body: its repeated parts first (``sympy.cse``), then the result."""
        final = buffer is not None and self._is_final_write(node, buffer)
        out = None if buffer is None else self.names[buffer]
        lines, value = print_body(
            node, args, out, self.ns.create, sympy_printer, literal_dtype, final=final
        )
        self.lines.extend(f"    {line}" for line in lines)
        if final:
            self.lines.append(f"    {value}")
            self.names[node] = self.names[buffer]  # type: ignore[index]
        else:
            self._assign(node, value)

    def _is_final_write(self, node: Expr, buffer: Expr) -> bool:
        """Whether ``node`` is a parameter's new value written into the parameter itself."""
        return buffer.is_leaf and self.spec.updates.get(buffer) is not None and (
            buffer_root(node, self.reuse) is buffer and node in self.final_values
        )

    def _inplace_statement(self, node: Expr, buffer: Expr, args: list[str]) -> None:
        """Write ``node`` into the dead array ``buffer`` (a temporary, or a parameter updated)."""
        out = self.names[buffer]
        if self._is_final_write(node, buffer):
            # The final value of a parameter update: an augmented assignment reads best.
            infix = node.op.infix
            if infix is not None and len(args) == 2 and args[0] == out:
                self.lines.append(f"    {out} {infix}= {_operand_text(args[1])}")
            elif infix in ("+", "*") and len(args) == 2 and args[1] == out:
                self.lines.append(f"    {out} {infix}= {_operand_text(args[0])}")
            else:
                self.lines.append(f"    {node.op.inplace.format(*args, out=out)}")
            self.names[node] = out
            return
        name = self.ns.create(self._hint(node))
        self.lines.append(f"    {name} = {node.op.inplace.format(*args, out=out)}")
        self.names[node] = name

    def _returned(self, o: Expr) -> str:
        if o.op.name == "constant" and o not in self.names:
            value = self.name_of(o)
            name = self.ns.create("constant")
            self.lines.append(f"    {name} = np.array({value}, dtype={dtype_text(o.dtype)})")
            self.names[o] = name
        return self.names[o]


def comment_text(text: str) -> str:
    """``text`` safe inside a ``#`` comment: a newline in a user's label must not start code."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def module_names_taken(ns: Namespace) -> set[str]:
    return set()


_VIEWS = ("reshape", "transpose", "broadcast_to", "index")


def _drop_echo_comments(lines: list[str]) -> list[str]:
    """Drop a block comment that says what its one statement says (``np.`` aside).

    Consecutive such blocks (``step_new = step + 1.0``, ``eps_hat = 1e-08 * root_bc2``) then
    read as one block, without blank lines between them.
    """
    kept: list[str] = []
    echo_ends = -1  # index in `kept` of the last statement whose comment was dropped
    for i, line in enumerate(lines):
        text = line.strip()
        if (
            text.startswith("# ") and i + 1 < len(lines)
            and lines[i + 1].strip().replace("np.", "") == text[2:]
            and (i + 2 == len(lines) or not lines[i + 2].strip())
        ):
            if len(kept) >= 2 and not kept[-1].strip() and echo_ends == len(kept) - 2:
                kept.pop()  # the blank line between two echo blocks
            echo_ends = len(kept)
            continue
        kept.append(line)
    return kept


def hoist_scalars(order: list[Expr]) -> list[Expr]:
    """Scalars computed from scalar inputs alone move to the front, in their order.

    Adam's step count, bias corrections and step size then read as a person writes them:
    once, before the arrays, not interleaved with the first parameter's update.
    """
    early: set[Expr] = set()
    for n in order:
        if n.shape == () and not n.is_leaf and all(
            i in early or (i.is_leaf and i.shape == ()) for i in n.inputs
        ):
            early.add(n)
    return [n for n in order if n in early] + [n for n in order if n not in early]


def plan_buffers(
    order: list[Expr], outputs: list[Expr], updates: Mapping[Expr, Expr]
) -> dict[Expr, Expr]:
    """Which statements can write into an existing array instead of allocating a new one.

    A statement of an elementwise op may reuse an input's array when that array is a
    temporary of the same shape and dtype that nothing reads afterwards (neither the value,
    nor a view of it, nor a value already sharing its memory); the final value of a parameter
    update may be written straight into the parameter once the old value is no longer read.
    Failing those, it takes any temporary of its shape and dtype that died earlier, as a careful
    person reuses one scratch array: fresh large arrays cost page faults on every call.
    Returns {node: the node whose array it reuses}.
    """
    statements = [n for n in order if not n.is_leaf and n.op.name != "size"]
    index = {n: i for i, n in enumerate(statements)}
    end = len(statements)
    last_use: dict[Expr, int] = {}
    for i, n in enumerate(statements):
        for x in n.inputs:
            last_use[x] = i
    kept = set(outputs) | set(updates.values())
    for n in kept:
        last_use[n] = end
    targets = {new: leaf for leaf, new in updates.items()}
    root: dict[Expr, Expr] = {}
    sharing: dict[Expr, list[Expr]] = {}
    views: set[Expr] = set()
    scratch: list[Expr] = []  # arrays made by statements, in order: reusable once dead

    def root_of(n: Expr) -> Expr:
        return root.get(n, n)

    def free_after(buffer_root: Expr, i: int) -> bool:
        return all(last_use.get(m, -1) <= i for m in sharing.get(buffer_root, [buffer_root]))

    def may_hold(n: Expr, buffer_root: Expr) -> bool:
        # A parameter's array may hold temporaries, and finally its own new value, but never
        # another kept value: the parameter's final write would overwrite it.
        return not buffer_root.is_leaf or n not in kept or targets.get(n) is buffer_root

    plan: dict[Expr, Expr] = {}
    for n in statements:
        i = index[n]
        if n.op.name in _VIEWS:
            root[n] = root_of(n.inputs[0])
            views.add(n)
        if _writes_into(n) and n.shape != ():
            own = targets.get(n)
            candidates: list[Expr] = [] if own is None else [own]
            for x in n.inputs:
                if x in views or x in kept or x.op.name in ("size", "constant"):
                    continue
                if x.is_leaf and x not in updates:
                    continue  # the caller's data is never written
                if _alias(x):
                    continue  # prints as its argument: an alias, not a fresh array
                candidates.append(x)
            for x in candidates:
                if (
                    x.shape == n.shape and x.dtype == n.dtype and may_hold(n, root_of(x))
                    and free_after(root_of(x), i)
                ):
                    plan[n] = x
                    root[n] = root_of(x)
                    break
            else:
                # A dead scratch array; strictly dead (``i - 1``) so that no input reads it.
                for r in reversed(scratch):
                    if r.shape == n.shape and r.dtype == n.dtype and free_after(r, i - 1):
                        plan[n] = r
                        root[n] = r
                        break
        if n not in plan and n not in views and _fresh_array(n):
            scratch.append(n)
        sharing.setdefault(root_of(n), [root_of(n)]).append(n)
    return plan


def _fresh_array(node: Expr) -> bool:
    """Whether ``node``'s statement makes a large new array that later statements may reuse.

    Only large arrays (`is_large`) are worth it: reusing small ones buys nothing and would only
    obscure the code.
    """
    if node.shape == () or node.op.name in ("size", "constant") or _alias(node):
        return False
    return is_large(node.shape)


def _writes_into(node: Expr) -> bool:
    """Whether ``node``'s statement can write into an existing array (``out=``)."""
    if node.op is Fused:
        return writes_into(node)
    return node.op.inplace is not None


def _alias(node: Expr) -> bool:
    """A sympy body that is just its argument prints as that name: no array of its own."""
    return node.op.name == "elementwise" and node.attr("body").is_Symbol


def buffer_root(node: Expr, plan: Mapping[Expr, Expr]) -> Expr:
    """The node whose array ``node``'s value ends up in, following buffer reuse."""
    while node in plan:
        node = plan[node]
    return node


def _operand_text(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def _size_is_bound(node: Expr, sizes: Mapping[str, str]) -> bool:
    return node.attr("static") == 1 and len(node.attr("symbols")) == 1 and (
        node.attr("symbols")[0] in sizes
    )


def _scalar_only(node: Expr) -> bool:
    """A float scalar computed from Python numbers only: wrap it so it keeps its dtype."""
    return (
        node.shape == ()
        and node.dtype in ("float32", "float64")
        and all(i.op.name in ("constant", "size") for i in node.inputs)
        and node.op.name not in ("size",)
    )


def forward_nodes(raw_outputs: list[Expr], outputs: list[Expr]) -> set[Expr]:
    """The nodes computing this function's forward outputs (the loss, metrics), as printed.

    ``outputs`` are ``raw_outputs`` after simplification and lowering. Such a node is forward
    here even if another graph's derivative rule once built the same (hash-consed) node.
    """
    from symdl.derive.steps import is_forward

    return set(toposort([o for o, r in zip(outputs, raw_outputs) if is_forward(r)]))


def _blocks(
    order: list[Expr], display: Mapping[str, Expr], raw: list[Expr] | None = None,
    forward: set[Expr] | None = None,
) -> dict[Expr, tuple[str, str]]:
    """The comment block each statement belongs to.

    Gradient statements belong to the forward node whose rule built them (``grad of: ...``);
    forward statements (and every node in ``forward``) belong to the first labeled node that
    uses them (``logits = ...``). Formulas are printed from ``display``, the graph before
    lowering, as the user wrote it. Gradient blocks carry the derivation's step number, counted
    on ``raw``, the graph before simplification (rewrites may remove a step's code, never
    renumber the others).
    """
    from symdl.derive.steps import forward_anchors, graph_origins, step_numbers

    names = {node: label for label, node in display.items()}
    raw = raw or []
    anchors = forward_anchors(raw)  # the loss in stable form: computed once for both below
    steps = step_numbers(raw, anchors)  # the derivation's numbering, ``# step k:``
    resolve = graph_origins(raw, anchors)
    forward = forward or set()
    origin = {node: None if node in forward else resolve(node) for node in order}
    blocks: dict[Expr, tuple[str, str]] = {}
    owner: dict[Expr, Expr] = {}
    for node in reversed(order):
        if node.is_leaf or origin[node] is not None:
            continue
        if label_of(node) in display:
            owner[node] = node
        users_owner = owner.get(node)
        if users_owner is None:
            continue
        for i in node.inputs:
            if i not in owner and label_of(i) not in display and origin.get(i) is None:
                owner[i] = users_owner
    texts: dict[Expr, str] = {}  # a block's statements share its formula: written once
    for node in order:
        forward = origin[node]
        if forward is not None:
            if forward not in texts:
                texts[forward] = formula(forward, names, limit=COMMENT_FORMULA_LIMIT)
            text = texts[forward]
            if forward.name:
                text = f"{forward.name} = {text}"
            step = f"step {steps[forward]}: " if forward in steps else ""
            blocks[node] = ("grad", f"{step}grad of: {text}")
        elif node in owner:
            label = owner[node].name or ""
            shown = display.get(label, owner[node])
            if shown not in texts:
                texts[shown] = formula(shown, names, limit=COMMENT_FORMULA_LIMIT)
            blocks[node] = ("fwd", f"{label} = {texts[shown]}")
    return blocks


def _docstring(spec: FunctionSpec, names: Mapping[Expr, str], outputs: list[Expr]) -> str:
    width = max(len(names[x]) for x in [*spec.inputs, *outputs]) if outputs or spec.inputs else 1
    lines = ['    """Generated by symdl.', "", "    Args:"]
    for x in spec.inputs:
        lines.append(f"        {names[x]:<{width}}  {x.dtype} {format_shape(x.shape)}  {x.op.name}")
    if spec.updates:
        lines.append("    Updates in place: " + ", ".join(names[x] for x in spec.updates))
    lines.append("    Returns:")
    for o in outputs:
        lines.append(f"        {names[o]:<{width}}  {o.dtype} {format_shape(o.shape)}")
    lines.append('    """')
    return "\n".join(lines)


HELPER_SOURCE = f'''
def {HELPER}(function, name, value, shape, dtype, **sizes):
    """Raise the ValueError for an argument of the wrong kind, shape or dtype."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        got = f"an array of shape {{tuple(value.shape)}} and dtype {{value.dtype}}"
    else:
        got = f"a {{type(value).__name__}}"
    bound = "".join(f", {{k}} = {{v}}" for k, v in sizes.items())
    raise ValueError(
        f"{{function}}(): argument {{name!r}} must be a numpy array of shape {{shape}}{{bound}} "
        f"and dtype {{dtype}}; got {{got}}"
    )
'''


def prepare(
    outputs: list[Expr], simplify: bool, fuse: bool | None = None,
    fusion_log: FusionLog | None = None, rewrite_log: RewriteLog | None = None,
) -> tuple[list[Expr], list[Expr]]:
    """The graph passes before printing: simplification, lowering of composite ops, fusion.

    ``fuse`` (default: as ``simplify``) merges elementwise chains into sympy bodies. The logs,
    when given, record the rewrites that fired and what fusion did.
    Returns the graph before lowering (for comments, as the user wrote it) and after.
    """
    fuse = simplify if fuse is None else fuse
    if not simplify:
        lowered = lower(outputs)
    else:
        from symdl.simplify import simplify as run_simplify
        from symdl.simplify import tidy

        outputs = run_simplify(outputs, rewrite_log)
        lowered = tidy(lower(outputs), rewrite_log)
    return outputs, run_fusion(lowered, fusion_log) if fuse else lowered


def assemble(functions: Functions, name: str, *, simplify: bool = True,
             external_arrays: bool = False, fuse: bool | None = None,
             inplace: bool | None = None, fusion_log: FusionLog | None = None,
             rewrite_log: RewriteLog | None = None) -> ModuleParts:
    """Generate the source of a module holding ``functions``.

    With ``external_arrays`` (what `compile` uses), constants of more than
    `EXTERNAL_ARRAY_LIMIT` elements are not printed: the module loads them from ``.npy`` files
    named by their content hash beside it (returned in ``arrays``). Otherwise (`generate`) every
    constant is printed inline, so the source stands alone. ``fuse`` and ``inplace`` (both
    default to ``simplify``) switch off elementwise fusion and buffer reuse, and the logs
    record what the passes did, for the report.
    """
    specs = normalize(functions)
    module_ns = Namespace({HELPER, *(s.name for s in specs)})
    consts: dict[Expr, str] = {}
    arrays: dict[str, np.ndarray] = {}
    bodies: list[str] = []
    summaries: list[str] = []
    for spec in specs:
        leaves = list(spec.updates)
        for leaf, new in spec.updates.items():
            new.named(f"{leaf.name}_new")
        shown, lowered = prepare([*spec.outputs, *spec.updates.values()], simplify, fuse,
                                 fusion_log, rewrite_log)
        display = {n.name: n for n in toposort(shown) if n.name is not None and not n.is_leaf}
        outputs = lowered[: len(spec.outputs)]
        updates = dict(zip(leaves, lowered[len(spec.outputs) :]))
        writer = _FunctionWriter(spec, module_ns, consts, arrays,
                                 inplace=simplify if inplace is None else inplace)
        bodies.append("\n".join(writer.write(outputs, updates, display)))
        summaries.append(_summary(spec, writer.names, outputs))
    header = [
        f'"""{safe_identifier(name)}: generated by symdl {__version__}. Do not edit; '
        "regenerate from the model.",
        "",
        *summaries[:-1],
        summaries[-1].rstrip("\n"),
        '"""',
        "",
        "import numpy as np",
    ]
    const_lines: list[str] = []
    files: dict[str, np.ndarray] = {}
    for cname, value in arrays.items():
        if external_arrays and value.size > EXTERNAL_ARRAY_LIMIT:
            # The file name is the array's content hash, so the module's own hash covers it.
            fname = f"{safe_identifier(name)}_{array_digest(value)}.npy"
            files[fname] = value
            if not any(line.startswith("_HERE = ") for line in const_lines):
                const_lines.append(HERE_LINE)
            const_lines.append(f"{cname} = np.load(_HERE + {fname!r}, allow_pickle=False)")
        else:
            const_lines.append(
                f"{cname} = np.array({array_text(value)}, dtype={dtype_text(value.dtype.name)})"
            )
    parts = header + (["", *const_lines] if const_lines else []) + ["", "", ""]
    source = "\n".join(parts) + "\n\n\n".join(bodies) + "\n\n" + HELPER_SOURCE
    return ModuleParts(source=source, arrays=files)


EXTERNAL_ARRAY_LIMIT = 1000
# The module's folder, from __file__ alone (the generated module imports numpy only).
HERE_LINE = '_HERE = __file__[: max(__file__.rfind("/"), __file__.rfind("\\\\")) + 1]'


def array_digest(value: np.ndarray) -> str:
    """Content hash of an array (dtype, shape and bytes) that names its ``.npy`` file."""
    h = hashlib.sha256(f"{value.dtype.str}{value.shape}".encode())
    h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def array_text(value: np.ndarray) -> str:
    """Exact nested-list text of an array; NaN and inf spelled as ``np.nan`` and ``np.inf``."""
    if value.ndim == 0:
        return scalar_literal(value.item())
    return "[" + ", ".join(array_text(v) for v in value) + "]"


def _summary(spec: FunctionSpec, names: Mapping[Expr, str], outputs: list[Expr]) -> str:
    out_names = [names[o] for o in outputs]
    args = ", ".join(names[x] for x in spec.inputs)
    rets = ", ".join(out_names)
    lines = [f"{spec.name}({args}) -> {rets if spec.single else '(' + rets + ')'}"]
    for x in spec.inputs:
        lines.append(f"    {names[x]}: {x.dtype} {format_shape(x.shape)}")
    for o, n in zip(outputs, out_names):
        lines.append(f"    -> {n}: {o.dtype} {format_shape(o.shape)}")
    return "\n".join(lines) + "\n"


