"""Elementwise activations (and softmax), each a parameterless layer (``params == ()``).

Each takes ``x`` of any shape with a batch axis and returns ``dx`` of ``dy``'s shape and dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from funcnet._xp import namespace, sigmoid_fn, softmax_fn
from funcnet.errors import require_probability
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_cache,
    check_grad,
    check_in_shape,
    check_input,
    check_no_params,
    checked_layer,
)

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax", "ActivationCache"]


class ActivationCache(NamedTuple):
    """What an activation's backward needs: ``saved`` (a mask or the output ``y``)."""

    saved: Any


def _elementwise(name: str, apply: Callable[[Any, Any], tuple[Any, Any]],
                 grad: Callable[[Any, Any, Any], Any], *, min_in_rank: int = 0) -> Layer:
    """A parameterless layer from ``apply(x, xp) -> (y, saved)``, ``grad(saved, dy, xp) -> dx``."""

    def init(key, in_shape):
        return (), check_in_shape(f"{name}.init", in_shape, min_rank=min_in_rank)

    def forward(params, x):
        y, saved = apply(x, namespace(x))
        return y, ActivationCache(saved)

    def backward(cache, dy):
        return grad(cache.saved, dy, namespace(dy)), ()

    def check(params, x):
        check_no_params(name, params)
        check_input(name, x, min_rank=1 + min_in_rank)
        return ArraySpec(tuple(x.shape), x.dtype)

    def check_dy(cache, dy):
        check_cache(name, cache, ActivationCache)
        check_grad(name, dy, cache.saved.shape)

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy)


def relu() -> Layer:
    """``y = max(x, 0)``; the gradient passes where ``x > 0`` (and is 0 at the kink x = 0).

    Cache: the boolean mask ``x > 0``.

    >>> import numpy as np
    >>> layer = relu()
    >>> y, cache = layer.forward((), np.array([[1.0, -0.5], [-2.0, 3.0]]))
    >>> y
    array([[1., 0.],
           [0., 3.]])
    >>> layer.backward(cache, np.array([[7.0, 8.5], [3.0, 9.0]]))[0]
    array([[7., 0.],
           [0., 9.]])
    """

    # ``x * mask`` gives jax.grad the same gradient as this backward, 0 at the corner;
    # ``+ 0.0`` turns the -0.0 that a negative x times False gives into 0.0.
    def apply(x, xp):
        mask = x > 0
        return x * mask + 0.0, mask

    def grad(mask, dy, xp):
        return dy * mask + 0.0

    return _elementwise("relu", apply, grad)


def leaky_relu(slope: float = 0.01) -> Layer:
    """``y = x`` where ``x > 0``, else ``slope * x``; ``0 <= slope < 1``. Cache: the mask."""
    slope = require_probability("leaky_relu", "slope", slope, open_right=True)

    def apply(x, xp):
        mask = x > 0
        return x * (slope + (1 - slope) * mask.astype(x.dtype)) + 0.0, mask

    def grad(mask, dy, xp):
        return dy * (slope + (1 - slope) * mask.astype(dy.dtype)) + 0.0

    return _elementwise(f"leaky_relu({slope})", apply, grad)


def sigmoid() -> Layer:
    """``y = 1 / (1 + exp(-x))``; backward ``dx = dy * y * (1 - y)``. Cache: ``y``.

    Stable for any input: the exponent is clipped, so ``x = -1000`` gives about 1e-277.
    """

    def apply(x, xp):
        y = sigmoid_fn(x, xp)
        return y, y

    def grad(y, dy, xp):
        return dy * y * (1 - y)

    return _elementwise("sigmoid", apply, grad)


def tanh() -> Layer:
    """``y = tanh(x)``; backward ``dx = dy * (1 - y**2)``. Cache: ``y``."""

    def apply(x, xp):
        y = xp.tanh(x)
        return y, y

    def grad(y, dy, xp):
        return dy * (1 - y * y)

    return _elementwise("tanh", apply, grad)


def identity() -> Layer:
    """``y = x``; backward ``dx = dy``. The output layer of a regression net (note 000)."""

    def apply(x, xp):
        return x, x

    def grad(x, dy, xp):
        return dy

    return _elementwise("identity", apply, grad)


def softmax() -> Layer:
    """Softmax over the last axis: ``y = exp(x) / sum(exp(x))``, row by row.

    Backward: ``dx = y * (dy - sum(dy * y, axis=-1))``. Cache: ``y``.
    For training a classifier prefer the fused ``losses.softmax_cross_entropy``
    on logits; this layer is for when probabilities are wanted as outputs.
    """

    def apply(x, xp):
        y = softmax_fn(x, xp)
        return y, y

    def grad(y, dy, xp):
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))

    return _elementwise("softmax", apply, grad, min_in_rank=1)
