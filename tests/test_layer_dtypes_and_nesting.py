"""Layers and checks: integer or float64 inputs refused where they would silently change a float32
net's dtype, a serial holding a plain layer nested in another, mlp's init for a relu layer."""

import re
from typing import Any, NamedTuple

import numpy as np
import pytest

from funcnet import check, layers, losses, optim, random, train
from funcnet.errors import ArrayTypeError, ShapeError
from funcnet.tree import freeze


class DoubleCache(NamedTuple):
    x: Any


def double():
    """A plain layer, as the README teaches: no kernel, so serial cannot check past it."""
    return layers.Layer(lambda key, in_shape: ((), tuple(in_shape)),
                        lambda params, x: (x * 2.0, DoubleCache(x)),
                        lambda cache, dy: (dy * 2.0, ()), name="double")


def test_a_serial_holding_a_plain_layer_works_inside_another_serial():
    """Its check returns None past the plain layer; the outer serial passed that None on to
    the next layer's check, which refused a valid input (directly and in fit)."""
    inner = layers.serial(layers.dense(3), double(), name="inner")
    net = layers.serial(inner, layers.dense(2))
    params, _ = net.init(random.key(0), (4,))
    x, y = np.ones((6, 4)), np.zeros((6, 2))
    out, cache = net.forward(params, x)
    assert out.shape == (6, 2)
    assert net.backward(cache, np.ones_like(out))[0].shape == (6, 4)
    state = train.fit(net, losses.mse(), optim.sgd(0.01), params, (x, y), epochs=1,
                      batch_size=3, key=random.key(1), progress=False)
    assert len(state.history.loss) == 1
    with pytest.raises(ShapeError, match=r"^serial layer 0 \(inner\): inner layer 0 "
                                        r"\(dense\(3\)\): dense\(3\): expected 4 input"):
        net.forward(params, np.ones((6, 5)))


def test_a_check_that_returns_no_spec_is_named_in_serial():
    """A user's check without ``return`` made the NEXT layer report "got None"."""
    def check_nothing(params, x):
        pass

    silent = layers.checked_layer("silent", lambda key, in_shape: ((), tuple(in_shape)),
                                  lambda params, x: (x, DoubleCache(x)),
                                  lambda cache, dy: (dy, ()), check=check_nothing,
                                  check_dy=lambda cache, dy: None)
    net = layers.serial(layers.dense(3), silent, layers.dense(2))
    params, _ = net.init(random.key(0), (4,))
    with pytest.raises(ArrayTypeError, match=r"serial layer 1 \(silent\): its check returned "
                                             r"None; .*ArraySpec"):
        net.forward(params, np.ones((5, 4)))


def test_integer_x_into_a_float32_layer_is_refused_where_it_enters():
    """int64 @ float32 is float64 in numpy: a float32 dense silently gave float64, and in a
    net the error blamed the NEXT dense ("x is float64") instead of the data."""
    layer = layers.dense(2, dtype=np.float32)
    params, _ = layer.init(random.key(0), (3,))
    with pytest.raises(ArrayTypeError, match=r"dense\(2\): x is int64, .*float32 computes in "
                                             r"float64; cast x to float32"):
        layer.forward(params, np.ones((2, 3), np.int64))
    assert layer.forward(params, np.ones((2, 3), np.uint8))[0].dtype == np.float32
    assert layers.dense(2).forward(layers.dense(2).init(random.key(0), (3,))[0],
                                   np.ones((2, 3), np.int64))[0].dtype == np.float64
    net = layers.mlp([4, 1], activation="tanh", dtype=np.float32)
    params, _ = net.init(random.key(0), (2,))
    x, y = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.zeros((4, 1), np.float32)
    with pytest.raises(ArrayTypeError, match=r"layer 0 \(dense\(4\)\): dense\(4\): x is int64"):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), epochs=1, batch_size=4,
                  key=random.key(1), progress=False)
    bn = layers.batch_norm(dtype=np.float32)  # numpy's mean of any integers is float64
    with pytest.raises(ArrayTypeError, match="x is uint8"):
        bn.forward(bn.init(random.key(0), (3,))[0], np.ones((2, 3), np.uint8), train=True,
                   state=layers.init_state(bn, (3,)))


