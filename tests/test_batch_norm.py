"""batch_norm: per-feature (per-channel) statistics in training, running statistics by the
documented formula, state returned and never stored, serial threading the state of several.
Every error message has a test.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_bitwise_equal, snapshot

from funcnet import layers as L
from funcnet import random, tree
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, StructureError


def _bn(momentum=0.9, eps=1e-5, in_shape=(3,)):
    layer = L.batch_norm(momentum, eps)
    params, out_shape = layer.init(random.key(0), in_shape)
    assert out_shape == in_shape
    return layer, params, L.init_state(layer, in_shape)


def test_batch_norm_init_and_initial_state():
    layer, params, state = _bn(in_shape=(4, 2, 3))
    np.testing.assert_array_equal(params["gamma"], np.ones(4))
    np.testing.assert_array_equal(params["beta"], np.zeros(4))
    np.testing.assert_array_equal(state["mean"], np.zeros(4))
    np.testing.assert_array_equal(state["var"], np.ones(4))
    assert tree.is_frozen(state) and layer.takes == {"train", "state"}


@pytest.mark.parametrize("shape, axes", [((64, 3), (0,)), ((8, 3, 4, 5), (0, 2, 3))])
def test_batch_norm_train_output_has_zero_mean_unit_variance_per_channel(shape, axes):
    x = 5 + 3 * np.random.default_rng(0).standard_normal(shape)
    layer, params, state = _bn(in_shape=shape[1:])
    y, _ = layer.forward(params, x, train=True, state=state)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    var = x.var(axis=axes)
    np.testing.assert_allclose(y.var(axis=axes), var / (var + 1e-5), rtol=1e-12)
    # gamma scales and beta shifts each channel
    shaped = {"gamma": np.array([1.0, 2.0, 0.5]), "beta": np.array([0.0, -1.0, 4.0])}
    y2, _ = layer.forward(shaped, x, train=True, state=state)
    np.testing.assert_allclose(y2.mean(axis=axes), shaped["beta"], atol=1e-12)
    np.testing.assert_allclose(y2.std(axis=axes), shaped["gamma"], rtol=1e-5)


@pytest.mark.parametrize("shape, axes", [((16, 3), (0,)), ((4, 3, 2, 5), (0, 2, 3))])
def test_batch_norm_running_statistics_follow_the_documented_formula(shape, axes):
    layer, params, state = _bn(momentum=0.8, in_shape=shape[1:])
    rng = np.random.default_rng(1)
    mean, var = np.zeros(3), np.ones(3)
    for _ in range(5):
        x = rng.uniform(-2, 5, shape)
        _, cache = layer.forward(params, x, train=True, state=state)
        state = cache.state
        mean = 0.8 * mean + 0.2 * x.mean(axis=axes)
        var = 0.8 * var + 0.2 * x.var(axis=axes)  # the biased batch variance (ddof=0)
        assert tree.is_frozen(state)
    np.testing.assert_allclose(state["mean"], mean, rtol=1e-13)
    np.testing.assert_allclose(state["var"], var, rtol=1e-13)


@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 2, 2)])
def test_batch_norm_eval_uses_the_running_statistics(shape):
    layer, params, _ = _bn(eps=1e-3, in_shape=shape[1:])
    state = {"mean": np.array([1.0, -2.0, 0.5]), "var": np.array([4.0, 0.25, 1.0])}
    params = {"gamma": np.array([2.0, 1.0, -1.0]), "beta": np.array([0.0, 0.5, 1.0])}
    x = np.random.default_rng(2).standard_normal(shape)
    y, cache = layer.forward(params, x, train=False, state=state)
    per = (1, 3) + (1,) * (len(shape) - 2)
    expected = (params["gamma"].reshape(per) * (x - state["mean"].reshape(per))
                / np.sqrt(state["var"].reshape(per) + 1e-3) + params["beta"].reshape(per))
    np.testing.assert_allclose(y, expected, rtol=1e-14)
    assert cache.state is state
    # a sample's output does not depend on the rest of the batch in eval mode
    np.testing.assert_allclose(layer.forward(params, x[:1], train=False, state=state)[0], y[:1],
                               rtol=1e-15)
    dy = np.ones(shape)
    dx, _ = layer.backward(cache, dy)  # eval backward is the affine one
    np.testing.assert_allclose(dx, np.broadcast_to(
        params["gamma"].reshape(per) / np.sqrt(state["var"].reshape(per) + 1e-3), shape))


def test_batch_norm_state_is_returned_not_stored():
    layer, params, state = _bn()
    x = np.random.default_rng(3).standard_normal((6, 3))
    before = snapshot(state)
    y1, c1 = layer.forward(params, x, train=True, state=state)
    y2, c2 = layer.forward(params, x, train=True, state=state)
    assert_bitwise_equal(snapshot(y1), y2, "y")
    assert_bitwise_equal(snapshot(c1.state), c2.state, "new state")
    assert_bitwise_equal(before, state, "state")
    # a different state in gives a different state out: nothing is remembered in between
    _, c3 = layer.forward(params, x, train=True, state=c1.state)
    assert not np.array_equal(c3.state["mean"], c1.state["mean"])


def test_batch_norm_with_a_batch_of_one_outputs_beta_in_training():
    layer, params, state = _bn()
    params = {"gamma": np.array([2.0, 3.0, 4.0]), "beta": np.array([0.5, -1.0, 0.0])}
    y, cache = layer.forward(params, np.array([[7.0, -3.0, 0.2]]), train=True, state=state)
    np.testing.assert_array_equal(y, params["beta"][None])
    dx, grads = layer.backward(cache, np.ones((1, 3)))
    np.testing.assert_array_equal(dx, np.zeros((1, 3)))
    np.testing.assert_array_equal(grads["gamma"], np.zeros(3))
    np.testing.assert_array_equal(grads["beta"], np.ones(3))


def test_serial_threads_the_state_of_two_batch_norms():
    net = L.serial(L.dense(4), L.batch_norm(momentum=0.5), L.relu(), L.dense(2),
                   L.batch_norm(momentum=0.5))
    params, _ = net.init(random.key(1), (5,))
    state = L.init_state(net, (5,))
    assert len(state) == 5 and state[0] == () and state[2] == () and state[3] == ()
    assert state[1]["mean"].shape == (4,) and state[4]["var"].shape == (2,)
    np.testing.assert_array_equal(state[1]["var"], np.ones(4))
    x = np.random.default_rng(4).standard_normal((10, 5))
    y, cache = net.forward(params, x, train=True, state=state)
    new = cache.state
    tree.assert_same_shapes(state, new, who="serial", expected_name="state",
                            actual_name="new state")
    h = x @ params[0]["W"] + params[0]["b"]  # the first batch norm's input, by hand
    np.testing.assert_allclose(new[1]["mean"], 0.5 * h.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(new[1]["var"], 0.5 + 0.5 * h.var(axis=0), rtol=1e-13)
    z = np.maximum((h - h.mean(axis=0)) / np.sqrt(h.var(axis=0) + 1e-5), 0)
    h2 = z @ params[3]["W"] + params[3]["b"]  # the second batch norm's input, by hand
    np.testing.assert_allclose(new[4]["mean"], 0.5 * h2.mean(axis=0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(new[4]["var"], 0.5 + 0.5 * h2.var(axis=0), rtol=1e-12)
    y_eval, cache_eval = net.forward(params, x, train=False, state=new)
    assert cache_eval.state[1] is new[1] and cache_eval.state[4] is new[4]
    with pytest.raises(StructureError, match=r"serial: expected state as a tuple of 5 entries"):
        net.forward(params, x, train=True)


def test_batch_norm_argument_errors():
    with pytest.raises(ArgumentError, match=r"batch_norm: momentum must be a number in \[0, 1\]"):
        L.batch_norm(momentum=1.5)
    for bad in (0, -1e-5, float("inf"), "1e-5"):
        with pytest.raises(ArgumentError, match=r"batch_norm: eps must be a finite number > 0"):
            L.batch_norm(eps=bad)


def test_batch_norm_forward_errors_name_the_layer():
    layer, params, state = _bn()
    x = np.ones((2, 3))
    who = r"batch_norm\(momentum=0.9, eps=1e-05\)"
    with pytest.raises(ArgumentError, match=who + r": pass train=True"):
        layer.forward(params, x, state=state)
    with pytest.raises(ArgumentError, match=who + r": needs state=...; start from "
                                                  r"layers.init_state"):
        layer.forward(params, x, train=True)
    with pytest.raises(StructureError, match=who + r": expected state \{'mean': \(C,\), "
                                                   r"'var': \(C,\)\}, got a dict with keys"):
        layer.forward(params, x, train=True, state={"mean": state["mean"]})
    with pytest.raises(ShapeError, match=who + r": expected state 'mean' and 'var' of shape "
                                               r"\(3,\), got \(2,\) and \(2,\)"):
        layer.forward(params, x, train=False, state={"mean": np.zeros(2), "var": np.ones(2)})
    with pytest.raises(ArrayTypeError, match=who + r": state 'mean' and 'var' must be arrays"):
        layer.forward(params, x, train=False, state={"mean": 0.0, "var": 1.0})
    with pytest.raises(StructureError, match=who + r": expected params \{'gamma'"):
        layer.forward({"gamma": params["gamma"]}, x, train=False, state=state)
    with pytest.raises(ShapeError, match=who + r": expected x of shape \(batch, 3\) or "
                                               r"\(batch, 3, height, width\), got \(2, 4\)"):
        layer.forward(params, np.ones((2, 4)), train=False, state=state)
    with pytest.raises(ShapeError, match=r"got \(2, 3, 5\)"):
        layer.forward(params, np.ones((2, 3, 5)), train=False, state=state)
    with pytest.raises(ArrayTypeError, match=who + r": x is float32 but the parameters"):
        layer.forward(params, x.astype(np.float32), train=False, state=state)
    with pytest.raises(ShapeError, match=who + r".init: expected in_shape \(features,\) or "
                                               r"\(channels, height, width\), got \(3, 4\)"):
        layer.init(random.key(0), (3, 4))
    with pytest.raises(ShapeError, match=who + r".init_state: expected in_shape"):
        L.init_state(layer, (3, 4))
    _, cache = layer.forward(params, x, train=True, state=state)
    with pytest.raises(ShapeError, match=who + r".backward: expected dy of shape \(2, 3\)"):
        layer.backward(cache, np.ones((3, 2)))
