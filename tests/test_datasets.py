"""Tests of symdl.datasets: the IDX reader, the lookup order, the shipped subset. No network."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import socket
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from symdl import datasets
from symdl.data import make_subset
from symdl.datasets import MNIST_FILES, Mnist, load_mnist, one_hot, read_idx, write_idx
from symdl.errors import DatasetError

ROOT = Path(__file__).resolve().parents[1]
FULL_MNIST = ROOT.parent / "shared" / "data" / "mnist"
needs_full = pytest.mark.skipif(
    not all((FULL_MNIST / f"{name}.gz").is_file() for name in MNIST_FILES),
    reason=f"full MNIST not found at {FULL_MNIST}",
)

FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the cache at an empty tmp dir and clear the variables that steer the lookup."""
    cache_root = tmp_path / "cache"
    monkeypatch.setenv("SYMDL_CACHE", str(cache_root))
    monkeypatch.delenv("SYMDL_DATA", raising=False)
    monkeypatch.delenv("SYMDL_OFFLINE", raising=False)
    return cache_root / "mnist"


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any network access fail the test loudly (AssertionError is not a caught error)."""

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)


def small_mnist_dir(directory: Path, *, gz: bool = True, n_train: int = 6, n_test: int = 4) -> Path:
    """Write a tiny valid MNIST directory with known pixels and labels."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.arange(n_train, dtype=np.uint8) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.arange(n_test, dtype=np.uint8)[::-1] % 10,
    }
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        write_idx(directory / (f"{name}.gz" if gz else name), array)
    return directory


# --- the shipped subset --------------------------------------------------------------------------


