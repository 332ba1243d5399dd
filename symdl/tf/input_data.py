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

    def next_batch(self, batch_size: int, fake_data: bool = False,
                   shuffle: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The next ``batch_size`` examples; a new permutation starts when an epoch runs out
        (the partial remainder of an epoch is skipped, so every batch has ``batch_size`` rows).

        ``fake_data`` (TensorFlow's unit-test switch) is refused; ``shuffle=False`` visits the
        examples in order."""
        if fake_data:
            raise ValueError("next_batch: fake_data is not supported; use the real data")
        if not shuffle and self._position == 0 and self.epochs_completed == 0:
            self._order = np.arange(self.num_examples)
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
    validation: DataSet | None = None


def read_data_sets(train_dir: str | os.PathLike[str] | None = None, fake_data: bool = False,
                   one_hot: bool = False, dtype: object = None, reshape: bool = True,
                   validation_size: int = 5000, seed: int | None = None, *,
                   quiet: bool = True) -> Datasets:
    """Load MNIST from ``train_dir`` (or symdl's lookup order when None) as ``train``,
    ``validation`` and ``test``, with TensorFlow's argument order.

    ``one_hot=True`` gives float32 one-hot label rows, else int64 class ids. The first
    ``validation_size`` training images are the validation set, as in TensorFlow; when the
    training set is not larger than that (the shipped subset), a tenth of it is held out instead.
    ``reshape=False`` gives images of shape (n, 28, 28, 1). ``fake_data`` is refused.
    """
    if fake_data:
        raise ValueError("read_data_sets: fake_data is not supported; use the real data")
    data = load_mnist(train_dir, quiet=quiet)
    base = 0 if seed is None else int(seed)

    def labels(y: np.ndarray) -> np.ndarray:
        return _one_hot(y, 10) if one_hot else y

    def images(x: np.ndarray) -> np.ndarray:
        return x if reshape else x.reshape(-1, 28, 28, 1)

    n = len(data.x_train)
    held = validation_size if validation_size < n else n // 10
    return Datasets(
        DataSet(images(data.x_train[held:]), labels(data.y_train[held:]), base),
        DataSet(images(data.x_test), labels(data.y_test), base + 1),
        data.source,
        DataSet(images(data.x_train[:held]), labels(data.y_train[:held]), base + 2),
    )


__all__ = ["DataSet", "Datasets", "read_data_sets"]
