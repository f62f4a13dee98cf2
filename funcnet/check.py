"""Gradient checks: every hand-written backward against two referees.

- ``jax.grad`` of the very same forward code, in float64: within 1e-7 relative.
- Central finite differences, element by element (five-point stencil, error O(h^4),
  h = 1e-4): within 1e-6 relative.

A layer is checked through the scalar ``sum(forward(params, x) * dy)`` for a fixed random
``dy`` (its gradient is what ``backward(cache, dy)`` returns), a loss through its value.
Relative error is cs231n's, ``|a - b| / max(|a| + |b|, floor)``, the maximum over a leaf.
The floor is 1e-8, or 1e-6 of the largest gradient in the check if more (a gradient zero only
by cancellation carries the rounding noise of the terms that cancelled); against the
differences, 1e-4 of it, or their rounding noise over the tolerance if more.

Kinks. At a corner (relu at 0) the central difference averages two slopes while the backward
picks one: an element whose one-sided differences disagree and whose hand-written value equals
one of them is a *kink*, reported, not a failure. Ties. Where several corners meet (a max over
equal values, as a conv gives on an all-zero patch) each referee picks its own value and the
hand-written one is neither slope. Such an element is a *tie* (reported, not a failure) when,
with every other input moved a tiny random step, its slope at one of 16 such points is neither
one-sided slope: one corner alone only ever shows its two sides, so a wrong value at a single
corner still fails (``check_serial`` checks each layer alone, where a tie of the network is
often a plain corner). Kinks and ties are left out of both columns; telling them needs the
differences, so with ``oracles=("jax",)`` alone a kink fails.

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

import contextlib
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
    raise_if_write,
)
from funcnet.layers import SerialCache, serial
from funcnet.layers._base import Layer, math_of, returned_pair
from funcnet.losses import Loss, _check_dpred, _check_value
from funcnet.losses import math_of as loss_math_of

__all__ = [
    "numerical_gradient", "relative_error", "check_layer", "check_loss", "check_serial",
    "check_function", "GradReport", "LeafCheck", "TOL_JAX", "TOL_NUMERICAL", "STEP",
]

#: Default tolerances (max relative error) and finite-difference step.
TOL_JAX = 1e-7
TOL_NUMERICAL = 1e-6
STEP = 1e-4
#: Floor of the relative-error denominator (cs231n's), raised to these fractions of the largest
#: gradient in the check, against jax and against the (noisier) differences.
ERROR_FLOOR = 1e-8
SCALE_FLOOR = 1e-6
SCALE_FLOOR_NUMERICAL = 1e-4
#: A kink: the hand-written value equals a one-sided difference within _SIDE_MATCH (those
#: carry an O(h) error of their own), while the two sides differ _SIDES_RATIO times more.
_SIDE_MATCH = 1e-4
_SIDES_RATIO = 10.0
#: Only an element whose one-sided differences differ by more than this may be a tie.
_SIDES_DIFFER = 1e-6
#: The tie test moves every other float element by _TIE_SHIFT times normal noise (far inside
#: the step, so no farther corner is reached; far above rounding, so ties break) at
#: _TIE_SAMPLES points drawn from a fixed key (a check is a pure function of its inputs), and
#: takes the slope there with steps of _TIE_STEP; within _TIE_MATCH of a one-sided slope, a
#: slope is that slope.
_TIE_SHIFT = 1e-6
_TIE_STEP = 1e-8
_TIE_SAMPLES = 16
_TIE_SEED = 0
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
    return (hasattr(leaf, "dtype") or isinstance(leaf, float)) and np.result_type(leaf).kind == "f"


def _as_float64(tree: Any) -> Any:
    """Float leaves to float64 numpy arrays (python floats included); others unchanged."""
    return ftree.map(lambda v: np.asarray(v, dtype=np.float64) if _is_float(v) else v, tree)


def _with(flat: list, i: int, leaf: Any) -> list:
    """``flat`` with its ``i``-th leaf replaced by ``leaf``."""
    return [*flat[:i], leaf, *flat[i + 1:]]


def _differences(f: Callable[[Any], Any], tree: Any, h: float):
    """Central, left and right differences of scalar ``f`` for every float leaf of ``tree``
    (zeros for other leaves), and their rounding noise ``4 eps max|f| / h``.

    Central: ``(-f(x+2h) + 8f(x+h) - 8f(x-h) + f(x-2h)) / 12h``, error O(h^4), so ``h`` can be
    large enough that rounding in ``f`` does not swamp small gradients. One-sided:
    ``±(-3f(x) + 4f(x±h) - f(x±2h)) / 2h``, error O(h^2).
    """
    flat = ftree.leaves(tree)
    f0 = float(f(tree))
    largest = abs(f0)
    central, left, right = ([np.zeros(np.shape(leaf)) for leaf in flat] for _ in range(3))
    for i, leaf in enumerate(flat):
        if not _is_float(leaf):
            continue
        for index in np.ndindex(np.shape(leaf)):
            values = {}
            for k in (2, 1, -1, -2):
                bumped = np.array(leaf, copy=True)
                bumped[index] += k * h
                values[k] = float(f(ftree.unflatten_as(tree, _with(flat, i, bumped))))
                largest = max(largest, abs(values[k]))
            central[i][index] = (
                -values[2] + 8 * values[1] - 8 * values[-1] + values[-2]) / (12 * h)
            right[i][index] = (-3 * f0 + 4 * values[1] - values[2]) / (2 * h)
            left[i][index] = (3 * f0 - 4 * values[-1] + values[-2]) / (2 * h)
    return central, left, right, 4 * np.finfo(np.float64).eps * largest / h


def _nearby_slopes(f: Callable[[Any], Any], tree: Any, wanted: dict[int, np.ndarray]):
    """Slopes of scalar ``f`` along the ``wanted`` elements (a boolean mask per leaf index) at
    ``_TIE_SAMPLES`` points near ``tree``: ``{i: (samples, *leaf.shape)}``, NaN where not wanted
    and where the differences forward and backward disagree (a corner within the step); and
    their rounding noise ``4 eps max|f| / step``.
    """
    flat = ftree.leaves(tree)
    slopes = {i: np.full((_TIE_SAMPLES, *mask.shape), np.nan) for i, mask in wanted.items()}
    largest = 0.0
    for sample, k in enumerate(random.split(random.key(_TIE_SEED), _TIE_SAMPLES)):
        moved = [np.asarray(leaf) + _TIE_SHIFT * random.normal(leaf_key, np.shape(leaf))
                 if _is_float(leaf) else leaf
                 for leaf, leaf_key in zip(flat, random.split(k, len(flat)), strict=True)]
        for i, mask in wanted.items():
            for index in zip(*np.nonzero(mask), strict=True):
                values = []
                for step in (0.0, _TIE_STEP, -_TIE_STEP):
                    bumped = np.array(moved[i], copy=True)
                    bumped[index] = flat[i][index] + step  # the element itself stays put
                    values.append(float(f(ftree.unflatten_as(tree, _with(moved, i, bumped)))))
                largest = max(largest, *map(abs, values))
                ahead = (values[1] - values[0]) / _TIE_STEP
                behind = (values[0] - values[2]) / _TIE_STEP
                noise = 4 * np.finfo(np.float64).eps * largest / _TIE_STEP
                if abs(ahead - behind) <= max(_TIE_MATCH * (abs(ahead) + abs(behind)), noise):
                    slopes[i][(sample, *index)] = (ahead + behind) / 2
    return slopes, 4 * np.finfo(np.float64).eps * largest / _TIE_STEP


def numerical_gradient(f: Callable[[Any], Any], tree: Any, *, h: float = STEP) -> Any:
    """Central differences (five-point) of a scalar ``f`` at every float leaf of ``tree``;
    other leaves (integer labels) get zeros. Each trial perturbs a copy of the caller's arrays.

    >>> g = numerical_gradient(lambda t: (t["a"] ** 2).sum(), {"a": np.array([1.0, -2.0])})
    >>> np.round(g["a"], 6)
    array([ 2., -4.])
    """
    return ftree.unflatten_as(tree, _differences(f, tree, h)[0])


class LeafCheck(NamedTuple):
    """The verdict on one leaf (``x``, or a parameter path such as ``params[0]['W']``)."""

    path: str
    shape: tuple[int, ...]
    error_jax: float | None  # max relative error against jax.grad (None: not checked)
    error_numerical: float | None  # max relative error against central differences
    kinks: int  # elements whose mismatch a kink explains (ties included)
    worst_index: tuple[int, ...] | None  # the first element that failed
    ok: bool
    ties: int = 0  # of the kinks, those where several corners meet


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
        if self.blame is not None:
            part = self.parts[self.blame]
            rows.append(f"  blame: {part.name}: its own backward disagrees with the referees on "
                        f"the input it received; checked alone:")
            rows.extend("    " + row for row in str(part).splitlines())
        elif self.parts and all(leaf.ok for leaf in self.leaves):
            rows.append("  blame: none; every layer passes its own check on the input it received")
        elif self.parts:
            rows.append("  blame: no single layer; each passes its own check on the input it "
                        "received, so the mismatch comes from how their gradients compose")
        rows.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(rows)

    def raise_if_failed(self) -> GradReport:
        """Raise ``GradientCheckError`` with the table if any leaf failed; else return self."""
        if not self.ok:
            raise GradientCheckError(str(self))
        return self


_NUMERICAL_ONLY = "; to check against finite differences alone, pass oracles=('numerical',)"


def _jax_gradient(objective: Callable[[Any], Any], tree: Any, who: str) -> dict[int, Any]:
    """``jax.grad`` of ``objective`` in float64, ``{i: gradient}`` for each float leaf ``i``;
    ``ArrayTypeError`` naming ``who`` and what to change when jax cannot trace it."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:  # pragma: no cover - exercised only without jax
        raise ImportError("funcnet.check: the jax oracle needs jax (pip install 'funcnet[test]')"
                          + _NUMERICAL_ONLY) from None
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
            raise ArrayTypeError(
                f"{who} converted the array jax.grad passes in (the referee traces the very "
                f"same code) to a numpy array, as np.logaddexp(0.0, x) does: {ARRAY_MATH_RULE}"
                + _NUMERICAL_ONLY) from error
        except (jax.errors.ConcretizationTypeError,
                jax.errors.TracerIntegerConversionError) as error:
            raise ArrayTypeError(
                f"{who} read an array's value in Python (if x > 0, float(x), int(x)), which the "
                f"arrays jax.grad passes in do not have: {ARRAY_VALUE_RULE}" + _NUMERICAL_ONLY
            ) from error
        except TypeError as error:
            raise_if_write(error, who)
            raise
        return {i: np.asarray(g, dtype=np.float64) for i, g in zip(where, grads, strict=True)}


