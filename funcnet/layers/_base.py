"""The layer protocol: one value holding three pure functions and what a caller must know.

    init(key, in_shape)              -> (params, out_shape)
    forward(params, x, **extras)     -> (y, cache)
    backward(cache, dy)              -> (dx, dparams)

- ``in_shape`` and ``out_shape`` are the shape of ONE sample; ``x`` and ``y``
  carry a leading batch axis: ``x.shape == (batch, *in_shape)``.
- ``params`` is a pytree of arrays (a dict such as ``{"W": ..., "b": ...}``,
  or a tuple for a composition); a layer without parameters has
  ``params == ()``. ``dparams`` has exactly the structure of ``params``.
- ``cache`` is a NamedTuple holding what backward needs (inputs, masks, the
  weights used). Backward reads the weights from the cache, never elsewhere.
- Nothing is mutated: not ``x``, ``dy``, ``params`` nor ``cache``. ``init``
  returns frozen (read-only) leaves, so an accidental in-place write raises.
- Array math goes through the inputs' namespace (``funcnet._xp.namespace``) or
  array methods, so the same forward runs on numpy and under ``jax.grad`` /
  ``jax.jit``.

Everything else a caller must know is a field of ``Layer``, with a default,
so ``Layer(init, forward, backward)`` from three plain functions is a layer:

- ``name``: what errors and reports call it (``"dense(3)"``).
- ``takes``: which of ``"key"``, ``"train"``, ``"state"`` forward takes as
  keyword arguments. ``serial`` and ``train.fit`` pass exactly these: a fresh
  key per step and per keyed layer, ``train=True`` in training and False in
  evaluation, and the layer's state.
- ``initial_state``: ``initial_state(in_shape) -> state`` for a layer that
  takes ``state``; forward returns the new state in ``cache.state``.
- ``skips_dx``: backward accepts ``need_dx=False`` and then returns ``None``
  for ``dx`` (a network's first layer needs no gradient of its data).
- ``kernel``: the layer's math and its checks, apart (a ``Kernel``), for a
  layer whose ``forward``/``backward`` check their input before they compute.
  ``None`` for a layer whose forward and backward are already the bare math.

Checks run at the boundary, once: ``layer.forward(params, x)`` at a prompt
checks ``x`` and ``params`` and names the layer in its error; ``serial``
checks its input against every layer's params (passing shapes along as
``ArraySpec``) and then runs the kernels unchecked; ``fit`` checks its
configuration once and then only tests the loss for finiteness each step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from funcnet._kernel import unchecked
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    ShapeError,
    StructureError,
    describe,
    is_array,
)
from funcnet.random import is_key, split
from funcnet.tree import freeze

__all__ = ["Layer", "Kernel", "ArraySpec", "checked_layer", "EXTRA_NAMES"]

Array = Any
Shape = tuple[int, ...]
EXTRA_NAMES = ("key", "train", "state")


class ArraySpec(NamedTuple):
    """An array's shape and dtype without its values: what checks pass along a network."""

    shape: Shape
    dtype: np.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)


class Kernel(NamedTuple):
    """A layer's math (``forward``, ``backward``: the protocol's, checking nothing) and checks.

    ``check(params, x, **extras) -> ArraySpec`` raises an error naming the layer
    when the math cannot take ``x`` (an array or an ``ArraySpec``: only its shape
    and dtype are read) and returns the spec of ``y``; ``check_dy(cache, dy)``
    raises unless ``dy`` fits the output that made ``cache``. ``entries`` are the
    checked ``(forward, backward)`` built from it: a layer whose own function is
    no longer its entry (``layer._replace(backward=...)``) runs that, not the kernel.
    ``spec_ahead`` is False for a layer whose ``check`` cannot give y's spec ahead of
    the math and returns None (a ``serial`` holding a layer without a kernel): a
    composition then runs that layer's checked forward, as for a layer without a kernel.
    """

    forward: Callable[..., tuple[Array, Any]]
    backward: Callable[..., tuple[Array, Any]]
    check: Callable[..., ArraySpec]
    check_dy: Callable[[Any, Any], None]
    entries: tuple[Callable, Callable] | tuple[()] = ()
    spec_ahead: bool = True


