"""Notes 001, 002 and 003: each note's bug, rebuilt on purpose and caught by funcnet's checks.

(a) note 001 (the book's ReLU, p. 166): backward runs ``dout[mask] = 0``,
    writing into the gradient it was handed. The immutability check sees dy's
    bytes change, and ``check_layer``, which hands backward a read-only dy,
    refuses the write and names it. A gradient comparison alone cannot see it:
    given a writable copy, the dx it returns is right.
(b) note 002: ``dLdB1 = np.sum(dLdZ1)`` sums the hidden-bias gradient over
    samples AND units, one number broadcast to every unit (the note's own fix
    is ``sum(axis=1, keepdims=True)``). ``check_layer`` flags params['b'].
(c) note 003: the bias step is ``np.sum(delta * b)``, Σ(delta × bias), where
    the gradient of a bias added to every unit is Σ delta. At the note's own
    numbers it gives 0.00461188 where 0.00922377 is right; ``check_layer``
    flags params['b'].
(d) note 001: SoftmaxWithLoss's forward never calls softmax (``self.y = y``):
    it takes the cross-entropy of the raw scores while backward returns
    ``(y - t) / batch`` as if they were probabilities. ``check_loss`` flags it.

Each bug is checked next to funcnet's correct counterpart, which must pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from _common import compare, parse_args, say, write_metrics

from funcnet import data, init, layers, losses, plot, random
from funcnet.check import TOL_JAX, TOL_NUMERICAL, check_layer, check_loss, relative_error
from funcnet.errors import ArrayTypeError

NAME = "bug_zoo"
# Note 004's ReLU example (the same numbers as note 001's book example).
RELU_X = np.array([[1.0, -0.5], [-2.0, 3.0]])
RELU_DY = np.array([[7.0, 8.5], [3.0, 9.0]])
# Note 003: input, first-layer weights, its one bias, and the hidden deltas it computes.
NOTE3_X = np.array([[1.0, 2.0, 3.0]])
NOTE3_W1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
NOTE3_B1 = np.array([0.5])
NOTE3_DELTA = np.array([[0.00747633, 0.00174744]])
NOTE3_BIAS_STEP = {"right": 0.00922377, "note": 0.00461188}
HIDDEN = 2  # note 002's XOR net has 2 hidden units
SCORES_SHAPE = (4, 3)  # raw scores fed to note 001's SoftmaxWithLoss


class Finding(NamedTuple):
    """One bug: how it was caught, what the check measured, and the correct code's result."""

    label: str
    check: str
    max_error: float  # the largest relative error the catching check measured
    caught: bool
    report: object  # the GradReport of the buggy code
    control: object  # the GradReport of funcnet's correct code at the same point


# --- the bugs, written as the notes wrote them --------------------------------------------


class MaskCache(NamedTuple):
    mask: np.ndarray


def textbook_relu():
    """Note 001's ReLU: forward keeps ``x <= 0`` as a mask, backward zeroes dout IN PLACE."""

    def init_fn(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x):
        return x * (x > 0), MaskCache(x <= 0)

    def backward(cache, dout):
        dout[cache.mask] = 0  # the note's line: the caller's array is overwritten
        dx = dout
        return dx, ()

    return layers.Layer(init_fn, forward, backward)


def dense_scalar_db(out_dim):
    """Note 002's hidden layer: dB1 = sum(dZ1), one number for every unit."""
    layer = layers.dense(out_dim)

    def backward(cache, dy):
        dx, grads = layer.backward(cache, dy)
        return dx, {"W": grads["W"], "b": np.full_like(grads["b"], dy.sum())}

    return layers.Layer(layer.init, layer.forward, backward)


class SharedBiasCache(NamedTuple):
    x: np.ndarray
    W: np.ndarray
    b: np.ndarray


def dense_shared_bias(out_dim, *, note_rule):
    """Note 003's layer: ``y = x @ W + b`` with ONE bias for all units.

    Its bias gradient is Σ delta; with ``note_rule`` it is the note's Σ(delta × b).
    """

    def init_fn(key, in_shape):
        return {"W": init.xavier(key, (in_shape[0], out_dim)), "b": np.zeros(1)}, (out_dim,)

    def forward(params, x):
        W, b = params["W"], params["b"]
        return x @ W + b, SharedBiasCache(x, W, b)

    def backward(cache, dy):
        x, W, b = cache
        db = (dy * b).sum() if note_rule else dy.sum()
        return dy @ W.T, {"W": x.T @ dy, "b": np.reshape(db, (1,))}

    return layers.Layer(init_fn, forward, backward)


