"""Losses: the layer protocol with a target and without an upstream gradient.

    forward(pred, target) -> (value, cache)
    backward(cache)       -> dpred            # the gradient of value w.r.t. pred

Reductions. ``sum_of_squares`` is a plain SUM over every element (the notes' ½·Σ(y − t)²).
Every other loss is a BATCH MEAN: the per-sample loss is the sum over that sample's outputs
(classes, units), and the value is the mean of those over the batch axis, so a loss does not
grow with the batch size and its gradient carries a ``1 / batch`` factor. For one output per
sample, ``mse`` is the usual mean squared error.

Targets. ``pred`` has shape (batch, ...). A target has pred's shape; the multi-class losses
(``cross_entropy``, ``softmax_cross_entropy``) also take integer class labels of shape
(batch,). Targets are cast to pred's dtype, so float32 predictions give a float32 loss and
gradient.

>>> import numpy as np
>>> loss = softmax_cross_entropy()
>>> value, cache = loss.forward(np.array([[1000.0, -1000.0]]), np.array([1]))
>>> float(value), loss.backward(cache)
(2000.0, array([[ 1., -1.]]))
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import numpy as np

from funcnet._kernel import unchecked
from funcnet._xp import LOG_GUARD, exp_limit, namespace, sigmoid_fn
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    NonFiniteError,
    ShapeError,
    StructureError,
    describe,
    is_array,
)

__all__ = [
    "Loss", "math_of", "LossKernel", "sum_of_squares", "mse", "cross_entropy",
    "binary_cross_entropy", "softmax_cross_entropy", "sigmoid_binary_cross_entropy",
    "CONSTRUCTORS", "LOG_GUARD",
]


class LossKernel(NamedTuple):
    """A loss's math (``forward``, ``backward``: no checks) and its ``check(pred, target)``,
    which reads only pred's ``shape`` and ``dtype`` (a layer's ``ArraySpec`` will do) and
    target's values. ``entries``: the checked ``(forward, backward)`` built from it."""

    forward: Callable[[Any, Any], tuple[Any, Any]]
    backward: Callable[[Any], Any]
    check: Callable[[Any, Any], None]
    entries: tuple[Callable, Callable] | tuple[()] = ()


class Loss(NamedTuple):
    """A loss: ``forward(pred, target) -> (value, cache)``, ``backward(cache) -> dpred``.

    ``Loss(forward, backward)`` from two plain functions is a loss; the other fields:

    - ``name``: what errors and reports call it (``"mse"``).
    - ``on_logits``: ``"softmax"`` or ``"sigmoid"`` for a fused loss that applies that
      activation itself, so ``train.predict`` applies it to give probabilities.
    - ``classification``: True for a cross-entropy; ``train.evaluate`` reports accuracy.
    - ``kernel``: the math and the checks apart (a ``LossKernel``), for a loss whose
      functions check before they compute; ``fit`` checks once, then runs the kernel.
    """

    forward: Callable[[Any, Any], tuple[Any, Any]]
    backward: Callable[[Any], Any]
    name: str = "loss"
    on_logits: str | None = None
    classification: bool = False
    kernel: LossKernel | None = None


def math_of(loss: Loss) -> tuple[Callable, Callable]:
    """The unchecked ``(forward, backward)`` of a loss: its kernel's while its functions are
    the kernel's entries, else its own (a replaced function runs itself, not the kernel)."""
    public, kernel = (loss.forward, loss.backward), loss.kernel
    if kernel is None:
        return public
    return unchecked(public, (kernel.forward, kernel.backward), kernel.entries)


class _Checked(NamedTuple):
    """A cache as ``_checked_calls``' forward returns it: the loss's own, and pred's shape."""
    cache: Any
    shape: tuple


def _check_value(name: str, out: Any) -> Any:
    """``out``, what ``name``'s forward returned, unless it is not ``(value, cache)`` with a
    scalar value: what ``fit``, ``check_loss`` and ``jax.grad`` rely on."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise StructureError(f"{name}.forward: a loss's forward must return the pair (value, "
                             f"cache), got {describe(out)}")
    if not (hasattr(out[0], "shape") and len(out[0].shape) == 0 or isinstance(out[0], float)):
        raise ShapeError(f"{name}.forward: a loss's value must be a scalar (sum or average the "
                         f"per-element losses), got {describe(out[0])}")
    return out


def _check_dpred(name: str, shape: tuple, dpred: Any) -> Any:
    """``dpred`` unless it is not an array of pred's ``shape``."""
    if not is_array(dpred) or tuple(dpred.shape) != tuple(shape):
        raise ShapeError(f"{name}.backward: expected dpred, the gradient of the value with "
                         f"respect to pred, as an array of pred's shape {tuple(shape)}, got "
                         f"{describe(dpred)}")
    return dpred


