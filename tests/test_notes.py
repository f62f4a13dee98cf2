"""The literal numbers of the source notes (shared/SEEDS.md), built from funcnet's own
layers and losses: each expected value below is printed in a note, not computed here."""

from __future__ import annotations

import numpy as np
import pytest

from funcnet import layers as L
from funcnet import losses, optim, random
from funcnet.check import check_layer

# --- note 001: the computational graph -------------------------------------------------------


def test_note_001_apple():
    mul_apple, mul_tax = L.mul(), L.mul()
    price, apple_cache = mul_apple.forward((), (100.0, 2.0))
    total, tax_cache = mul_tax.forward((), (price, 1.1))
    assert total == pytest.approx(220.0)

    (d_price, d_tax), _ = mul_tax.backward(tax_cache, 1.0)
    (d_apple, d_count), _ = mul_apple.backward(apple_cache, d_price)
    assert (d_apple, d_count, d_tax) == pytest.approx((2.2, 110.0, 200.0))


def _apples_and_oranges(apple, apple_count, orange, orange_count, tax):
    """The note's graph: (apple x count) + (orange x count), x tax; returns value, gradients."""
    mul_apple, mul_orange, add_fruit, mul_tax = L.mul(), L.mul(), L.add(), L.mul()
    apples, c_apple = mul_apple.forward((), (apple, apple_count))
    oranges, c_orange = mul_orange.forward((), (orange, orange_count))
    fruit, c_add = add_fruit.forward((), (apples, oranges))
    total, c_tax = mul_tax.forward((), (fruit, tax))

    (d_fruit, d_tax), _ = mul_tax.backward(c_tax, np.ones_like(total))
    (d_apples, d_oranges), _ = add_fruit.backward(c_add, d_fruit)
    (d_apple, d_apple_count), _ = mul_apple.backward(c_apple, d_apples)
    (d_orange, d_orange_count), _ = mul_orange.backward(c_orange, d_oranges)
    return total, (d_apple, d_apple_count, d_orange, d_orange_count, d_tax)


def test_note_001_apples_and_oranges():
    total, grads = _apples_and_oranges(100.0, 2.0, 150.0, 3.0, 1.1)
    assert total == pytest.approx(715.0)
    assert grads == pytest.approx((2.2, 110.0, 3.3, 165.0, 650.0))


def test_note_001_apples_and_oranges_on_arrays():
    # three identical baskets; the tax is ONE number shared by all three, so its gradient is
    # the sum over the baskets (a value used three times gets three gradients)
    n = 3
    total, grads = _apples_and_oranges(np.full(n, 100.0), np.full(n, 2.0), np.full(n, 150.0),
                                       np.full(n, 3.0), 1.1)
    np.testing.assert_allclose(total, np.full(n, 715.0))
    for got, want in zip(grads[:4], (2.2, 110.0, 3.3, 165.0), strict=True):
        np.testing.assert_allclose(got, np.full(n, want))
    assert np.shape(grads[4]) == () and grads[4] == pytest.approx(n * 650.0)


RNG = np.random.default_rng(1)
X = RNG.standard_normal((5, 4))
DY = RNG.standard_normal((5, 4))


def test_note_001_relu_passes_the_gradient_where_x_is_positive():
    dy_before = DY.copy()
    y, cache = L.relu().forward((), X)
    dx, params_grad = L.relu().backward(cache, DY)
    np.testing.assert_array_equal(y, np.maximum(X, 0))
    np.testing.assert_array_equal(dx, np.where(X > 0, DY, 0))
    assert params_grad == ()
    np.testing.assert_array_equal(DY, dy_before)  # the note wrote into dout in place


def test_note_001_sigmoid_backward_is_dy_y_one_minus_y():
    y, cache = L.sigmoid().forward((), X)
    dx, _ = L.sigmoid().backward(cache, DY)
    expected_y = 1 / (1 + np.exp(-X))
    np.testing.assert_allclose(y, expected_y, rtol=1e-15)
    np.testing.assert_allclose(dx, DY * expected_y * (1 - expected_y), rtol=1e-14)