def softmax_with_loss_without_softmax():
    """Note 001's SoftmaxWithLoss: cross-entropy of the raw scores, backward ``(y - t) / batch``.

    The forward is cross-entropy's bare math (its kernel): funcnet's checked
    ``cross_entropy`` would refuse scores outside [0, 1] before any gradient is taken.
    """
    scores_as_probabilities = losses.cross_entropy().kernel.forward

    def backward(cache):
        return (cache.pred - cache.target) / cache.batch

    return losses.Loss(scores_as_probabilities, backward)


# --- catching them -------------------------------------------------------------------------


def max_error(report):
    """The largest relative error over the report's leaves and referees."""
    return max(e for leaf in report.leaves for e in (leaf.error_jax, leaf.error_numerical)
               if e is not None)


def verdict(report):
    say(f"  max relative error {max_error(report):.3e}: "
        f"{'passes' if report.ok else 'CAUGHT by the gradient check'}")


def dy_changed(layer, params, x, dy):
    """Run forward and backward, and compare dy's bytes before and after: what changed."""
    held = dy.copy()
    _, cache = layer.forward(params, x)
    layer.backward(cache, dy)
    changed = np.flatnonzero(dy.view(np.uint64) != held.view(np.uint64))
    return held, changed


def bug_a(oracles):
    """In-place ReLU backward: the immutability check."""
    say("\n(a) note 001: ReLU backward writes dout[mask] = 0 into the gradient it was handed")
    dy = RELU_DY.copy()
    held, changed = dy_changed(textbook_relu(), (), RELU_X, dy)
    say(f"  dy before backward: {held.tolist()}\n  dy after backward:  {dy.tolist()}")
    for i in changed:
        say(f"  dy.flat[{i}] bytes {held.flat[i:i + 1].tobytes().hex()} -> "
            f"{dy.flat[i:i + 1].tobytes().hex()}  ({held.flat[i]} -> {dy.flat[i]})")
    dy_funcnet = RELU_DY.copy()
    _, unchanged = dy_changed(layers.relu(), (), RELU_X, dy_funcnet)
    say(f"  immutability check: textbook relu changed {len(changed)} of {dy.size} elements "
        f"of dy; funcnet relu changed {len(unchanged)}")
    x = random.normal(random.key(1), (4, 3))  # away from the kink at 0
    try:
        check_layer(textbook_relu(), (), x, oracles=oracles)
        refused = None
    except ArrayTypeError as e:
        refused = str(e)
    say(f"  check_layer (dy read-only): {refused or 'passed'}")
    textbook = textbook_relu()
    on_a_copy = textbook._replace(backward=lambda cache, dy: textbook.backward(cache, dy.copy()))
    report = check_layer(on_a_copy, (), x, oracles=oracles)._replace(
        name="note 001 textbook relu, on a copy of dy")
    control = check_layer(layers.relu(), (), x, oracles=oracles)
    say(str(report))
    say(f"  on a writable copy of dy the gradient comparison passes (max relative error "
        f"{max_error(report):.1e}): what is wrong is the write, not the dx it returns.")
    error = relative_error(held, dy)
    return Finding("(a) note 001 in-place relu backward: dy", "immutability, check_layer",
                   error, len(changed) > 0 and len(unchanged) == 0 and refused is not None,
                   report, control)


def bug_b(oracles, seed):
    """Scalar dB1: check_layer on the hidden layer of note 002's XOR net."""
    say("\n(b) note 002: dLdB1 = np.sum(dLdZ1), one number for every hidden unit")
    x = data.xor().x
    layer = dense_scalar_db(HIDDEN)
    params, _ = layer.init(random.key(seed), x.shape[1:])
    report = check_layer(layer, params, x, oracles=oracles)._replace(
        name="note 002 hidden layer, scalar dB1")
    control = check_layer(layers.dense(HIDDEN), params, x, oracles=oracles)
    say(str(report))
    verdict(report)
    return Finding("(b) note 002 scalar dB1: params['b']", "check_layer", max_error(report),
                   not report.ok, report, control)


