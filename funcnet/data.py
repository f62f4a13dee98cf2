"""Data sets: the notes' toy problems, the packaged digits, and MNIST-format (IDX) files.

Every array is row-per-sample: ``x`` has shape ``(n, features)``, or
``(n, channels, height, width)`` for images; float64 unless ``dtype=np.float32`` is asked for.
Nothing here downloads anything: the toy sets are computed, the digits ship inside the package,
and MNIST / Fashion-MNIST are read from a directory the user already has.

The digits (``funcnet/_data/digits.npz``) are scikit-learn's 8x8 handwritten digits
(``sklearn.datasets.load_digits``, BSD-3-Clause), themselves the test part of the UCI "Optical
Recognition of Handwritten Digits" set. To rebuild the file (tests check it equals
scikit-learn's copy bit for bit)::

    d = sklearn.datasets.load_digits()
    np.savez_compressed("funcnet/_data/digits.npz",
                        pixels=d.data.astype(np.uint8), labels=d.target.astype(np.int64))

>>> xs = sine_regression()
>>> xs.x.shape, xs.t.shape, xs.raw_x.shape
((63, 1), (63, 1), (63,))
>>> one_hot(np.array([2, 0]), 3)
array([[0., 0., 1.],
       [1., 0., 0.]])
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from importlib import resources
from typing import Any, NamedTuple

import numpy as np

from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    DataError,
    NonFiniteError,
    ShapeError,
    describe,
    require_array,
    require_positive_int,
)
from funcnet.random import _float_dtype, _require_key, permutation

__all__ = [
    "SineRegression", "Dataset", "Labelled", "TrainTest", "Split", "Standardization",
    "sine_regression", "sine_boundary", "xor", "digits", "DIGIT_CLASSES", "load_idx", "mnist",
    "fashion_mnist", "MNIST_FILES", "FASHION_MNIST_CLASSES", "one_hot", "train_test_split",
    "standardizer", "standardize",
]

DIGIT_CLASSES = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
               "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class SineRegression(NamedTuple):
    """Note 000's regression set: scaled inputs (n, 1), targets (n, 1), raw inputs (n,)."""

    x: np.ndarray
    t: np.ndarray
    raw_x: np.ndarray


class Dataset(NamedTuple):
    """Inputs (n, features) and float targets (n, outputs)."""

    x: np.ndarray
    t: np.ndarray


class Labelled(NamedTuple):
    """Inputs (n, ...), int64 class labels (n,), and the name of each class."""

    x: np.ndarray
    y: np.ndarray
    class_names: tuple[str, ...]


class TrainTest(NamedTuple):
    """A data set's fixed training and test parts, with the name of each class."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


class Split(NamedTuple):
    """The two parts made by ``train_test_split`` (same field order as ``TrainTest``)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


class Standardization(NamedTuple):
    """Per-feature mean and standard deviation, each of shape ``x.shape[1:]``."""

    mean: np.ndarray
    std: np.ndarray


def sine_regression(*, dtype: Any = np.float64) -> SineRegression:
    """Note 000's regression set: sin(x) on ``arange(0, 2π, 0.1)``, inputs scaled to (x − π)/π.

    ``x`` (63, 1) in [-1, 1), ``t = sin(raw_x)`` (63, 1), and ``raw_x`` (63,) the unscaled
    inputs 0, 0.1, ..., 6.2 (always float64).
    """
    dtype = _float_dtype("sine_regression", dtype)
    raw_x = np.arange(0, np.pi * 2, 0.1)
    x = (raw_x - np.pi) / np.pi
    return SineRegression(x[:, None].astype(dtype), np.sin(raw_x)[:, None].astype(dtype), raw_x)


