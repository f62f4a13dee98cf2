"""The laws of the keyed, stateful and convolutional layers, and the checker at their kinks.

dropout: eval is the identity, training drops about ``drop_prob`` and keeps
E[y] = x, one key gives one mask. batch_norm: per-feature statistics, running
statistics by the documented formula, state returned and never stored, serial
threading it. conv2d and max_pool2d: equal to naive loops written here. The
gradient checker explains (rather than fails on) relu at 0, a tie in a max and
a one-sample batch norm before a relu, and still fails a wrong backward there.
Every error message has a test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_bitwise_equal, away_from_zero, snapshot

from funcnet import init, optim, random, tree
from funcnet import layers as L
from funcnet.check import check_layer
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, StructureError
from funcnet.layers._im2col import fold, windows

# --- dropout ---------------------------------------------------------------------------------


def test_dropout_eval_is_the_identity_forward_and_backward():
    x = np.random.default_rng(0).standard_normal((3, 4))
    layer = L.dropout(0.7)
    y, cache = layer.forward((), x, train=False)
    dx, grads = layer.backward(cache, 2 * x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, 2 * x)
    assert grads == ()
    assert L.extras(layer) == {"key", "train"}


@pytest.mark.parametrize("drop_prob", [0.1, 0.5, 0.8])
def test_dropout_drops_about_drop_prob_and_keeps_the_mean(drop_prob):
    n = 200_000
    column = np.array([1.0, -2.0, 0.5, 3.0])
    x = np.broadcast_to(column, (n // 4, 4))
    y, _ = L.dropout(drop_prob).forward((), x, key=random.key(11), train=True)
    dropped = float((y == 0).mean())
    assert abs(dropped - drop_prob) < 5 * math.sqrt(drop_prob * (1 - drop_prob) / n)
    kept = y[y != 0] / np.broadcast_to(column, y.shape)[y != 0]
    np.testing.assert_allclose(kept, 1 / (1 - drop_prob), rtol=1e-15)  # inverted scaling
    # E[y] = x: the column means agree within 5 standard errors of y's spread p / (1 - p)
    spread = np.abs(column) * math.sqrt(drop_prob / (1 - drop_prob) / (n // 4))
    assert np.all(np.abs(y.mean(axis=0) - column) < 5 * spread)


def test_dropout_one_key_one_mask_and_backward_uses_it():
    x = away_from_zero(np.random.default_rng(1), (50, 8))
    layer = L.dropout(0.5)
    y1, cache = layer.forward((), x, key=random.key(3), train=True)
    y2, _ = layer.forward((), x, key=random.key(3), train=True)
    y3, _ = layer.forward((), x, key=random.key(4), train=True)
    assert_bitwise_equal(snapshot(y1), y2, "y")
    assert not np.array_equal(y1 == 0, y3 == 0)
    dy = np.random.default_rng(2).standard_normal(x.shape)
    dx, _ = layer.backward(cache, dy)
    np.testing.assert_array_equal(dx, np.where(y1 != 0, 2 * dy, 0.0))


def test_dropout_with_drop_prob_zero_keeps_everything():
    x = np.arange(6.0).reshape(2, 3)
    y, _ = L.dropout(0.0).forward((), x, key=random.key(0), train=True)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.5", True, None])
def test_dropout_rejects_a_drop_prob_outside_0_1(bad):
    with pytest.raises(ArgumentError, match=r"dropout: drop_prob must be a number in \[0, 1\)"):
        L.dropout(bad)


def test_dropout_errors_name_the_layer_and_the_fix():
    layer, x = L.dropout(0.5), np.ones((2, 3))
    with pytest.raises(ArgumentError, match=r"dropout\(drop_prob=0.5\): pass train=True "
                                            r"\(training\) or train=False.*got None"):
        layer.forward((), x, key=random.key(0))
    with pytest.raises(ArgumentError, match=r"pass train=True.*got a str \('yes'\)"):
        layer.forward((), x, train="yes")
    with pytest.raises(ArgumentError, match=r"train=True needs a key to draw the mask"):
        layer.forward((), x, train=True)
    with pytest.raises(ArrayTypeError, match=r"dropout\(drop_prob=0.5\): expected a random key"):
        layer.forward((), x, key=7, train=True)
    with pytest.raises(StructureError, match=r"this layer has no parameters"):
        layer.forward({"W": x}, x, train=False)
    _, cache = layer.forward((), x, train=False)
    with pytest.raises(ShapeError, match=r"dropout\(drop_prob=0.5\).backward: expected dy of "
                                         r"shape \(2, 3\)"):
        layer.backward(cache, np.ones((3, 2)))


def test_serial_passes_train_and_splits_keys_among_dropouts():
    net = L.serial(L.dropout(0.5), L.dropout(0.5))
    x = np.ones((40, 10))
    y, cache = net.forward(((), ()), x, key=random.key(5), train=True)
    first, second = cache.caches[0].mask, cache.caches[1].mask
    assert not np.array_equal(first, second)  # each layer got its own key
    np.testing.assert_array_equal(y, np.where(first & second, 4.0, 0.0))
    with pytest.raises(ArgumentError, match=r"serial layer 0 \(dropout\(drop_prob=0.5\)\): "
                                            r"dropout\(drop_prob=0.5\): pass train=True"):
        net.forward(((), ()), x, key=random.key(5))


# --- batch_norm ------------------------------------------------------------------------------


def _bn(momentum=0.9, eps=1e-5, in_shape=(3,)):
    layer = L.batch_norm(momentum, eps)
    params, out_shape = layer.init(random.key(0), in_shape)
    assert out_shape == in_shape
    return layer, params, L.init_state(layer, in_shape)


def test_batch_norm_init_and_initial_state():
    layer, params, state = _bn(in_shape=(4, 2, 3))
    np.testing.assert_array_equal(params["gamma"], np.ones(4))
    np.testing.assert_array_equal(params["beta"], np.zeros(4))
    np.testing.assert_array_equal(state["mean"], np.zeros(4))
    np.testing.assert_array_equal(state["var"], np.ones(4))
    assert tree.is_frozen(state) and L.extras(layer) == {"train", "state"}


@pytest.mark.parametrize("shape, axes", [((64, 3), (0,)), ((8, 3, 4, 5), (0, 2, 3))])
def test_batch_norm_train_output_has_zero_mean_unit_variance_per_channel(shape, axes):
    x = 5 + 3 * np.random.default_rng(0).standard_normal(shape)
    layer, params, state = _bn(in_shape=shape[1:])
    y, _ = layer.forward(params, x, train=True, state=state)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.var(axis=axes), var / (var + 1e-5), rtol=1e-12)
    # gamma scales and beta shifts each channel
    shaped = {"gamma": np.array([1.0, 2.0, 0.5]), "beta": np.array([0.0, -1.0, 4.0])}
    y2, _ = layer.forward(shaped, x, train=True, state=state)
    np.testing.assert_allclose(y2.mean(axis=axes), shaped["beta"], atol=1e-12)
    np.testing.assert_allclose(y2.std(axis=axes), shaped["gamma"], rtol=1e-5)


@pytest.mark.parametrize("shape, axes", [((16, 3), (0,)), ((4, 3, 2, 5), (0, 2, 3))])
def test_batch_norm_running_statistics_follow_the_documented_formula(shape, axes):
    layer, params, state = _bn(momentum=0.8, in_shape=shape[1:])
    rng = np.random.default_rng(1)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(5):
        x = rng.uniform(-2, 5, shape)
        _, cache = layer.forward(params, x, train=True, state=state)
        state = cache.state
        mean = 0.8 * mean + 0.2 * x.mean(axis=axes)
        var = 0.8 * var + 0.2 * x.var(axis=axes)  # the biased batch variance (ddof=0)
        assert tree.is_frozen(state)
    np.testing.assert_allclose(state["mean"], mean, rtol=1e-13)
    np.testing.assert_allclose(state["var"], var, rtol=1e-13)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
def test_batch_norm_eval_uses_the_running_statistics(shape):
    layer, params, _ = _bn(eps=1e-3, in_shape=shape[1:])
    state = {"mean": np.array([1.0, -2.0, 0.5]), "var": np.array([4.0, 0.25, 1.0])}
    params = {"gamma": np.array([2.0, 1.0, -1.0]), "beta": np.array([0.0, 0.5, 1.0])}
    x = np.random.default_rng(2).standard_normal(shape)
    y, cache = layer.forward(params, x, train=False, state=state)
    per = (1, 3) + (1,) * (len(shape) - 2)
    expected = (params["gamma"].reshape(per) * (x - state["mean"].reshape(per))
                / np.sqrt(state["var"].reshape(per) + 1e-3) + params["beta"].reshape(per))
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    assert cache.state is state
    # a sample's output does not depend on the rest of the batch in eval mode
    np.testing.assert_allclose(layer.forward(params, x[:1], train=False, state=state)[0], y[:1],
                               rtol=1e-15)
    dy = np.ones(shape)
    dx, _ = layer.backward(cache, dy)  # eval backward is the affine one
    np.testing.assert_allclose(dx, np.broadcast_to(
        params["gamma"].reshape(per) / np.sqrt(state["var"].reshape(per) + 1e-3), shape))


def test_batch_norm_state_is_returned_not_stored():
    layer, params, state = _bn()
    x = np.random.default_rng(3).standard_normal((6, 3))
    before = snapshot(state)
    y1, c1 = layer.forward(params, x, train=True, state=state)
    y2, c2 = layer.forward(params, x, train=True, state=state)
    assert_bitwise_equal(snapshot(y1), y2, "y")
    assert_bitwise_equal(snapshot(c1.state), c2.state, "new state")
    assert_bitwise_equal(before, state, "state")
    # a different state in gives a different state out: nothing is remembered in between
    _, c3 = layer.forward(params, x, train=True, state=c1.state)
    assert not np.array_equal(c3.state["mean"], c1.state["mean"])


def test_batch_norm_with_a_batch_of_one_outputs_beta_in_training():
    layer, params, state = _bn()
    params = {"gamma": np.array([2.0, 3.0, 4.0]), "beta": np.array([0.5, -1.0, 0.0])}
    y, cache = layer.forward(params, np.array([[7.0, -3.0, 0.2]]), train=True, state=state)
    np.testing.assert_array_equal(y, params["beta"][None])
    dx, grads = layer.backward(cache, np.ones((1, 3)))
    np.testing.assert_array_equal(dx, np.zeros((1, 3)))
    np.testing.assert_array_equal(grads["gamma"], np.zeros(3))
    np.testing.assert_array_equal(grads["beta"], np.ones(3))


def test_serial_threads_the_state_of_two_batch_norms():
    net = L.serial(L.dense(4), L.batch_norm(momentum=0.5), L.relu(), L.dense(2),
                   L.batch_norm(momentum=0.5))
    params, _ = net.init(random.key(1), (5,))
    state = L.init_state(net, (5,))
    assert len(state) == 5 and state[0] == () and state[2] == () and state[3] == ()
    assert state[1]["mean"].shape == (4,) and state[4]["var"].shape == (2,)
    np.testing.assert_array_equal(state[1]["var"], np.ones(4))
    x = np.random.default_rng(4).standard_normal((10, 5))
    y, cache = net.forward(params, x, train=True, state=state)
    new = cache.state
    tree.assert_same_shapes(state, new, who="serial", expected_name="state",
                            actual_name="new state")
    h = x @ params[0]["W"] + params[0]["b"]  # the first batch norm's input, by hand
    np.testing.assert_allclose(new[1]["mean"], 0.5 * h.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(new[1]["var"], 0.5 + 0.5 * h.var(axis=0), rtol=1e-13)
    z = np.maximum((h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + 1e-5), 0)
    h2 = z @ params[3]["W"] + params[3]["b"]  # the second batch norm's input, by hand
    np.testing.assert_allclose(new[4]["mean"], 0.5 * h2.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new[4]["var"], 0.5 + 0.5 * h2.var(axis=0), rtol=1e-12)
    y_eval, cache_eval = net.forward(params, x, train=False, state=new)
    assert cache_eval.state[1] is new[1] and cache_eval.state[4] is new[4]
    with pytest.raises(StructureError, match=r"serial: expected state as a tuple of 5 entries"):
        net.forward(params, x, train=True)


def test_batch_norm_argument_errors():
    with pytest.raises(ArgumentError, match=r"batch_norm: momentum must be a number in \[0, 1\]"):
        L.batch_norm(momentum=1.5)
    for bad in (0, -1e-5, float("inf"), "1e-5"):
        with pytest.raises(ArgumentError, match=r"batch_norm: eps must be a finite number > 0"):
            L.batch_norm(eps=bad)


def test_batch_norm_forward_errors_name_the_layer():
    layer, params, state = _bn()
    x = np.ones((2, 3))
    who = r"batch_norm\(momentum=0.9, eps=1e-05\)"
    with pytest.raises(ArgumentError, match=who + r": pass train=True"):
        layer.forward(params, x, state=state)
    with pytest.raises(ArgumentError, match=who + r": needs state=...; start from "
                                                  r"layers.init_state"):
        layer.forward(params, x, train=True)
    with pytest.raises(StructureError, match=who + r": expected state \{'mean': \(C,\), "
                                                   r"'var': \(C,\)\}, got a dict with keys"):
        layer.forward(params, x, train=True, state={"mean": state["mean"]})
    with pytest.raises(ShapeError, match=who + r": expected state 'mean' and 'var' of shape "
                                               r"\(3,\), got \(2,\) and \(2,\)"):
        layer.forward(params, x, train=False, state={"mean": np.zeros(2), "var": np.ones(2)})
    with pytest.raises(ArrayTypeError, match=who + r": state 'mean' and 'var' must be arrays"):
        layer.forward(params, x, train=False, state={"mean": 0.0, "var": 1.0})
    with pytest.raises(StructureError, match=who + r": expected params \{'gamma'"):
        layer.forward({"gamma": params["gamma"]}, x, train=False, state=state)
    with pytest.raises(ShapeError, match=who + r": expected x of shape \(batch, 3\) or "
                                               r"\(batch, 3, height, width\), got \(2, 4\)"):
        layer.forward(params, np.ones((2, 4)), train=False, state=state)
    with pytest.raises(ShapeError, match=r"got \(2, 3, 5\)"):
        layer.forward(params, np.ones((2, 3, 5)), train=False, state=state)
    with pytest.raises(ArrayTypeError, match=who + r": x is float32 but the parameters"):
        layer.forward(params, x.astype(np.float32), train=False, state=state)
    with pytest.raises(ShapeError, match=who + r".init: expected in_shape \(features,\) or "
                                               r"\(channels, height, width\), got \(3, 4\)"):
        layer.init(random.key(0), (3, 4))
    with pytest.raises(ShapeError, match=who + r".init_state: expected in_shape"):
        L.init_state(layer, (3, 4))
    _, cache = layer.forward(params, x, train=True, state=state)
    with pytest.raises(ShapeError, match=who + r".backward: expected dy of shape \(2, 3\)"):
        layer.backward(cache, np.ones((3, 2)))


# --- conv2d ----------------------------------------------------------------------------------


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
    assert none is None and dx.shape == (3, 2, 4, 4) and L.skips_dx(layer)
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


# --- max_pool2d ------------------------------------------------------------------------------


def _naive_max_pool(x, size, stride):
    """Forward max and backward to the FIRST maximum of each window in row-major order."""
    (kh, kw), (sh, sw) = size, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    route = np.zeros((n, c, oh, ow, h, w))  # d y[n, c, i, j] / d x[n, c, :, :]
    for s in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    window = x[s, ch, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[s, ch, i, j] = window.max()
                    first = next((a, b) for a in range(kh) for b in range(kw)
                                 if window[a, b] == window.max())
                    route[s, ch, i, j, i * sh + first[0], j * sw + first[1]] = 1.0
    return y, route


@pytest.mark.parametrize("size, stride, hw", [(2, None, (6, 8)), (2, 1, (7, 7)),
                                              ((2, 3), (1, 2), (7, 7)), (3, 2, (7, 5)),
                                              (1, None, (3, 4))])
def test_max_pool_equals_a_naive_loop_with_ties_going_to_the_first_maximum(size, stride, hw):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, (2, 2, *hw)).astype(np.float64)  # small integers: many ties
    kernel = (size, size) if isinstance(size, int) else size
    steps = kernel if stride is None else ((stride, stride) if isinstance(stride, int)
                                           else stride)
    layer = L.max_pool2d(size, stride)
    y, cache = layer.forward((), x)
    y_naive, route = _naive_max_pool(x, kernel, steps)
    np.testing.assert_array_equal(y, y_naive)
    assert layer.init(random.key(0), (2, *hw)) == ((), y.shape[1:])
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, np.einsum("ncij,ncijhw->nchw", dy, route), rtol=1e-14)
    assert grads == ()


@pytest.mark.parametrize("argument, value, message", [
    ("size", 0, r"max_pool2d: size must be a positive integer or a pair of them"),
    ("size", (2, 2, 2), r"max_pool2d: size must be .*got \(2, 2, 2\)"),
    ("stride", -1, r"max_pool2d: stride must be a positive integer or a pair.*got -1"),
])
def test_max_pool_argument_errors(argument, value, message):
    arguments = {"size": 2, "stride": None, argument: value}
    with pytest.raises(ArgumentError, match=message):
        L.max_pool2d(**arguments)


def test_max_pool_shape_errors_name_the_layer_and_the_numbers():
    layer = L.max_pool2d(2)
    with pytest.raises(ShapeError, match=r"max_pool2d\(2\): expected x of rank 4"):
        layer.forward((), np.ones((2, 4, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d\(2\): the output height \(5 \+ 2 \* 0 - 2\)"
                                         r" / 2 \+ 1 = 2.5 is not a whole number"):
        layer.forward((), np.ones((1, 1, 5, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d\(3, stride=1\).init: the window width 3 "
                                         r"is larger than the input width 2"):
        L.max_pool2d(3, 1).init(random.key(0), (1, 4, 2))
    with pytest.raises(StructureError, match=r"max_pool2d\(2\): this layer has no parameters"):
        layer.forward({"W": np.ones(1)}, np.ones((1, 1, 4, 4)))
    _, cache = layer.forward((), np.ones((1, 1, 4, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d\(2\).backward: expected dy of shape "
                                         r"\(1, 1, 2, 2\)"):
        layer.backward(cache, np.ones((1, 1, 4, 4)))


# --- weight decay on a conv + batch-norm net ----------------------------------------------------


def test_default_weight_decay_touches_conv_and_dense_weights_not_biases_or_batch_norm():
    net = L.serial(L.conv2d(2, 3, padding=1, b_init=init.normal(1.0)), L.batch_norm(), L.relu(),
                   L.flatten(), L.dense(3, b_init=init.normal(1.0)))
    params, _ = net.init(random.key(5), (1, 4, 4))
    params = (params[0], {"gamma": np.full(2, 1.5), "beta": np.full(2, 0.5)}, *params[2:])
    opt = optim.sgd(0.1, weight_decay=0.5)
    new, _ = opt.update(tree.zeros_like(params), opt.init(params), params)
    decayed = []
    for (path, before), after in zip(tree.flatten_with_paths(params), tree.leaves(new),
                                     strict=True):
        if np.array_equal(after, before):
            continue
        np.testing.assert_allclose(after, before * (1 - 0.1 * 0.5), rtol=1e-15)
        decayed.append(tree.path_str(path))
    assert decayed == ["[0]['W']", "[4]['W']"]


# --- the gradient checker at kinks -----------------------------------------------------------


def _with_backward(layer, backward):
    """The same layer (name, forward, extras) with another backward: a deliberate bug."""
    return layer._replace(backward=backward)


def test_checker_explains_relu_at_exactly_zero_and_still_fails_a_wrong_backward():
    x = np.array([[0.0, 1.5, -0.7], [0.0, -2.0, 0.0]])
    relu = L.relu()
    report = check_layer(relu, (), x)
    assert report.ok and report.kinks == 3, str(report)

    def wrong_at_the_corner(cache, dy):  # claims a slope of -1 where x == 0
        return np.where(cache.saved, dy, np.where(x == 0, -dy, 0.0)), ()

    def wrong_elsewhere(cache, dy):  # double the slope where x > 0
        return np.where(cache.saved, 2 * dy, 0.0), ()

    for wrong in (wrong_at_the_corner, wrong_elsewhere):
        bad = check_layer(_with_backward(relu, wrong), (), x)
        assert not bad.ok, str(bad)


def test_checker_explains_ties_in_a_max_pool_and_still_fails_a_wrong_backward():
    x = np.array([[[[1.0, 1.0, 0.5, 2.0],
                    [0.0, 1.0, 2.0, -1.0],
                    [3.0, 0.2, 0.1, 0.1],
                    [-1.0, 0.4, 0.1, 0.1]]]])
    pool = L.max_pool2d(2)
    report = check_layer(pool, (), x)
    assert report.ok and report.kinks > 0, str(report)

    def doubled(cache, dy):
        dx, grads = pool.backward(cache, dy)
        return 2 * dx, grads

    bad = check_layer(_with_backward(pool, doubled), (), x)
    assert not bad.ok and bad.leaves[0].worst_index is not None, str(bad)


def test_checker_explains_a_one_sample_batch_norm_before_a_relu():
    """One sample: batch norm outputs exactly beta; with beta = 0 the relu sits on its corner
    (the textbook's beta mismatch of about 0.06 is the average of the two one-sided slopes)."""
    net = L.serial(L.batch_norm(), L.relu())
    params, _ = net.init(random.key(0), (3,))
    params = ({"gamma": params[0]["gamma"], "beta": np.array([0.0, 0.0, 0.5])}, ())
    x = np.array([[0.3, -1.2, 2.0]])
    kwargs = {"train": True, "state": L.init_state(net, (3,))}
    report = check_layer(net, params, x, forward_kwargs=kwargs)
    assert report.ok and report.kinks == 2, str(report)
    beta = next(leaf for leaf in report.leaves if leaf.path == "params[0]['beta']")
    assert beta.kinks == 2

    def wrong_beta(cache, dy):  # a batch-norm backward that doubles dbeta
        dx, grads = L.batch_norm().backward(cache, dy)
        return dx, {"gamma": grads["gamma"], "beta": 2 * grads["beta"]}

    buggy = L.serial(_with_backward(L.batch_norm(), wrong_beta), L.relu())
    bad = check_layer(buggy, params, x, forward_kwargs=kwargs)
    assert not bad.ok, str(bad)

    def wrong_relu(cache, dy):  # a relu that claims slope -1 at its corner
        return np.where(cache.saved, dy, -dy), ()

    buggy = L.serial(L.batch_norm(), _with_backward(L.relu(), wrong_relu))
    bad = check_layer(buggy, params, x, forward_kwargs=kwargs)
    assert not bad.ok, str(bad)
