"""Training as a fold: ``fit`` is ``functools.reduce(run_epoch, range(epochs), state)``.

Each epoch splits the state's key into the next epoch's key, one for shuffling
and one for the layers that draw random numbers (dropout), so a run is a pure
function of (config, seed): two runs with one seed are bitwise equal, and a run
resumed from a checkpoint goes on as if it had never stopped. A step computes
the loss and gradients with the hand-written ``net.backward`` and applies the
optimizer.

Checks run once: ``fit`` and ``run_epoch`` check the data, net and loss
(``check_config``); the steps then run the layers', loss's and optimizer's kernels
and test only that each loss is finite, that the epoch's first and last gradients
have params' shapes and dtypes and, at the epoch's end, that the params are finite
and kept their shapes and dtypes. Anything else replays the epoch with every check
on, and the error names the epoch, step and the layer, optimizer or parameter path.
``train_step`` checks fully. ``fit(..., runner=funcnet.jit.epoch_runner)`` compiles
the epochs. Observers, ``stop_when`` and the progress bar watch the fold and cannot
change it.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from funcnet import io, random, tree
from funcnet._xp import sigmoid_fn, softmax_fn
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    CheckpointError,
    FuncnetError,
    NonFiniteError,
    ShapeError,
    StructureError,
    describe,
    is_array,
    raise_if_write,
    require_positive_int,
)
from funcnet.layers import ArraySpec, Layer, check_takes, math_of
from funcnet.layers import init_state as layer_init_state
from funcnet.losses import Loss, _checked_calls
from funcnet.losses import math_of as loss_math_of
from funcnet.optim import Optimizer
from funcnet.optim import math_of as update_math_of

__all__ = [
    "History", "TrainState", "Config", "StepResult", "Evaluation", "EpochResult", "minibatches",
    "init_state", "gradient_fn", "forward_backward_fn", "value_and_grad", "train_step",
    "check_config", "epoch_keys", "run_epoch", "epoch_runner", "finish_epoch",
    "replay_failed_epoch", "fit", "evaluate", "predict", "accuracy", "accuracy_threshold",
    "batch_accuracy",
]


class History(NamedTuple):
    """What a run recorded, epoch by epoch (plain numbers and arrays).

    ``loss``: the mean of the epoch's minibatch losses. ``accuracy`` (classification
    only): the mean of each step's accuracy on its own train-mode predictions, before
    its update, as keras reports it. ``val_*`` with validation data. ``snapshots``:
    the predictions on the snapshot inputs at each epoch in ``snapshot_epochs`` (the
    epoch indices divisible by the interval, from 0).
    """
    loss: tuple = ()
    accuracy: tuple = ()
    val_loss: tuple = ()
    val_accuracy: tuple = ()
    snapshot_epochs: tuple = ()
    snapshots: tuple = ()


class TrainState(NamedTuple):
    """Everything a run needs to go on: what a checkpoint holds. ``epoch`` and ``step``
    count completed epochs and steps; ``model_state`` is the layers' state (batch norm's
    running statistics), ``()`` for a network without any."""
    params: Any
    opt_state: Any
    key: Any
    epoch: int
    step: int
    history: History
    model_state: Any = ()


class Config(NamedTuple):
    """What stays fixed during a run: the model, the data and the epoch's settings."""
    net: Layer
    loss: Loss
    optimizer: Optimizer
    x: Any
    y: Any
    batch_size: int
    shuffle: bool = True
    drop_last: bool = False
    validation: tuple | None = None
    snapshot: tuple | None = None  # (inputs, interval)


class StepResult(NamedTuple):
    """One optimizer step's outcome; ``accuracy``: the fraction of the minibatch its own
    forward pass classified right, for a classification loss (else None)."""
    params: Any
    opt_state: Any
    model_state: Any
    loss: float
    grads: Any
    accuracy: float | None = None


class Evaluation(NamedTuple):
    """Loss and accuracy on a data set (accuracy None for regression targets)."""
    loss: float
    accuracy: float | None


def _check_data(who: str, x: Any, y: Any) -> int:
    for name, value in (("x", x), ("y", y)):
        if not isinstance(value, np.ndarray):
            raise ArrayTypeError(f"{who}: expected {name} to be a numpy array with samples "
                                 f"along axis 0, got {describe(value)}")
        if value.ndim == 0:
            raise ShapeError(f"{who}: {name} needs a sample axis, got a 0-d array")
    if x.shape[0] != y.shape[0]:
        raise ShapeError(f"{who}: x has {x.shape[0]} samples but y has {y.shape[0]}; "
                         f"they must match along axis 0")
    if x.shape[0] == 0:
        raise ShapeError(f"{who}: the data set is empty")
    return int(x.shape[0])


def _check_batch_size(who: str, batch_size: Any, n: int) -> int:
    batch_size = require_positive_int(who, "batch_size", batch_size)
    if batch_size > n:
        raise ArgumentError(f"{who}: batch_size must be at most the number of samples "
                            f"({n}), got {batch_size}")
    return batch_size


#: Data up to this size is shuffled with one gather per epoch and then sliced (a view per
#: batch); larger data is gathered batch by batch, so no second copy of it is ever made.
_GATHER_ONCE_BYTES = 64 * 2**20


