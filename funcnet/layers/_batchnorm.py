"""Batch normalisation: a layer with a train/eval switch and running statistics as state."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from funcnet._xp import namespace
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, require_probability
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_cache,
    check_grad,
    check_in_shape,
    check_input,
    check_same_float,
    check_train,
    check_two_arrays,
    checked_layer,
)
from funcnet.tree import freeze

__all__ = ["batch_norm", "BatchNormCache"]


class BatchNormCache(NamedTuple):
    """What backward needs, and the state forward produced.

    ``xhat`` is the normalised input (x's shape), ``gamma`` the scale,
    ``inv_std`` ``1 / sqrt(var + eps)`` per channel (broadcastable to x),
    ``train`` the mode, ``state`` the running statistics after this call.
    """

    xhat: Any
    gamma: Any
    inv_std: Any
    train: bool
    state: dict


def batch_norm(momentum: float = 0.9, eps: float = 1e-5, *, dtype: Any = np.float64) -> Layer:
    """Normalise each channel over the batch, then scale by ``gamma`` and shift by ``beta``.

    ``x`` is (batch, C) or NCHW (batch, C, H, W); ``in_shape`` is ``(C,)`` or
    ``(C, H, W)``. Statistics are per channel, over the batch (and H, W).
    Params ``{"gamma": (C,), "beta": (C,)}`` (ones, zeros); state ``{"mean": (C,),
    "var": (C,)}`` (zeros, ones) from ``layers.init_state(layer, in_shape)``.

    ``forward(params, x, *, train=None, state=None)``. With ``train=True`` it
    uses the batch mean ``mu`` and the BIASED batch variance ``var`` (divided by
    the count, as the textbook does) and returns the running statistics
    ``momentum * running + (1 - momentum) * batch_stat`` in ``cache.state``
    (a batch of one normalises to 0, so its output is ``beta``). With
    ``train=False`` it uses the running statistics and passes ``state`` on.
    Backward in training runs through the batch statistics, with
    ``dxhat = dy * gamma`` and ``m`` values per channel:
    ``dx = inv_std / m * (m dxhat - sum(dxhat) - xhat sum(dxhat xhat))``;
    in eval it is affine.

    Args:
      momentum: weight of the old running value, in [0, 1].
      eps: added to the variance before the square root, > 0.
      dtype: dtype of params and state (float64 by default).

    >>> from funcnet.layers import init_state
    >>> from funcnet.random import key
    >>> layer = batch_norm()
    >>> params, _ = layer.init(key(0), (2,))
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> y, cache = layer.forward(params, x, train=True, state=init_state(layer, (2,)))
    >>> np.round(y, 3)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> np.round(cache.state["mean"], 6), np.round(cache.state["var"], 6)
    (array([0.2, 2. ]), array([ 1. , 10.9]))
    """
    momentum = require_probability("batch_norm", "momentum", momentum)
    if (isinstance(eps, bool) or not isinstance(eps, int | float | np.integer | np.floating)
            or not 0 < eps < math.inf):
        raise ArgumentError(f"batch_norm: eps must be a finite number > 0, got {eps!r}")
    eps = float(eps)
    dtype = np.dtype(dtype)
    name = f"batch_norm(momentum={momentum}, eps={eps})"

    def _channels(who, in_shape):
        shape = check_in_shape(who, in_shape)
        if len(shape) not in (1, 3):
            raise ShapeError(f"{who}: expected in_shape (features,) or (channels, height, "
                             f"width), got {shape} of rank {len(shape)}")
        return shape

    def init(key, in_shape):
        shape = _channels(f"{name}.init", in_shape)
        params = {"gamma": np.ones(shape[0], dtype), "beta": np.zeros(shape[0], dtype)}
        return freeze(params, copy=False), shape

    def initial_state(in_shape):
        shape = _channels(f"{name}.init_state", in_shape)
        return freeze({"mean": np.zeros(shape[0], dtype), "var": np.ones(shape[0], dtype)},
                      copy=False)

    def forward(params, x, *, train=None, state=None):
        gamma, beta = params["gamma"], params["beta"]
        mean, var = state["mean"], state["var"]
        channels = gamma.shape[0]
        xp = namespace(x, gamma, mean)
        axes = (0,) if x.ndim == 2 else (0, 2, 3)
        per_channel = (1, channels) + (1, 1) * (x.ndim == 4)
        if train:
            mu = xp.mean(x, axis=axes, keepdims=True)
            centred = x - mu
            batch_var = xp.mean(centred * centred, axis=axes, keepdims=True)
            inv_std = 1 / xp.sqrt(batch_var + eps)
            xhat = centred * inv_std
            state = {"mean": momentum * mean + (1 - momentum) * xp.reshape(mu, (channels,)),
                     "var": momentum * var + (1 - momentum) * xp.reshape(batch_var, (channels,))}
            state = freeze(state, copy=False)
        else:
            inv_std = 1 / xp.sqrt(xp.reshape(var, per_channel) + eps)
            xhat = (x - xp.reshape(mean, per_channel)) * inv_std
        g = xp.reshape(gamma, per_channel)
        y = g * xhat + xp.reshape(beta, per_channel)
        return y, BatchNormCache(xhat, g, inv_std, bool(train), state)

    def backward(cache, dy):
        xhat, g, inv_std, train, _ = cache
        xp = namespace(dy, xhat)
        axes = (0,) if xhat.ndim == 2 else (0, 2, 3)
        dgamma = xp.sum(dy * xhat, axis=axes)
        dbeta = xp.sum(dy, axis=axes)
        dxhat = dy * g
        if train:
            m = math.prod(xhat.shape[a] for a in axes)
            dx = (inv_std / m) * (m * dxhat - xp.sum(dxhat, axis=axes, keepdims=True)
                                  - xhat * xp.sum(dxhat * xhat, axis=axes, keepdims=True))
        else:
            dx = dxhat * inv_std
        return dx, {"gamma": dgamma, "beta": dbeta}

    def check(params, x, *, train=None, state=None):
        gamma = _per_channel(name, params, "params", ("gamma", "beta"))
        check_input(name, x, min_rank=2)
        channels = gamma.shape[0]
        if x.ndim not in (2, 4) or x.shape[1] != channels:
            raise ShapeError(f"{name}: expected x of shape (batch, {channels}) or (batch, "
                             f"{channels}, height, width), got {tuple(x.shape)}")
        # numpy's mean of integers is float64, whatever gamma's dtype
        check_same_float(name, x, gamma, made=np.result_type(
            x.dtype if np.dtype(x.dtype).kind == "f" else np.float64, gamma.dtype))
        if check_train(name, train) and x.shape[0] == 0:
            raise ShapeError(f"{name}: train=True needs at least one sample to take batch "
                             f"statistics from, got x of shape {tuple(x.shape)}")
        if state is None:
            raise ArgumentError(f"{name}: needs state=...; start from "
                                f"layers.init_state(layer, in_shape) and pass on cache.state")
        _per_channel(name, state, "state", ("mean", "var"), channels)
        dtypes = [tree[k].dtype for tree, k in ((params, "gamma"), (params, "beta"),
                                                 (state, "mean"), (state, "var"))]
        if len(set(dtypes)) > 1:  # else y and the new state come out in the widest of them
            raise ArrayTypeError(f"{name}: params gamma, beta and state mean, var must share "
                                 f"one float dtype, got {', '.join(map(str, dtypes))}; take "
                                 f"the state from layers.init_state(layer, in_shape)")
        return ArraySpec(tuple(x.shape), np.result_type(x.dtype, gamma.dtype))

    def check_dy(cache, dy):
        check_cache(name, cache, BatchNormCache)
        check_grad(name, dy, cache.xhat.shape, cache.xhat.dtype)

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy,
                         takes=("state", "train"), initial_state=initial_state)


def _per_channel(name: str, tree: Any, what: str, keys: tuple[str, str],
                 channels: int | None = None) -> Any:
    """The first of the two (C,) arrays of a params or state dict, checked with the second."""
    a, b = check_two_arrays(name, tree, what, dict.fromkeys(keys, "(C,)"))
    c = a.shape[0] if channels is None and a.ndim == 1 else channels
    if a.shape != (c,) or b.shape != (c,):
        raise ShapeError(f"{name}: expected {what} '{keys[0]}' and '{keys[1]}' of shape "
                         f"({c if c is not None else 'C'},), got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    return a
