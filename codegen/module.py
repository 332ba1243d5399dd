"""Assembling a generated module: the functions, their constants, the header and the helpers.

`assemble` is what `generate` and `compile` run: each function's graph is annotated
(`symdl.provenance`: names and origins as data of this call), goes through the passes
(`codegen.pipeline.PASSES`) and is written (`codegen.writer`); the module gets a docstring
listing the functions, the constants they use (inline, or from ``.npy`` files beside the module
for large ones) and the entry-check helpers (`codegen.checks`). Output is deterministic to the
byte: every order follows the graphs' input order, never object ids, hash seeds or what else
the process built.

The seams, one module each: `spec` (what to generate, checked), `pipeline` (the passes),
`schedule` (statement order and buffer plan), `writer` (one function), `checks` (entry checks),
`fuse` (elementwise fusion), `printer` (numpy text of one op), `layout` (line wrapping),
`names` (identifiers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from symdl._version import __version__
from symdl.errors import InvalidNameError
from symdl.ir import Expr, toposort
from symdl.ops.custom import functions_needing, modules_needed
from symdl.provenance import Notes, annotate

from .blas import GEMM_HELPER_SOURCE, GEMM_NAMES
from .cache import array_digest
from .checks import (
    HELPERS,
    check_helpers_source,
)
from .layout import wrap_lines, wrap_text
from .names import Namespace, safe_identifier
from .numba_backend import KernelWriter
from .pipeline import Logs, Options, Program, run
from .printer import dtype_text, scalar_literal
from .spec import Functions, FunctionSpec, normalize
from .writer import FunctionWriter, Line

EXTERNAL_ARRAY_LIMIT = 1000
# The module's folder, from __file__ alone (no os.path: the module imports as little as it can).
HERE_LINE = '_HERE = __file__[: max(__file__.rfind("/"), __file__.rfind("\\\\")) + 1]'
LOADER = "_load_constant"
# A module with constants in `.npy` files checks each one against the content hash in its name
# before using it (the same formula as `array_digest`): a file rewritten after symdl wrote it, by
# hand or by another process in the middle of an import, is refused, never computed with. The
# hash needs hashlib, from the standard library; the module's header says so. The constants are
# loaded before any function is defined, so a generated function named `hashlib` shadows nothing
# the loader uses.
LOADER_SOURCE = f'''{HERE_LINE}


def {LOADER}(fname):
    """The array in the .npy file ``fname`` beside this module, after checking that it hashes
    to the digest in its name: a file changed after symdl wrote it is refused, never used."""
    path = _HERE + fname
    try:
        array = np.load(path, allow_pickle=False)
        digest = hashlib.sha256(f"{{array.dtype.str}}{{array.shape}}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
        intact = digest.hexdigest()[:16] == fname[-20:-4]
    except (ValueError, EOFError):  # not an .npy file (numpy's message would suggest pickle)
        intact = False
    if not intact:
        raise ValueError(
            f"{{path}} does not hold the constant symdl wrote there (its content does not "
            "match the hash in its name): it was changed afterwards. Compile the model again "
            "to rewrite it"
        )
    return array
'''.splitlines()


@dataclass(frozen=True)
class LineInfo:
    """What one line of a generated module computes: the function, the node whose statement
    it is (None for comments), and the derivation step of its block (None outside gradients)."""

    function: str
    node: Expr | None
    step: int | None


@dataclass
class ModuleParts:
    """What `assemble` produced.

    ``source`` is the module; ``arrays`` the arrays to store beside the module file (``{file
    name: array}``, saved as ``.npy`` and loaded by the module from its own folder);
    ``lines`` maps the 1-based line numbers of the functions' bodies to what they compute (as
    torch.fx's line map), and ``notes`` holds each function's names, origins and step numbers.
    """

    source: str
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    lines: dict[int, LineInfo] = field(default_factory=dict)
    notes: dict[str, Notes] = field(default_factory=dict)

    def step_lines(self, function: str) -> dict[int, list[str]]:
        """``{step k: the lines of its block}`` in ``function`` (comment first, stripped)."""
        text = self.source.splitlines()
        blocks: dict[int, list[str]] = {}
        for number, info in sorted(self.lines.items()):
            if info.function == function and info.step is not None:
                stripped = text[number - 1].strip()
                if stripped:
                    blocks.setdefault(info.step, []).append(stripped)
        return blocks


def prepare(spec: FunctionSpec, options: Options, logs: Logs | None = None) -> Program:
    """``spec``'s graph, annotated and through the passes `options` enables."""
    bare, notes = annotate([*spec.outputs, *spec.updates.values()])
    updated = tuple(spec.updates)
    for leaf, new in zip(updated, bare[len(spec.outputs) :]):
        notes.label(new, f"{leaf.name}_new")
    return run(Program(tuple(bare), notes, updated), options, logs)


