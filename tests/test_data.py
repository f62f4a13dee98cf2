"""Tests of funcnet.data: toy sets re-derived from the notes, digits, IDX files, helpers."""

from __future__ import annotations

import gzip
import math
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from funcnet import data
from funcnet import random as fr
from funcnet.errors import ArgumentError, ArrayTypeError, DataError, NonFiniteError, ShapeError

# --------------------------------------------------------------------------- toy sets


def test_sine_regression_matches_note_000():
    s = data.sine_regression()
    assert s.x.shape == (63, 1) and s.t.shape == (63, 1) and s.raw_x.shape == (63,)
    assert s.x.dtype == s.t.dtype == s.raw_x.dtype == np.float64
    # 0, 0.1, ..., 6.2: 63 points, each i / 10 up to arange's accumulation.
    assert s.raw_x[0] == 0.0
    np.testing.assert_allclose(s.raw_x, np.arange(63) / 10, rtol=0, atol=1e-12)
    assert s.raw_x[-1] < 2 * math.pi < s.raw_x[-1] + 0.1
    for i in (0, 17, 62):
        r = s.raw_x[i]
        assert s.t[i, 0] == math.sin(r)
        assert s.x[i, 0] == (r - math.pi) / math.pi
    assert s.x[0, 0] == -1.0
    np.testing.assert_allclose(s.x[-1, 0], (6.2 - math.pi) / math.pi, atol=1e-12)


def test_sine_boundary_matches_note_000_rule():
    s = data.sine_boundary()
    assert s.x.shape == (441, 2) and s.t.shape == (441, 2)
    assert s.x.dtype == s.t.dtype == np.float64
    grid = [-1.0 + 0.1 * i for i in range(21)]  # independent of np.arange
    i = 0
    for gx in grid:
        for gy in grid:
            np.testing.assert_allclose(s.x[i], [gx, gy], atol=1e-12)
            px, py = s.x[i]
            expected = [0.0, 1.0] if py < math.sin(math.pi * px) else [1.0, 0.0]
            assert s.t[i].tolist() == expected, (i, px, py)
            i += 1
    # Both classes are well represented; each row is a one-hot vector.
    assert (s.t.sum(axis=1) == 1).all()
    assert 150 < s.t[:, 1].sum() < 290


def test_xor_matches_note_002_transposed():
    s = data.xor()
    note_X = np.array([0, 0, 1, 1, 0, 1, 0, 1]).reshape(2, 4)  # column per sample
    note_Y = np.array([0, 1, 1, 0]).reshape(1, 4)
    assert s.x.dtype == s.t.dtype == np.float64
    assert s.x.tolist() == note_X.T.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert s.t.tolist() == note_Y.T.tolist()
    assert s.t[:, 0].tolist() == [float(a != b) for a, b in s.x]


@pytest.mark.parametrize("make", [data.sine_regression, data.sine_boundary, data.xor])
def test_toy_sets_float32_on_request(make):
    s64, s32 = make(), make(dtype=np.float32)
    assert s32.x.dtype == s32.t.dtype == np.float32
    np.testing.assert_array_equal(s32.x, s64.x.astype(np.float32))
    np.testing.assert_array_equal(s32.t, s64.t.astype(np.float32))


def test_toy_set_rejects_integer_dtype():
    with pytest.raises(ArgumentError, match="xor: dtype must be float32 or float64, got int64"):
        data.xor(dtype=np.int64)


# --------------------------------------------------------------------------- digits


def test_digits_shape_range_labels():
    d = data.digits()
    assert d.x.shape == (1797, 64) and d.x.dtype == np.float64
    assert d.y.shape == (1797,) and d.y.dtype == np.int64
    assert d.x.min() == 0.0 and d.x.max() == 1.0
    np.testing.assert_array_equal(d.x * 16, np.round(d.x * 16))  # sixteenths
    counts = np.bincount(d.y, minlength=10)
    assert len(counts) == 10 and counts.sum() == 1797
    assert (np.abs(counts - 180) <= 7).all()
    assert d.class_names == tuple("0123456789")


