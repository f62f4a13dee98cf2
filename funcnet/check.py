"""Gradient checks: every hand-written backward against two referees.

- ``jax.grad`` of the very same forward code (jax is imported here, lazily,
  and runs in float64). Agreement should be at rounding level: 1e-7 relative.
- Central finite differences element by element (the five-point stencil,
  error O(h^4), h = 1e-4). Agreement within 1e-6 relative.

A layer is checked through the scalar ``sum(forward(params, x) * dy)`` for a
fixed random ``dy``: its gradient with respect to ``(params, x)`` is exactly
what ``backward(cache, dy)`` returns. A loss is checked through its value.

Kinks. Where a function has a corner (relu at 0, a tie in a max) the central
difference straddles it and measures the average of two slopes, while the
hand-written backward (correctly) picks one of them. The checker also takes
the one-sided differences; an element whose mismatch is explained because the
two sides disagree and the hand-written value equals one of them is counted
as a *kink*, reported, and not a failure.

Relative error is the cs231n one, ``|a - b| / max(|a| + |b|, floor)``, taken
as the maximum over a leaf's elements. The floor is 1e-8, or a millionth of
the largest gradient in the check if that is more (a gradient that is zero
only by cancellation carries the rounding noise of the terms that cancelled).
Against finite differences it is 1e-4 of the largest gradient, or the
rounding noise of the differences divided by the tolerance if that is more.

>>> import numpy as np
>>> from funcnet.layers import dense
>>> from funcnet.random import key
>>> layer = dense(3)
>>> params, _ = layer.init(key(0), (2,))
>>> report = check_layer(layer, params, np.ones((4, 2)), oracles=("numerical",))
>>> report.ok, [leaf.path for leaf in report.leaves]
(True, ['x', "params['W']", "params['b']"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from funcnet import random
from funcnet import tree as ftree
from funcnet.errors import ArgumentError, GradientCheckError
from funcnet.layers._base import Layer, math_of
from funcnet.losses import Loss
from funcnet.losses import math_of as loss_math_of

__all__ = [
    "numerical_gradient",
    "relative_error",
    "check_layer",
    "check_loss",
    "check_function",
    "GradReport",
    "LeafCheck",
    "TOL_JAX",
    "TOL_NUMERICAL",
    "STEP",
]

#: Default tolerances (max relative error) and finite-difference step.
TOL_JAX = 1e-7
TOL_NUMERICAL = 1e-6
STEP = 1e-4
#: Floor of the relative-error denominator (cs231n's).
ERROR_FLOOR = 1e-8
#: ...raised to this fraction of the largest gradient in the whole check: a gradient that is
#: zero only by cancellation (a bias feeding batch norm) carries rounding noise of the size
#: of the terms that cancelled, and is judged against that scale, not against itself.
SCALE_FLOOR = 1e-6
#: The same for finite differences, whose own noise is larger: an element below 1e-4 of the
#: largest gradient is held to an absolute 1e-10 of it (at the default tolerance).
SCALE_FLOOR_NUMERICAL = 1e-4
#: At a kink the hand-written value equals one one-sided difference within this error
#: (the one-sided differences carry an O(h) error of their own)...
_SIDE_MATCH = 1e-4
#: ...while the two sides differ by at least this many times more.
_SIDES_RATIO = 10.0


def _elementwise_error(a: Any, b: Any, floor: float = ERROR_FLOOR) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), floor)


def relative_error(a: Any, b: Any) -> float:
    """Max over elements (and over leaves, for trees) of ``|a - b| / max(|a| + |b|, 1e-8)``.

    >>> round(relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0 + 2e-6])), 9)
    5e-07
    """
    ftree.assert_same_shapes(a, b, who="relative_error", expected_name="a", actual_name="b")
    errors = [float(_elementwise_error(x, y).max(initial=0.0))
              for x, y in zip(ftree.leaves(a), ftree.leaves(b), strict=True)]
    return max(errors, default=0.0)


def _is_float(leaf: Any) -> bool:
    return np.result_type(leaf).kind == "f" if hasattr(leaf, "dtype") or isinstance(
        leaf, float) else False


def _as_float64(tree: Any) -> Any:
    """Float leaves to float64 numpy arrays (python floats included); others unchanged."""
    return ftree.map(
        lambda v: np.asarray(v, dtype=np.float64) if _is_float(v) else v, tree)


def _differences(f: Callable[[Any], Any], tree: Any, h: float):
    """Central, left and right differences of scalar ``f`` for every float leaf of ``tree``,
    and the rounding noise of those differences.

    Central: the five-point stencil ``(-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h``,
    whose error is O(h^4), so ``h`` can be large enough that rounding in ``f``
    does not swamp small gradients. One-sided: the O(h^2) stencils
    ``±(-3f(x) + 4f(x±h) - f(x±2h)) / 2h``, each looking at one side only.
    The noise is what rounding in ``f`` alone can put into a difference:
    ``4 eps max|f| / h`` (the stencil weights sum to at most 8/2h).
    """
    flat = ftree.leaves(tree)
    f0 = float(f(tree))
    largest = abs(f0)
    central, left, right = [], [], []
    for i, leaf in enumerate(flat):
        if not _is_float(leaf):
            central.append(None), left.append(None), right.append(None)
            continue
        base = np.asarray(leaf)
        c, lo, hi = (np.zeros(base.shape, np.float64) for _ in range(3))
        for index in np.ndindex(base.shape):
            values = {}
            for k in (2, 1, -1, -2):
                bumped = np.array(base, copy=True)
                bumped[index] = bumped[index] + k * h
                trial = list(flat)
                trial[i] = bumped
                values[k] = float(f(ftree.unflatten_as(tree, trial)))
                largest = max(largest, abs(values[k]))
            c[index] = (-values[2] + 8 * values[1] - 8 * values[-1] + values[-2]) / (12 * h)
            hi[index] = (-3 * f0 + 4 * values[1] - values[2]) / (2 * h)
            lo[index] = (3 * f0 - 4 * values[-1] + values[-2]) / (2 * h)
        central.append(c), left.append(lo), right.append(hi)
    return central, left, right, 4 * np.finfo(np.float64).eps * largest / h


def numerical_gradient(f: Callable[[Any], Any], tree: Any, *, h: float = STEP) -> Any:
    """Central differences (five-point) of a scalar ``f`` at every float leaf of ``tree``.

    The caller's arrays are never written: each trial perturbs a copy. Leaves
    that are not floats (integer labels) get a zero gradient of their shape.

    >>> g = numerical_gradient(lambda t: (t["a"] ** 2).sum(), {"a": np.array([1.0, -2.0])})
    >>> np.round(g["a"], 6)
    array([ 2., -4.])
    """
    central, _, _, _ = _differences(f, tree, h)
    flat = ftree.leaves(tree)
    return ftree.unflatten_as(tree, [c if c is not None else np.zeros(np.shape(v))
                                     for c, v in zip(central, flat, strict=True)])


class LeafCheck(NamedTuple):
    """The verdict on one leaf (``x``, or a parameter path such as ``params[0]['W']``)."""

    path: str
    shape: tuple[int, ...]
    error_jax: float | None  # max relative error against jax.grad (None: not checked)
    error_numerical: float | None  # max relative error against central differences
    kinks: int  # elements whose mismatch a kink explains
    worst_index: tuple[int, ...] | None  # where the largest unexplained error sits
    ok: bool


class GradReport(NamedTuple):
    """A per-leaf gradient check report; ``str(report)`` is a table."""

    name: str
    leaves: tuple[LeafCheck, ...]
    tol_jax: float
    tol_numerical: float

    @property
    def ok(self) -> bool:
        """True when every leaf passed (kinks explained count as passed)."""
        return all(leaf.ok for leaf in self.leaves)

    @property
    def kinks(self) -> int:
        """How many elements sat on a kink, over all leaves."""
        return sum(leaf.kinks for leaf in self.leaves)

    def __str__(self) -> str:
        def fmt(e: float | None) -> str:
            return "-" if e is None else f"{e:.2e}"

        rows = [f"gradient check of {self.name} (tolerances: jax {self.tol_jax:.0e}, "
                f"numerical {self.tol_numerical:.0e})",
                f"  {'leaf':<28}{'shape':<14}{'vs jax':>10}{'vs numeric':>12}{'kinks':>7}  ok"]
        for leaf in self.leaves:
            rows.append(f"  {leaf.path:<28}{str(leaf.shape):<14}{fmt(leaf.error_jax):>10}"
                        f"{fmt(leaf.error_numerical):>12}{leaf.kinks:>7}  "
                        f"{'yes' if leaf.ok else 'NO at ' + str(leaf.worst_index)}")
        if self.kinks:
            rows.append("  kinks: the central difference straddles a corner (relu at 0, a tie "
                        "in a max); the hand-written value equals one one-sided slope there.")
        return "\n".join(rows)

    def raise_if_failed(self) -> GradReport:
        """Raise ``GradientCheckError`` with the table if any leaf failed; else return self."""
        if not self.ok:
            raise GradientCheckError(str(self))
        return self


def _jax_gradient(objective: Callable[[Any], Any], tree: Any) -> list:
    """``jax.grad`` of ``objective`` in float64 with respect to the float leaves of ``tree``."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:  # pragma: no cover - exercised only without jax
        raise ImportError(
            "funcnet.check: the jax oracle needs jax (pip install 'funcnet[test]'); "
            "pass oracles=('numerical',) to check against finite differences only"
        ) from None
    flat = ftree.leaves(tree)
    where = [i for i, v in enumerate(flat) if _is_float(v)]
    with jax.enable_x64(True):
        def on_floats(floats):
            trial = list(flat)
            for i, v in zip(where, floats, strict=True):
                trial[i] = v
            return objective(ftree.unflatten_as(tree, trial))

        floats = [jnp.asarray(flat[i], dtype=jnp.float64) for i in where]
        grads = jax.jit(jax.grad(on_floats))(floats)  # one compile, not one per primitive
        out = [None] * len(flat)
        for i, g in zip(where, grads, strict=True):
            out[i] = np.asarray(g, dtype=np.float64)
    return out


def _judge(name, paths, flat, hand, reference_jax, numeric, tol_jax, tol_numerical):
    central, left, right, noise = numeric if numeric is not None else (None,) * 4
    scale = max((float(np.max(np.abs(np.asarray(g, dtype=np.float64)), initial=0.0))
                 for g, leaf in zip(hand, flat, strict=True) if _is_float(leaf)), default=0.0)
    lowest_jax = max(ERROR_FLOOR, SCALE_FLOOR * scale)
    # Below the rounding noise of the differences no verdict is possible: an element is
    # compared relative to at least noise / tolerance.
    floor = max(ERROR_FLOOR, SCALE_FLOOR_NUMERICAL * scale, (noise or 0.0) / tol_numerical)
    leaves = []
    for i, (path, leaf) in enumerate(zip(paths, flat, strict=True)):
        if not _is_float(leaf):
            continue
        h = np.asarray(hand[i], dtype=np.float64)
        if h.shape != np.shape(leaf):
            raise GradientCheckError(
                f"gradient check of {name}: the hand-written gradient of {path} has shape "
                f"{h.shape}, expected {np.shape(leaf)}")
        kink = np.zeros(h.shape, bool)
        if central is not None:
            side = np.minimum(_elementwise_error(h, left[i], floor),
                              _elementwise_error(h, right[i], floor))
            kink = ((_elementwise_error(h, central[i], floor) > tol_numerical)
                    & (side < _SIDE_MATCH)
                    & (_elementwise_error(left[i], right[i], floor) > _SIDES_RATIO * side))
        bad = np.zeros(h.shape, bool)
        errs = {}
        for label, ref, tol, lowest in (("jax", reference_jax, tol_jax, lowest_jax),
                                        ("numerical", central, tol_numerical, floor)):
            if ref is None:
                errs[label] = None
                continue
            e = _elementwise_error(h, ref[i], lowest)
            errs[label] = float(e[~kink].max(initial=0.0))
            bad |= (e > tol) & ~kink
        worst = None
        if bad.any():
            worst_flat = np.argmax(np.where(bad, 1.0, 0.0))
            worst = tuple(int(j) for j in np.unravel_index(worst_flat, h.shape))
        leaves.append(LeafCheck(path, tuple(h.shape), errs["jax"], errs["numerical"],
                                int(kink.sum()), worst, not bad.any()))
    return leaves


def check_function(
    objective: Callable[[Any], Any],
    hand_gradient: Any,
    tree: Any,
    *,
    name: str = "function",
    root: str = "",
    oracles: Sequence[str] = ("jax", "numerical"),
    tol_jax: float = TOL_JAX,
    tol_numerical: float = TOL_NUMERICAL,
    h: float = STEP,
    raise_on_failure: bool = False,
) -> GradReport:
    """Check ``hand_gradient`` (a tree like ``tree``) as the gradient of scalar ``objective``.

    ``objective`` must be written with the namespace of its inputs, so jax can
    trace it. Only float leaves are checked.
    """
    unknown = set(oracles) - {"jax", "numerical"}
    if unknown or not oracles:
        raise ArgumentError(f"check: oracles must be a non-empty subset of ('jax', "
                            f"'numerical'), got {tuple(oracles)!r}")
    tree = _as_float64(tree)
    hand_flat = ftree.leaves(hand_gradient)
    paths = [ftree.path_str(p, root) or root or "value"
             for p, _ in ftree.flatten_with_paths(tree)]
    flat = ftree.leaves(tree)
    if len(hand_flat) != len(flat):
        ftree.assert_same_structure(tree, hand_gradient, who=f"gradient check of {name}",
                                    expected_name="inputs", actual_name="hand gradient")
    reference = _jax_gradient(objective, tree) if "jax" in oracles else None
    numeric = _differences(objective, tree, h) if "numerical" in oracles else None
    report = GradReport(name, tuple(_judge(name, paths, flat, hand_flat, reference, numeric,
                                           tol_jax, tol_numerical)), tol_jax, tol_numerical)
    return report.raise_if_failed() if raise_on_failure else report


def check_layer(
    layer: Layer,
    params: Any,
    x: Any,
    dy: Any = None,
    *,
    seed: int = 0,
    forward_kwargs: dict | None = None,
    **options: Any,
) -> GradReport:
    """Check ``layer.backward`` (``dx`` and ``dparams``) at ``(params, x)``.

    Everything is cast to float64 first. ``dy`` defaults to standard normal
    noise from ``seed``. ``forward_kwargs`` passes ``key``/``train``/``state``
    to an extended layer. ``options`` go to ``check_function`` (oracles,
    tolerances, step, ``raise_on_failure``).
    """
    kwargs = dict(forward_kwargs or {})
    inputs = _as_float64({"params": params, "x": x})
    y, cache = layer.forward(inputs["params"], inputs["x"], **kwargs)  # checked once, here
    if dy is None:
        dy = random.normal(random.key(seed), np.shape(y))
    dy = np.asarray(dy, dtype=np.float64)
    dx, dparams = layer.backward(cache, dy)
    forward = math_of(layer)[0]

    def objective(t):
        out, _ = forward(t["params"], t["x"], **kwargs)
        return (out * dy).sum()

    # dm-tree flattens the dict in sorted key order: "params" before "x".
    hand = {"params": dparams, "x": dx}
    raise_on_failure = options.pop("raise_on_failure", False)  # after renaming, below
    report = check_function(objective, hand, inputs, name=layer.name, **options)
    renamed = [leaf._replace(path=leaf.path.replace("['x']", "x", 1).replace(
        "['params']", "params", 1)) for leaf in report.leaves]
    renamed.sort(key=lambda leaf: not leaf.path.startswith("x"))  # x first, then params
    report = report._replace(leaves=tuple(renamed))
    return report.raise_if_failed() if raise_on_failure else report


def check_loss(loss: Loss, pred: Any, target: Any, *, name: str = "loss",
               **options: Any) -> GradReport:
    """Check ``loss.backward`` (``dpred``) at ``(pred, target)``; ``options`` as ``check_layer``."""
    pred = np.asarray(pred, dtype=np.float64)
    target = _as_float64(target) if _is_float(target) else target
    _, cache = loss.forward(pred, target)  # checked once, here
    dpred = loss.backward(cache)
    forward = loss_math_of(loss)[0]

    def objective(p):
        return forward(p, target)[0]

    name = getattr(loss.forward, "__qualname__", name).removesuffix(".forward")
    return check_function(objective, dpred, pred, name=name, root="pred", **options)