def test_note_001_affine_backward():
    W, b = RNG.standard_normal((4, 3)), RNG.standard_normal(3)
    dY = RNG.standard_normal((5, 3))
    y, cache = L.dense(3).forward({"W": W, "b": b}, X)
    dX, grads = L.dense(3).backward(cache, dY)
    np.testing.assert_allclose(y, X @ W + b, rtol=1e-14)
    np.testing.assert_allclose(dX, dY @ W.T, rtol=1e-14)
    np.testing.assert_allclose(grads["W"], X.T @ dY, rtol=1e-14)
    np.testing.assert_allclose(grads["b"], dY.sum(axis=0), rtol=1e-14)


def test_note_001_softmax_with_loss():
    t = np.eye(4)[[0, 3, 1, 1, 2]]
    value, cache = losses.softmax_cross_entropy().forward(X, t)
    y = np.exp(X) / np.exp(X).sum(axis=1, keepdims=True)
    # the note's forward forgot the softmax; done right, the loss is on y
    assert value == pytest.approx(-np.sum(t * np.log(y)) / 5, rel=1e-14)
    np.testing.assert_allclose(losses.softmax_cross_entropy().backward(cache), (y - t) / 5,
                               rtol=1e-13, atol=1e-16)


def test_note_001_gradient_check_against_central_differences():
    net = L.serial(L.dense(5), L.relu(), L.dense(3))
    params, _ = net.init(random.key(0), (4,))
    report = check_layer(net, params, X, oracles=("numerical",))
    assert report.ok, str(report)


# --- note 003: one hand-computed step of a 3 -> 2 -> 2 sigmoid net ---------------------------

X3 = np.array([[1.0, 2.0, 3.0]])
T3 = np.array([[0.5, 0.1]])
W1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
W2 = np.array([[0.7, 0.8], [0.9, 0.1]])
# the note's ONE scalar bias per layer, added to every unit: a bias vector of equal entries
PARAMS3 = ({"W": W1, "b": np.array([0.5, 0.5])}, (),
           {"W": W2, "b": np.array([0.3, 0.3])}, ())
PRINTED = 1e-8  # the note prints 8 decimals


def _note_003():
    dense1, sig1, dense2, sig2 = L.dense(2), L.sigmoid(), L.dense(2), L.sigmoid()
    net = L.serial(dense1, sig1, dense2, sig2)
    loss = losses.sum_of_squares()
    y, cache = net.forward(PARAMS3, X3)
    value, loss_cache = loss.forward(y, T3)
    dy = loss.backward(loss_cache)
    _, grads = net.backward(cache, dy)
    # the deltas (gradients at the pre-activations) from the layers' own backward
    delta_out, _ = sig2.backward(cache.caches[3], dy)
    d_hidden, _ = dense2.backward(cache.caches[2], delta_out)
    delta_hidden, _ = sig1.backward(cache.caches[1], d_hidden)
    hidden = cache.caches[2].x  # dense2's input
    return y, value, hidden, delta_out, delta_hidden, grads


def test_note_003_forward():
    y, value, hidden, *_ = _note_003()
    np.testing.assert_allclose(hidden, [[0.93702664, 0.96442881]], rtol=0, atol=PRINTED)
    np.testing.assert_allclose(y, [[0.86103399, 0.75879129]], rtol=0, atol=PRINTED)
    per_output = [losses.sum_of_squares().forward(y[:, [j]], T3[:, [j]])[0] for j in range(2)]
    np.testing.assert_allclose(per_output, [0.06517277, 0.21700298], rtol=0, atol=PRINTED)
    assert value == pytest.approx(0.06517277 + 0.21700298, abs=2 * PRINTED)


