"""Rebuild the MNIST subset shipped in `symdl/data/mnist_subset/` from the full data set.

The subset is the first 5000 training and the first 1000 test images with their labels, in the
original order, written as the same four gzipped IDX files the full set uses, so loading it goes
through the real reader. The gzip streams carry no time stamp or name: running this script again
on the same input gives byte-identical files.

Usage, from the project root:

    python -m symdl.data.make_subset [--source DIR] [--out DIR] [--train N] [--test M]

`--source` defaults to `../shared/data/mnist` next to the project root (or `$SYMDL_DATA`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from symdl.datasets import (
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    find_mnist_files,
    read_idx,
    write_idx,
)
from symdl.errors import DatasetError

N_TRAIN = 5000
N_TEST = 1000

_HERE = Path(__file__).resolve().parent
DEFAULT_OUT = _HERE / "mnist_subset"
# symdl/data/make_subset.py -> project root is two levels up; the shared data sit beside it.
DEFAULT_SOURCE = _HERE.parents[1].parent / "shared" / "data" / "mnist"


def make_subset(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
) -> list[Path]:
    """Write the first `n_train` training and `n_test` test records of `source` into `out`.

    Returns:
        The four files written, as `out/<name>.gz`.

    Raises:
        DatasetError: if `source` lacks a file, a file is damaged, or holds fewer records than
            asked for.
    """
    files = find_mnist_files(source, origin="--source")
    out = Path(out)
    counts = {
        TRAIN_IMAGES: n_train,
        TRAIN_LABELS: n_train,
        TEST_IMAGES: n_test,
        TEST_LABELS: n_test,
    }
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, count in counts.items():
        array = read_idx(files[name])
        if array.shape[0] < count:
            raise DatasetError(
                f"make_subset: {files[name]} holds {array.shape[0]} records, fewer than the "
                f"{count} asked for"
            )
        target = out / f"{name}.gz"
        write_idx(target, array[:count])
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_source = Path(os.environ.get("SYMDL_DATA") or DEFAULT_SOURCE)
    parser.add_argument("--source", type=Path, default=default_source, help="full MNIST dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the subset")
    parser.add_argument("--train", type=int, default=N_TRAIN, help="training records to keep")
    parser.add_argument("--test", type=int, default=N_TEST, help="test records to keep")
    args = parser.parse_args(argv)
    try:
        written = make_subset(args.source, args.out, args.train, args.test)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"{path}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
