"""The passes between a function's graph and its printed statements, as one visible list.

`PASSES` runs in order on a `Program` (one function's graph, its notes, and what the passes
decided): stabilize, simplify, lower, tidy, fuse, schedule, fold into BLAS, plan buffers.
`generate` runs them through `run`, and the report (`codegen.report`) runs the same list with
passes switched off to show what each one bought. Each pass is a small function from a program
to a new program; the `Notes` (names, origins, step numbers: `symdl.provenance`) follow every
rewrite.

What a pass may assume: the graph is bare (no labels: `symdl.provenance.annotate` strips them
first); after ``lower`` no composite op (softmax, cross-entropy) is left; after ``schedule``
``order`` lists every statement, inputs first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from symdl.ir import Expr, toposort
from symdl.provenance import Notes
from symdl.rewrite import lower
from symdl.simplify import RewriteLog, simplify, stabilize, tidy

from .blas import Dot, Fold, fold_dots, fold_updates
from .fuse import FusionLog, fuse
from .schedule import plan_buffers, schedule


@dataclass(frozen=True)
class Options:
    """Which passes run: ``simplify`` switches off every rewrite, ``fuse`` and ``inplace``
    elementwise fusion and buffer reuse (both on by default where ``simplify`` is).
    ``fast_math`` lets rewrites and fusion assume finite values and unsigned zeros in what the
    user wrote (``x * 0 -> 0``); by default only what differentiation built is folded so.
    ``check=False`` leaves out the functions' entry checks (no pass depends on it: the writer
    and the module header read it). ``backend="numba"`` prints fused elementwise bodies as
    compiled loops (`codegen.numba_backend`), so fusion also absorbs large arrays.
    ``gemm`` folds large weights' updates ``W - lr * (A.T @ G)`` into one BLAS gemm
    (`codegen.blas`; with ``inplace``, which also prints ``(a * b).sum()`` as ``np.vdot``)."""

    simplify: bool = True
    fuse: bool = True
    inplace: bool = True
    fast_math: bool = False
    check: bool = True
    # The numba backend's fields.
    backend: str = "numpy"
    # Added by issue 17 (GEMM-folded updates).
    gemm: bool = True

    @classmethod
    def of(cls, simplify: bool = True, fuse: bool | None = None,
           inplace: bool | None = None, fast_math: bool = False, check: bool = True,
           backend: str = "numpy", gemm: bool = True) -> Options:
        """Options with ``fuse`` and ``inplace`` defaulting to ``simplify``."""
        return cls(simplify, simplify if fuse is None else fuse,
                   simplify if inplace is None else inplace, fast_math, check, backend, gemm)


@dataclass
class Logs:
    """What the passes did, for the report: rewrites that fired, and fusion's figures."""

    rewrites: RewriteLog = field(default_factory=RewriteLog)
    fusion: FusionLog = field(default_factory=FusionLog)


@dataclass(frozen=True)
class Program:
    """One function's graph on its way to printing.

    ``outputs`` are the function's outputs followed by the new values of the leaves it updates
    in place (``updated``, in the same order); ``shown`` is the graph as simplified but not lowered,
    which comments print (as the user wrote it); ``forward`` are the nodes computing forward
    outputs; ``order``, ``folds`` (updates folded into a gemm), ``dots`` (sums of products as
    ``np.vdot``) and ``reuse`` come from the last three passes.
    """

    outputs: tuple[Expr, ...]
    notes: Notes
    updated: tuple[Expr, ...] = ()
    shown: tuple[Expr, ...] = ()
    forward: frozenset[Expr] = frozenset()
    order: tuple[Expr, ...] = ()
    reuse: Mapping[Expr, Expr] = field(default_factory=dict)
    folds: Mapping[Expr, Fold] = field(default_factory=dict)
    dots: Mapping[Expr, Dot] = field(default_factory=dict)

    @property
    def results(self) -> tuple[Expr, ...]:
        """The function's outputs (without the update values)."""
        return self.outputs[: len(self.outputs) - len(self.updated)]

    @property
    def updates(self) -> dict[Expr, Expr]:
        """``{updated leaf: its new value}``."""
        return dict(zip(self.updated, self.outputs[len(self.outputs) - len(self.updated) :]))


