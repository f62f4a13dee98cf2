"""The affine (fully connected) layer: ``y = x @ W + b``."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from funcnet import init as initializers
from funcnet._xp import namespace
from funcnet.errors import ArrayTypeError, ShapeError, require_positive_int
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_cache,
    check_grad,
    check_in_shape,
    check_input,
    check_same_float,
    check_two_arrays,
    checked_layer,
    init_weights,
)

__all__ = ["dense", "DenseCache"]


class DenseCache(NamedTuple):
    """What ``dense`` backward needs: the input ``x`` (batch, in) and the weights ``W``."""

    x: Any
    W: Any


def dense(out_dim: int, *, w_init: initializers.Initializer = initializers.xavier,
          b_init: initializers.Initializer = initializers.zeros, dtype: Any = np.float64) -> Layer:
    """A fully connected layer with params ``{"W": (in, out_dim), "b": (out_dim,)}``.

    Forward: ``y = x @ W + b`` for ``x`` of shape (batch, in).
    Backward: ``dx = dy @ W.T``, ``dW = x.T @ dy``, ``db = sum(dy, axis=0)``
    (the bias gradient sums over the batch, because ``b`` was added to every row).

    Args:
      out_dim: number of output features.
      w_init, b_init: initializers ``(key, shape, dtype) -> array``.
      dtype: dtype of the parameters (float64 by default).

    >>> from funcnet.random import key
    >>> layer = dense(3)
    >>> params, out_shape = layer.init(key(0), (2,))
    >>> out_shape, params["W"].shape, params["b"].shape
    ((3,), (2, 3), (3,))
    >>> y, cache = layer.forward(params, np.ones((4, 2)))
    >>> dx, grads = layer.backward(cache, np.ones((4, 3)))
    >>> dx.shape, grads["W"].shape
    ((4, 2), (2, 3))
    """
    out_dim = require_positive_int("dense", "out_dim", out_dim)
    dtype = np.dtype(dtype)
    name = f"dense({out_dim})"

    def init(key, in_shape):
        (in_dim,) = check_in_shape(f"{name}.init", in_shape, rank=1,
                                   layout="(features,); put flatten() before it")
        return init_weights(f"{name}.init", key, w_init, b_init, (in_dim, out_dim),
                            dtype), (out_dim,)

    # dot, as the textbook writes it: numpy's matmul is slow on x.T @ dy for a batch of one
    def forward(params, x):
        W, b = params["W"], params["b"]
        return namespace(x, W).dot(x, W) + b, DenseCache(x, W)

    def backward(cache, dy, need_dx=True):
        x, W = cache
        xp = namespace(dy, x, W)
        dx = xp.dot(dy, W.T) if need_dx else None
        return dx, {"W": xp.dot(x.T, dy), "b": dy.sum(axis=0)}

    def check(params, x):
        W, b = check_two_arrays(name, params, "params",
                                {"W": f"(in, {out_dim})", "b": f"({out_dim},)"})
        if np.dtype(W.dtype).kind != "f" or b.dtype != W.dtype:
            raise ArrayTypeError(f"{name}: params W and b must be float arrays of one dtype "
                                 f"(build the layer with dtype=...), got {W.dtype} and "
                                 f"{b.dtype}")
        if W.ndim != 2 or W.shape[1] != out_dim or tuple(b.shape) != (out_dim,):
            raise ShapeError(f"{name}: expected params W of shape (in, {out_dim}) and b of "
                             f"shape ({out_dim},), got W {tuple(W.shape)} and b {tuple(b.shape)}")
        check_input(name, x, min_rank=2)
        if x.ndim != 2:
            raise ShapeError(f"{name}: expected x of shape (batch, {W.shape[0]}), got rank "
                             f"{x.ndim} shape {tuple(x.shape)}; put flatten() before a dense layer")
        if x.shape[1] != W.shape[0]:
            raise ShapeError(f"{name}: expected {W.shape[0]} input features, got {x.shape[1]} "
                             f"(x has shape {tuple(x.shape)})")
        check_same_float(name, x, W)
        return ArraySpec((x.shape[0], out_dim), np.result_type(x.dtype, W.dtype))

    def check_dy(cache, dy):
        check_cache(name, cache, DenseCache)
        check_grad(name, dy, (cache.x.shape[0], cache.W.shape[1]), cache.W.dtype)

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy,
                         skips_dx=True)
