"""``tf.summary``: scalars and histograms written as TensorBoard event files.

`scalar` and `histogram` register a tensor in the graph's ``summaries`` collection; `merge_all`
gathers them into one fetch; running it gives a `Summary` (tag, kind and value of each), which
`FileWriter.add_summary` writes. Event files are written through tensorboardX (the optional
extra ``symdl[tensorboard]``), so ``tensorboard --logdir`` shows the curves. Without tensorboardX
the writer appends rows to ``<logdir>/summaries.csv`` and warns once.
"""

from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .graph import get_default_graph

SUMMARIES = "summaries"


@dataclass(eq=False)
class SummaryTensor:
    """One summary: a tag, a kind ("scalar" or "histogram") and the tensor it records."""

    tag: str
    kind: str
    tensor: Any

    def __repr__(self) -> str:
        return f"<tf.summary.{self.kind} {self.tag!r}>"


@dataclass(eq=False)
class MergedSummary:
    """A fetch that computes several summaries; `Session.run` returns a `Summary`."""

    items: list[SummaryTensor]

    @property
    def tensors(self) -> list[Any]:
        """The tensors to compute, in the order of ``items``."""
        return [item.tensor for item in self.items]

    def value(self, values: list[Any]) -> Summary:
        """The `Summary` of these computed values."""
        return Summary([(item.tag, item.kind, np.asarray(v))
                        for item, v in zip(self.items, values, strict=True)])


@dataclass
class Summary:
    """Computed summaries: (tag, kind, value) triples, as ``sess.run(merged)`` returns them."""

    values: list[tuple[str, str, np.ndarray]] = field(default_factory=list)


def _register(tag: str, kind: str, tensor: Any, collections: list[str] | None) -> MergedSummary:
    item = SummaryTensor(str(tag), kind, tensor)
    graph = get_default_graph()
    for name in collections or [SUMMARIES]:
        graph.add_to_collection(name, item)
    return MergedSummary([item])


def scalar(name: str, tensor: Any, collections: list[str] | None = None,
           family: str | None = None) -> MergedSummary:
    """Record a scalar tensor under ``name``; fetchable on its own or through `merge_all`."""
    return _register(name, "scalar", tensor, collections)


def histogram(name: str, values: Any, collections: list[str] | None = None,
              family: str | None = None) -> MergedSummary:
    """Record the distribution of a tensor's entries under ``name``."""
    return _register(name, "histogram", values, collections)


def merge(inputs: list[MergedSummary], collections: list[str] | None = None,
          name: str | None = None) -> MergedSummary:
    """One fetch for the given summaries."""
    return MergedSummary([item for merged in inputs for item in merged.items])


def merge_all(key: str = SUMMARIES, scope: str | None = None,
              name: str | None = None) -> MergedSummary | None:
    """One fetch for every summary of the default graph (None when there are none)."""
    items = get_default_graph().get_collection(key)
    return MergedSummary(list(items)) if items else None


class FileWriter:
    """Writes summaries to ``logdir`` as TensorBoard event files (or a CSV, see the module)."""

    _warned = False

    def __init__(self, logdir: str | os.PathLike[str], graph: object = None,
                 max_queue: int = 10, flush_secs: int = 120, _stacklevel: int = 2,
                 **_ignored: object) -> None:
        self.logdir = os.fspath(logdir)
        os.makedirs(self.logdir, exist_ok=True)
        try:
            from tensorboardX import SummaryWriter as _Writer
        except ImportError:
            self._writer: Any = None
            self._csv_path = os.path.join(self.logdir, "summaries.csv")
            if not FileWriter._warned:
                FileWriter._warned = True
                warnings.warn(
                    "tf.summary.FileWriter: tensorboardX is not installed, so summaries go to "
                    f"{self._csv_path} instead of TensorBoard event files; install it with "
                    "pip install 'symdl[tensorboard]'",
                    UserWarning, stacklevel=_stacklevel,
                )
        else:
            self._writer = _Writer(self.logdir, max_queue=max_queue, flush_secs=flush_secs)

    def add_summary(self, summary: Summary | None, global_step: int | None = None) -> None:
        """Write one computed `Summary` at ``global_step``."""
        if summary is None:
            return
        step = None if global_step is None else int(global_step)
        if self._writer is not None:
            for tag, kind, value in summary.values:
                if kind == "scalar":
                    self._writer.add_scalar(tag, float(value), step)
                else:
                    self._writer.add_histogram(tag, np.asarray(value, np.float64).ravel(), step)
            return
        new = not os.path.exists(self._csv_path)
        with open(self._csv_path, "a", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            if new:
                out.writerow(["step", "tag", "kind", "value", "min", "max", "count"])
            for tag, kind, value in summary.values:
                flat = np.asarray(value, np.float64).ravel()
                if kind == "scalar":
                    out.writerow([step, tag, kind, float(flat[0]), "", "", 1])
                else:
                    out.writerow([step, tag, kind, float(flat.mean()) if flat.size else "",
                                  float(flat.min()) if flat.size else "",
                                  float(flat.max()) if flat.size else "", flat.size])

    def add_graph(self, graph: object, global_step: int | None = None) -> None:
        """Accepted for compatibility: symdl's graph is shown by `Session.source`, not here."""

    def flush(self) -> None:
        """Write pending events to disk."""
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        if self._writer is not None:
            self._writer.close()


__all__ = [
    "FileWriter", "MergedSummary", "Summary", "histogram", "merge", "merge_all", "scalar",
]