def _stabilize(p: Program, options: Options, logs: Logs) -> Program:
    """log(softmax(z)) -> log_softmax(z) and friends: the rules `grad` used, run to a fixed
    point first so that the losses users write naively are computed in their stable form."""
    return replace(p, outputs=tuple(stabilize(list(p.outputs), p.notes, logs.rewrites,
                                                    fast_math=options.fast_math)))


def _simplify(p: Program, options: Options, logs: Logs) -> Program:
    """Every rewrite of `symdl.simplify` to a fixed point (algebra, shapes, constants)."""
    return replace(p, outputs=tuple(simplify(list(p.outputs), logs.rewrites, p.notes,
                                                   fast_math=options.fast_math)))


def _lower(p: Program, options: Options, logs: Logs) -> Program:
    """Composite ops (softmax, logsumexp, cross-entropy) expanded into stable primitives."""
    return replace(p, outputs=tuple(lower(list(p.outputs), p.notes)), shown=p.outputs)


def _tidy(p: Program, options: Options, logs: Logs) -> Program:
    """The rewrites again, on what lowering built (the stabilizing ones match no primitive)."""
    return replace(p, outputs=tuple(tidy(list(p.outputs), logs.rewrites, p.notes,
                                               fast_math=options.fast_math)))


def _fuse(p: Program, options: Options, logs: Logs) -> Program:
    """Chains of elementwise ops as one statement each, with a sympy body (`codegen.fuse`)."""
    loops = options.backend == "numba"
    # The names the user gave (those of the graph before lowering) stay statements of their
    # own; under the numba backend, names lowering made may be absorbed into a kernel.
    user_names = {p.notes.labels[n] for n in toposort(list(p.shown)) if n in p.notes.labels
                  } if loops else set()
    return replace(p, outputs=tuple(fuse(list(p.outputs), logs.fusion, p.notes,
                                               fast_math=options.fast_math, loops=loops,
                                               user_names=user_names)))


def _schedule(p: Program, options: Options, logs: Logs) -> Program:
    """The statement order (`codegen.schedule.schedule`)."""
    flags = p.notes.forward_flags
    forward = frozenset(toposort([o for o, f in zip(p.results, flags) if f]))
    return replace(p, forward=forward,
                   order=tuple(schedule(list(p.outputs), p.notes, set(forward))))


def _fold_into_blas(p: Program, options: Options, logs: Logs) -> Program:
    """Large weights' updates ``W - lr * (A.T @ G)`` as one gemm, ``(a * b).sum()`` as one
    ``np.vdot(a, b)`` (`codegen.blas`)."""
    order, folds = fold_updates(p.order, p.results, p.updates) if options.gemm else (p.order, {})
    order, dots = fold_dots(order, p.results)
    return replace(p, order=tuple(order), folds=folds, dots=dots)


def _plan_buffers(p: Program, options: Options, logs: Logs) -> Program:
    """Which statements write into a dead array (`codegen.schedule.plan_buffers`)."""
    skipped = {x for fold in (*p.folds.values(), *p.dots.values()) for x in fold.skipped}
    return replace(p, reuse=plan_buffers(list(p.order), list(p.results), p.updates, skipped))


@dataclass(frozen=True)
class Pass:
    """One pass: its name (as the report prints it), the function, and when it runs."""

    name: str
    run: Callable[[Program, Options, Logs], Program]
    enabled: Callable[[Options], bool]


PASSES: list[Pass] = [
    Pass("stabilize", _stabilize, lambda o: o.simplify),
    Pass("simplify", _simplify, lambda o: o.simplify),
    Pass("lower", _lower, lambda o: True),
    Pass("tidy", _tidy, lambda o: o.simplify),
    Pass("fuse", _fuse, lambda o: o.simplify and o.fuse),
    Pass("schedule", _schedule, lambda o: True),
    Pass("fold into BLAS", _fold_into_blas, lambda o: o.simplify and o.inplace),
    Pass("plan buffers", _plan_buffers, lambda o: o.simplify and o.inplace),
]


def run(program: Program, options: Options, logs: Logs | None = None) -> Program:
    """``program`` after every pass of `PASSES` that ``options`` enables, in order."""
    logs = logs if logs is not None else Logs()
    for p in PASSES:
        if p.enabled(options):
            program = p.run(program, options, logs)
    return program