def _checked_calls(loss: Loss) -> tuple[Callable, Callable]:
    """``(forward, backward)`` of ``loss``: its own while it checks itself (a ``kernel``),
    else its plain functions with ``_check_value`` and ``_check_dpred`` around them."""
    if loss.kernel is not None:
        return loss.forward, loss.backward

    def forward(pred, target):
        value, cache = _check_value(loss.name, loss.forward(pred, target))
        return value, _Checked(cache, tuple(pred.shape))

    def backward(cache):
        return _check_dpred(loss.name, cache.shape, loss.backward(cache.cache))

    return forward, backward


class DiffCache(NamedTuple):
    """``pred - target`` and the batch size."""
    diff: Any
    batch: int


class ProbCache(NamedTuple):
    """Predicted probabilities, the (one-hot) target, and the batch size."""
    pred: Any
    target: Any
    batch: int


class LogitCache(NamedTuple):
    """The probabilities computed from the logits, the target, and the batch size."""
    probs: Any
    target: Any
    batch: int


def _checked_loss(name: str, forward: Callable, backward: Callable, check: Callable,
                  cache_type: type, *, on_logits: str | None = None,
                  classification: bool = False) -> Loss:
    """A ``Loss`` whose ``forward`` runs ``check`` and whose ``backward`` checks its cache."""

    def checked_forward(pred, target):
        check(pred, target)
        return forward(pred, target)

    def checked_backward(cache):
        if not isinstance(cache, cache_type):
            raise StructureError(f"{name}.backward: expected the cache {name}.forward "
                                 f"returned (a {cache_type.__name__}), got {describe(cache)}")
        return backward(cache)

    checked_forward.__qualname__ = checked_forward.__name__ = f"{name}.forward"
    checked_backward.__qualname__ = checked_backward.__name__ = f"{name}.backward"
    return Loss(checked_forward, checked_backward, name, on_logits, classification,
                LossKernel(forward, backward, check, (checked_forward, checked_backward)))


def _check_pred(name: str, pred: Any) -> None:
    if not (hasattr(pred, "shape") and hasattr(pred, "dtype")
            and not isinstance(pred, np.generic)):
        raise ArrayTypeError(f"{name}: expected pred to be an array of shape (batch, ...), "
                             f"got {describe(pred)}")
    if len(pred.shape) < 1 or pred.shape[0] == 0:
        raise ShapeError(f"{name}: expected pred with a non-empty batch axis, "
                         f"got shape {tuple(pred.shape)}")
    if np.dtype(pred.dtype).kind != "f":
        raise ArrayTypeError(f"{name}: expected pred of a float dtype, got {pred.dtype}")


def _check_same_shape(name: str, pred: Any, target: Any) -> None:
    _check_pred(name, pred)
    if not is_array(target):
        raise ArrayTypeError(f"{name}: expected target to be an array of shape "
                             f"{tuple(pred.shape)}, got {describe(target)}")
    if tuple(target.shape) != tuple(pred.shape):
        raise ShapeError(f"{name}: target shape {tuple(target.shape)} does not match "
                         f"pred shape {tuple(pred.shape)}")
    if np.dtype(target.dtype).kind not in "biuf":
        raise ArrayTypeError(f"{name}: expected target of real numbers, got dtype {target.dtype}")


def _check_unit_interval(name: str, what: str, a: Any, hint: str = "") -> None:
    """Values must lie in [0, 1] (read only from a numpy array: a traced one has none yet)."""
    if isinstance(a, np.ndarray) and a.size and not ((a >= 0) & (a <= 1)).all():
        outside = a[~((a >= 0) & (a <= 1))]
        raise ArgumentError(f"{name}: expected {what} in [0, 1], got {outside.size} values "
                            f"outside, e.g. {outside.flat[0]}{hint}")


