"""A layer of one's own, written as a user would: three plain functions and the fields.

``Layer(init, forward, backward, takes=...)`` declares what forward takes, and
``serial``, ``fit`` and ``predict`` pass exactly that; nothing rides on function
attributes, so a wrapper cannot drop it.
"""

from typing import NamedTuple

import numpy as np
import pytest

from funcnet import layers, losses, optim, random, train
from funcnet.errors import ArgumentError, ShapeError


class NoisyCache(NamedTuple):
    scale: float


def noisy_scale(calls):
    """Multiplies by 2 in training (a key must come) and by 1 in evaluation; logs its calls."""

    def init(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x, *, key=None, train=None):
        calls.append((train, random.is_key(key)))
        scale = 2.0 if train else 1.0
        return x * scale, NoisyCache(scale)

    def backward(cache, dy):
        return dy * cache.scale, ()

    return layers.Layer(init, forward, backward, name="noisy_scale",
                        takes=frozenset({"key", "train"}))


def test_serial_and_fit_pass_a_users_declared_key_and_train():
    calls = []
    net = layers.serial(layers.dense(3), noisy_scale(calls), layers.dense(1))
    assert net.takes == {"key", "train"}
    params, _ = net.init(random.key(0), (2,))
    x, y = np.ones((6, 2)), np.zeros((6, 1))
    train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), epochs=2, batch_size=3,
              key=random.key(1), progress=False)
    assert calls and all(c == (True, True) for c in calls), calls   # every step: train and a key
    assert len(calls) == 4
    calls.clear()
    train.predict(net, params, x)
    assert calls == [(False, False)]                                 # evaluation: no key


def test_a_wrapped_forward_keeps_what_the_layer_takes():
    calls = []
    layer = noisy_scale(calls)

    def logged(params, x, **extras):  # a user's wrapper around forward
        return layer.forward(params, x, **extras)

    wrapped = layer._replace(forward=logged)
    net = layers.serial(wrapped)
    net.forward(((),), np.ones((1, 2)), key=random.key(0), train=True)
    assert calls == [(True, True)]


def test_serial_refuses_a_keyword_no_layer_takes():
    net = layers.serial(layers.dense(2), noisy_scale([]))
    params, _ = net.init(random.key(0), (2,))
    with pytest.raises(ArgumentError, match=r"serial: unexpected keyword \['state'\]"):
        net.forward(params, np.ones((1, 2)), train=False, state=())


def test_a_replaced_backward_is_what_runs_not_the_kernel():
    """layer._replace(backward=...) on a library layer: serial and fit run the replacement."""
    dense = layers.dense(2)
    seen = []

    def backward(cache, dy, need_dx=True):
        seen.append(True)
        return dense.backward(cache, dy, need_dx=need_dx)

    net = layers.serial(dense._replace(backward=backward))
    params, _ = net.init(random.key(0), (3,))
    x, y = np.ones((4, 3)), np.zeros((4, 2))
    train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), epochs=1, batch_size=4,
              key=random.key(0), progress=False)
    assert seen == [True]


def bias_with_db_of_shape(shape_of_db):
    """``y = x + b`` whose backward (a user's bug) returns db reshaped to ``shape_of_db(n)``."""

    def init(key, in_shape):
        return {"b": np.zeros(in_shape[-1])}, tuple(in_shape)

    def forward(params, x):
        return x + params["b"], None

    def backward(cache, dy):
        db = dy.sum(axis=0)
        return dy, {"b": np.resize(db, shape_of_db(db.size))}

    return layers.Layer(init, forward, backward, name="bias")


@pytest.mark.parametrize("shape_of_db, shape", [
    (lambda n: (1, n), r"\(1, 3\)"),  # broadcasts: b would silently become (1, 3)
    (lambda n: (n + 2,), r"\(5,\)"),  # does not broadcast: numpy's own error, unless caught
    (lambda n: (1,), r"\(1,\)"),  # broadcasts and b keeps its shape: only db's shape tells
])
def test_fit_names_a_users_gradient_of_the_wrong_shape(shape_of_db, shape):
    """fit runs the optimizer unchecked; a gradient that changed a parameter's shape, or made
    the update fail, is named by the checked replay, not kept or left to numpy."""
    net = layers.serial(bias_with_db_of_shape(shape_of_db), layers.dense(1))
    params, _ = net.init(random.key(0), (3,))
    x, y = np.ones((4, 3)), np.zeros((4, 1))
    with pytest.raises(ShapeError, match=rf"sgd.update: grads at params\[0\]\['b'\] has shape "
                                         rf"{shape}, expected \(3,\)"):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), epochs=2, batch_size=2,
                  key=random.key(0), progress=False)


def test_fit_runs_a_users_own_update():
    """An optimizer from two plain functions, and one whose update was replaced, run as
    written: fit takes the kernel only while update is the optimizer's own."""
    seen = []
    sgd = optim.sgd(0.1)

    def update(grads, state, params):
        seen.append(True)
        return sgd.update(grads, state, params)

    net = layers.serial(layers.dense(1))
    params, _ = net.init(random.key(0), (3,))
    data = (np.ones((4, 3)), np.zeros((4, 1)))
    for opt in (optim.Optimizer(sgd.init, update), sgd._replace(update=update)):
        seen.clear()
        train.fit(net, losses.mse(), opt, params, data, epochs=1, batch_size=2,
                  key=random.key(0), progress=False)
        assert seen == [True, True]


def doubler_with_a_narrow_dx():
    """``y = 2 x`` whose backward (a user's bug) passes back one column of dx, not all."""

    def init(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x):
        return 2 * x, None

    def backward(cache, dy):
        return 2 * dy[:, :1], ()

    return layers.Layer(init, forward, backward, name="double")


@pytest.mark.parametrize("first", [1, 0], ids=["dx-needed", "first-layer"])
def test_a_wrong_dx_is_named_by_the_layer_that_receives_it(first):
    """The dense layer below gets dy (2, 1) for its (2, 3) output: as its dx product this
    is numpy's bare 'shapes not aligned', as its dW product (the first layer, no dx) a dW
    that broadcasts into W. Checked, serial runs each layer's own backward and names both."""
    below = [layers.dense(3)] * (first + 1)
    net = layers.serial(*below, doubler_with_a_narrow_dx(), layers.dense(1))
    params, _ = net.init(random.key(0), (2,))
    x, y = np.ones((5, 2)), np.zeros((5, 1))
    message = (rf"serial layer {first} \(dense\(3\)\), given the dx of layer {first + 1} "
               r"\(double\): dense\(3\).backward: expected dy of shape \(2, 3\)")
    with pytest.raises(ShapeError, match=message):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), epochs=1, batch_size=2,
                  key=random.key(0), progress=False)
    _, cache = net.forward(params, x[:2])
    with pytest.raises(ShapeError, match=message):
        net.backward(cache, np.ones((2, 1)))
