"""Smoke test of the benchmark harness: it runs, on tiny sizes with 2 repeats, and reports the
structure the README promises. Timings are never asserted (they depend on the machine)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import bench_train_step, handwritten  # noqa: E402
from benchmarks.bench_train_step import Model  # noqa: E402
from benchmarks.common import init_params, interleave, mnist_batch  # noqa: E402

TINY = (Model("tiny softmax", (784, 10), 4), Model("tiny mlp", (784, 8, 10), 4))


def test_interleave_times_every_candidate_every_round() -> None:
    calls: list[str] = []
    timings = interleave({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                         repeats=3, warmup=1)
    assert calls.count("a") == calls.count("b") == 4  # 1 warm-up + 3 timed
    assert [len(t.times_ns) for t in timings.values()] == [3, 3]
    assert timings["a"].ratios == [] and len(timings["b"].ratios) == 3
    assert timings["b"].median_ratio is not None and timings["b"].median_ratio > 0


def test_interleave_rejects_zero_repeats() -> None:
    with pytest.raises(ValueError, match="repeats"):
        interleave({"a": lambda: None}, repeats=0)


def _reference_loss(x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> float:
    """Mean cross-entropy in float64, written independently of both benchmarked steps."""
    h = x.astype(np.float64)
    ps = [p.astype(np.float64) for p in params]
    for W, b in zip(ps[0:-2:2], ps[1:-2:2]):
        h = np.maximum(h @ W + b, 0.0)
    z = h @ ps[-2] + ps[-1]
    logp = z - z.max(axis=1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))
    return float(-(y * logp).sum(axis=1).mean())


@pytest.mark.parametrize("sizes", [[784, 10], [784, 16, 10]])
def test_handwritten_baseline_loss_matches_float64_reference(sizes: list[int]) -> None:
    x, y, _ = mnist_batch(6, source="random", seed=3)
    params = init_params(sizes, seed=4)
    for p in params[1::2]:  # nonzero biases, so that they matter
        p += np.float32(0.1)
    expected = _reference_loss(x, y, params)
    step = handwritten.softmax_step if len(sizes) == 2 else handwritten.mlp_step
    loss = step(x, y, *[p.copy() for p in params], np.float32(0.1))
    assert loss.dtype == np.float32
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_train_step_rows_on_tiny_models() -> None:
    rows = bench_train_step.run(repeats={m.name: 2 for m in TINY}, warmup=1, data="random",
                                frameworks={}, models=TINY)
    got = [(r.model, r.implementation) for r in rows]
    impls = ["hand-written numpy", "symdl generated", "matmuls only"]
    assert got == [(m.name, i) for m in TINY for i in impls]
    for r in rows:
        assert r.median_us is not None and r.median_us > 0
        assert (r.ratio is None) == (r.implementation == "hand-written numpy")


def test_missing_framework_becomes_a_skipped_row() -> None:
    from benchmarks.frameworks import FrameworkUnavailable

    def absent(*args: object) -> None:
        raise FrameworkUnavailable("not installed here")

    rows = bench_train_step.run(repeats={TINY[0].name: 2}, warmup=0, data="random",
                                frameworks={"absent": absent}, models=TINY[:1])
    assert rows[-1].implementation == "absent"
    assert rows[-1].median_us is None and "skipped" in rows[-1].note


def test_run_all_prints_tables_and_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run_all.py"), "--skip-train",
         "--depths", "1", "--gen-runs", "1", "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "### Generate and import in a fresh process" in proc.stdout
    report = json.loads(out.read_text())
    assert set(report) >= {"command", "environment", "generation", "checks"}
    (row,) = report["generation"]
    assert row["depth"] == 1 and row["total_s"] > 0 and row["lines"] > 0
    assert report["environment"]["threads"] == 1


def _two_statements(a: np.ndarray) -> np.ndarray:
    b = a + 1
    return b * 2


def test_statement_profile_times_each_statement_and_keeps_results() -> None:
    from benchmarks.profile_step import instrument, profile

    wrapped, _, _ = instrument(_two_statements)
    np.testing.assert_array_equal(wrapped(np.arange(3)), _two_statements(np.arange(3)))
    rows = profile(_two_statements, lambda: (np.arange(3),), repeats=2, warmup=1)
    assert sorted(text for _, _, text in rows) == ["b = a + 1", "return b * 2"]
    assert all(us >= 0 for us, _, _ in rows)


def test_scaling_fits_the_exponent_and_times_a_fresh_process() -> None:
    from benchmarks.bench_generation import ScalingRow, exponent, measure_scaling, scaling_table

    synthetic = [ScalingRow("m", n, n, 1e-3 * n**1.5, 0) for n in (100, 200, 400, 800)]
    assert exponent(synthetic) == pytest.approx(1.5)
    row = measure_scaling("elementwise chain", 20, runs=1)
    assert row.nodes == 23 and row.generate_s > 0 and row.lines > 0  # x, 2 constants, 20 ops
    table = scaling_table({"m": synthetic})
    assert "| m | 800 | 800 |" in table and "m: time ~ nodes^1.50" in table


def test_ab_modules_times_two_generated_modules(tmp_path: Path) -> None:
    import symdl as sd
    from benchmarks.models import softmax_regression

    source = sd.generate(softmax_regression(), "sr")
    before, after = tmp_path / "before.py", tmp_path / "after.py"
    before.write_text(source)
    after.write_text(source)
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "ab_modules.py"), str(before),
         str(after), "--depth", "1", "--rounds", "3"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, check=True,
    )
    assert "after / before, median of 3 interleaved rounds:" in done.stdout


# --------------------------------------------------------------------------- issue 17 peer table


def _tiny_report(frameworks: dict, workloads: str = "all") -> dict:
    """run_all's in-process machinery at toy sizes, one thread, as the parent would merge it."""
    from benchmarks import run_all

    result = run_all.collect(threads=1, quick=True, repeats=2, warmup=1, data="random",
                             frameworks=frameworks, workload_filter=workloads, tiny=True)
    report = {"command": "test", "threads": [1], "runs": {"1": result},
              "environment": result["environment"]}
    report["checks"] = run_all.checks(report)
    return report


