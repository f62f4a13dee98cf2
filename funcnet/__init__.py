"""funcnet: backpropagation written out by hand, as pure functions.

Every layer is ``Layer(init, forward, backward)``; every gradient is hand-written
and checked against ``jax.grad`` of the same forward code. A layer's math goes
through ``funcnet.xp(x)``, the array module of ``x`` (numpy, or ``jax.numpy`` under
``jax.grad`` and ``jax.jit``). ``import funcnet`` loads numpy and dm-tree only.
"""

from funcnet import data as data
from funcnet import errors as errors
from funcnet import init as init
from funcnet import io as io
from funcnet import layers as layers
from funcnet import losses as losses
from funcnet import optim as optim
from funcnet import random as random
from funcnet import train as train
from funcnet import tree as tree
from funcnet._xp import namespace as xp

__version__ = "0.1.0"

__all__ = [
    "data", "errors", "init", "io", "layers", "losses", "optim", "random", "train", "tree",
    "xp", "__version__",
]