def test_subset_shapes_dtypes_range(no_network: None) -> None:
    data = load_mnist(download=False, quiet=True)
    assert data.source == "shipped subset"
    assert data.x_train.shape == (5000, 784) and data.x_train.dtype == np.float32
    assert data.y_train.shape == (5000,) and data.y_train.dtype == np.int64
    assert data.x_test.shape == (1000, 784) and data.x_test.dtype == np.float32
    assert data.y_test.shape == (1000,) and data.y_test.dtype == np.int64
    for x in (data.x_train, data.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    assert set(np.unique(data.y_train)) == set(range(10))
    assert data.y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert data.y_test[:10].tolist() == FIRST_TEST_LABELS


def test_fallback_prints_one_notice_line(
    no_network: None, capsys: pytest.CaptureFixture[str]
) -> None:
    load_mnist(download=False)
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert "shipped subset of 5000 training / 1000 test images" in lines[0]
    assert "--data DIR" in lines[0] and "$SYMDL_DATA" in lines[0]
    assert captured.out == ""


def test_quiet_prints_nothing(no_network: None, capsys: pytest.CaptureFixture[str]) -> None:
    load_mnist(download=False, quiet=True)
    assert capsys.readouterr() == ("", "")


def test_symdl_offline_never_touches_network(
    no_network: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYMDL_OFFLINE", "1")
    assert load_mnist(quiet=True).source == "shipped subset"


def test_failed_download_falls_back_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated_env: Path
) -> None:
    urls: list[str] = []

    def unreachable(url: str, timeout: float) -> None:
        urls.append(url)
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    data = load_mnist()
    assert data.source == "shipped subset"
    # One try per mirror, not per file: an offline machine fails fast.
    assert len(urls) == len(datasets.MIRRORS)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "download failed" in lines[0]
    assert not isolated_env.exists() or not any(isolated_env.iterdir())


def test_subset_is_reproducible_from_full_set(tmp_path: Path) -> None:
    if not (FULL_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"full MNIST not found at {FULL_MNIST}")
    written = make_subset.make_subset(FULL_MNIST, tmp_path)
    for path in written:
        shipped = datasets.SUBSET_DIR / path.name
        assert path.read_bytes() == shipped.read_bytes(), path.name


# --- the full set and the lookup order ------------------------------------------------------------


@needs_full
def test_full_set_from_path(no_network: None) -> None:
    data = load_mnist(FULL_MNIST)
    assert data.source == str(FULL_MNIST)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert data.y_train.shape == (60000,) and data.y_test.shape == (10000,)
    assert data.y_train[:10].tolist() == FIRST_TRAIN_LABELS
    assert data.y_test[:10].tolist() == FIRST_TEST_LABELS
    assert 0.0 <= data.x_train.min() and data.x_train.max() <= 1.0
    # The subset is the head of the full set, pixel for pixel.
    subset = load_mnist(datasets.SUBSET_DIR)
    np.testing.assert_array_equal(subset.x_train, data.x_train[:5000])
    np.testing.assert_array_equal(subset.y_test, data.y_test[:1000])


@needs_full
def test_symdl_data_env(no_network: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYMDL_DATA", str(FULL_MNIST))
    assert load_mnist(quiet=True).y_train.shape == (60000,)


def test_path_wins_over_env(
    no_network: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SYMDL_DATA", str(tmp_path / "nowhere"))
    data = load_mnist(small_mnist_dir(tmp_path / "mine"))
    assert data.y_train.shape == (6,)


def test_env_dir_missing_file_is_an_error(
    no_network: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    (directory / "train-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("SYMDL_DATA", str(directory))
    with pytest.raises(
        DatasetError, match=r"train-labels-idx1-ubyte.*SYMDL_DATA|SYMDL_DATA.*train-labels"
    ):
        load_mnist()


def test_path_missing_file_names_it(no_network: None, tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    (directory / "t10k-labels-idx1-ubyte.gz").unlink()
    # Only the missing file is listed before the advice.
    with pytest.raises(DatasetError, match=r"missing in .*: t10k-labels-idx1-ubyte\[\.gz\];"):
        load_mnist(directory)


def test_path_not_a_directory(no_network: None, tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_mnist(tmp_path / "absent")


def test_cache_is_used(no_network: None, isolated_env: Path) -> None:
    small_mnist_dir(isolated_env)
    data = load_mnist(quiet=True)
    assert data.source == str(isolated_env)
    assert data.y_test.tolist() == [3, 2, 1, 0]


def test_uncompressed_files(no_network: None, tmp_path: Path) -> None:
    gz = load_mnist(small_mnist_dir(tmp_path / "gz"))
    raw = load_mnist(small_mnist_dir(tmp_path / "raw", gz=False))
    assert not list((tmp_path / "raw").glob("*.gz"))
    np.testing.assert_array_equal(gz.x_train, raw.x_train)
    np.testing.assert_array_equal(gz.y_train, raw.y_train)


def test_pixels_are_scaled_bytes(tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    images = read_idx(directory / "train-images-idx3-ubyte.gz")
    data = load_mnist(directory)
    np.testing.assert_array_equal(data.x_train * 255, images.reshape(6, 784).astype(np.float32))


def test_download_verifies_and_writes_cache(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated_env: Path
) -> None:
    """A fake mirror serving the real files: the first mirror serves a bad file and is dropped."""
    if not (FULL_MNIST / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip(f"full MNIST not found at {FULL_MNIST}")
    # Pre-seed the cache with three files so only the small test-label file is "downloaded".
    isolated_env.mkdir(parents=True)
    for name in MNIST_FILES:
        if name != "t10k-labels-idx1-ubyte":
            shutil.copy(FULL_MNIST / f"{name}.gz", isolated_env)
    bad_mirror, good_mirror = datasets.MIRRORS
    urls: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        urls.append(url)
        name = url.rsplit("/", 1)[1]
        if url.startswith(bad_mirror):
            return io.BytesIO(gzip.compress(b"not mnist"))
        return io.BytesIO((FULL_MNIST / name).read_bytes())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    data = load_mnist()
    assert urls == [f"{m}t10k-labels-idx1-ubyte.gz" for m in (bad_mirror, good_mirror)]
    assert data.source == str(isolated_env) and data.y_test.shape == (10000,)
    written = gzip.decompress((isolated_env / "t10k-labels-idx1-ubyte.gz").read_bytes())
    assert hashlib.md5(written).hexdigest() == MNIST_FILES["t10k-labels-idx1-ubyte"]
    assert not list(isolated_env.glob(".*.part"))
    assert "downloading MNIST" in capsys.readouterr().err


# --- the IDX reader: damaged files ----------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """Return the uncompressed IDX encoding of a uint8 array, built by hand to check write_idx."""
    header = (0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def test_read_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        out = read_idx(tmp_path / name)
        np.testing.assert_array_equal(out, array)
        assert out.dtype == np.uint8 and out.flags.writeable
    assert (tmp_path / "a.idx").read_bytes() == idx_bytes(array)


def test_write_idx_is_deterministic(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def test_gzip_content_without_gz_suffix_is_read(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    (tmp_path / "labels").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), array)


CORRUPT_CASES = {
    "truncated": (
        "train-images-idx3-ubyte.gz",
        lambda good: gzip.compress(good[:-100]),
        "truncated",
    ),
    "trailing bytes": (
        "train-images-idx3-ubyte",
        lambda good: good + b"\0",
        "trailing bytes",
    ),
    "bad magic": (
        "train-labels-idx1-ubyte.gz",
        lambda good: gzip.compress(b"\x00\x00\x09\x01" + good[4:]),
        "bad magic number",
    ),
    "garbage gzip": (
        "t10k-images-idx3-ubyte.gz",
        lambda good: b"\x1f\x8b" + b"garbage" * 20,
        "corrupt gzip",
    ),
    "cut gzip": (
        "t10k-images-idx3-ubyte.gz",
        lambda good: gzip.compress(good)[:-6],  # cut inside the trailer: a partial download
        "corrupt gzip",
    ),
    "not gzip at all": (
        "t10k-labels-idx1-ubyte.gz",
        lambda good: b"hello world",
        "not gzip data",
    ),
    "empty": ("t10k-labels-idx1-ubyte", lambda good: b"", "too short"),
    "short header": (
        "train-images-idx3-ubyte",
        lambda good: good[:10],
        "truncated header",
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPT_CASES))
def test_corrupt_file_raises_naming_it(case: str, tmp_path: Path) -> None:
    name, damage, problem = CORRUPT_CASES[case]
    base = name.removesuffix(".gz")
    shape = (3, 28, 28) if "images" in base else (3,)
    good = idx_bytes(np.ones(shape, dtype=np.uint8))
    path = tmp_path / name
    path.write_bytes(damage(good))
    with pytest.raises(DatasetError, match=problem) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert "replace it" in str(info.value)  # says what to do
    assert isinstance(info.value, OSError)


def test_corrupt_file_in_dir_raises_from_load(no_network: None, tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    path = directory / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-1]))
    with pytest.raises(DatasetError, match="truncated") as info:
        load_mnist(directory)
    assert str(path) in str(info.value)


def test_mismatched_counts(no_network: None, tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.zeros(5, dtype=np.uint8))
    with pytest.raises(DatasetError, match="6 images .* 5 labels"):
        load_mnist(directory)


def test_wrong_image_size(no_network: None, tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    write_idx(directory / "t10k-images-idx3-ubyte.gz", np.zeros((4, 27, 28), dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"t10k-images-idx3-ubyte.*\(4, 27, 28\)"):
        load_mnist(directory)


def test_label_out_of_range(no_network: None, tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 2, 10], dtype=np.uint8))
    with pytest.raises(DatasetError, match="label 10"):
        load_mnist(directory)


# --- one-hot ----------------------------------------------------------------------------------


def test_one_hot() -> None:
    out = one_hot(np.array([2, 0, 9]))
    assert out.shape == (3, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(axis=1), [2, 0, 9])
    np.testing.assert_array_equal(out.sum(axis=1), [1, 1, 1])
    np.testing.assert_array_equal(Mnist.one_hot(np.array([1]), 3), [[0, 1, 0]])
    assert one_hot(np.array([1]), 2, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    "labels", [np.array([0, 10]), np.array([-1]), np.array([[1]]), np.array([0.5])]
)
def test_one_hot_rejects_bad_labels(labels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="one_hot"):
        one_hot(labels)


def test_repr_is_short(tmp_path: Path) -> None:
    data = load_mnist(small_mnist_dir(tmp_path / "d"))
    assert repr(data) == f"Mnist(train=6, test=4, source={str(tmp_path / 'd')!r})"


# --- the IDX reader: gzip bombs ----------------------------------------------------------------


def _bomb(path: Path, header_shape: tuple[int, ...], inflated: int) -> Path:
    """A gzip file: an IDX header declaring ``header_shape``, then ``inflated`` zero bytes."""
    header = (0x0800 | len(header_shape)).to_bytes(4, "big")
    header += b"".join(n.to_bytes(4, "big") for n in header_shape)
    zeros = bytes(2**20)
    with gzip.open(path, "wb", compresslevel=1) as out:  # written in chunks: memory-light
        out.write(header)
        for _ in range(inflated // len(zeros)):
            out.write(zeros)
    return path


def _peak_bytes(fn) -> int:
    """The peak of Python-tracked memory (numpy's arrays included) while ``fn`` runs."""
    import tracemalloc

    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gzip_bomb_is_refused_after_the_declared_size(tmp_path: Path) -> None:
    """Regression: a small .gz inflating far past its header was read in full (2x its size)."""
    path = _bomb(tmp_path / "train-images-idx3-ubyte.gz", (10, 28, 28), 50 * 2**20)
    assert path.stat().st_size < 2**20

    def read() -> None:
        with pytest.raises(DatasetError, match="trailing bytes.*reading stopped") as info:
            read_idx(path)
        assert str(path) in str(info.value) and "replace it" in str(info.value)

    assert _peak_bytes(read) < 8 * 2**20  # the 50 MB are never held


def test_gzip_bomb_in_a_data_directory_is_refused(no_network: None, tmp_path: Path) -> None:
    directory = small_mnist_dir(tmp_path / "d")
    path = _bomb(directory / "t10k-images-idx3-ubyte.gz", (4, 28, 28), 20 * 2**20)
    with pytest.raises(DatasetError, match="trailing bytes") as info:
        load_mnist(directory)
    assert str(path) in str(info.value)


def test_a_header_claiming_more_than_the_file_holds_costs_what_it_holds(tmp_path: Path) -> None:
    """(2**32 - 1) images of 28x28 announced, 1 MB there: truncated, without a 3 TB buffer."""
    for gz in (True, False):
        path = tmp_path / ("big.gz" if gz else "big")
        header = (0x0803).to_bytes(4, "big") + b"".join(
            n.to_bytes(4, "big") for n in (2**32 - 1, 28, 28))
        data = header + bytes(2**20)
        path.write_bytes(gzip.compress(data, compresslevel=1) if gz else data)

        def read(path: Path = path) -> None:
            with pytest.raises(DatasetError, match="truncated"):
                read_idx(path)

        assert _peak_bytes(read) < 8 * 2**20


def test_uncompressed_trailing_data_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "labels"
    path.write_bytes(idx_bytes(np.zeros(10, dtype=np.uint8)) + bytes(30 * 2**20))

    def read() -> None:
        with pytest.raises(DatasetError, match=r"trailing bytes.*holds 31457290"):
            read_idx(path)

    assert _peak_bytes(read) < 2**20


def test_download_of_a_gzip_bomb_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    isolated_env: Path,
) -> None:
    bomb = _bomb(tmp_path / "bomb.gz", (10,), 60 * 2**20).read_bytes()
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(bomb))

    def load() -> None:
        assert load_mnist().source == "shipped subset"

    assert _peak_bytes(load) < 200 * 2**20  # the subset itself is ~40 MB as float32
    err = capsys.readouterr().err
    assert "download failed" in err and "inflates beyond" in err
    assert not isolated_env.exists() or not any(isolated_env.iterdir())
