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

Ties. Where several corners meet at one point (a max over windows of equal
values: a conv over an all-zero patch feeding a max pool) the gradient is not
defined, and each referee picks its own value: the backward takes the first
maximum of every window, ``jax.grad`` splits among the tied entries, and the
differences give the average of the two one-sided slopes. The hand-written
value is then neither slope. Such an element is a *tie* (a kink of its own
kind, reported, not a failure) when, with every other input moved a tiny
random step (``1e-6``), the slope along it is neither one-sided slope at one
of 16 such nearby points. One corner alone only ever shows its two sides
there, so a wrong value at a single corner (relu at 0) still fails. At a tie
no value can be judged from outside; ``check_serial`` checks each layer alone,
where a tie of the network is often a plain corner of one layer. Both the jax
and the finite-difference columns leave kinks and ties out. Classifying needs
the differences: with ``oracles=("jax",)`` alone a mismatch at a kink fails.

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
from funcnet.errors import (
    ARRAY_MATH_RULE,
    ARRAY_VALUE_RULE,
    ArgumentError,
    ArrayTypeError,
    GradientCheckError,
    StructureError,
    describe,
)
from funcnet.layers import SerialCache, serial
from funcnet.layers._base import Layer, math_of
from funcnet.losses import Loss
from funcnet.losses import math_of as loss_math_of