def minibatches(key: Any, x: Any, y: Any, batch_size: int, *, shuffle: bool = True,
                drop_last: bool = False) -> list[tuple[Any, Any]]:
    """Split ``(x, y)``, n samples along axis 0, into ``(x_batch, y_batch)`` pairs: every
    sample exactly once, in the order ``random.permutation(key, n)`` when ``shuffle``,
    else the data order. The last batch is smaller when ``batch_size`` (1 to n) does
    not divide n, unless ``drop_last``.

    >>> xs = np.arange(5.0)[:, None]
    >>> [b[0].ravel().tolist() for b in minibatches(None, xs, xs, 2, shuffle=False)]
    [[0.0, 1.0], [2.0, 3.0], [4.0]]
    """
    n = _check_data("minibatches", x, y)
    batch_size = _check_batch_size("minibatches", batch_size, n)
    stops = range(0, n - batch_size + 1 if drop_last else n, batch_size)
    if shuffle:
        order = random.permutation(key, n)
        if x.nbytes + y.nbytes > _GATHER_ONCE_BYTES:
            return [(x[order[i:i + batch_size]], y[order[i:i + batch_size]]) for i in stops]
        x, y = x[order], y[order]  # one shuffled copy, then cheap slices
    x, y = _read_only(x), _read_only(y)  # views of the caller's data unless shuffled
    return [(x[i:i + batch_size], y[i:i + batch_size]) for i in stops]


def _read_only(a: np.ndarray) -> np.ndarray:
    """A read-only view of ``a``: a layer that writes into its input (``x[x < 0] = 0``)
    raises instead of changing the caller's data for every later epoch and call."""
    a = a.view()
    a.flags.writeable = False
    return a


def _apply(forward: Callable, takes: frozenset, params: Any, x: Any, *, train: bool,
           key: Any = None, model_state: Any = ()) -> tuple[Any, Any]:
    """Call a network's ``forward`` with exactly the extras it takes."""
    if not takes:
        return forward(params, x)
    kwargs = {}
    if "train" in takes:
        kwargs["train"] = train
    if "key" in takes and train:
        kwargs["key"] = key
    if "state" in takes:
        kwargs["state"] = model_state
    return forward(params, x, **kwargs)


def gradient_fn(net: Layer, loss: Loss, *, checked: bool = True
                ) -> Callable[..., tuple[Any, Any, Any]]:
    """``grad_fn(params, x, y, key, model_state) -> (value, grads, model_state)``, by the
    hand-written backward pass. ``checked``: through the public forward and backward;
    else the kernels alone, for a caller that checked its configuration once."""
    pass_fn = forward_backward_fn(net, loss, checked=checked)

    def grad_fn(params, x, y, key, model_state):
        value, grads, model_state, _ = pass_fn(params, x, y, key, model_state)
        return value, grads, model_state

    return grad_fn


def forward_backward_fn(net: Layer, loss: Loss, *, checked: bool = True
                        ) -> Callable[..., tuple[Any, Any, Any, Any]]:
    """``pass_fn(params, x, y, key, model_state) -> (value, grads, model_state, pred)``:
    ``gradient_fn``'s function, also returning the predictions of its forward pass (in
    train mode), from which a step measures its accuracy without a second pass."""
    takes = net.takes
    forward, backward = (net.forward, net.backward) if checked else math_of(net)
    loss_forward, loss_backward = _checked_calls(loss) if checked else loss_math_of(loss)
    skip_dx = net.skips_dx  # the data needs no gradient: skip the first layer's dx product

    def pass_fn(params, x, y, key, model_state):
        pred, cache = _apply(forward, takes, params, x, train=True, key=key,
                             model_state=model_state)
        value, loss_cache = loss_forward(pred, y)
        dpred = loss_backward(loss_cache)
        _, grads = backward(cache, dpred, need_dx=False) if skip_dx else backward(cache, dpred)
        return value, grads, (cache.state if "state" in takes else model_state), pred

    return pass_fn


def value_and_grad(net: Layer, loss: Loss, params: Any, x: Any, y: Any, *, key: Any = None,
                   model_state: Any = ()) -> tuple[Any, Any, Any]:
    """``(value, grads, new_model_state)``: the loss and its gradient w.r.t. params (a tree
    like params), by the hand-written backward pass (checked)."""
    return gradient_fn(net, loss)(params, x, y, key, model_state)


def _where_text(where: Any) -> str:
    """``where`` as an epoch passes it, (epoch, step, batch), or a caller's text."""
    if isinstance(where, tuple):
        epoch, step, batch = where
        return f"epoch {epoch}, step {step} (batch {batch} of the epoch)"
    return str(where)


def _nonfinite_report(who: str, where: Any, value: Any, grads: Any, params: Any) -> str:
    where, value = _where_text(where), float(value)
    if not math.isfinite(value):
        path = tree.first_nonfinite(params)
        if path is not None:
            return (f"{who}: non-finite loss ({value}) at {where}: "
                    f"{tree.path_str(path, 'params')} already holds NaN or inf")
        return (f"{who}: non-finite loss ({value}) at {where} with finite params: "
                f"check the data and the loss (e.g. log of 0, a learning rate too large)")
    path = tree.first_nonfinite(grads)
    return (f"{who}: non-finite gradient at {where}, at "
            f"{tree.path_str(path, 'params') if path is not None else 'an unknown path'}; "
            f"lower the learning rate or clip gradients (max_grad_norm)")


