"""Layers: each constructor returns a ``Layer`` (see ``Layer``'s fields).

The protocol is stated once, in ``funcnet.layers._base``; each layer's
docstring gives only its own shapes and cache.
"""

from funcnet.layers._activation import (
    ActivationCache,
    identity,
    leaky_relu,
    relu,
    sigmoid,
    softmax,
    tanh,
)
from funcnet.layers._base import (
    ArraySpec,
    Kernel,
    Layer,
    check_takes,
    checked_layer,
    init_state,
    math_of,
)
from funcnet.layers._batchnorm import BatchNormCache, batch_norm
from funcnet.layers._combinators import SerialCache, serial
from funcnet.layers._conv import Conv2dCache, conv2d
from funcnet.layers._dense import DenseCache, dense
from funcnet.layers._dropout import DropoutCache, dropout
from funcnet.layers._graph import AddCache, MulCache, add, mul
from funcnet.layers._mlp import ACTIVATIONS, activation_layer, mlp
from funcnet.layers._pool import MaxPoolCache, max_pool2d
from funcnet.layers._reshape import FlattenCache, flatten

#: Every public layer constructor, by name. The test registry must cover each one.
CONSTRUCTORS = {constructor.__name__: constructor for constructor in (
    dense, relu, leaky_relu, sigmoid, tanh, identity, softmax, flatten, mul, add, serial, mlp,
    dropout, batch_norm, conv2d, max_pool2d,
)}

__all__ = [
    "Layer", *CONSTRUCTORS, "CONSTRUCTORS", "ACTIVATIONS", "activation_layer", "ArraySpec",
    "Kernel", "checked_layer", "check_takes", "init_state", "math_of", "ActivationCache",
    "AddCache", "BatchNormCache", "Conv2dCache", "DenseCache", "DropoutCache", "FlattenCache",
    "MaxPoolCache", "MulCache", "SerialCache",
]
