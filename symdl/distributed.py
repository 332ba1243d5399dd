"""Data-parallel training on Dask distributed: `fit` with a ``client``, one shard per worker.

    from dask.distributed import Client, LocalCluster
    step = sd.optim.compile_train_step(loss, params, sd.optim.Adam(1e-3), [x, y],
                                       metrics={"accuracy": acc}, split=True)
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1) as cluster, \\
            Client(cluster) as client:
        history = sd.fit(step, values, (x_train, y_train), batch_size=128, client=client)

How a run goes:

- **Start.** Every worker reports its symdl and numpy versions; one that differs from the
  driver's is refused (`WorkerVersionError`, naming the worker and both versions). The
  generated module's source and ``.npy`` constants are sent to each worker once, with the
  content hash the driver computed; the worker checks the hash, writes the module into its own
  cache and imports it from there (`codegen.cache.load_module`). The training arrays are
  scattered to every worker once (`Client.scatter(..., broadcast=True)`): each worker holds a
  full copy, so any row can be in its shard of any batch and the data order is exactly that
  of a single-process run. Per step only row indices travel to the workers.
- **A step.** The driver draws the same permutation as `symdl.train.fit` and cuts the global
  batch into one contiguous shard per worker (`numpy.array_split`: sizes differ by at most
  one). Each worker runs the split step's ``grads`` on its shard: the loss, metric and
  gradient *sums*. The sums are added in a Dask tree reduction of fixed shape ``((s0 + s1) +
  (s2 + s3)) + ...`` over the shard index, so a run is bitwise reproducible from its seed for a
  given worker count, whatever worker finishes first. Divided once by the global batch size,
  they give the single-process step's numbers to rounding (1e-12 in float64).
- **The update** (``update=``): ``"driver"`` (default) fetches the summed gradients, applies
  the optimizer on the driver (``apply``) and hands the new parameters to the workers for
  the next step; ``"replicas"`` keeps parameters and optimizer state on every worker, sends the
  summed gradients to each (worker to worker) and lets every replica apply the same update,
  so only the loss and metrics come back to the driver. ``benchmarks/bench_distributed.py``
  compares the two: the driver's update was faster in 3 of 4 cases (two models, one and two
  workers), in two runs, so it is the default (figures in ``benchmarks/README.md``).
- **Faults.** A worker that dies or leaves mid-run stops the run (no re-sharding): a
  `WorkerLostError` names it and the step it died in. Checkpoints are written atomically
  (`symdl.train.save_checkpoint`), so the last one is intact; ``resume=`` it on any number of
  workers, or in one process, and the run goes on as if uninterrupted (to rounding: the shards'
  sums are added in another grouping).

Checkpoints, the run signature, validation, the progress bar and the history are those of
`symdl.train.fit`; the bar also shows samples per second over all workers, and the Dask
dashboard's link is printed when the cluster has one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import CodegenError, SymdlError
from .optim import TrainStep
from .train import History, run_epochs

# How long to wait for a step's results before checking that every worker is still there: a
# task pinned to a worker that died never finishes, it waits for that worker.
POLL_SECONDS = 1.0
# How long a Dask error may precede the scheduler's notice that a worker died.
LOSS_SECONDS = 10.0
UPDATES = ("driver", "replicas")
# The draws of a shard come from default_rng([seed, DRAW_STREAM, step, shard]): a stream apart
# from the one-process run's data order ([seed]) and draws ([seed, 1]) and evaluation ([seed, 2]).
DRAW_STREAM = 3


class WorkerVersionError(SymdlError, RuntimeError):
    """A worker runs another symdl or numpy version than the driver."""


class WorkerLostError(SymdlError, RuntimeError):
    """A worker died or left the cluster during a run."""


# ------------------------------------------------------------------ on the workers

# What each run keeps in a worker process, by run key: the imported module, and with
# update="replicas" the parameters and optimizer state. Dropped at the end of the run.
_RUNS: dict[str, dict[str, Any]] = {}


def versions() -> dict[str, str]:
    """The versions that must agree between the driver and every worker."""
    return {"symdl": __version__, "numpy": np.__version__}


def _report_versions() -> dict[str, str]:
    """What a worker reports at start (run by `Client.run`; a test replaces it)."""
    return versions()


def _install(key: str, source: str, name: str, arrays: dict[str, np.ndarray],
             expected: str) -> str:
    """Check the module's hash, write it into this worker's cache, import it; return its file."""
    from codegen.cache import digest, load_module

    received = digest(source)
    if received != expected:
        raise CodegenError(
            f"distributed: the module {name} arrived with content hash {received}, the driver "
            f"sent {expected}: it was changed in transit. Start the run again"
        )
    module = load_module(source, name, arrays, None)
    _RUNS[key] = {"module": module}
    return str(module.__file__)


def _put_replica(key: str, params: list[np.ndarray], state: list[np.ndarray]) -> None:
    _RUNS[key]["params"], _RUNS[key]["state"] = params, state


def _get_replica(key: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    return _RUNS[key]["params"], _RUNS[key]["state"]


def _forget(key: str) -> None:
    _RUNS.pop(key, None)


def _shard_grads(key: str, data: tuple, rows: np.ndarray, params: Sequence[np.ndarray] | None,
                 settings: Sequence[float], draws: int, draw_seed: Sequence[int]) -> tuple:
    """``grads`` on this worker's rows of the global batch (``params`` None: the replica's).

    A model that draws (``draws`` generator arguments: dropout) draws from a generator seeded
    by the run's seed, the global step and the shard's index, so a run is reproducible from its
    seed (for a given number of workers) and a resumed one draws what the uninterrupted one did.
    """
    run = _RUNS[key]
    values = run["params"] if params is None else params
    generators = [np.random.default_rng(list(draw_seed))] * draws
    return run["module"].grads(*(a[rows] for a in data), *values, len(rows), *settings,
                               *generators)


def _hold(value: object) -> object:
    """A task whose result is its argument: how the driver hands the workers a value."""
    return value


def _add(left: tuple, right: tuple) -> tuple:
    """One node of the reduction tree: the sums of two groups of shards."""
    return tuple(a + b for a, b in zip(left, right, strict=True))


def _apply_replica(key: str, total: tuple, first_grad: int, batch_size: int,
                   lr: float) -> None:
    run = _RUNS[key]
    run["module"].apply(*total[first_grad:], *run["params"], *run["state"], lr, batch_size)


def _head(total: tuple, count: int) -> tuple:
    """The loss and metric sums of a reduced tuple (what the driver fetches in replicas mode)."""
    return tuple(total[:count])


# ------------------------------------------------------------------ on the driver


class _Cluster:
    """The workers of one run, in a fixed order, and the Dask calls the loop makes."""

    def __init__(self, client: Any, workers: Sequence[str] | None) -> None:
        self.client = client
        info = _workers_info(client)
        names = {addr: str(w.get("name", addr)) for addr, w in info.items()}
        if workers is not None:
            by_name = {name: addr for addr, name in names.items()}
            chosen = [by_name.get(w, w) for w in workers]
            unknown = [w for w, addr in zip(workers, chosen, strict=True) if addr not in names]
            if unknown:
                raise ValueError(f"fit: no worker {unknown[0]!r} in the cluster; it has "
                                 f"{sorted(names.values())}")
        else:
            chosen = list(names)
        if not chosen:
            raise ValueError("fit: the Dask cluster has no workers; start some, or wait for "
                             "them (client.wait_for_workers(n))")
        self.addresses = sorted(set(chosen), key=lambda a: (names[a], a))
        self.names = {a: names[a] for a in self.addresses}

    def label(self, address: str) -> str:
        name = self.names.get(address, address)
        return address if name == address else f"{name} ({address})"

    def check_versions(self) -> None:
        """Refuse a worker whose symdl or numpy differs from the driver's, naming both."""
        mine = versions()
        reported = self.client.run(_report_versions, workers=self.addresses)
        for address in self.addresses:
            theirs = reported[address]
            for package, version in mine.items():
                if theirs.get(package) != version:
                    raise WorkerVersionError(
                        f"fit: worker {self.label(address)} runs {package} "
                        f"{theirs.get(package)}, the driver {package} {version}; install the "
                        "same versions on every worker (a generated module is only known to "
                        "compute the same numbers with them)"
                    )

    def missing(self) -> list[str]:
        """The run's workers that are no longer in the cluster."""
        present = _workers_info(self.client)
        return [a for a in self.addresses if a not in present]

    def share(self, value: object) -> Any:
        """A future of ``value`` for the tasks of this step: one task holds it and the workers
        fetch it from each other. Not `Client.scatter`: a scatter to a worker that died waits
        for it, where a task's future fails and `result` notices the loss."""
        return self.client.submit(_hold, value, pure=False)

    def result(self, futures: list, where: str) -> list:
        """The futures' results; a `WorkerLostError` if a worker of the run is gone."""
        from dask.distributed import wait

        while True:
            try:
                wait(futures, timeout=POLL_SECONDS)
            except TimeoutError:
                self.check_alive(where)
                continue
            return self.client.gather(futures)

    def check_alive(self, where: str, cause: BaseException | None = None) -> None:
        """Raise `WorkerLostError` if a worker of the run left the cluster. With a ``cause`` of
        the kinds a worker's death surfaces as (a closed connection, a cancelled future), wait
        up to `LOSS_SECONDS` for the scheduler to notice the loss before deciding that the
        error is something else; an error the task itself raised is passed on at once."""
        patience = LOSS_SECONDS if cause is not None and _may_be_a_loss(cause) else 0.0
        deadline = time.monotonic() + patience
        while True:
            gone = self.missing()
            if gone:
                raise WorkerLostError(
                    f"fit: worker {', '.join(self.label(a) for a in gone)} died or left the "
                    f"cluster during {where}; the run stopped there"
                ) from cause
            if time.monotonic() >= deadline:
                return
            time.sleep(0.1)


