"""Writing one generated function: names, entry checks, statements, comments, docstring.

`FunctionWriter` prints a `Program` (a function's graph after the passes, `codegen.pipeline`)
as straight-line SSA: one statement per value, named from the user's names (`codegen.names`),
each block under a comment naming the expression it computes (``# logits = x @ W + b``,
``# step 3: grad of: ...``). Every line it writes knows the node whose statement it is and the
derivation step its block belongs to (`Line`), so derivations find a step's code in that map,
never by reading comments back.
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from symdl.ir import Expr
from symdl.printing import formula
from symdl.provenance import Notes
from symdl.types import INT_DTYPES, format_shape

from .blas import GEMM_HELPER, Fold
from .checks import HELPERS, entry_checks, index_checks
from .fuse import Fused, print_body
from .layout import LINE_LIMIT, wrap, wrap_text
from .names import Namespace
from .numba_backend import KernelWriter, compiles, update_groups
from .pipeline import Program
from .printer import NumpyPrinter, dtype_text, scalar_literal, sympy_printer
from .schedule import array_root, buffer_root, frees, views_used_once
from .spec import FunctionSpec

# A block comment writes out subexpressions up to this many characters (longer ones read
# `...`): the formula of a layer deep in a network would otherwise repeat the whole network
# below it, and a module's comments would grow with the square of its depth.
COMMENT_FORMULA_LIMIT = 60


@dataclass(frozen=True)
class Line:
    """One generated line, with the node whose statement it belongs to (None for comments,
    checks and blank lines) and the derivation step of its block (None outside gradients)."""

    text: str
    node: Expr | None = None
    step: int | None = None


@dataclass(frozen=True)
class Block:
    """A comment block: its text and, for gradient code, the derivation step it belongs to."""

    text: str
    step: int | None = None


class FunctionWriter:
    """Writes one function from its `Program` (after the passes); names are unique within it.

    Module-level names (constants) come from ``module_names``; constants are collected in
    ``consts`` and ``arrays`` for the assembler.
    """

    def __init__(self, spec: FunctionSpec, program: Program, module_names: Namespace,
                 consts: dict[Expr, str], arrays: dict[str, np.ndarray],
                 inline_views: bool = True, check: bool = True,
                 kernels: KernelWriter | None = None) -> None:
        self.spec = spec
        self.kernels = kernels  # the numba backend's kernels (None: numpy only)
        self.check = check  # off: no entry checks, only the reads binding symbolic sizes
        self.program = program
        self.notes = program.notes
        self.inline_views = inline_views  # off: one statement per value (the raw derivative)
        self.reuse: Mapping[Expr, Expr] = program.reuse
        self.module_names = module_names
        self.consts = consts
        self.arrays = arrays
        self.ns = Namespace(set(HELPERS))
        self.names: dict[Expr, str] = {}
        self.inline: dict[Expr, str] = {}  # views printed at their one use: their text
        self.printer = NumpyPrinter()
        self.lines: list[Line] = []
        self.block: Block | None = None  # the comment block statements are emitted into
        self.folds_updates = bool(program.folds)  # the module then defines `_gemm_update`
        self.inline_once: set[Expr] = set()  # views printed at their one use (`write` sets it)

    # -------------------------------------------------------------- naming

    def _hint(self, node: Expr) -> str:
        label = self.notes.labels.get(node)
        if label is not None:
            return label
        args = [self.names.get(i, "c") for i in node.inputs]
        return node.op.name_hint(args, node.kwargs)

    def name_of(self, node: Expr, context: str | None = None) -> str:
        """The identifier, literal or inlined view text standing for ``node`` in statements.

        ``context`` is the dtype of the statement using it: a Python number in a float32
        statement prints as its float32 value (`scalar_literal`).
        """
        if node in self.inline:
            return self.inline[node]
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
            # Module globals start with "_", which no generated local can (`safe_identifier`
            # strips leading underscores): a leaf or label can never shadow a constant.
            name = "_" + self.module_names.create(f"const_{array.dtype}_{dims}")
            self.consts[node] = name
            self.arrays[name] = array
        return self.consts[node]

    # -------------------------------------------------------------- entry checks

    def _emit(self, text: str, node: Expr | None = None) -> None:
        """Append a line (``text`` indented as in the body) of ``node``'s statement."""
        step = None if self.block is None else self.block.step
        self.lines.append(Line(text, node, step))

    # -------------------------------------------------------------- body

    def write(self, display: Mapping[str, Expr]) -> tuple[list[str], list[Line]]:
        """The function's header (signature and docstring) and its body's lines.

        ``display`` maps names to the nodes of the graph before lowering, which comments show.
        """
        spec, program = self.spec, self.program
        outputs, updates = list(program.results), program.updates
        for d in dict.fromkeys(d for x in spec.inputs for d in x.shape if isinstance(d, str)):
            self.ns.reserve(d)  # a leaf named like a size (`N`) gets `N_1`, not the size's name
        for x in spec.inputs:
            self.names[x] = self.ns.create(x.name or "arg")
        args = ", ".join(self.names[x] for x in spec.inputs)
        checks, self.sizes, size_reads = entry_checks(spec, self.names)
        indices = index_checks(spec, self.names, self.sizes) if self.check else []
        if not self.check:
            checks = list(size_reads.values())  # `N = x.shape[0]`: the body still needs sizes
        self.lines = [Line(line) for line in [*checks, *indices]]
        order = list(program.order)
        blocks = _blocks(order, display, self.notes, set(program.forward))
        self.final_values = set(updates.values())
        kept = [*outputs, *updates.values()]
        inline = views_used_once(order, kept, self.notes.labels) if self.inline_views else set()
        # The numba backend sums a kernel's body as it computes it, never storing it.
        self.summed = (_summed_kernels(order, kept, self.reuse, display, self.notes.labels)
                       if self.kernels else {})
        folds, dots = program.folds, program.dots
        skipped = {x for fold in (*folds.values(), *dots.values()) for x in fold.skipped}
        relocated = {x: n for n, fold in (*folds.items(), *dots.items()) for x in fold.skipped}
        freed = frees(order, self.reuse, set(kept), relocated) if self.inline_views else {}
        # The numba backend computes an optimizer's updates of one parameter in one loop.
        groups = update_groups(
            order,
            lambda n: not (n.is_leaf or n in skipped or n in self.summed or n in inline
                           or (n.op.name == "size" and _size_is_bound(n, self.sizes))),
            self._kernel_target, lambda x: array_root(x, self.reuse),
        ) if self.kernels else {}
        grouped = {m for members in groups.values() for m in members[1:]}
        self.inline_once = inline
        for node in order:
            if (node.is_leaf or node in self.names or node in skipped
                    or node in self.summed or node in grouped):
                continue
            if node.op.name == "size" and _size_is_bound(node, self.sizes):
                self.names[node] = self.sizes[node.attr("symbols")[0]]
                continue
            if node in inline:
                self._inline_view(node)
                continue
            # A folded update prints in the block of the product it replaces (its derivation
            # step keeps its code).
            block = blocks.get(folds[node].skipped[0] if node in folds else node)
            if block is not None and block != self.block:
                self.block = None
                self._emit("")  # the blank line between blocks belongs to neither
                self.block = block
                self._emit(f"    # {comment_text(block.text)}")
            if node in groups:
                self._group_statement(groups[node], blocks)
                for member in groups[node][1:]:
                    if member in freed:
                        self._free(freed[member], skipped)
            elif node in folds:
                self._gemm_statement(node, folds[node])
            elif node in dots:
                dot = dots[node]
                # The product keeps the name it would have had (``prod``): the sum's is made
                # from it (``sum_prod``), as if it were printed.
                self.names[dot.skipped[0]] = self._hint(dot.skipped[0])
                self._assign(node, f"np.vdot({self.name_of(dot.a)}, {self.name_of(dot.b)})")
            else:
                self._statement(node)
            if node in freed:
                self._free(freed[node], skipped)
        self.block = None
        self.lines = _drop_echo_comments(self.lines)
        copies = [(leaf, new) for leaf, new in updates.items()
                  if new is not leaf and new not in folds
                  and buffer_root(new, self.reuse) is not leaf]
        targets = {leaf: self.names[leaf] for leaf, _ in copies}
        self._snapshot_aliases(outputs, copies)
        if copies:
            self._emit("")
            self._emit("    # update in place")
            for leaf, new in copies:
                self._emit(f"    {targets[leaf]}[...] = {self.name_of(new)}", new)
        self._emit("")
        returned = [self._returned(o) for o in outputs]
        if not returned:
            self._emit("    return None")
        elif spec.single:
            self._emit(f"    return {returned[0]}")
        else:
            tail = "," if len(returned) == 1 else ""
            self._emit(f"    return {', '.join(returned)}{tail}")
        unused = _unused_sizes([line.text for line in self.lines], size_reads)
        body = [line for line in self.lines if line.text not in unused]
        header = [*wrap(f"def {spec.name}({args}):"), _docstring(spec, self.names, outputs)]
        wrapped = [Line(piece, line.node, line.step) for line in body for piece in wrap(line.text)]
        return header, wrapped

    def _snapshot_aliases(self, outputs: list[Expr], copies: list[tuple[Expr, Expr]]) -> None:
        """Copy values that are an updated parameter or a view of one before the writes.

        Otherwise a returned ``W`` or ``W.T`` would show the new value, and a swap
        (``a <- b, b <- a``) would read ``a`` after writing it.
        """
        written = {leaf for leaf, _ in copies}
        for node in dict.fromkeys([*outputs, *(new for _, new in copies)]):
            root = node
            while root.op.is_view:
                root = root.inputs[0]
            if root in written and node in self.names:
                name = self.ns.create(f"{self.names[node]}_old")
                self._emit(f"    {name} = {self.names[node]}.copy()", node)
                self.names[node] = name

    def _statement(self, node: Expr) -> None:
        if self.kernels is not None and node.inputs and node.inputs[0] in self.summed:
            fused = node.inputs[0]  # a sum of a kernel's body: one reduction kernel
            args = [self.name_of(i, node.dtype) for i in fused.inputs]
            # Unbound, as an inline view's: the name the sum's own is made from (sum_prod).
            self.names[fused] = self._hint(fused)
            self._assign(node, self.kernels.reduction_call(node, fused, args, self._hint(node)))
            return
        literal_dtype = _literal_dtype(node)
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
            for line in stmt:
                self._emit(f"    {line.format(out=name)}", node)
            self.names[node] = name
        else:
            self._assign(node, stmt)

    def _free(self, values: list[Expr], skipped: set[Expr]) -> None:
        """``del`` the names bound to ``values`` (arrays the rest of the step never reads)."""
        names = dict.fromkeys(
            self.names[v] for v in values
            if v in self.names and v not in self.inline and v not in skipped
            and v not in self.summed  # summed inside a numba kernel: never bound
            and self.names[v].isidentifier()
        )
        # As few ``del`` lines as fit the line limit (a del statement has nothing to wrap at);
        # they belong to their block's step, to no node.
        line = ""
        for name in names:
            if line and len(f"{line}, {name}") > LINE_LIMIT:
                self._emit(line)
                line = ""
            line = f"{line}, {name}" if line else f"    del {name}"
        if line:
            self._emit(line)

    def _gemm_statement(self, node: Expr, fold: Fold) -> None:
        """``W -= s * (A.T @ G)`` written into ``W`` by one gemm (`codegen.blas`)."""
        w, a, g = self.names[fold.leaf], self.name_of(fold.a), self.name_of(fold.g)
        scale = self.name_of(fold.scale, node.dtype)
        alpha = f"-{scale}" if scale.isidentifier() or _is_number(scale) else f"-({scale})"
        a_t = f"{a}.T" if a.isidentifier() else f"({a}).T"
        self._emit(f"    # {w} -= {_operand_text(scale)} * ({a_t} @ {g}), as one gemm into {w}")
        self._emit(f"    {GEMM_HELPER}({w}, {a}, {g}, {alpha})", node)
        self.names[node] = w

    def _inline_view(self, node: Expr) -> None:
        """Print the view ``node`` where it is used (``x.T @ logits_bar``), not on a line.

        Its text is a primary expression (``x.T``, ``x[:, None]``, ``x.reshape((N,))``), safe
        as an operand anywhere. ``names`` keeps the name it would have had, which later names
        are made from (``x_T_logits_bar``); nothing binds it, so it takes no name from others.
        """
        args_text = [self.name_of(i) for i in node.inputs]
        self.inline[node] = self.printer.statement(node, args_text)  # type: ignore[assignment]
        self.names[node] = self._hint(node)

    def _assign(self, node: Expr, value: str) -> None:
        """``name = value`` for ``node``; a scalar made of Python numbers keeps its dtype."""
        if _scalar_only(node):
            value = f"{dtype_text(node.dtype)}({value})"
        name = self.ns.create(self._hint(node))
        self._emit(f"    {name} = {value}", node)
        self.names[node] = name

    def _fused_statement(
        self, node: Expr, buffer: Expr | None, args: list[str], literal_dtype: str | None
    ) -> None:
        """A fused body: its repeated parts first (``sympy.cse``), then the result."""
        final = buffer is not None and self._is_final_write(node, buffer)
        if self.kernels is not None and compiles(node) and not self._reads_view_of(node, buffer):
            out = None if buffer is None else self.name_of(buffer)
            call = self.kernels.call(node, args, self._hint(node), out)
            if final:
                self._emit(f"    {call}", node)
                self.names[node] = self.names[buffer]  # type: ignore[index]
            else:
                self._assign(node, call)
            return
        out = None if buffer is None else self.name_of(buffer)
        lines, value = print_body(
            node, args, out, self.ns.create, sympy_printer, literal_dtype, final=final
        )
        for line in lines:
            self._emit(f"    {line}", node)
        if final:
            self._emit(f"    {value}", node)
            self.names[node] = self.names[buffer]  # type: ignore[index]
        else:
            self._assign(node, value)

    def _kernel_target(self, node: Expr) -> Expr | None:
        """The parameter ``node`` is a numba kernel's final write into, else None."""
        buffer = self.reuse.get(node)
        if (buffer is None or node.op is not Fused or not compiles(node)
                or not self._is_final_write(node, buffer) or self._reads_view_of(node, buffer)):
            return None
        return buffer

    def _group_statement(self, members: list[Expr], blocks: Mapping[Expr, Block]) -> None:
        """Final writes merged into one numba kernel (`numba_backend.update_groups`): the
        comment of each (the first one's is out already, as for any statement), then one
        call."""
        args: list[list[str]] = []
        targets: list[str] = []
        for member in members:
            block = blocks.get(member)
            if block is not None and block != self.block:
                self.block = block
                self._emit(f"    # {comment_text(block.text)}")
            for x in member.inputs:
                self._inline_views_of(x)  # a view printed after the first member, in order
            args.append([self.name_of(i, _literal_dtype(member)) for i in member.inputs])
            targets.append(self.name_of(self.reuse[member]))
            # Written into its parameter: later members (and statements) read it there.
            self.names[member] = targets[-1]
        assert self.kernels is not None
        call = self.kernels.group_call(members, args, targets, self._hint(members[-1]))
        self._emit(f"    {call}", members[-1])

    def _inline_views_of(self, x: Expr) -> None:
        """Give ``x`` its inline text now if it is a view printed at its use and has none yet
        (its own inputs first)."""
        if x in self.inline_once and x not in self.inline:
            for i in x.inputs:
                self._inline_views_of(i)
            self._inline_view(x)

    def _reads_view_of(self, node: Expr, buffer: Expr | None) -> bool:
        """Whether ``node`` reads a view (``a.T``) of the array it would write into: a loop
        writing ``a[i, j]`` would then change elements it reads later (numpy's ufuncs copy)."""
        if buffer is None:
            return False
        # The buffer itself may be a view (a reshaped temporary); it is read as ``out``.
        target = array_root(buffer, self.reuse)
        return any(x is not buffer and not x.is_leaf and x.op.is_view
                   and array_root(x, self.reuse) is target for x in node.inputs)

    def _is_final_write(self, node: Expr, buffer: Expr) -> bool:
        """Whether ``node`` is a parameter's new value written into the parameter itself."""
        return buffer.is_leaf and buffer in self.program.updated and (
            buffer_root(node, self.reuse) is buffer and node in self.final_values
        )

    def _inplace_statement(self, node: Expr, buffer: Expr, args: list[str]) -> None:
        """Write ``node`` into the dead array ``buffer`` (a temporary, or a parameter updated)."""
        out = self.name_of(buffer)  # an inlined view prints as its text
        if self._is_final_write(node, buffer):
            # The final value of a parameter update: an augmented assignment reads best.
            infix = node.op.infix
            if infix is not None and len(args) == 2 and args[0] == out:
                self._emit(f"    {out} {infix}= {_operand_text(args[1])}", node)
            elif infix in ("+", "*") and len(args) == 2 and args[1] == out:
                self._emit(f"    {out} {infix}= {_operand_text(args[0])}", node)
            else:
                self._emit(f"    {node.op.inplace.format(*args, out=out)}", node)
            self.names[node] = out
            return
        name = self.ns.create(self._hint(node))
        self._emit(f"    {name} = {node.op.inplace.format(*args, out=out)}", node)
        self.names[node] = name

    def _returned(self, o: Expr) -> str:
        if o.op.name == "constant" and o not in self.names:
            value = self.name_of(o)
            name = self.ns.create("constant")
            self._emit(f"    {name} = np.array({value}, dtype={dtype_text(o.dtype)})", o)
            self.names[o] = name
        return self.names[o]