def _check_class_target(name: str, pred: Any, target: Any) -> None:
    """Integer labels (batch,) in [0, classes), or rows of pred's shape that are one-hot or
    non-negative and sum to 1."""
    _check_pred(name, pred)
    if len(pred.shape) != 2:
        raise ShapeError(f"{name}: expected pred of shape (batch, classes), "
                         f"got shape {tuple(pred.shape)}")
    if not is_array(target):
        raise ArrayTypeError(f"{name}: expected target to be an array of labels (batch,) or "
                             f"one-hot rows {tuple(pred.shape)}, got {describe(target)}")
    batch, classes = pred.shape
    if target.ndim == 1 and not _is_labels(target):
        raise ArrayTypeError(f"{name}: class labels must be integers in [0, {classes}), got "
                             f"dtype {target.dtype}; or give one-hot rows of shape "
                             f"{tuple(pred.shape)}")
    if not _is_labels(target):
        _check_same_shape(name, pred, target)
        if isinstance(target, np.ndarray) and target.size:
            sums = target.sum(axis=1)
            bad = (target < 0).any(axis=1) | ~(np.abs(sums - 1) <= 1e-4)
            if bad.any():
                row = int(np.argmax(bad))
                raise ArgumentError(f"{name}: target rows must be one-hot or probabilities "
                                    f"summing to 1; row {row} is {target[row].tolist()} "
                                    f"(sum {sums[row]})")
    elif target.shape[0] != batch:
        raise ShapeError(f"{name}: got {target.shape[0]} labels for a batch of {batch}")
    elif isinstance(target, np.ndarray) and target.size and (target.min() < 0
                                                             or target.max() >= classes):
        raise ShapeError(f"{name}: labels must lie in [0, {classes}), got values from "
                         f"{target.min()} to {target.max()}")


def _is_labels(target: Any) -> bool:
    return target.ndim == 1 and np.dtype(target.dtype).kind in "iu"


def _as_pred_dtype(target: Any, pred: Any) -> Any:
    """The target in pred's dtype, so float32 predictions give a float32 loss."""
    return target if target.dtype == pred.dtype else target.astype(pred.dtype)


def _one_hot(target: Any, pred: Any, xp: Any) -> Any:
    """One-hot rows in pred's dtype from integer labels; other targets only cast."""
    if _is_labels(target):
        return (target[:, None] == xp.arange(pred.shape[1])).astype(pred.dtype)
    return _as_pred_dtype(target, pred)


def _logit_backward(cache: LogitCache) -> Any:
    """Both fused losses' gradient, ``(probs - t) / batch``."""
    probs, t, batch = cache
    return (probs - t) / batch


def sum_of_squares() -> Loss:
    """``0.5 * sum((pred - target)**2)`` over every element (SUM); ``dpred = pred - target``.

    The loss of notes 000 and 003, with batch size 1 there.
    """
    name = "sum_of_squares"

    def forward(pred, target):
        diff = pred - _as_pred_dtype(target, pred)
        return 0.5 * (diff * diff).sum(), DiffCache(diff, pred.shape[0])

    def backward(cache):
        return cache.diff

    return _checked_loss(name, forward, backward, partial(_check_same_shape, name), DiffCache)


def mse() -> Loss:
    """Squared error summed over a sample's outputs, averaged over the batch (BATCH MEAN).

    ``value = sum((pred - target)**2) / batch``; ``dpred = 2 (pred - target) / batch``.
    """
    name = "mse"

    def forward(pred, target):
        diff = pred - _as_pred_dtype(target, pred)
        return (diff * diff).sum() / pred.shape[0], DiffCache(diff, pred.shape[0])

    def backward(cache):
        return cache.diff * (2 / cache.batch)

    return _checked_loss(name, forward, backward, partial(_check_same_shape, name), DiffCache)


def cross_entropy() -> Loss:
    """Cross-entropy on probabilities, ``-sum(t * log(pred + 1e-7)) / batch`` (BATCH MEAN).

    The 1e-7 guard (``LOG_GUARD``) is the notes' own, so their numbers reproduce;
    ``dpred = -t / (pred + 1e-7) / batch``. On logits, the fused ``softmax_cross_entropy``
    needs no guard.
    """
    name = "cross_entropy"

    def forward(pred, target):
        xp = namespace(pred, target)
        t = _one_hot(target, pred, xp)
        batch = pred.shape[0]
        return -(t * xp.log(pred + LOG_GUARD)).sum() / batch, ProbCache(pred, t, batch)

    def backward(cache):
        return -cache.target / (cache.pred + LOG_GUARD) / cache.batch

    def check(pred, target):
        _check_class_target(name, pred, target)
        _check_unit_interval(name, "pred (probabilities)", pred,
                             "; for logits use softmax_cross_entropy")

    return _checked_loss(name, forward, backward, check, ProbCache, classification=True)