def assemble(functions: Functions, name: str, *, simplify: bool = True,
             external_arrays: bool = False, fuse: bool | None = None,
             inplace: bool | None = None, logs: Logs | None = None,
             fast_math: bool = False, check: bool = True,
             backend: str = "numpy", gemm: bool = True) -> ModuleParts:
    """Generate the source of a module holding ``functions``.

    With ``external_arrays`` (what `compile` uses), constants of more than
    `EXTERNAL_ARRAY_LIMIT` elements are not printed: the module loads them from ``.npy`` files
    named by their content hash beside it (returned in ``arrays``). Otherwise (`generate`) every
    constant is printed inline, so the source stands alone. ``fuse`` and ``inplace`` (both
    default to ``simplify``) switch off elementwise fusion and buffer reuse, and ``logs``
    records what the passes did, for the report. Views used once print inline where they are
    used unless ``simplify`` is off: the raw derivative keeps one statement per value.
    ``fast_math`` lets rewrites and fusion fold what the user wrote as if every value were
    finite and zeros unsigned (``x * 0 -> 0``, ``x - x -> 0``); see `Options`. ``check=False``
    leaves out the entry checks and their helpers; the module's docstring says so.
    ``backend="numba"`` prints fused elementwise statements as numba kernels, defined after
    the functions (`codegen.numba_backend`); the module then imports numba too.
    ``gemm=False`` prints every update as plain numpy (no update folded into a BLAS gemm).
    """
    specs = normalize(functions)
    options = Options.of(simplify, fuse, inplace, fast_math, check, backend, gemm)
    module_ns = Namespace({*HELPERS, *GEMM_NAMES, LOADER, "hashlib", *(s.name for s in specs)})
    consts: dict[Expr, str] = {}
    arrays: dict[str, np.ndarray] = {}
    written: list[tuple[FunctionSpec, list[str], list[Line]]] = []
    folded = False  # some function folds an update into a gemm: define `_gemm_update`
    summaries: list[list[str]] = []
    notes: dict[str, Notes] = {}
    extra: dict[str, set[str]] = {}  # module beyond numpy -> the functions that need it
    kernels = KernelWriter(module_ns) if backend == "numba" else None
    if kernels is not None and any(s.name == "numba" for s in specs):
        # The kernels' decorators read the module global `numba`, which it would replace.
        raise InvalidNameError('codegen: with backend="numba" no function may be named '
                               "'numba' (it would hide the numba module); rename it")
    for spec in specs:
        program = prepare(spec, options, logs)
        display = {program.notes.labels[n]: n for n in toposort(list(program.shown))
                   if n in program.notes.labels}
        writer = FunctionWriter(spec, program, module_ns, consts, arrays, inline_views=simplify,
                                check=check, kernels=kernels)
        header, body = writer.write(display)
        written.append((spec, header, body))
        folded = folded or writer.folds_updates
        for node in toposort(list(program.outputs)):
            for module in modules_needed(node):
                extra.setdefault(module, set()).update(functions_needing(node))
        summaries.append(_summary(spec, writer.names, list(program.results)))
        notes[spec.name] = program.notes
    top = [
        *wrap_text(
            f'"""{safe_identifier(name)}: generated by symdl {__version__}. Do not edit; '
            "regenerate from the model."
        ),
        "",
        *(line for summary in summaries for line in summary),
        "",
        "Each function's docstring gives its arguments' dtypes and shapes; it checks them on "
        "entry." if check else
        "Entry checks are off (compiled with check=False): each function's docstring gives the "
        "dtypes",
    ]
    if not check:
        # The caller's promise replaces the checks: say it where a reader looks first.
        top.append("and shapes its arguments must have; nothing verifies them.")
    for module, needing in sorted(extra.items()):
        # What a reader (or a deployment) must know first: the module needs more than numpy.
        top += ["", *wrap_text(
            f"Needs {module} (for {', '.join(sorted(needing))}, which numpy lacks), besides "
            "numpy."
        )]
    kernel_lines = kernels.module_lines() if kernels is not None else []
    if kernel_lines:
        # Compiled on first call and cached beside this file: say so where a reader looks first.
        top += ["", *wrap_text(
            'Needs numba, besides numpy (compiled with backend="numba"): the fused elementwise '
            "statements call the kernels at the end of this module, compiled on first call and "
            "cached beside this file."
        )]
    const_lines, files = _constants(arrays, name, external_arrays)
    imports = ["import numpy as np", *(f"import {module}" for module in sorted(extra))]
    if kernel_lines:
        imports.insert(0, "import numba")
    if folded:
        # ctypes (standard library) reaches numpy's own BLAS for the folded updates.
        top += ["", "Large weights' updates call numpy's own BLAS (gemm) through ctypes (standard "
                "library)."]
    # Standard-library imports first, then numpy (and what numpy lacks), as isort orders them.
    standard = [*(["import ctypes"] if folded else []), *(["import hashlib"] if files else [])]
    imports = [*standard, "", *imports] if standard else imports
    if files:
        top += [
            "",
            f"Constants of more than {EXTERNAL_ARRAY_LIMIT} elements are read from the .npy files "
            "beside this module,",
            "each checked against the content hash in its name (with hashlib, from Python's "
            "standard library).",
            '"""',
            "",
            *imports,
            "",
            *LOADER_SOURCE,
            "",
        ]
    else:
        top += ['"""', "", *imports]
    text = top + (["", *const_lines] if const_lines else [])
    lines: dict[int, LineInfo] = {}
    for spec, header, body in written:
        text += ["", ""] + "\n".join(header).split("\n")
        for line in body:
            text.append(line.text)
            if line.node is not None or line.step is not None:
                lines[len(text)] = LineInfo(spec.name, line.node, line.step)
    source = "\n".join(text + kernel_lines) + "\n"
    if folded:
        source += "\n" + GEMM_HELPER_SOURCE
    if check:
        helpers = check_helpers_source(source)  # those the functions call, no others
        if helpers:
            source += "\n" + helpers
    return ModuleParts(source, files, lines, notes)


