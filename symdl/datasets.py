"""MNIST in the original IDX layout: a strict reader, a loader with a clear lookup order, one-hot.

`load_mnist()` looks for the four MNIST files in this order and uses the first that applies:

1. the `path` argument, if given (the files must be there: a missing one is an error, no fallback);
2. the directory in `$SYMDL_DATA`, if set (same rule);
3. the cache directory `$SYMDL_CACHE/mnist` (default `~/.cache/symdl/mnist`), if all four are there;
4. a download into that cache directory from public mirrors, unless `download=False` or
   `$SYMDL_OFFLINE` is set; every file is checked against the MD5 of the original;
5. the small real subset shipped in `symdl/data/mnist_subset/` (5000 training and 1000 test images
   in the original order), with a one-line notice on stderr.

Each file may be gzipped (`.gz`) or not. A damaged file is never skipped silently: it raises
`DatasetError` naming the file, what is wrong with it and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import math
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from symdl.errors import DatasetError
from symdl.files import write_atomically

__all__ = [
    "MIRRORS",
    "MNIST_FILES",
    "Mnist",
    "cache_dir",
    "find_mnist_files",
    "load_mnist",
    "one_hot",
    "read_idx",
    "write_idx",
]

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

# MD5 of the decompressed originals. Only downloads are checked against them: a user's own
# directory may legitimately hold a subset or a re-encoded copy.
MNIST_FILES: dict[str, str] = {
    TRAIN_IMAGES: "6bbc9ace898e44ae57da46a324031adb",
    TRAIN_LABELS: "a25bea736e30d166cdddb491f175f624",
    TEST_IMAGES: "2646ac647ad5339dbf082846283269ea",
    TEST_LABELS: "27ae3e4e09519cfbb04c329615203637",
}

# Tried in order; each serves `<name>.gz` for the four names above.
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

DOWNLOAD_TIMEOUT_S = 5.0
# Bounds on a download: the originals are at most 9.9 MB gzipped, 47,040,016 bytes inflated.
_MAX_DOWNLOAD = 16 * 2**20
_MAX_MNIST_BYTES = 47_040_016

SUBSET_DIR = Path(__file__).resolve().parent / "data" / "mnist_subset"

_GZIP_MAGIC = b"\x1f\x8b"
# Bytes read (and decompressed) at a time: bounds what data beyond a header's size can cost.
_CHUNK = 1 << 20
_IDX_UBYTE = 0x08
_IMAGE_SIDE = 28
_NUM_CLASSES = 10

# What a failed download can raise: DNS and connection failures (URLError, OSError, timeouts),
# a connection cut mid-body (HTTPException, EOFError), or a mirror serving something that is
# not gzip (OSError, zlib.error).
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    http.client.HTTPException,
    EOFError,
    zlib.error,
)

_FIX_FILE = (
    "replace it with an intact copy of the MNIST file (delete it if it is in the symdl cache, "
    "and it will be downloaded again)"
)


@dataclass(frozen=True, eq=False)
class Mnist:
    """MNIST as arrays ready for training.

    Attributes:
        x_train: `(n_train, 784)` float32 pixels in [0, 1], rows of the 28x28 images.
        y_train: `(n_train,)` int64 digit labels in 0..9.
        x_test: `(n_test, 784)` float32 pixels in [0, 1].
        y_test: `(n_test,)` int64 digit labels in 0..9.
        source: where the data came from: the directory read, or `"shipped subset"`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    @staticmethod
    def one_hot(labels: npt.ArrayLike, num_classes: int = _NUM_CLASSES) -> np.ndarray:
        """Return `labels` as float32 one-hot rows; see the module-level `one_hot`."""
        return one_hot(labels, num_classes)

    def __repr__(self) -> str:
        # The default repr would print pixel arrays; sizes and origin are what a reader wants.
        return f"Mnist(train={len(self.y_train)}, test={len(self.y_test)}, source={self.source!r})"


