"""dropout: eval is the identity, training drops about ``drop_prob`` and keeps E[y] = x, one key
gives one mask and backward uses it, serial gives each dropout its own key. Every error message
has a test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import assert_bitwise_equal, away_from_zero, snapshot

from funcnet import layers as L
from funcnet import random
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, StructureError


def test_dropout_eval_is_the_identity_forward_and_backward():
    x = np.random.default_rng(0).standard_normal((3, 4))
    layer = L.dropout(0.7)
    y, cache = layer.forward((), x, train=False)
    dx, grads = layer.backward(cache, 2 * x)
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(dx, 2 * x)
    assert grads == ()
    assert layer.takes == {"key", "train"}


@pytest.mark.parametrize("drop_prob", [0.1, 0.5, 0.8])
def test_dropout_drops_about_drop_prob_and_keeps_the_mean(drop_prob):
    n = 200_000
    column = np.array([1.0, -2.0, 0.5, 3.0])
    x = np.broadcast_to(column, (n // 4, 4))
    y, _ = L.dropout(drop_prob).forward((), x, key=random.key(11), train=True)
    dropped = float((y == 0).mean())
    assert abs(dropped - drop_prob) < 5 * math.sqrt(drop_prob * (1 - drop_prob) / n)
    kept = y[y != 0] / np.broadcast_to(column, y.shape)[y != 0]
    np.testing.assert_allclose(kept, 1 / (1 - drop_prob), rtol=1e-15)  # inverted scaling
    # E[y] = x: the column means agree within 5 standard errors of y's spread p / (1 - p)
    spread = np.abs(column) * math.sqrt(drop_prob / (1 - drop_prob) / (n // 4))
    assert np.all(np.abs(y.mean(axis=0) - column) < 5 * spread)


def test_dropout_one_key_one_mask_and_backward_uses_it():
    x = away_from_zero(np.random.default_rng(1), (50, 8))
    layer = L.dropout(0.5)
    y1, cache = layer.forward((), x, key=random.key(3), train=True)
    y2, _ = layer.forward((), x, key=random.key(3), train=True)
    y3, _ = layer.forward((), x, key=random.key(4), train=True)
    assert_bitwise_equal(snapshot(y1), y2, "y")
    assert not np.array_equal(y1 == 0, y3 == 0)
    dy = np.random.default_rng(2).standard_normal(x.shape)
    dx, _ = layer.backward(cache, dy)
    np.testing.assert_array_equal(dx, np.where(y1 != 0, 2 * dy, 0.0))


def test_dropout_with_drop_prob_zero_keeps_everything():
    x = np.arange(6.0).reshape(2, 3)
    y, _ = L.dropout(0.0).forward((), x, key=random.key(0), train=True)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("bad", [1.0, -0.1, "0.5", True, None])
def test_dropout_rejects_a_drop_prob_outside_0_1(bad):
    with pytest.raises(ArgumentError, match=r"dropout: drop_prob must be a number in \[0, 1\)"):
        L.dropout(bad)


def test_dropout_errors_name_the_layer_and_the_fix():
    layer, x = L.dropout(0.5), np.ones((2, 3))
    with pytest.raises(ArgumentError, match=r"dropout\(drop_prob=0.5\): pass train=True "
                                            r"\(training\) or train=False.*got None"):
        layer.forward((), x, key=random.key(0))
    with pytest.raises(ArgumentError, match=r"pass train=True.*got a str \('yes'\)"):
        layer.forward((), x, train="yes")
    with pytest.raises(ArgumentError, match=r"train=True needs a key to draw the mask"):
        layer.forward((), x, train=True)
    with pytest.raises(ArrayTypeError, match=r"dropout\(drop_prob=0.5\): expected a random key"):
        layer.forward((), x, key=7, train=True)
    with pytest.raises(StructureError, match=r"this layer has no parameters"):
        layer.forward({"W": x}, x, train=False)
    _, cache = layer.forward((), x, train=False)
    with pytest.raises(ShapeError, match=r"dropout\(drop_prob=0.5\).backward: expected dy of "
                                         r"shape \(2, 3\)"):
        layer.backward(cache, np.ones((3, 2)))


def test_serial_passes_train_and_splits_keys_among_dropouts():
    net = L.serial(L.dropout(0.5), L.dropout(0.5))
    x = np.ones((40, 10))
    y, cache = net.forward(((), ()), x, key=random.key(5), train=True)
    first, second = cache.caches[0].mask, cache.caches[1].mask
    assert not np.array_equal(first, second)  # each layer got its own key
    np.testing.assert_array_equal(y, np.where(first & second, 4.0, 0.0))
    with pytest.raises(ArgumentError, match=r"serial layer 0 \(dropout\(drop_prob=0.5\)\): "
                                            r"dropout\(drop_prob=0.5\): pass train=True"):
        net.forward(((), ()), x, key=random.key(5))
