"""Edge cases of leaves and draws: 0-d params and OrderedDicts through the optimizers, uniform's
upper bound, integer bounds, fan-in 0, fold_in's counter word."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_bitwise_equal

from funcnet import layers, losses, optim, random, train
from funcnet import tree as ftree


def _scale():
    """A layer with one learnable 0-d parameter: ``y = s x``."""

    def init(key, in_shape):
        return {"s": np.array(1.0)}, tuple(in_shape)

    def forward(params, x):
        return x * params["s"], (x, params["s"])

    def backward(cache, dy):
        x, s = cache
        return dy * s, {"s": (dy * x).sum()}

    return layers.Layer(init, forward, backward, name="scale")


@pytest.mark.parametrize("name", sorted(optim.CONSTRUCTORS))
def test_the_kernel_keeps_a_0d_leaf_an_array(name):
    """numpy's math on a 0-d array gives a numpy scalar; the kernel (what fit runs) must
    give the 0-d array update gives, or fit's params stop being arrays."""
    opt = optim.CONSTRUCTORS[name](0.1)
    params = {"s": np.array(1.0), "W": np.ones((2, 2))}
    grads = ftree.map(lambda w: 0.5 * w, params)
    new, state = optim.math_of(opt)(grads, opt.init(params), params)
    for leaf in ftree.leaves((new, state)):
        assert type(leaf) is np.ndarray, type(leaf)


def test_params_fit_returns_with_a_0d_leaf_train_on():
    """fit's params, with a 0-d leaf, are accepted by the optimizer and by fit again."""
    net = layers.serial(layers.dense(3), _scale())
    params, _ = net.init(random.key(0), (2,))
    x, y = random.normal(random.key(1), (8, 2)), np.array([0, 1, 2, 0, 1, 2, 0, 1])
    opt, loss = optim.adam(0.01), losses.softmax_cross_entropy()
    state = train.fit(net, loss, opt, params, (x, y), epochs=2, batch_size=4, key=random.key(2),
                      progress=False)
    assert all(type(leaf) is np.ndarray for leaf in ftree.leaves((state.params, state.opt_state)))
    stepped, _ = opt.update(ftree.map(np.zeros_like, state.params), state.opt_state,
                            state.params)
    assert all(type(leaf) is np.ndarray for leaf in ftree.leaves(stepped))
    again = train.fit(net, loss, opt, state.params, (x, y), epochs=1, batch_size=4,
                      key=random.key(3), progress=False)
    assert len(again.history.loss) == 1


@pytest.mark.parametrize("decoupled", [False, True])
def test_an_ordered_dict_of_params_updates_like_a_dict(decoupled):
    """init took an OrderedDict (tree.map walks it), update raised a bare TypeError: the
    kernel applied the rule to the OrderedDict itself. Keys out of sorted order, and a mask
    that picks one by name, check that every leaf meets its own gradient and flag."""
    from collections import OrderedDict

    def decay_b(path, leaf):
        return path[-1] == "b"

    opt = optim.adam(0.1, weight_decay=0.5, decoupled=decoupled, decay_mask=decay_b)
    plain = {"b": np.array([1.0, -2.0]), "W": np.ones((2, 2))}
    ordered = OrderedDict(plain)
    grads = {"b": np.array([0.3, 0.1]), "W": np.full((2, 2), -0.2)}
    want = opt.update(grads, opt.init(plain), plain)
    got = opt.update(OrderedDict(grads), opt.init(ordered), ordered)
    assert type(got[0]) is OrderedDict and list(got[0]) == ["b", "W"]
    assert_bitwise_equal(want, got, "ordered")
    kernel = optim.math_of(opt)(OrderedDict(grads), opt.init(ordered), ordered)
    assert_bitwise_equal(want, kernel, "kernel")


def test_float32_uniform_never_returns_maxval():
    """u * (maxval - minval) + minval rounds up to maxval for u = 1 - 2**-24 on [1, 2) in
    float32: key 7's draw 403413 gave exactly 2.0, outside [minval, maxval)."""
    u = random.uniform(random.key(7), (2**21,), np.float32, 1.0, 2.0)
    assert u.dtype == np.float32 and u.max() < 2.0 and u.min() >= 1.0
    assert u[403413] == np.nextafter(np.float32(2.0), np.float32(0.0))


def test_integers_refuses_bounds_that_are_not_integers():
    """numpy's Generator.integers truncated low=0.5 and drew 0, below low."""
    from funcnet.errors import ArgumentError
    with pytest.raises(ArgumentError, match=r"random\.integers: low and high must be integers"):
        random.integers(random.key(0), 0.5, 10, (4,))
    assert random.integers(random.key(0), np.int64(0), 3, (2,)).dtype == np.int64


@pytest.mark.parametrize("make", ["xavier", "he"])
def test_fan_in_zero_of_an_int_shape_is_named(make):
    """A shape given as an int (which the samplers take) of 0 raised a bare TypeError
    ('int' object is not iterable) while wording the fan-in message."""
    from funcnet import init
    from funcnet.errors import ArgumentError
    with pytest.raises(ArgumentError, match=rf"init\.{make}: shape \(0,\) has no inputs"):
        getattr(init, make)(random.key(0), 0)


def test_fold_in_names_data_too_large_for_its_counter_word():
    """fold_in(k, 2**64) raised numpy's bare OverflowError building the counter."""
    from funcnet.errors import ArgumentError
    with pytest.raises(ArgumentError, match=r"random\.fold_in: data must be below 2\*\*64"):
        random.fold_in(random.key(0), 2**64)
    random.fold_in(random.key(0), 2**64 - 1)