def _kinks(f, tree, hands: dict, differences: tuple, tol: float, floor: float):
    """The kinks (ties included) and the ties among them, a boolean mask per float leaf index
    (``hands`` holds the hand-written gradients), as the module docstring defines them."""
    central, left, right, _ = differences
    corners, maybe_tie = {}, {}
    for i, hand in hands.items():
        mismatch = _elementwise_error(hand, central[i], floor) > tol
        side = np.minimum(_elementwise_error(hand, left[i], floor),
                          _elementwise_error(hand, right[i], floor))
        sides = _elementwise_error(left[i], right[i], floor)
        corners[i] = mismatch & (side < _SIDE_MATCH) & (sides > _SIDES_RATIO * side)
        # the sides differ, yet the hand-written value is neither: maybe several corners
        maybe_tie[i] = mismatch & ~corners[i] & (sides > _SIDES_DIFFER)
    ties = {i: np.zeros(hand.shape, bool) for i, hand in hands.items()}
    if any(mask.any() for mask in maybe_tie.values()):
        slopes, noise = _nearby_slopes(f, tree, maybe_tie)
        lowest = max(floor, noise / _TIE_MATCH)
        for i, mask in maybe_tie.items():
            clean = ~np.isnan(slopes[i])
            seen = np.where(clean, slopes[i], 0.0)
            one_sided = np.minimum(_elementwise_error(seen, left[i], lowest),
                                   _elementwise_error(seen, right[i], lowest)) < _TIE_MATCH
            ties[i] = mask & (clean & ~one_sided).any(axis=0)
    return {i: corners[i] | ties[i] for i in hands}, ties


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
    ``check_layer``). Only float leaves are checked; ``root`` prefixes their paths.
    """
    paths = [ftree.path_str(p, root) or root or "value" for p, _ in ftree.flatten_with_paths(tree)]
    return _check(objective, hand_gradient, tree, name=name, paths=paths,
                  who=f"check_function: the objective of {name}", oracles=oracles,
                  tol_jax=tol_jax, tol_numerical=tol_numerical, h=h,
                  raise_on_failure=raise_on_failure)


def _check(objective, hand_gradient, tree, *, name, paths, who, oracles=("jax", "numerical"),
           tol_jax=TOL_JAX, tol_numerical=TOL_NUMERICAL, h=STEP, raise_on_failure=False):
    """``check_function`` with ``paths`` naming the leaves of ``tree`` and ``who`` the code
    that jax traces."""
    if not oracles or set(oracles) - {"jax", "numerical"}:
        raise ArgumentError(f"check: oracles must be a non-empty subset of ('jax', "
                            f"'numerical'), got {tuple(oracles)!r}")
    tree = _as_float64(tree)
    flat, hand_flat = ftree.leaves(tree), ftree.leaves(hand_gradient)
    if len(hand_flat) != len(flat):
        ftree.assert_same_structure(tree, hand_gradient, who=f"gradient check of {name}",
                                    expected_name="inputs", actual_name="hand gradient")
    hands = {i: np.asarray(hand_flat[i], dtype=np.float64)
             for i, leaf in enumerate(flat) if _is_float(leaf)}
    for i, hand in hands.items():
        if hand.shape != np.shape(flat[i]):
            raise GradientCheckError(
                f"gradient check of {name}: the hand-written gradient of {paths[i]} has shape "
                f"{hand.shape}, expected {np.shape(flat[i])}")
    scale = max((float(np.max(np.abs(hand), initial=0.0)) for hand in hands.values()),
                default=0.0)
    jax_grads = _jax_gradient(objective, tree, who) if "jax" in oracles else None
    central, floor = None, ERROR_FLOOR
    kinks = ties = {i: np.zeros(hand.shape, bool) for i, hand in hands.items()}
    if "numerical" in oracles:
        differences = _differences(objective, tree, h)
        central, noise = differences[0], differences[3]
        # below the rounding noise of the differences no verdict is possible: an element is
        # compared relative to at least noise / tolerance
        floor = max(ERROR_FLOOR, SCALE_FLOOR_NUMERICAL * scale, noise / tol_numerical)
        kinks, ties = _kinks(objective, tree, hands, differences, tol_numerical, floor)
    referees = ((jax_grads, tol_jax, max(ERROR_FLOOR, SCALE_FLOOR * scale)),
                (central, tol_numerical, floor))
    leaves = []
    for i, hand in hands.items():
        errors, bad = [], np.zeros(hand.shape, bool)
        for reference, tol, lowest in referees:
            if reference is None:
                errors.append(None)
                continue
            e = _elementwise_error(hand, reference[i], lowest)
            errors.append(float(e[~kinks[i]].max(initial=0.0)))
            bad |= (e > tol) & ~kinks[i]
        worst = tuple(int(j) for j in np.argwhere(bad)[0]) if bad.any() else None
        leaves.append(LeafCheck(paths[i], hand.shape, *errors, int(kinks[i].sum()), worst,
                                not bad.any(), int(ties[i].sum())))
    report = GradReport(name, tuple(leaves), tol_jax, tol_numerical)
    return report.raise_if_failed() if raise_on_failure else report


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


@contextlib.contextmanager
def _named_writes(who: str):
    """numpy's error for a write into a read-only array, said as what ``who`` did wrong."""
    try:
        yield
    except ValueError as error:
        raise_if_write(error, who)
        raise


