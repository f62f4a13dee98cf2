"""``mlp``: the multi-layer perceptron builder, dense layers with an activation between."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from funcnet import init as initializers
from funcnet.errors import ArgumentError, require_choice, require_positive_int
from funcnet.layers._activation import identity, leaky_relu, relu, sigmoid, softmax, tanh
from funcnet.layers._base import Layer
from funcnet.layers._combinators import serial
from funcnet.layers._dense import dense

__all__ = ["mlp", "ACTIVATIONS", "activation_layer"]

#: Activation names accepted by ``mlp`` and ``activation_layer``.
ACTIVATIONS = {act.__name__: act for act in (relu, leaky_relu, sigmoid, tanh, identity, softmax)}


def activation_layer(name: str | Layer, *, who: str = "activation_layer") -> Layer:
    """The activation layer called ``name`` (a Layer passes through unchanged)."""
    if isinstance(name, Layer):
        return name
    require_choice(who, "activation", name, ACTIVATIONS)
    return ACTIVATIONS[name]()


def mlp(sizes: Sequence[int], activation: str | Layer = "relu", output: str | Layer | None = None,
        *, w_init: initializers.Initializer | None = None,
        b_init: initializers.Initializer = initializers.zeros, dtype: Any = np.float64) -> Layer:
    """Dense layers of the widths in ``sizes``, with ``activation`` between them.

    ``sizes`` are the OUTPUT widths of the dense layers; the input width comes
    from ``init``'s ``in_shape``. ``output`` is applied after the last dense
    layer (None: none, i.e. logits or a regression output). The default
    ``w_init`` is He for ReLU-family activations and Xavier otherwise.

    >>> from funcnet.random import key
    >>> net = mlp([3, 1], activation="sigmoid")   # note 000's 1-3-1 regression net
    >>> params, out_shape = net.init(key(0), (1,))
    >>> [p["W"].shape for p in params if p], out_shape
    ([(1, 3), (3, 1)], (1,))
    """
    who = "mlp"
    if isinstance(sizes, int | str) or not isinstance(sizes, Sequence) or len(sizes) == 0:
        raise ArgumentError(f"{who}: sizes must be a non-empty list of layer widths, "
                            f"got {sizes!r}")
    sizes = [require_positive_int(who, f"sizes[{i}]", s) for i, s in enumerate(sizes)]
    hidden = activation_layer(activation, who=who)  # pure functions: one value serves every slot
    out = None if output is None else activation_layer(output, who=f"{who} output")
    if w_init is None:  # by the layer's name, so relu() and leaky_relu(0.2) count as well
        relu_family = hidden.name == "relu" or hidden.name.startswith("leaky_relu(")
        w_init = initializers.he if relu_family else initializers.xavier
    layers: list[Layer] = []
    for i, width in enumerate(sizes):
        layers.append(dense(width, w_init=w_init, b_init=b_init, dtype=dtype))
        if i < len(sizes) - 1:
            layers.append(hidden)
    if out is not None:
        layers.append(out)
    return serial(*layers, name=f"mlp({sizes})")