def test_digits_images_layout_and_float32():
    flat, img = data.digits(), data.digits(images=True, dtype=np.float32)
    assert img.x.shape == (1797, 1, 8, 8) and img.x.dtype == np.float32
    # Pixel (r, c) of sample n is flat column 8r + c.
    n, r, c = 100, 3, 5
    assert img.x[n, 0, r, c] == np.float32(flat.x[n, 8 * r + c])
    np.testing.assert_array_equal(img.x.reshape(1797, 64), flat.x.astype(np.float32))
    np.testing.assert_array_equal(img.y, flat.y)


def test_digits_equal_scikit_learn_bit_for_bit():
    sk = pytest.importorskip("sklearn.datasets")
    ref = sk.load_digits()
    d = data.digits()
    np.testing.assert_array_equal(d.x * 16, ref.data)
    np.testing.assert_array_equal(d.y, ref.target)
    img = data.digits(images=True)
    np.testing.assert_array_equal(img.x[:, 0] * 16, ref.images)


def test_digits_packaged_file_is_small_and_pickle_free():
    path = Path(data.__file__).parent / "_data" / "digits.npz"
    assert path.stat().st_size < 100_000
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["labels", "pixels"]
        assert npz["pixels"].dtype == np.uint8 and npz["pixels"].max() == 16
        assert npz["labels"].dtype == np.int64


