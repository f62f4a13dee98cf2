"""funcnet.check.check_serial: a wrong layer in a network is named, not only its parameters.

A wrong ``dx`` in one layer makes the layers upstream of it fail in the
network's table; ``check_serial`` checks each layer alone on the input it
received in the forward pass and blames the first whose own backward is wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from funcnet import layers as L
from funcnet import random
from funcnet.check import GradReport, LeafCheck, check_layer, check_serial
from funcnet.errors import ArgumentError, GradientCheckError


def _dense_with(flip):
    """dense(3) whose backward flips the sign of ``flip`` ("W" or "dx")."""
    good = L.dense(3)

    def backward(cache, dy, **options):
        dx, grads = good.backward(cache, dy, **options)
        if flip == "dx":
            return -dx, grads
        return dx, {"W": -grads["W"], "b": grads["b"]}

    return good._replace(backward=backward, name=f"dense_flipped_{flip}")


def _five_layers(middle):
    return [L.dense(4), L.tanh(), middle, L.tanh(), L.dense(2)]


def _setup(layers, in_shape=(3,), seed=0):
    params, _ = L.serial(*layers).init(random.key(seed), in_shape)
    x = np.random.default_rng(seed).standard_normal((5, *in_shape))
    return params, x


def _rows(report):
    return {leaf.path: leaf.ok for leaf in report.leaves}


@pytest.mark.parametrize("flip", ["W", "dx"])
def test_a_planted_bug_in_the_middle_of_five_layers_is_blamed_on_its_layer(flip, jax):
    layers = _five_layers(_dense_with(flip))
    params, x = _setup(layers)
    report = check_serial(layers, params, x)
    assert not report.ok and report.blame == 2, str(report)
    assert [part.ok for part in report.parts] == [True, True, False, True, True], str(report)
    rows = _rows(report)
    if flip == "W":
        assert not rows["params[2]['W']"], str(report)
    else:
        # the network's table points upstream, at layer 0 and x; layer 2's own rows pass
        assert not rows["x"] and not rows["params[0]['W']"], str(report)
        assert rows["params[2]['W']"] and rows["params[2]['b']"], str(report)
    text = str(report)
    assert (f"blame: serial layer 2 (dense_flipped_{flip}): its own backward disagrees with "
            f"the referees on the input it received; checked alone:") in text
    part = report.parts[2]
    bad_row = "params['W']" if flip == "W" else "x"
    assert not {leaf.path: leaf.ok for leaf in part.leaves}[bad_row], str(part)
    assert f"    gradient check of serial layer 2 (dense_flipped_{flip})" in text
    with pytest.raises(GradientCheckError, match=r"blame: serial layer 2"):
        check_serial(layers, params, x, raise_on_failure=True)


def test_check_layer_on_a_failing_network_points_to_check_serial(jax):
    layers = _five_layers(_dense_with("dx"))
    params, x = _setup(layers)
    report = check_layer(L.serial(*layers), params, x)
    assert not report.ok
    assert str(report).splitlines()[-1] == (
        "  note: serial is a network: check.check_serial(layers, params, x) checks each "
        "layer alone on the input it received and names the first that is wrong")
    assert "note:" not in str(check_serial(layers, params, x))


def test_a_correct_network_has_no_one_to_blame(jax):
    layers = _five_layers(L.dense(3))
    params, x = _setup(layers)
    report = check_serial(layers, params, x, name="net")
    assert report.ok and report.blame is None, str(report)
    assert [part.name for part in report.parts] == [
        "net layer 0 (dense(4))", "net layer 1 (tanh)", "net layer 2 (dense(3))",
        "net layer 3 (tanh)", "net layer 4 (dense(2))"]
    assert str(report).splitlines()[-1] == (
        "  blame: none; every layer passes its own check on the input it received")


def test_each_layer_is_checked_on_the_input_it_received(jax):
    """A relu whose backward passes dy through everywhere is right for positive inputs only.
    After a sigmoid it only ever sees those, so alone on its own input it passes; on fresh
    noise it would fail."""
    relu = L.relu()

    def identity_backward(cache, dy):
        return dy, ()

    positive_only = relu._replace(backward=identity_backward, name="relu_positive_only")
    layers = [L.dense(4), L.sigmoid(), positive_only, L.dense(2)]
    params, x = _setup(layers)
    report = check_serial(layers, params, x)
    assert report.ok and report.blame is None, str(report)
    noise = np.random.default_rng(1).standard_normal((5, 4))
    assert not check_layer(positive_only, (), noise).ok


def test_keys_train_and_state_reach_each_layer_as_in_the_network(jax):
    def wrong_beta(cache, dy):
        dx, grads = L.batch_norm().backward(cache, dy)
        return dx, {"gamma": grads["gamma"], "beta": 2 * grads["beta"]}

    for norm, blame in ((L.batch_norm(), None),
                        (L.batch_norm()._replace(backward=wrong_beta), 1)):
        layers = [L.dense(5), norm, L.relu(), L.dropout(0.3), L.dense(3)]
        params, x = _setup(layers, (4,))
        kwargs = {"key": random.key(7), "train": True,
                  "state": L.init_state(L.serial(*layers), (4,))}
        report = check_serial(layers, params, x, forward_kwargs=kwargs)
        assert report.blame == blame and report.ok == (blame is None), str(report)
        assert len(report.parts) == 5


def test_a_network_that_fails_while_every_layer_passes_says_so():
    bad = LeafCheck("x", (2,), 0.5, 0.5, 0, (0,), False)
    good = LeafCheck("x", (2,), 0.0, 0.0, 0, None, True)
    part = GradReport("net layer 0 (relu)", (good,), 1e-7, 1e-6)
    report = GradReport("net", (bad,), 1e-7, 1e-6, parts=(part,))
    assert not report.ok and report.blame is None
    assert str(report).splitlines()[-1] == (
        "  blame: no single layer; each passes its own check on the input it received, so "
        "the mismatch comes from how their gradients compose")


@pytest.mark.parametrize("layers", [L.serial(L.dense(3)), L.dense(3), "dense"],
                         ids=["network", "layer", "str"])
def test_check_serial_wants_the_list_of_layers(layers):
    with pytest.raises(ArgumentError, match=r"check_serial: expected the sequence of layers a "
                                            r"network is built from, as given to serial "
                                            r"\(check_serial\(\[dense\(4\), relu\(\)\], params, "
                                            r"x\)\), got a"):
        check_serial(layers, (), np.ones((1, 3)))
