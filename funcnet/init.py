"""Initializers: each is a function ``(key, shape, dtype=float64) -> array``.

``zeros``, ``ones``, ``xavier`` and ``he`` are initializers themselves; ``normal(std)`` and
``constant(value)`` build one. Weight shapes put the output units last,
``(fan_in..., fan_out)``: a dense ``W`` is ``(in_features, out_features)`` and ``fan_in`` is
the product of every axis but the last.

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
    return shape[0] if len(shape) == 1 else math.prod(shape[:-1])


def _shape_dtype(who: str, shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype]:
    """``shape`` and ``dtype`` checked as the samplers check them, the errors naming ``who``."""
    return random._shape(who, shape), random._float_dtype(who, dtype)


def _normal(who: str, std: float, key: Any, shape: Any, dtype: Any) -> np.ndarray:
    """N(0, std²) samples: ``random.normal``'s draws, with the errors naming ``who``."""
    shape, dtype = _shape_dtype(who, shape, dtype)
    return random._generator(who, key).standard_normal(shape, dtype=dtype) * dtype.type(std)


def _fan_in(who: str, shape: Any) -> int:
    shape = random._shape(who, shape)
    n = fan_in(shape)
    if n == 0:
        raise ArgumentError(f"{who}: shape {shape} has no inputs (fan-in 0): an axis "
                            f"before the last is 0, and the spread is 1/fan-in")
    return n


def zeros(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """All zeros (the key is accepted for a uniform signature and not used)."""
    return np.zeros(*_shape_dtype("init.zeros", shape, dtype))


def ones(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """All ones (the key is not used)."""
    return np.ones(*_shape_dtype("init.ones", shape, dtype))


def constant(value: float) -> Initializer:
    """An initializer that fills with ``value``."""
    if (not isinstance(value, int | float | np.integer | np.floating) or isinstance(value, bool)
            or not math.isfinite(value)):
        raise ArgumentError(f"init.constant: value must be a finite number, got {value!r}")

    def init(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
        shape, dtype = _shape_dtype("init.constant", shape, dtype)
        return np.full(shape, value, dtype)

    return init


def normal(std: float = 0.01) -> Initializer:
    """Samples from N(0, std²). The notes draw every weight and bias with std 0.01."""
    if (not isinstance(std, int | float | np.integer | np.floating) or isinstance(std, bool)
            or not 0 <= std < math.inf):
        raise ArgumentError(f"init.normal: std must be a finite non-negative number, got {std!r}")

    def init(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
        return _normal("init.normal", std, key, shape, dtype)

    return init


def xavier(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """N(0, 1/fan_in): the "Xavier" initializer as "Deep Learning from Scratch" §6.2 uses it.

    (Glorot and Bengio's own variance is 2/(fan_in + fan_out); the textbook
    keeps only the fan-in term, and so do we, so its experiments reproduce.)
    """
    return _normal("init.xavier", 1.0 / math.sqrt(_fan_in("init.xavier", shape)), key, shape,
                   dtype)


def he(key: Any, shape: Any, dtype: Any = np.float64) -> np.ndarray:
    """N(0, 2/fan_in): He et al.'s initializer for ReLU layers."""
    return _normal("init.he", math.sqrt(2.0 / _fan_in("init.he", shape)), key, shape, dtype)