def _float64_extras(forward_kwargs: dict | None) -> dict:
    """The keywords for forward, with a layer's ``state`` in float64 like its params (a
    float32 batch norm's running statistics are checked with its params, in float64)."""
    kwargs = dict(forward_kwargs or {})
    if "state" in kwargs:
        kwargs["state"] = _as_float64(kwargs["state"])
    return kwargs


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
    """Check ``layer.backward`` (``dx`` and ``dparams``) at ``(params, x)``, in float64.

    ``dy`` defaults to standard normal noise from ``seed``; ``forward_kwargs`` passes
    ``key``/``train``/``state`` to a layer that takes them; ``options`` go to
    ``check_function`` (oracles, tolerances, ``h``, ``raise_on_failure``). A failing report
    of a network notes that ``check_serial`` names the layer to blame.

    jax.grad runs the layer's own forward on jax arrays, as ``fit(jit=True)`` does, so array
    math goes through the input's namespace, ``xp = x.__array_namespace__()``, or array
    methods (``x.sum()``). A forward that cannot run there makes the check raise rather than
    fall back; ``oracles=("numerical",)`` checks it against the differences alone.

    Raises:
      ArrayTypeError: jax cannot trace ``layer``'s forward; the message says what to change.
      StructureError: ``dparams`` lacks the exact structure of ``params`` (``()`` for a layer
        without parameters): the optimizers' rule for gradients.
      GradientCheckError: a hand-written gradient of the wrong shape; with
        ``raise_on_failure=True``, any failure (the message is the table).
    """
    kwargs = _float64_extras(forward_kwargs)
    # read-only (copied if writeable): a forward or backward that writes into x, params or
    # dy raises here, rather than change the caller's arrays and pass on the changed ones
    inputs = ftree.freeze(_as_float64({"params": params, "x": x}))
    with _named_writes(f"check_layer: {layer.name}.forward"):
        out = layer.forward(inputs["params"], inputs["x"], **kwargs)  # checked once, here
    if not isinstance(out, tuple) or len(out) != 2:
        raise returned_pair(f"check_layer: {layer.name}", "forward", out)
    y, cache = out
    dy = random.normal(random.key(seed), np.shape(y)) if dy is None else dy
    dy = ftree.freeze(np.asarray(dy, dtype=np.float64))
    with _named_writes(f"check_layer: {layer.name}.backward"):
        out = layer.backward(cache, dy)
    if not isinstance(out, tuple) or len(out) != 2:
        raise returned_pair(f"check_layer: {layer.name}", "backward", out)
    dx, dparams = out
    _check_dparams(layer.name, params, dparams)
    forward = math_of(layer)[0]

    def objective(t):
        return (forward(t["params"], t["x"], **kwargs)[0] * dy).sum()

    raise_on_failure = options.pop("raise_on_failure", False)  # after sorting, below
    paths = [ftree.path_str(p[1:], p[0]) for p, _ in ftree.flatten_with_paths(inputs)]
    report = _check(objective, {"params": dparams, "x": dx}, inputs, name=layer.name,
                    paths=paths, who=f"check_layer: {layer.name}.forward", **options)
    # dm-tree sorts dict keys, so params came first: x first, then params
    leaves = sorted(report.leaves, key=lambda leaf: not leaf.path.startswith("x"))
    notes = ()
    if isinstance(cache, SerialCache) and not report.ok:
        notes = (f"{layer.name} is a network: check.check_serial(layers, params, x) checks each "
                 f"layer alone on the input it received and names the first that is wrong",)
    report = report._replace(leaves=tuple(leaves), notes=notes)
    return report.raise_if_failed() if raise_on_failure else report


