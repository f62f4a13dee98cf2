"""``serial``: layers in a row, itself a layer. It knows the protocol, no concrete layer."""

from __future__ import annotations

from typing import NamedTuple

from funcnet.errors import ArgumentError, ArrayTypeError, FuncnetError, StructureError, describe
from funcnet.layers._base import (
    Layer,
    check_key,
    extras,
    init_state,
    layer_name,
    make_layer,
    skips_dx,
)
from funcnet.random import split

__all__ = ["serial", "SerialCache"]


class SerialCache(NamedTuple):
    """One cache per layer, and one state per layer (``()`` for a layer without state)."""

    caches: tuple
    state: tuple


def _located(error: FuncnetError, where: str) -> FuncnetError:
    """The same error type, its message prefixed with the layer's position."""
    located = type(error)(f"{where}: {error}")
    return located


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Compose layers left to right; ``params`` is a tuple with one entry per layer.

    Backward runs the layers in reverse, feeding each one's ``dx`` to the one
    before as its ``dy``. If any layer takes a ``key``, ``train`` or ``state``
    (see ``layers._base``), the composition takes them too and threads them.

    >>> import numpy as np
    >>> from funcnet.layers import dense, relu
    >>> from funcnet.random import key
    >>> net = serial(dense(4), relu(), dense(2))
    >>> params, out_shape = net.init(key(0), (3,))
    >>> [sorted(p) for p in params], out_shape
    ([['W', 'b'], [], ['W', 'b']], (2,))
    >>> y, cache = net.forward(params, np.ones((5, 3)))
    >>> dx, grads = net.backward(cache, np.ones_like(y))
    >>> dx.shape, grads[1]
    ((5, 3), ())
    """
    if not layers:
        raise ArgumentError(f"{name}: needs at least one layer")
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            hint = " (did you forget to call it, e.g. relu() not relu?)" if callable(layer) else ""
            raise ArrayTypeError(f"{name}: argument {i} is {describe(layer)}, not a Layer{hint}")
    n = len(layers)
    names = [layer_name(layer) for layer in layers]
    where = [f"{name} layer {i} ({names[i]})" for i in range(n)]
    wants = [extras(layer) for layer in layers]
    takes = frozenset().union(*wants)
    keyed = [i for i in range(n) if "key" in wants[i]]
    skip_first = skips_dx(layers[0])

    def init(key, in_shape):
        check_key(f"{name}.init", key)
        params, shape = [], in_shape
        for i, (layer, k) in enumerate(zip(layers, split(key, n), strict=True)):
            try:
                p, shape = layer.init(k, shape)
            except FuncnetError as e:
                raise _located(e, where[i]) from e
            params.append(p)
        return tuple(params), tuple(shape)

    def _check_params(params):
        if not (isinstance(params, tuple) and len(params) == n):
            raise StructureError(
                f"{name}: expected params as a tuple of {n} entries (one per layer), "
                f"got {describe(params)}"
                + (f" of length {len(params)}" if isinstance(params, tuple | list) else "")
            )

    def forward(params, x, **kw):
        if type(params) is not tuple or len(params) != n:
            _check_params(params)
        unexpected = set(kw) - takes if kw else ()
        if unexpected:
            accepted = ", ".join(sorted(takes)) or "no keyword arguments"
            raise ArgumentError(f"{name}: unexpected keyword {sorted(unexpected)}; "
                                f"its layers take {accepted}")
        caches = []
        if not takes:
            for i, layer in enumerate(layers):
                try:
                    x, cache = layer.forward(params[i], x)
                except FuncnetError as e:
                    raise _located(e, where[i]) from e
                caches.append(cache)
            return x, SerialCache(tuple(caches), ((),) * n)

        key = kw.get("key")
        keys = dict(zip(keyed, split(key, len(keyed)) if key is not None else [None] * n,
                        strict=False))
        state = kw.get("state", None)
        if "state" in takes and not (isinstance(state, tuple) and len(state) == n):
            raise StructureError(f"{name}: expected state as a tuple of {n} entries (from "
                                 f"layers.init_state), got {describe(state)}")
        new_state = []
        for i, layer in enumerate(layers):
            args = {}
            if "key" in wants[i]:
                args["key"] = keys[i]
            if "train" in wants[i]:
                args["train"] = kw.get("train")
            if "state" in wants[i]:
                args["state"] = state[i]
            try:
                x, cache = layer.forward(params[i], x, **args)
            except FuncnetError as e:
                raise _located(e, where[i]) from e
            caches.append(cache)
            new_state.append(cache.state if "state" in wants[i] else ())
        return x, SerialCache(tuple(caches), tuple(new_state))

    def backward(cache, dy, *, need_dx=True):
        if not (isinstance(cache, SerialCache) and len(cache.caches) == n):
            raise StructureError(f"{name}.backward: expected the cache its forward returned "
                                 f"(a SerialCache of {n} caches), got {describe(cache)}")
        grads = [()] * n
        for i in range(n - 1, -1, -1):
            try:
                if i == 0 and not need_dx and skip_first:
                    dy, grads[i] = layers[i].backward(cache.caches[i], dy, need_dx=False)
                else:
                    dy, grads[i] = layers[i].backward(cache.caches[i], dy)
            except FuncnetError as e:
                raise _located(e, where[i]) from e
        return (dy if need_dx else None), tuple(grads)

    def initial_state(in_shape):
        from funcnet.random import key as make_key

        states, shape = [], in_shape
        for layer in layers:
            states.append(init_state(layer, shape))
            shape = layer.init(make_key(0), shape)[1]
        return tuple(states)

    return make_layer(
        name, init, forward, backward, takes=tuple(sorted(takes)),
        initial_state=initial_state if "state" in takes else None, can_skip_dx=True,
    )
