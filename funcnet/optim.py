"""Optimizers and learning-rate schedules, as pure functions over pytrees (no optax).

Every optimizer is a constructor that closes over its hyperparameters and
returns ``Optimizer(init, update, kernel)``, ``kernel`` being ``update`` unchecked:

    init(params)                 -> state
    update(grads, state, params) -> (new_params, new_state)

``params`` is a pytree of float arrays; ``grads`` has exactly its structure,
shapes and dtypes. ``state`` is a NamedTuple of arrays only (it saves to an
``.npz`` as it is): ``count``, a 0-d int64 of the updates done, then a tree like
params per moving quantity (a velocity, a sum of squares). Nothing is mutated;
``update`` returns read-only trees in params' dtypes, also under ``jax.jit``.

An optimizer is its rule at one leaf, ``rule(W, g, *slots, lr, t) -> (W, *slots)``,
as the textbook ("Deep Learning from Scratch", ch. 6) writes it: ``slots`` from the
state's trees, ``t`` counting this update from 1. ``learning_rate`` is a
number >= 0 or a schedule, a function of the step (updates done before this one)
giving the rate (``constant``, ``step_decay``, ``exponential``, ``cosine``).
Every constructor takes the same keyword options, chained around the rule so:

1. ``max_grad_norm``: ``g <- g * min(1, max_grad_norm / norm(g))``, the global norm.
2. ``weight_decay`` with ``decoupled=False`` (L2): ``g <- g + weight_decay W``.
3. The optimizer's own rule.
4. ``weight_decay`` with ``decoupled=True`` (AdamW): ``W <- W - lr weight_decay W``
   with ``W`` the params before this update.

Weight decay touches the leaves ``decay_mask(path, leaf)`` selects, by default those
with ``ndim >= 2`` (weights, not biases). Bad hyperparameters raise ``ArgumentError``
when the optimizer or schedule is made.

>>> opt = sgd(0.1)
>>> w = np.array([1.0, -2.0])
>>> state = opt.init(w)
>>> w, state = opt.update(2 * w, state, w)    # the gradient of sum(w ** 2)
>>> w, int(state.count)
(array([ 0.8, -1.6]), 1)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from funcnet import tree
from funcnet._kernel import unchecked
from funcnet._xp import namespace
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    StructureError,
    describe,
    is_array,
    require_positive_int,
    require_probability,
)

__all__ = [
    "Optimizer", "OptimizerKernel", "math_of", "SgdState", "MomentumState", "NesterovState",
    "AdagradState", "RmspropState", "AdamState", "sgd", "momentum", "nesterov", "adagrad",
    "rmsprop", "adam", "constant", "step_decay", "exponential", "cosine", "CONSTRUCTORS",
    "SCHEDULES",
]

Tree = Any
Schedule = Callable[[int], float]


class OptimizerKernel(NamedTuple):
    """An optimizer's math apart from its checks: ``update`` is the rule mapped over the
    trees, nothing checked, sealed or cast; ``entry`` the checked ``update`` built around
    it (see ``math_of``)."""
    update: Callable[[Tree, Any, Tree], tuple[Tree, Any]]
    entry: Callable[[Tree, Any, Tree], tuple[Tree, Any]]


class Optimizer(NamedTuple):
    """An optimizer: ``init(params) -> state``, ``update(grads, state, params)``, which
    checks its arguments and returns read-only trees. ``kernel``: the same update
    unchecked, for a caller that checks once and tests the result (``fit``, per epoch);
    ``Optimizer(init, update)`` from two plain functions has none."""
    init: Callable[[Tree], Any]
    update: Callable[[Tree, Any, Tree], tuple[Tree, Any]]
    kernel: OptimizerKernel | None = None


def math_of(optimizer: Optimizer) -> Callable[[Tree, Any, Tree], tuple[Tree, Any]]:
    """The unchecked update of an optimizer: its kernel's while ``update`` is still the
    checked entry built from it (a replaced ``update`` is what runs), else ``update``."""
    kernel = optimizer.kernel
    if kernel is None:
        return optimizer.update
    return unchecked((optimizer.update,), (kernel.update,), (kernel.entry,))[0]


class SgdState(NamedTuple):
    """``count``: updates done (0-d int64)."""
    count: Any


class MomentumState(NamedTuple):
    """``count`` and the velocity ``v`` (params' structure)."""
    count: Any
    velocity: Tree


class NesterovState(NamedTuple):
    """``count`` and the velocity ``v`` (params' structure)."""
    count: Any
    velocity: Tree


class AdagradState(NamedTuple):
    """``count`` and ``h``, the running sum of squared gradients."""
    count: Any
    sum_sq: Tree


class RmspropState(NamedTuple):
    """``count`` and ``h``, the moving average of squared gradients."""
    count: Any
    mean_sq: Tree


class AdamState(NamedTuple):
    """``count`` and the moving averages of the gradient (``mu``) and its square (``nu``)."""
    count: Any
    mu: Tree
    nu: Tree


# --- argument checks (messages worded once, here) ---------------------------------------
_CONCRETE = (int, float, np.number, np.ndarray)  # values known now; a jax tracer is not


def _real(value: Any) -> float | None:
    """``value`` as a float if it is one concrete real number (not a bool), else None."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, _CONCRETE) or np.ndim(value):
        return None
    return float(value) if np.asarray(value).dtype.kind in "iuf" else None


def _number(who: str, name: str, value: Any, *, positive: bool = False,
            at_most_one: bool = False) -> float:
    """``value`` as a float, or ``ArgumentError`` unless finite and >= 0 (> 0; in (0, 1])."""
    x = _real(value)
    ok = x is not None and math.isfinite(x) and (x > 0 if positive or at_most_one else x >= 0)
    if not ok or (at_most_one and x > 1):
        expected = ("a number in (0, 1]" if at_most_one else "a finite number > 0" if positive
                    else "a finite number >= 0")
        raise ArgumentError(f"{who}: {name} must be {expected}, got {describe(value)}")
    return x


def _rate_at(who: str, learning_rate: float | Schedule, count: Any) -> Any:
    """The learning rate of the update after ``count`` updates."""
    if not callable(learning_rate):
        return learning_rate
    step = int(count) if isinstance(count, _CONCRETE) else count
    value = learning_rate(step)
    if not isinstance(value, _CONCRETE) and hasattr(value, "dtype") and np.ndim(value) == 0:
        return value  # a jax tracer: its value is known only when the code runs
    x = _real(value)
    if x is None or not math.isfinite(x) or x < 0:
        raise ArgumentError(f"{who}: the learning_rate schedule gave {describe(value)} at step "
                            f"{step}; expected a finite number >= 0")
    return x


def _step(who: str, step: Any) -> Any:
    """A concrete step as an int (or ``ArgumentError``); a jax tracer as it is."""
    if not isinstance(step, _CONCRETE):
        return step
    ok = (not isinstance(step, bool | np.bool_) and np.ndim(step) == 0
          and np.asarray(step).dtype.kind in "iu")
    if not ok or int(step) < 0:
        raise ArgumentError(f"{who}: step must be an integer >= 0, got {describe(step)}")
    return int(step)


def _check_params(who: str, params: Tree) -> None:
    """Every leaf of ``params`` must be a float array."""
    for i, leaf in enumerate(tree.leaves(params)):
        if not is_array(leaf) or np.dtype(leaf.dtype).kind != "f":
            raise ArrayTypeError(f"{who}: params at {tree.leaf_path(params, i, 'params')} must "
                                 f"be a float array, got {describe(leaf)}")


def _check(who: str, name: str, state_type: type, grads: Tree, state: Any,
           params: Tree) -> None:
    """Every check of ``update``'s arguments, in order, naming what does not fit and where."""
    _check_params(who, params)
    if type(state) is not state_type:
        raise StructureError(f"{who}: expected state to be a {state_type.__name__} (made by "
                             f"{name}.init), got {describe(state)}")
    count = state.count
    if not (is_array(count) and np.ndim(count) == 0 and np.dtype(count.dtype).kind in "iu"):
        raise ArrayTypeError(f"{who}: expected state.count to be a 0-d integer array, "
                             f"got {describe(count)}")
    for label, other in zip(("grads", *(f"state.{f}" for f in state_type._fields[1:])),
                            (grads, *state[1:]), strict=True):
        tree.assert_same_structure(params, other, who=who, actual_name=label)
        for i, o in enumerate(tree.leaves(other)):
            if not (hasattr(o, "shape") and hasattr(o, "dtype")):  # numpy scalars pass
                raise ArrayTypeError(f"{who}: {label} at {tree.leaf_path(params, i, 'params')} "
                                     f"must be an array, got {describe(o)}")
        tree.assert_same_shapes(params, other, who=who, actual_name=label, check_dtype=True)


def _sealed(params: Tree, new: Tree) -> Tree:
    """``new``, a tree like params, as read-only arrays of params' dtypes (a 0-d result
    stays an array; a traced rate's upcast is undone)."""
    return tree.freeze(_lift(lambda W, n: namespace(W).asarray(n, dtype=W.dtype), params, new),
                       copy=False)


def _lift(f: Callable[..., Any], node: Any, *others: Any) -> Any:
    """``f`` at every leaf of ``node``, with the leaves of ``others`` at the same places:
    trees that were checked to have ``node``'s structure (dicts, OrderedDicts, tuples, lists
    and NamedTuples; anything else is a leaf)."""
    kind = type(node)
    if kind is dict:
        return {k: _lift(f, node[k], *[o[k] for o in others]) for k in node}
    if kind is tuple or kind is list:
        return kind([_lift(f, *nodes) for nodes in zip(node, *others, strict=True)])
    if isinstance(node, tuple):  # a NamedTuple
        return kind(*[_lift(f, *nodes) for nodes in zip(node, *others, strict=True)])
    if isinstance(node, dict):  # an OrderedDict: rebuilt from pairs, as dm-tree does
        return kind((k, _lift(f, node[k], *[o[k] for o in others])) for k in node)
    return f(node, *others)


def _clip(grads: Tree, max_norm: float) -> Tree:
    """``grads`` times ``min(1, max_norm / global_norm)``; ``grads`` itself when below."""
    norm = tree.global_norm(grads)
    if not isinstance(norm, _CONCRETE):  # traced: the factor is computed when the code runs
        return tree.scale(max_norm / namespace(norm).maximum(norm, max_norm), grads)
    factor = max_norm / max(float(norm), max_norm)
    return grads if factor == 1.0 else tree.scale(factor, grads)


def _optimizer(name: str, learning_rate: Any, state_type: type, rule: Callable[..., tuple], *,
               weight_decay: float = 0.0, decoupled: bool = False,
               decay_mask: Callable | None = None, max_grad_norm: float | None = None) -> Optimizer:
    """The Optimizer of ``rule`` (see the module docstring): the kernel runs the options and
    the rule over the trees; ``update`` checks, runs the kernel and seals what it built."""
    rate = learning_rate if callable(learning_rate) else _real(learning_rate)
    if rate is None or not (callable(rate) or math.isfinite(rate) and rate >= 0):
        raise ArgumentError(f"{name}: learning_rate must be a finite number >= 0 or a schedule "
                            f"(a function of the step), got {describe(learning_rate)}")
    weight_decay = _number(name, "weight_decay", weight_decay)
    if not isinstance(decoupled, bool):
        raise ArgumentError(f"{name}: decoupled must be True or False, got {describe(decoupled)}")
    if decay_mask is not None and not callable(decay_mask):
        raise ArgumentError(f"{name}: decay_mask must be a function (path, leaf) -> bool or "
                            f"None, got {describe(decay_mask)}")
    if max_grad_norm is not None:
        max_grad_norm = _number(name, "max_grad_norm", max_grad_norm, positive=True)
    who, n_trees = f"{name}.update", len(state_type._fields)  # params, then the slot trees

    def init(params):
        _check_params(f"{name}.init", params)
        slots = (tree.zeros_like(params) for _ in range(n_trees - 1))
        return tree.freeze(state_type(np.zeros((), np.int64), *slots), copy=False)

    def decays(params):
        """Which leaves weight decay touches: a tree of bools like params."""
        flags = []
        for path, W in tree.flatten_with_paths(params):
            chosen = decay_mask(path, W) if decay_mask else W.ndim >= 2  # weights, not biases
            if not isinstance(chosen, bool | np.bool_):
                raise ArgumentError(f"{name}: decay_mask must return True or False, got "
                                    f"{describe(chosen)} for {tree.path_str(path, 'params')}")
            flags.append(bool(chosen))
        return tree.unflatten_as(params, flags)

    def kernel(grads, state, params):
        count = state.count
        lr = _rate_at(name, rate, count)
        t = int(count) + 1 if isinstance(count, _CONCRETE) else count + 1
        if max_grad_norm is not None:
            grads = _clip(grads, max_grad_norm)
        if weight_decay:
            mask = decays(params)
        if weight_decay and not decoupled:
            grads = _lift(lambda g, W, d: g + weight_decay * W if d else g, grads, params, mask)
        new = _lift(functools.partial(rule, lr=lr, t=t), params, grads, *state[1:])
        if weight_decay and decoupled:
            new = _lift(lambda W, d, n: (n[0] - lr * weight_decay * W, *n[1:]) if d else n,
                        params, mask, new)

        def tree_at(i):  # the new params (0) or a slot tree; a 0-d leaf's numpy scalar as 0-d
            return _lift(lambda W, n: n[i] if is_array(n[i]) else np.asarray(n[i]), params, new)

        count = np.array(t, np.int64) if isinstance(t, int) else t
        return tree_at(0), state_type(count, *(tree_at(i) for i in range(1, n_trees)))

    def update(grads, state, params):
        _check(who, name, state_type, grads, state, params)
        new_params, (count, *slots) = kernel(grads, state, params)
        return _sealed(params, new_params), state_type(
            tree.freeze(count, copy=False), *(_sealed(params, s) for s in slots))

    init.__qualname__ = init.__name__ = f"{name}.init"
    update.__qualname__ = update.__name__ = f"{name}.update"
    return Optimizer(init, update, OptimizerKernel(kernel, update))


def sgd(learning_rate: Any, **options: Any) -> Optimizer:
    """Stochastic gradient descent, ``W <- W - lr g``; its state is ``SgdState(count)``."""

    def rule(W, g, lr, t):
        return (W - lr * g,)

    return _optimizer("sgd", learning_rate, SgdState, rule, **options)


def momentum(learning_rate: Any, momentum: float = 0.9, **options: Any) -> Optimizer:
    """Momentum SGD, ``v <- m v - lr g; W <- W + v`` with ``m`` = ``momentum`` in [0, 1)
    and ``v`` from 0; its state is ``MomentumState(count, velocity)``."""
    m = require_probability("momentum", "momentum", momentum, open_right=True)

    def rule(W, g, v, lr, t):
        v = m * v - lr * g
        return W + v, v

    return _optimizer("momentum", learning_rate, MomentumState, rule, **options)


def nesterov(learning_rate: Any, momentum: float = 0.9, **options: Any) -> Optimizer:
    """Nesterov momentum as the textbook's ``common/optimizer.py`` writes it, ``W`` moving
    with the velocity just updated (Bengio et al. 2012, eq. 7, use the previous one), ``m`` =
    ``momentum`` in [0, 1); its state is ``NesterovState(count, velocity)``."""
    m = require_probability("nesterov", "momentum", momentum, open_right=True)

    def rule(W, g, v, lr, t):
        v = m * v - lr * g
        return W + m * m * v - (1 + m) * lr * g, v

    return _optimizer("nesterov", learning_rate, NesterovState, rule, **options)


def adagrad(learning_rate: Any, eps: float = 1e-7, **options: Any) -> Optimizer:
    """AdaGrad, ``h`` the running sum of ``g*g`` and ``eps`` > 0 (the textbook's 1e-7); its
    state is ``AdagradState(count, sum_sq)``."""
    eps = _number("adagrad", "eps", eps, positive=True)

    def rule(W, g, h, lr, t):
        h = h + g * g
        return W - lr * g / (namespace(h).sqrt(h) + eps), h

    return _optimizer("adagrad", learning_rate, AdagradState, rule, **options)


def rmsprop(learning_rate: Any, decay: float = 0.99, eps: float = 1e-7,
            **options: Any) -> Optimizer:
    """RMSProp, ``h`` the moving average of ``g*g`` keeping ``decay`` (in [0, 1)) of itself,
    ``eps`` > 0 (the textbook's 1e-7); its state is ``RmspropState(count, mean_sq)``."""
    decay = require_probability("rmsprop", "decay", decay, open_right=True)
    eps = _number("rmsprop", "eps", eps, positive=True)

    def rule(W, g, h, lr, t):
        h = decay * h + (1 - decay) * g * g
        return W - lr * g / (namespace(h).sqrt(h) + eps), h

    return _optimizer("rmsprop", learning_rate, RmspropState, rule, **options)


def adam(learning_rate: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         **options: Any) -> Optimizer:
    """Adam with Kingma & Ba's bias correction (AdamW with ``decoupled=True``), ``b1``, ``b2``
    in [0, 1), ``eps`` > 0; its state is ``AdamState(count, mu, nu)``. The textbook folds both
    corrections into ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``, ``eps`` entering elsewhere."""
    b1 = require_probability("adam", "b1", b1, open_right=True)
    b2 = require_probability("adam", "b2", b2, open_right=True)
    eps = _number("adam", "eps", eps, positive=True)

    def rule(W, g, mu, nu, lr, t):
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g * g
        mu_hat = mu / (1 - b1**t)
        nu_hat = nu / (1 - b2**t)
        return W - lr * mu_hat / (namespace(nu_hat).sqrt(nu_hat) + eps), mu, nu

    return _optimizer("adam", learning_rate, AdamState, rule, **options)


# --- schedules: a bad argument, or later a bad step, raises ArgumentError ------------------


def constant(value: float) -> Schedule:
    """The schedule ``step -> value``, for a finite ``value`` >= 0."""
    value = _number("constant", "value", value)

    def schedule(step):
        _step("constant", step)
        return value

    return schedule


def step_decay(initial: float, factor: float, every: int) -> Schedule:
    """``step -> initial * factor ** (step // every)``, with ``factor`` in (0, 1].

    >>> [step_decay(1.0, 0.5, 2)(s) for s in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """
    initial = _number("step_decay", "initial", initial)
    factor = _number("step_decay", "factor", factor, at_most_one=True)
    every = require_positive_int("step_decay", "every", every)
    return lambda step: initial * factor ** (_step("step_decay", step) // every)


def exponential(initial: float, decay_rate: float, decay_steps: float) -> Schedule:
    """``step -> initial * decay_rate ** (step / decay_steps)``, ``decay_rate`` in (0, 1]."""
    initial = _number("exponential", "initial", initial)
    decay_rate = _number("exponential", "decay_rate", decay_rate, at_most_one=True)
    decay_steps = _number("exponential", "decay_steps", decay_steps, positive=True)
    return lambda step: initial * decay_rate ** (_step("exponential", step) / decay_steps)


def cosine(initial: float, total_steps: int, final: float = 0.0) -> Schedule:
    """Half a cosine from ``initial`` (step 0) to ``final`` (step ``total_steps`` and after):
    ``final + (initial - final) (1 + cos(pi min(step, total_steps) / total_steps)) / 2``."""
    initial = _number("cosine", "initial", initial)
    final = _number("cosine", "final", final)
    total = require_positive_int("cosine", "total_steps", total_steps)

    def schedule(step):
        step = _step("cosine", step)
        xp = math if isinstance(step, int) else namespace(step)  # a traced step under jit
        low = min(step, total) if isinstance(step, int) else xp.minimum(step, total)
        return final + (initial - final) * 0.5 * (1 + xp.cos(math.pi * low / total))

    return schedule


#: Every public optimizer constructor, by name. The test registry must cover each one.
CONSTRUCTORS = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad,
                "rmsprop": rmsprop, "adam": adam}

#: Every schedule constructor, by name. The test registry must cover each one.
SCHEDULES = {"constant": constant, "step_decay": step_decay, "exponential": exponential,
             "cosine": cosine}
