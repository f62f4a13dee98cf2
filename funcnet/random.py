"""Explicit random keys: counter-based, splittable, and never global.

A key is a read-only array of two ``uint64`` words: the key of a Philox counter-based
generator. Every sampler takes a key and returns the same numbers for the same key on every run
and every machine; nothing here reads or writes numpy's global generator. A key is meant to be
used once: split it to get fresh keys for separate uses. Every draw makes its own generator
from its key, so no draw leaves state behind, in any thread.

>>> k = key(0)
>>> k_init, k_data = split(k)
>>> a = normal(k_init, (2,))
>>> bool((a == normal(k_init, (2,))).all())
True
>>> bool((a == normal(k_data, (2,))).all())
False
"""

from __future__ import annotations

from typing import Any

import numpy as np

from funcnet.errors import ArgumentError, ArrayTypeError, describe, is_array, require_probability

__all__ = ["key", "split", "fold_in", "is_key", "normal", "uniform", "integers", "permutation",
           "bernoulli"]

Key = np.ndarray

# Separate counter domains for sampling, splitting and folding-in, so that
# split(k) never reproduces the stream normal(k) draws from.
_SPLIT_DOMAIN = np.uint64(1 << 62)
_FOLD_DOMAIN = np.uint64(2 << 62)
_SAMPLE_DOMAIN = np.uint64(0)


def _seal(words: np.ndarray) -> Key:
    words = np.ascontiguousarray(words, dtype=np.uint64)
    words.flags.writeable = False
    return words


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_key(value: Any) -> bool:
    """True for a key made here, or that key as a jax array (``split`` and ``bernoulli``)."""
    return is_array(value) and value.dtype == np.uint64 and tuple(value.shape) == (2,)


def _require_key(who: str, value: Any) -> Key:
    if not is_key(value):
        raise ArrayTypeError(f"{who}: expected a random key (make one with "
                             f"funcnet.random.key(seed)), got {describe(value)}")
    return value


def key(seed: int) -> Key:
    """Make a key from a non-negative integer seed, spread over the 128 key bits with
    numpy's ``SeedSequence`` (whose output is fixed across platforms)."""
    if not _is_int(seed) or seed < 0:
        raise ArgumentError(f"random.key: seed must be a non-negative integer, got {seed!r}")
    return _seal(np.random.SeedSequence(int(seed)).generate_state(2, np.uint64))


def _bit_generator(k: Key, domain: np.uint64 = _SAMPLE_DOMAIN, word0: int = 0):
    """A fresh Philox bit generator at key ``k`` and counter ``(word0, 0, 0, domain)``."""
    return np.random.Philox(key=k, counter=np.array([word0, 0, 0, domain], dtype=np.uint64))


def split(k: Key, n: int = 2) -> tuple[Key, ...]:
    """Derive ``n`` independent keys from ``k`` (a tuple, so ``a, b = split(k)`` works)."""
    _require_key("random.split", k)
    if not _is_int(n) or n < 1:
        raise ArgumentError(f"random.split: n must be a positive integer, got {n!r}")
    n = int(n)
    if not isinstance(k, np.ndarray):  # a jax key, traced by the jit path
        words = _philox_words(k, 2 * n, _SPLIT_DOMAIN).reshape(n, 2)
        return tuple(words[i] for i in range(n))
    words = _bit_generator(k, _SPLIT_DOMAIN).random_raw(2 * n).reshape(n, 2)
    return tuple(_seal(w) for w in words)


def fold_in(k: Key, data: int) -> Key:
    """A new key derived from ``k`` and a non-negative integer (an epoch, a step).

    >>> bool((fold_in(key(1), 3) == fold_in(key(1), 3)).all())
    True
    """
    _require_key("random.fold_in", k)
    if not _is_int(data) or data < 0:
        raise ArgumentError(f"random.fold_in: data must be a non-negative integer, got {data!r}")
    if data >= 2**64:  # it is a counter word
        raise ArgumentError(f"random.fold_in: data must be below 2**64, got {data!r}")
    return _seal(_bit_generator(k, _FOLD_DOMAIN, int(data)).random_raw(2))


def _generator(who: str, k: Key) -> np.random.Generator:
    return np.random.Generator(_bit_generator(_require_key(who, k)))


def _shape(who: str, shape: Any) -> tuple[int, ...]:
    try:
        items = (shape,) if _is_int(shape) else tuple(shape)
    except TypeError:
        items = None
    if items is None or not all(_is_int(s) for s in items):
        raise ArgumentError(f"{who}: shape must be a tuple of integers, got {shape!r}")
    items = tuple(int(s) for s in items)
    if any(s < 0 for s in items):
        raise ArgumentError(f"{who}: shape must not have negative sizes, got {items}")
    return items