def _all_finite(value: Any, grads: Any) -> bool:
    """The loss and every gradient element are finite (no sum that could overflow)."""
    if not math.isfinite(float(value)):
        return False
    return all(np.isfinite(g).all() for g in tree.leaves(grads))


def _check_update(update: Callable, updated: Any, params: Any, where: Any) -> None:
    """An update must return ``(params, state)``, the params in the structure, shapes and
    dtypes they came in: else the next step's forward (or the optimizer's own checks) would
    blame a layer or the data for what the update did."""
    who = f"{getattr(update, '__qualname__', 'the optimizer update')} at {_where_text(where)}"
    if not (isinstance(updated, tuple) and len(updated) == 2):
        raise StructureError(f"{who}: an optimizer's update must return the pair (params, "
                             f"state), got {describe(updated)}")
    try:
        tree.assert_same_shapes(params, updated[0], who=who, actual_name="the params it returned",
                                check_dtype=True)
    except FuncnetError as e:
        raise type(e)(f"{e}; an update must keep params' structure, shapes and dtypes") from None


def _step_fn(net: Layer, loss: Loss, optimizer: Optimizer, *, checked: bool,
             check_finite: bool | None = None, threshold: float | None = None
             ) -> Callable[..., StepResult]:
    """``step(params, opt_state, x, y, key, model_state, where) -> StepResult``.

    ``checked``: through the public forward, backward and update (else the kernels).
    ``check_finite`` (default: ``checked``): a non-finite loss or gradient raises
    ``NonFiniteError`` before the update, naming ``where`` (text, or ``(epoch, step,
    batch)``) and the parameter path. ``threshold``: as ``accuracy_threshold``.
    """
    check_finite = checked if check_finite is None else check_finite
    pass_fn = forward_backward_fn(net, loss, checked=checked)
    update = optimizer.update if checked else update_math_of(optimizer)

    def step(params, opt_state, x, y, key, model_state, where):
        try:
            value, grads, model_state, pred = pass_fn(params, x, y, key, model_state)
        except FloatingPointError as e:  # numpy set to raise (np.seterr): the same story
            if isinstance(e, NonFiniteError):
                raise
            raise NonFiniteError(f"train_step: {e} at {_where_text(where)} (numpy raises on "
                                 f"floating-point errors here); lower the learning rate or "
                                 f"check the data") from e
        except ValueError as e:  # the data a net is given is read-only, as params are
            raise_if_write(e, "train_step: a layer or the loss", at=f" at {_where_text(where)}")
            raise
        if check_finite and not _all_finite(value, grads):
            raise NonFiniteError(_nonfinite_report("train_step", where, value, grads, params))
        right = None if threshold is None else batch_accuracy(pred, y, threshold)
        try:
            updated = update(grads, opt_state, params)
        except ValueError as e:  # params are read-only
            raise_if_write(e, getattr(update, "__qualname__", "the optimizer update"),
                           what="params", at=f" at {_where_text(where)}")
            raise
        if checked:
            _check_update(update, updated, params, where)
        params, opt_state = updated
        return StepResult(params, opt_state, model_state, float(value), grads,
                          None if right is None else float(right))

    return step


def train_step(net: Layer, loss: Loss, optimizer: Optimizer, params: Any, opt_state: Any,
               x: Any, y: Any, *, key: Any = None, model_state: Any = (),
               check: bool = True, where: str = "a step") -> StepResult:
    """One optimizer step on one minibatch, through the public (checked) forward and backward;
    with ``check``, a non-finite loss or gradient raises ``NonFiniteError`` naming ``where``
    and the parameter path, before the update."""
    step = _step_fn(net, loss, optimizer, checked=True, check_finite=check,
                    threshold=accuracy_threshold(loss, y))
    # as text: a tuple is how an epoch passes (epoch, step, batch), not a caller's words
    return step(params, opt_state, x, y, key, model_state, str(where))


def predict(net: Layer, params: Any, x: Any, *, loss: Loss | None = None,
            model_state: Any = (), batch_size: int | None = None) -> np.ndarray:
    """The network's outputs in eval mode, ``batch_size`` samples at a time (default all);
    probabilities when ``loss`` applies softmax or sigmoid to the logits itself."""
    if not is_array(x):
        raise ArrayTypeError(f"predict: expected x to be an array, got {describe(x)}")
    if x.ndim == 0:
        raise ShapeError("predict: expected x with a batch axis (batch, ...), got a 0-d array")
    n = x.shape[0]
    x = _read_only(x) if isinstance(x, np.ndarray) else x
    size = max(n, 1) if batch_size is None else require_positive_int("predict", "batch_size",
                                                                     batch_size)
    outputs = [_apply(net.forward, net.takes, params, x[i:i + size], train=False,
                      model_state=model_state)[0]
               for i in range(0, max(n, 1), size)]
    out = outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
    fused = loss.on_logits if isinstance(loss, Loss) else None
    if fused == "softmax":
        return softmax_fn(out, np)
    if fused == "sigmoid":
        return sigmoid_fn(out, np)
    return out


