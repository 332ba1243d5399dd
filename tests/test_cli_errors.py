"""Errors on the command line: one line naming the file and the fix, exit 2 for a command line
that cannot be used, 1 for an error in the model; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from symdl.cli import main
from symdl.commands.modelfile import MissingModelFileError, ModelFileError, load_model_file
from symdl.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
LINEAR = ROOT / "examples" / "classroom" / "linear_regression_matrix.py"

GOOD = """
import symdl as sd
x = sd.placeholder("x", (3,), "float64")
w = sd.parameter("w", (3,), "float64")
loss = sd.sum(x * w)
functions = {"f": ([x, w], loss)}
"""


def _model(tmp_path: Path, source: str, name: str = "model.py") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    status = main(argv)
    return status, capsys.readouterr().err


def _one_line(err: str, *parts: str) -> str:
    """The error line of ``err``, checked to be its only line and to hold every part."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


# --------------------------------------------------------------------------- usage errors: 2


def test_a_missing_model_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.py"
    for command in (["generate"], ["train"], ["derive", "--wrt", "w", "--"]):
        status, err = _run([*command, str(missing)], capsys)
        assert status == 2
        _one_line(err, f"model file {missing} does not exist")
    with pytest.raises(MissingModelFileError, match="does not exist") as info:
        load_model_file(missing)
    assert isinstance(info.value, ModelFileError) and isinstance(info.value, UsageError)


def test_an_unknown_wrt_name_is_a_usage_error(capsys) -> None:
    status, err = _run(["derive", str(LINEAR), "--wrt", "W"], capsys)
    assert status == 2
    _one_line(err, "--wrt W", str(LINEAR), "its leaves are X, w, y")


def test_an_unknown_target_and_output_format_are_usage_errors(tmp_path: Path, capsys) -> None:
    status, err = _run(["derive", str(LINEAR), "--wrt", "w", "--target", "nope"], capsys)
    assert status == 2
    _one_line(err, "'nope'", "--target NAME", "loss")
    out = tmp_path / "d.pdf"
    status, err = _run(["derive", str(LINEAR), "--wrt", "w", "-o", str(out)], capsys)
    assert status == 2
    _one_line(err, "d.pdf", ".html", ".md")
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--epochs", "-1"], "--epochs: must be at least 0"),
        (["--optimizer", "adamx"], "unknown optimizer 'adamx'"),
        (["--lr", "-0.1"], "--lr: must be a finite number above 0"),
        (["--max-steps", "many"], "expected a whole number"),
    ],
)
def test_bad_training_options_are_usage_errors(options: list[str], message: str,
                                               tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, GOOD)
    status, err = _run(["train", str(model), *options], capsys)
    assert status == 2
    assert message in err and "usage:" in err


def test_missing_data_and_resume_paths_are_usage_errors(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, "raise RuntimeError('the model must not run')\n")
    status, err = _run(["train", str(model), "--data", str(tmp_path / "nodata")], capsys)
    assert status == 2
    _one_line(err, "--data", "nodata", "no such directory")
    status, err = _run(["train", str(model), "--resume", str(tmp_path / "run.npz")], capsys)
    assert status == 2
    _one_line(err, "--resume", "run.npz", "--checkpoint")
    status, err = _run(["demo", "--data", str(tmp_path / "nodata")], capsys)
    assert status == 2


# --------------------------------------------------------------------------- model errors: 1


def test_a_model_without_functions_is_a_model_error(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, "x = 1\n", "empty_model.py")
    status, err = _run(["generate", str(model)], capsys)
    assert status == 1
    _one_line(err, "symdl generate: error:", str(model), "functions")


def test_a_codegen_error_names_the_model_file_and_the_fix(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, """
        import symdl as sd
        x = sd.placeholder("x", (3,), "float64")
        functions = {"bump": ([x], sd.sum(x), {x: x + 1.0})}
        """)
    status, err = _run(["generate", str(model), "-o", str(tmp_path / "out.py")], capsys)
    assert status == 1
    _one_line(err, f"model file {model}", "placeholder 'x'", "sd.parameter(")
    assert not (tmp_path / "out.py").exists()


def test_an_error_raised_by_the_model_names_its_line(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, """
        import symdl as sd
        x = sd.placeholder("x", (3,), "float64")
        y = x @ sd.parameter("w", (4, 2), "float64")
        functions = {"f": ([x], y)}
        """)
    status, err = _run(["generate", str(model)], capsys)
    assert status == 1
    _one_line(err, f"model file {model}, line 4:", "matmul")
    typo = _model(tmp_path, "import symdl as sd\nx = sd.placeholdr('x', (3,))\n", "typo.py")
    status, err = _run(["generate", str(typo)], capsys)
    assert status == 1
    _one_line(err, f"model file {typo}, line 2:", "AttributeError", "placeholdr")


@pytest.mark.parametrize(("call", "shown"), [("sys.exit(3)", "sys.exit(3)"),
                                             ("sys.exit(0)", "sys.exit(0)"),
                                             ("sys.exit()", "sys.exit()"),
                                             ("raise SystemExit('bye')", "sys.exit('bye')")])
def test_a_model_file_that_exits_is_reported(call: str, shown: str, tmp_path: Path,
                                             capsys) -> None:
    """A model calling sys.exit(3) ended the CLI with status 3 and no word."""
    model = _model(tmp_path, f"import sys\nimport symdl as sd\n{call}\n")
    for command in (["generate"], ["train"], ["derive", "--wrt", "w", "--"]):
        status, err = _run([*command, str(model)], capsys)
        assert status == 1
        _one_line(err, f"model file {model} called {shown} at line 3",
                  '__name__ == "__main__"')


def test_a_model_file_exit_under_a_main_guard_does_not_run(tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, GOOD + "\nif __name__ == '__main__':\n    import sys; sys.exit(3)\n")
    assert main(["generate", str(model), "-o", str(tmp_path / "out.py")]) == 0


def test_in_a_subprocess_an_exiting_model_fails_with_one_line(tmp_path: Path) -> None:
    model = _model(tmp_path, "import sys\nsys.exit(3)\n")
    done = subprocess.run([sys.executable, "-m", "symdl.cli", "generate", str(model)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    _one_line(done.stderr, "sys.exit(3)", str(model))
    assert done.stdout == ""


# --------------------------------------------------------------------------- --debug


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(where: str, tmp_path: Path, capsys) -> None:
    model = _model(tmp_path, "x = 1\n")
    argv = ["--debug", "generate", str(model)] if where == "before" else [
        "generate", str(model), "--debug"]
    status, err = _run(argv, capsys)
    assert status == 1
    assert "Traceback (most recent call last)" in err and "ModelFileError" in err
    assert err.strip().splitlines()[-1].startswith("symdl generate: error: model file")


def test_an_unexpected_exception_is_shown_as_a_bug(monkeypatch, tmp_path: Path, capsys) -> None:
    from symdl.commands import generate

    def broken(args: object) -> int:
        raise RuntimeError("invariant broken")

    monkeypatch.setattr(generate, "run", broken)
    status, err = _run(["generate", str(_model(tmp_path, GOOD))], capsys)
    assert status == 1
    assert "Traceback" in err and "internal error: RuntimeError: invariant broken" in err
    assert "bug in symdl" in err


def test_help_and_success_keep_their_status(tmp_path: Path, capsys) -> None:
    assert main(["--help"]) == 0
    assert "Exit status" in capsys.readouterr().out
    assert main([]) == 2  # no command: argparse's usage error
    assert main(["generate", str(_model(tmp_path, GOOD))]) == 0
