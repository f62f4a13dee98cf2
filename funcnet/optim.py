"""Optimizers and learning-rate schedules, as pure functions over pytrees (no optax).

Every optimizer is a constructor that closes over its hyperparameters and
returns ``Optimizer(init, update)``:

    init(params)                 -> state
    update(grads, state, params) -> (new_params, new_state)

- ``params`` is a pytree of float arrays; ``grads`` has exactly its structure,
  shapes and dtypes. ``state`` is a NamedTuple of arrays only (it saves to an
  ``.npz`` as it is): ``count``, a 0-d int64 holding the number of updates
  done, then one tree per moving quantity (a velocity, a sum of squares),
  each with exactly params' structure, shapes and dtypes.
- Nothing is mutated: not ``grads``, ``state`` nor ``params``. The new params
  and the new state come back frozen (read-only), in the dtype of params.
  (One internal exception: ``train.run_epoch``, which drops each step's
  gradients, calls ``update.funcnet_owning_grads``, with which ``sgd`` may
  write the new params into gradient arrays that nothing else holds.)
- Leaf math goes through the leaves' namespace, so ``update`` also runs on
  jax arrays and under ``jax.jit``.

``learning_rate`` is a number or a schedule: a function of the step (the
number of updates done before this one, so 0 on the first) giving the rate;
``constant``, ``step_decay``, ``exponential`` and ``cosine`` build them.

Every constructor takes the same keyword options, applied in this order:

1. ``max_grad_norm``: clip by the global norm of the whole gradient tree,
   ``g <- g * min(1, max_grad_norm / norm(g))``.
2. ``weight_decay`` with ``decoupled=False`` (L2): ``g <- g + weight_decay W``.
3. The optimizer's own rule, written as the textbook ("Deep Learning from
   Scratch", ch. 6) writes it. The descent sign lives in one helper,
   ``_descend(a, b) = a - b``, so ``W <- W - lr g`` reads ``_descend(W, lr * g)``.
4. ``weight_decay`` with ``decoupled=True`` (AdamW): ``W <- W - lr weight_decay W``
   with ``W`` the params before this update.

Weight decay touches only the leaves ``decay_mask(path, leaf)`` selects;
by default those with ``ndim >= 2`` (weights, not biases).

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
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from funcnet import tree
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
    "Optimizer",
    "SgdState",
    "MomentumState",
    "NesterovState",
    "AdagradState",
    "RmspropState",
    "AdamState",
    "sgd",
    "momentum",
    "nesterov",
    "adagrad",
    "rmsprop",
    "adam",
    "constant",
    "step_decay",
    "exponential",
    "cosine",
    "CONSTRUCTORS",
    "SCHEDULES",
]

Tree = Any
Schedule = Callable[[int], float]


class Optimizer(NamedTuple):
    """An optimizer: ``init(params) -> state``, ``update(grads, state, params)``."""

    init: Callable[[Tree], Any]
    update: Callable[[Tree, Any, Tree], tuple[Tree, Any]]


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


def _is_concrete(value: Any) -> bool:
    """True for a value known now (a number, a numpy array); False for a jax tracer."""
    return isinstance(value, int | float | np.number | np.ndarray)


def _real(value: Any) -> float | None:
    """``value`` as a float if it is one concrete real number (not a bool), else None."""
    if isinstance(value, bool | np.bool_) or not _is_concrete(value) or np.ndim(value) != 0:
        return None
    return float(value) if np.asarray(value).dtype.kind in "iuf" else None


def _number(who: str, name: str, value: Any, *, positive: bool = False,
            at_most_one: bool = False) -> float:
    """``value`` as a float, or ``ArgumentError`` unless finite and >= 0 (> 0; in (0, 1])."""
    x = _real(value)
    ok = x is not None and math.isfinite(x) and (x > 0 if positive or at_most_one else x >= 0)
    if not ok or (at_most_one and x > 1):
        if at_most_one:
            expected = "a number in (0, 1]"
        else:
            expected = "a finite number > 0" if positive else "a finite number >= 0"
        raise ArgumentError(f"{who}: {name} must be {expected}, got {describe(value)}")
    return x


def _learning_rate(who: str, value: Any) -> float | Schedule:
    """A non-negative number as a float, or a schedule as it is."""
    if callable(value):
        return value
    x = _real(value)
    if x is None or not math.isfinite(x) or x < 0:
        raise ArgumentError(f"{who}: learning_rate must be a finite number >= 0 or a schedule "
                            f"(a function of the step), got {describe(value)}")
    return x


def _rate_at(who: str, learning_rate: float | Schedule, count: Any) -> Any:
    """The learning rate of the update after ``count`` updates."""
    if type(learning_rate) is float or not callable(learning_rate):
        return learning_rate
    step = int(count) if _is_concrete(count) else count
    value = learning_rate(step)
    if not _is_concrete(value) and hasattr(value, "dtype") and np.ndim(value) == 0:
        return value  # a jax tracer: its value is known only when the code runs
    x = _real(value)
    if x is None or not math.isfinite(x) or x < 0:
        raise ArgumentError(f"{who}: the learning_rate schedule gave {describe(value)} at step "
                            f"{step}; expected a finite number >= 0")
    return x


def _step(who: str, step: Any) -> Any:
    """A concrete step as an int (or ``ArgumentError``); a jax tracer as it is."""
    if not _is_concrete(step):
        return step
    ok = (not isinstance(step, bool | np.bool_) and np.ndim(step) == 0
          and np.asarray(step).dtype.kind in "iu")
    if not ok or int(step) < 0:
        raise ArgumentError(f"{who}: step must be an integer >= 0, got {describe(step)}")
    return int(step)


def _param_leaves(who: str, params: Tree) -> list:
    """The leaves of ``params``, each checked to be a float array."""
    flat = tree.leaves(params)
    for i, leaf in enumerate(flat):
        if not is_array(leaf) or np.dtype(leaf.dtype).kind != "f":
            path = tree.flatten_with_paths(params)[i][0]
            raise ArrayTypeError(f"{who}: params at {tree.path_str(path, 'params')} must be a "
                                 f"float array, got {describe(leaf)}")
    return flat


def _leaves_like(who: str, params: Tree, flat: list, other: Tree, name: str) -> list:
    """The leaves of ``other``, which must match params in structure, shapes and dtypes.

    The paths (slow to build) are walked only to word an error.
    """
    tree.assert_same_structure(params, other, who=who, actual_name=name)
    others = tree.leaves(other)
    for i, (p, o) in enumerate(zip(flat, others, strict=True)):
        if not (hasattr(o, "shape") and hasattr(o, "dtype")):  # numpy scalars pass
            path = tree.flatten_with_paths(params)[i][0]
            raise ArrayTypeError(f"{who}: {name} at {tree.path_str(path, 'params')} must be an "
                                 f"array, got {describe(o)}")
        if o.shape != p.shape or o.dtype != p.dtype:
            tree.assert_same_shapes(params, other, who=who, actual_name=name, check_dtype=True)
    return others


def _slot_leaves(who: str, name: str, state: Any, state_type: type, params: Tree,
                 flat: list) -> list[list]:
    """The leaves of each of state's trees, after checking state against params."""
    if type(state) is not state_type:
        raise StructureError(f"{who}: expected state to be a {state_type.__name__} (made by "
                             f"{name}.init), got {describe(state)}")
    count = state.count
    if not (is_array(count) and np.ndim(count) == 0 and np.dtype(count.dtype).kind in "iu"):
        raise ArrayTypeError(f"{who}: expected state.count to be a 0-d integer array, "
                             f"got {describe(count)}")
    return [_leaves_like(who, params, flat, getattr(state, field), f"state.{field}")
            for field in state_type._fields[1:]]


