"""The array namespace of the inputs, and the few numeric constants kernels share.

Kernels never call ``np.`` directly on their inputs: they ask ``namespace(x)`` for the module
that owns ``x`` (numpy, or ``jax.numpy`` for jax arrays and tracers) and do all their math
through it, so that ``jax.grad`` and ``jax.jit`` take the very code training runs on numpy.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any

import numpy as np

#: The notes' guard inside ``log(y + LOG_GUARD)`` for cross-entropy on
#: probabilities (note 000; the textbook writes it ``1e-7``).
LOG_GUARD = 1e-7


def namespace(*arrays: Any) -> ModuleType:
    """The array module of ``arrays``: the first non-numpy one wins, else numpy.

    >>> namespace(np.zeros(2)).__name__
    'numpy'
    >>> namespace(1.5).__name__
    'numpy'
    """
    for a in arrays:
        if isinstance(a, np.ndarray | np.generic):
            continue
        get = getattr(a, "__array_namespace__", None)
        if get is not None and get() is not np:
            return get()
    return np


@functools.cache  # a constant per dtype, which kernels ask for at every call
def exp_limit(dtype: Any) -> float:
    """The largest ``|z|`` for which ``exp(z)`` and ``exp(-z)`` are both normal numbers.

    Kernels clip exponents into ``[-limit, limit]`` so that ``exp`` neither overflows nor
    underflows, even under ``np.seterr(all="raise")``. Beyond it the true ``exp(-z)`` differs
    from the clipped one by less than ``exp(-limit) = tiny**0.9`` (about 1e-277 for float64,
    4e-35 for float32), far below the rounding of any O(1) value it is added to. 0.9 of
    ``-log(tiny)`` keeps headroom for the product with an upstream gradient: about 638 for
    float64 and 79 for float32.

    >>> round(exp_limit(np.float64))
    638
    """
    kind = np.dtype(dtype)
    return float(-0.9 * np.log(np.finfo(kind if kind.kind == "f" else np.float64).tiny))


def sigmoid_fn(x: Any, xp: Any) -> Any:
    """``1 / (1 + exp(-x))`` with the exponent clipped to ``exp_limit``."""
    limit = exp_limit(x.dtype)
    return 1 / (1 + xp.exp(-xp.minimum(xp.maximum(x, -limit), limit)))


def softmax_fn(x: Any, xp: Any) -> Any:
    """Softmax over the last axis, shifted by the row maximum so ``exp`` cannot overflow."""
    shifted = x - x.max(axis=-1, keepdims=True)
    e = xp.exp(xp.maximum(shifted, -exp_limit(x.dtype)))
    return e / e.sum(axis=-1, keepdims=True)