def _summed_kernels(order: list[Expr], kept: list[Expr], reuse: Mapping[Expr, Expr],
                    display: Mapping[str, Expr], labels: Mapping[Expr, str]
                    ) -> dict[Expr, Expr]:
    """``{fused statement: the sum reading it}`` for the kernels whose one reader is a `sum`
    of the same dtype: the numba backend prints the pair as one reduction kernel. Not for a
    value that is kept, named by the user, or whose array a later statement reuses."""
    readers: dict[Expr, list[Expr]] = {}
    for node in order:
        for x in node.inputs:
            readers.setdefault(x, []).append(node)
    kept_set, buffers = set(kept), set(reuse.values())
    summed: dict[Expr, Expr] = {}
    for node in order:
        users = readers.get(node, [])
        if (
            compiles(node) and len(users) == 1 and users[0].op.name == "sum"
            and users[0].dtype == node.dtype and node not in kept_set
            and node not in buffers and labels.get(node) not in display
        ):
            summed[node] = users[0]
    return summed


def comment_text(text: str) -> str:
    """``text`` safe inside a ``#`` comment: a newline in a user's label must not start code."""
    if text.isprintable():
        return text  # the usual case, without a pass per character
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _unused_sizes(lines: list[str], reads: Mapping[str, str]) -> set[str]:
    """The lines reading a size (``N = x.shape[0]``) that no other line uses: the argument's
    check still covers its rank, and an unused name would only make the reader look for it."""
    used: set[str] = set()
    read_lines = set(reads.values())
    for line in lines:
        # Tokenizing is what tells a name from text in a string or comment, and it is slow:
        # only lines where an unused size's name appears at all are tokenized.
        if line in read_lines or not any(s in line for s in reads if s not in used):
            continue
        tokens = tokenize.generate_tokens(io.StringIO(line.strip()).readline)
        used.update(t.string for t in tokens if t.type == tokenize.NAME)
    return {read for size, read in reads.items() if size not in used}