# --- the machinery every optimizer shares --------------------------------------------------


def _descend(a: Any, b: Any) -> Any:
    """``a - b``: the one place where the descent sign is written."""
    return a - b


def _step_down(W: Any, lr: Any, g: Any, *, into: Any = None) -> Any:
    """``W - lr g`` (through ``_descend``); on large numpy arrays in a single buffer.

    The textbook writes ``W -= lr * dW`` into the weights; funcnet must leave
    ``W`` alone, and gets the same memory traffic by reusing ``lr * g``'s
    buffer for the result: a fresh one, or ``into`` (the gradient itself, when
    no one else can see it; see ``_private_leaves``). Below ``_WORTH_REUSING``
    elements the plain expression is faster (numpy's ``out=`` costs more than a
    small buffer).
    """
    if type(g) is np.ndarray and g.size >= _WORTH_REUSING and type(W) is np.ndarray:
        scaled = np.multiply(g, lr, out=into)
        return np.subtract(W, scaled, out=scaled)
    return _descend(W, lr * g)


def _references(g: Any) -> int:
    return sys.getrefcount(g)


def _private_leaves(flat_g: list) -> list[bool]:
    """Which gradient leaves nothing outside the update can see: numpy arrays, writeable,
    owning their memory (no view of something else), and held by no one but the grads
    tree and this list (the same count of references as a fresh array in that place)."""
    return [type(g) is np.ndarray and g.size >= _WORTH_REUSING and g.flags.writeable
            and g.base is None and _references(g) == _PRIVATE_REFERENCES for g in flat_g]


