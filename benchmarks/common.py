"""Timing harness shared by the benchmarks: interleaved repeats, medians, per-round ratios.

Why interleaving: two candidates timed in separate blocks see different CPU frequency, cache and
background load; timed alternately (A, B, A, B, ...) they see the same, and the median of the
per-round ratios B/A cancels most of the drift that the two medians alone would carry.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
MNIST_DIR = REPO_ROOT.parent / "shared" / "data" / "mnist"

@dataclass
class Timing:
    """Per-call times (ns) of one candidate, in round order, and its ratio to the baseline."""

    name: str
    times_ns: list[int]
    ratios: list[float] = field(default_factory=list)

    @property
    def median_us(self) -> float:
        """Median time of one call, in microseconds."""
        return statistics.median(self.times_ns) / 1e3

    @property
    def median_ratio(self) -> float | None:
        """Median of the per-round ratios to the baseline (None for the baseline itself)."""
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def iqr_us(self) -> tuple[float, float]:
        """First and third quartile of one call, in microseconds (the spread of the median)."""
        if len(self.times_ns) < 2:
            return (self.median_us, self.median_us)
        q = statistics.quantiles(self.times_ns, n=4, method="inclusive")
        return (q[0] / 1e3, q[2] / 1e3)


def interleave(
    candidates: Mapping[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 5,
    baseline: str | None = None,
) -> dict[str, Timing]:
    """Time each candidate ``repeats`` times, one call of each per round, in interleaved order.

    Args:
        candidates: name -> a zero-argument callable doing one full step (it must block until
            its result is ready, e.g. ``block_until_ready`` for JAX).
        repeats: rounds timed; each round calls every candidate once.
        warmup: untimed rounds first (JIT compilation, caches, allocator pools).
        baseline: the candidate whose time divides the others' in each round (default: the first).

    Returns:
        name -> Timing, in the order given; every candidate but the baseline has ``ratios``.
    """
    if repeats < 1:
        raise ValueError(f"interleave(): repeats must be >= 1, got {repeats}")
    names = list(candidates)
    if not names:
        raise ValueError("interleave(): no candidates to time")
    baseline = names[0] if baseline is None else baseline
    if baseline not in candidates:
        raise ValueError(f"interleave(): baseline {baseline!r} is not among {names}")
    for _ in range(warmup):
        for name in names:
            candidates[name]()
    clock = time.perf_counter_ns
    times: dict[str, list[int]] = {name: [] for name in names}
    for r in range(repeats):
        # Rotate the order each round so that no candidate always runs right after the same
        # other one (which would leave it the same warm or cold caches every time).
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn = candidates[name]
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    base = times[baseline]
    result: dict[str, Timing] = {}
    for name in names:
        timing = Timing(name, times[name])
        if name != baseline:
            timing.ratios = [t / b for t, b in zip(times[name], base)]
        result[name] = timing
    return result


def environment(threads: int) -> dict[str, object]:
    """What the numbers depend on: CPU, Python, numpy, the BLAS kernel and the thread count."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "threads": threads,
        # Other processes on the machine skew every number: report how busy it was.
        "load average (1, 5, 15 min)": ", ".join(f"{v:.2f}" for v in os.getloadavg())
        if hasattr(os, "getloadavg") else "unknown",
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["blas"] = "threadpoolctl not installed: kernel unknown"
    else:
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        info["blas"] = "; ".join(
            f"{p.get('internal_api')} {p.get('version')} {p.get('architecture')} "
            f"({p.get('num_threads')} threads)"
            for p in pools
        ) or "no BLAS pool found"
    return info


def limit_threads(threads: int) -> contextlib.AbstractContextManager[object]:
    """Hold every thread pool loaded so far (BLAS, OpenMP) to ``threads`` threads, as a context.

    Needed besides the environment variables because a library loaded before they were set, or
    one that ignores them, keeps its own count; call it again after importing a framework.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=threads)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def mnist_batch(batch: int, *, source: str = "mnist", seed: int = 0) -> tuple[np.ndarray, ...]:
    """A fixed batch: float32 pixels (batch, 784), one-hot float32 labels and int64 labels.

    ``source="mnist"`` takes the first ``batch`` training images of the real MNIST (the shared
    copy, else the subset shipped with symdl); ``"random"`` draws MNIST-shaped data with ``seed``.
    """
    if source == "mnist":
        from symdl.datasets import load_mnist

        data = (load_mnist(MNIST_DIR) if MNIST_DIR.is_dir()
                else load_mnist(download=False, quiet=True))
        x = np.ascontiguousarray(data.x_train[:batch], dtype=np.float32)
        labels = np.asarray(data.y_train[:batch], dtype=np.int64)
    elif source == "random":
        rng = np.random.default_rng(seed)
        x = rng.random((batch, 784), dtype=np.float32)
        labels = rng.integers(0, 10, size=batch, dtype=np.int64)
    else:
        raise ValueError(f"mnist_batch(): source must be 'mnist' or 'random', got {source!r}")
    y = np.zeros((batch, 10), dtype=np.float32)
    y[np.arange(batch), labels] = 1.0
    return x, y, labels


def init_params(sizes: list[int], *, seed: int = 0) -> list[np.ndarray]:
    """Float32 [W1, b1, W2, b2, ...] for sizes like [784, 256, 10]: Glorot-uniform W, zero b."""
    rng = np.random.default_rng(seed)
    params: list[np.ndarray] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params.append(rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32))
        params.append(np.zeros(fan_out, dtype=np.float32))
    return params


def note(message: str) -> None:
    """Progress line on stderr, so stdout holds only the table."""
    print(message, file=sys.stderr, flush=True)