def sine_boundary(*, dtype: Any = np.float64) -> Dataset:
    """Note 000's classification set: a 21x21 grid on [-1, 1]², split by y = sin(πx).

    The points ``x`` (441, 2) run x-major as in the note (``for x in X: for y in Y``, both
    ``arange(-1.0, 1.1, 0.1)``); the one-hot classes ``t`` (441, 2) are [0, 1] where
    y < sin(πx), else [1, 0].
    """
    dtype = _float_dtype("sine_boundary", dtype)
    grid = np.arange(-1.0, 1.1, 0.1)
    xs, ys = np.meshgrid(grid, grid, indexing="ij")
    x = np.stack([xs.ravel(), ys.ravel()], axis=1)
    below = x[:, 1] < np.sin(np.pi * x[:, 0])
    return Dataset(x.astype(dtype), np.stack([~below, below], axis=1).astype(dtype))


def xor(*, dtype: Any = np.float64) -> Dataset:
    """Note 002's XOR problem, one sample per row (the note's 2x4 X and 1x4 Y, transposed).

    ``x`` (4, 2) holds rows (0,0), (0,1), (1,0), (1,1) and ``t`` (4, 1) is 0, 1, 1, 0.
    """
    dtype = _float_dtype("xor", dtype)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    return Dataset(x, np.array([[0], [1], [1], [0]], dtype=dtype))


def digits(*, images: bool = False, dtype: Any = np.float64) -> Labelled:
    """scikit-learn's 8x8 handwritten digits (1797 samples, 10 classes), read from the package.

    Returns:
        ``Labelled(x, y, class_names)``: pixels scaled to [0, 1] (value / 16) as flat rows
        (1797, 64), or NCHW images (1797, 1, 8, 8) when ``images``; int64 labels (1797,) in
        0..9; class names "0" .. "9".
    """
    dtype = _float_dtype("digits", dtype)
    with resources.files("funcnet").joinpath("_data", "digits.npz").open("rb") as f:
        npz = np.load(f, allow_pickle=False)
        x = npz["pixels"].astype(dtype) / dtype.type(16)
        labels = npz["labels"].astype(np.int64)
    return Labelled(x.reshape(-1, 1, 8, 8) if images else x, labels, DIGIT_CLASSES)