def _calibrate() -> int:
    """The count ``_references`` gives for a leaf that only a tree and ``flat_g`` hold,
    measured through the same code, so it holds on any Python version. Another holder
    (a variable, a cache, a second place in the tree) adds to it, and is never written."""
    grads = {"g": np.zeros(1)}
    flat_g = list(grads.values())
    return [_references(g) for g in flat_g][0]


_PRIVATE_REFERENCES = _calibrate()
#: Smaller arrays are not worth reusing: a fresh buffer of them costs next to nothing.
_WORTH_REUSING = 4096


def _new_leaf(W: Any, value: Any) -> Any:
    """A freshly computed leaf, sealed in place, as an array of W's dtype.

    ``asarray`` keeps a 0-d result an array (numpy would give a scalar) and
    undoes an upcast by a rate that jit traced in float64.
    """
    if type(value) is not np.ndarray or value.dtype != W.dtype:
        value = namespace(W).asarray(value, dtype=W.dtype)
    if type(value) is np.ndarray and value.flags.writeable:
        value.flags.writeable = False
    return value


def _clip(grads: list, max_norm: float) -> list:
    """The leaves ``grads`` times ``min(1, max_norm / global_norm)``; themselves when below."""
    norm = sum(((g * g).sum() for g in grads), 0.0) ** 0.5
    if _is_concrete(norm):
        factor = max_norm / max(float(norm), max_norm)
        return grads if factor == 1.0 else tree.scale(factor, grads)
    return tree.scale(max_norm / namespace(norm).maximum(norm, max_norm), grads)


def _default_mask(path: tuple, leaf: Any) -> bool:
    """Decay weights (``ndim >= 2``), not biases."""
    return leaf.ndim >= 2


Rule = Callable[[Any, Any, tuple, Any, Any], tuple[Any, tuple]]


