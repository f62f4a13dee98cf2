"""The jit path: funcnet's hand-written forward, backward and update, compiled by ``jax.jit``.

Nothing here differentiates: the step is the layers' and the loss's kernels
(``train.gradient_fn``) followed by ``optimizer.update``, the very functions the
numpy path runs, traced with jax arrays and compiled once.

- ``jit_step(net, loss, optimizer)`` compiles one step.
- ``epoch_runner(config)`` runs an epoch as ONE compiled call: the minibatches (the
  numpy path's permutation, from the state's key) are gathered on the device and
  the steps run inside ``jax.lax.scan``, a smaller last batch in one more step.
  ``train.fit(..., runner=jit.epoch_runner)`` runs it, so history, validation,
  checkpoints, training accuracy and NaN reports are the numpy path's. The
  compiled epoch is kept (the 32 most recent) for the same batching and an equal
  net, loss and optimizer as ``_program_key`` compares them: a second ``fit`` with
  a new ``optim.adam(1e-3)`` does not compile again.
- Layers that draw random numbers (dropout) get the numpy path's per-step keys,
  scanned with the batches; ``jit_step``, which takes no key, refuses them.
- Everything runs in jax's x64 mode on jax's default device (CPU or GPU).

>>> from funcnet import layers, losses, optim, random
>>> net, opt = layers.mlp([4, 2]), optim.sgd(0.1)
>>> params, _ = net.init(random.key(0), (3,))
>>> step = jit_step(net, losses.softmax_cross_entropy(), opt)
>>> p, s, _, value = step(to_device(params), to_device(opt.init(params)),
...                       to_device(np.ones((5, 3))), to_device(np.array([0, 1, 1, 0, 1])))
>>> to_numpy(p)[0]["W"].shape, bool(np.isfinite(float(value)))
((3, 4), True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import types
from collections.abc import Callable
from typing import Any

import numpy as np

from funcnet import random, tree
from funcnet.errors import (
    ARRAY_MATH_RULE,
    ARRAY_VALUE_RULE,
    ArgumentError,
    ArrayTypeError,
    raise_if_write,
)
from funcnet.train import (
    Config,
    EpochResult,
    TrainState,
    accuracy_threshold,
    batch_accuracy,
    epoch_keys,
    finish_epoch,
    forward_backward_fn,
    gradient_fn,
    replay_failed_epoch,
)

__all__ = ["jit_step", "epoch_runner", "to_device", "to_numpy"]


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        raise ImportError("funcnet.jit needs jax: pip install 'funcnet[test]' (or jax)") from None
    return jax, jnp


def _x64():
    """jax's x64 mode and full-precision matrix products for this block.

    Without x64, jax truncates the optimizer's int64 step count to int32 (a carry
    whose dtype changes, which ``lax.scan`` refuses) and runs float64 params in
    float32. On a GPU jax's default precision rounds float32 products' inputs to TF32;
    ``"highest"`` keeps the numpy path's numbers to float32 rounding.
    """
    jax, _ = _jax()
    modes = contextlib.ExitStack()
    if not jax.config.jax_enable_x64:
        modes.enter_context(jax.enable_x64(True))
    modes.enter_context(jax.default_matmul_precision("highest"))
    return modes


def to_device(value: Any) -> Any:
    """Every array leaf as a jax array on the default device (dtype kept, x64 as needed)."""
    jax, jnp = _jax()
    with _x64():
        return tree.map(lambda a: jnp.asarray(a) if hasattr(a, "shape") else a, value)


def to_numpy(value: Any) -> Any:
    """Every array leaf back as a frozen numpy array."""
    return tree.freeze(tree.map(lambda a: np.asarray(a) if hasattr(a, "shape") else a, value),
                       copy=True)


@contextlib.contextmanager
def _named_tracer_errors(who: str):
    """jax's error for code that turns a traced array into a numpy one, said in funcnet's
    terms: which rule the layer, loss or optimizer broke, and what to write instead."""
    jax, _ = _jax()
    try:
        yield
    except jax.errors.TracerArrayConversionError as e:
        raise ArrayTypeError(
            f"{who}: a layer, loss or optimizer of this net called numpy on a traced array "
            f"(e.g. np.logaddexp(0.0, x) in a forward; the traceback above names the line): "
            f"{ARRAY_MATH_RULE}") from e
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerIntegerConversionError) as e:
        raise ArrayTypeError(
            f"{who}: a layer, loss or optimizer of this net read a traced array's value in "
            f"Python (if x > 0, float(x), int(x); the traceback above names the line): "
            f"{ARRAY_VALUE_RULE}") from e
    except TypeError as e:
        raise_if_write(e, f"{who}: a layer, loss or optimizer of this net",
                       what="a traced array", at=" (the traceback above names the line)")
        raise


def jit_step(net: Any, loss: Any, optimizer: Any) -> Callable[..., tuple]:
    """A compiled ``step(params, opt_state, x, y, model_state=()) -> (params, opt_state,
    model_state, loss)``; pass arrays from ``to_device``."""
    jax, _ = _jax()
    if "key" in net.takes:
        raise ArgumentError("jit_step: this network has a layer that draws random numbers "
                            "(dropout) and jit_step takes no key; train it with "
                            "fit(..., runner=jit.epoch_runner)")
    grad_fn = gradient_fn(net, loss, checked=False)

    @jax.jit
    def compiled(params, opt_state, x, y, model_state):
        value, grads, model_state = grad_fn(params, x, y, None, model_state)
        params, opt_state = optimizer.update(grads, opt_state, params)
        return params, opt_state, model_state, value

    def step(params, opt_state, x, y, model_state=()):
        with _x64(), _named_tracer_errors("jit_step"):
            return compiled(params, opt_state, x, y, model_state)

    return step


@dataclasses.dataclass(frozen=True)
class _Identity:
    """A value compared and hashed by its identity alone, whatever its own ``__eq__`` says:
    ``_Identity(id(v), v)`` holds ``v``, so the id is not reused while it is a key."""
    id: int
    value: Any = dataclasses.field(compare=False)


_NUMBERS = (type(None), bool, int, float, complex, str, bytes)


def _program_key(value: Any) -> Any:
    """A hashable value, equal for two values that compute the same thing (what the
    program ``jax.jit`` traces from a net, loss and optimizer depends on).

    A function is its code, its globals (by identity, and the values of those its code
    names), defaults, attributes and closure values, each compared so in turn: two
    ``optim.adam(1e-3)`` are equal, and unequal to ``optim.adam(2e-3)``. Numbers, strings,
    dtypes and arrays compare by type and value (floats by their bits); containers and
    NamedTuples by type and entries; methods and ``functools.partial`` by their parts;
    anything else by identity. A container or function met again is a reference to its first
    visit (as in pickle), so a closure that holds its own function ends.
    """
    visits: dict[int, int] = {}  # id of a container or function -> its visit number
    held = []  # what those ids belong to, alive until the walk ends (no id is reused)

    def walk(v: Any) -> Any:
        kind = type(v)
        if kind in _NUMBERS:
            return kind, v.hex() if kind is float else v
        if isinstance(v, np.ndarray | np.generic):
            return kind, v.dtype.str, v.shape, v.tobytes()
        if isinstance(v, np.dtype):
            return kind, v.str
        if id(v) in visits:
            return "again", visits[id(v)]
        visits[id(v)] = len(held)
        held.append(v)
        if kind in (tuple, list) or isinstance(v, tuple):  # NamedTuples by their type
            return kind, tuple(map(walk, v))
        if kind is dict:
            return kind, tuple((walk(k), walk(item)) for k, item in v.items())
        if kind in (set, frozenset):
            return kind, frozenset(map(walk, v))
        if kind is types.FunctionType:
            return (kind, v.__code__, _Identity(id(v.__globals__), v.__globals__),
                    walk(_globals_read(v)), walk(v.__defaults__), walk(v.__kwdefaults__),
                    walk(v.__dict__), walk(v.__closure__))
        if kind is types.CellType:  # a variable a closure holds
            try:
                contents = v.cell_contents
            except ValueError:  # not assigned yet
                return kind, None
            return kind, walk(contents)
        if kind is types.MethodType:
            return kind, walk(v.__func__), walk(v.__self__)
        if kind is functools.partial:
            return kind, walk(v.func), walk(v.args), walk(v.keywords)
        return _Identity(id(v), v)

    return walk(value)


def _global_names(code: types.CodeType) -> set[str]:
    """The names ``code`` and the functions and comprehensions written inside it look up."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _globals_read(function: types.FunctionType) -> dict[str, Any]:
    """The module globals ``function``'s code names, with their values now: a constant or
    helper function changed between two fits (at a notebook's prompt) is another program,
    not the one traced with the old value."""
    found = function.__globals__
    return {name: found[name] for name in sorted(_global_names(function.__code__))
            if name in found}