def test_mlp_gives_he_to_a_relu_passed_as_a_layer():
    """``activation=relu()`` got Xavier, ``activation="relu"`` He: the same net, other init."""
    by_name = layers.mlp([50, 1], activation="relu").init(random.key(0), (400,))[0]
    for act in (layers.relu(), layers.leaky_relu(0.2)):
        by_layer = layers.mlp([50, 1], activation=act).init(random.key(0), (400,))[0]
        np.testing.assert_array_equal(by_layer[0]["W"], by_name[0]["W"])
    tanh = layers.mlp([50, 1], activation=layers.tanh()).init(random.key(0), (400,))[0]
    assert tanh[0]["W"].std() < by_name[0]["W"].std()


@pytest.mark.parametrize("make, in_shape, x_shape", [
    (lambda: layers.dense(2, dtype=np.float32), (3,), (4, 3)),
    (lambda: layers.conv2d(2, 2, dtype=np.float32), (1, 3, 3), (4, 1, 3, 3)),
])
def test_a_float64_bias_beside_float32_weights_is_refused(make, in_shape, x_shape):
    """Hand-built params {"W": float32, "b": float64} made the float32 output float64."""
    layer = make()
    params, _ = layer.init(random.key(0), in_shape)
    mixed = freeze({"W": params["W"], "b": np.zeros(params["b"].shape)})
    with pytest.raises(ArrayTypeError, match="W and b must be float arrays of one dtype.*got "
                                             "float32 and float64"):
        layer.forward(mixed, np.ones(x_shape, np.float32))


def test_a_float64_state_beside_a_float32_batch_norm_is_refused():
    """In eval mode ``x - mean`` with a float64 state gave float64 from a float32 layer."""
    layer = layers.batch_norm(dtype=np.float32)
    params, _ = layer.init(random.key(0), (3,))
    wide = layers.init_state(layers.batch_norm(), (3,))
    with pytest.raises(ArrayTypeError, match="share one float dtype, got float32, float32, "
                                             "float64, float64"):
        layer.forward(params, np.ones((4, 3), np.float32), train=False, state=wide)
    # check_layer checks in float64: it takes the state there with the params
    x = np.asarray(random.normal(random.key(1), (4, 3)), np.float32)
    kwargs = {"train": True, "state": layers.init_state(layer, (3,))}
    assert check.check_layer(layer, params, x, forward_kwargs=kwargs).ok
    assert check.check_serial([layers.dense(3, dtype=np.float32), layer],
                              layers.serial(layers.dense(3, dtype=np.float32), layer).init(
                                  random.key(0), (3,))[0], x,
                              forward_kwargs={"train": True,
                                              "state": ((), kwargs["state"])}).ok


def test_numpy_integer_and_float_arguments_are_taken():
    """dense(np.int64(3)) was taken, conv2d/max_pool2d refused np.int64 sizes ("got
    np.int64(3)": a positive integer) and batch_norm an eps of np.float32."""
    sizes = np.arange(1, 4, 2)
    assert [layers.conv2d(2, k, padding=k // 2).name for k in sizes] == [
        "conv2d(2, 1)", "conv2d(2, 3, padding=1)"]
    assert layers.max_pool2d(sizes[1], stride=np.int64(1)).name == "max_pool2d(3, stride=1)"
    assert layers.batch_norm(eps=np.float32(1e-3)).name.startswith("batch_norm(")


@pytest.mark.parametrize(("make", "in_shape", "extras"), [
    (lambda: layers.dense(2, dtype=np.float32), (3,), {}),
    (lambda: layers.conv2d(2, 3, dtype=np.float32), (1, 5, 5), {}),
    (lambda: layers.batch_norm(dtype=np.float32), (3,), {"train": True}),
])
def test_a_float64_dy_into_a_float32_layer_is_refused(make, in_shape, extras):
    # numpy's promotion made the grads float64 without a word (the optimizer refused them
    # later, naming itself); the output's dtype is in the cache
    layer = make()
    params, _ = layer.init(random.key(0), in_shape)
    if "state" in layer.takes:
        extras = {**extras, "state": layers.init_state(layer, in_shape)}
    y, cache = layer.forward(params, np.ones((4, *in_shape), np.float32), **extras)
    assert y.dtype == np.float32
    with pytest.raises(ArrayTypeError, match=rf"{re.escape(layer.name)}\.backward: expected dy "
                                             rf"of dtype float32 \(the forward output's\), got "
                                             rf"float64"):
        layer.backward(cache, np.ones(y.shape))
    dx, _ = layer.backward(cache, np.ones(y.shape, np.float32))
    assert dx.dtype == np.float32
