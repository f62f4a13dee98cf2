"""``flatten``: (batch, *in_shape) -> (batch, prod(in_shape)), the bridge from conv to dense."""

from __future__ import annotations

import math
from typing import NamedTuple

from funcnet._xp import namespace
from funcnet.layers._base import (
    Layer,
    check_grad,
    check_in_shape,
    check_input,
    check_key,
    check_no_params,
    make_layer,
)

__all__ = ["flatten", "FlattenCache"]


class FlattenCache(NamedTuple):
    """The input shape, to restore in backward."""

    in_shape: tuple[int, ...]


def flatten() -> Layer:
    """Merge every axis but the batch axis; backward reshapes ``dy`` back.

    >>> import numpy as np
    >>> from funcnet.random import key
    >>> layer = flatten()
    >>> layer.init(key(0), (3, 4))[1]
    (12,)
    >>> y, cache = layer.forward((), np.zeros((2, 3, 4)))
    >>> y.shape, layer.backward(cache, y)[0].shape
    ((2, 12), (2, 3, 4))
    """
    name = "flatten"

    def init(key, in_shape):
        check_key(f"{name}.init", key)
        shape = check_in_shape(f"{name}.init", in_shape)
        return (), (math.prod(shape),)

    def forward(params, x):
        check_no_params(name, params)
        check_input(name, x, min_rank=1)
        xp = namespace(x)
        y = xp.reshape(x, (x.shape[0], math.prod(x.shape[1:])))
        return y, FlattenCache(tuple(x.shape))

    def backward(cache, dy):
        shape = cache.in_shape
        check_grad(name, dy, (shape[0], math.prod(shape[1:])))
        return namespace(dy).reshape(dy, shape), ()

    return make_layer(name, init, forward, backward)
