"""funcnet.init: shapes, dtypes, determinism in the key, and the promised spread."""

from __future__ import annotations

import math

import numpy as np
import pytest

from funcnet import init, random
from funcnet.errors import ArgumentError, ArrayTypeError

INITIALIZERS = {
    "zeros": init.zeros,
    "ones": init.ones,
    "constant": init.constant(0.25),
    "normal": init.normal(0.3),
    "xavier": init.xavier,
    "he": init.he,
}
SHAPES = [(5,), (3, 4), (3, 3, 2, 8)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_shape_and_dtype(name, dtype, shape):
    W = INITIALIZERS[name](random.key(0), shape, dtype)
    assert W.shape == shape and W.dtype == dtype
    assert np.isfinite(W).all()


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_float64_by_default(name):
    assert INITIALIZERS[name](random.key(0), (2, 3)).dtype == np.float64


def test_constant_values():
    k = random.key(0)
    assert not init.zeros(k, (2, 3)).any()
    assert (init.ones(k, (2, 3)) == 1).all()
    assert (init.constant(0.25)(k, (4,)) == 0.25).all()
    assert (init.constant(-3)(k, (2,), np.float32) == np.float32(-3)).all()


@pytest.mark.parametrize("name", ["normal", "xavier", "he"])
def test_random_initializers_are_deterministic_in_the_key(name):
    f = INITIALIZERS[name]
    a = f(random.key(3), (20, 10))
    np.testing.assert_array_equal(a, f(random.key(3), (20, 10)))
    assert not np.array_equal(a, f(random.key(4), (20, 10)))


def test_float32_and_float64_draws_have_the_same_spread():
    W32 = init.normal(1.0)(random.key(1), (1000,), np.float32)
    W64 = init.normal(1.0)(random.key(1), (1000,), np.float64)
    assert W32.dtype == np.float32
    # the same key gives the same distribution in either dtype (not necessarily same bits)
    assert abs(W32.std() - W64.std()) < 0.1


def test_fan_in():
    assert init.fan_in((7,)) == 7
    assert init.fan_in((3, 4)) == 3
    assert init.fan_in((3, 3, 2, 8)) == 3 * 3 * 2  # conv kernel (kh, kw, in, out)
    assert init.fan_in(()) == 1


N = 400_000  # draws per statistic: the sample std's relative error is about 1 / sqrt(2N) = 0.1%


@pytest.mark.parametrize("std", [0.01, 1.0, 3.0])
def test_normal_has_the_asked_std(std):
    W = init.normal(std)(random.key(5), (N,))
    assert abs(W.std() / std - 1) < 0.01
    assert abs(W.mean()) < 0.01 * std


@pytest.mark.parametrize("shape", [(50, N // 50), (5, 5, 2, N // 50)])
def test_xavier_std_is_one_over_sqrt_fan_in(shape):
    W = init.xavier(random.key(6), shape)
    expected = 1 / math.sqrt(math.prod(shape[:-1]))
    assert abs(W.std() / expected - 1) < 0.01


@pytest.mark.parametrize("shape", [(50, N // 50), (5, 5, 2, N // 50)])
def test_he_std_is_sqrt_two_over_fan_in(shape):
    W = init.he(random.key(7), shape)
    expected = math.sqrt(2 / math.prod(shape[:-1]))
    assert abs(W.std() / expected - 1) < 0.01


def test_he_of_a_vector_uses_its_length():
    W = init.he(random.key(8), (N,))
    assert abs(W.std() / math.sqrt(2 / N) - 1) < 0.01


def test_zero_std_gives_zeros():
    assert not init.normal(0.0)(random.key(0), (3,)).any()


@pytest.mark.parametrize("std", [-1.0, -1e-9, float("nan"), float("inf"), "0.1", None, True])
def test_bad_std(std):
    with pytest.raises(ArgumentError,
                       match=r"init\.normal: std must be a finite non-negative number, got "):
        init.normal(std)


def test_numpy_scalar_std_is_accepted():
    W = init.normal(np.float32(2.0))(random.key(0), (N,))
    assert abs(W.std() / 2 - 1) < 0.01


@pytest.mark.parametrize("name", ["normal", "xavier", "he"])
def test_random_initializers_need_a_key(name):
    # named as the initializer, not as the sampler it calls
    with pytest.raises(ArrayTypeError,
                       match=rf"^init\.{name}: expected a random key .* got an int \(0\)"):
        INITIALIZERS[name](0, (2, 2))


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
@pytest.mark.parametrize("shape, dtype, message", [
    (None, np.float64, r"shape must be a tuple of integers, got None"),
    ((2, -1), np.float64, r"shape must not have negative sizes, got \(2, -1\)"),
    ((2, 2), np.int32, r"dtype must be float32 or float64, got int32"),
])
def test_initializers_name_themselves_in_argument_errors(name, shape, dtype, message):
    with pytest.raises(ArgumentError, match=rf"^init\.{name}: {message}"):
        INITIALIZERS[name](random.key(0), shape, dtype)


@pytest.mark.parametrize("name", ["xavier", "he"])
def test_fan_in_scaled_initializers_refuse_a_shape_without_inputs(name):
    # the spread is 1/fan_in: a zero-size input axis once raised a bare ZeroDivisionError
    with pytest.raises(ArgumentError, match=rf"^init\.{name}: shape \(0, 3\) has no inputs"):
        INITIALIZERS[name](random.key(0), (0, 3))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "1", None, True])
def test_bad_constant(value):
    with pytest.raises(ArgumentError, match=r"init\.constant: value must be a finite number"):
        init.constant(value)