def _accuracy_rule(pred: Any, target: Any) -> tuple[str | None, str]:
    """How ``pred`` is read against ``target``, from their shapes alone: ``(rule, "")``
    with rule ``"one-hot"``, ``"labels"`` or ``"threshold"``, or ``(None, why)`` when
    none fits."""
    if pred.ndim == 0 or target.ndim == 0 or pred.shape[0] != target.shape[0]:
        return None, (f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must hold "
                      f"the same number of samples along axis 0")
    if pred.ndim == 2 and pred.shape[1] > 1:
        if tuple(target.shape) == tuple(pred.shape):
            return "one-hot", ""
        if target.ndim == 1 and np.dtype(target.dtype).kind in "iu":
            return "labels", ""
        return None, (f"for pred of shape {tuple(pred.shape)} expected integer labels "
                      f"({pred.shape[0]},) or one-hot rows {tuple(pred.shape)}, got target of "
                      f"shape {tuple(target.shape)} and dtype {target.dtype}")
    if pred.size != pred.shape[0] or target.size != target.shape[0]:
        return None, (f"expected one output per sample, got pred {tuple(pred.shape)} and "
                      f"target {tuple(target.shape)}")
    return "threshold", ""


def batch_accuracy(pred: Any, target: Any, threshold: float) -> Any:
    """``accuracy``'s fraction as a 0-d array of ``pred``'s namespace (numpy, or jax under
    ``jax.jit``), None when the shapes fit none of its rules: the count of right answers
    over the count of samples, float64 on both (jax averages booleans in float32)."""
    rule, _ = _accuracy_rule(pred, target)
    if rule is None:
        return None
    if rule == "threshold":
        right = (pred.reshape(-1) > threshold) == (target.reshape(-1) > 0.5)
    else:
        labels = target.argmax(axis=1) if rule == "one-hot" else target
        right = pred.argmax(axis=1) == labels
    return right.sum() / right.shape[0]


def accuracy(pred: Any, target: Any, *, threshold: float = 0.5) -> float:
    """Fraction of samples classified right: with several outputs, the argmax of ``pred``
    against integer labels or one-hot rows' argmax; with one, ``pred > threshold`` against
    targets in {0, 1} (threshold 0 for logits)."""
    pred, target = np.asarray(pred), np.asarray(target)
    rule, why = _accuracy_rule(pred, target)
    if rule is None:
        raise ShapeError(f"accuracy: {why}")
    return float(batch_accuracy(pred, target, threshold))


def accuracy_threshold(loss: Loss, y: Any) -> float | None:
    """The threshold ``accuracy`` uses for this loss's one-output predictions (0 on logits,
    else 0.5), or None when the loss and targets ``y`` are not a classification."""
    is_loss = isinstance(loss, Loss)
    if not (is_loss and loss.classification is True or np.asarray(y).dtype.kind in "iu"):
        return None
    return 0.0 if is_loss and loss.on_logits == "sigmoid" else 0.5


def evaluate(net: Layer, loss: Loss, params: Any, x: Any, y: Any, *, model_state: Any = (),
             batch_size: int | None = None) -> Evaluation:
    """Loss (as the loss reduces) and accuracy (classification losses only), in eval mode."""
    _check_data("evaluate", x, y)
    pred = predict(net, params, x, model_state=model_state, batch_size=batch_size)
    value, _ = loss.forward(pred, y)
    threshold = accuracy_threshold(loss, y)
    acc = None if threshold is None else accuracy(pred, y, threshold=threshold)
    return Evaluation(float(value), acc)


def init_state(net: Layer, optimizer: Optimizer, params: Any, key: Any,
               in_shape: Sequence[int] | None = None) -> TrainState:
    """The state before the first epoch; ``in_shape`` sizes the layers' own state."""
    random.split(key)  # validates the key with a clear message
    model_state = () if in_shape is None else layer_init_state(net, tuple(in_shape))
    return TrainState(params, optimizer.init(params), key, 0, 0, History(), model_state)


def check_config(config: Config, state: TrainState) -> None:
    """Check once what every step of an epoch would otherwise check: data, net and loss.
    The net's checks run on one batch's shape (no math); the loss's see every target."""
    who = "run_epoch"
    n = _check_data(who, config.x, config.y)
    size = _check_batch_size(who, config.batch_size, n)
    check_takes(config.net)
    _check_net_and_loss(config, state, config.x, size, config.y)


def _check_net_and_loss(config: Config, state: TrainState, x: Any, size: int, y: Any) -> None:
    """The net's checks on a batch of ``size`` rows like ``x`` (no math), then the loss's on
    every target ``y`` (None: predictions alone)."""
    net, loss = config.net, config.loss
    if net.kernel is None:
        return  # plain functions: the net checks itself, if at all, as it runs
    extras = {"train": True, "key": random.key(0), "state": state.model_state}
    spec = ArraySpec((size, *x.shape[1:]), x.dtype)
    out = net.kernel.check(state.params, spec, **{k: v for k, v in extras.items()
                                                   if k in net.takes})
    if out is not None and loss.kernel is not None and y is not None:
        loss.kernel.check(ArraySpec((len(y), *out.shape[1:]), out.dtype), y)