def one_hot(
    labels: npt.ArrayLike, num_classes: int = _NUM_CLASSES, dtype: npt.DTypeLike = np.float32
) -> np.ndarray:
    """Return a `(len(labels), num_classes)` array with a 1 in each row at that row's label.

    Raises:
        ValueError: if `labels` is not a 1-d integer array or holds a label outside
            `0..num_classes-1`.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"one_hot: expected a 1-d integer array of labels, got shape {labels.shape} "
            f"and dtype {labels.dtype}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"one_hot: labels must lie in 0..{num_classes - 1}, got values from "
            f"{labels.min()} to {labels.max()}; pass a larger num_classes"
        )
    out = np.zeros((labels.shape[0], num_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1
    return out


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file of unsigned bytes (gzipped or not) into a uint8 array of its shape.

    The header is a big-endian uint32 magic `0x000008NN` (NN = number of dimensions; 2049 for
    labels, 2051 for images) followed by one big-endian uint32 per dimension. The data must have
    exactly the size the header announces. Reading stops there: a gzip bomb (a small file that
    inflates far beyond what its header declares) costs one chunk beyond the declared size, not
    its inflated size, and is refused.

    Raises:
        DatasetError: naming the file, if it cannot be read, is not valid gzip, has a bad magic
            number, or is truncated or too long.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            start = file.read(4)
            file.seek(0)
            is_gzip = start[:2] == _GZIP_MAGIC
            if path.suffix == ".gz" and not is_gzip:
                raise DatasetError(
                    f"{path}: named .gz but is not gzip data (first bytes "
                    f"{start.hex() or 'none'}); {_FIX_FILE}"
                )
            if not is_gzip:
                return _read_idx_stream(path, file, os.fstat(file.fileno()).st_size)
            try:
                with gzip.GzipFile(fileobj=file, mode="rb") as unzipped:
                    return _read_idx_stream(path, unzipped, None)
            except (OSError, EOFError, zlib.error) as exc:
                if isinstance(exc, DatasetError):
                    raise
                raise DatasetError(f"{path}: corrupt gzip data ({exc}); {_FIX_FILE}") from exc
    except DatasetError:
        raise
    except OSError as exc:
        raise DatasetError(f"cannot read IDX file {path}: {exc}") from exc


def _read_idx_stream(path: Path, stream: BinaryIO, size: int | None) -> np.ndarray:
    """The array of the IDX data in ``stream``; ``size`` is its length in bytes, where known
    without reading it (an uncompressed file), None for gzip data."""
    head = _read_at_most(stream, 4)
    if len(head) < 4:
        raise DatasetError(
            f"{path}: only {len(head)} bytes, too short for an IDX header; {_FIX_FILE}"
        )
    magic = int.from_bytes(head, "big")
    ndim = magic & 0xFF
    if magic >> 8 != _IDX_UBYTE or not 1 <= ndim <= 4:
        raise DatasetError(
            f"{path}: bad magic number {magic} (0x{magic:08x}); an IDX file of unsigned bytes "
            f"starts with 2049 (labels) or 2051 (images); {_FIX_FILE}"
        )
    header_len = 4 + 4 * ndim
    dims = _read_at_most(stream, 4 * ndim)
    if len(dims) < 4 * ndim:
        raise DatasetError(
            f"{path}: truncated header, {4 + len(dims)} bytes where {header_len} are needed for "
            f"{ndim} dimensions; {_FIX_FILE}"
        )
    shape = tuple(int.from_bytes(dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape)  # a Python int: four uint32 sizes overflow int64
    if size is not None and size - header_len != expected:
        # The length is known without reading: refuse before reading a byte of data.
        _refuse_size(path, shape, expected, size - header_len)
    data = _read_at_most(stream, expected)
    if len(data) < expected:
        _refuse_size(path, shape, expected, len(data))
    if stream.read(1):
        _refuse_size(path, shape, expected, None)
    # A bytearray is writable, so the array is an ordinary one without a copy.
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def _read_at_most(stream: BinaryIO, n: int) -> bytearray:
    """Up to ``n`` bytes of ``stream`` (fewer only at its end), read in bounded chunks.

    Memory grows with what the stream holds, never with what a header claims: a header
    announcing terabytes over a short stream costs the stream's length.
    """
    data = bytearray()
    while len(data) < n:
        chunk = stream.read(min(_CHUNK, n - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _refuse_size(path: Path, shape: tuple[int, ...], expected: int, actual: int | None) -> None:
    """Raise the DatasetError for data of another size than the header announces.

    ``actual`` is the size found, None where reading stopped past the announced size.
    """
    if actual is not None and actual < expected:
        problem, holds = "truncated", f"the file holds {actual}"
    elif actual is not None:
        problem, holds = "has trailing bytes", f"the file holds {actual}"
    else:
        problem, holds = "has trailing bytes", "the file holds more (reading stopped there)"
    raise DatasetError(
        f"{path}: {problem}: the header announces shape {shape} ({expected} bytes of data) "
        f"but {holds}; {_FIX_FILE}"
    )


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write a uint8 array of 1 to 4 dimensions as an IDX file; gzip it if `path` ends in `.gz`.

    The gzip header carries no time stamp or name, so equal arrays give byte-identical files.

    Raises:
        ValueError: if `array` is not uint8 or has an unsupported number of dimensions.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 4:
        raise ValueError(
            f"write_idx: expected a uint8 array of 1 to 4 dimensions, got dtype {array.dtype} "
            f"and shape {array.shape}"
        )
    header = ((_IDX_UBYTE << 8) | array.ndim).to_bytes(4, "big")
    header += b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = header + np.ascontiguousarray(array).tobytes()
    path = Path(path)
    if path.suffix == ".gz":
        data = gzip.compress(data, compresslevel=9, mtime=0)
    path.write_bytes(data)


def cache_dir() -> Path:
    """Return the MNIST cache directory: `$SYMDL_CACHE/mnist`, else `~/.cache/symdl/mnist`."""
    root = os.environ.get("SYMDL_CACHE")
    base = Path(root) if root else Path.home() / ".cache" / "symdl"
    return base / "mnist"


def load_mnist(
    path: str | os.PathLike[str] | None = None, *, download: bool = True, quiet: bool = False
) -> Mnist:
    """Load MNIST from the first place that has it (see the module docstring for the order).

    Args:
        path: a directory holding the four MNIST files (gzipped or not). When given, nothing
            else is tried.
        download: allow downloading into the cache directory. `$SYMDL_OFFLINE=1` also forbids it.
        quiet: print nothing on stderr (no download message, no subset notice).

    Returns:
        An `Mnist` with float32 pixels in [0, 1] and int64 labels, in the original order.

    Raises:
        DatasetError: if `path` or `$SYMDL_DATA` lacks a file, or a file read is damaged.
    """
    if path is not None:
        return _load_dir(Path(path), origin="the path argument")
    env_dir = os.environ.get("SYMDL_DATA")
    if env_dir:
        return _load_dir(Path(env_dir), origin="$SYMDL_DATA")

    cache = cache_dir()
    _, missing_in_cache = _locate(cache)
    if not missing_in_cache:
        return _load_dir(cache, origin="the symdl cache")

    reason = "downloads are disabled"
    if download and not _offline():
        failure = _download(cache, quiet=quiet)
        if failure is None:
            return _load_dir(cache, origin="the symdl cache")
        reason = f"download failed: {failure}"

    data = _load_dir(SUBSET_DIR, origin="the shipped subset", source="shipped subset")
    if not quiet:
        print(
            f"symdl: MNIST not found ({reason}); using the shipped subset of "
            f"{len(data.y_train)} training / {len(data.y_test)} test images. For the full set "
            f"pass --data DIR or set $SYMDL_DATA to a directory with the four MNIST files.",
            file=sys.stderr,
        )
    return data


def _find(directory: Path, name: str) -> Path | None:
    """Return `directory/name` or `directory/name.gz`, whichever exists (uncompressed first)."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _locate(directory: Path) -> tuple[dict[str, Path], list[str]]:
    """Return the MNIST files found in `directory` (by name) and the names not found."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for name in MNIST_FILES:
        file = _find(directory, name)
        if file is None:
            missing.append(name)
        else:
            found[name] = file
    return found, missing


def find_mnist_files(
    directory: str | os.PathLike[str], *, origin: str | None = None
) -> dict[str, Path]:
    """Return the path of each of the four MNIST files in `directory`, keyed by base name.

    Each file may be stored as `<name>` or `<name>.gz`; the uncompressed one wins if both exist.

    Raises:
        DatasetError: naming the directory and every missing file. `origin` (for example
            `"$SYMDL_DATA"`) says where the directory came from.
    """
    directory = Path(directory)
    where = f"{directory} (from {origin})" if origin else str(directory)
    if not directory.is_dir():
        raise DatasetError(
            f"MNIST directory {where} does not exist or is not a directory; point it at a "
            f"directory holding the four MNIST files"
        )
    files, missing = _locate(directory)
    if missing:
        listed = ", ".join(f"{name}[.gz]" for name in missing)
        raise DatasetError(
            f"MNIST file(s) missing in {where}: {listed}; put the four files "
            f"{', '.join(MNIST_FILES)} (gzipped or not) there"
        )
    return files


def _load_dir(directory: Path, *, origin: str, source: str | None = None) -> Mnist:
    """Load the four files from `directory`; every one must be present and valid."""
    files = find_mnist_files(directory, origin=origin)
    x_train, y_train = _read_split(files[TRAIN_IMAGES], files[TRAIN_LABELS])
    x_test, y_test = _read_split(files[TEST_IMAGES], files[TEST_LABELS])
    return Mnist(x_train, y_train, x_test, y_test, source=source or str(directory))


def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one images/labels pair and convert it to float32 `(n, 784)` pixels, int64 labels."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (_IMAGE_SIDE, _IMAGE_SIDE):
        raise DatasetError(
            f"{images_path}: expected images of shape (n, {_IMAGE_SIDE}, {_IMAGE_SIDE}), "
            f"got {images.shape}; {_FIX_FILE}"
        )
    if labels.ndim != 1:
        raise DatasetError(
            f"{labels_path}: expected a 1-d label file, got shape {labels.shape}; {_FIX_FILE}"
        )
    if labels.shape[0] != images.shape[0]:
        raise DatasetError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds "
            f"{labels.shape[0]} labels; use files from the same MNIST split"
        )
    if labels.size and labels.max() >= _NUM_CLASSES:
        raise DatasetError(
            f"{labels_path}: label {labels.max()} outside 0..{_NUM_CLASSES - 1}; {_FIX_FILE}"
        )
    x = images.reshape(images.shape[0], -1).astype(np.float32)
    x /= np.float32(255)
    return x, labels.astype(np.int64)


def _gunzipped_md5(body: bytes, limit: int) -> str:
    """MD5 of the gunzipped ``body``, decompressed in chunks and never past ``limit`` bytes.

    Raises OSError where the data inflates beyond ``limit`` (no MNIST file does: a gzip bomb).
    """
    digest = hashlib.md5()
    size = 0
    with gzip.GzipFile(fileobj=io.BytesIO(body), mode="rb") as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise OSError(f"the data inflates beyond {limit} bytes, more than any MNIST file")
            digest.update(chunk)
    return digest.hexdigest()


def _offline() -> bool:
    """Return True if `$SYMDL_OFFLINE` forbids network access (any value but empty/0/false/no)."""
    value = os.environ.get("SYMDL_OFFLINE", "").strip().lower()
    return value not in ("", "0", "false", "no")


def _download(
    dest: Path,
    *,
    quiet: bool,
    mirrors: Sequence[str] = MIRRORS,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> str | None:
    """Download the missing MNIST files into `dest`; return None on success, else why not.

    A mirror that fails (network error or wrong checksum) is dropped and the next one takes over
    the remaining files, so an offline machine costs one failed connection per mirror, not one per
    file. Files are written atomically, so an interrupted download never leaves a partial file
    under a real name.
    """
    todo = [name for name in MNIST_FILES if _find(dest, name) is None]
    errors: list[str] = []
    announced = False
    for mirror in mirrors:
        while todo:
            name = todo[0]
            url = f"{mirror}{name}.gz"
            host = urllib.parse.urlsplit(url).netloc
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    if not announced and not quiet:
                        print(
                            f"symdl: downloading MNIST from {mirror} into {dest}", file=sys.stderr
                        )
                        announced = True
                    # The largest original .gz is 9.9 MB: a mirror sending more is wrong.
                    body = response.read(_MAX_DOWNLOAD + 1)
                if len(body) > _MAX_DOWNLOAD:
                    raise OSError(f"{url} sends more than {_MAX_DOWNLOAD} bytes")
                digest = _gunzipped_md5(body, _MAX_MNIST_BYTES)
            except _NETWORK_ERRORS as exc:
                # URLError wraps the cause as "<urlopen error ...>"; the bare reason reads better.
                errors.append(f"{host}: {getattr(exc, 'reason', exc)}")
                break
            if digest != MNIST_FILES[name]:
                errors.append(f"{url}: MD5 {digest} instead of {MNIST_FILES[name]}")
                break
            try:
                write_atomically(dest / f"{name}.gz", body, suffix=".part")
            except OSError as exc:
                # The cache is unwritable; another mirror would not help.
                return f"cannot write {dest / name}.gz: {exc}"
            todo.pop(0)
        if not todo:
            return None
    if not errors:
        return "no mirrors configured"
    # The caller prints this on one line: the first failure is usually the telling one.
    more = f" (and {len(errors) - 1} more mirror(s))" if len(errors) > 1 else ""
    return f"{errors[0]}{more}"