def _may_be_a_loss(exc: BaseException) -> bool:
    """Whether ``exc`` is how Dask reports a worker that died under a task or a transfer."""
    import asyncio
    import concurrent.futures

    from dask.distributed import KilledWorker

    return isinstance(exc, (OSError, KilledWorker, asyncio.CancelledError,
                            concurrent.futures.CancelledError))


def _workers_info(client: Any) -> dict[str, dict]:
    """Every worker of the cluster by address (some Dask versions list the first five only,
    unless asked for all with ``n_workers=-1``)."""
    import inspect

    if "n_workers" in inspect.signature(client.scheduler_info).parameters:
        return client.scheduler_info(n_workers=-1)["workers"]
    return client.scheduler_info()["workers"]


def _reduce(client: Any, parts: list) -> Any:
    """A tree of `_add` tasks over ``parts`` in list order: the same grouping on every run."""
    level = parts
    while len(level) > 1:
        pairs = [client.submit(_add, level[i], level[i + 1], pure=False)
                 for i in range(0, len(level) - 1, 2)]
        level = pairs + ([level[-1]] if len(level) % 2 else [])
    return level[0]


def fit(
    step: TrainStep,
    params: dict[str, np.ndarray],
    train: Sequence[np.ndarray],
    *,
    client: Any,
    workers: Sequence[str] | None = None,
    update: str = "driver",
    epochs: int = 1,
    batch_size: int = 128,
    lr: float | Callable[[int], float] | None = None,
    seed: int = 0,
    validation: Sequence[np.ndarray] | None = None,
    state: dict[str, np.ndarray] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    checkpoint_every: int | None = None,
    resume: str | os.PathLike[str] | None = None,
    force: bool = False,
    max_steps: int | None = None,
    progress: bool | None = None,
    quiet: bool = False,
    plot: str | os.PathLike[str] | None = None,
    eval_batch_size: int = 2000,
) -> History:
    """`symdl.train.fit` on the workers of a Dask ``client``: each global batch is cut into
    one shard per worker, the gradient sums are reduced and the update applied once.

    Arguments are `symdl.train.fit`'s, and:

    Args:
        step: compiled with ``split=True`` (it needs the ``grads`` and ``apply`` functions).
        client: a ``dask.distributed.Client``.
        workers: the workers to use, by name or address (default: all the cluster has).
        update: ``"driver"`` applies the update on the driver and sends the parameters;
            ``"replicas"`` applies it on every worker's copy (see the module docstring).

    Raises:
        WorkerVersionError: a worker's symdl or numpy version differs from the driver's.
        WorkerLostError: a worker died or left during the run (the last checkpoint is intact).
        CodegenError: the step was not compiled with ``split=True``.
    """
    if not step.split:
        raise CodegenError(
            "fit: training on a Dask client needs the split step; compile it with "
            "sd.optim.compile_train_step(..., split=True)"
        )
    if update not in UPDATES:
        raise ValueError(f"fit: update must be one of {UPDATES}, got {update!r}")

    def make_steps(state: dict[str, np.ndarray]) -> _Run:
        cluster = _Cluster(client, workers)
        cluster.check_versions()
        return _Run(step, cluster, train, params, state, update, seed)

    return run_epochs(
        step, params, train, make_steps, epochs=epochs, batch_size=batch_size, lr=lr,
        seed=seed, validation=validation, state=state, checkpoint=checkpoint,
        checkpoint_every=checkpoint_every, resume=resume, force=force, max_steps=max_steps,
        progress=progress, quiet=quiet, plot=plot, eval_batch_size=eval_batch_size,
    )