class Layer(NamedTuple):
    """A layer: ``init``, ``forward``, ``backward``, and what callers must know of it (see
    the module docstring of ``funcnet.layers._base`` for every field)."""

    init: Callable[[Any, Shape], tuple[Any, Shape]]
    forward: Callable[..., tuple[Array, Any]]
    backward: Callable[..., tuple[Array, Any]]
    name: str = "layer"
    takes: frozenset[str] = frozenset()
    initial_state: Callable[[Shape], Any] | None = None
    skips_dx: bool = False
    kernel: Kernel | None = None


def math_of(layer: Layer) -> tuple[Callable, Callable]:
    """The unchecked ``(forward, backward)`` of a layer: its kernel's, or its own."""
    public, kernel = (layer.forward, layer.backward), layer.kernel
    if kernel is None:
        return public
    return unchecked(public, (kernel.forward, kernel.backward), kernel.entries)


def checked_layer(name: str, init: Callable, forward: Callable, backward: Callable, *,
                  check: Callable[..., ArraySpec], check_dy: Callable[[Any, Any], None],
                  takes: tuple[str, ...] | frozenset[str] = (),
                  initial_state: Callable[[Shape], Any] | None = None,
                  skips_dx: bool = False, backward_checked: Callable | None = None) -> Layer:
    """A ``Layer`` whose ``forward`` and ``backward`` run ``check``/``check_dy`` and then the math.

    Its ``init`` checks the key, then runs ``init``. The math and the checks stay
    reachable, unchecked, as ``layer.kernel``. ``backward_checked`` (default
    ``backward``) is what the checked backward runs after ``check_dy``: a composition's
    backward that checks each inner gradient as it is computed.
    """
    takes = frozenset(takes)
    unknown = takes - set(EXTRA_NAMES)
    if unknown:
        raise ArgumentError(f"{name}: unknown extras {sorted(unknown)}; allowed {EXTRA_NAMES}")
    if ("state" in takes) != (initial_state is not None):
        raise ArgumentError(f"{name}: a layer that takes state must give initial_state")

    def checked_init(key, in_shape):
        check_key(f"{name}.init", key)
        return init(key, in_shape)

    def checked_forward(params, x, **extras):
        unexpected = set(extras) - takes  # a misspelt ``train=`` never vanishes
        if unexpected:
            raise ArgumentError(f"{name}: unexpected keyword {sorted(unexpected)}; it takes "
                                f"{', '.join(sorted(takes)) or 'no keyword arguments'}")
        check(params, x, **extras)
        return forward(params, x, **extras)

    then_backward = backward if backward_checked is None else backward_checked

    def checked_backward(cache, dy, **options):
        check_dy(cache, dy)
        return then_backward(cache, dy, **options)

    for fn, part in ((checked_init, "init"), (checked_forward, "forward"),
                     (checked_backward, "backward")):
        fn.__qualname__ = fn.__name__ = f"{name}.{part}"
    return Layer(checked_init, checked_forward, checked_backward, name, takes, initial_state,
                 skips_dx, Kernel(forward, backward, check, check_dy,
                                  (checked_forward, checked_backward)))