def _optimizer(name: str, learning_rate: Any, state_type: type, rule: Rule, *,
               weight_decay: Any, decoupled: Any, decay_mask: Any,
               max_grad_norm: Any, rule_into_grad: Rule | None = None) -> Optimizer:
    """Wrap a leafwise ``rule(W, g, slots, lr, t) -> (new_W, new_slots)`` into an Optimizer."""
    learning_rate = _learning_rate(name, learning_rate)
    weight_decay = _number(name, "weight_decay", weight_decay)
    if not isinstance(decoupled, bool):
        raise ArgumentError(f"{name}: decoupled must be True or False, got {describe(decoupled)}")
    if decay_mask is None:
        decay_mask = _default_mask
    elif not callable(decay_mask):
        raise ArgumentError(f"{name}: decay_mask must be a function (path, leaf) -> bool or "
                            f"None, got {describe(decay_mask)}")
    if max_grad_norm is not None:
        max_grad_norm = _number(name, "max_grad_norm", max_grad_norm, positive=True)
    slots = state_type._fields[1:]

    def init(params):
        _param_leaves(f"{name}.init", params)
        count = np.zeros((), np.int64)
        count.flags.writeable = False
        return state_type(count, *(tree.freeze(tree.zeros_like(params), copy=False)
                                   for _ in slots))

    def decays(path, W):
        chosen = decay_mask(path, W)
        if not isinstance(chosen, bool | np.bool_):
            raise ArgumentError(f"{name}: decay_mask must return True or False, got "
                                f"{describe(chosen)} for {tree.path_str(path, 'params')}")
        return bool(chosen)

    def check(grads, state, params):
        """Every boundary check, with path-naming messages (run in full on a mismatch)."""
        who = f"{name}.update"
        flat = _param_leaves(who, params)
        _leaves_like(who, params, flat, grads, "grads")
        _slot_leaves(who, name, state, state_type, params, flat)

    # A cache of the structure of the params last updated (a TreeDef) and the decay
    # choices made for it; it only saves time: every result is the same without it. One
    # tuple (TreeDef, (shapes, decay flags) or None), read once per update and replaced
    # whole, so that threads sharing this optimizer never pair one structure's TreeDef
    # with another's decay flags.
    known: list = [(None, None)]

    def fast_leaves(d, grads, state, params):
        """The leaves of params, grads and each slot tree, if all have d's structure,
        numpy leaves of one float shape and dtype per path, and a plain count; else None
        (the general path then checks everything and words any error). Last comes
        whether any gradient leaf has ``_WORTH_REUSING`` elements or more."""
        if d is None or type(state) is not state_type:
            return None
        count = state.count
        if not (type(count) is np.ndarray and count.ndim == 0 and count.dtype.kind in "iu"):
            return None
        flat, flat_g = d.leaves_of(params), d.leaves_of(grads)
        if flat is None or flat_g is None:
            return None
        big = False  # any leaf large enough for a gradient buffer to be worth reusing
        for W, g in zip(flat, flat_g, strict=False):  # equal lengths: both match d
            if not (W.dtype.kind == "f" and g.shape == W.shape and g.dtype == W.dtype):
                return None
            if g.size >= _WORTH_REUSING:
                big = True
        rows = []
        for slot_tree in state[1:]:
            leaves = d.leaves_of(slot_tree)
            if leaves is None:
                return None
            for W, v in zip(flat, leaves, strict=False):
                if not (v.shape == W.shape and v.dtype == W.dtype):
                    return None
            rows.append(leaves)
        return flat, flat_g, rows, big

    def general_leaves(grads, state, params):
        """The same leaves for any trees (jax arrays, traced values), checked as needed
        (``True`` last: any leaf may be worth reusing)."""
        count = getattr(state, "count", None)
        if not (type(state) is state_type and is_array(count) and np.ndim(count) == 0
                and np.dtype(count.dtype).kind in "iu"):  # a traced count under jit is fine
            check(grads, state, params)  # raises with the precise message
        slot_trees = state[1:]
        if not (tree.same_structure(params, grads)
                and all(tree.same_structure(params, s) for s in slot_trees)):
            check(grads, state, params)
        flat, flat_g = tree.leaves(params), tree.leaves(grads)
        rows = [tree.leaves(s) for s in slot_trees]
        for i, (W, g) in enumerate(zip(flat, flat_g, strict=True)):  # shapes and dtypes
            if not (is_array(W) and W.dtype.kind == "f"
                    and getattr(g, "shape", None) == W.shape and g.dtype == W.dtype):
                check(grads, state, params)
            for leaves in rows:
                if not (getattr(leaves[i], "shape", None) == W.shape
                        and leaves[i].dtype == W.dtype):
                    check(grads, state, params)
        return flat, flat_g, rows, True

    def decay_flags(params, flat, d, cached):
        """Which leaves weight decay touches, asked of decay_mask once per structure d
        (``cached`` holds the flags last found for d) and shapes."""
        shapes = tuple(W.shape for W in flat)
        if d is not None and cached is not None and cached[0] == shapes:
            return cached[1]
        flags = [decays(path, W) for path, W in tree.flatten_with_paths(params)]
        if d is not None:
            known[0] = (d, (shapes, flags))
        return flags

    def apply(grads, state, params, grads_owned):
        d, cached = known[0]
        found = fast_leaves(d, grads, state, params)
        if found is None:
            found = general_leaves(grads, state, params)
            d = tree.treedef(params) if all(type(W) is np.ndarray for W in found[0]) else None
            cached = None
            if d is not None:
                known[0] = (d, None)
        flat, flat_g, slot_rows, big = found
        count = state.count
        concrete = type(count) is np.ndarray
        lr = learning_rate if type(learning_rate) is float else _rate_at(name, learning_rate,
                                                                          count)
        t = int(count) + 1 if concrete else count + 1
        if max_grad_norm is not None:
            flat_g = _clip(flat_g, max_grad_norm)
        owned = (_private_leaves(flat_g) if big and grads_owned and rule_into_grad is not None
                 and not (weight_decay and not decoupled) else ())
        if not (slot_rows or weight_decay or owned):  # the rule alone (sgd, as usual)
            new_W = [rule(W, g, (), lr, t)[0] for W, g in zip(flat, flat_g, strict=True)]
            new_slots = []
        else:
            new_W, new_slots = [], [[] for _ in slot_rows]
            decay = decay_flags(params, flat, d, cached) if weight_decay else ()
            for i, (W, g) in enumerate(zip(flat, flat_g, strict=True)):
                if weight_decay and decay[i] and not decoupled:
                    g = g + weight_decay * W
                if owned and owned[i]:
                    W_next = rule_into_grad(W, g, (), lr, t)[0]
                elif slot_rows:
                    W_next, slot_next = rule(W, g, tuple(leaves[i] for leaves in slot_rows),
                                             lr, t)
                    for acc, value in zip(new_slots, slot_next, strict=True):
                        acc.append(_new_leaf(W, value))
                else:
                    W_next = rule(W, g, (), lr, t)[0]
                if weight_decay and decay[i] and decoupled:
                    W_next = _descend(W_next, lr * weight_decay * W)
                new_W.append(W_next)
        for i, W_next in enumerate(new_W):  # sealed: _new_leaf, inlined for the usual case
            if type(W_next) is np.ndarray and W_next.dtype == flat[i].dtype:
                W_next.setflags(write=False)
            else:
                new_W[i] = _new_leaf(flat[i], W_next)
        if concrete:
            next_count = np.array(t, np.int64)
            next_count.setflags(write=False)
        else:
            next_count = t
        rebuild = d.build if d is not None else functools.partial(tree.unflatten_as, params)
        return rebuild(new_W), state_type(next_count, *[rebuild(leaves) for leaves in new_slots])

    def update(grads, state, params):
        return apply(grads, state, params, False)

    def update_owning_grads(grads, state, params):
        """``update`` for a caller that drops ``grads`` right after (``train.run_epoch``):
        it may write the new params into gradient arrays that nothing else holds."""
        return apply(grads, state, params, True)

    init.__qualname__ = init.__name__ = f"{name}.init"
    update.__qualname__ = update.__name__ = f"{name}.update"
    update.funcnet_owning_grads = update_owning_grads
    return Optimizer(init, update)


