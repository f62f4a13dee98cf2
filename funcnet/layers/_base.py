"""The layer protocol: one value holding three pure functions.

    init(key, in_shape)  -> (params, out_shape)
    forward(params, x)   -> (y, cache)
    backward(cache, dy)  -> (dx, dparams)

- ``in_shape`` and ``out_shape`` are the shape of ONE sample; ``x`` and ``y``
  carry a leading batch axis: ``x.shape == (batch, *in_shape)``.
- ``params`` is a pytree of arrays (a dict such as ``{"W": ..., "b": ...}``,
  or a tuple for a composition); a layer without parameters has
  ``params == ()``. ``dparams`` has exactly the structure of ``params``.
- ``cache`` is a NamedTuple holding what backward needs (inputs, masks, the
  weights used). Backward reads the weights from the cache, never elsewhere.
- Nothing is mutated: not ``x``, ``dy``, ``params`` nor ``cache``. ``init``
  returns frozen (read-only) leaves, so an accidental in-place write raises.
- Array math goes through the inputs' namespace (``funcnet._xp.namespace``),
  so the same forward runs on numpy and under ``jax.grad`` / ``jax.jit``.

Extended layers. A layer that needs a random key, a train/eval switch, or
state that changes while it runs (batch norm's running statistics) takes
them as keyword-only arguments of ``forward``, and says so with
``extended(...)``:

    forward(params, x, *, key=..., train=..., state=...) -> (y, cache)

A layer that takes ``state`` returns the updated state in ``cache.state``
(the same state in eval mode) and gives its initial state with
``init_state(layer, in_shape)``. ``serial`` threads all three: it splits the
key between the layers that want one, passes ``train`` to those that use it,
and carries a tuple of per-layer states. Layers that need none of this keep
the plain signature, and ``extras(layer)`` is empty for them.

Backward of a layer whose ``dx`` costs real work (``dense``) may also take
``need_dx=False``, returning ``None`` for ``dx``: a network's first layer
does not need the gradient of its data. ``skips_dx(layer)`` tells.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    ShapeError,
    StructureError,
    describe,
    is_array,
)
from funcnet.random import is_key

__all__ = [
    "Layer",
    "layer_name",
    "extras",
    "init_state",
    "skips_dx",
    "EXTRA_NAMES",
]

Array = Any
Shape = tuple[int, ...]
EXTRA_NAMES = ("key", "train", "state")


class Layer(NamedTuple):
    """A layer: ``init(key, in_shape)``, ``forward(params, x)``, ``backward(cache, dy)``."""

    init: Callable[[Any, Shape], tuple[Any, Shape]]
    forward: Callable[..., tuple[Array, Any]]
    backward: Callable[..., tuple[Array, Any]]


def make_layer(
    name: str,
    init: Callable,
    forward: Callable,
    backward: Callable,
    *,
    takes: tuple[str, ...] = (),
    initial_state: Callable[[Shape], Any] | None = None,
    can_skip_dx: bool = False,
) -> Layer:
    """Bundle three closures into a ``Layer`` whose repr names it (``dense(3).forward``)."""
    for fn, part in ((init, "init"), (forward, "forward"), (backward, "backward")):
        fn.__qualname__ = fn.__name__ = f"{name}.{part}"
    unknown = set(takes) - set(EXTRA_NAMES)
    if unknown:
        raise ArgumentError(f"{name}: unknown extras {sorted(unknown)}; allowed {EXTRA_NAMES}")
    if ("state" in takes) != (initial_state is not None):
        raise ArgumentError(f"{name}: a layer that takes state must give initial_state")
    forward.funcnet_extras = frozenset(takes)
    forward.funcnet_init_state = initial_state
    backward.funcnet_skips_dx = can_skip_dx
    return Layer(init, forward, backward)


def layer_name(layer: Layer) -> str:
    """The name a layer reports in its errors, e.g. ``'dense(3)'``."""
    name = getattr(layer.init, "__qualname__", "")
    return name[: -len(".init")] if name.endswith(".init") else "layer"


def extras(layer: Layer) -> frozenset[str]:
    """Which of ``key``, ``train``, ``state`` the layer's forward takes (empty for most)."""
    return getattr(layer.forward, "funcnet_extras", frozenset())


