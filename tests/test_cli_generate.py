"""``symdl generate MODEL.py -o OUT.py``: the written module imports numpy only, runs, and agrees
with the independent numpy interpreter of the model's own graph (tests/reference.py).
"""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from codegen.report import count_operations
from symdl.cli import main
from symdl.commands.modelfile import ModelFileError, load_model_file
from symdl.ir import Expr
from tests.helpers import assert_close, concrete
from tests.reference import evaluate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "models" / "logreg.py"


def _import(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _value(leaf: Expr, rng: np.random.Generator) -> object:
    """A plausible argument for ``leaf``: one-hot rows for float labels named y, small weights."""
    shape = concrete(leaf.shape)
    if leaf.dtype in ("int32", "int64"):
        return rng.integers(0, 2, size=shape).astype(leaf.dtype)
    if leaf.name == "y" and len(shape) == 2:
        return np.eye(shape[1], dtype=leaf.dtype)[rng.integers(0, shape[1], shape[0])]
    if shape == ():
        return 0.1  # a Python float, e.g. a learning rate
    return (rng.standard_normal(shape) * 0.1).astype(leaf.dtype)


def _check_against_reference(module: ModuleType, functions: dict) -> None:
    """Call every generated function and compare outputs and in-place updates with the reference."""
    rng = np.random.default_rng(0)
    for fname, spec in functions.items():
        inputs, outputs, *rest = spec
        updates = dict(rest[0]) if rest else {}
        single = isinstance(outputs, Expr)
        outs = [outputs] if single else list(outputs)
        args = [_value(x, rng) for x in inputs]
        feed = {x: np.asarray(a, dtype=x.dtype) for x, a in zip(inputs, args, strict=True)}
        expected = evaluate([*outs, *updates.values()], feed)
        arrays = [np.array(a) if isinstance(a, np.ndarray) else a for a in args]
        result = getattr(module, fname)(*arrays)
        got = [] if not outs else [result] if single else list(result)
        assert len(got) == len(outs), fname
        for o, g, e in zip(outs, got, expected, strict=False):
            assert np.asarray(g).dtype == np.dtype(o.dtype), (fname, o.name)
            assert_close(g, e, rtol=1e-4, atol=1e-6, what=f"{fname}: {o.name}")
        for (leaf, _), e in zip(updates.items(), expected[len(outs):], strict=True):
            position = [i for i, x in enumerate(inputs) if x is leaf][0]
            assert_close(arrays[position], e, rtol=1e-4, atol=1e-6,
                         what=f"{fname}: updated {leaf.name}")


def _only_numpy(source: str) -> bool:
    tree = ast.parse(source)
    names = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    return names == ["numpy"]


def test_generate_writes_a_module_that_imports_and_runs(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "out.py"
    assert main(["generate", str(EXAMPLE), "-o", str(out)]) == 0
    source = out.read_text()
    assert _only_numpy(source)
    model = load_model_file(EXAMPLE)
    module = _import(out, "cli_generated_logreg")
    _check_against_reference(module, model["functions"])


def test_no_simplify_output_also_runs(tmp_path: Path) -> None:
    out = tmp_path / "raw.py"
    assert main(["generate", str(EXAMPLE), "-o", str(out), "--no-simplify"]) == 0
    assert _only_numpy(out.read_text())
    _check_against_reference(_import(out, "cli_generated_raw"),
                             load_model_file(EXAMPLE)["functions"])


def test_stdout_is_the_same_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.py"
    assert main(["generate", str(EXAMPLE), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["generate", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == out.read_text()


def test_command_line_in_subprocesses_gives_the_same_bytes(tmp_path: Path) -> None:
    # Compared between fresh processes: in this process, earlier tests built nodes the model
    # shares (see test_codegen's test_generation_does_not_depend_on_earlier_builds).
    commands = [[sys.executable, "-m", "symdl.cli"], [sys.executable, "-m", "symdl.cli"]]
    script = shutil.which("symdl")
    if script is not None:
        commands[1] = [script]
    outputs = []
    for i, command in enumerate(commands):
        out = tmp_path / f"sub{i}.py"
        done = subprocess.run([*command, "generate", str(EXAMPLE), "-o", str(out)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "wrote" in done.stderr
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert _only_numpy(outputs[0].decode())


def test_module_name_defaults_to_the_file_stem(tmp_path: Path) -> None:
    model = tmp_path / "tiny_model.py"
    model.write_text(textwrap.dedent(
        """
        import symdl as sd
        a = sd.placeholder("a", (3,), "float64")
        functions = {"double": ([a], a * 2.0)}
        """
    ))
    out = tmp_path / "tiny_gen.py"
    assert main(["generate", str(model), "-o", str(out)]) == 0
    assert out.read_text().startswith('"""tiny_model')
    module = _import(out, "cli_generated_tiny")
    assert_close(module.double(np.arange(3.0)), [0.0, 2.0, 4.0], rtol=0, atol=0, what="double")


def test_fast_math_folds_what_the_user_wrote(tmp_path: Path) -> None:
    model = tmp_path / "zero_model.py"
    model.write_text(textwrap.dedent(
        """
        import symdl as sd
        a = sd.placeholder("a", (3,), "float64")
        functions = {"f": ([a], a * 0.0)}
        """
    ))
    exact, fast = tmp_path / "exact.py", tmp_path / "fast.py"
    assert main(["generate", str(model), "-o", str(exact)]) == 0
    assert main(["generate", str(model), "-o", str(fast), "--fast-math"]) == 0
    assert count_operations(exact.read_text(), "f")["*"] == 1  # inf * 0 is NaN, as in numpy
    assert "*" not in count_operations(fast.read_text(), "f")


def test_missing_model_file_and_missing_functions_are_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The library raises ModelFileError; the command prints it on one line and exits 2 for a
    # file that is not there (a usage error), 1 for a model that lacks `functions`.
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model_file(tmp_path / "nope.py")
    assert main(["generate", str(tmp_path / "nope.py")]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty_model.py"
    empty.write_text("x = 1\n")
    with pytest.raises(ModelFileError, match="functions"):
        load_model_file(empty)
    assert main(["generate", str(empty)]) == 1
    assert "functions" in capsys.readouterr().err