def binary_cross_entropy() -> Loss:
    """Binary cross-entropy on probabilities (note 002), BATCH MEAN.

    ``value = -sum(t log p + (1 - t) log(1 - p)) / batch`` with ``p`` clipped into
    ``[1e-7, 1 - 1e-7]``, so a saturated prediction gives a large finite loss, not ``inf``;
    ``dpred = (p - t) / (p (1 - p)) / batch`` inside the clip and 0 where it bit.
    """
    name = "binary_cross_entropy"

    def forward(pred, target):
        xp = namespace(pred, target)
        t = _as_pred_dtype(target, pred)
        p = xp.minimum(xp.maximum(pred, LOG_GUARD), 1 - LOG_GUARD)
        batch = pred.shape[0]
        value = -(t * xp.log(p) + (1 - t) * xp.log(1 - p)).sum() / batch
        return value, ProbCache(p, t, batch)  # the clipped probabilities

    def backward(cache):
        p, t, batch = cache
        inside = (p > LOG_GUARD) & (p < 1 - LOG_GUARD)
        return namespace(p).where(inside, (p - t) / (p * (1 - p)), 0) / batch

    def check(pred, target):
        _check_same_shape(name, pred, target)
        _check_unit_interval(name, "pred (probabilities)", pred,
                             "; for logits use sigmoid_binary_cross_entropy")
        _check_unit_interval(name, "target", target)

    return _checked_loss(name, forward, backward, check, ProbCache, classification=True)


def softmax_cross_entropy() -> Loss:
    """Softmax then cross-entropy, fused, on logits (BATCH MEAN); stable for any logits.

    ``value = sum(t * (logsumexp(z) - z)) / batch``, computed with the row maximum shifted
    out, so logits of ±1000 give exact finite values; ``dpred = (softmax(z) - t) / batch``
    (the note's ``(y - t) / batch``). Targets: one-hot (or probability) rows, or labels.
    """
    name = "softmax_cross_entropy"

    def forward(pred, target):
        xp = namespace(pred, target)
        t = _one_hot(target, pred, xp)
        shifted = pred - pred.max(axis=-1, keepdims=True)
        e = xp.exp(xp.maximum(shifted, -exp_limit(pred.dtype)))
        total = e.sum(axis=-1, keepdims=True)
        log_probs = shifted - xp.log(total)
        batch = pred.shape[0]
        return -(t * log_probs).sum() / batch, LogitCache(e / total, t, batch)

    def check(pred, target):
        _check_class_target(name, pred, target)
        if isinstance(pred, np.ndarray) and not np.isfinite(pred).all():
            raise NonFiniteError(f"{name}: pred (logits) holds NaN or inf at row "
                                 f"{int(np.argwhere(~np.isfinite(pred))[0][0])}")

    return _checked_loss(name, forward, _logit_backward, check, LogitCache,
                         on_logits="softmax", classification=True)


def sigmoid_binary_cross_entropy() -> Loss:
    """Sigmoid then binary cross-entropy, fused, on logits (BATCH MEAN); stable for any logits.

    Per element ``max(z, 0) - z t + log(1 + exp(-|z|))``, which equals ``-(t log σ(z) +
    (1 - t) log(1 - σ(z)))`` without ever taking the log of a rounded-off 0;
    ``dpred = (σ(z) - t) / batch``.
    """
    name = "sigmoid_binary_cross_entropy"

    def forward(pred, target):
        xp = namespace(pred, target)
        t = _as_pred_dtype(target, pred)
        # max(z, 0) and |z| written with where, so that jax.grad of this same forward
        # takes the slopes 0 and -1 at z = 0, which add up to the true 1/2 there
        positive = pred > 0
        magnitude = xp.where(positive, pred, -pred)
        per_element = (xp.where(positive, pred, 0) - pred * t
                       + xp.log1p(xp.exp(-xp.minimum(magnitude, exp_limit(pred.dtype)))))
        batch = pred.shape[0]
        return per_element.sum() / batch, LogitCache(sigmoid_fn(pred, xp), t, batch)

    def check(pred, target):
        _check_same_shape(name, pred, target)
        _check_unit_interval(name, "target", target)

    return _checked_loss(name, forward, _logit_backward, check, LogitCache,
                         on_logits="sigmoid", classification=True)


#: Every public loss constructor, by name. The test registry must cover each one.
CONSTRUCTORS = {f.__name__: f for f in (sum_of_squares, mse, cross_entropy, binary_cross_entropy,
                                        softmax_cross_entropy, sigmoid_binary_cross_entropy)}
