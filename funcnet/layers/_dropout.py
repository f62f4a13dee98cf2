"""Inverted dropout: a keyed layer with a train/eval switch."""

from __future__ import annotations

from typing import Any, NamedTuple

from funcnet.errors import ArgumentError, require_probability
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_cache,
    check_grad,
    check_in_shape,
    check_input,
    check_key,
    check_no_params,
    check_train,
    checked_layer,
)
from funcnet.random import bernoulli

__all__ = ["dropout", "DropoutCache"]


class DropoutCache(NamedTuple):
    """The boolean keep-mask (``None`` in eval mode), the scale of kept units, the shape."""

    mask: Any
    scale: float
    shape: tuple[int, ...]


def dropout(drop_prob: float) -> Layer:
    """Drop each unit with probability ``drop_prob`` while training; the identity in eval.

    Inverted dropout: in training each unit is kept with probability
    ``1 - drop_prob`` and a kept unit is scaled by ``1 / (1 - drop_prob)``, so
    ``E[y] = x`` and evaluation needs no rescaling. The mask is drawn with
    ``funcnet.random.bernoulli`` from ``key``; one key gives one mask.

    ``forward(params, x, *, key=None, train=None)`` with ``params == ()`` and
    ``x`` of shape (batch, ...); ``train`` is required and ``train=True`` needs a
    key. Backward: ``dx = dy * mask / (1 - drop_prob)`` (``dy`` in eval).

    Args:
      drop_prob: the probability of DROPPING a unit, ``0 <= drop_prob < 1``.

    >>> import numpy as np
    >>> from funcnet.random import key
    >>> layer = dropout(0.5)
    >>> y, cache = layer.forward((), np.ones((1, 6)), key=key(0), train=True)
    >>> sorted(set(y.ravel().tolist())) in ([0.0, 2.0], [0.0], [2.0])
    True
    >>> bool((layer.forward((), np.ones((1, 6)), train=False)[0] == 1).all())
    True
    """
    drop_prob = require_probability("dropout", "drop_prob", drop_prob, open_right=True)
    keep_prob = 1.0 - drop_prob
    scale = 1.0 / keep_prob
    name = f"dropout(drop_prob={drop_prob})"

    def init(key, in_shape):
        return (), check_in_shape(f"{name}.init", in_shape)

    def forward(params, x, *, key=None, train=None):
        shape = tuple(x.shape)
        if not train:
            return x, DropoutCache(None, scale, shape)
        mask = bernoulli(key, keep_prob, shape)
        return x * (mask.astype(x.dtype) * scale), DropoutCache(mask, scale, shape)

    def backward(cache, dy):
        if cache.mask is None:
            return dy, ()
        return dy * (cache.mask.astype(dy.dtype) * cache.scale), ()

    def check(params, x, *, key=None, train=None):
        check_no_params(name, params)
        check_input(name, x, min_rank=1)
        if check_train(name, train):
            if key is None:
                raise ArgumentError(f"{name}: train=True needs a key to draw the mask; pass "
                                    "key=funcnet.random.key(seed) (split a fresh one each step)")
            check_key(name, key)
        return ArraySpec(tuple(x.shape), x.dtype)

    def check_dy(cache, dy):
        check_cache(name, cache, DropoutCache)
        check_grad(name, dy, cache.shape)

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy,
                         takes=("key", "train"))
