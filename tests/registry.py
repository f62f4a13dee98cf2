"""The registry: every public layer and loss, with a way to build it and feed it.

A test in test_layers.py fails if ``funcnet.layers.CONSTRUCTORS`` (or
``funcnet.losses.CONSTRUCTORS``) names something no case here covers, so a
new layer cannot skip the oracle tests.

A layer case is ``build(draw, dtype) -> Built`` where ``draw`` is hypothesis's
draw function (shapes and hyperparameters are drawn), and ``Built`` says how
to make an input batch. Inputs stay clear of kinks (relu at 0, ties in a max)
so the finite differences are exact; the kink handling of the checker is tested
apart. A layer that takes a key, a train flag or state (dropout, batch_norm, a
serial holding them) gets them from ``Built.forward_kwargs(seed)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from helpers import away_from_zero
from hypothesis import strategies as st

from funcnet import init, losses, random, tree
from funcnet import layers as L

DIM = st.integers(1, 5)
BATCH = st.integers(1, 4)
ACTIVATION_NAMES = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax"]


class Built(NamedTuple):
    layer: L.Layer
    in_shape: Any  # one sample's shape (a pair of shapes for mul/add)
    make_x: Callable[[np.random.Generator, int, Any], Any]  # (rng, batch, dtype) -> x
    #: seed -> the keyword arguments of forward (key / train / state); None: plain layer
    forward_kwargs: Callable[[int], dict] | None = None
    batch: st.SearchStrategy = BATCH  # how many samples the input batch holds

    def kwargs(self, seed: int) -> dict:
        return {} if self.forward_kwargs is None else self.forward_kwargs(seed)


def _normal_input(in_shape):
    def make_x(rng, batch, dtype):
        return away_from_zero(rng, (batch, *in_shape)).astype(dtype)

    return make_x


def _pair_input(shape_x, shape_y):
    def make_x(rng, batch, dtype):
        return (away_from_zero(rng, (batch, *shape_x)).astype(dtype),
                away_from_zero(rng, (batch, *shape_y)).astype(dtype))

    return make_x


def _dense(draw, dtype):
    in_shape = (draw(DIM),)
    return Built(L.dense(draw(DIM), dtype=dtype), in_shape, _normal_input(in_shape))


def _elementwise(constructor):
    def build(draw, dtype):
        in_shape = tuple(draw(st.lists(DIM, min_size=1, max_size=3)))
        return Built(constructor(draw), in_shape, _normal_input(in_shape))

    return build


def _graph_node(constructor):
    """Two per-sample shapes of one rank where some axes of one are 1: (3, 4) with (1, 4)."""

    def build(draw, dtype):
        shape_x = tuple(draw(st.lists(DIM, min_size=1, max_size=2)))
        shape_y = tuple(1 if draw(st.booleans()) else s for s in shape_x)
        if draw(st.booleans()):
            shape_x, shape_y = shape_y, shape_x
        return Built(constructor(), (shape_x, shape_y), _pair_input(shape_x, shape_y))

    return build


#: Composed nets get random biases: with zero biases a dead relu feeds exact zeros to the
#: next layer, whose every sample then sits exactly on the next relu's corner at once.
BIAS = init.normal(0.3)


def _serial(activation):
    def build(draw, dtype):
        widths = draw(st.lists(DIM, min_size=3, max_size=4))
        parts = []
        for width in widths:
            parts += [L.dense(width, b_init=BIAS, dtype=dtype), L.activation_layer(activation)]
        in_shape = (draw(DIM),)
        return Built(L.serial(*parts), in_shape, _normal_input(in_shape))

    return build


def _serial_flatten(draw, dtype):
    in_shape = (draw(DIM), draw(DIM))
    net = L.serial(L.flatten(), L.dense(draw(DIM), b_init=BIAS, dtype=dtype), L.tanh(),
                   L.dense(draw(DIM), b_init=BIAS, dtype=dtype))
    return Built(net, in_shape, _normal_input(in_shape))


def _mlp(draw, dtype):
    sizes = draw(st.lists(DIM, min_size=1, max_size=3))
    activation = draw(st.sampled_from(["relu", "sigmoid", "tanh", "leaky_relu"]))
    output = draw(st.sampled_from([None, "softmax", "sigmoid"]))
    in_shape = (draw(DIM),)
    net = L.mlp(sizes, activation=activation, output=output, b_init=BIAS, dtype=dtype)
    return Built(net, in_shape, _normal_input(in_shape))


# --- keyed, stateful and convolutional layers (NCHW sizes small: C <= 3, H, W <= 7) ----------

CHANNELS = st.integers(1, 3)


def _dropout(train):
    def build(draw, dtype):
        in_shape = tuple(draw(st.lists(DIM, min_size=1, max_size=3)))
        layer = L.dropout(draw(st.sampled_from([0.0, 0.2, 0.5, 0.9])))
        return Built(layer, in_shape, _normal_input(in_shape),
                     lambda seed: {"key": random.key(seed), "train": train})

    return build


def _running_state(channels, dtype, seed):
    """Running statistics away from the initial ones, so eval mode is not an identity; frozen,
    as ``init_state`` and a train-mode forward give them."""
    rng = np.random.default_rng(seed)
    return tree.freeze({"mean": rng.standard_normal(channels).astype(dtype),
                        "var": rng.uniform(0.5, 2.0, channels).astype(dtype)}, copy=False)


def _batch_norm(train, nchw):
    def build(draw, dtype):
        channels = draw(CHANNELS)
        in_shape = (channels, draw(st.integers(1, 3)), draw(st.integers(1, 3))) if nchw \
            else (channels,)
        layer = L.batch_norm(draw(st.sampled_from([0.0, 0.5, 0.9])), dtype=dtype)
        return Built(layer, in_shape, _normal_input(in_shape),
                     lambda seed: {"train": train,
                                   "state": _running_state(channels, dtype, seed)})

    return build


def _window_axis(draw, *, max_kernel, padded):
    """(size, kernel, stride, padding) of one axis with a whole output size and size <= 7."""
    kernel = draw(st.integers(1, max_kernel))
    stride = draw(st.integers(1, 2))
    padding = draw(st.integers(0, 1)) if padded else 0
    sizes = [(out - 1) * stride + kernel - 2 * padding for out in range(1, 8)]
    sizes = [s for s in sizes if 1 <= s <= 7]
    if not sizes:
        padding, sizes = 0, [kernel]
    return draw(st.sampled_from(sizes)), kernel, stride, padding


def _conv2d(draw, dtype):
    h, kh, sh, ph = _window_axis(draw, max_kernel=3, padded=True)
    w, kw, sw, pw = _window_axis(draw, max_kernel=3, padded=True)
    square = kh == kw and sh == sw and ph == pw and draw(st.booleans())
    layer = L.conv2d(draw(CHANNELS), kh if square else (kh, kw), sh if square else (sh, sw),
                     ph if square else (ph, pw), b_init=BIAS, dtype=dtype)
    in_shape = (draw(CHANNELS), h, w)
    return Built(layer, in_shape, _normal_input(in_shape))


def _untied_input(in_shape):
    """Distinct values 0.01 apart in random order: no window of a max holds a tie."""

    def make_x(rng, batch, dtype):
        n = batch * int(np.prod(in_shape))
        values = (rng.permutation(n) - n / 2) * 0.01
        return values.reshape(batch, *in_shape).astype(dtype)

    return make_x


def _max_pool2d(draw, dtype):
    h, kh, sh, _ = _window_axis(draw, max_kernel=3, padded=False)
    w, kw, sw, _ = _window_axis(draw, max_kernel=3, padded=False)
    if draw(st.booleans()) and kh == kw and sh == sw:
        layer = L.max_pool2d(kh, None if sh == kh else sh)
    else:
        layer = L.max_pool2d((kh, kw), (sh, sw))
    in_shape = (draw(CHANNELS), h, w)
    return Built(layer, in_shape, _untied_input(in_shape))


def _serial_conv(draw, dtype):
    in_shape = (draw(CHANNELS), draw(st.sampled_from([2, 4])), draw(st.sampled_from([2, 4])))
    net = L.serial(L.conv2d(draw(CHANNELS), 3, padding=1, b_init=BIAS, dtype=dtype), L.relu(),
                   L.max_pool2d(2), L.flatten(), L.dense(draw(DIM), b_init=BIAS, dtype=dtype))
    return Built(net, in_shape, _normal_input(in_shape))


def _serial_batch_norm_dropout(draw, dtype):
    """dense, tanh, batch_norm, relu, dropout, dense, with 3 or 4 samples.

    The tanh keeps a bias away from the batch norm's input: a bias added right before a
    train-mode batch norm has a gradient of exactly 0 (the batch mean removes it), which
    hand, jax and finite differences all compute only as rounding noise around 0, so no
    relative error can judge it. And with 1 or 2 samples a train-mode batch norm outputs
    (nearly) constants, 0 or +-1, with the same effect on every gradient before it.
    """
    in_shape = (draw(DIM),)
    net = L.serial(L.dense(draw(DIM), b_init=BIAS, dtype=dtype), L.tanh(),
                   L.batch_norm(dtype=dtype), L.relu(),
                   L.dropout(draw(st.sampled_from([0.0, 0.5]))),
                   L.dense(draw(DIM), b_init=BIAS, dtype=dtype))
    train = draw(st.booleans())
    return Built(net, in_shape, _normal_input(in_shape),
                 lambda seed: {"key": random.key(seed), "train": train,
                               "state": L.init_state(net, in_shape)},
                 batch=st.integers(3, 4))


#: case id -> (the constructor name it covers, build function)
LAYER_CASES: dict[str, tuple[str, Callable]] = {
    "dense": ("dense", _dense),
    "relu": ("relu", _elementwise(lambda draw: L.relu())),
    "leaky_relu": ("leaky_relu", _elementwise(
        lambda draw: L.leaky_relu(draw(st.sampled_from([0.0, 0.01, 0.3]))))),
    "sigmoid": ("sigmoid", _elementwise(lambda draw: L.sigmoid())),
    "tanh": ("tanh", _elementwise(lambda draw: L.tanh())),
    "identity": ("identity", _elementwise(lambda draw: L.identity())),
    "softmax": ("softmax", _elementwise(lambda draw: L.softmax())),
    "flatten": ("flatten", _elementwise(lambda draw: L.flatten())),
    "mul": ("mul", _graph_node(L.mul)),
    "add": ("add", _graph_node(L.add)),
    **{f"serial_{a}": ("serial", _serial(a)) for a in ACTIVATION_NAMES},
    "serial_flatten": ("serial", _serial_flatten),
    "mlp": ("mlp", _mlp),
    "dropout_train": ("dropout", _dropout(True)),
    "dropout_eval": ("dropout", _dropout(False)),
    "batch_norm_train_dense": ("batch_norm", _batch_norm(True, nchw=False)),
    "batch_norm_eval_dense": ("batch_norm", _batch_norm(False, nchw=False)),
    "batch_norm_train_nchw": ("batch_norm", _batch_norm(True, nchw=True)),
    "batch_norm_eval_nchw": ("batch_norm", _batch_norm(False, nchw=True)),
    "conv2d": ("conv2d", _conv2d),
    "max_pool2d": ("max_pool2d", _max_pool2d),
    "serial_conv": ("serial", _serial_conv),
    "serial_batch_norm_dropout": ("serial", _serial_batch_norm_dropout),
}


# --- losses ---------------------------------------------------------------------------------


class LossCase(NamedTuple):
    loss: losses.Loss
    make: Callable[[np.random.Generator, int, int, Any], tuple[Any, Any]]  # -> (pred, target)


def _real_pair(rng, batch, width, dtype):
    return (rng.standard_normal((batch, width)).astype(dtype),
            rng.standard_normal((batch, width)).astype(dtype))


def _probabilities(rng, batch, width):
    e = np.exp(rng.standard_normal((batch, width)))
    return e / e.sum(axis=1, keepdims=True)


def _labels(rng, batch, width, dtype, one_hot):
    labels = rng.integers(0, width, batch)
    return np.eye(width, dtype=dtype)[labels] if one_hot else labels


def _class_probs(one_hot):
    def make(rng, batch, width, dtype):
        return (_probabilities(rng, batch, width).astype(dtype),
                _labels(rng, batch, width, dtype, one_hot))

    return make


def _class_logits(one_hot):
    def make(rng, batch, width, dtype):
        return (3 * rng.standard_normal((batch, width)).astype(dtype),
                _labels(rng, batch, width, dtype, one_hot))

    return make


def _binary_probs(rng, batch, width, dtype):
    return (rng.uniform(0.05, 0.95, (batch, width)).astype(dtype),
            rng.integers(0, 2, (batch, width)).astype(dtype))


def _binary_logits(rng, batch, width, dtype):
    return (3 * rng.standard_normal((batch, width)).astype(dtype),
            rng.uniform(0, 1, (batch, width)).astype(dtype))


#: case id -> (the constructor name it covers, case)
LOSS_CASES: dict[str, tuple[str, LossCase]] = {
    "sum_of_squares": ("sum_of_squares", LossCase(losses.sum_of_squares(), _real_pair)),
    "mse": ("mse", LossCase(losses.mse(), _real_pair)),
    "cross_entropy_one_hot": ("cross_entropy", LossCase(losses.cross_entropy(),
                                                        _class_probs(True))),
    "cross_entropy_labels": ("cross_entropy", LossCase(losses.cross_entropy(),
                                                       _class_probs(False))),
    "binary_cross_entropy": ("binary_cross_entropy",
                             LossCase(losses.binary_cross_entropy(), _binary_probs)),
    "softmax_cross_entropy_one_hot": ("softmax_cross_entropy", LossCase(
        losses.softmax_cross_entropy(), _class_logits(True))),
    "softmax_cross_entropy_labels": ("softmax_cross_entropy", LossCase(
        losses.softmax_cross_entropy(), _class_logits(False))),
    "sigmoid_binary_cross_entropy": ("sigmoid_binary_cross_entropy", LossCase(
        losses.sigmoid_binary_cross_entropy(), _binary_logits)),
}