__all__ = [
    "numerical_gradient",
    "relative_error",
    "check_layer",
    "check_loss",
    "check_serial",
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
#: An element whose one-sided differences differ by more than this (relative) may sit on
#: several corners at once; only such an element is tested for a tie.
_SIDES_DIFFER = 1e-6
#: The tie test moves every other float element by this times standard normal noise: far
#: inside the differences' step (no farther corner is reached), far above rounding (ties
#: break)...
_TIE_SHIFT = 1e-6
#: ...and takes the slope there with differences of this step forward and backward; a point
#: where the two disagree (a corner within the step) gives no slope.
_TIE_STEP = 1e-8
#: How many nearby points the tie test tries (from a fixed key: a check is a pure function
#: of its inputs).
_TIE_SAMPLES = 16
_TIE_SEED = 0
#: A nearby slope within this (relative) of a one-sided slope is that slope.
_TIE_MATCH = 1e-3


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


def _nearby_slopes(f: Callable[[Any], Any], tree: Any, wanted: list):
    """Slopes of scalar ``f`` along the ``wanted`` elements, at points near ``tree``.

    ``wanted`` holds one boolean mask per leaf of ``tree`` (None for a leaf
    without wanted elements). Each of ``_TIE_SAMPLES`` points moves every float
    element but the wanted one by ``_TIE_SHIFT`` times standard normal noise
    drawn from a fixed key. There, the two-point differences of step
    ``_TIE_STEP`` forward and backward along the element are both taken: where
    they disagree a corner lies within the step, and the slope is NaN (no
    clean slope at that point).

    Returns one array per leaf, ``(samples, *leaf.shape)`` (NaN where not
    wanted; None for a leaf without wanted elements), and the rounding noise of
    those slopes, ``4 eps max|f| / step``.
    """
    flat = ftree.leaves(tree)
    slopes = [None if mask is None or not mask.any()
              else np.full((_TIE_SAMPLES, *mask.shape), np.nan) for mask in wanted]
    largest = 0.0
    for sample, k in enumerate(random.split(random.key(_TIE_SEED), _TIE_SAMPLES)):
        moved = [np.asarray(leaf) + _TIE_SHIFT * random.normal(leaf_key, np.shape(leaf))
                 if _is_float(leaf) else leaf
                 for leaf, leaf_key in zip(flat, random.split(k, len(flat)), strict=True)]
        for i, out in enumerate(slopes):
            if out is None:
                continue
            for index in zip(*np.nonzero(wanted[i]), strict=True):
                values = []
                for step in (0.0, _TIE_STEP, -_TIE_STEP):
                    bumped = np.array(moved[i], copy=True)
                    bumped[index] = flat[i][index] + step  # the element itself stays put
                    trial = list(moved)
                    trial[i] = bumped
                    values.append(float(f(ftree.unflatten_as(tree, trial))))
                largest = max(largest, *map(abs, values))
                ahead = (values[1] - values[0]) / _TIE_STEP
                behind = (values[0] - values[2]) / _TIE_STEP
                noise = 4 * np.finfo(np.float64).eps * largest / _TIE_STEP
                if abs(ahead - behind) <= max(_TIE_MATCH * (abs(ahead) + abs(behind)), noise):
                    out[(sample, *index)] = (ahead + behind) / 2
    return slopes, 4 * np.finfo(np.float64).eps * largest / _TIE_STEP


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
    kinks: int  # elements whose mismatch a kink explains (ties included)
    worst_index: tuple[int, ...] | None  # where the largest unexplained error sits
    ok: bool
    ties: int = 0  # of the kinks, those where several corners meet (see the module docstring)


class GradReport(NamedTuple):
    """A per-leaf gradient check report; ``str(report)`` is a table.

    ``parts`` (from ``check_serial``) holds one report per layer of a network,
    each layer checked alone on the input it received; ``blame`` is the index
    of the first that failed. ``notes`` are lines printed under the table.
    """

    name: str
    leaves: tuple[LeafCheck, ...]
    tol_jax: float
    tol_numerical: float
    parts: tuple[GradReport, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every leaf passed (kinks explained count as passed), and every part."""
        return all(leaf.ok for leaf in self.leaves) and all(part.ok for part in self.parts)

    @property
    def kinks(self) -> int:
        """How many elements sat on a kink, over all leaves (ties included)."""
        return sum(leaf.kinks for leaf in self.leaves)

    @property
    def ties(self) -> int:
        """How many of the kinks are ties, over all leaves."""
        return sum(leaf.ties for leaf in self.leaves)

    @property
    def blame(self) -> int | None:
        """The index of the first part (a layer checked alone) that failed, or None."""
        return next((i for i, part in enumerate(self.parts) if not part.ok), None)

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
        if self.kinks > self.ties:
            rows.append("  kinks: the central difference straddles a corner (relu at 0, a tie "
                        "in a max); the hand-written value equals one one-sided slope there.")
        if self.ties:
            rows.append(f"  ties ({self.ties} of the kinks): several corners meet there (a max "
                        "over equal values, as a conv gives on an all-zero patch); the "
                        "backward, jax.grad and the differences each pick a different valid "
                        "slope, so these elements are not judged.")
        if self.parts:
            rows.extend(self._blame_rows())
        rows.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(rows)

    def _blame_rows(self) -> list[str]:
        if self.blame is not None:
            part = self.parts[self.blame]
            return ([f"  blame: {part.name}: its own backward disagrees with the referees on "
                     f"the input it received; checked alone:"]
                    + ["    " + row for row in str(part).splitlines()])
        if all(leaf.ok for leaf in self.leaves):
            return ["  blame: none; every layer passes its own check on the input it received"]
        return ["  blame: no single layer; each passes its own check on the input it "
                "received, so the mismatch comes from how their gradients compose"]

    def raise_if_failed(self) -> GradReport:
        """Raise ``GradientCheckError`` with the table if any leaf failed; else return self."""
        if not self.ok:
            raise GradientCheckError(str(self))
        return self


#: What to change when jax.grad cannot trace a forward, by the error jax raised.
_NUMERICAL_ONLY = "; to check against finite differences alone, pass oracles=('numerical',)"
_NUMPY_CALL = ("{who} converted the array jax.grad passes in (the referee traces the very "
               "same code) to a numpy array, as np.logaddexp(0.0, x) does: "
               + ARRAY_MATH_RULE + _NUMERICAL_ONLY)
_VALUE_READ = ("{who} read an array's value in Python (if x > 0, float(x), int(x)), which "
               "the arrays jax.grad passes in do not have: " + ARRAY_VALUE_RULE
               + _NUMERICAL_ONLY)


def _jax_gradient(objective: Callable[[Any], Any], tree: Any, who: str) -> list:
    """``jax.grad`` of ``objective`` in float64 with respect to the float leaves of ``tree``.

    Raises ``ArrayTypeError`` naming ``who`` (the layer's forward, the loss's
    forward, the objective) when jax cannot trace it: numpy called on a traced
    array, or an array's value read in Python.
    """
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
        try:
            grads = jax.jit(jax.grad(on_floats))(floats)  # one compile, not one per primitive
        except jax.errors.TracerArrayConversionError as error:
            raise ArrayTypeError(_NUMPY_CALL.format(who=who)) from error
        except (jax.errors.ConcretizationTypeError,
                jax.errors.TracerIntegerConversionError) as error:
            raise ArrayTypeError(_VALUE_READ.format(who=who)) from error
        out = [None] * len(flat)
        for i, g in zip(where, grads, strict=True):
            out[i] = np.asarray(g, dtype=np.float64)
    return out


def _judge(name, paths, flat, hand, reference_jax, numeric, tol_jax, tol_numerical, nearby):
    """One ``LeafCheck`` per float leaf; ``nearby(masks)`` is ``_nearby_slopes`` at the check's
    own function and point, called only when some element may be a tie."""
    central, left, right, noise = numeric if numeric is not None else (None,) * 4
    scale = max((float(np.max(np.abs(np.asarray(g, dtype=np.float64)), initial=0.0))
                 for g, leaf in zip(hand, flat, strict=True) if _is_float(leaf)), default=0.0)
    lowest_jax = max(ERROR_FLOOR, SCALE_FLOOR * scale)
    # Below the rounding noise of the differences no verdict is possible: an element is
    # compared relative to at least noise / tolerance.
    floor = max(ERROR_FLOOR, SCALE_FLOOR_NUMERICAL * scale, (noise or 0.0) / tol_numerical)
    hands, corners, maybe_tie = {}, {}, {}
    for i, (path, leaf) in enumerate(zip(paths, flat, strict=True)):
        if not _is_float(leaf):
            continue
        h = np.asarray(hand[i], dtype=np.float64)
        if h.shape != np.shape(leaf):
            raise GradientCheckError(
                f"gradient check of {name}: the hand-written gradient of {path} has shape "
                f"{h.shape}, expected {np.shape(leaf)}")
        hands[i] = h
        corners[i] = maybe_tie[i] = np.zeros(h.shape, bool)
        if central is not None:
            mismatch = _elementwise_error(h, central[i], floor) > tol_numerical
            side = np.minimum(_elementwise_error(h, left[i], floor),
                              _elementwise_error(h, right[i], floor))
            sides = _elementwise_error(left[i], right[i], floor)
            corners[i] = mismatch & (side < _SIDE_MATCH) & (sides > _SIDES_RATIO * side)
            # the sides differ, yet the hand-written value is neither: maybe several corners
            maybe_tie[i] = mismatch & ~corners[i] & (sides > _SIDES_DIFFER)
    ties = {i: np.zeros(h.shape, bool) for i, h in hands.items()}
    if any(mask.any() for mask in maybe_tie.values()):
        slopes, slope_noise = nearby([maybe_tie.get(i) for i in range(len(flat))])
        lowest = max(floor, slope_noise / _TIE_MATCH)
        for i, mask in maybe_tie.items():
            if slopes[i] is None:
                continue
            clean = ~np.isnan(slopes[i])
            seen = np.where(clean, slopes[i], 0.0)
            one_sided = np.minimum(_elementwise_error(seen, left[i], lowest),
                                   _elementwise_error(seen, right[i], lowest)) < _TIE_MATCH
            ties[i] = mask & (clean & ~one_sided).any(axis=0)
    leaves = []
    for i, h in hands.items():
        kink = corners[i] | ties[i]
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
        leaves.append(LeafCheck(paths[i], tuple(h.shape), errs["jax"], errs["numerical"],
                                int(kink.sum()), worst, not bad.any(), int(ties[i].sum())))
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
    trace it (else ``ArrayTypeError`` says what to change, as in
    ``check_layer``). Only float leaves are checked.
    """
    report = _check(objective, hand_gradient, tree, name=name, root=root,
                    who=f"check_function: the objective of {name}", oracles=oracles,
                    tol_jax=tol_jax, tol_numerical=tol_numerical, h=h)
    return report.raise_if_failed() if raise_on_failure else report


def _check(objective, hand_gradient, tree, *, name, root, who, oracles=("jax", "numerical"),
           tol_jax=TOL_JAX, tol_numerical=TOL_NUMERICAL, h=STEP) -> GradReport:
    """``check_function`` without raising on failure; ``who`` names the traced code in errors."""
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
    reference = _jax_gradient(objective, tree, who) if "jax" in oracles else None
    numeric = _differences(objective, tree, h) if "numerical" in oracles else None
    leaves = _judge(name, paths, flat, hand_flat, reference, numeric, tol_jax, tol_numerical,
                    lambda wanted: _nearby_slopes(objective, tree, wanted))
    return GradReport(name, tuple(leaves), tol_jax, tol_numerical)


def _check_dparams(name: str, params: Any, dparams: Any) -> None:
    """``dparams`` must have exactly the structure of ``params``: the optimizers' own rule."""
    if isinstance(params, tuple) and not params and not (
            isinstance(dparams, tuple) and not dparams):
        empty = isinstance(dparams, dict | list) and not dparams  # {} or [] shown as such
        got = f"{dparams!r} ({describe(dparams)})" if empty else describe(dparams)
        raise StructureError(
            f"check_layer: {name}.backward returned dparams {got} for a layer without "
            f"parameters; expected (), the structure of its params == (), which the optimizers "
            f"require of gradients")
    ftree.assert_same_structure(params, dparams, who=f"check_layer: {name}.backward",
                                expected_name="params", actual_name="dparams")


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
    tolerances, step, ``raise_on_failure``). The report is named by
    ``layer.name``. For a network built with ``serial``, ``check_serial``
    also names the layer to blame; a failing report of a network says so in a
    note.

    jax.grad, the referee, runs the layer's own forward on jax arrays. A
    forward that calls numpy on its input (``np.logaddexp(0.0, x)``) or reads
    an array's value in Python (``if x > 0``) cannot run there, and would fail
    ``fit(jit=True)`` as well, so the check does not fall back to finite
    differences by itself: it raises and says what to change. Array math in
    forward and backward goes through the input's namespace, ``xp =
    x.__array_namespace__()`` (numpy >= 2 and jax arrays), or array methods
    (``x.sum()``). ``oracles=("numerical",)`` checks such a layer against the
    differences alone.

    Raises:
      ArrayTypeError: jax cannot trace ``layer``'s forward (see above); the
        message names the layer.
      StructureError: ``dparams`` does not have exactly the structure of
        ``params`` (a layer without parameters returns ``()``, not ``{}`` or
        ``[]``): the rule the optimizers apply to gradients.
      GradientCheckError: a hand-written gradient of the wrong shape; with
        ``raise_on_failure=True``, any failure (the message is the table).
    """
    kwargs = dict(forward_kwargs or {})
    inputs = _as_float64({"params": params, "x": x})
    y, cache = layer.forward(inputs["params"], inputs["x"], **kwargs)  # checked once, here
    if dy is None:
        dy = random.normal(random.key(seed), np.shape(y))
    dy = np.asarray(dy, dtype=np.float64)
    dx, dparams = layer.backward(cache, dy)
    _check_dparams(layer.name, params, dparams)
    forward = math_of(layer)[0]

    def objective(t):
        out, _ = forward(t["params"], t["x"], **kwargs)
        return (out * dy).sum()

    # dm-tree flattens the dict in sorted key order: "params" before "x".
    hand = {"params": dparams, "x": dx}
    raise_on_failure = options.pop("raise_on_failure", False)  # after renaming, below
    report = _check(objective, hand, inputs, name=layer.name,
                    who=f"check_layer: {layer.name}.forward", root="", **options)
    renamed = [leaf._replace(path=leaf.path.replace("['x']", "x", 1).replace(
        "['params']", "params", 1)) for leaf in report.leaves]
    renamed.sort(key=lambda leaf: not leaf.path.startswith("x"))  # x first, then params
    report = report._replace(leaves=tuple(renamed))
    if isinstance(cache, SerialCache) and not report.ok:
        report = report._replace(notes=(
            f"{layer.name} is a network: check.check_serial(layers, params, x) checks each "
            f"layer alone on the input it received and names the first that is wrong",))
    return report.raise_if_failed() if raise_on_failure else report


class _Received(NamedTuple):
    """What one layer of a network received in a forward pass, and the cache it returned."""

    x: Any
    extras: dict
    cache: Any

    @property
    def state(self) -> Any:
        """The layer's new state: ``serial`` reads it here from a layer that takes state."""
        return self.cache.state


def _recording(layer: Layer) -> Layer:
    """``layer`` with a forward whose cache also holds the input and extras it was given."""
    def forward(params, x, **extras):
        y, cache = layer.forward(params, x, **extras)
        return y, _Received(x, extras, cache)

    def backward(received, dy, **options):
        return layer.backward(received.cache, dy, **options)

    return Layer(layer.init, forward, backward, layer.name, layer.takes, layer.initial_state)


def check_serial(
    layers: Sequence[Layer],
    params: Any,
    x: Any,
    dy: Any = None,
    *,
    name: str = "serial",
    seed: int = 0,
    forward_kwargs: dict | None = None,
    **options: Any,
) -> GradReport:
    """Check ``serial(*layers)`` as ``check_layer`` does, then each layer alone, to blame one.

    A wrong ``dx`` in one layer makes every layer upstream of it look wrong in
    the network's table. Here each layer is also checked alone, with its own
    random ``dy``, on the very input (and key, train flag and state) it
    received in the network's forward pass. The report's ``parts`` hold these
    checks, ``blame`` is the index of the first that failed, and
    ``str(report)`` ends with a blame line. The report is ok when the network
    and every layer pass.

    Args:
      layers: the layers the network is built from, in order (what was given
        to ``serial``); ``name`` is the network's name.
      params: the network's params, a tuple with one entry per layer.
      x, dy, seed, forward_kwargs, options: as ``check_layer``.

    Raises:
      ArgumentError: ``layers`` is not a sequence of layers (a single network,
        say); otherwise as ``check_layer``.

    >>> import numpy as np
    >>> from funcnet.layers import dense, tanh
    >>> from funcnet.random import key
    >>> layers = [dense(3), tanh(), dense(2)]
    >>> params, _ = serial(*layers).init(key(0), (2,))
    >>> report = check_serial(layers, params, np.ones((4, 2)), oracles=("numerical",))
    >>> report.ok, report.blame, str(report).splitlines()[-1]
    (True, None, '  blame: none; every layer passes its own check on the input it received')
    """
    if isinstance(layers, Layer | str) or not isinstance(layers, Sequence):
        raise ArgumentError(
            f"check_serial: expected the sequence of layers a network is built from, as given "
            f"to serial (check_serial([dense(4), relu()], params, x)), got {describe(layers)}; "
            f"check_layer checks a whole network without blame")
    raise_on_failure = options.pop("raise_on_failure", False)
    report = check_layer(serial(*layers, name=name), params, x, dy, seed=seed,
                         forward_kwargs=forward_kwargs, **options)
    inputs = _as_float64({"params": params, "x": x})
    _, cache = serial(*map(_recording, layers), name=name).forward(
        inputs["params"], inputs["x"], **dict(forward_kwargs or {}))
    parts = tuple(
        check_layer(layer._replace(name=f"{name} layer {i} ({layer.name})"),
                    inputs["params"][i], received.x, seed=seed,
                    forward_kwargs=received.extras, **options)
        for i, (layer, received) in enumerate(zip(layers, cache.caches, strict=True)))
    report = report._replace(parts=parts, notes=())  # the blame line replaces the note
    return report.raise_if_failed() if raise_on_failure else report


def check_loss(loss: Loss, pred: Any, target: Any, *, name: str | None = None,
               **options: Any) -> GradReport:
    """Check ``loss.backward`` (``dpred``) at ``(pred, target)``; ``options`` as ``check_layer``.

    The report is named ``name``, by default the loss's own ``loss.name``.
    """
    name = loss.name if name is None else name
    pred = np.asarray(pred, dtype=np.float64)
    target = _as_float64(target) if _is_float(target) else target
    _, cache = loss.forward(pred, target)  # checked once, here
    dpred = loss.backward(cache)
    forward = loss_math_of(loss)[0]

    def objective(p):
        return forward(p, target)[0]

    raise_on_failure = options.pop("raise_on_failure", False)
    report = _check(objective, dpred, pred, name=name, root="pred",
                    who=f"check_loss: {name}.forward", **options)
    return report.raise_if_failed() if raise_on_failure else report