def _check_eval_inputs(who: str, config: Config, state: TrainState) -> None:
    """The validation data and snapshot inputs against the net and loss, as ``check_config``
    checks the training data: else a mistake in them fails after the first epoch, unnamed."""
    inputs = []
    if config.validation is not None:
        inputs.append(("validation", *config.validation))
    if config.snapshot is not None:
        inputs.append(("snapshot", config.snapshot[0], None))
    for name, x, y in inputs:
        if x.ndim == 0:
            raise ShapeError(f"{who}: {name} inputs need a sample axis, got a 0-d array")
        try:
            _check_net_and_loss(config, state, x, int(x.shape[0]), y)
        except FuncnetError as e:
            raise type(e)(f"{who}({name}): {e}") from None


def epoch_keys(key: Any) -> tuple[Any, Any, Any]:
    """An epoch's keys from the state's key: ``(next_key, order_key, layers_key)``, the
    last split into a key per step for the layers that draw (dropout). Every runner
    splits so, and the numpy and jit paths draw the same order."""
    return random.split(key, 3)


class EpochResult(NamedTuple):
    """What an epoch's steps produced, before the history records it; ``accuracies``:
    each step's ``batch_accuracy`` for a classification loss, else empty."""
    params: Any
    opt_state: Any
    model_state: Any
    step: int
    losses: Sequence[float]
    next_key: Any
    accuracies: Sequence[float] = ()


def _layout(*trees: Any) -> list[tuple]:
    """The shape and dtype of every leaf of the trees."""
    return [(np.shape(a), a.dtype) for a in tree.leaves(trees)]


def _epoch_steps(config: Config, state: TrainState, *, checked: bool) -> EpochResult | None:
    """The epoch's optimizer steps; None if a loss came out non-finite, or the gradients of
    the epoch's first or last step (its only batch sizes) lack params' shapes and dtypes:
    unchecked, the optimizer's kernel would broadcast them (a checked step raises first)."""
    net, loss, optimizer = config.net, config.loss, config.optimizer
    next_key, k_order, k_layers = epoch_keys(state.key)
    batches = minibatches(k_order, config.x, config.y, config.batch_size,
                          shuffle=config.shuffle, drop_last=config.drop_last)
    layer_keys = (random.split(k_layers, len(batches)) if "key" in net.takes
                  else (None,) * len(batches))
    params, opt_state, model_state, step = (state.params, state.opt_state, state.model_state,
                                            state.step)
    step_fn = _step_fn(net, loss, optimizer, checked=checked,
                       threshold=accuracy_threshold(loss, config.y))
    losses, accuracies = [], []
    expected, ends = _layout(params), {0, len(batches) - 1}
    for i, ((xb, yb), k) in enumerate(zip(batches, layer_keys, strict=True)):
        where = (state.epoch, step, i)
        result = step_fn(params, opt_state, xb, yb, k, model_state, where)
        if not math.isfinite(result.loss) or i in ends and _layout(result.grads) != expected:
            return None
        # the last update's overflow shows in no loss (an earlier one's in the next step's)
        path = tree.first_nonfinite(result.params) if checked and i == len(batches) - 1 else None
        if path is not None:
            raise NonFiniteError(f"train_step: the update at {_where_text(where)} made "
                                 f"{tree.path_str(path, 'params')} NaN or inf from a finite "
                                 f"loss and gradients; lower the learning rate or clip "
                                 f"gradients (max_grad_norm)")
        params, opt_state, model_state = result.params, result.opt_state, result.model_state
        losses.append(result.loss)
        if result.accuracy is not None:
            accuracies.append(result.accuracy)
        step += 1
    return EpochResult(params, opt_state, model_state, step, losses, next_key, accuracies)


def replay_failed_epoch(config: Config, state: TrainState,
                        cause: Exception | None = None) -> Exception:
    """The error for an epoch that failed unchecked, naming its step and what went wrong.

    The epoch is replayed from ``state`` with every check on: a check that refuses
    raises (naming its layer, loss or optimizer); a non-finite loss or gradient, or
    params the last update made non-finite, give the ``NonFiniteError`` returned, its
    ``state`` the last finite one. If the replay
    passes, ``cause`` (what the unchecked epoch raised) is returned, or an error
    saying it did not reproduce.
    """
    try:
        _epoch_steps(config, state, checked=True)
    except NonFiniteError as e:
        error = e
    else:
        if cause is not None:
            return cause
        error = NonFiniteError(f"run_epoch: epoch {state.epoch} produced non-finite values "
                               f"that a checked replay did not reproduce")
    error.state = state
    return error


def _run_checked_config_epoch(config: Config, state: TrainState) -> TrainState:
    """One epoch of a configuration already checked: the kernels and the optimizer's
    unchecked update, a finite loss per step; at the end, finite params of unchanged
    shapes and dtypes (sealed then), else the epoch is replayed with every check."""
    try:
        done = _epoch_steps(config, state, checked=False)
    except Exception as cause:  # a kernel failed on something a check would have named
        raise replay_failed_epoch(config, state, cause) from None
    if (done is None or not tree.all_finite(done.params)
            or _layout(done.params, done.opt_state) != _layout(state.params, state.opt_state)):
        raise replay_failed_epoch(config, state)
    done = done._replace(params=tree.freeze(done.params, copy=False),
                         opt_state=tree.freeze(done.opt_state, copy=False))
    return finish_epoch(config, state, done)


