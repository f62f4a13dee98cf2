"""2-D convolution on NCHW arrays, as one matrix product over im2col patches."""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from funcnet import init as initializers
from funcnet._xp import namespace
from funcnet.errors import (
    ArrayTypeError,
    ShapeError,
    StructureError,
    describe,
    is_array,
    require_positive_int,
)
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_cache,
    check_grad,
    check_in_shape,
    check_key,
    check_rank,
    check_same_float,
    checked_layer,
)
from funcnet.layers._im2col import (
    fold,
    from_columns,
    out_hw,
    output_size,
    pair,
    to_columns,
    windows,
)
from funcnet.random import split
from funcnet.tree import freeze

__all__ = ["conv2d", "Conv2dCache"]

NCHW = "(batch, channels, height, width)"


class Conv2dCache(NamedTuple):
    """What conv2d's backward needs: the patches, the weights as a matrix, the input shape.

    ``cols`` is (N * OH * OW, C * kh * kw), ``W`` is (C * kh * kw, out), ``x_shape`` (N, C, H, W).
    """

    cols: Any
    W: Any
    x_shape: tuple[int, int, int, int]


def _spell(value: tuple[int, int]) -> str:
    return str(value[0]) if value[0] == value[1] else str(value)


def conv2d(
    out_channels: int,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    *,
    w_init: initializers.Initializer = initializers.he,
    b_init: initializers.Initializer = initializers.zeros,
    dtype: Any = np.float64,
) -> Layer:
    """A 2-D convolution (cross-correlation, as in every deep-learning library) on NCHW input.

    ``in_shape`` is (C, H, W) and ``out_shape`` is (out_channels, OH, OW) with
    ``OH = (H + 2 padding - kh) / stride + 1`` (likewise OW), which must be a
    whole number. Params ``{"W": (C, kh, kw, out_channels), "b": (out_channels,)}``:
    the output channels come LAST, so ``init.fan_in(W.shape) = C * kh * kw``, the
    inputs feeding one output, and He/Xavier scale correctly (the textbook
    orders W as (out, C, kh, kw) instead).

    Forward: zero-pad x, gather its windows into ``cols`` (N * OH * OW, C * kh * kw)
    (im2col) and compute ``cols @ W.reshape(C * kh * kw, out) + b``.
    Backward: ``dW = cols.T @ dy``, ``db = sum(dy)`` over batch and pixels, and
    ``dx`` = col2im of ``dy @ W.T`` (each patch gradient added back where it came
    from). ``backward(cache, dy, need_dx=False)`` skips ``dx``.

    Args:
      out_channels: number of output channels.
      kernel_size, stride: a positive int or a (height, width) pair.
      padding: zeros added on each side, a non-negative int or a pair.
      w_init, b_init: initializers ``(key, shape, dtype) -> array``; He by default.
      dtype: dtype of the parameters (float64 by default).

    Raises:
      ArgumentError: a bad size, stride or padding.
      ShapeError: x not rank 4, the wrong channel count, a kernel larger than the
        padded input, or an output size that is not a whole number.

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
    name = f"conv2d({out_channels}, {_spell(kernel)}" + (
        f", stride={_spell(stride)}" if stride != (1, 1) else "") + (
        f", padding={_spell(padding)}" if padding != (0, 0) else "") + ")"

    def init(key, in_shape):
        check_key(f"{name}.init", key)
        channels, height, width = check_in_shape(f"{name}.init", in_shape, rank=3,
                                                 layout="(channels, height, width)")
        oh, ow = output_size(f"{name}.init", (height, width), kernel, stride, padding)
        k_w, k_b = split(key)
        shape_w = (channels, *kernel, out_channels)
        W = np.asarray(w_init(k_w, shape_w, dtype))
        b = np.asarray(b_init(k_b, (out_channels,), dtype))
        if W.shape != shape_w or b.shape != (out_channels,):
            raise ShapeError(f"{name}.init: initializers returned W {W.shape} and b {b.shape}, "
                             f"expected {shape_w} and {(out_channels,)}")
        params = {"W": W.astype(dtype, copy=False), "b": b.astype(dtype, copy=False)}
        return freeze(params, copy=False), (out_channels, oh, ow)

    def forward(params, x):
        W, b = params["W"], params["b"]
        n, _, height, width = x.shape
        oh, ow = out_hw((height, width), kernel, stride, padding)
        xp = namespace(x, W)
        cols = to_columns(windows(x, kernel, stride, padding, (oh, ow)))
        Wm = xp.reshape(W, (math.prod(W.shape[:3]), out_channels))
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
            dcols = xp.dot(dy_rows, Wm.T)
            dwin = from_columns(dcols, (n, channels, kernel[0] * kernel[1], oh, ow))
            dx = fold(dwin, (height, width), kernel, stride, padding)
        return dx, {"W": dW, "b": db}

    def check(params, x):
        W, _ = _unpack(name, params, kernel, out_channels)
        check_rank(name, x, 4, NCHW)
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
        n, _, height, width = cache.x_shape
        oh, ow = out_hw((height, width), kernel, stride, padding)
        check_grad(name, dy, (n, out_channels, oh, ow))

    return checked_layer(name, init, forward, backward, check=check, check_dy=check_dy,
                         skips_dx=True)


def _unpack(name: str, params: Any, kernel: tuple[int, int], out: int) -> tuple[Any, Any]:
    layout = f"{{'W': (C, {kernel[0]}, {kernel[1]}, {out}), 'b': ({out},)}}"
    if not (isinstance(params, dict) and set(params) == {"W", "b"}):
        raise StructureError(
            f"{name}: expected params {layout}, got {describe(params)}"
            + (f" with keys {sorted(params)}" if isinstance(params, dict) else ""))
    W, b = params["W"], params["b"]
    if not (is_array(W) and is_array(b)):
        raise ArrayTypeError(f"{name}: params 'W' and 'b' must be arrays, got "
                             f"{describe(W)} and {describe(b)}")
    if W.ndim != 4 or tuple(W.shape[1:]) != (*kernel, out) or tuple(b.shape) != (out,):
        raise ShapeError(f"{name}: expected params {layout}, got W {tuple(W.shape)} and "
                         f"b {tuple(b.shape)}")
    return W, b