# --- the optimizers ------------------------------------------------------------------------


def sgd(learning_rate: Any, *, weight_decay: float = 0.0, decoupled: bool = False,
        decay_mask: Callable | None = None, max_grad_norm: float | None = None) -> Optimizer:
    """Stochastic gradient descent: ``W <- W - lr g``.

    Args:
        learning_rate: a number >= 0, or a schedule (step -> rate).
        weight_decay, decoupled, decay_mask, max_grad_norm: see the module docstring.

    Returns:
        ``Optimizer``; its state is ``SgdState(count)``.

    Raises:
        ArgumentError: a hyperparameter out of range.
    """

    def rule(W, g, slots, lr, t):
        return _step_down(W, lr, g), ()

    def rule_into_grad(W, g, slots, lr, t):  # the same step, written into g's own buffer
        return _step_down(W, lr, g, into=g), ()

    return _optimizer("sgd", learning_rate, SgdState, rule, weight_decay=weight_decay,
                      decoupled=decoupled, decay_mask=decay_mask, max_grad_norm=max_grad_norm,
                      rule_into_grad=rule_into_grad)


def momentum(learning_rate: Any, momentum: float = 0.9, *, weight_decay: float = 0.0,
             decoupled: bool = False, decay_mask: Callable | None = None,
             max_grad_norm: float | None = None) -> Optimizer:
    """Momentum SGD: ``v <- m v - lr g; W <- W + v`` (``v`` starts at 0).

    Args:
        learning_rate: a number >= 0, or a schedule (step -> rate).
        momentum: ``m`` in [0, 1).
        weight_decay, decoupled, decay_mask, max_grad_norm: see the module docstring.

    Returns:
        ``Optimizer``; its state is ``MomentumState(count, velocity)``.

    Raises:
        ArgumentError: a hyperparameter out of range.
    """
    m = require_probability("momentum", "momentum", momentum, open_right=True)

    def rule(W, g, slots, lr, t):
        (v,) = slots
        v = _descend(m * v, lr * g)
        return W + v, (v,)

    return _optimizer("momentum", learning_rate, MomentumState, rule, weight_decay=weight_decay,
                      decoupled=decoupled, decay_mask=decay_mask, max_grad_norm=max_grad_norm)