_IDX_TYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
              0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def load_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an IDX file (the MNIST format), raw or gzip-compressed, into a new numpy array.

    The header is two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
    0x0D float32, 0x0E float64), the number of dimensions, then each dimension as a big-endian
    uint32. The data (big-endian) must fill the dimensions exactly. Gzip is recognised by its
    magic bytes, whatever the file is called. At most one byte past the claimed data is read,
    in bounded reads, so a longer file (or a gzip bomb) is refused without reading the rest.
    The array is native-endian, of the header's shape and type.

    Raises:
        DataError: the file is unreadable, corrupt, truncated, too long or not IDX.
    """
    if not isinstance(path, str | os.PathLike):
        raise ArgumentError(f"load_idx: path must be a str or os.PathLike, got {describe(path)}")
    who = f"load_idx: {os.fspath(path)}"
    compressed = False
    try:
        with open(path, "rb") as f:
            compressed = f.read(2) == b"\x1f\x8b"
        with (gzip.open(path, "rb") if compressed else open(path, "rb")) as file:
            start = file.read(4)
            if len(start) < 4:
                raise DataError(f"{who}: expected a 4-byte IDX header, found {len(start)} bytes"
                                + ("" if start else " (empty file)"))
            if start[:2] != b"\0\0":
                raise DataError(f"{who}: expected an IDX file starting with two zero bytes, "
                                f"found 0x{start[0]:02x} 0x{start[1]:02x} (not an IDX file?)")
            code, ndim = start[2], start[3]
            if code not in _IDX_TYPES:
                known = ", ".join(f"0x{c:02x}" for c in _IDX_TYPES)
                raise DataError(f"{who}: expected a data type code in {known}, found 0x{code:02x}")
            if ndim < 1:
                raise DataError(f"{who}: expected at least 1 dimension, found 0")
            sizes = file.read(4 * ndim)
            if len(sizes) < 4 * ndim:
                raise DataError(f"{who}: expected a {4 + 4 * ndim}-byte header for {ndim} "
                                f"dimensions, found only {4 + len(sizes)} bytes (truncated file?)")
            dims = tuple(int(d) for d in np.frombuffer(sizes, ">u4"))
            dtype = _IDX_TYPES[code]
            expected = math.prod(dims) * dtype.itemsize
            data = bytearray()
            while len(data) <= expected:
                chunk = file.read(min(expected + 1 - len(data), 2**20))
                if not chunk:
                    break
                data += chunk
    except (OSError, EOFError, zlib.error) as e:
        if compressed:
            raise DataError(f"{who}: the gzip stream is corrupt or truncated ({e})") from e
        raise DataError(f"{who}: cannot read the file ({e.strerror or e})") from e
    if len(data) != expected:
        found = (f"{len(data)} (truncated file?)" if len(data) < expected else
                 f"more than {expected} (the file holds more data than its header claims)")
        raise DataError(f"{who}: expected {expected} bytes of {dtype.newbyteorder('=')} data "
                        f"after the header for shape {dims}, found {found}")
    try:
        array = np.frombuffer(data, dtype).reshape(dims)
    except ValueError as e:  # more dimensions than numpy supports (a damaged header)
        raise DataError(f"{who}: expected at most the dimensions numpy supports, found "
                        f"{ndim} ({e})") from None
    return array.astype(dtype.newbyteorder("="))


def _idx_split(who: str, directory: Any, images: bool, dtype: Any,
               class_names: tuple[str, ...]) -> TrainTest:
    dtype = _float_dtype(who, dtype)
    if not isinstance(directory, str | os.PathLike) or isinstance(os.fspath(directory), bytes):
        raise ArgumentError(f"{who}: directory must be a str or os.PathLike, "
                            f"got {describe(directory)}")
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise DataError(f"{who}: expected a directory holding {', '.join(MNIST_FILES)}, "
                        f"found no directory at {directory}")
    paths = []
    for name in MNIST_FILES:
        found = [p for p in (name, name + ".gz") if os.path.isfile(os.path.join(directory, p))]
        if not found:
            expected = ", ".join(f"{n} (or {n}.gz)" for n in MNIST_FILES)
            raise DataError(f"{who}: {directory}: missing {name} (or {name}.gz); "
                            f"expected the four files {expected}")
        paths.append(os.path.join(directory, found[0]))
    parts = []
    for image_path, label_path in (paths[:2], paths[2:]):
        pixels, labels = load_idx(image_path), load_idx(label_path)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (28, 28):
            raise DataError(f"{who}: {image_path}: expected uint8 images of shape (n, 28, 28), "
                            f"found {describe(pixels)}")
        if labels.dtype != np.uint8 or labels.ndim != 1:
            raise DataError(f"{who}: {label_path}: expected uint8 labels of shape (n,), "
                            f"found {describe(labels)}")
        if len(labels) != len(pixels):
            raise DataError(f"{who}: {label_path} holds {len(labels)} labels but {image_path} "
                            f"holds {len(pixels)} images; expected one label per image")
        if len(labels) and labels.max() >= len(class_names):
            raise DataError(f"{who}: {label_path}: expected labels 0..{len(class_names) - 1}, "
                            f"found {int(labels.max())}")
        x = pixels.astype(dtype) / dtype.type(255)
        x = x.reshape(-1, 1, 28, 28) if images else x.reshape(-1, 28 * 28)
        parts += [x, labels.astype(np.int64)]
    return TrainTest(*parts, class_names)


def mnist(directory: str | os.PathLike[str], *, images: bool = False,
          dtype: Any = np.float64) -> TrainTest:
    """MNIST read from the four ``MNIST_FILES`` in ``directory``, each raw or ending in .gz
    (the raw file wins when both exist); nothing downloads.

    Returns:
        ``TrainTest(x_train, y_train, x_test, y_test, class_names)``: pixels scaled to [0, 1]
        (value / 255) as flat rows (n, 784), or NCHW images (n, 1, 28, 28) when ``images``;
        int64 labels (n,); class names "0" .. "9".

    Raises:
        DataError: a file is missing or malformed, or images and labels disagree.
    """
    return _idx_split("mnist", directory, images, dtype, DIGIT_CLASSES)


def fashion_mnist(directory: str | os.PathLike[str], *, images: bool = False,
                  dtype: Any = np.float64) -> TrainTest:
    """Fashion-MNIST from ``directory``: as ``mnist``, with ``FASHION_MNIST_CLASSES`` names."""
    return _idx_split("fashion_mnist", directory, images, dtype, FASHION_MNIST_CLASSES)


def one_hot(labels: Any, num_classes: int, dtype: Any = np.float64) -> np.ndarray:
    """Integer class labels (any shape, values in [0, num_classes)) as one-hot rows: an array
    of shape ``labels.shape + (num_classes,)``, 1 at each label and 0 elsewhere."""
    require_array("one_hot", "labels", labels)
    if labels.dtype.kind not in "iu":
        raise ArrayTypeError(f"one_hot: expected integer labels, got {describe(labels)}")
    num_classes = require_positive_int("one_hot", "num_classes", num_classes)
    dtype = _float_dtype("one_hot", dtype)
    labels = np.asarray(labels)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        raise ArgumentError(f"one_hot: labels must lie in [0, {num_classes}), got "
                            f"{labels[bad].flat[0]} ({int(bad.sum())} out of range)")
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


def train_test_split(key: Any, x: Any, y: Any, test_fraction: float = 0.2) -> Split:
    """Shuffle the samples of ``x`` (n, ...) and ``y`` (n, ...) with ``key`` and split them.

    The test part holds ``ceil(test_fraction * n)`` samples, ``test_fraction`` in (0, 1)
    leaving neither part empty; every sample lands in exactly one part, and the same key
    always gives the same split.
    """
    who = "train_test_split"
    _require_key(who, key)
    for name, value in (("x", x), ("y", y)):
        require_array(who, name, value)
        if value.ndim < 1:
            raise ShapeError(f"{who}: expected {name} of shape (n, ...), got a scalar")
    if len(x) != len(y):
        raise ShapeError(f"{who}: x and y must hold the same number of samples, "
                         f"got {len(x)} and {len(y)}")
    number = isinstance(test_fraction, int | float | np.floating)
    if isinstance(test_fraction, bool) or not number or not 0.0 < float(test_fraction) < 1.0:
        raise ArgumentError(f"{who}: test_fraction must be a number in (0, 1), "
                            f"got {test_fraction!r}")
    n = len(x)
    n_test = math.ceil(float(test_fraction) * n)
    if not 0 < n_test < n:
        raise ArgumentError(f"{who}: test_fraction {test_fraction} of {n} samples gives "
                            f"{n_test} test and {n - n_test} training samples; "
                            "expected both parts non-empty")
    order = permutation(key, n)
    test, train = order[:n_test], order[n_test:]
    return Split(x[train], y[train], x[test], y[test])


def _floating(who: str, x: Any) -> np.ndarray:
    """``x`` checked to be a real array of shape (n, ...), n >= 1; integers become float64."""
    require_array(who, "x", x)
    if x.ndim < 1 or len(x) == 0:
        raise ShapeError(f"{who}: expected x of shape (n, ...) with n >= 1, "
                         f"got shape {tuple(x.shape)}")
    if x.dtype.kind not in "fiub":
        raise ArrayTypeError(f"{who}: expected a real-valued array, got {describe(x)}")
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def standardizer(x: Any, *, per_feature: bool = True) -> Standardization:
    """Mean and standard deviation of ``x`` (n, ...) over axis 0, to pass to ``standardize``.

    With ``per_feature=False``, one mean and one std over every value (what images want: a
    stray pixel at the border, constant in the training set, is not blown up), repeated to the
    per-feature shape. A constant feature gets std 1 (and its own value as mean), so it becomes
    exactly 0. The statistics are computed in float64 and have x's float dtype (float64 for
    integer input).

    Raises:
        NonFiniteError: ``x`` holds a NaN or an infinity (the message names the first's row
            and feature), or a feature's mean or std is not finite or its std is 0 in x's
            dtype (values too large, or too close together, for it).

    >>> stats = standardizer(np.array([[0.0, 2.0], [2.0, 4.0]]), per_feature=False)
    >>> stats.mean.tolist(), stats.std.tolist()
    ([2.0, 2.0], [1.4142135623730951, 1.4142135623730951])
    """
    x = _floating("standardizer", x)
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        row, *feature = (int(i) for i in bad[0])
        where = f"row {row}"
        if feature:
            where += f", feature {feature[0] if len(feature) == 1 else tuple(feature)}"
        raise NonFiniteError(f"standardizer: expected finite values in x, "
                             f"got {float(x[tuple(bad[0])])} at {where}")
    pooled = not per_feature and x.size > 0
    values = x.reshape(-1, 1) if pooled else x
    constant = (values == values[0]).all(axis=0)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        mean = np.where(constant, values[0], values.mean(axis=0, dtype=np.float64))
        std = np.where(constant, 1, values.std(axis=0, dtype=np.float64))
        mean, std = mean.astype(x.dtype), std.astype(x.dtype)
    bad = np.argwhere(~np.isfinite(mean) | ~np.isfinite(std) | (std == 0))
    if len(bad):
        at = tuple(int(i) for i in bad[0])
        where = "" if pooled or not at else \
            f" of feature {at[0] if len(at) == 1 else at}"
        raise NonFiniteError(f"standardizer: expected a finite mean and a positive, finite std"
                             f"{where} in {x.dtype}, got mean {float(mean[at])} and std "
                             f"{float(std[at])} (values too large, or too close together)")
    if pooled:
        mean, std = np.full(x.shape[1:], mean[0]), np.full(x.shape[1:], std[0])
    return Standardization(mean, std)


def standardize(x: Any, stats: Standardization) -> np.ndarray:
    """``(x - mean) / std`` with statistics from ``standardizer`` (often of the training part).

    ``x`` (n, ...) must have the trailing shape ``stats.mean.shape``; the result is a new
    array of x's shape and float dtype (float64 for integer input).

    >>> x = np.array([[1.0, 5.0], [3.0, 5.0]])
    >>> standardize(x, standardizer(x))
    array([[-1.,  0.],
           [ 1.,  0.]])
    """
    x = _floating("standardize", x)
    if not isinstance(stats, Standardization):
        raise ArrayTypeError(f"standardize: expected stats from standardizer(x), "
                             f"got {describe(stats)}")
    if x.shape[1:] != np.shape(stats.mean):
        features = "".join(f", {d}" for d in np.shape(stats.mean)) or ","
        raise ShapeError(f"standardize: expected x of shape (n{features}) to match the "
                         f"statistics, got shape {tuple(x.shape)}")
    if np.shape(stats.std) != np.shape(stats.mean):
        raise ShapeError(f"standardize: expected stats.std of stats.mean's shape "
                         f"{np.shape(stats.mean)}, got shape {np.shape(stats.std)}")
    mean, std = (np.asarray(s).astype(x.dtype, copy=False) for s in (stats.mean, stats.std))
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise NonFiniteError(f"standardize: expected a finite mean and a positive, finite std "
                             f"in {x.dtype}, got means from {np.min(mean)} to {np.max(mean)} "
                             f"and stds from {np.min(std)} to {np.max(std)}")
    return (x - mean) / std