def run_epoch(config: Config, state: TrainState) -> TrainState:
    """One pass over the data: shuffle, step through the minibatches, record history.

    The configuration is checked once (``check_config``); a failed kernel, a
    non-finite loss or params, or params that changed shape or dtype replay the
    epoch with every check on (``replay_failed_epoch``), and the error names the
    step; a ``NonFiniteError``'s ``state`` is the one this epoch started from.
    """
    check_config(config, state)
    return _run_checked_config_epoch(config, state)


def epoch_runner(config: Config) -> Callable[[TrainState], TrainState]:
    """``run(state) -> state``: ``run_epoch`` for a configuration ``fit`` has checked."""
    return functools.partial(_run_checked_config_epoch, config)


def finish_epoch(config: Config, state: TrainState, done: EpochResult) -> TrainState:
    """The state after an epoch whose steps produced ``done``: history recorded."""
    net, loss, params, model_state = config.net, config.loss, done.params, done.model_state
    added = {"loss": float(np.mean(done.losses))}  # an entry per History field it fills
    if len(done.accuracies):
        added["accuracy"] = float(np.mean(done.accuracies))
    if config.validation is not None:
        try:
            ev = evaluate(net, loss, params, *config.validation, model_state=model_state)
        except NonFiniteError as e:  # finite params whose eval-mode outputs overflow
            error = NonFiniteError(f"run_epoch: evaluating the validation data after epoch "
                                   f"{state.epoch}: {e}")
            error.state = state
            raise error from e
        added["val_loss"] = ev.loss
        if ev.accuracy is not None:
            added["val_accuracy"] = ev.accuracy
    if config.snapshot is not None and state.epoch % config.snapshot[1] == 0:
        # frozen (copied if writeable), so an observer cannot rewrite the history
        added["snapshot_epochs"] = state.epoch
        added["snapshots"] = tree.freeze(predict(net, params, config.snapshot[0], loss=loss,
                                                 model_state=model_state))
    history = state.history._replace(**{name: (*getattr(state.history, name), entry)
                                        for name, entry in added.items()})
    return TrainState(params, done.opt_state, done.next_key, state.epoch + 1, done.step,
                      history, model_state)


def _resume(template: TrainState, checkpoint_dir: Any, epochs: int) -> TrainState:
    """The newest readable checkpoint in ``checkpoint_dir``, checked against ``template``
    and rebuilt with its types; ``template`` itself when there is none."""
    found = io.load_latest_checkpoint(checkpoint_dir)
    if found is None:
        return template
    loaded, _, path = found
    who = f"fit(resume=True): {path}"
    try:
        fields = dict(zip(TrainState._fields, loaded, strict=True))
    except (TypeError, ValueError):
        raise CheckpointError(f"{who}: not a TrainState checkpoint") from None
    for name in ("params", "opt_state", "model_state"):
        try:
            tree.assert_same_shapes(getattr(template, name), fields[name], who=who,
                                    expected_name=name, actual_name="the checkpoint",
                                    check_dtype=True)
        except (ShapeError, ValueError) as e:
            raise CheckpointError(f"{e} (a checkpoint of another model?)") from None
        fields[name] = tree.unflatten_as(getattr(template, name), tree.leaves(fields[name]))
    saved = fields["history"]
    names = getattr(saved, "_fields", None)
    if names != History._fields:
        raise CheckpointError(f"{who}: expected a history with the fields "
                              f"{list(History._fields)}, got "
                              f"{list(names) if names is not None else describe(saved)} "
                              f"(a checkpoint written by another funcnet version?)")
    fields["history"] = History(*saved)
    fields["epoch"], fields["step"] = int(fields["epoch"]), int(fields["step"])
    if fields["epoch"] > epochs:
        raise ArgumentError(f"fit: the newest checkpoint {path} is at epoch {fields['epoch']}, "
                            f"past epochs={epochs}; ask for at least {fields['epoch']} epochs "
                            f"or use another checkpoint_dir")
    return TrainState(**fields)


def _progress_bar(total: int, initial: int, enabled: bool | None):
    if enabled is False or (enabled is None and (not sys.stderr.isatty()
                                                 or os.environ.get("CI"))):
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if enabled:
            raise ImportError("fit(progress=True) needs tqdm: pip install 'funcnet[experiments]'"
                              ) from None
        return None
    return tqdm(total=total, initial=initial, unit="epoch", leave=False)