def nesterov(learning_rate: Any, momentum: float = 0.9, *, weight_decay: float = 0.0,
             decoupled: bool = False, decay_mask: Callable | None = None,
             max_grad_norm: float | None = None) -> Optimizer:
    """Nesterov momentum, the textbook's form: ``v <- m v - lr g; W <- W + m*m v - (1 + m) lr g``.

    As in the textbook's ``common/optimizer.py``, ``W`` moves with the velocity
    just updated (Bengio et al. 2012, eq. 7, use the previous one).

    Args:
        learning_rate: a number >= 0, or a schedule (step -> rate).
        momentum: ``m`` in [0, 1).
        weight_decay, decoupled, decay_mask, max_grad_norm: see the module docstring.

    Returns:
        ``Optimizer``; its state is ``NesterovState(count, velocity)``.

    Raises:
        ArgumentError: a hyperparameter out of range.
    """
    m = require_probability("nesterov", "momentum", momentum, open_right=True)

    def rule(W, g, slots, lr, t):
        (v,) = slots
        v = _descend(m * v, lr * g)
        return _descend(W + m * m * v, (1 + m) * lr * g), (v,)

    return _optimizer("nesterov", learning_rate, NesterovState, rule, weight_decay=weight_decay,
                      decoupled=decoupled, decay_mask=decay_mask, max_grad_norm=max_grad_norm)


