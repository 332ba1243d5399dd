"""tinyflow's ``datasets.get_mnist``: MNIST from symdl's loader in tinyflow's layout."""

from __future__ import annotations

from ..input_data import Datasets, read_data_sets


def get_mnist(flatten: bool = False, onehot: bool = False) -> Datasets:
    """MNIST as tinyflow gives it: ``train`` and ``test`` with images (n, 784) when
    ``flatten`` else (n, 1, 28, 28), and one-hot float32 rows or int64 class ids.

    The data come from `symdl.datasets.load_mnist`'s lookup order (``$SYMDL_DATA``, the cache,
    a download, the shipped subset), all of it used for training as tinyflow does.
    """
    data = read_data_sets(None, one_hot=onehot, validation_size=0)
    if not flatten:
        for split in (data.train, data.test):
            split.images = split.images.reshape(-1, 1, 28, 28)
    return data


__all__ = ["get_mnist"]