@dataclasses.dataclass(frozen=True)
class _Program:
    """A net, loss and optimizer as the compiled-epoch cache's key: equal (and hashed) by
    their ``_program_key`` alone, so an equal program is compiled once."""
    key: Any
    parts: tuple = dataclasses.field(compare=False)


@functools.lru_cache(maxsize=32)
def _compiled_epoch(program: _Program, full: int, size: int, rest: int,
                    threshold: float | None) -> Callable[..., tuple]:
    """The jitted epoch for this program and batching, built once. ``threshold``: as
    ``train.accuracy_threshold``; with one, each step's ``train.batch_accuracy`` comes
    back beside its loss."""
    jax, jnp = _jax()
    net, loss, optimizer = program.parts
    pass_fn, update = forward_backward_fn(net, loss, checked=False), optimizer.update

    def body(carry, batch):
        params, opt_state, model_state = carry
        x, y, key = batch
        value, grads, model_state, pred = pass_fn(params, x, y, key, model_state)
        right = None if threshold is None else batch_accuracy(pred, y, threshold)
        params, opt_state = update(grads, opt_state, params)
        return (params, opt_state, model_state), (value, right)

    @jax.jit
    def epoch(params, opt_state, model_state, x, y, order, keys):
        chosen = order[: full * size].reshape(full, size)
        carry, measured = jax.lax.scan(body, (params, opt_state, model_state),
                                       (x[chosen], y[chosen],
                                        None if keys is None else keys[:full]))
        if rest:
            tail = order[full * size:]
            carry, last = body(carry, (x[tail], y[tail], None if keys is None else keys[full]))
            measured = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]]),
                                              measured, last)
        return carry, measured

    return epoch


