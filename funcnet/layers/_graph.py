"""The two-input nodes of a computational graph (note 001): multiply and add.

Their input is a pair ``(x, y)`` of numbers or arrays and their gradient a pair
``(dx, dy)``. Where ``x`` and ``y`` broadcast, each gradient is summed back to its
input's shape: a value used in many places gets the sum of the gradients of each use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from funcnet._xp import namespace
from funcnet.errors import ArrayTypeError, ShapeError, describe, is_array
from funcnet.layers._base import ArraySpec, Layer, check_cache, check_no_params, checked_layer

__all__ = ["mul", "add", "MulCache", "AddCache"]


class MulCache(NamedTuple):
    """Both inputs: each one's gradient is the upstream gradient times the other."""

    x: Any
    y: Any


class AddCache(NamedTuple):
    """The input shapes: addition passes the upstream gradient to both sides unchanged."""

    x_shape: tuple[int, ...]
    y_shape: tuple[int, ...]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.number) and not isinstance(v, bool)


def _unbroadcast(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum ``g`` over the axes that broadcasting added or stretched, back to ``shape``."""
    xp = namespace(g)
    extra = len(np.shape(g)) - len(shape)
    if extra:
        g = xp.sum(g, axis=tuple(range(extra)))
    stretched = tuple(i for i, s in enumerate(shape) if s == 1 and np.shape(g)[i] != 1)
    if stretched:
        g = xp.sum(g, axis=stretched, keepdims=True)
    return g


def _node(name: str, forward: Callable, backward: Callable, kind: type,
          out_shape: Callable[[Any], tuple[int, ...]]) -> Layer:
    """A parameterless layer of two inputs; ``out_shape(cache)`` is its output's shape."""

    def init(key, in_shape):
        try:
            sx, sy = (tuple(int(s) for s in shape) for shape in in_shape)
            return (), np.broadcast_shapes(sx, sy)
        except (TypeError, ValueError):
            raise ShapeError(f"{name}.init: expected in_shape as a pair of broadcastable "
                             f"shapes (shape_x, shape_y), got {in_shape!r}") from None

    def check(params, xy):
        check_no_params(name, params)
        if not (isinstance(xy, tuple | list) and len(xy) == 2):
            raise ArrayTypeError(f"{name}: expected a pair (x, y) as input, got {describe(xy)}")
        x, y = xy
        for label, v in (("x", x), ("y", y)):
            if not (_is_number(v) or is_array(v)):
                raise ArrayTypeError(f"{name}: expected {label} to be a number or an array, "
                                     f"got {describe(v)}")
        try:
            shape = np.broadcast_shapes(np.shape(x), np.shape(y))
        except ValueError:
            raise ShapeError(f"{name}: cannot broadcast x of shape {np.shape(x)} with y of "
                             f"shape {np.shape(y)}") from None
        return ArraySpec(shape, np.result_type(*(getattr(v, "dtype", v) for v in xy)))

    def check_dy(cache, dout):
        check_cache(name, cache, kind)
        shape = out_shape(cache)
        if not (_is_number(dout) or is_array(dout)) or np.shape(dout) != tuple(shape):
            raise ShapeError(f"{name}.backward: expected dout of shape {tuple(shape)} (the "
                             f"forward output), got {describe(dout)}")

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy)


def mul() -> Layer:
    """``out = x * y``; backward ``dx = dout * y``, ``dy = dout * x``.

    >>> node = mul()
    >>> price, cache = node.forward((), (100.0, 2.0))
    >>> price
    200.0
    >>> node.backward(cache, 1.1)
    ((2.2, 110.00000000000001), ())
    """

    def forward(params, xy):
        x, y = xy
        return x * y, MulCache(x, y)

    def backward(cache, dout):
        x, y = cache
        return (_unbroadcast(dout * y, np.shape(x)), _unbroadcast(dout * x, np.shape(y))), ()

    def out_shape(cache):
        return np.broadcast_shapes(np.shape(cache.x), np.shape(cache.y))

    return _node("mul", forward, backward, MulCache, out_shape)


def add() -> Layer:
    """``out = x + y``; backward passes ``dout`` to both: ``dx = dout``, ``dy = dout``.

    >>> node = add()
    >>> total, cache = node.forward((), (200.0, 450.0))
    >>> total, node.backward(cache, 1.1)
    (650.0, ((1.1, 1.1), ()))
    """

    def forward(params, xy):
        x, y = xy
        return x + y, AddCache(np.shape(x), np.shape(y))

    def backward(cache, dout):
        return (_unbroadcast(dout, cache.x_shape), _unbroadcast(dout, cache.y_shape)), ()

    def out_shape(cache):
        return np.broadcast_shapes(cache.x_shape, cache.y_shape)

    return _node("add", forward, backward, AddCache, out_shape)