def _drop_echo_comments(lines: list[Line]) -> list[Line]:
    """Drop a block comment that says what its one statement says (``np.`` aside).

    Consecutive such blocks (``step_new = step + 1.0``, ``eps_hat = 1e-08 * root_bc2``) then
    read as one block, without blank lines between them.
    """
    kept: list[Line] = []
    echo_ends = -1  # index in `kept` of the last statement whose comment was dropped
    for i, line in enumerate(lines):
        text = line.text.strip()
        if (
            text.startswith("# ") and i + 1 < len(lines)
            and lines[i + 1].text.strip().replace("np.", "") == text[2:]
            and (i + 2 == len(lines) or not lines[i + 2].text.strip())
        ):
            if len(kept) >= 2 and not kept[-1].text.strip() and echo_ends == len(kept) - 2:
                kept.pop()  # the blank line between two echo blocks
            echo_ends = len(kept)
            continue
        kept.append(line)
    return kept


def _literal_dtype(node: Expr) -> str | None:
    """The dtype a Python number among ``node``'s inputs prints in: its float32 value where it
    meets float32 operands (see `scalar_literal`), not where it meets an integer size first
    (``0.1 - N``)."""
    exact = all(i.dtype == node.dtype or i.op.name == "constant" for i in node.inputs)
    return node.dtype if exact else None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return not text.startswith("-")


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