def adagrad(learning_rate: Any, eps: float = 1e-7, *, weight_decay: float = 0.0,
            decoupled: bool = False, decay_mask: Callable | None = None,
            max_grad_norm: float | None = None) -> Optimizer:
    """AdaGrad: ``h <- h + g*g; W <- W - lr g / (sqrt(h) + eps)`` (``h`` starts at 0).

    Args:
        learning_rate: a number >= 0, or a schedule (step -> rate).
        eps: > 0, keeps the division finite (the textbook's 1e-7).
        weight_decay, decoupled, decay_mask, max_grad_norm: see the module docstring.

    Returns:
        ``Optimizer``; its state is ``AdagradState(count, sum_sq)``.

    Raises:
        ArgumentError: a hyperparameter out of range.
    """
    eps = _number("adagrad", "eps", eps, positive=True)

    def rule(W, g, slots, lr, t):
        (h,) = slots
        h = h + g * g
        return _descend(W, lr * g / (namespace(h).sqrt(h) + eps)), (h,)

    return _optimizer("adagrad", learning_rate, AdagradState, rule, weight_decay=weight_decay,
                      decoupled=decoupled, decay_mask=decay_mask, max_grad_norm=max_grad_norm)


def rmsprop(learning_rate: Any, decay: float = 0.99, eps: float = 1e-7, *,
            weight_decay: float = 0.0, decoupled: bool = False,
            decay_mask: Callable | None = None, max_grad_norm: float | None = None) -> Optimizer:
    """RMSProp: ``h <- decay h + (1 - decay) g*g; W <- W - lr g / (sqrt(h) + eps)``.

    Args:
        learning_rate: a number >= 0, or a schedule (step -> rate).
        decay: in [0, 1), how much of the old average ``h`` is kept (``h`` starts at 0).
        eps: > 0, keeps the division finite (the textbook's 1e-7).
        weight_decay, decoupled, decay_mask, max_grad_norm: see the module docstring.

    Returns:
        ``Optimizer``; its state is ``RmspropState(count, mean_sq)``.

    Raises:
        ArgumentError: a hyperparameter out of range.
    """
    decay = require_probability("rmsprop", "decay", decay, open_right=True)
    eps = _number("rmsprop", "eps", eps, positive=True)

    def rule(W, g, slots, lr, t):
        (h,) = slots
        h = decay * h + (1 - decay) * g * g
        return _descend(W, lr * g / (namespace(h).sqrt(h) + eps)), (h,)

    return _optimizer("rmsprop", learning_rate, RmspropState, rule, weight_decay=weight_decay,
                      decoupled=decoupled, decay_mask=decay_mask, max_grad_norm=max_grad_norm)


def adam(learning_rate: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8, *,
         weight_decay: float = 0.0, decoupled: bool = False,
         decay_mask: Callable | None = None, max_grad_norm: float | None = None) -> Optimizer:
    """Adam with Kingma & Ba's bias correction, ``t`` counting this update from 1.

    ``mu <- b1 mu + (1 - b1) g; nu <- b2 nu + (1 - b2) g*g;
    mu_hat = mu / (1 - b1^t); nu_hat = nu / (1 - b2^t);
    W <- W - lr mu_hat / (sqrt(nu_hat) + eps)``. (The textbook folds both
    corrections into its rate, ``lr_t = lr sqrt(1 - b2^t) / (1 - b1^t)``,
    which differs only in where ``eps`` enters.)

    Args:
        learning_rate: a number >= 0, or a schedule (step -> rate).
        b1, b2: in [0, 1), the decay of the two moving averages.
        eps: > 0, keeps the division finite.
        weight_decay, decoupled, decay_mask, max_grad_norm: see the module docstring;
            ``decoupled=True`` gives AdamW.

    Returns:
        ``Optimizer``; its state is ``AdamState(count, mu, nu)``.

    Raises:
        ArgumentError: a hyperparameter out of range.
    """
    b1 = require_probability("adam", "b1", b1, open_right=True)
    b2 = require_probability("adam", "b2", b2, open_right=True)
    eps = _number("adam", "eps", eps, positive=True)

    def rule(W, g, slots, lr, t):
        mu, nu = slots
        mu = b1 * mu + (1 - b1) * g
        nu = b2 * nu + (1 - b2) * g * g
        mu_hat = mu / (1 - b1**t)
        nu_hat = nu / (1 - b2**t)
        return _descend(W, lr * mu_hat / (namespace(nu_hat).sqrt(nu_hat) + eps)), (mu, nu)

    return _optimizer("adam", learning_rate, AdamState, rule, weight_decay=weight_decay,
                      decoupled=decoupled, decay_mask=decay_mask, max_grad_norm=max_grad_norm)