def init_state(layer: Layer, in_shape: Shape) -> Any:
    """The initial state of a stateful layer (``()`` for a layer without state)."""
    make = getattr(layer.forward, "funcnet_init_state", None)
    return () if make is None else make(tuple(in_shape))


def skips_dx(layer: Layer) -> bool:
    """True when ``layer.backward`` accepts ``need_dx=False``."""
    return bool(getattr(layer.backward, "funcnet_skips_dx", False))


# --- boundary checks shared by the layers (messages worded once, here) -----------------


def check_key(who: str, key: Any) -> None:
    """Raise unless ``key`` is a ``funcnet.random`` key."""
    if not is_key(key):
        raise ArrayTypeError(
            f"{who}: expected a random key (make one with funcnet.random.key(seed)), "
            f"got {describe(key)}"
        )


def check_in_shape(who: str, in_shape: Any, *, rank: int | None = None, layout: str = "",
                   min_rank: int = 0) -> Shape:
    """Validate a per-sample shape and return it as a tuple of ints."""
    try:
        shape = tuple(int(s) for s in in_shape)
        ok = all(s > 0 for s in shape) and all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) for s in in_shape
        )
    except TypeError:
        ok = False
    if not ok:
        raise ShapeError(
            f"{who}: in_shape must be a tuple of positive integers (one sample, no batch "
            f"axis), got {in_shape!r}"
        )
    if rank is not None and len(shape) != rank:
        raise ShapeError(
            f"{who}: expected in_shape of rank {rank} {layout}, got {shape} of rank {len(shape)}"
        )
    if len(shape) < min_rank:
        raise ShapeError(
            f"{who}: expected in_shape of rank at least {min_rank}, got {shape}"
        )
    return shape


def check_input(who: str, x: Any, *, min_rank: int = 1) -> None:
    """``x`` must be an array with a batch axis (rank at least ``min_rank``)."""
    if not is_array(x):
        raise ArrayTypeError(
            f"{who}: expected x to be an array of shape (batch, ...), got {describe(x)}"
        )
    if x.ndim < min_rank:
        raise ShapeError(
            f"{who}: expected x of rank at least {min_rank} (a leading batch axis), "
            f"got shape {tuple(x.shape)}"
        )


def check_grad(who: str, dy: Any, shape: tuple[int, ...]) -> None:
    """``dy`` must be an array shaped like the forward output."""
    if not is_array(dy):
        raise ArrayTypeError(
            f"{who}.backward: expected dy to be an array of shape {shape}, got {describe(dy)}"
        )
    if tuple(dy.shape) != tuple(shape):
        raise ShapeError(
            f"{who}.backward: expected dy of shape {tuple(shape)} (the forward output), "
            f"got {tuple(dy.shape)}"
        )


def check_no_params(who: str, params: Any) -> None:
    """A parameterless layer must be given ``()``."""
    if not (isinstance(params, tuple) and len(params) == 0):
        raise StructureError(f"{who}: this layer has no parameters; expected params (), "
                             f"got {describe(params)}")


def check_train(who: str, train: Any) -> bool:
    """``train`` must be given as True or False: a layer never guesses the mode."""
    if not isinstance(train, bool | np.bool_):
        raise ArgumentError(f"{who}: pass train=True (training) or train=False (evaluation); "
                            f"got {describe(train)}")
    return bool(train)


def check_same_float(who: str, x: Any, W: Any) -> None:
    """Refuse a silent upcast: a float input must have the parameters' dtype."""
    if x.dtype != W.dtype and np.dtype(x.dtype).kind == "f":
        raise ArrayTypeError(
            f"{who}: x is {x.dtype} but the parameters are {W.dtype}; build the layer with "
            f"dtype={np.dtype(x.dtype).name!r} or cast x"
        )
