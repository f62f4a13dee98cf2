"""A layer of one's own, written as a user would: three plain functions and the fields.

``Layer(init, forward, backward, takes=...)`` declares what forward takes, and
``serial``, ``fit`` and ``predict`` pass exactly that; nothing rides on function
attributes, so a wrapper cannot drop it.
"""

from typing import NamedTuple

import numpy as np
import pytest

from funcnet import check, layers, losses, optim, random, train, tree
from funcnet.errors import ArgumentError, ArrayTypeError, ShapeError, StructureError


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


class ScaleCache(NamedTuple):
    x: object
    w: object


def user_scale(forward=None, backward=None):
    """``y = x * w``, w per feature: a user's layer; ``forward``/``backward`` replace its own."""

    def init(key, in_shape):
        return {"w": random.normal(key, tuple(in_shape))}, tuple(in_shape)

    def own_forward(params, x):
        return x * params["w"], ScaleCache(x, params["w"])

    def own_backward(cache, dy):
        return dy * cache.w, {"w": (dy * cache.x).sum(axis=0)}

    return layers.Layer(init, forward or own_forward, backward or own_backward, name="scale")


def fit_with(layer=None, *, loss=None, opt=None, batch_size=2, runner=None, shuffle=True):
    net = layers.serial(layers.dense(3), layer or user_scale(), layers.dense(1))
    params, _ = net.init(random.key(0), (2,))
    x, y = random.normal(random.key(1), (8, 2)), random.normal(random.key(2), (8, 1))
    return train.fit(net, loss or losses.mse(), opt or optim.sgd(0.1), params, (x, y),
                     epochs=2, batch_size=batch_size, key=random.key(3), progress=False,
                     runner=runner, shuffle=shuffle)


@pytest.mark.parametrize("batch_size", [2, 4])
def test_a_forward_that_forgets_its_cache_is_named(batch_size):
    """y alone unpacks into its first two rows: on a batch of 2 the message blamed the next
    layer ('dense(1): expected x of rank at least 2'), on others it was a bare ValueError."""
    layer = user_scale(forward=lambda params, x: x * params["w"])
    with pytest.raises(StructureError, match=r"serial layer 1 \(scale\): its forward returned "
                                             r"an array .*must return the pair \(y, cache\)"):
        fit_with(layer, batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [2, 4])
def test_a_backward_that_returns_dx_alone_is_named(batch_size):
    layer = user_scale(backward=lambda cache, dy: dy * cache.w)
    with pytest.raises(StructureError, match=r"serial layer 1 \(scale\): its backward returned "
                                             r"an array .*the pair \(dx, dparams\)"):
        fit_with(layer, batch_size=batch_size)


def plain_sgd(change):
    def update(grads, state, params):
        new = tuple({k: change(W - 0.1 * grads[i][k]) for k, W in p.items()}
                    for i, p in enumerate(params))
        return new, state

    return optim.Optimizer(lambda params: (), update)


@pytest.mark.parametrize("runner", [None, "jit"])
def test_an_update_that_changes_params_dtype_is_named_not_the_layer(runner):
    """It was 'dense(3): x is float64 but the parameters are float32; build the layer with
    dtype=...' (numpy), or jax's bare scan-carry error (jit)."""
    if runner == "jit":
        pytest.importorskip("jax")
        from funcnet import jit
        runner = jit.epoch_runner
    with pytest.raises(ShapeError, match=r"update at epoch 0, step 0 .*params\[0\]\['W'\] has "
                                         r"dtype float32, expected float64"):
        fit_with(opt=plain_sgd(lambda W: W.astype(np.float32)), runner=runner)


def test_an_update_that_returns_a_list_of_params_is_named():
    def update(grads, state, params):  # the leaves, not the tree: serial blamed itself
        return [W - 0.1 * g for W, g in zip(tree.leaves(params), tree.leaves(grads),
                                            strict=True)], state

    with pytest.raises(StructureError, match=r"update at epoch 0, step 0 .*the params it "
                                             r"returned do not match the structure of params"):
        fit_with(opt=optim.Optimizer(lambda params: (), update))


def test_an_update_that_writes_into_params_is_named():
    def update(grads, state, params):
        for W, g in zip(tree.leaves(params), tree.leaves(grads), strict=True):
            W -= 0.1 * g
        return params, state

    with pytest.raises(ArrayTypeError, match=r"update wrote into params in place"):
        fit_with(opt=optim.Optimizer(lambda params: (), update))


class SquaresCache(NamedTuple):
    diff: object
    batch: int


def plain_mse(value=None, dpred=None):
    def forward(pred, target):
        d = pred - target
        return (d * d).sum() / pred.shape[0] if value is None else value(d), SquaresCache(
            d, pred.shape[0])

    def backward(cache):
        g = 2 * cache.diff / cache.batch
        return g if dpred is None else dpred(g)

    return losses.Loss(forward, backward, name="my_mse")


@pytest.mark.parametrize("runner", [None, "jit"])
def test_a_loss_value_that_is_not_a_scalar_is_named(runner):
    """Under jit the per-element values stacked into the history without a word."""
    if runner == "jit":
        pytest.importorskip("jax")
        from funcnet import jit
        runner = jit.epoch_runner
    loss = plain_mse(value=lambda d: d * d)
    with pytest.raises(ShapeError, match=r"my_mse.forward: a loss's value must be a scalar"):
        fit_with(loss=loss, runner=runner)
    with pytest.raises(ShapeError, match=r"my_mse.forward: a loss's value must be a scalar"):
        check.check_loss(loss, np.ones((4, 1)), np.zeros((4, 1)))


