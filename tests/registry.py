"""The registry: every public layer and loss, with a way to build it and feed it.

A test in test_layers.py fails if ``funcnet.layers.CONSTRUCTORS`` (or
``funcnet.losses.CONSTRUCTORS``) names something no case here covers, so a
new layer cannot skip the oracle tests.

A layer case is ``build(draw, dtype) -> Built`` where ``draw`` is hypothesis's
draw function (shapes and hyperparameters are drawn), and ``Built`` says how
to make an input batch. Inputs stay clear of kinks (relu at 0) so the finite
differences are exact; the kink handling of the checker is tested apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from helpers import away_from_zero
from hypothesis import strategies as st

from funcnet import init, losses
from funcnet import layers as L

DIM = st.integers(1, 5)
BATCH = st.integers(1, 4)
ACTIVATION_NAMES = ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "softmax"]


class Built(NamedTuple):
    layer: L.Layer
    in_shape: Any  # one sample's shape (a pair of shapes for mul/add)
    make_x: Callable[[np.random.Generator, int, Any], Any]  # (rng, batch, dtype) -> x


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
