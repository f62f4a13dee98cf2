"""The jit path: funcnet's hand-written forward, backward and update, compiled by ``jax.jit``.

Nothing here differentiates anything: the step is ``train.gradient_fn`` (the
layers' and the loss's kernels: forward, loss, backward) followed by
``optimizer.update`` — the very functions the numpy path runs — traced with
jax arrays and compiled once. ``jax.grad`` is never called.

- ``jit_step(net, loss, optimizer)`` compiles one step.
- ``epoch_runner(config)`` runs a whole epoch as ONE compiled call: the
  minibatches (the same permutation the numpy path draws from the state's
  key) are gathered on the device and the steps run inside ``jax.lax.scan``;
  a smaller last batch gets one more compiled step. ``train.fit(...,
  runner=jit.epoch_runner)`` runs it, so history, validation, snapshots,
  checkpoints and resume behave exactly as on the numpy path, and a NaN or inf
  is reported as the numpy path reports it (the epoch is replayed there). The
  training accuracy of a classification loss is measured inside the scan from
  each step's own predictions, as the numpy path measures it. The compiled
  epoch is kept for the same net, loss, optimizer and batching (the 32
  most recent), so a second ``fit`` does not compile again.
- It runs on whatever device jax uses by default (the CPU, or a GPU where one
  is present) without code changes.
- Every call here runs in jax's x64 mode, whatever the global setting
  (``jax_enable_x64``): funcnet's state holds 64-bit integers (the
  optimizer's step count) and float64 params must stay float64. float32
  params and data stay float32 in that mode.

Layers that draw random numbers (dropout) take their keys on the host, so a
net containing one is refused here with a clear error; train it on the numpy
path.

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
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from funcnet import random, tree
from funcnet.errors import ArgumentError
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
    """jax's x64 mode for this block, unless it is on already.

    The jit path always traces, runs and converts in this mode. With it off, jax
    truncates 64-bit integers to 32 bits: the optimizer's int64 step count would come
    back as int32 (a warning, a second trace, and a ``lax.scan`` carry whose dtype
    changes, which jax refuses), and float64 params would silently run in float32.
    """
    jax, _ = _jax()
    if jax.config.jax_enable_x64:
        return contextlib.nullcontext()
    return jax.enable_x64(True)


def to_device(value: Any) -> Any:
    """Every array leaf as a jax array on the default device (dtype kept, x64 as needed)."""
    jax, jnp = _jax()
    with _x64():
        return tree.map(lambda a: jnp.asarray(a) if hasattr(a, "shape") else a, value)


def to_numpy(value: Any) -> Any:
    """Every array leaf back as a frozen numpy array."""
    return tree.freeze(tree.map(lambda a: np.asarray(a) if hasattr(a, "shape") else a, value),
                       copy=True)


def _refuse_keyed(net: Any, who: str) -> None:
    if "key" in net.takes:
        raise ArgumentError(f"{who}: this network has a layer that draws random numbers "
                            f"(dropout), whose keys live on the host; train it with the "
                            f"numpy runner (leave fit's runner out)")


def jit_step(net: Any, loss: Any, optimizer: Any) -> Callable[..., tuple]:
    """A compiled ``step(params, opt_state, x, y, model_state=()) -> (params, opt_state,
    model_state, loss)``; pass arrays from ``to_device``."""
    jax, _ = _jax()
    _refuse_keyed(net, "jit_step")
    grad_fn = gradient_fn(net, loss, checked=False)

    @jax.jit
    def compiled(params, opt_state, x, y, model_state):
        value, grads, model_state = grad_fn(params, x, y, None, model_state)
        params, opt_state = optimizer.update(grads, opt_state, params)
        return params, opt_state, model_state, value

    def step(params, opt_state, x, y, model_state=()):
        if jax.config.jax_enable_x64:  # already on: nothing to switch
            return compiled(params, opt_state, x, y, model_state)
        with jax.enable_x64(True):
            return compiled(params, opt_state, x, y, model_state)

    return step


@functools.lru_cache(maxsize=32)
def _compiled_epoch(net: Any, loss: Any, optimizer: Any, full: int, size: int,
                    rest: int, threshold: float | None) -> Callable[..., tuple]:
    """The jitted epoch for this model and batching, built once: a second ``fit`` of the
    same net, loss and optimizer reuses jax's compiled program instead of compiling anew
    (layers, losses and optimizers are tuples of functions, equal only to themselves).

    ``threshold``: as ``train.accuracy_threshold``; with one, each step's
    ``train.batch_accuracy`` comes back beside its loss.
    """
    jax, jnp = _jax()
    pass_fn = forward_backward_fn(net, loss, checked=False)

    def body(carry, batch):
        params, opt_state, model_state = carry
        x, y = batch
        value, grads, model_state, pred = pass_fn(params, x, y, None, model_state)
        right = None if threshold is None else batch_accuracy(pred, y, threshold)
        params, opt_state = optimizer.update(grads, opt_state, params)
        return (params, opt_state, model_state), (value, right)

    @jax.jit
    def epoch(params, opt_state, model_state, x, y, order):
        chosen = order[: full * size].reshape(full, size)
        carry, measured = jax.lax.scan(body, (params, opt_state, model_state),
                                       (x[chosen], y[chosen]))
        if rest:
            tail = order[full * size:]
            carry, last = body(carry, (x[tail], y[tail]))
            measured = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b[None]]),
                                              measured, last)
        return carry, measured

    return epoch


def epoch_runner(config: Config) -> Callable[[TrainState], TrainState]:
    """``run(state) -> state``: one epoch, compiled, equal to ``train.run_epoch`` up to rounding."""
    jax, jnp = _jax()
    net, loss, optimizer = config.net, config.loss, config.optimizer
    _refuse_keyed(net, "fit(runner=jit.epoch_runner)")
    n, size = len(config.x), config.batch_size
    full = n // size
    rest = 0 if config.drop_last else n - full * size
    threshold = accuracy_threshold(loss, config.y)
    try:
        hash((net, loss, optimizer))
    except TypeError:  # a part that cannot be a cache key: compiled for this fit alone
        epoch = _compiled_epoch.__wrapped__(net, loss, optimizer, full, size, rest, threshold)
    else:
        epoch = _compiled_epoch(net, loss, optimizer, full, size, rest, threshold)

    with _x64():
        x_dev, y_dev = jnp.asarray(config.x), jnp.asarray(config.y)

    def run(state: TrainState) -> TrainState:
        next_key, k_order, _ = epoch_keys(state.key)
        order = random.permutation(k_order, n) if config.shuffle else np.arange(n)
        with _x64():  # numpy state goes in as it is: jit moves it faster than to_device
            (params, opt_state, model_state), (losses, right) = epoch(
                state.params, state.opt_state, state.model_state, x_dev, y_dev, order)
            losses = np.asarray(losses, dtype=np.float64)
        if not np.all(np.isfinite(losses)):
            raise replay_failed_epoch(config, state)
        accuracies = () if right is None else list(np.asarray(right, dtype=np.float64))
        return finish_epoch(config, state, EpochResult(
            to_numpy(params), to_numpy(opt_state), to_numpy(model_state),
            state.step + len(losses), list(losses), next_key, accuracies))

    return run
