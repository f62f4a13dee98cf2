"""conv2d: equal to a naive loop convolution written here, forward and backward, for every
geometry; im2col (``windows``) and col2im (``fold``) adjoint. Every error message has a test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_bitwise_equal, snapshot

from funcnet import init, random
from funcnet import layers as L
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, StructureError
from funcnet.layers._im2col import fold, windows


def _padded(x, padding):
    """x inside a frame of zeros, ``padding`` (rows, columns) wide on each side."""
    (ph, pw), (n, c, h, w) = padding, x.shape
    xp = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + w] = x
    return xp


def _naive_conv(x, W, b, stride, padding):
    """The convolution by its definition: one output pixel at a time."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    _, kh, kw, out = W.shape
    xp = _padded(x, padding)
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    y = np.zeros((n, out, oh, ow))
    for s in range(n):
        for o in range(out):
            for i in range(oh):
                for j in range(ow):
                    patch = xp[s, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[s, o, i, j] = np.sum(patch * W[:, :, :, o]) + b[o]
    return y


def _naive_conv_backward(x, W, dy, stride, padding):
    """dx and dW by the chain rule, one output pixel at a time (the scatter col2im does)."""
    (sh, sw), (ph, pw) = stride, padding
    n, c, h, w = x.shape
    _, kh, kw, out = W.shape
    xp = _padded(x, padding)
    dxp, dW = np.zeros_like(xp), np.zeros_like(W)
    for s in range(n):
        for o in range(out):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    dxp[s, :, rows, cols] += W[:, :, :, o] * dy[s, o, i, j]
                    dW[:, :, :, o] += xp[s, :, rows, cols] * dy[s, o, i, j]
    return dxp[:, :, ph:ph + h, pw:pw + w], dW


GEOMETRIES = [  # in_shape, kernel_size, stride, padding, expected out (H', W')
    ((1, 5, 5), 3, 1, 0, (3, 3)),
    ((2, 5, 5), 3, 1, 1, (5, 5)),
    ((3, 7, 7), 3, 2, 1, (4, 4)),
    ((2, 6, 5), (3, 1), (1, 2), (1, 0), (6, 3)),
    ((1, 4, 4), 2, 2, 0, (2, 2)),
    ((2, 3, 4), (1, 2), 1, (0, 1), (3, 5)),
]


@pytest.mark.parametrize("in_shape, kernel, stride, padding, out_hw", GEOMETRIES)
def test_conv2d_equals_a_naive_loop_convolution(in_shape, kernel, stride, padding, out_hw):
    layer = L.conv2d(3, kernel, stride, padding, b_init=init.normal(1.0))
    params, out_shape = layer.init(random.key(2), in_shape)
    assert out_shape == (3, *out_hw)
    pair = [(v, v) if isinstance(v, int) else v for v in (stride, padding)]
    x = np.random.default_rng(5).standard_normal((2, *in_shape))
    y, cache = layer.forward(params, x)
    assert y.shape == (2, *out_shape)
    np.testing.assert_allclose(y, _naive_conv(x, params["W"], params["b"], *pair), rtol=1e-12,
                               atol=1e-12)
    dy = np.random.default_rng(6).standard_normal(y.shape)
    dx, grads = layer.backward(cache, dy)
    dx_naive, dW_naive = _naive_conv_backward(x, params["W"], dy, *pair)
    np.testing.assert_allclose(dx, dx_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["W"], dW_naive, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads["b"], dy.sum(axis=(0, 2, 3)), rtol=1e-12)


def test_conv2d_weights_put_output_channels_last_so_he_sees_the_true_fan_in():
    params, _ = L.conv2d(3000, 3).init(random.key(3), (4, 3, 3))
    assert params["W"].shape == (4, 3, 3, 3000)
    assert init.fan_in(params["W"].shape) == 4 * 3 * 3
    assert abs(params["W"].std() - math.sqrt(2 / 36)) < 0.005
    np.testing.assert_array_equal(params["b"], np.zeros(3000))


def test_conv2d_backward_can_skip_the_input_gradient():
    layer = L.conv2d(2, 3, padding=1)
    params, _ = layer.init(random.key(4), (2, 4, 4))
    y, cache = layer.forward(params, np.random.default_rng(7).standard_normal((3, 2, 4, 4)))
    dy = np.ones_like(y)
    dx, grads = layer.backward(cache, dy)
    none, grads_none = layer.backward(cache, dy, need_dx=False)
    assert none is None and dx.shape == (3, 2, 4, 4) and layer.skips_dx
    assert_bitwise_equal(snapshot(grads), grads_none, "grads")


def test_windows_and_fold_are_adjoint():
    """<windows(x), g> == <x, fold(g)>: col2im is exactly the transpose of im2col."""
    rng = np.random.default_rng(8)
    for kernel, stride, padding, hw in [((3, 3), (1, 1), (1, 1), (5, 5)),
                                        ((2, 3), (2, 1), (0, 1), (6, 4)),
                                        ((3, 2), (2, 3), (1, 0), (7, 8))]:
        oh = (hw[0] + 2 * padding[0] - kernel[0]) // stride[0] + 1
        ow = (hw[1] + 2 * padding[1] - kernel[1]) // stride[1] + 1
        x = rng.standard_normal((2, 3, *hw))
        win = windows(x, kernel, stride, padding, (oh, ow))
        g = rng.standard_normal(win.shape)
        assert win.shape == (2, 3, kernel[0] * kernel[1], oh, ow)
        np.testing.assert_allclose((win * g).sum(), (x * fold(g, hw, kernel, stride,
                                                               padding)).sum(), rtol=1e-12)


@pytest.mark.parametrize("argument, value, message", [
    ("out_channels", 0, r"conv2d: out_channels must be a positive integer, got 0"),
    ("kernel_size", 0, r"conv2d: kernel_size must be a positive integer or a pair of them "
                       r"\(height, width\), got 0"),
    ("kernel_size", (3,), r"kernel_size must be a positive integer or a pair.*got \(3,\)"),
    ("kernel_size", "3", r"kernel_size must be a positive integer or a pair.*got '3'"),
    ("stride", (1, 0), r"conv2d: stride must be a positive integer or a pair.*got \(1, 0\)"),
    ("padding", -1, r"conv2d: padding must be a non-negative integer or a pair.*got -1"),
    ("padding", 1.0, r"conv2d: padding must be a non-negative integer.*got 1.0"),
])
def test_conv2d_argument_errors(argument, value, message):
    arguments = {"out_channels": 2, "kernel_size": 3, "stride": 1, "padding": 0, argument: value}
    with pytest.raises(ArgumentError, match=message):
        L.conv2d(**arguments)


def test_conv2d_shape_errors_name_the_layer_and_the_numbers():
    layer = L.conv2d(4, 3, stride=2)
    params, _ = layer.init(random.key(0), (2, 5, 5))
    who = r"conv2d\(4, 3, stride=2\)"
    with pytest.raises(ShapeError, match=who + r": expected x of rank 4 with shape \(batch, "
                                               r"channels, height, width\), got rank 3"):
        layer.forward(params, np.ones((2, 5, 5)))
    with pytest.raises(ShapeError, match=who + r": expected 2 input channels \(x of shape "
                                               r"\(batch, 2, height, width\)\), got 3"):
        layer.forward(params, np.ones((1, 3, 5, 5)))
    with pytest.raises(ShapeError, match=who + r": the output width \(6 \+ 2 \* 0 - 3\) / 2 \+ 1 "
                                               r"= 2.5 is not a whole number"):
        layer.forward(params, np.ones((1, 2, 5, 6)))
    with pytest.raises(ShapeError, match=who + r": the kernel height 3 is larger than the input "
                                               r"height 2"):
        layer.forward(params, np.ones((1, 2, 2, 5)))
    with pytest.raises(ShapeError, match=r"conv2d\(1, 5, padding=1\).init: the kernel width 5 is "
                                         r"larger than the padded input width 4 \(width 2 \+ 2 "
                                         r"\* padding 1\)"):
        L.conv2d(1, 5, padding=1).init(random.key(0), (1, 3, 2))
    with pytest.raises(ShapeError, match=who + r".init: the output height \(4 \+ 2 \* 0 - 3\)"):
        layer.init(random.key(0), (2, 4, 5))
    with pytest.raises(ShapeError, match=who + r".init: expected in_shape of rank 3 "
                                               r"\(channels, height, width\), got \(25,\)"):
        layer.init(random.key(0), (25,))
    with pytest.raises(ArrayTypeError, match=who + r": x is float32 but the parameters are "
                                                   r"float64"):
        layer.forward(params, np.ones((1, 2, 5, 5), np.float32))
    _, cache = layer.forward(params, np.ones((1, 2, 5, 5)))
    with pytest.raises(ShapeError, match=who + r".backward: expected dy of shape "
                                               r"\(1, 4, 2, 2\)"):
        layer.backward(cache, np.ones((1, 4, 3, 3)))


def test_conv2d_params_errors():
    layer = L.conv2d(4, (3, 2))
    params, _ = layer.init(random.key(0), (2, 5, 5))
    who = r"conv2d\(4, \(3, 2\)\)"
    x = np.ones((1, 2, 5, 5))
    with pytest.raises(StructureError, match=who + r": expected params \{'W': \(C, 3, 2, 4\), "
                                                   r"'b': \(4,\)\}, got a dict with keys \['W'\]"):
        layer.forward({"W": params["W"]}, x)
    with pytest.raises(ShapeError, match=who + r": expected params .*got W \(2, 2, 3, 4\)"):
        layer.forward({"W": np.ones((2, 2, 3, 4)), "b": params["b"]}, x)
    with pytest.raises(ArrayTypeError, match=who + r": params 'W' and 'b' must be arrays"):
        layer.forward({"W": params["W"], "b": 0.0}, x)
