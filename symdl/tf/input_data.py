"""MNIST in the shape of TensorFlow's tutorial loader: ``mnist.train.next_batch(100)``.

``read_data_sets(dir, one_hot=True)`` mirrors ``tensorflow.examples.tutorials.mnist.input_data``
so the course's programs keep their lines; the data come from `symdl.datasets.load_mnist`. Batches
are deterministic: each epoch visits the examples in a permutation drawn from
``np.random.default_rng(seed)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..datasets import load_mnist
from ..datasets import one_hot as _one_hot


@dataclass(eq=False)
class DataSet:
    """Images (n, 784) float32 in [0, 1] and labels (one-hot float32 rows, or int64 ids)."""

    images: np.ndarray
    labels: np.ndarray
    seed: int = 0
    _order: np.ndarray = field(init=False, repr=False)
    _position: int = field(init=False, default=0, repr=False)
    epochs_completed: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._order = self._rng.permutation(len(self.images))

    @property
    def num_examples(self) -> int:
        """Number of examples."""
        return len(self.images)

    def next_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """The next ``batch_size`` examples; a new permutation starts when an epoch runs out
        (the partial remainder of an epoch is skipped, so every batch has ``batch_size`` rows)."""
        if not 0 < batch_size <= self.num_examples:
            raise ValueError(
                f"next_batch: batch_size must be in 1..{self.num_examples}, got {batch_size}"
            )
        if self._position + batch_size > self.num_examples:
            self.epochs_completed += 1
            self._order = self._rng.permutation(self.num_examples)
            self._position = 0
        rows = self._order[self._position : self._position + batch_size]
        self._position += batch_size
        return self.images[rows], self.labels[rows]


@dataclass(eq=False)
class Datasets:
    """``train`` and ``test`` splits, as the tutorial loader returns them."""

    train: DataSet
    test: DataSet
    source: str


def read_data_sets(train_dir: str | os.PathLike[str] | None = None, one_hot: bool = False,
                   seed: int = 0, quiet: bool = True) -> Datasets:
    """Load MNIST from ``train_dir`` (or symdl's lookup order when None) as ``train``/``test``.

    ``one_hot=True`` gives float32 one-hot label rows, else int64 class ids.
    """
    data = load_mnist(train_dir, quiet=quiet)

    def labels(y: np.ndarray) -> np.ndarray:
        return _one_hot(y, 10) if one_hot else y

    return Datasets(
        DataSet(data.x_train, labels(data.y_train), seed),
        DataSet(data.x_test, labels(data.y_test), seed + 1),
        data.source,
    )


__all__ = ["DataSet", "Datasets", "read_data_sets"]
