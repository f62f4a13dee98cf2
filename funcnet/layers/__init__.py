"""Layers: each constructor returns a ``Layer`` (see ``Layer``'s fields).

The protocol is stated once, in ``funcnet.layers._base``; each layer's
docstring gives only its own shapes and cache.
"""

from funcnet.layers._activation import ActivationCache as ActivationCache
from funcnet.layers._activation import identity as identity
from funcnet.layers._activation import leaky_relu as leaky_relu
from funcnet.layers._activation import relu as relu
from funcnet.layers._activation import sigmoid as sigmoid
from funcnet.layers._activation import softmax as softmax
from funcnet.layers._activation import tanh as tanh
from funcnet.layers._base import ArraySpec as ArraySpec
from funcnet.layers._base import Kernel as Kernel
from funcnet.layers._base import Layer as Layer
from funcnet.layers._base import checked_layer as checked_layer
from funcnet.layers._base import init_state as init_state
from funcnet.layers._base import math_of as math_of
from funcnet.layers._batchnorm import BatchNormCache as BatchNormCache
from funcnet.layers._batchnorm import batch_norm as batch_norm
from funcnet.layers._combinators import SerialCache as SerialCache
from funcnet.layers._combinators import serial as serial
from funcnet.layers._conv import Conv2dCache as Conv2dCache
from funcnet.layers._conv import conv2d as conv2d
from funcnet.layers._dense import DenseCache as DenseCache
from funcnet.layers._dense import dense as dense
from funcnet.layers._dropout import DropoutCache as DropoutCache
from funcnet.layers._dropout import dropout as dropout
from funcnet.layers._graph import AddCache as AddCache
from funcnet.layers._graph import MulCache as MulCache
from funcnet.layers._graph import add as add
from funcnet.layers._graph import mul as mul
from funcnet.layers._mlp import ACTIVATIONS as ACTIVATIONS
from funcnet.layers._mlp import activation_layer as activation_layer
from funcnet.layers._mlp import mlp as mlp
from funcnet.layers._pool import MaxPoolCache as MaxPoolCache
from funcnet.layers._pool import max_pool2d as max_pool2d
from funcnet.layers._reshape import FlattenCache as FlattenCache
from funcnet.layers._reshape import flatten as flatten

#: Every public layer constructor, by name. The test registry must cover each one.
CONSTRUCTORS = {
    "dense": dense,
    "relu": relu,
    "leaky_relu": leaky_relu,
    "sigmoid": sigmoid,
    "tanh": tanh,
    "identity": identity,
    "softmax": softmax,
    "flatten": flatten,
    "mul": mul,
    "add": add,
    "serial": serial,
    "mlp": mlp,
    "dropout": dropout,
    "batch_norm": batch_norm,
    "conv2d": conv2d,
    "max_pool2d": max_pool2d,
}

__all__ = [
    "Layer",
    *CONSTRUCTORS,
    "CONSTRUCTORS",
    "ACTIVATIONS",
    "activation_layer",
    "ArraySpec",
    "Kernel",
    "checked_layer",
    "init_state",
    "math_of",
    "ActivationCache",
    "AddCache",
    "BatchNormCache",
    "Conv2dCache",
    "DenseCache",
    "DropoutCache",
    "FlattenCache",
    "MaxPoolCache",
    "MulCache",
    "SerialCache",
]