def bug_c(oracles):
    """Bias step Σ(delta × b): check_layer at note 003's own numbers."""
    say("\n(c) note 003: bias step np.sum(delta * b) instead of the sum of the deltas")
    params = {"W": NOTE3_W1, "b": NOTE3_B1}
    layer = dense_shared_bias(2, note_rule=True)
    report = check_layer(layer, params, NOTE3_X, NOTE3_DELTA, oracles=oracles)._replace(
        name="note 003 layer 1, bias step sum(delta * b)")
    right = dense_shared_bias(2, note_rule=False)
    control = check_layer(right, params, NOTE3_X, NOTE3_DELTA, oracles=oracles)._replace(
        name="note 003 layer 1, bias step sum(delta)")
    say(str(report))
    verdict(report)
    for name, rule_layer in (("note", layer), ("right", right)):
        _, cache = rule_layer.forward(params, NOTE3_X)
        db = rule_layer.backward(cache, NOTE3_DELTA)[1]["b"][0]
        say("  " + compare(f"layer-1 bias gradient, {name} rule", db, NOTE3_BIAS_STEP[name]))
    return Finding("(c) note 003 bias sum(delta*b): params['b']", "check_layer",
                   max_error(report), not report.ok, report, control)


def bug_d(oracles, seed):
    """Forward without softmax: check_loss on raw scores."""
    say("\n(d) note 001: SoftmaxWithLoss.forward never calls softmax")
    k_scores, k_labels = random.split(random.key(seed))
    scores = random.uniform(k_scores, SCORES_SHAPE, minval=0.05, maxval=2.0)  # log needs them > 0
    labels = random.integers(k_labels, 0, SCORES_SHAPE[1], (SCORES_SHAPE[0],))
    report = check_loss(softmax_with_loss_without_softmax(), scores, labels,
                        oracles=oracles)._replace(name="note 001 SoftmaxWithLoss (no softmax)")
    control = check_loss(losses.softmax_cross_entropy(), scores, labels, oracles=oracles)
    say(str(report))
    verdict(report)
    return Finding("(d) note 001 loss without softmax: pred", "check_loss", max_error(report),
                   not report.ok, report, control)


def figure_rows(findings):
    """(label, error vs jax, error vs numerical) for each leaf, buggy then correct."""
    rows = []
    for f in findings:
        for kind, report in (("bug", f.report), ("correct", f.control)):
            for leaf in report.leaves:
                tag = f.label.split(" ")[0]
                rows.append((f"{tag} {kind}: {leaf.path}", leaf.error_jax, leaf.error_numerical))
    return rows


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    oracles = ("numerical",) if args.quick else ("jax", "numerical")
    findings = [bug_a(oracles), bug_b(oracles, args.seed), bug_c(oracles),
                bug_d(oracles, args.seed)]
    say(f"\n{'bug':<46}{'caught by':<28}{'max rel. error':>15}  caught  funcnet passes")
    for f in findings:
        say(f"{f.label:<46}{f.check:<28}{f.max_error:>15.3e}  {str(f.caught):<6}  "
            f"{f.control.ok}")
    metrics = {"bugs": {f.label: {"check": f.check, "max_relative_error": f.max_error,
                                  "caught": f.caught,
                                  "gradient_check_max_error": max_error(f.report),
                                  "gradient_check_ok": f.report.ok,
                                  "funcnet_max_error": max_error(f.control),
                                  "funcnet_ok": f.control.ok} for f in findings},
               "all_caught": all(f.caught for f in findings),
               "funcnet_all_pass": all(f.control.ok for f in findings)}
    fig = plot.gradient_check_report(
        figure_rows(findings), tol_jax=TOL_JAX, tol_numerical=TOL_NUMERICAL,
        title="the notes' bugs against funcnet ((a) passes on a copy: the write is the bug)")
    plot.save(fig, args.out / "gradient_checks.png")
    write_metrics(args.out, NAME, config={"oracles": oracles, "tol_jax": TOL_JAX,
                                          "tol_numerical": TOL_NUMERICAL},
                  seed=args.seed, metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