def _float_dtype(who: str, dtype: Any) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ArgumentError(f"{who}: dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ArgumentError(f"{who}: dtype must be float32 or float64, got {dtype}")
    return dtype


def normal(k: Key, shape: Any = (), dtype: Any = np.float64) -> np.ndarray:
    """Standard normal samples of ``shape``."""
    shape, dtype = _shape("random.normal", shape), _float_dtype("random.normal", dtype)
    return _generator("random.normal", k).standard_normal(shape, dtype=dtype)


def uniform(k: Key, shape: Any = (), dtype: Any = np.float64, minval: float = 0.0,
            maxval: float = 1.0) -> np.ndarray:
    """Uniform samples in ``[minval, maxval)``."""
    shape, dtype = _shape("random.uniform", shape), _float_dtype("random.uniform", dtype)
    if not minval < maxval:
        raise ArgumentError(f"random.uniform: needs minval < maxval, got {minval} and {maxval}")
    u = _generator("random.uniform", k).random(shape, dtype=dtype)
    out = (u * dtype.type(maxval - minval) + dtype.type(minval)).astype(dtype, copy=False)
    # u < 1, but u * range + minval can round up to maxval (float32 at 1 - 2**-24 on [1, 2))
    return np.minimum(out, np.nextafter(dtype.type(maxval), dtype.type(minval)))


def integers(k: Key, low: int, high: int, shape: Any = ()) -> np.ndarray:
    """Integers drawn uniformly from ``[low, high)`` as int64."""
    shape = _shape("random.integers", shape)
    if not (_is_int(low) and _is_int(high)):
        raise ArgumentError(f"random.integers: low and high must be integers, got {low!r} "
                            f"and {high!r}")
    if not low < high:
        raise ArgumentError(f"random.integers: needs low < high, got {low} and {high}")
    return _generator("random.integers", k).integers(low, high, size=shape, dtype=np.int64)


def permutation(k: Key, n: int) -> np.ndarray:
    """A random ordering of ``0 .. n-1`` (int64): every index exactly once."""
    if not _is_int(n) or n < 0:
        raise ArgumentError(f"random.permutation: n must be a non-negative integer, got {n!r}")
    return _generator("random.permutation", k).permutation(int(n))


def bernoulli(k: Key, p: float, shape: Any = ()) -> np.ndarray:
    """Booleans that are True with probability ``p``."""
    shape = _shape("random.bernoulli", shape)
    p = require_probability("random.bernoulli", "p", p)
    if not isinstance(_require_key("random.bernoulli", k), np.ndarray):  # a jax key
        words = _philox_words(k, int(np.prod(shape)), _SAMPLE_DOMAIN)
        return ((words >> np.uint64(11)).astype(np.float64) * 2.0**-53 < p).reshape(shape)
    return _generator("random.bernoulli", k).random(shape) < p


# --- the same draws on a jax key -------------------------------------------------------------
# The jit path draws dropout masks inside its compiled step, from keys made here on the
# host. numpy's Philox4x64-10 written with array operators gives the same words on a jax
# array: a draw increments the 256-bit counter (word0, 0, 0, domain) and encrypts it with
# the key in ten rounds; each block gives four words, in order. Generator.random turns a
# word w into (w >> 11) * 2**-53. Needs jax's x64 mode (uint64), as the jit path runs.

_M0, _M1 = np.uint64(0xD2E7470EE14C6C93), np.uint64(0xCA5A826395121157)
_W0, _W1 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBB67AE8584CAA73B)
_LOW, _S32 = np.uint64(0xFFFFFFFF), np.uint64(32)


def _mulhilo(a: Any, b: Any) -> tuple[Any, Any]:
    """The high and low 64-bit halves of the 128-bit product of uint64 ``a`` and ``b``."""
    a_lo, a_hi, b_lo, b_hi = a & _LOW, a >> _S32, b & _LOW, b >> _S32
    t = a_lo * b_lo
    m1 = a_hi * b_lo + (t >> _S32)
    m2 = a_lo * b_hi + (m1 & _LOW)
    return a_hi * b_hi + (m1 >> _S32) + (m2 >> _S32), a * b


def _philox_words(k: Any, n: int, domain: np.uint64) -> Any:
    """``random_raw(n)`` of ``Philox(key=k, counter=(0, 0, 0, domain))``, for a jax key."""
    xp = k.__array_namespace__()
    c0 = xp.arange(1, -(-n // 4) + 1, dtype=xp.uint64)  # block j encrypts counter j
    c1, c2, c3 = xp.zeros_like(c0), xp.zeros_like(c0), xp.full_like(c0, domain)
    k0, k1 = k[0], k[1]
    for i in range(10):
        if i:
            k0, k1 = k0 + _W0, k1 + _W1
        hi0, lo0 = _mulhilo(_M0, c0)
        hi1, lo1 = _mulhilo(_M1, c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return xp.reshape(xp.stack([c0, c1, c2, c3], axis=1), (-1,))[:n]
