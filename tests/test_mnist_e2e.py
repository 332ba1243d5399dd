"""End to end: the softmax-regression example trains on the full MNIST to the course's accuracy."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"full MNIST not found at {MNIST}")
def test_softmax_regression_reaches_course_accuracy(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path))
    example = runpy.run_path(str(ROOT / "examples" / "softmax_regression.py"))
    accuracy = example["train"](str(MNIST), steps=1000)
    assert accuracy >= 0.91


def test_softmax_regression_runs_on_the_shipped_subset(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SYMDL_CACHE", str(tmp_path))
    monkeypatch.setenv("SYMDL_OFFLINE", "1")
    example = runpy.run_path(str(ROOT / "examples" / "softmax_regression.py"))
    accuracy = example["train"](None, steps=300)
    assert accuracy >= 0.8  # 300 steps on 5000 images; chance is 0.1