# --------------------------------------------------------------------------- IDX files

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C}
_CODES |= {np.float32: 0x0D, np.float64: 0x0E}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``, written independently of load_idx."""
    code = _CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray, *, compress: bool = False) -> Path:
    raw = idx_bytes(array)
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([-128, -1, 0, 127], dtype=np.int8),
        np.array([[-30000, 1], [2, 30000]], dtype=np.int16),
        np.array([[-(2**31), 1, 2**31 - 1]], dtype=np.int32),
        np.array([1.5, -2.25, np.pi], dtype=np.float32),
        np.array([[np.pi, -1e300], [5e-324, 0.0]], dtype=np.float64),
        np.array([7, 2, 1, 0, 4], dtype=np.uint8),
    ],
    ids=["uint8-3d", "int8", "int16", "int32", "float32", "float64", "labels"],
)
def test_load_idx_round_trip(tmp_path, array, compress):
    path = write_idx(tmp_path / "a-idx", array, compress=compress)
    back = data.load_idx(path)
    assert back.dtype == array.dtype and back.dtype.isnative
    assert back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # a fresh, writeable array
    assert data.load_idx(str(path)).shape == array.shape


def test_load_idx_reads_big_endian_bytes(tmp_path):
    # 258 as a big-endian int32 is 00 00 01 02, written by hand.
    path = tmp_path / "x"
    path.write_bytes(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1, 0, 0, 1, 2]))
    assert data.load_idx(path).tolist() == [258]


def test_load_idx_detects_gzip_by_magic_not_name(tmp_path):
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    gz_named_raw = write_idx(tmp_path / "raw.gz", a)
    raw_named_gz = write_idx(tmp_path / "plain-idx", a, compress=True)
    np.testing.assert_array_equal(data.load_idx(gz_named_raw), a)
    np.testing.assert_array_equal(data.load_idx(raw_named_gz), a)


def _idx(tmp_path: Path, content: bytes, name: str = "f-idx") -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


def test_load_idx_wrong_magic(tmp_path):
    path = _idx(tmp_path, b"\x00\x01\x08\x01\x00\x00\x00\x00")
    with pytest.raises(
        DataError,
        match=r"load_idx: .*f-idx: expected an IDX file starting "
        r"with two zero bytes, found 0x00 0x01",
    ):
        data.load_idx(path)


def test_load_idx_unknown_type_code(tmp_path):
    path = _idx(tmp_path, b"\x00\x00\x0a\x01\x00\x00\x00\x00")
    with pytest.raises(DataError, match=r"f-idx: expected a data type code in 0x08, .*found 0x0a"):
        data.load_idx(path)


def test_load_idx_zero_dimensions(tmp_path):
    path = _idx(tmp_path, b"\x00\x00\x08\x00")
    with pytest.raises(DataError, match="f-idx: expected at least 1 dimension, found 0"):
        data.load_idx(path)


def test_load_idx_truncated_payload(tmp_path):
    raw = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    path = _idx(tmp_path, raw[:-10], "train-images-idx3-ubyte")
    msg = (
        r"load_idx: .*train-images-idx3-ubyte: expected 7840 bytes of uint8 data after the "
        r"header for shape \(10, 28, 28\), found 7830 \(truncated file\?\)"
    )
    with pytest.raises(DataError, match=msg):
        data.load_idx(path)


def test_load_idx_truncated_multibyte_payload(tmp_path):
    raw = idx_bytes(np.zeros(3, np.float64))
    with pytest.raises(DataError, match=r"expected 24 bytes of float64 .* found 23 \(truncated"):
        data.load_idx(_idx(tmp_path, raw[:-1]))


_MORE = "the file holds more data than its header claims"


def test_load_idx_trailing_bytes(tmp_path):
    raw = idx_bytes(np.zeros(5, np.int32)) + b"\x00"
    with pytest.raises(
        DataError, match=rf"expected 20 bytes of int32 .* found more than 20 \({_MORE}\)"
    ):
        data.load_idx(_idx(tmp_path, raw))


def test_load_idx_trailing_bytes_inside_gzip(tmp_path):
    raw = idx_bytes(np.zeros(5, np.uint8)) + b"\x00\x00"
    path = _idx(tmp_path, gzip.compress(raw), "g.gz")
    with pytest.raises(DataError, match=rf"g\.gz: expected 5 bytes .* found more than 5 \({_MORE}"):
        data.load_idx(path)


def test_load_idx_stops_reading_a_gzip_file_at_the_size_its_header_claims(tmp_path):
    # The header claims 5 bytes; the stream expands to 16 MB more. Reading stops after
    # the 6th byte, so the memory used stays far below the payload's size ...
    raw = idx_bytes(np.zeros(5, np.uint8)) + bytes(16 * 2**20)
    path = _idx(tmp_path, gzip.compress(raw, compresslevel=1), "bomb.gz")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=rf"bomb\.gz: expected 5 bytes .*\({_MORE}"):
            data.load_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    # ... and the end of the stream is never reached: a damaged end goes unread.
    path.write_bytes(gzip.compress(raw, compresslevel=1)[:-8])
    with pytest.raises(DataError, match=rf"bomb\.gz: expected 5 bytes .*\({_MORE}"):
        data.load_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_load_idx_header_claiming_a_huge_shape_is_a_truncated_file(tmp_path, compress):
    header = struct.pack(">BBBB4I", 0, 0, 0x0E, 4, *[2**32 - 1] * 4)  # about 2.7e39 bytes
    content = header + bytes(100)
    path = _idx(tmp_path, gzip.compress(content) if compress else content)
    with pytest.raises(DataError, match=r"expected \d+ bytes of float64 .* found 100 \(truncated"):
        data.load_idx(path)


@pytest.mark.parametrize("cut", [2, 10, -5])
def test_load_idx_truncated_gzip(tmp_path, cut):
    packed = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    path = _idx(tmp_path, packed[:cut], "labels.gz")
    with pytest.raises(DataError, match=r"load_idx: .*labels\.gz: the gzip stream is corrupt"):
        data.load_idx(path)


def test_load_idx_corrupt_gzip(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8))))
    packed[-8] ^= 0xFF  # damage the CRC
    with pytest.raises(DataError, match="gzip stream is corrupt or truncated"):
        data.load_idx(_idx(tmp_path, bytes(packed), "c.gz"))


def test_load_idx_empty_file(tmp_path):
    with pytest.raises(
        DataError,
        match=r"f-idx: expected a 4-byte IDX header, found 0 bytes "
        r"\(empty file\)",
    ):
        data.load_idx(_idx(tmp_path, b""))


def test_load_idx_header_shorter_than_dims(tmp_path):
    path = _idx(tmp_path, b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00")
    with pytest.raises(
        DataError,
        match=r"expected a 16-byte header for 3 dimensions, "
        r"found only 10 bytes \(truncated file\?\)",
    ):
        data.load_idx(path)


def test_load_idx_empty_dimension(tmp_path):
    path = _idx(tmp_path, bytes([0, 0, 0x08, 2, 0, 0, 0, 0, 0, 0, 0, 28]))
    a = data.load_idx(path)
    assert a.shape == (0, 28) and a.dtype == np.uint8


def test_load_idx_header_claiming_more_dimensions_than_numpy_has(tmp_path):
    """A damaged dimension byte (70 dimensions of size 1, and the one byte that fills them)
    was a bare numpy ValueError from reshape."""
    path = _idx(tmp_path, bytes([0, 0, 0x08, 70]) + struct.pack(">70I", *[1] * 70) + b"\x05")
    with pytest.raises(DataError, match=r"load_idx: .*f-idx: expected at most the dimensions "
                                        r"numpy supports, found 70"):
        data.load_idx(path)


def test_load_idx_rejects_non_path():
    with pytest.raises(
        ArgumentError,
        match=r"load_idx: path must be a str or os.PathLike, "
        r"got an int \(3\)",
    ):
        data.load_idx(3)


def test_load_idx_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"load_idx: .*nope: cannot read the file \(No such"):
        data.load_idx(tmp_path / "nope")


# --------------------------------------------------------------------------- MNIST layout


def make_mnist(directory: Path, *, n_train=5, n_test=3, gz=(True, False, False, True)):
    """Tiny MNIST-format files; returns the arrays written."""
    rng = np.random.default_rng(0)
    arrays = (
        rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_train, dtype=np.uint8),
        rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, n_test, dtype=np.uint8),
    )
    for name, array, compress in zip(data.MNIST_FILES, arrays, gz, strict=True):
        write_idx(directory / (name + ".gz" if compress else name), array, compress=compress)
    return arrays


@pytest.mark.parametrize("loader", [data.mnist, data.fashion_mnist])
def test_mnist_reads_mixed_raw_and_gz(tmp_path, loader):
    px_tr, y_tr, px_te, y_te = make_mnist(tmp_path)
    m = loader(tmp_path)
    assert m.x_train.shape == (5, 784) and m.x_test.shape == (3, 784)
    assert m.x_train.dtype == m.x_test.dtype == np.float64
    assert m.y_train.dtype == m.y_test.dtype == np.int64
    # Pixel (r, c) of image n is column 28r + c, scaled by 1/255.
    assert m.x_train[4, 28 * 7 + 3] == px_tr[4, 7, 3] / 255
    np.testing.assert_array_equal(m.x_train * 255, px_tr.reshape(5, -1).astype(float))
    np.testing.assert_allclose(m.x_test, px_te.reshape(3, -1) / 255.0, rtol=0, atol=0)
    assert m.y_train.tolist() == y_tr.tolist() and m.y_test.tolist() == y_te.tolist()
    assert 0.0 <= m.x_train.min() and m.x_train.max() <= 1.0


def test_mnist_images_layout_and_float32(tmp_path):
    px_tr, *_ = make_mnist(tmp_path, gz=(False,) * 4)
    m = data.mnist(str(tmp_path), images=True, dtype=np.float32)
    assert m.x_train.shape == (5, 1, 28, 28) and m.x_test.shape == (3, 1, 28, 28)
    assert m.x_train.dtype == np.float32
    assert m.x_train[2, 0, 9, 11] == np.float32(px_tr[2, 9, 11]) / np.float32(255)


def test_class_names():
    assert data.FASHION_MNIST_CLASSES == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    )  # fmt: skip


def test_mnist_and_fashion_class_names(tmp_path):
    make_mnist(tmp_path)
    assert data.mnist(tmp_path).class_names == tuple(str(i) for i in range(10))
    assert data.fashion_mnist(tmp_path).class_names == data.FASHION_MNIST_CLASSES


@pytest.mark.parametrize("loader", [data.mnist, data.fashion_mnist])
@pytest.mark.parametrize(("directory", "shown"), [(None, "None"), (b"/tmp", "a bytes")])
def test_mnist_rejects_a_directory_that_is_not_a_path(loader, directory, shown):
    """os.fspath(None) and bytes joined to str names were bare TypeErrors."""
    with pytest.raises(ArgumentError, match=rf"^{loader.__name__}: directory must be a str or "
                                            rf"os.PathLike, got {shown}"):
        loader(directory)


def test_mnist_missing_file_names_expected_files(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").unlink()
    msg = (
        r"fashion_mnist: .*: missing t10k-images-idx3-ubyte \(or t10k-images-idx3-ubyte\.gz\); "
        r"expected the four files train-images-idx3-ubyte \(or train-images-idx3-ubyte\.gz\), "
        r"train-labels-idx1-ubyte \(or train-labels-idx1-ubyte\.gz\), .*t10k-labels-idx1-ubyte"
    )
    with pytest.raises(DataError, match=msg):
        data.fashion_mnist(tmp_path)


def test_mnist_not_a_directory(tmp_path):
    with pytest.raises(
        DataError,
        match=r"mnist: expected a directory holding train-images"
        r".*found no directory at .*absent",
    ):
        data.mnist(tmp_path / "absent")


def test_mnist_mismatched_counts(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(4, np.uint8))  # 5 images
    with pytest.raises(
        DataError,
        match=r"mnist: .*train-labels-idx1-ubyte holds 4 labels but "
        r".*train-images-idx3-ubyte\.gz holds 5 images",
    ):
        data.mnist(tmp_path)


def test_mnist_wrong_image_shape(tmp_path):
    make_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(idx_bytes(np.zeros((3, 28, 27), np.uint8)))
    with pytest.raises(
        DataError,
        match=r"mnist: .*t10k-images-idx3-ubyte: expected uint8 images "
        r"of shape \(n, 28, 28\), found an array of shape \(3, 28, 27\)",
    ):
        data.mnist(tmp_path)


def test_mnist_wrong_label_type(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(5, np.int32))
    with pytest.raises(
        DataError,
        match=r"train-labels-idx1-ubyte: expected uint8 labels of "
        r"shape \(n,\), found an array of shape \(5,\) and dtype int32",
    ):
        data.mnist(tmp_path)


def test_mnist_label_out_of_range(tmp_path):
    make_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 10, 2], np.uint8), compress=True)
    with pytest.raises(
        DataError,
        match=r"t10k-labels-idx1-ubyte\.gz: expected labels 0\.\.9, "
        r"found 10",
    ):
        data.mnist(tmp_path)


def test_mnist_corrupt_file_reports_load_idx_error(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"load_idx: .*t10k-images-idx3-ubyte: .*truncated"):
        data.mnist(tmp_path)


# --------------------------------------------------------------------------- one_hot


def test_one_hot_values_and_dtype():
    labels = np.array([2, 0, 1, 2])
    h = data.one_hot(labels, 3)
    assert h.dtype == np.float64 and h.shape == (4, 3)
    for row, label in zip(h, labels, strict=True):
        assert row.tolist() == [1.0 if k == label else 0.0 for k in range(3)]
    np.testing.assert_array_equal(h.argmax(axis=1), labels)
    h32 = data.one_hot(labels.astype(np.uint8), 5, dtype=np.float32)
    assert h32.dtype == np.float32 and h32.shape == (4, 5) and h32.sum() == 4


def test_one_hot_keeps_label_shape():
    labels = np.array([[0, 1], [1, 0]])
    assert data.one_hot(labels, 2).shape == (2, 2, 2)


def test_one_hot_errors():
    with pytest.raises(ArrayTypeError, match="one_hot: expected labels to be an array, got a list"):
        data.one_hot([0, 1], 2)
    with pytest.raises(
        ArrayTypeError,
        match="one_hot: expected integer labels, got an array of "
        r"shape \(2,\) and dtype float64",
    ):
        data.one_hot(np.array([0.0, 1.0]), 2)
    with pytest.raises(
        ArgumentError, match="one_hot: num_classes must be a positive integer, got 0"
    ):
        data.one_hot(np.array([0]), 0)
    with pytest.raises(
        ArgumentError,
        match=r"one_hot: labels must lie in \[0, 3\), got 3 "
        r"\(2 out of range\)",
    ):
        data.one_hot(np.array([0, 3, 1, 7]), 3)
    with pytest.raises(ArgumentError, match=r"one_hot: labels must lie in \[0, 3\), got -1"):
        data.one_hot(np.array([-1, 0]), 3)
    with pytest.raises(ArgumentError, match="one_hot: dtype must be float32 or float64"):
        data.one_hot(np.array([0]), 2, dtype=np.int32)


# --------------------------------------------------------------------------- train_test_split


def _split_data(n=50):
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3)
    return x, np.arange(n) * 10


def test_split_is_a_partition_with_rows_kept_together():
    x, y = _split_data()
    s = data.train_test_split(fr.key(0), x, y, test_fraction=0.3)
    assert len(s.x_test) == len(s.y_test) == 15 and len(s.x_train) == len(s.y_train) == 35
    ids = np.concatenate([s.x_train[:, 0], s.x_test[:, 0]]) // 3
    assert sorted(ids.tolist()) == list(range(50))  # every sample exactly once
    for part_x, part_y in ((s.x_train, s.y_train), (s.x_test, s.y_test)):
        np.testing.assert_array_equal(part_x[:, 0] // 3 * 10, part_y)
        np.testing.assert_array_equal(part_x[:, 1], part_x[:, 0] + 1)


def test_split_is_deterministic_in_key_and_differs_between_keys():
    x, y = _split_data()
    a = data.train_test_split(fr.key(3), x, y)
    b = data.train_test_split(fr.key(3), x, y)
    c = data.train_test_split(fr.key(4), x, y)
    for u, v in zip(a, b, strict=True):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a.y_test, c.y_test)
    assert len(a.y_test) == 10  # ceil(0.2 * 50)


def test_split_size_rounds_up():
    x, y = _split_data(7)
    assert len(data.train_test_split(fr.key(0), x, y, test_fraction=0.2).y_test) == 2


def test_split_inputs_unchanged():
    x, y = _split_data()
    x0, y0 = x.copy(), y.copy()
    data.train_test_split(fr.key(1), x, y)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)


def test_split_errors():
    x, y = _split_data(10)
    k = fr.key(0)
    with pytest.raises(
        ShapeError,
        match="train_test_split: x and y must hold the same number of samples, got 10 and 9",
    ):
        data.train_test_split(k, x, y[:9])
    for bad in (0.0, 1.0, -0.1, 1.5, True, "0.2", float("nan")):
        with pytest.raises(
            ArgumentError,
            match=r"train_test_split: test_fraction must be a "
            r"number in \(0, 1\)",
        ):
            data.train_test_split(k, x, y, test_fraction=bad)
    with pytest.raises(
        ArgumentError,
        match=r"test_fraction 0.99 of 10 samples gives 10 test and "
        r"0 training samples; expected both parts non-empty",
    ):
        data.train_test_split(k, x, y, test_fraction=0.99)
    with pytest.raises(ArrayTypeError, match="train_test_split: expected a random key"):
        data.train_test_split(0, x, y)
    with pytest.raises(
        ArrayTypeError, match="train_test_split: expected y to be an array, got a list"
    ):
        data.train_test_split(k, x, list(y))
    with pytest.raises(ShapeError, match="train_test_split: expected x of shape .*got a scalar"):
        data.train_test_split(k, np.ones(()), y)


# --------------------------------------------------------------------------- standardize


def test_standardize_gives_mean_0_std_1_per_feature():
    x = fr.normal(fr.key(5), (200, 4)) * np.array([1.0, 10.0, 0.1, 3.0]) + np.array(
        [0.0, -5.0, 100.0, 2.0]
    )
    stats = data.standardizer(x)
    assert stats.mean.shape == stats.std.shape == (4,)
    z = data.standardize(x, stats)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-12)
    # Each column by hand.
    for j in range(4):
        col = x[:, j]
        np.testing.assert_allclose(z[:, j], (col - col.mean()) / col.std(), atol=1e-10)


def test_standardize_constant_feature_is_zero_not_nan():
    x = np.array([[0.1, 1.0], [0.1, 2.0], [0.1, 3.0], [0.1, 4.0], [0.1, 5.0], [0.1, 6.0]])
    stats = data.standardizer(x)
    assert stats.std[0] == 1.0
    z = data.standardize(x, stats)
    assert (z[:, 0] == 0.0).all() and np.isfinite(z).all()


def test_standardize_applies_training_stats_to_new_data():
    train = np.array([[0.0], [2.0]])
    stats = data.standardizer(train)
    assert data.standardize(np.array([[4.0], [1.0]]), stats).tolist() == [[3.0], [0.0]]


def test_standardize_float32_in_float32_out_and_integers_to_float64():
    x = np.array([[1, 2], [3, 6]], dtype=np.float32)
    stats = data.standardizer(x)
    assert stats.mean.dtype == stats.std.dtype == np.float32
    assert data.standardize(x, stats).dtype == np.float32
    # float64 statistics do not promote float32 data.
    stats64 = data.standardizer(x.astype(np.float64))
    assert data.standardize(x, stats64).dtype == np.float32
    ints = np.array([[1, 2], [3, 6]], dtype=np.uint8)
    z = data.standardize(ints, data.standardizer(ints))
    assert z.dtype == np.float64 and z.tolist() == [[-1.0, -1.0], [1.0, 1.0]]


def test_standardize_images_per_pixel():
    x = fr.uniform(fr.key(1), (10, 1, 4, 4))
    stats = data.standardizer(x)
    assert stats.mean.shape == (1, 4, 4)
    np.testing.assert_allclose(data.standardize(x, stats).mean(axis=0), 0, atol=1e-12)


def test_standardize_does_not_mutate():
    x = np.array([[1.0, 2.0], [3.0, 5.0]])
    x0 = x.copy()
    data.standardize(x, data.standardizer(x))
    np.testing.assert_array_equal(x, x0)


def test_standardize_errors():
    stats = data.standardizer(np.ones((3, 2)))
    with pytest.raises(
        ShapeError,
        match=r"standardize: expected x of shape \(n, 2\) to match "
        r"the statistics, got shape \(3, 5\)",
    ):
        data.standardize(np.ones((3, 5)), stats)
    with pytest.raises(
        ShapeError,
        match=r"standardizer: expected x of shape \(n, \.\.\.\) with "
        r"n >= 1, got shape \(0, 2\)",
    ):
        data.standardizer(np.ones((0, 2)))
    with pytest.raises(ShapeError, match=r"standardizer: .*got shape \(\)"):
        data.standardizer(np.ones(()))
    with pytest.raises(ArrayTypeError, match="standardizer: expected x to be an array, got a list"):
        data.standardizer([[1.0]])
    with pytest.raises(
        ArrayTypeError,
        match="standardizer: expected a real-valued array, got an "
        "array of shape .* and dtype complex128",
    ):
        data.standardizer(np.ones((2, 2), complex))
    with pytest.raises(ArrayTypeError, match="standardize: expected stats from standardizer"):
        data.standardize(np.ones((3, 2)), (np.zeros(2), np.ones(2)))


def test_standardizer_over_all_features_uses_one_mean_and_std():
    x = np.array([[0.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    stats = data.standardizer(x, per_feature=False)
    assert stats.mean.shape == stats.std.shape == (2,)
    np.testing.assert_allclose(stats.mean, x.mean())
    np.testing.assert_allclose(stats.std, x.std())
    z = data.standardize(x, stats)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12


@pytest.mark.parametrize("per_feature", [True, False])
@pytest.mark.parametrize(
    ("bad", "shown"), [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")]
)
def test_standardizer_refuses_non_finite_data_naming_where(per_feature, bad, shown):
    x = np.ones((4, 3))
    x[2, 1] = bad
    x[3, 0] = np.nan  # a later one: the message names the first
    with pytest.raises(
        NonFiniteError,
        match=rf"standardizer: expected finite values in x, got {shown} at row 2, feature 1$",
    ):
        data.standardizer(x, per_feature=per_feature)


def test_standardizer_names_the_feature_of_an_image_and_the_row_of_a_vector():
    images = np.zeros((3, 1, 4, 4), np.float32)
    images[1, 0, 2, 3] = np.nan
    with pytest.raises(NonFiniteError, match=r"got nan at row 1, feature \(0, 2, 3\)$"):
        data.standardizer(images)
    with pytest.raises(NonFiniteError, match=r"standardizer: .* got inf at row 4$"):
        data.standardizer(np.array([0.0, 1.0, 2.0, 3.0, np.inf]))


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_standardizer_small_spread_in_a_narrow_dtype_is_not_a_zero_std(dtype):
    """The std was computed in x's dtype, whose square underflowed: a feature that is not
    constant got std 0 and standardize returned -inf and inf, silently."""
    tiny = 1e-4 if dtype == np.float16 else 1e-25
    x = np.array([[tiny, 1.0], [2 * tiny, 3.0]], dtype)
    stats = data.standardizer(x)
    assert stats.std.dtype == dtype and stats.std[0] > 0
    np.testing.assert_allclose(data.standardize(x, stats), [[-1, -1], [1, 1]], rtol=2e-3)


def test_standardizer_refuses_statistics_that_overflow():
    """Squares past the float64 range made std inf, and standardize gave 0 for every value."""
    x = np.array([[1e200, 1.0], [-1e200, 2.0], [3e200, 3.0]])
    with np.errstate(all="raise"), pytest.raises(
            NonFiniteError, match=r"standardizer: expected a finite mean and a positive, finite "
                                  r"std of feature 0 in float64, got mean 1e\+200 and std inf"):
        data.standardizer(x)


def test_standardizer_over_all_of_no_features():
    """x of shape (n, 0), per_feature=False, was an IndexError."""
    stats = data.standardizer(np.ones((3, 0)), per_feature=False)
    assert stats.mean.shape == stats.std.shape == (0,)


def test_standardize_refuses_a_std_that_does_not_fit_or_is_not_positive():
    """A Standardization built by hand (or loaded) with std of another shape broadcast x to a
    new shape silently, and a std of 0 gave inf."""
    x = np.ones((2, 2))
    with pytest.raises(ShapeError, match=r"standardize: expected stats.std of stats.mean's "
                                         r"shape \(2,\), got shape \(5, 1, 1\)"):
        data.standardize(x, data.Standardization(np.zeros(2), np.ones((5, 1, 1))))
    with pytest.raises(NonFiniteError, match=r"standardize: expected a finite mean and a "
                                             r"positive, finite std in float64, got means "
                                             r"from 0.0 to 0.0 and stds from 0.0 to 1.0"):
        data.standardize(x, data.Standardization(np.zeros(2), np.array([1.0, 0.0])))