# --- schedules -----------------------------------------------------------------------------


def _named(schedule: Schedule, name: str) -> Schedule:
    schedule.__qualname__ = schedule.__name__ = name
    return schedule


def constant(value: float) -> Schedule:
    """The schedule ``step -> value``.

    Raises:
        ArgumentError: ``value`` is not a finite number >= 0.
    """
    value = _number("constant", "value", value)

    def schedule(step):
        _step("constant", step)
        return value

    return _named(schedule, f"constant({value})")


def step_decay(initial: float, factor: float, every: int) -> Schedule:
    """``step -> initial * factor ** (step // every)``: times ``factor`` every ``every`` steps.

    >>> [step_decay(1.0, 0.5, 2)(s) for s in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]

    Raises:
        ArgumentError: ``initial`` < 0, ``factor`` outside (0, 1], ``every`` not a positive int.
    """
    initial = _number("step_decay", "initial", initial)
    factor = _number("step_decay", "factor", factor, at_most_one=True)
    every = require_positive_int("step_decay", "every", every)

    def schedule(step):
        return initial * factor ** (_step("step_decay", step) // every)

    return _named(schedule, f"step_decay({initial}, {factor}, {every})")


def exponential(initial: float, decay_rate: float, decay_steps: float) -> Schedule:
    """``step -> initial * decay_rate ** (step / decay_steps)``: smooth exponential decay.

    Raises:
        ArgumentError: ``initial`` < 0, ``decay_rate`` outside (0, 1], ``decay_steps`` <= 0.
    """
    initial = _number("exponential", "initial", initial)
    decay_rate = _number("exponential", "decay_rate", decay_rate, at_most_one=True)
    decay_steps = _number("exponential", "decay_steps", decay_steps, positive=True)

    def schedule(step):
        return initial * decay_rate ** (_step("exponential", step) / decay_steps)

    return _named(schedule, f"exponential({initial}, {decay_rate}, {decay_steps})")


def cosine(initial: float, total_steps: int, final: float = 0.0) -> Schedule:
    """Half a cosine from ``initial`` (step 0) to ``final`` (step ``total_steps`` and after).

    ``rate = final + (initial - final) (1 + cos(pi min(step, total_steps) / total_steps)) / 2``

    Raises:
        ArgumentError: ``initial`` or ``final`` < 0, ``total_steps`` not a positive int.
    """
    initial = _number("cosine", "initial", initial)
    final = _number("cosine", "final", final)
    total = require_positive_int("cosine", "total_steps", total_steps)

    def schedule(step):
        step = _step("cosine", step)
        if isinstance(step, int):
            return final + (initial - final) * 0.5 * (1 + math.cos(math.pi * min(step, total)
                                                                   / total))
        xp = namespace(step)
        return final + (initial - final) * 0.5 * (1 + xp.cos(math.pi * xp.minimum(step, total)
                                                             / total))

    return _named(schedule, f"cosine({initial}, {total}, {final})")


#: Every public optimizer constructor, by name. The test registry must cover each one.
CONSTRUCTORS = {
    "sgd": sgd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
}

#: Every schedule constructor, by name. The test registry must cover each one.
SCHEDULES = {
    "constant": constant,
    "step_decay": step_decay,
    "exponential": exponential,
    "cosine": cosine,
}
