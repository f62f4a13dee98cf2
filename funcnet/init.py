"""Initializers: each is a function ``(key, shape, dtype=float64) -> array``.

``zeros``, ``ones``, ``xavier`` and ``he`` are initializers themselves;
``normal(std)`` and ``constant(value)`` build one. Weight shapes put the
output units last, ``(fan_in..., fan_out)``: a dense ``W`` is
``(in_features, out_features)`` and ``fan_in`` is the product of every axis
but the last.

>>> from funcnet.random import key
>>> W = normal(0.01)(key(0), (2, 3))
>>> W.shape, W.dtype
((2, 3), dtype('float64'))
>>> float(zeros(key(0), (2,), "float32").sum())
0.0
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from funcnet import random
from funcnet.errors import ArgumentError

__all__ = ["Initializer", "zeros", "ones", "constant", "normal", "xavier", "he", "fan_in"]

Initializer = Callable[..., np.ndarray]


def fan_in(shape: tuple[int, ...]) -> int:
    """The number of inputs feeding each output unit: ``prod(shape[:-1])`` (``shape[0]`` if 1-D)."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1
    if len(shape) == 1:
        return shape[0]
    return math.prod(shape[:-1])


def zeros(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """All zeros (the key is accepted for a uniform signature and not used)."""
    return np.zeros(shape, dtype)


def ones(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """All ones (the key is not used)."""
    return np.ones(shape, dtype)


def constant(value: float) -> Initializer:
    """An initializer that fills with ``value``."""

    def init(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
        return np.full(shape, value, dtype)

    return init


def normal(std: float = 0.01) -> Initializer:
    """Samples from N(0, std²). The notes draw every weight and bias with std 0.01."""
    if (not isinstance(std, int | float | np.integer | np.floating) or isinstance(std, bool)
            or not 0 <= std < math.inf):
        raise ArgumentError(f"init.normal: std must be a finite non-negative number, got {std!r}")

    def init(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
        return (random.normal(key, shape, dtype) * np.dtype(dtype).type(std)).astype(dtype)

    return init


def xavier(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """N(0, 1/fan_in): the "Xavier" initializer as "Deep Learning from Scratch" §6.2 uses it.

    (Glorot and Bengio's own variance is 2/(fan_in + fan_out); the textbook
    keeps only the fan-in term, and so do we, so its experiments reproduce.)
    """
    std = 1.0 / math.sqrt(fan_in(shape))
    return normal(std)(key, shape, dtype)


def he(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """N(0, 2/fan_in): He et al.'s initializer for ReLU layers."""
    std = math.sqrt(2.0 / fan_in(shape))
    return normal(std)(key, shape, dtype)