def test_note_003_deltas_and_weight_gradients():
    _, _, _, delta_out, delta_hidden, grads = _note_003()
    np.testing.assert_allclose(delta_out, [[0.04319933, 0.12057664]], rtol=0, atol=PRINTED)
    np.testing.assert_allclose(delta_hidden, [[0.00747633, 0.00174744]], rtol=0, atol=PRINTED)
    np.testing.assert_allclose(grads[2]["W"], [[0.04047892, 0.11298352],
                                               [0.04166268, 0.11628758]], rtol=0, atol=PRINTED)
    np.testing.assert_allclose(grads[0]["W"], [[0.00747633, 0.00174744],
                                               [0.01495265, 0.00349488],
                                               [0.02242898, 0.00524232]], rtol=0, atol=PRINTED)
    assert grads[1] == () and grads[3] == ()


def test_note_003_bias_gradients_and_the_notes_wrong_rule():
    _, _, _, delta_out, delta_hidden, grads = _note_003()
    # a scalar bias feeds every unit of its layer: its gradient is the sum of the layer's db
    db1, db2 = grads[0]["b"].sum(), grads[2]["b"].sum()
    assert db1 == pytest.approx(0.00922377, abs=PRINTED)
    assert db2 == pytest.approx(0.16377596, abs=PRINTED)
    # the note's rule, sum(delta x bias), gives other numbers
    note_db1 = float((delta_hidden * 0.5).sum())
    note_db2 = float((delta_out * 0.3).sum())
    assert note_db1 == pytest.approx(0.00461188, abs=PRINTED)
    assert note_db2 == pytest.approx(0.04913279, abs=PRINTED)
    assert abs(note_db1 - db1) > 1e-3 and abs(note_db2 - db2) > 1e-2


def test_note_003_one_sgd_step_at_learning_rate_one():
    *_, grads = _note_003()
    opt = optim.sgd(1.0)
    new, _ = opt.update(grads, opt.init(PARAMS3), PARAMS3)
    np.testing.assert_allclose(new[0]["W"], [[0.09252367, 0.19825256],
                                             [0.28504735, 0.39650512],
                                             [0.47757102, 0.59475768]], rtol=0, atol=PRINTED)
    np.testing.assert_allclose(new[2]["W"], [[0.65952108, 0.68701648],
                                             [0.85833732, -0.01628758]], rtol=0, atol=PRINTED)
    np.testing.assert_array_equal(PARAMS3[0]["W"], W1)  # the update made new arrays


# --- note 004: ReLU, Affine, batches ---------------------------------------------------------


def test_note_004_relu():
    y, cache = L.relu().forward((), np.array([[1.0, -0.5], [-2.0, 3.0]]))
    np.testing.assert_array_equal(y, [[1.0, 0.0], [0.0, 3.0]])
    dx, _ = L.relu().backward(cache, np.array([[7.0, 8.5], [3.0, 9.0]]))
    np.testing.assert_array_equal(dx, [[7.0, 0.0], [0.0, 9.0]])


def test_note_004_affine():
    params = {"W": np.array([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]]), "b": np.array([1.0, 1.0, 1.0])}
    y, cache = L.dense(3).forward(params, np.array([[2.0, 3.0]]))
    np.testing.assert_array_equal(y, [[9.0, 19.0, 29.0]])
    dx, grads = L.dense(3).backward(cache, np.array([[2.0, 2.0, 1.0]]))
    np.testing.assert_array_equal(dx, [[13.0, 18.0]])
    np.testing.assert_array_equal(grads["W"], [[4.0, 4.0, 2.0], [6.0, 6.0, 3.0]])
    np.testing.assert_array_equal(grads["b"], [2.0, 2.0, 1.0])


def test_note_004_a_batch_of_100_through_784_to_50():
    layer = L.dense(50)
    params, out_shape = layer.init(random.key(0), (784,))
    y, _ = layer.forward(params, random.normal(random.key(1), (100, 784)))
    assert y.shape == (100, 50) and out_shape == (50,)