@pytest.mark.parametrize("runner", [None, "jit"])
def test_a_loss_gradient_of_the_wrong_shape_is_named_by_the_loss(runner):
    """It blamed the last layer (numpy) or was jax's bare dot_general error (jit)."""
    if runner == "jit":
        pytest.importorskip("jax")
        from funcnet import jit
        runner = jit.epoch_runner
    loss = plain_mse(dpred=lambda g: g.reshape(-1))
    with pytest.raises(ShapeError, match=r"my_mse.backward: expected dpred.* pred's shape "
                                         r"\(2, 1\), got an array of shape \(2,\)"):
        fit_with(loss=loss, runner=runner)


class MaskCache(NamedTuple):
    mask: object


def relu_in_place():
    """A user's relu that writes into its input."""

    def forward(params, x):
        mask = x > 0
        x[~mask] = 0
        return x, MaskCache(mask)

    return layers.Layer(lambda key, in_shape: ((), tuple(in_shape)), forward,
                        lambda cache, dy: (dy * cache.mask, ()), name="relu_in_place")


def test_a_layer_writing_into_its_input_cannot_change_the_training_data():
    """Unshuffled batches are views of the caller's x: the first layer's write changed the
    data of every later epoch (and the caller's array), silently."""
    net = layers.serial(relu_in_place(), layers.dense(1))
    params, _ = net.init(random.key(0), (2,))
    x, y = random.normal(random.key(1), (8, 2)), np.zeros((8, 1))
    before = x.copy()
    with pytest.raises(ArrayTypeError, match=r"wrote into an array in place .* at epoch 0, "
                                             r"step 0"):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), epochs=2, batch_size=4,
                  key=random.key(0), progress=False, shuffle=False)
    with pytest.raises(ValueError, match="read-only"):
        train.predict(net, params, x)
    np.testing.assert_array_equal(x, before)


def test_check_layer_names_a_write_into_x_or_dy_and_leaves_x_alone():
    x = random.normal(random.key(1), (4, 3))
    before = x.copy()
    with pytest.raises(ArrayTypeError, match=r"check_layer: relu_in_place.forward wrote into "
                                             r"an array in place"):
        check.check_layer(relu_in_place(), (), x)
    np.testing.assert_array_equal(x, before)

    def backward(cache, dy):
        dy[~cache.mask] = 0
        return dy, ()

    layer = layers.Layer(lambda key, s: ((), tuple(s)), lambda params, x: (x * (x > 0),
                                                                            MaskCache(x > 0)),
                         backward, name="relu_dy")
    with pytest.raises(ArrayTypeError, match=r"check_layer: relu_dy.backward wrote into"):
        check.check_layer(layer, (), x)


def test_the_jit_path_names_a_write_into_a_traced_array():
    pytest.importorskip("jax")
    from funcnet import jit
    with pytest.raises(ArrayTypeError, match=r"wrote into a traced array"):
        fit_with(relu_in_place(), runner=jit.epoch_runner)


def _passing(params, x):
    return x, None


def _needing_extras(params, x, *, key, train):
    return x, None


def _passing_back(cache, dy):
    return dy, ()


@pytest.mark.parametrize(("forward", "takes", "match"), [
    (_passing, {"key"}, r"mine: takes declares \['key'\], but its forward has no such "
                        r"parameter; write forward\(params, x, \*, key=None\)"),
    (_needing_extras, set(), r"mine: its forward needs \['key', 'train'\], which nothing "
                             r"passes unless takes declares them"),
    (_passing, {"keys"}, r"mine: unknown extras \['keys'\] in takes"),
])
def test_takes_that_the_forward_cannot_honour_is_named_where_the_net_is_built(forward, takes,
                                                                              match):
    # at the first call these were Python's bare TypeError ("got an unexpected keyword
    # argument 'key'", "missing 2 required keyword-only arguments"), naming no layer
    mine = layers.Layer(lambda key, in_shape: ((), in_shape), forward, _passing_back,
                        name="mine", takes=frozenset(takes))
    with pytest.raises(ArgumentError, match=r"serial layer 1 \(mine\): " + match):
        layers.serial(layers.dense(3), mine)
    with pytest.raises(ArgumentError, match=match):
        train.fit(mine, losses.mse(), optim.sgd(0.1), (), (np.ones((4, 3)), np.ones((4, 3))),
                  epochs=1, batch_size=2, key=random.key(0), progress=False)


def test_a_forward_taking_any_keywords_or_defaulting_them_needs_no_takes():
    def any_keywords(params, x, **extras):
        return x, None

    def defaulted(params, x, train=False):
        return x, None

    for forward in (any_keywords, defaulted):
        mine = layers.Layer(lambda key, in_shape: ((), in_shape), forward, _passing_back)
        net = layers.serial(mine, layers.dense(2))
        params, _ = net.init(random.key(0), (3,))
        assert net.forward(params, np.ones((1, 3)))[0].shape == (1, 2)