def _constants(
    arrays: dict[str, np.ndarray], name: str, external: bool
) -> tuple[list[str], dict[str, np.ndarray]]:
    """The module's constant definitions, and the arrays to store beside it as ``.npy``."""
    const_lines: list[str] = []
    files: dict[str, np.ndarray] = {}
    for cname, value in arrays.items():
        if external and value.size > EXTERNAL_ARRAY_LIMIT:
            # The file name is the array's content hash, so the module's own hash covers it.
            fname = f"{safe_identifier(name)}_{array_digest(value)}.npy"
            files[fname] = value
            const_lines.append(f"{cname} = {LOADER}({fname!r})")
        else:
            const_lines.append(f"{cname} = {array_literal(value)}")
    return wrap_lines(const_lines), files


def array_literal(value: np.ndarray) -> str:
    """Python text making an array equal to ``value`` in dtype, shape and every bit."""
    dtype = dtype_text(value.dtype.name)
    if value.size == 0:
        # A nested list cannot spell the sizes after a zero one: `[]` is (0,), never (0, 3).
        return f"np.zeros({value.shape!r}, dtype={dtype})"
    return f"np.array({array_text(value)}, dtype={dtype})"


def array_text(value: np.ndarray) -> str:
    """Exact nested-list text of an array; NaN and inf spelled as ``np.nan`` and ``np.inf``."""
    if value.ndim == 0:
        return scalar_literal(value.item())
    return "[" + ", ".join(array_text(v) for v in value) + "]"


def _summary(spec: FunctionSpec, names: dict[Expr, str], outputs: list[Expr]) -> list[str]:
    """The function's line in the module docstring: its signature and what it returns."""
    args = ", ".join(names[x] for x in spec.inputs)
    rets = ", ".join(names[o] for o in outputs) or "None"
    line = f"{spec.name}({args}) -> {rets if spec.single or not outputs else '(' + rets + ')'}"
    return wrap_text(line)
