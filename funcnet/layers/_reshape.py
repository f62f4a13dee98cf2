"""``flatten``: (batch, *in_shape) -> (batch, prod(in_shape)), the bridge from conv to dense."""

from __future__ import annotations

import math
from typing import NamedTuple

from funcnet._xp import namespace
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
        shape = check_in_shape(f"{name}.init", in_shape)
        return (), (math.prod(shape),)

    def forward(params, x):
        y = namespace(x).reshape(x, (x.shape[0], math.prod(x.shape[1:])))
        return y, FlattenCache(tuple(x.shape))

    def backward(cache, dy):
        return namespace(dy).reshape(dy, cache.in_shape), ()

    def check(params, x):
        check_no_params(name, params)
        check_input(name, x, min_rank=1)
        return ArraySpec((x.shape[0], math.prod(x.shape[1:])), x.dtype)

    def check_dy(cache, dy):
        check_cache(name, cache, FlattenCache)
        shape = cache.in_shape
        check_grad(name, dy, (shape[0], math.prod(shape[1:])))

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy)