def _check_fit_options(who: str, x: Any, y: Any, epochs: Any, validation: Any, snapshot: Any,
                       observers: Any, checkpoint_dir: Any, checkpoint_every: Any,
                       keep_checkpoints: Any, resume: bool, runner: Any, stop_when: Any) -> None:
    """Everything ``fit`` is told besides the model, checked before the first epoch."""
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 0:
        raise ArgumentError(f"{who}: epochs must be a non-negative integer, got {epochs!r}")
    for name, value, parts in (("validation", validation, "(x, y)"),
                               ("snapshot", snapshot, "(inputs, interval)")):
        if value is not None and not (isinstance(value, tuple | list) and len(value) == 2):
            raise ArgumentError(f"{who}: {name} must be a pair {parts}, got {describe(value)}")
    named = [("x", x), ("y", y)]
    if validation is not None:
        _check_data(f"{who}(validation)", *validation)
        named += [("validation x", validation[0]), ("validation y", validation[1])]
    for name, value in named:  # NaN data gives NaN losses, in training or after an epoch
        if not np.all(np.isfinite(value)):
            raise NonFiniteError(f"{who}: {name} holds NaN or inf at row "
                                 f"{int(np.argwhere(~np.isfinite(value))[0][0])}")
    if snapshot is not None:
        inputs, interval = snapshot
        if not is_array(inputs):
            raise ArrayTypeError(f"{who}: snapshot inputs must be an array, "
                                 f"got {describe(inputs)}")
        require_positive_int(who, "snapshot interval", interval)
    # the first save comes after an epoch (or the whole run): what it would refuse, now
    for name, value in (("checkpoint_every", checkpoint_every),
                        ("keep_checkpoints", keep_checkpoints)):
        if value is not None:
            require_positive_int(who, name, value)
            if checkpoint_dir is None:
                raise ArgumentError(f"{who}: {name} needs checkpoint_dir")
    if checkpoint_dir is not None:
        if not isinstance(checkpoint_dir, str | os.PathLike):
            raise ArgumentError(f"{who}: checkpoint_dir must be a path (str or os.PathLike), "
                                f"got {describe(checkpoint_dir)}")
        if os.path.exists(checkpoint_dir) and not os.path.isdir(checkpoint_dir):
            raise ArgumentError(f"{who}: checkpoint_dir must be a directory, got "
                                f"{os.fspath(checkpoint_dir)!r}, which is a file")
    if resume and checkpoint_dir is None:
        raise ArgumentError(f"{who}: resume=True needs checkpoint_dir")
    earlier = [] if checkpoint_dir is None or resume else io.list_checkpoints(checkpoint_dir)
    if earlier:  # a new run's checkpoints would mix with them, and resume take the newest
        raise ArgumentError(f"{who}: checkpoint_dir {os.fspath(checkpoint_dir)!r} holds the "
                            f"checkpoints of an earlier run (epochs "
                            f"{', '.join(str(epoch) for epoch, _ in earlier)}); pass resume=True "
                            f"to go on from the newest, or give an empty directory")
    for i, observer in enumerate(observers):
        if not callable(observer):
            raise ArgumentError(f"{who}: observers[{i}] must be callable, got {describe(observer)}")
    for name, value, what in (("runner", runner, "a function config -> run"),
                              ("stop_when", stop_when, "a function (state, metrics) -> bool")):
        if value is not None and not callable(value):
            raise ArgumentError(f"{who}: {name} must be {what} or None, got {describe(value)}")


def _save_on_the_way_out(error: BaseException, directory: Any, state: TrainState, saved: int,
                         keep: int | None) -> None:
    """Save ``state``, the last completed epoch of a run that ``error`` ends, into the
    checkpoint ``directory`` unless it holds that epoch already or saving is what failed;
    a note on ``error`` says where it went, or why it could not be saved."""
    if directory is None or state.epoch == saved or isinstance(error, CheckpointError):
        return
    try:
        path = io.save_checkpoint(directory, state, state.epoch, keep=keep)
    except CheckpointError as e:
        error.add_note(f"fit: the state after epoch {state.epoch} could not be saved: {e}")
    else:
        error.add_note(f"fit: the state after epoch {state.epoch} was saved to {path}; "
                       f"resume=True goes on from it")


