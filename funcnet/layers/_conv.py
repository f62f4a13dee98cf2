"""2-D convolution on NCHW arrays, as one matrix product over im2col patches."""

from __future__ import annotations

import math
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
    check_rank,
    check_same_float,
    check_two_arrays,
    checked_layer,
    init_weights,
)
from funcnet.layers._im2col import fold, out_hw, output_size, pair, spell, windows

__all__ = ["conv2d", "Conv2dCache"]

class Conv2dCache(NamedTuple):
    """The patches ``cols`` (N * OH * OW, C * kh * kw), the weights as a matrix ``W``
    (C * kh * kw, out) and ``x_shape`` (N, C, H, W)."""

    cols: Any
    W: Any
    x_shape: tuple[int, int, int, int]


def conv2d(out_channels: int, kernel_size: int | tuple[int, int],
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, *,
           w_init: initializers.Initializer = initializers.he,
           b_init: initializers.Initializer = initializers.zeros, dtype: Any = np.float64) -> Layer:
    """A 2-D convolution (cross-correlation, as in every deep-learning library) on NCHW input.

    ``in_shape`` (C, H, W) gives ``out_shape`` (out_channels, OH, OW) with
    ``OH = (H + 2 padding - kh) / stride + 1`` (likewise OW), a whole number.
    Params ``{"W": (C, kh, kw, out_channels), "b": (out_channels,)}``: the output
    channels come LAST, so ``init.fan_in(W.shape) = C * kh * kw`` and He/Xavier
    scale correctly (the textbook orders W as (out, C, kh, kw)).

    Forward: gather the windows of the zero-padded x into ``cols`` (N * OH * OW,
    C * kh * kw) (im2col), then ``y = cols @ W.reshape(C * kh * kw, out) + b``.
    Backward: ``dW = cols.T @ dy``, ``db = sum(dy)`` over batch and pixels, and
    ``dx`` = col2im of ``dy @ W.T`` (each patch gradient added back where it came
    from).

    Args:
      out_channels: number of output channels.
      kernel_size, stride: a positive int or a (height, width) pair.
      padding: zeros added on each side, a non-negative int or a pair.
      w_init, b_init: initializers ``(key, shape, dtype) -> array``; He by default.
      dtype: dtype of the parameters (float64 by default).

    Raises:
      ShapeError: x not rank 4 or of the wrong channel count, a kernel larger than
        the padded input, or an output size that is not a whole number.

    >>> from funcnet.random import key
    >>> layer = conv2d(4, 3, padding=1)
    >>> params, out_shape = layer.init(key(0), (2, 5, 5))
    >>> out_shape, params["W"].shape
    ((4, 5, 5), (2, 3, 3, 4))
    >>> y, cache = layer.forward(params, np.ones((1, 2, 5, 5)))
    >>> dx, grads = layer.backward(cache, np.ones_like(y))
    >>> dx.shape, grads["b"].tolist()
    ((1, 2, 5, 5), [25.0, 25.0, 25.0, 25.0])
    """
    out_channels = require_positive_int("conv2d", "out_channels", out_channels)
    kernel = pair("conv2d", "kernel_size", kernel_size, minimum=1)
    stride = pair("conv2d", "stride", stride, minimum=1)
    padding = pair("conv2d", "padding", padding, minimum=0)
    dtype = np.dtype(dtype)
    name = f"conv2d({out_channels}, {spell(kernel)}" + (
        f", stride={spell(stride)}" if stride != (1, 1) else "") + (
        f", padding={spell(padding)}" if padding != (0, 0) else "") + ")"

    def init(key, in_shape):
        channels, height, width = check_in_shape(f"{name}.init", in_shape, rank=3,
                                                 layout="(channels, height, width)")
        oh, ow = output_size(f"{name}.init", (height, width), kernel, stride, padding)
        params = init_weights(f"{name}.init", key, w_init, b_init,
                              (channels, *kernel, out_channels), dtype)
        return params, (out_channels, oh, ow)

    def forward(params, x):
        W, b = params["W"], params["b"]
        n, _, height, width = x.shape
        oh, ow = out_hw((height, width), kernel, stride, padding)
        xp = namespace(x, W)
        Wm = xp.reshape(W, (math.prod(W.shape[:3]), out_channels))
        win = windows(x, kernel, stride, padding, (oh, ow))  # (N, C, kh * kw, OH, OW)
        cols = xp.reshape(xp.transpose(win, (0, 3, 4, 1, 2)), (n * oh * ow, Wm.shape[0]))
        y = xp.dot(cols, Wm) + b  # (N * OH * OW, out)
        y = xp.transpose(xp.reshape(y, (n, oh, ow, out_channels)), (0, 3, 1, 2))
        return y, Conv2dCache(cols, Wm, tuple(x.shape))

    def backward(cache, dy, *, need_dx=True):
        cols, Wm, x_shape = cache
        n, channels, height, width = x_shape
        oh, ow = out_hw((height, width), kernel, stride, padding)
        xp = namespace(dy, Wm)
        dy_rows = xp.reshape(xp.transpose(dy, (0, 2, 3, 1)), (n * oh * ow, out_channels))
        dW = xp.reshape(xp.dot(cols.T, dy_rows), (channels, *kernel, out_channels))
        db = xp.sum(dy_rows, axis=0)
        dx = None
        if need_dx:
            dcols = xp.reshape(xp.dot(dy_rows, Wm.T), (n, oh, ow, channels, kernel[0] * kernel[1]))
            dwin = xp.transpose(dcols, (0, 3, 4, 1, 2))  # (N, C, kh * kw, OH, OW)
            dx = fold(dwin, (height, width), kernel, stride, padding)
        return dx, {"W": dW, "b": db}

    def check(params, x):
        W_spelt, b_spelt = f"(C, {kernel[0]}, {kernel[1]}, {out_channels})", f"({out_channels},)"
        W, b = check_two_arrays(name, params, "params", {"W": W_spelt, "b": b_spelt})
        if W.ndim != 4 or W.shape[1:] != (*kernel, out_channels) or b.shape != (out_channels,):
            raise ShapeError(f"{name}: expected params {{'W': {W_spelt}, 'b': {b_spelt}}}, got W "
                             f"{tuple(W.shape)} and b {tuple(b.shape)}")
        if np.dtype(W.dtype).kind != "f" or b.dtype != W.dtype:
            raise ArrayTypeError(f"{name}: params W and b must be float arrays of one dtype "
                                 f"(build the layer with dtype=...), got {W.dtype} and "
                                 f"{b.dtype}")
        check_rank(name, x, 4, "(batch, channels, height, width)")
        n, channels, height, width = x.shape
        if channels != W.shape[0]:
            raise ShapeError(f"{name}: expected {W.shape[0]} input channels (x of shape "
                             f"(batch, {W.shape[0]}, height, width)), got {channels} "
                             f"(x has shape {tuple(x.shape)})")
        check_same_float(name, x, W)
        oh, ow = output_size(name, (height, width), kernel, stride, padding)
        return ArraySpec((n, out_channels, oh, ow), np.result_type(x.dtype, W.dtype))

    def check_dy(cache, dy):
        check_cache(name, cache, Conv2dCache)
        oh, ow = out_hw(cache.x_shape[2:], kernel, stride, padding)
        check_grad(name, dy, (cache.x_shape[0], out_channels, oh, ow), cache.W.dtype)

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy,
                         skips_dx=True)