def test_peer_table_has_every_row_and_column_on_tiny_sizes() -> None:
    from benchmarks import run_all
    from benchmarks.workloads import WORKLOADS

    report = _tiny_report({})
    table = run_all.markdown(report)
    header = next(line for line in table.splitlines() if line.startswith("| workload (float32"))
    for column in (run_all.NUMPY, run_all.FLOOR, run_all.SYMDL, run_all.SYMDL_NUMBA):
        assert column in header
    body = {line.split(" | ")[0][2:]: line for line in table.splitlines()
            if line.startswith("| ") and " | " in line}
    for w in WORKLOADS:
        assert w.name in body, f"row {w.name!r} missing from the table"
    rows = report["runs"]["1"]["rows"]
    for w in WORKLOADS:
        symdl = rows[w.name][run_all.SYMDL]
        if w.trains:  # measured here: a positive ratio and numpy's time
            assert symdl["ratio"] > 0 and rows[w.name][run_all.NUMPY]["us"] > 0
            assert symdl["note"] == ""  # its first two losses matched the hand-written step's
        elif symdl["ratio"] is None:  # second-order rows: pending until bench_hessian lands
            assert symdl["note"] and "n/a [" in body[w.name]


def test_missing_framework_prints_n_a_with_its_reason_as_a_footnote() -> None:
    from benchmarks import run_all
    from benchmarks.frameworks import FrameworkUnavailable

    def absent(*args: object, **kwargs: object) -> None:
        raise FrameworkUnavailable("absentlib not installed here")

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("inside the peer")

    table = run_all.markdown(_tiny_report({"absent": absent, "broken": broken},
                                          workloads="softmax regression B=100"))
    row = next(line for line in table.splitlines()
               if line.startswith("| softmax regression B=100 "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    header = next(line for line in table.splitlines() if line.startswith("| workload (float32"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    absent_cell, broken_cell = cells[columns.index("absent")], cells[columns.index("broken")]
    assert absent_cell.startswith("n/a [") and broken_cell.startswith("n/a [")
    note = absent_cell.removeprefix("n/a ")
    assert f"{note} absentlib not installed here" in table
    assert "broken failed: ZeroDivisionError: inside the peer" in table


def test_run_all_merges_two_thread_counts_from_subprocesses(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "run_all.py"), "--tiny",
         "--no-frameworks", "--skip-generation", "--workloads", "MLP 784-256-10,Hessian",
         "--threads", "2,1", "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert set(report["runs"]) == {"2", "1"}
    assert report["runs"]["1"]["threads"] == 1 and report["runs"]["2"]["threads"] == 2
    assert "2 threads (1 in brackets)" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| MLP 784-256-10 "))
    symdl = row.split(" | ")[3]  # workload, numpy us, floor, symdl
    assert re.fullmatch(r"\d+\.\d\d \(\d+\.\d\d\)", symdl), row
    assert "| full Hessian of softmax regression" in proc.stdout


def test_deep_mlp_baseline_updates_by_the_float64_finite_difference_gradient() -> None:
    from benchmarks.handwritten import mlp_layers_step
    from benchmarks.workloads import gemm_floor, numpy_sgd_step

    sizes = [5, 4, 3, 3]
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    y = np.eye(3, dtype=np.float32)[rng.integers(0, 3, size=6)]
    params = [rng.standard_normal(p.shape).astype(np.float32) * np.float32(0.7)
              for p in init_params(sizes, seed=2)]
    assert numpy_sgd_step(tuple(sizes)) is mlp_layers_step
    lr = np.float32(0.5)
    updated = [p.copy() for p in params]
    loss = mlp_layers_step(x, y, *updated, lr)
    np.testing.assert_allclose(loss, _reference_loss(x, y, params), rtol=1e-5)
    eps = 1e-6
    base = [p.astype(np.float64) for p in params]
    for k, p in enumerate(base):
        grad = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            hi = [q.copy() for q in base]
            lo = [q.copy() for q in base]
            hi[k][i] += eps
            lo[k][i] -= eps
            grad[i] = (_reference_loss(x, y, hi) - _reference_loss(x, y, lo)) / (2 * eps)
        np.testing.assert_allclose(updated[k], p - 0.5 * grad, rtol=1e-4, atol=1e-5,
                                   err_msg=f"parameter {k}")
    gemm_floor(tuple(sizes), 6)()  # the floor's shapes chain: it runs without a shape error
