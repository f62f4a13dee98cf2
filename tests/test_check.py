"""funcnet.check: the referee must itself be right, and must catch a wrong backward.

The numerical gradient is compared with derivatives worked out by hand; the
layer and loss checks are given deliberately broken layers and losses (built
here with the layer protocol) and must fail them, under each oracle alone.
At a kink (relu at 0, a tie in a max pool, a one-sample batch norm before a
relu) the checker explains the mismatch and still fails a wrong backward there;
on a smooth function nothing is a kink, and a gradient off by 1e-5 (relative)
fails under the default tolerances, each oracle's own.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
import pytest
from helpers import assert_bitwise_equal, snapshot
from hypothesis import given
from hypothesis import strategies as st

from funcnet import layers as L
from funcnet import losses, random, tree
from funcnet.check import (
    TOL_JAX,
    TOL_NUMERICAL,
    check_function,
    check_layer,
    check_loss,
    numerical_gradient,
    relative_error,
)
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    GradientCheckError,
    ShapeError,
    StructureError,
)

SEEDS = st.integers(0, 2**16)


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


# --- numerical_gradient against hand derivatives ---------------------------------------------


@given(seed=SEEDS)
def test_numerical_gradient_of_x_squared_sin_and_softmax_weighted_sum(seed):
    rng = np.random.default_rng(seed)
    t = {"sq": rng.standard_normal((2, 3)), "trig": (rng.uniform(-3, 3, 4),),
         "soft": rng.standard_normal(5)}
    w = rng.standard_normal(5)

    def f(u):
        return ((u["sq"] ** 2).sum() + np.sin(u["trig"][0]).sum()
                + (_softmax(u["soft"]) * w).sum())

    s = _softmax(t["soft"])
    expected = {"sq": 2 * t["sq"], "trig": (np.cos(t["trig"][0]),),
                "soft": s * (w - (s * w).sum())}  # the softmax Jacobian applied to w
    before = snapshot(t)
    g = numerical_gradient(f, t)
    assert_bitwise_equal(before, t, "the input tree")
    tree.assert_same_shapes(t, g, who="numerical_gradient")
    for key in ("sq", "soft"):
        np.testing.assert_allclose(g[key], expected[key], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(g["trig"][0], expected["trig"][0], rtol=1e-8, atol=1e-10)


def test_numerical_gradient_works_on_frozen_input_and_leaves_it_alone():
    x = tree.freeze(np.array([1.0, -2.0, 0.5]))
    g = numerical_gradient(lambda v: (v ** 3).sum(), x)
    np.testing.assert_allclose(g, 3 * x ** 2, rtol=1e-9)
    np.testing.assert_array_equal(x, [1.0, -2.0, 0.5])


def test_numerical_gradient_gives_integer_leaves_zeros():
    t = {"x": np.array([1.0, 2.0]), "labels": np.array([3, 4, 5])}
    g = numerical_gradient(lambda u: (u["x"] * u["labels"][:2]).sum(), t)
    np.testing.assert_allclose(g["x"], [3.0, 4.0], rtol=1e-9)
    assert g["labels"].shape == (3,) and not g["labels"].any()


# --- relative_error --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1.0, 3.0, 2 / 4),
        (-1.0, 1.0, 1.0),  # opposite signs: the largest possible error
        (0.0, 0.0, 0.0),
        (2.0, 2.0, 0.0),
        (1e-9, 0.0, 1e-9 / 1e-8),  # below the floor the denominator is 1e-8
        (1e-9, -1e-9, 2e-9 / 1e-8),
        (3e-8, 1e-8, 2e-8 / 4e-8),  # above the floor the plain formula
    ],
)
def test_relative_error_on_hand_examples(a, b, expected):
    assert relative_error(np.array([a]), np.array([b])) == pytest.approx(expected, rel=1e-12)


def test_relative_error_is_the_max_over_elements_and_leaves():
    a = {"u": np.array([1.0, 1.0]), "v": (np.array([[2.0]]),)}
    b = {"u": np.array([1.0, 3.0]), "v": (np.array([[6.0]]),)}
    assert relative_error(a, b) == pytest.approx(max(2 / 4, 4 / 8))
    assert relative_error((), ()) == 0.0


def test_relative_error_needs_matching_shapes():
    with pytest.raises(ShapeError, match=r"relative_error: b at a\['w'\] has shape \(3,\), "
                                         r"expected \(2,\)"):
        relative_error({"w": np.zeros(2)}, {"w": np.zeros(3)})


# --- deliberately wrong backward passes ------------------------------------------------------


def _with_backward(layer, backward, name):
    return layer._replace(backward=backward, name=name)


def dense_doubling_dW():
    good = L.dense(3)

    def backward(cache, dy):
        dx, g = good.backward(cache, dy)
        return dx, {"W": 2 * g["W"], "b": g["b"]}

    return _with_backward(good, backward, "dense_doubling_dW")


def dense_without_bias_sum():
    good = L.dense(3)

    def backward(cache, dy):
        dx, g = good.backward(cache, dy)
        return dx, {"W": g["W"], "b": dy[-1]}  # one sample's share instead of the batch sum

    return _with_backward(good, backward, "dense_without_bias_sum")


def sigmoid_with_y_for_y_one_minus_y():
    good = L.sigmoid()

    def backward(cache, dy):
        return dy * cache.saved, ()

    return _with_backward(good, backward, "sigmoid_wrong")


WRONG = {
    "dense_doubling_dW": (dense_doubling_dW, "params['W']", (2,)),
    "dense_without_bias_sum": (dense_without_bias_sum, "params['b']", (2,)),
    "sigmoid_wrong": (sigmoid_with_y_for_y_one_minus_y, "x", (2,)),
}


def _inputs(layer, in_shape, seed=0):
    params, _ = layer.init(random.key(seed), in_shape)
    x = np.random.default_rng(seed).standard_normal((4, *in_shape))
    return params, x


@pytest.mark.parametrize("oracles", [("jax",), ("numerical",), ("jax", "numerical")])
@pytest.mark.parametrize("case", sorted(WRONG))
def test_a_wrong_backward_is_caught_by_each_oracle(case, oracles, jax):
    build, bad_path, in_shape = WRONG[case]
    layer = build()
    params, x = _inputs(layer, in_shape)
    report = check_layer(layer, params, x, oracles=oracles)
    assert not report.ok
    by_path = {leaf.path: leaf for leaf in report.leaves}
    assert not by_path[bad_path].ok and by_path[bad_path].worst_index is not None
    assert all(leaf.ok for path, leaf in by_path.items() if path != bad_path), str(report)
    row = next(line for line in str(report).splitlines() if line.strip().startswith(bad_path))
    assert "NO at" in row
    for oracle in ("jax", "numerical"):
        error = getattr(by_path[bad_path], f"error_{oracle}")
        if oracle in oracles:
            assert error > 0.1  # a factor-sized mistake, not rounding
        else:
            assert error is None


def test_raise_on_failure_raises_with_the_table(jax):
    layer = dense_doubling_dW()
    params, x = _inputs(layer, (2,))
    table = str(check_layer(layer, params, x))
    with pytest.raises(GradientCheckError, match=r"params\['W'\]\s+\(2, 3\).*NO at") as caught:
        check_layer(layer, params, x, raise_on_failure=True)
    assert str(caught.value) == table
    assert "gradient check of dense_doubling_dW" in table


def test_a_correct_layer_passes_and_inputs_are_untouched(jax):
    layer = L.serial(L.dense(3), L.tanh(), L.dense(2))
    params, x = _inputs(layer, (4,))
    before = snapshot((params, x))
    report = check_layer(layer, params, x, raise_on_failure=True)
    assert report.ok and report.kinks == 0
    assert_bitwise_equal(before, (params, x), "(params, x)")
    paths = [leaf.path for leaf in report.leaves]
    assert paths == ["x", "params[0]['W']", "params[0]['b']", "params[2]['W']",
                     "params[2]['b']"]
    text = str(report)
    assert all(path in text for path in paths)
    assert len(text.splitlines()) == 2 + len(paths)  # title, header, one row per leaf


def test_float32_params_and_input_are_checked_in_float64():
    layer = L.dense(2, dtype=np.float32)
    params, x = _inputs(layer, (3,))
    report = check_layer(layer, params, x.astype(np.float32), oracles=("numerical",))
    assert report.ok and report.leaves[0].error_numerical < 1e-9


# --- losses ----------------------------------------------------------------------------------


def softmax_cross_entropy_without_batch_mean():
    good = losses.softmax_cross_entropy()

    def backward(cache):
        return cache.probs - cache.target  # forgot the / batch

    return losses.Loss(good.forward, backward)


@pytest.mark.parametrize("oracles", [("jax",), ("numerical",)])
def test_check_loss_catches_a_wrong_dpred(oracles, jax):
    loss = softmax_cross_entropy_without_batch_mean()
    z = np.random.default_rng(1).standard_normal((3, 4))
    report = check_loss(loss, z, np.array([0, 3, 1]), oracles=oracles)
    assert not report.ok and [leaf.path for leaf in report.leaves] == ["pred"]
    assert "pred" in str(report) and "NO at" in str(report)
    with pytest.raises(GradientCheckError, match=r"pred\s+\(3, 4\)"):
        check_loss(loss, z, np.array([0, 3, 1]), oracles=oracles, raise_on_failure=True)


def test_check_loss_passes_a_correct_loss(jax):
    z = np.random.default_rng(2).standard_normal((3, 4))
    report = check_loss(losses.softmax_cross_entropy(), z, np.array([0, 3, 1]))
    assert report.ok and report.name == "softmax_cross_entropy"


# --- kinks -----------------------------------------------------------------------------------

X_WITH_ZEROS = np.array([[0.0, 1.5, -0.7], [0.0, -2.0, 0.0], [0.3, 0.0, 1.1]])


def test_relu_on_exact_zeros_passes_as_kinks(jax):
    report = check_layer(L.relu(), (), X_WITH_ZEROS)
    assert report.ok, str(report)
    assert report.kinks == int((X_WITH_ZEROS == 0).sum())
    assert "kinks:" in str(report)


def relu_halving_everywhere():
    """0.5 dy at the corner (the central difference's own average there), and everywhere."""
    good = L.relu()

    def forward(params, x):
        y, _ = good.forward(params, x)
        return y, x

    def backward(x, dy):
        return 0.5 * dy, ()

    return L.Layer(good.init, forward, backward, name="half_relu")


@pytest.mark.parametrize("oracles", [("jax",), ("numerical",), ("jax", "numerical")])
def test_the_kink_allowance_does_not_excuse_a_wrong_relu(oracles, jax):
    report = check_layer(relu_halving_everywhere(), (), X_WITH_ZEROS, oracles=oracles)
    assert not report.ok and report.kinks == 0, str(report)


def _replacing_backward(layer, backward):
    """The same layer (name, forward, extras) with another backward: a deliberate bug."""
    return layer._replace(backward=backward)


def test_checker_explains_relu_at_exactly_zero_and_still_fails_a_wrong_backward(jax):
    x = np.array([[0.0, 1.5, -0.7], [0.0, -2.0, 0.0]])
    relu = L.relu()
    report = check_layer(relu, (), x)
    assert report.ok and report.kinks == 3, str(report)

    def wrong_at_the_corner(cache, dy):  # claims a slope of -1 where x == 0
        return np.where(cache.saved, dy, np.where(x == 0, -dy, 0.0)), ()

    def wrong_elsewhere(cache, dy):  # double the slope where x > 0
        return np.where(cache.saved, 2 * dy, 0.0), ()

    for wrong in (wrong_at_the_corner, wrong_elsewhere):
        bad = check_layer(_replacing_backward(relu, wrong), (), x)
        assert not bad.ok, str(bad)


def test_checker_explains_ties_in_a_max_pool_and_still_fails_a_wrong_backward(jax):
    x = np.array([[[[1.0, 1.0, 0.5, 2.0],
                    [0.0, 1.0, 2.0, -1.0],
                    [3.0, 0.2, 0.1, 0.1],
                    [-1.0, 0.4, 0.1, 0.1]]]])
    pool = L.max_pool2d(2)
    report = check_layer(pool, (), x)
    assert report.ok and report.kinks > 0, str(report)

    def doubled(cache, dy):
        dx, grads = pool.backward(cache, dy)
        return 2 * dx, grads

    bad = check_layer(_replacing_backward(pool, doubled), (), x)
    assert not bad.ok and bad.leaves[0].worst_index is not None, str(bad)


def test_checker_explains_a_one_sample_batch_norm_before_a_relu(jax):
    """One sample: batch norm outputs exactly beta; with beta = 0 the relu sits on its corner
    (the textbook's beta mismatch of about 0.06 is the average of the two one-sided slopes)."""
    net = L.serial(L.batch_norm(), L.relu())
    params, _ = net.init(random.key(0), (3,))
    params = ({"gamma": params[0]["gamma"], "beta": np.array([0.0, 0.0, 0.5])}, ())
    x = np.array([[0.3, -1.2, 2.0]])
    kwargs = {"train": True, "state": L.init_state(net, (3,))}
    report = check_layer(net, params, x, forward_kwargs=kwargs)
    assert report.ok and report.kinks == 2, str(report)
    beta = next(leaf for leaf in report.leaves if leaf.path == "params[0]['beta']")
    assert beta.kinks == 2

    def wrong_beta(cache, dy):  # a batch-norm backward that doubles dbeta
        dx, grads = L.batch_norm().backward(cache, dy)
        return dx, {"gamma": grads["gamma"], "beta": 2 * grads["beta"]}

    buggy = L.serial(_replacing_backward(L.batch_norm(), wrong_beta), L.relu())
    bad = check_layer(buggy, params, x, forward_kwargs=kwargs)
    assert not bad.ok, str(bad)

    def wrong_relu(cache, dy):  # a relu that claims slope -1 at its corner
        return np.where(cache.saved, dy, -dy), ()

    buggy = L.serial(L.batch_norm(), _replacing_backward(L.relu(), wrong_relu))
    bad = check_layer(buggy, params, x, forward_kwargs=kwargs)
    assert not bad.ok, str(bad)


# --- a small error on a smooth function ------------------------------------------------------
#
# The kink allowance must only ever explain a mismatch where the two one-sided differences
# disagree. On a smooth function they agree, so a hand gradient off by a small factor is an
# error there, however close it is to one of them.

SMALL = 1e-5  # relative: above every tolerance, below what a glance at the numbers would see


def _cubes():
    return np.array([[0.5, -1.2, 2.0], [-0.8, 1.5, 0.9]])  # away from 0, where x**3 is flat


@pytest.mark.parametrize("oracles", [("numerical",), ("jax", "numerical")])
def test_a_small_error_on_a_smooth_function_fails_and_is_no_kink(oracles, jax):
    x = _cubes()
    report = check_function(lambda v: (v ** 3).sum(), 3 * x ** 2 * (1 + SMALL), x,
                            oracles=oracles)
    (leaf,) = report.leaves
    assert not report.ok and leaf.worst_index is not None, str(report)
    assert report.kinks == 0 and "kinks:" not in str(report), str(report)
    # cs231n's |a - b| / (|a| + |b|) of a relative error SMALL is SMALL / (2 + SMALL)
    assert leaf.error_numerical == pytest.approx(SMALL / (2 + SMALL), rel=1e-2)
    if "jax" in oracles:
        assert leaf.error_jax == pytest.approx(SMALL / (2 + SMALL), rel=1e-6)
    exact = check_function(lambda v: (v ** 3).sum(), 3 * x ** 2, x, oracles=oracles)
    assert exact.ok and exact.kinks == 0, str(exact)


def _off_by(layer, factor):
    """The same layer, its backward's dx and every dparams multiplied by ``factor``."""
    def backward(cache, dy, **kwargs):
        dx, grads = layer.backward(cache, dy, **kwargs)
        return factor * dx, tree.scale(factor, grads)

    return _replacing_backward(layer, backward)


SMOOTH_NETS = {
    "serial_tanh": lambda: L.serial(L.dense(3), L.tanh(), L.dense(2), L.sigmoid()),
    "mlp_tanh": lambda: L.mlp([4, 3], activation="tanh"),
    "mlp_sigmoid": lambda: L.mlp([4, 1], activation="sigmoid", output="sigmoid"),
}


@pytest.mark.parametrize("oracles", [("numerical",), ("jax", "numerical")])
@pytest.mark.parametrize("name", sorted(SMOOTH_NETS))
def test_smooth_nets_have_no_kinks_and_a_small_error_fails_every_leaf(name, oracles, jax):
    net = SMOOTH_NETS[name]()
    params, x = _inputs(net, (3,))
    right = check_layer(net, params, x, oracles=oracles)
    assert right.ok and right.kinks == 0, str(right)
    wrong = check_layer(_off_by(net, 1 + SMALL), params, x, oracles=oracles)
    assert wrong.kinks == 0, str(wrong)
    assert not any(leaf.ok for leaf in wrong.leaves), str(wrong)


# --- the default tolerance of the jax oracle -------------------------------------------------


@pytest.mark.parametrize("small", [1e-5, 1e-6])
def test_the_default_jax_only_check_rejects_a_small_relative_error(small, jax):
    """jax.grad of the same forward agrees to rounding (1e-7): a 1e-6 error is a bug."""
    net = SMOOTH_NETS["serial_tanh"]()
    params, x = _inputs(net, (3,))
    assert check_layer(net, params, x, oracles=("jax",)).ok
    report = check_layer(_off_by(net, 1 + small), params, x, oracles=("jax",))
    assert not report.ok, str(report)
    worst = max(leaf.error_jax for leaf in report.leaves)
    assert worst == pytest.approx(small / (2 + small), rel=1e-6)
    x = _cubes()
    assert not check_function(lambda v: (v ** 3).sum(), 3 * x ** 2 * (1 + small), x,
                              oracles=("jax",)).ok


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize("oracles", [(), ("jax", "finite"), ("numeric",)])
def test_oracles_must_be_known(oracles):
    with pytest.raises(ArgumentError, match=r"check: oracles must be a non-empty subset of "
                                            r"\('jax', 'numerical'\), got "):
        check_layer(L.relu(), (), np.ones((1, 2)), oracles=oracles)


def test_a_hand_gradient_of_the_wrong_shape_or_structure_is_named():
    x = np.ones(3)
    with pytest.raises(GradientCheckError, match=r"the hand-written gradient of value has "
                                                 r"shape \(2,\), expected \(3,\)"):
        check_function(lambda v: (v * v).sum(), np.ones(2), x, oracles=("numerical",))
    with pytest.raises(StructureError, match=r"hand gradient do not match the structure of "
                                             r"inputs at inputs"):
        check_function(lambda t: (t["a"] * t["b"]).sum(), {"a": np.ones(3)},
                       {"a": x, "b": x}, oracles=("numerical",))


def test_a_bias_feeding_batch_norm_is_judged_against_the_scale_of_the_check(jax):
    """dense -> batch_norm: the dense bias's true gradient is 0 by cancellation, and every
    oracle returns rounding noise for it; the textbook's net must still check clean."""
    from funcnet import layers as L
    from funcnet import random

    failures = []
    for seed in range(12):
        net = L.serial(L.dense(5), L.batch_norm(), L.relu(), L.dropout(0.3), L.dense(3))
        params, _ = net.init(random.key(seed), (4,))
        x = np.random.default_rng(seed).standard_normal((2 + seed % 3, 4))
        report = check_layer(net, params, x, forward_kwargs={
            "key": random.key(seed + 100), "train": True,
            "state": L.init_state(net, (4,))})
        if not report.ok:
            failures.append(str(report))
    assert not failures, failures[0]


# --- a layer of one's own (issue 14) ----------------------------------------------------------


class _SoftplusCache(NamedTuple):
    x: Any


def _softplus(forward_math, name="softplus"):
    """A user's softplus from three plain functions; ``forward_math(x)`` is its forward."""
    def init(key, in_shape):
        return (), in_shape

    def forward(params, x):
        return forward_math(x), _SoftplusCache(x)

    def backward(cache, dy):
        xp = cache.x.__array_namespace__()
        return dy / (1 + xp.exp(-cache.x)), ()

    return L.Layer(init, forward, backward, name=name)


X_SOFTPLUS = np.array([[0.3, -1.2, 2.0], [1.1, 0.0, -0.4]])


def test_a_forward_in_plain_numpy_is_named_with_what_to_change(jax):
    layer = _softplus(lambda x: np.logaddexp(0.0, x))
    with pytest.raises(ArrayTypeError, match=r"check_layer: softplus\.forward converted the "
                                             r"array jax\.grad passes in .* to a numpy array, "
                                             r"as np\.logaddexp\(0\.0, x\) does: expected "
                                             r"array math through the input's own namespace, "
                                             r"xp = x\.__array_namespace__\(\)") as caught:
        check_layer(layer, (), X_SOFTPLUS)
    assert isinstance(caught.value.__cause__, jax.errors.TracerArrayConversionError)
    assert "oracles=('numerical',)" in str(caught.value)
    # the change the message asks for, and the way out it offers
    fixed = _softplus(lambda x: x.__array_namespace__().logaddexp(0.0, x))
    assert check_layer(fixed, (), X_SOFTPLUS).ok
    assert check_layer(layer, (), X_SOFTPLUS, oracles=("numerical",)).ok


def test_a_forward_that_reads_an_array_value_in_python_is_named(jax):
    layer = _softplus(lambda x: x if float(x.max()) > 100 else
                      x.__array_namespace__().logaddexp(0.0, x), name="branchy")
    with pytest.raises(ArrayTypeError, match=r"check_layer: branchy\.forward read an array's "
                                             r"value in Python \(if x > 0, float\(x\), int\(x\)\)"
                                             r".*expected array operations throughout, such as "
                                             r"xp\.where\(x > 0, a, b\)"):
        check_layer(layer, (), X_SOFTPLUS)


def test_a_loss_or_objective_in_plain_numpy_is_named(jax):
    def forward(pred, target):
        return np.square(pred - target).mean(), (pred - target, pred.size)

    def backward(cache):
        diff, size = cache
        return 2 * diff / size

    mine = losses.Loss(forward, backward, name="my_mse")
    pred = np.array([[0.5, -1.0]])
    with pytest.raises(ArrayTypeError, match=r"check_loss: my_mse\.forward converted"):
        check_loss(mine, pred, np.zeros((1, 2)))
    with pytest.raises(ArrayTypeError, match=r"check_function: the objective of cubes "
                                             r"converted"):
        check_function(lambda v: np.power(v, 3).sum(), 3 * pred ** 2, pred, name="cubes")


def test_reports_use_the_name_field_of_a_users_layer_and_loss(jax):
    layer = _softplus(lambda x: x.__array_namespace__().logaddexp(0.0, x))
    report = check_layer(layer, (), X_SOFTPLUS)
    assert report.name == "softplus", str(report)
    assert str(report).startswith("gradient check of softplus (")

    def forward(pred, target):
        return ((pred - target) ** 2).mean(), (pred - target, pred.size)

    def backward(cache):
        diff, size = cache
        return 2 * diff / size

    pred = np.array([[0.5, -1.0]])
    report = check_loss(losses.Loss(forward, backward, name="my_mse"), pred, np.zeros((1, 2)))
    assert report.ok and report.name == "my_mse", str(report)
    assert "<locals>" not in str(report)
    renamed = check_loss(losses.Loss(forward, backward, name="my_mse"), pred,
                         np.zeros((1, 2)), name="mine, renamed")
    assert renamed.name == "mine, renamed"


@pytest.mark.parametrize("dparams", [{}, []], ids=["dict", "list"])
def test_a_parameterless_layer_must_return_the_empty_tuple_as_dparams(dparams):
    """One rule with the optimizers: dparams has exactly params' structure, () here."""
    relu = L.relu()

    def backward(cache, dy):
        dx, _ = relu.backward(cache, dy)
        return dx, dparams

    wrong = relu._replace(backward=backward, name="my_relu")
    with pytest.raises(StructureError, match=rf"check_layer: my_relu\.backward returned dparams "
                                             rf"{re.escape(repr(dparams))} \(a "
                                             rf"{type(dparams).__name__}\) for a layer without "
                                             rf"parameters; expected \(\)"):
        check_layer(wrong, (), X_WITH_ZEROS, oracles=("numerical",))
    # inside a network the same rule names the entry
    net = L.serial(L.dense(3), wrong)
    params, _ = net.init(random.key(0), (3,))
    with pytest.raises(StructureError, match=r"check_layer: serial\.backward: dparams do not "
                                             r"match the structure of params at params\[1\]: "
                                             r"expected a tuple of length 0, got "):
        check_layer(net, params, X_WITH_ZEROS, oracles=("numerical",))
    assert check_layer(relu._replace(name="my_relu"), (), X_WITH_ZEROS,
                       oracles=("numerical",)).ok


# --- ties: several corners at one point ------------------------------------------------------


def _conv_pool_on_digits():
    """The issue's case: 8x8 digits (all-zero borders), conv2d(16, 3, padding=1), 2x2 max pool.
    A conv over an all-zero patch gives its bias at every position, so the pool's windows tie
    in every channel at once."""
    from funcnet import data

    x = data.digits(images=True).x[:4]
    net = L.serial(L.conv2d(16, 3, padding=1), L.max_pool2d(2))
    params, _ = net.init(random.key(0), x.shape[1:])
    return net, params, x


def test_max_pool_ties_after_a_conv_on_digits_are_kinks_not_errors(jax):
    net, params, x = _conv_pool_on_digits()
    report = check_layer(net, params, x)
    assert report.ok, str(report)
    (x_leaf,) = [leaf for leaf in report.leaves if leaf.path == "x"]
    assert x_leaf.ties > 0 and x_leaf.kinks >= x_leaf.ties, str(report)
    assert x_leaf.error_jax < TOL_JAX and x_leaf.error_numerical < TOL_NUMERICAL
    assert f"ties ({report.ties} of the kinks)" in str(report)


@pytest.mark.parametrize("where", ["dx", "dW"])
def test_ties_do_not_hide_a_wrong_conv_backward(where, jax):
    net, params, x = _conv_pool_on_digits()
    conv = L.conv2d(16, 3, padding=1)

    def backward(cache, dy, **options):
        dx, grads = conv.backward(cache, dy, **options)
        if where == "dx":
            return -dx, grads
        return dx, {"W": 2 * grads["W"], "b": grads["b"]}

    buggy = L.serial(_replacing_backward(conv, backward), L.max_pool2d(2))
    report = check_layer(buggy, params, x)
    bad_path = "x" if where == "dx" else "params[0]['W']"
    (leaf,) = [leaf for leaf in report.leaves if leaf.path == bad_path]
    assert not report.ok and not leaf.ok and leaf.worst_index is not None, str(report)
    assert leaf.error_jax > 0.1 and leaf.error_numerical > 0.1, str(report)


def test_a_wrong_value_at_many_single_corners_is_no_tie(jax):
    """Each zero of x is one relu corner: a slope of -1 there is wrong, whatever the nearby
    points show (the tie test sees only the two sides of a single corner)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 30))
    x[rng.random(x.shape) < 0.3] = 0.0
    relu = L.relu()

    def wrong_at_the_corners(cache, dy):
        return np.where(x > 0, dy, np.where(x == 0, -dy, 0.0)), ()

    report = check_layer(_replacing_backward(relu, wrong_at_the_corners), (), x)
    assert not report.ok and report.ties == 0, str(report)
    assert report.leaves[0].kinks == 0  # not one of the corners is excused
