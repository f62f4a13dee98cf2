"""2-D max pooling on NCHW arrays, over the same windows as conv2d."""

from __future__ import annotations

from typing import Any, NamedTuple

from funcnet._xp import namespace
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_cache,
    check_grad,
    check_in_shape,
    check_no_params,
    check_rank,
    checked_layer,
)
from funcnet.layers._im2col import fold, out_hw, output_size, pair, spell, windows

__all__ = ["max_pool2d", "MaxPoolCache"]


class MaxPoolCache(NamedTuple):
    """``argmax`` (N, C, OH, OW): where each window's maximum sat, an index in 0 .. kh * kw - 1
    in row-major window order; ``x_shape`` (N, C, H, W)."""

    argmax: Any
    x_shape: tuple[int, int, int, int]


def max_pool2d(size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
               ) -> Layer:
    """The maximum of each ``size`` window, channel by channel; ``params == ()``.

    ``in_shape`` (C, H, W) gives ``out_shape`` (C, OH, OW) with ``OH = (H - kh) /
    stride + 1``, which must be a whole number; ``stride`` defaults to ``size``
    (windows that tile the input). Backward sends each output's gradient to the
    position of its window's maximum, summed where windows overlap. On a tie it
    goes to the FIRST maximum in row-major window order (a valid one-sided
    slope; ``jax.grad`` instead splits it among the tied entries).

    Raises:
      ShapeError: x not rank 4, a window larger than the input, or an output size
        that is not a whole number.

    >>> import numpy as np
    >>> layer = max_pool2d(2)
    >>> x = np.array([[[[1.0, 5.0, 2.0, 0.0], [3.0, 4.0, 8.0, 8.0]]]])
    >>> y, cache = layer.forward((), x)
    >>> y
    array([[[[5., 8.]]]])
    >>> layer.backward(cache, np.ones_like(y))[0]
    array([[[[0., 1., 0., 0.],
             [0., 0., 1., 0.]]]])
    """
    kernel = pair("max_pool2d", "size", size, minimum=1)
    stride = kernel if stride is None else pair("max_pool2d", "stride", stride, minimum=1)
    strided = f", stride={spell(stride)}" if stride != kernel else ""
    name = f"max_pool2d({spell(kernel)}{strided})"
    no_padding = (0, 0)

    def init(key, in_shape):
        channels, height, width = check_in_shape(f"{name}.init", in_shape, rank=3,
                                                 layout="(channels, height, width)")
        oh, ow = output_size(f"{name}.init", (height, width), kernel, stride, no_padding,
                             "window")
        return (), (channels, oh, ow)

    def forward(params, x):
        xp = namespace(x)
        oh, ow = out_hw(tuple(x.shape[2:]), kernel, stride, no_padding)
        win = windows(x, kernel, stride, no_padding, (oh, ow))  # (N, C, K, OH, OW)
        return xp.max(win, axis=2), MaxPoolCache(xp.argmax(win, axis=2), tuple(x.shape))

    def backward(cache, dy):
        argmax, x_shape = cache
        xp = namespace(dy, argmax)
        positions = xp.reshape(xp.arange(kernel[0] * kernel[1]), (1, 1, -1, 1, 1))
        hit = positions == xp.expand_dims(argmax, 2)  # (N, C, K, OH, OW), one True per window
        dwin = xp.where(hit, xp.expand_dims(dy, 2), 0)
        return fold(dwin, tuple(x_shape[2:]), kernel, stride, no_padding), ()

    def check(params, x):
        check_no_params(name, params)
        check_rank(name, x, 4, "(batch, channels, height, width)")
        oh, ow = output_size(name, tuple(x.shape[2:]), kernel, stride, no_padding, "window")
        return ArraySpec((*x.shape[:2], oh, ow), x.dtype)

    def check_dy(cache, dy):
        check_cache(name, cache, MaxPoolCache)
        check_grad(name, dy, tuple(cache.argmax.shape))

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy)