def fit(net: Layer, loss: Loss, optimizer: Optimizer, params: Any, data: tuple[Any, Any], *,
        epochs: int, batch_size: int, key: Any, shuffle: bool = True, drop_last: bool = False,
        validation: tuple[Any, Any] | None = None, snapshot: tuple[Any, int] | None = None,
        observers: Sequence[Callable[[TrainState, dict], Any]] = (),
        progress: bool | None = None, checkpoint_dir: str | os.PathLike | None = None,
        checkpoint_every: int | None = None, keep_checkpoints: int | None = None,
        resume: bool = False,
        runner: Callable[[Config], Callable[[TrainState], TrainState]] | None = None,
        stop_when: Callable[[TrainState, dict], bool] | None = None,
        ) -> TrainState:
    """Train for ``epochs`` epochs (a fold of ``run_epoch``); return the final ``TrainState``.

    Args:
      params: initial parameters (from ``net.init``).
      data: ``(x, y)`` numpy arrays with samples along axis 0.
      epochs: number of epochs (0 returns the initial state).
      batch_size: samples per step: 1 (note 000), any minibatch, or n (full batch).
      key: a ``funcnet.random`` key; the run is a pure function of it.
      shuffle, drop_last: as ``minibatches``.
      validation: optional ``(x, y)`` evaluated after every epoch.
      snapshot: optional ``(inputs, interval)``: predictions kept every ``interval`` epochs.
      observers: ``observer(state, metrics)`` after each epoch, only watching; ``metrics``
        holds ``epoch`` and the epoch's ``loss``, ``accuracy`` (classification),
        ``val_loss`` and ``val_accuracy`` (with validation). An exception an observer
        raises (``StopIteration`` included) ends ``fit`` with it; ``stop_when`` ends early.
      progress: a tqdm bar; default on at a terminal, off when the CI variable is set.
      checkpoint_dir, checkpoint_every, keep_checkpoints: save the state into
        ``checkpoint_dir`` every ``checkpoint_every`` epochs and after the last one,
        keeping the newest ``keep_checkpoints`` (default all). A run that ends on an
        exception (Ctrl-C, a ``NonFiniteError``, an observer's) saves its last completed
        epoch first, unless saving is what failed; a note on the exception says where.
      resume: continue from the newest readable checkpoint in ``checkpoint_dir``; without
        it, a ``checkpoint_dir`` holding checkpoints is refused (the two runs' would mix).
      runner: ``runner(config) -> run``, ``run(state) -> state`` running one epoch of a
        checked configuration; default ``train.epoch_runner`` (numpy).
        ``funcnet.jit.epoch_runner`` compiles the epoch with ``jax.jit`` (needs jax): the
        same hand-written forward, backward and update, matching to rounding.
      stop_when: ``stop_when(state, metrics) -> bool`` after each epoch (after the
        observers); True ends the run there, saving a checkpoint when ``checkpoint_dir``
        is given. ``state.history`` holds every epoch so far: ``lambda state, m:
        min(state.history.val_loss) < min(state.history.val_loss[-5:])`` stops when the
        validation loss has not improved for 5 epochs.

    Raises:
      NonFiniteError: a loss or gradient became NaN or inf; the message names the
        epoch, step and parameter path; the error's ``state`` is the run's last finite
        state (its history included).

    >>> from funcnet import data, layers, losses, optim, random
    >>> d = data.xor()
    >>> net = layers.mlp([4, 1], activation="tanh")
    >>> params, _ = net.init(random.key(0), (2,))
    >>> state = fit(net, losses.sigmoid_binary_cross_entropy(), optim.adam(0.05), params,
    ...             (d.x, d.t), epochs=300, batch_size=4, key=random.key(1), progress=False)
    >>> state.epoch, state.step, len(state.history.loss), state.history.loss[-1] < 0.05
    (300, 300, 300, True)
    """
    who = "fit"
    x, y = data if isinstance(data, tuple | list) and len(data) == 2 else (data, None)
    if y is None:
        raise ArgumentError(f"{who}: data must be a pair (x, y), got {describe(data)}")
    batch_size = _check_batch_size(who, batch_size, _check_data(who, x, y))
    _check_fit_options(who, x, y, epochs, validation, snapshot, observers, checkpoint_dir,
                       checkpoint_every, keep_checkpoints, resume, runner, stop_when)
    config = Config(net, loss, optimizer, x, y, batch_size, shuffle, drop_last,
                    tuple(validation) if validation is not None else None,
                    tuple(snapshot) if snapshot is not None else None)
    run = (epoch_runner if runner is None else runner)(config)
    state = init_state(net, optimizer, params, key, in_shape=x.shape[1:])
    if resume:
        state = _resume(state, checkpoint_dir, epochs)
    check_config(config, state)
    _check_eval_inputs(who, config, state)
    bar = _progress_bar(epochs, state.epoch, progress)
    # The history so far, one list per field. Each epoch runs on a state with an empty
    # history and its entries are appended here; the whole History is built only for
    # what shows it: observers, stop_when, a checkpoint, the final state.
    recorded = [list(field) for field in state.history]
    saved = [state.epoch]  # the newest epoch checkpoint_dir holds from this run (or resumed)

    def with_history(current: TrainState) -> TrainState:
        return current._replace(history=History(*map(tuple, recorded)))

    def after_epoch(new: TrainState) -> bool:
        """Show an epoch to the observers, then stop_when, whose answer is returned; save a
        checkpoint every checkpoint_every epochs and at the last (or stopping) epoch."""
        metrics = {"epoch": new.epoch}
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if getattr(new.history, name):  # this epoch's history alone
                metrics[name] = getattr(new.history, name)[-1]
        whole = with_history(new) if observers or stop_when is not None else None
        for observer in observers:
            observer(whole, dict(metrics))
        stop = False if stop_when is None else stop_when(whole, dict(metrics))
        if not isinstance(stop, bool | np.bool_):
            raise ArgumentError(f"fit: stop_when must return True or False, got "
                                f"{describe(stop)} after epoch {new.epoch}")
        due = checkpoint_every is not None and new.epoch % checkpoint_every == 0
        if checkpoint_dir is not None and (due or stop or new.epoch == epochs):
            io.save_checkpoint(checkpoint_dir, with_history(new), new.epoch,
                               keep=keep_checkpoints)
            saved.append(new.epoch)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.4g}" for k, v in metrics.items() if k != "epoch"})
        return bool(stop)

    # functools.reduce(run, epochs, state), written as a loop that stop_when can end
    final = state
    try:
        for _ in range(epochs - state.epoch):
            new = run(final._replace(history=History()))
            for field, entries in zip(recorded, new.history, strict=True):
                field.extend(entries)
            final = new
            if after_epoch(final):
                break
    except BaseException as e:  # a NonFiniteError, Ctrl-C, an observer's: epochs done are kept
        if isinstance(e, NonFiniteError) and isinstance(getattr(e, "state", None), TrainState):
            e.state = with_history(e.state)
        _save_on_the_way_out(e, checkpoint_dir, with_history(final), saved[-1], keep_checkpoints)
        raise
    finally:
        if bar is not None:
            bar.close()
    return with_history(final)