def _blocks(
    order: list[Expr], display: Mapping[str, Expr], notes: Notes, forward: set[Expr],
) -> dict[Expr, Block]:
    """The comment block each statement belongs to.

    Gradient statements belong to the forward node whose rule built them (``grad of: ...``);
    forward statements (and every node in ``forward``) belong to the first labeled node that
    uses them (``logits = ...``). Formulas are printed from ``display``, the graph before
    lowering, as the user wrote it. Gradient blocks carry the derivation's step number, counted
    on the graph before simplification (rewrites may remove a step's code, never renumber the
    others).
    """
    labels = notes.labels
    names = {**labels, **{node: label for label, node in display.items()}}
    origin = {node: None if node in forward else notes.origins.get(node) for node in order}
    texts: dict[Expr, str] = {}  # a block's statements share its formula: written once
    blocks: dict[Expr, Block] = {}
    owner: dict[Expr, Expr] = {}
    for node in reversed(order):
        if node.is_leaf or origin[node] is not None:
            continue
        if labels.get(node) in display:
            owner[node] = node
        users_owner = owner.get(node)
        if users_owner is None:
            continue
        for i in node.inputs:
            if i not in owner and labels.get(i) not in display and origin.get(i) is None:
                owner[i] = users_owner
    for node in order:
        source = origin[node]
        if source is not None:
            if source not in texts:
                texts[source] = formula(source, names, limit=COMMENT_FORMULA_LIMIT)
            text = texts[source]
            if source in labels:
                text = f"{labels[source]} = {text}"
            step = notes.steps.get(source)
            prefix = "" if step is None else f"step {step}: "
            blocks[node] = Block(f"{prefix}grad of: {text}", step)
        elif node in owner:
            label = labels.get(owner[node], "")
            shown = display.get(label, owner[node])
            if shown not in texts:
                texts[shown] = formula(shown, names, limit=COMMENT_FORMULA_LIMIT)
            blocks[node] = Block(f"{label} = {texts[shown]}")
    return blocks