def check_takes(layer: Layer) -> None:
    """``layer.takes`` against its forward's parameters, once, where a net is put together:
    a declared extra the forward has no parameter for, or a parameter named like an extra
    that ``takes`` leaves out, would fail at the first call as a bare ``TypeError``."""
    takes = frozenset(layer.takes)
    unknown = takes - set(EXTRA_NAMES)
    if unknown:
        raise ArgumentError(f"{layer.name}: unknown extras {sorted(unknown)} in takes; "
                            f"allowed {EXTRA_NAMES}")
    try:
        parameters = list(inspect.signature(layer.forward).parameters.values())
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return  # **extras: it takes whatever it is given
    named = {p.name: p for p in parameters[2:]
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    missing = sorted(takes - set(named))
    if missing:
        raise ArgumentError(f"{layer.name}: takes declares {missing}, but its forward has no "
                            f"such parameter; write forward(params, x, *, "
                            f"{', '.join(f'{m}=None' for m in missing)}) or leave "
                            f"{missing} out of takes")
    undeclared = sorted(name for name, p in named.items()
                        if name in EXTRA_NAMES and name not in takes and p.default is p.empty)
    if undeclared:
        raise ArgumentError(f"{layer.name}: its forward needs {undeclared}, which nothing "
                            f"passes unless takes declares them: Layer(..., "
                            f"takes=frozenset({sorted(takes | set(undeclared))}))")


def init_state(layer: Layer, in_shape: Shape) -> Any:
    """The initial state of a stateful layer (``()`` for a layer without state)."""
    make = layer.initial_state
    return () if make is None else make(tuple(in_shape))


# --- boundary checks shared by the layers (messages worded once, here) -----------------


def check_key(who: str, key: Any) -> None:
    if not is_key(key):
        raise ArrayTypeError(f"{who}: expected a random key (make one with "
                             f"funcnet.random.key(seed)), got {describe(key)}")


def check_in_shape(who: str, in_shape: Any, *, rank: int | None = None, layout: str = "",
                   min_rank: int = 0) -> Shape:
    """Validate a per-sample shape and return it as a tuple of ints."""
    try:
        shape = tuple(int(s) for s in in_shape)
        ok = all(s > 0 for s in shape) and all(
            isinstance(s, int | np.integer) and not isinstance(s, bool) for s in in_shape)
    except TypeError:
        ok = False
    if not ok:
        raise ShapeError(f"{who}: in_shape must be a tuple of positive integers (one sample, "
                         f"no batch axis), got {in_shape!r}")
    if rank is not None and len(shape) != rank:
        raise ShapeError(f"{who}: expected in_shape of rank {rank} {layout}, got {shape} of "
                         f"rank {len(shape)}")
    if len(shape) < min_rank:
        raise ShapeError(f"{who}: expected in_shape of rank at least {min_rank}, got {shape}")
    return shape


def check_input(who: str, x: Any, *, min_rank: int = 1) -> None:
    """``x`` must be an array (or spec) of real numbers with a batch axis, of rank >= min_rank."""
    if not (is_array(x) or isinstance(x, ArraySpec)):
        raise ArrayTypeError(f"{who}: expected x to be an array of shape (batch, ...), got "
                             f"{describe(x)}")
    if x.ndim < min_rank:
        raise ShapeError(f"{who}: expected x of rank at least {min_rank} (a leading batch "
                         f"axis), got shape {tuple(x.shape)}")
    if np.dtype(x.dtype).kind not in "biuf":
        raise ArrayTypeError(f"{who}: expected x of real numbers (float, int or bool), "
                             f"got dtype {x.dtype}")


def check_rank(who: str, x: Any, rank: int, layout: str) -> None:
    """Like ``check_input``, for an ``x`` of exactly rank ``rank``; ``layout`` spells its shape."""
    check_input(who, x, min_rank=0)
    if x.ndim != rank:
        raise ShapeError(f"{who}: expected x of rank {rank} with shape {layout}, "
                         f"got rank {x.ndim} with shape {tuple(x.shape)}")


def check_grad(who: str, dy: Any, shape: Shape, dtype: Any = None) -> None:
    """``dy`` must be an array shaped like the forward output (and of its ``dtype``, where
    the cache tells it: a float64 dy would silently make a float32 layer's grads float64)."""
    if not is_array(dy):
        raise ArrayTypeError(f"{who}.backward: expected dy to be an array of shape {shape}, "
                             f"got {describe(dy)}")
    if tuple(dy.shape) != tuple(shape):
        raise ShapeError(f"{who}.backward: expected dy of shape {tuple(shape)} (the forward "
                         f"output), got {tuple(dy.shape)}")
    if dtype is not None and dy.dtype != dtype:
        raise ArrayTypeError(f"{who}.backward: expected dy of dtype {np.dtype(dtype)} (the "
                             f"forward output's), got {dy.dtype}")


def check_no_params(who: str, params: Any) -> None:
    if not (isinstance(params, tuple) and len(params) == 0):
        raise StructureError(f"{who}: this layer has no parameters; expected params (), "
                             f"got {describe(params)}")


def check_train(who: str, train: Any) -> bool:
    """``train`` must be given as True or False: a layer never guesses the mode."""
    if not isinstance(train, bool | np.bool_):
        raise ArgumentError(f"{who}: pass train=True (training) or train=False (evaluation); "
                            f"got {describe(train)}")
    return bool(train)


def check_same_float(who: str, x: Any, W: Any, *, made: Any = None) -> None:
    """Refuse a silent upcast: a float input must have the parameters' dtype, and an integer
    or bool one must not turn the math into another float (numpy makes float64 of int64 and
    float32). ``made``: the dtype the math gives, if not numpy's promotion of x's and W's."""
    if x.dtype == W.dtype:
        return
    if np.dtype(x.dtype).kind == "f":
        raise ArrayTypeError(f"{who}: x is {x.dtype} but the parameters are {W.dtype}; build "
                             f"the layer with dtype={np.dtype(x.dtype).name!r} or cast x")
    made = np.result_type(x.dtype, W.dtype) if made is None else np.dtype(made)
    if made != W.dtype:
        raise ArrayTypeError(f"{who}: x is {x.dtype}, which with the parameters' {W.dtype} "
                             f"computes in {made}; cast x to {W.dtype} "
                             f"(x.astype(np.{np.dtype(W.dtype).name}))")


def returned_pair(who: str, part: str, out: Any) -> StructureError:
    """The error for a layer's ``forward``/``backward`` that did not return a pair: an array
    alone unpacks into its first two rows, so the message would otherwise blame the layer
    after it (or say nothing, on a batch of 2)."""
    pair = "(y, cache)" if part == "forward" else "(dx, dparams)"
    return StructureError(f"{who}: its {part} returned {describe(out)}; a layer's {part} must "
                          f"return the pair {pair}")


def check_cache(who: str, cache: Any, kind: type) -> None:
    """A backward must be given the cache its own forward returned."""
    if not isinstance(cache, kind):
        raise StructureError(f"{who}.backward: expected the cache {who}.forward returned "
                             f"(a {kind.__name__}), got {describe(cache)}")


def check_two_arrays(who: str, tree: Any, what: str, layout: dict[str, str]) -> tuple[Any, Any]:
    """The two arrays of a dict ``tree`` (params or state); ``layout`` spells key: shape."""
    (k0, shape0), (k1, shape1) = layout.items()
    if not (isinstance(tree, dict) and set(tree) == set(layout)):
        keys = f" with keys {sorted(tree)}" if isinstance(tree, dict) else ""
        raise StructureError(f"{who}: expected {what} {{'{k0}': {shape0}, '{k1}': {shape1}}}, "
                             f"got {describe(tree)}{keys}")
    a, b = tree[k0], tree[k1]
    if not (is_array(a) and is_array(b)):
        raise ArrayTypeError(f"{who}: {what} '{k0}' and '{k1}' must be arrays, got "
                             f"{describe(a)} and {describe(b)}")
    return a, b


def init_weights(who: str, key: Any, w_init: Callable, b_init: Callable, w_shape: Shape,
                 dtype: np.dtype) -> dict:
    """Frozen params ``{"W": w_init(w_shape), "b": b_init(w_shape[-1:])}`` of ``dtype``."""
    k_w, k_b = split(key)
    W = np.asarray(w_init(k_w, w_shape, dtype))
    b = np.asarray(b_init(k_b, w_shape[-1:], dtype))
    if W.shape != w_shape or b.shape != w_shape[-1:]:
        raise ShapeError(f"{who}: initializers returned W {W.shape} and b {b.shape}, "
                         f"expected {w_shape} and {w_shape[-1:]}")
    return freeze({"W": W.astype(dtype, copy=False), "b": b.astype(dtype, copy=False)},
                  copy=False)