class _Received(NamedTuple):
    """What one layer of a network received in a forward pass; ``state`` is its new state,
    which serial reads from the cache of a layer that takes state."""

    x: Any
    extras: dict
    state: Any


def _recording(layer: Layer) -> Layer:
    """``layer`` with a forward whose cache records the input and extras it was given (only
    this forward runs: no kernel, so serial calls it; no backward is ever taken)."""
    def forward(params, x, **extras):
        y, cache = layer.forward(params, x, **extras)
        return y, _Received(x, extras, getattr(cache, "state", None))

    return layer._replace(forward=forward, kernel=None)


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

    A wrong ``dx`` in one layer makes every layer upstream look wrong in the network's table,
    so each layer is also checked alone, with its own random ``dy``, on the very input (and
    key, train flag and state) it received in the network's forward pass: these are the
    report's ``parts``, ``blame`` is the first that failed, and ``str(report)`` ends with a
    blame line. The report is ok when the network and every layer pass.

    Args:
      layers: the layers given to ``serial``, in order; ``name`` is the network's name.
      params: the network's params, a tuple with one entry per layer.
      x, dy, seed, forward_kwargs, options: as ``check_layer``.

    Raises:
      ArgumentError: ``layers`` is not a sequence of layers (a network, say); otherwise as
        ``check_layer``.

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
        inputs["params"], inputs["x"], **_float64_extras(forward_kwargs))
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
    _, cache = _check_value(loss.name, loss.forward(pred, target))  # checked once, here
    forward = loss_math_of(loss)[0]

    def objective(p):
        return forward(p, target)[0]

    dpred = _check_dpred(loss.name, pred.shape, loss.backward(cache))
    return _check(objective, dpred, pred, name=name, paths=["pred"],
                  who=f"check_loss: {name}.forward", **options)
