"""``serial``: layers in a row, itself a layer. It knows the protocol, no concrete layer."""

from __future__ import annotations

from typing import NamedTuple

from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    FuncnetError,
    StructureError,
    describe,
    is_array,
)
from funcnet.layers._base import (
    ArraySpec,
    Layer,
    check_key,
    check_takes,
    check_train,
    checked_layer,
    init_state,
    math_of,
    returned_pair,
)
from funcnet.random import key as make_key
from funcnet.random import split

__all__ = ["serial", "SerialCache"]


class SerialCache(NamedTuple):
    """One cache per layer, one state per layer (``()`` for a layer without state), and
    ``owner``: the token of the ``serial`` that made it (its name and size, compared by
    identity), so its backward can refuse a cache from another network."""

    caches: tuple
    state: tuple
    owner: object = None


def serial(*layers: Layer, name: str = "serial") -> Layer:
    """Compose layers left to right; ``params`` is a tuple with one entry per layer.

    Backward runs the layers in reverse, feeding each one's ``dx`` to the one
    before as its ``dy``. If any layer takes a ``key``, ``train`` or ``state``,
    the composition takes them too: it splits the key between the layers that
    take one, passes ``train`` on, and carries a tuple of per-layer states.
    Its forward checks the input against every layer's params before any math
    runs, up to the first layer without a kernel (which cannot say its output
    shape ahead of time); from it on, each layer checks itself as it runs.

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
    where = [f"{name} layer {i} ({layer.name})" for i, layer in enumerate(layers)]
    for i, layer in enumerate(layers):  # a forward that cannot take what takes declares
        try:
            check_takes(layer)
        except FuncnetError as e:
            raise type(e)(f"{where[i]}: {e}") from None
    takes = frozenset().union(*(layer.takes for layer in layers))
    keyed = [i for i, layer in enumerate(layers) if "key" in layer.takes]
    # layers up to the first one whose check cannot give its output's spec (no kernel, or a
    # serial holding such a layer) are checked ahead; from it on, as they run
    ahead = next((i for i, layer in enumerate(layers)
                  if layer.kernel is None or not layer.kernel.spec_ahead), n)
    forwards = [math_of(layer)[0] if i < ahead else layer.forward
                for i, layer in enumerate(layers)]
    backwards = [math_of(layer)[1] for layer in layers]
    skip_first = layers[0].skips_dx
    # this composition's own token, compared by identity; by value (its name and size) it
    # equals an equal composition's, so jit's compiled epoch serves a rebuilt net too
    owner = (name, n)

    def init(key, in_shape):
        params, shape = [], in_shape
        for i, (layer, k) in enumerate(zip(layers, split(key, n), strict=True)):
            try:
                p, shape = layer.init(k, shape)
            except FuncnetError as e:
                raise type(e)(f"{where[i]}: {e}") from e
            params.append(p)
        return tuple(params), tuple(shape)

    def layer_extras(i, extras, keys):
        """The keywords layer i takes: its own key, the train flag, its own state."""
        wants = layers[i].takes
        if not wants:
            return {}
        given = {"key": keys.get(i), "train": extras.get("train")}
        if "state" in wants:
            given["state"] = extras["state"][i]
        return {extra: value for extra, value in given.items() if extra in wants}

    def forward(params, x, **extras):
        caches, states = [], [()] * n
        key = extras.get("key")
        keys = {}
        if keyed and key is not None:
            keys = dict(zip(keyed, split(key, len(keyed)), strict=True))
        for i in range(n):
            try:
                out = forwards[i](params[i], x, **layer_extras(i, extras, keys))
            except FuncnetError as e:  # only a layer checked as it runs raises these
                raise type(e)(f"{where[i]}: {e}") from e
            if not isinstance(out, tuple) or len(out) != 2:
                raise returned_pair(where[i], "forward", out)
            x, cache = out
            caches.append(cache)
            if "state" in layers[i].takes:
                states[i] = cache.state
        return x, SerialCache(tuple(caches), tuple(states), owner)

    def backward_through(backwards):
        """The network's backward through the layers' ``backwards``: their kernels, or their
        own checked backwards, so a wrong dx is named as the layer below receives it."""

        def backward(cache, dy, need_dx=True):
            grads = [()] * n
            for i in range(n - 1, -1, -1):
                options = {"need_dx": False} if i == 0 and not need_dx and skip_first else {}
                try:
                    out = backwards[i](cache.caches[i], dy, **options)
                except FuncnetError as e:
                    made_by = (f", given the dx of layer {i + 1} ({layers[i + 1].name})"
                               if i < n - 1 else "")
                    raise type(e)(f"{where[i]}{made_by}: {e}") from e
                if not isinstance(out, tuple) or len(out) != 2:
                    raise returned_pair(where[i], "backward", out)
                dy, grads[i] = out
            return (dy if need_dx else None), tuple(grads)

        return backward

    def check(params, x, **extras):
        if not (isinstance(params, tuple) and len(params) == n):
            length = f" of length {len(params)}" if isinstance(params, tuple | list) else ""
            raise StructureError(f"{name}: expected params as a tuple of {n} entries (one per "
                                 f"layer), got {describe(params)}{length}")
        if "state" in takes:
            state = extras.get("state")
            if not (isinstance(state, tuple) and len(state) == n):
                raise StructureError(f"{name}: expected state as a tuple of {n} entries (from "
                                     f"layers.init_state), got {describe(state)}")
        if keyed and extras.get("key") is not None:
            check_key(name, extras["key"])
        spec = x
        for i in range(ahead):
            args = layer_extras(i, extras, dict.fromkeys(keyed, extras.get("key")))
            try:
                spec = layers[i].kernel.check(params[i], spec, **args)
            except FuncnetError as e:
                raise type(e)(f"{where[i]}: {e}") from e
            if not (isinstance(spec, ArraySpec) or is_array(spec)):
                raise ArrayTypeError(f"{where[i]}: its check returned {describe(spec)}; a "
                                     f"layer's check must return the spec of its output, "
                                     f"layers.ArraySpec(shape, dtype), which the layer after "
                                     f"it is checked against")
        if "train" in takes:  # after the layers, which name themselves in the message
            check_train(name, extras.get("train"))
        return spec if ahead == n else None

    def check_dy(cache, dy):
        if not (isinstance(cache, SerialCache) and len(cache.caches) == n):
            raise StructureError(f"{name}.backward: expected the cache its forward returned "
                                 f"(a SerialCache of {n} caches), got {describe(cache)}")
        if cache.owner is not owner:
            raise StructureError(f"{name}.backward: this cache was made by another network's "
                                 f"forward; pass the cache this network's forward returned")
        last = layers[-1].kernel
        if last is not None:
            try:
                last.check_dy(cache.caches[-1], dy)
            except FuncnetError as e:
                raise type(e)(f"{where[-1]}: {e}") from e

    def initial_state(in_shape):
        states, shape = [], in_shape
        for layer in layers:
            states.append(init_state(layer, shape))
            shape = layer.init(make_key(0), shape)[1]
        return tuple(states)

    net = checked_layer(name, init, forward, backward_through(backwards), check=check,
                        check_dy=check_dy, takes=takes,
                        initial_state=initial_state if "state" in takes else None, skips_dx=True,
                        backward_checked=backward_through([layer.backward for layer in layers]))
    # its check returns None past a layer it cannot check ahead: a serial around it must not
    # check past it either
    return net if ahead == n else net._replace(kernel=net.kernel._replace(spec_ahead=False))