def _docstring(spec: FunctionSpec, names: Mapping[Expr, str], outputs: list[Expr]) -> str:
    """The function's docstring, what ``help()`` shows: what it returns and updates, and each
    argument's and result's dtype and shape (the module docstring only lists the functions)."""
    returned = ", ".join(names[o] for o in outputs)
    if outputs and not spec.single:
        returned = f"({returned})"
    count = len(spec.updates)
    updated = f"{count} argument{'' if count == 1 else 's'} in place (see Args)"
    summary = {
        (True, False): f"Return {returned}.",
        (True, True): f"Return {returned}; update {updated}.",
        (False, True): f"Update {updated}; return None.",
    }[(bool(outputs), bool(count))]
    lines = [f'    """{summary}', "", "    Args:"]
    for x in spec.inputs:
        if x.op.name == "rng":
            lines.append(f"        {names[x]}: numpy.random.Generator, drawn from (it advances)")
            continue
        notes = [x.op.name]
        if x in spec.updates:
            notes.append("updated in place")
        elif x.ndim == 0 and x.dtype in ("float32", "float64"):
            notes.append("or a Python number")
        elif x.dtype in INT_DTYPES:
            notes.append("or another integer dtype whose values fit")
        lines.append(f"        {names[x]}: {x.dtype} {format_shape(x.shape)}, {', '.join(notes)}")
    if outputs:
        lines.append("    Returns:")
    for o in outputs:
        lines.append(f"        {names[o]}: {o.dtype} {format_shape(o.shape)}")
    lines.append('    """')
    return "\n".join(piece for line in lines for piece in wrap_text(line))


