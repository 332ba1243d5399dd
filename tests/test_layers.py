"""Dependencies point one way: core <- codegen <- applications.

The core (IR, ops, autodiff, simplification, provenance) imports neither the code generator nor
the applications; codegen imports the core only. Every import statement counts, including the
ones inside functions (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = (
    "symdl._version", "symdl.autodiff", "symdl.errors", "symdl.files", "symdl.ir", "symdl.ops",
    "symdl.printing", "symdl.provenance", "symdl.rewrite", "symdl.simplify", "symdl.types",
    "symdl.forward",  # forward mode, jacobian, hessian: differentiation, like autodiff
    "symdl.lazy_imports",  # sympy, run on first use: standard library only
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """Every module ``path`` imports, as absolute dotted names, with the line of the import.

    ``module`` is the file's dotted name (by default, from its place in the tree).
    """
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _ours(name: str) -> bool:
    return _within(name, ("symdl", "codegen"))


def _files(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


CORE_FILES = [p for p in _files("symdl") if _within(_module_name(p), CORE)]


def _violations(path: Path, allowed: tuple[str, ...], module: str | None = None) -> list[str]:
    bad = []
    for line, name in _imports(path, module):
        # `from .ops import api` names the module symdl.ops.api; `from .ir import Expr` names
        # symdl.ir.Expr, which is within symdl.ir: both count by their module prefix.
        if _ours(name) and name not in ("symdl", "codegen") and not _within(name, allowed):
            bad.append(f"{path.name}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_only_the_core(path: Path) -> None:
    assert not _violations(path, CORE)


@pytest.mark.parametrize("path", _files("codegen"), ids=lambda p: str(p.relative_to(ROOT)))
def test_codegen_imports_only_the_core(path: Path) -> None:
    assert not _violations(path, (*CORE, "codegen"))
    # Nor the package root, which re-exports the applications.
    assert all(name != "symdl" for _, name in _imports(path))


def test_the_checker_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    fake = ROOT / "symdl" / "ir.py"
    names = [name for _, name in _imports(fake)]
    assert "symdl.types" in names  # `from .types import ...`
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..derive import derive\n    import codegen.module\n")
    bad = _violations(probe, CORE, module="symdl.ops.probe")
    assert any("symdl.derive" in b for b in bad) and any("codegen.module" in b for b in bad)