def epoch_runner(config: Config) -> Callable[[TrainState], TrainState]:
    """``run(state) -> state``: one epoch, compiled, equal to ``train.run_epoch`` up to rounding."""
    _, jnp = _jax()
    n, size = len(config.x), config.batch_size
    full = n // size
    rest = 0 if config.drop_last else n - full * size
    parts = (config.net, config.loss, config.optimizer)
    epoch = _compiled_epoch(_Program(_program_key(parts), parts), full, size, rest,
                            accuracy_threshold(config.loss, config.y))

    with _x64():
        x_dev, y_dev = jnp.asarray(config.x), jnp.asarray(config.y)

    def run(state: TrainState) -> TrainState:
        next_key, k_order, k_layers = epoch_keys(state.key)
        order = random.permutation(k_order, n) if config.shuffle else np.arange(n)
        # a key per step for the layers that draw (dropout), split as the numpy path splits
        keys = (np.stack(random.split(k_layers, full + bool(rest)))
                if "key" in config.net.takes else None)
        try:
            with _x64(), _named_tracer_errors("fit(runner=jit.epoch_runner)"):
                # numpy state goes in as it is: jit moves it faster than to_device
                (params, opt_state, model_state), (losses, right) = epoch(
                    state.params, state.opt_state, state.model_state, x_dev, y_dev, order, keys)
                losses = np.asarray(losses, dtype=np.float64)
        except ArrayTypeError:  # jax's rules, said in funcnet's terms: numpy would pass
            raise
        except Exception as cause:  # what the numpy path's checks name (a user's update that
            # changed params' structure, a dpred of the wrong shape): its checked replay does
            raise replay_failed_epoch(config, state, cause) from None
        params = to_numpy(params)
        # the numpy path's test: a loss, or the params after the last update, not finite;
        # and one scalar loss per step (a loss whose value is not 0-d stacks into more)
        if (losses.shape != (full + bool(rest),) or not np.all(np.isfinite(losses))
                or not tree.all_finite(params)):
            raise replay_failed_epoch(config, state)
        accuracies = () if right is None else list(np.asarray(right, dtype=np.float64))
        return finish_epoch(config, state, EpochResult(
            params, to_numpy(opt_state), to_numpy(model_state),
            state.step + len(losses), list(losses), next_key, accuracies))

    return run