class _Run:
    """One run's module, data and parameters on the workers, and its step."""

    def __init__(self, step: TrainStep, cluster: _Cluster, train: Sequence[np.ndarray],
                 params: dict[str, np.ndarray], state: dict[str, np.ndarray],
                 update: str, seed: int) -> None:
        self.step, self.cluster, self.client = step, cluster, cluster.client
        self.seed = seed
        self.train, self.params, self.state, self.update = train, params, state, update
        self.key = f"symdl-{os.getpid()}-{id(self):x}-{time.time_ns()}"
        self.data: Any = None
        self.stale = False  # replicas mode: the driver's arrays lag the workers'
        self.sums = 1 + len(step.metric_names)

    def greeting(self) -> str | None:
        """The workers and the Dask dashboard's link, when the cluster has one."""
        link = getattr(self.client, "dashboard_link", None)
        return f"fit: {len(self.cluster.addresses)} Dask workers; dashboard: {link}" if link \
            else None

    def draw_state(self) -> Mapping | None:
        """None: a shard's draws come from its step and shard number, not a running state."""
        return None

    def restore_draws(self, saved: Mapping | None) -> None:
        """Nothing to restore (see `draw_state`)."""

    def run(self, idx: np.ndarray, rate: float, number: int) -> tuple[float, list[float]]:
        """Global step ``number`` on rows ``idx``: the loss and metrics, averaged over them."""
        sums = self.global_step(idx, rate, f"step {number + 1}", number)
        return float(sums[0]) / len(idx), [float(v) / len(idx) for v in sums[1:]]

    def start(self) -> None:
        """Send the module and the data to every worker, once."""
        from codegen.cache import verified_source

        # The file as the cache verified it (``<name>_<hash>.py``): a module edited after it
        # was generated is refused here, and each worker checks the hash again on arrival.
        path = Path(self.step.path)
        source = verified_source(path).decode("utf-8")
        name, _, expected = path.stem.rpartition("_")
        self.client.run(_install, self.key, source, name, self.step.arrays, expected,
                        workers=self.cluster.addresses)
        self.data = self.client.scatter([tuple(self.train)], workers=self.cluster.addresses,
                                        broadcast=True, hash=False)[0]
        if self.update == "replicas":
            self.client.run(_put_replica, self.key, self._params(), self._state(),
                            workers=self.cluster.addresses)

    def _params(self) -> list[np.ndarray]:
        return [self.params[k] for k in self.step.param_names]

    def _state(self) -> list[np.ndarray]:
        return [self.state[k] for k in self.step.state_names]

    def global_step(self, idx: np.ndarray, rate: float, where: str, number: int) -> tuple:
        """Global step ``number`` (0-based, over the whole run) on the rows ``idx``; returns the
        loss and metric sums.

        Raises:
            WorkerLostError: when a Dask call fails because a worker of the run died.
        """
        try:
            return self._global_step(idx, rate, where, number)
        except SymdlError:
            raise
        except Exception as exc:
            self.cluster.check_alive(where, exc)
            raise

    def _global_step(self, idx: np.ndarray, rate: float, where: str, number: int) -> tuple:
        shards = [rows for rows in np.array_split(idx, len(self.cluster.addresses)) if len(rows)]
        replicas = self.update == "replicas"
        params = None
        if not replicas:
            params = self.cluster.share(self._params())
        draws = len(self.step.spec.rngs)
        parts = [self.client.submit(_shard_grads, self.key, self.data, rows, params,
                                    self.step.train_settings, draws,
                                    (self.seed, DRAW_STREAM, number, shard),
                                    workers=[address], allow_other_workers=False, pure=False)
                 for shard, (rows, address) in enumerate(
                     zip(shards, self.cluster.addresses, strict=False))]
        total = _reduce(self.client, parts)
        if replicas:
            applied = [self.client.submit(_apply_replica, self.key, total, self.sums, len(idx),
                                          rate, workers=[address], allow_other_workers=False,
                                          pure=False)
                       for address in self.cluster.addresses]
            head = self.client.submit(_head, total, self.sums, pure=False)
            sums, *_ = self.cluster.result([head, *applied], where)
            self.stale = True
            return sums
        (result,) = self.cluster.result([total], where)
        self.step.apply(result[self.sums:], self.params, self.state, len(idx), rate)
        return result[: self.sums]

    def sync(self) -> None:
        """Bring the driver's params and state up to date (replicas mode: from worker 0)."""
        if not self.stale:
            return
        first = self.cluster.addresses[0]
        params, state = self.client.run(_get_replica, self.key, workers=[first])[first]
        for name, value in zip(self.step.param_names, params, strict=True):
            self.params[name][...] = value
        for name, value in zip(self.step.state_names, state, strict=True):
            self.state[name][...] = value
        self.stale = False

    def close(self) -> None:
        """Drop the run's module, data and replicas from the workers that are still there."""
        if self.data is not None:
            self.data.release()
        gone = set(self.cluster.missing())  # one scheduler query, not one per worker
        alive = [a for a in self.cluster.addresses if a not in gone]
        if alive:
            self.client.run(_forget, self.key, workers=alive, on_error="ignore")


__all__ = ["WorkerLostError", "WorkerVersionError", "fit", "versions"]
