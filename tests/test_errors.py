"""Bad input fails at the boundary with a message naming who complained, what was
expected and what came: never a bare numpy error from deep inside a kernel."""

from __future__ import annotations

import numpy as np
import pytest

from funcnet import errors, optim, random, tree
from funcnet import layers as L
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    FuncnetError,
    ShapeError,
    StructureError,
)

KEY = random.key(0)
DENSE = L.dense(2)
PARAMS, _ = DENSE.init(KEY, (3,))
X = np.ones((4, 3))
_, CACHE = DENSE.forward(PARAMS, X)


def _serial_net():
    net = L.serial(L.dense(3), L.relu(), L.dense(4))
    params, _ = net.init(KEY, (2,))
    return net, params


def _serial_with_wrong_third_params():
    net, params = _serial_net()
    wrong = {"W": np.ones((5, 4)), "b": np.ones(4)}  # expects 5 features, layer 1 gives 3
    return net.forward((params[0], params[1], wrong), np.ones((1, 2)))


def _serial_backward_with_wrong_dy():
    net, params = _serial_net()
    _, cache = net.forward(params, np.ones((1, 2)))
    return net.backward(cache, np.ones((1, 5)))


def _sgd_update_with(grads):
    params = ({"W": np.ones((2, 2)), "b": np.ones(2)}, ())
    opt = optim.sgd(0.1)
    return opt.update(grads, opt.init(params), params)


CASES = {
    # dense at its boundary
    "dense: wrong number of features": (
        lambda: DENSE.forward(PARAMS, np.ones((4, 5))), ShapeError,
        r"^dense\(2\): expected 3 input features, got 5 \(x has shape \(4, 5\)\)$"),
    "dense: 3-D input": (
        lambda: DENSE.forward(PARAMS, np.ones((4, 3, 1))), ShapeError,
        r"^dense\(2\): expected x of shape \(batch, 3\), got rank 3 shape \(4, 3, 1\); "
        r"put flatten\(\) before a dense layer$"),
    "dense: 1-D input (no batch axis)": (
        lambda: DENSE.forward(PARAMS, np.ones(3)), ShapeError,
        r"^dense\(2\): expected x of rank at least 2 \(a leading batch axis\), "
        r"got shape \(3,\)$"),
    "dense: a list": (
        lambda: DENSE.forward(PARAMS, [[1.0, 2.0, 3.0]]), ArrayTypeError,
        r"^dense\(2\): expected x to be an array of shape \(batch, \.\.\.\), got a list$"),
    "dense: an int": (
        lambda: DENSE.forward(PARAMS, 7), ArrayTypeError,
        r"^dense\(2\): expected x to be an array .* got an int \(7\)$"),
    "dense: params missing b": (
        lambda: DENSE.forward({"W": PARAMS["W"]}, X), StructureError,
        r"^dense\(2\): expected params \{'W': \(in, 2\), 'b': \(2,\)\}, "
        r"got a dict with keys \['W'\]$"),
    "dense: params as a tuple": (
        lambda: DENSE.forward((PARAMS["W"], PARAMS["b"]), X), StructureError,
        r"^dense\(2\): expected params \{'W': \(in, 2\), 'b': \(2,\)\}, got a tuple$"),
    "dense: params of another layer's width": (
        lambda: DENSE.forward({"W": np.ones((3, 4)), "b": np.ones(4)}, X), ShapeError,
        r"^dense\(2\): expected params W of shape \(in, 2\) and b of shape \(2,\), "
        r"got W \(3, 4\) and b \(4,\)$"),
    "dense: params not arrays": (
        lambda: DENSE.forward({"W": [[1.0, 2.0]], "b": 0.0}, X), ArrayTypeError,
        r"^dense\(2\): params 'W' and 'b' must be arrays, got a list and a float \(0\.0\)$"),
    "dense: dy of the wrong shape": (
        lambda: DENSE.backward(CACHE, np.ones((4, 3))), ShapeError,
        r"^dense\(2\)\.backward: expected dy of shape \(4, 2\) \(the forward output\), "
        r"got \(4, 3\)$"),
    "dense: dy a list": (
        lambda: DENSE.backward(CACHE, [[1.0, 1.0]]), ArrayTypeError,
        r"^dense\(2\)\.backward: expected dy to be an array of shape \(4, 2\), got a list$"),
    "dense: float32 x into float64 params": (
        lambda: DENSE.forward(PARAMS, X.astype(np.float32)), ArrayTypeError,
        r"^dense\(2\): x is float32 but the parameters are float64; build the layer with "
        r"dtype='float32' or cast x$"),
    # construction
    "mlp: unknown activation": (
        lambda: L.mlp([3, 2], activation="rleu"), ArgumentError,
        r"^mlp: unknown activation 'rleu'; expected one of 'relu', 'leaky_relu', 'sigmoid', "
        r"'tanh', 'identity', 'softmax'$"),
    "mlp: unknown output": (
        lambda: L.mlp([3, 2], output="sofmax"), ArgumentError,
        r"^mlp output: unknown activation 'sofmax'; expected one of 'relu'"),
    "dense(0)": (lambda: L.dense(0), ArgumentError,
                 r"^dense: out_dim must be a positive integer, got 0$"),
    "dense(-3)": (lambda: L.dense(-3), ArgumentError,
                  r"^dense: out_dim must be a positive integer, got -3$"),
    "dense(2.5)": (lambda: L.dense(2.5), ArgumentError,
                   r"^dense: out_dim must be a positive integer, got 2\.5$"),
    "mlp([3, 0])": (lambda: L.mlp([3, 0]), ArgumentError,
                    r"^mlp: sizes\[1\] must be a positive integer, got 0$"),
    "mlp([])": (lambda: L.mlp([]), ArgumentError,
                r"^mlp: sizes must be a non-empty list of layer widths, got \[\]$"),
    "mlp(3)": (lambda: L.mlp(3), ArgumentError,
               r"^mlp: sizes must be a non-empty list of layer widths, got 3$"),
    "leaky_relu slope": (lambda: L.leaky_relu(1.5), ArgumentError,
                         r"^leaky_relu: slope must be a number in \[0, 1\), got 1\.5$"),
    "serial: not a layer": (
        lambda: L.serial(L.dense(2), 3), ArrayTypeError,
        r"^serial: argument 1 is an int \(3\), not a Layer$"),
    "serial: relu not called": (
        lambda: L.serial(L.dense(2), L.relu), ArrayTypeError,
        r"^serial: argument 1 is a function, not a Layer \(did you forget to call it, "
        r"e\.g\. relu\(\) not relu\?\)$"),
    "serial: empty": (lambda: L.serial(), ArgumentError, r"^serial: needs at least one layer$"),
    # init
    "init: an int for a key": (
        lambda: DENSE.init(0, (3,)), ArrayTypeError,
        r"^dense\(2\)\.init: expected a random key \(make one with funcnet\.random\.key\(seed\)\)"
        r", got an int \(0\)$"),
    "init: an int array for a key": (
        lambda: L.relu().init(np.array([1, 2]), (3,)), ArrayTypeError,
        r"^relu\.init: expected a random key .* got an array of shape \(2,\) and dtype int64$"),
    "init: in_shape with a zero": (
        lambda: DENSE.init(KEY, (0,)), ShapeError,
        r"^dense\(2\)\.init: in_shape must be a tuple of positive integers \(one sample, "
        r"no batch axis\), got \(0,\)$"),
    "init: in_shape a bare int": (
        lambda: DENSE.init(KEY, 3), ShapeError,
        r"^dense\(2\)\.init: in_shape must be a tuple of positive integers .* got 3$"),
    "init: in_shape of floats": (
        lambda: L.tanh().init(KEY, (3.0,)), ShapeError,
        r"^tanh\.init: in_shape must be a tuple of positive integers .* got \(3\.0,\)$"),
    "init: in_shape of rank 2 into dense": (
        lambda: DENSE.init(KEY, (3, 2)), ShapeError,
        r"^dense\(2\)\.init: expected in_shape of rank 1 \(features,\); put flatten\(\) before "
        r"it, got \(3, 2\) of rank 2$"),
    "init: softmax needs a feature axis": (
        lambda: L.softmax().init(KEY, ()), ShapeError,
        r"^softmax\.init: expected in_shape of rank at least 1, got \(\)$"),
    # inside serial: the position and name of the layer come first
    "serial forward: layer 2": (
        _serial_with_wrong_third_params, ShapeError,
        r"^serial layer 2 \(dense\(4\)\): dense\(4\): expected 5 input features, got 3"),
    "serial backward: layer 2": (
        _serial_backward_with_wrong_dy, ShapeError,
        r"^serial layer 2 \(dense\(4\)\): dense\(4\)\.backward: expected dy of shape \(1, 4\)"),
    "serial init: layer 0": (
        lambda: L.serial(L.flatten(), L.dense(4)).init(KEY, (2, 0)), ShapeError,
        r"^serial layer 0 \(flatten\): flatten\.init: in_shape must be a tuple of positive"),
    "mlp init: prefixed with the mlp and the layer": (
        lambda: L.mlp([3, 2]).init(KEY, (2, 2)), ShapeError,
        r"^mlp\(\[3, 2\]\) layer 0 \(dense\(3\)\): dense\(3\)\.init: expected in_shape of rank 1"),
    "serial: params of the wrong length": (
        lambda: _serial_net()[0].forward(_serial_net()[1][:2], np.ones((1, 2))), StructureError,
        r"^serial: expected params as a tuple of 3 entries \(one per layer\), "
        r"got a tuple of length 2$"),
    "serial: an unknown keyword": (
        lambda: _serial_net()[0].forward(_serial_net()[1], np.ones((1, 2)), train=True),
        ArgumentError,
        r"^serial: unexpected keyword \['train'\]; it takes no keyword arguments$"),
    "relu: params given": (
        lambda: L.relu().forward({"W": np.ones(2)}, np.ones((1, 2))), StructureError,
        r"^relu: this layer has no parameters; expected params \(\), got a dict$"),
    # gradient trees against params
    "tree: grads missing a key": (
        lambda: tree.assert_same_structure({"W": 1, "b": 2}, {"W": 1}, who="train step"),
        StructureError,
        r"^train step: grads do not match the structure of params at params: "
        r"expected a dict with keys \['W', 'b'\], got a dict with keys \['W'\]$"),
    "sgd: grads missing b": (
        lambda: _sgd_update_with(({"W": np.ones((2, 2))}, ())), StructureError,
        r"^sgd\.update: grads do not match the structure of params at params\[0\]: "
        r"expected a dict with keys \['W', 'b'\], got a dict with keys \['W'\]$"),
    "sgd: grads as a list": (
        lambda: _sgd_update_with([{"W": np.ones((2, 2)), "b": np.ones(2)}, ()]), StructureError,
        r"^sgd\.update: grads do not match the structure of params at params: "
        r"expected a tuple of length 2, got a list of length 2$"),
    "sgd: grads of another shape": (
        lambda: _sgd_update_with(({"W": np.ones((2, 3)), "b": np.ones(2)}, ())), ShapeError,
        r"^sgd\.update: grads at params\[0\]\['W'\] has shape \(2, 3\), expected \(2, 2\)$"),
    # the graph nodes of note 001
    "mul: shapes that do not broadcast": (
        lambda: L.mul().forward((), (np.ones((2, 3)), np.ones(4))), ShapeError,
        r"^mul: cannot broadcast x of shape \(2, 3\) with y of shape \(4,\)$"),
    "add: shapes that do not broadcast": (
        lambda: L.add().forward((), (np.ones((2, 3)), np.ones(2))), ShapeError,
        r"^add: cannot broadcast x of shape \(2, 3\) with y of shape \(2,\)$"),
    "mul: a string": (
        lambda: L.mul().forward((), ("100", 2.0)), ArrayTypeError,
        r"^mul: expected x to be a number or an array, got a str \('100'\)$"),
    "add: a list": (
        lambda: L.add().forward((), (1.0, [1, 2])), ArrayTypeError,
        r"^add: expected y to be a number or an array, got a list$"),
    "mul: a bool": (
        lambda: L.mul().forward((), (True, 2.0)), ArrayTypeError,
        r"^mul: expected x to be a number or an array, got a bool \(True\)$"),
    "mul: not a pair": (
        lambda: L.mul().forward((), 3.0), ArrayTypeError,
        r"^mul: expected a pair \(x, y\) as input, got a float \(3\.0\)$"),
    "add: dout of the wrong shape": (
        lambda: L.add().backward(L.add().forward((), (2.0, 3.0))[1], np.ones(2)), ShapeError,
        r"^add\.backward: expected dout of shape \(\) \(the forward output\), "
        r"got an array of shape \(2,\)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_named(case):
    call, error, message = CASES[case]
    with pytest.raises(error, match=message) as caught:
        call()
    assert isinstance(caught.value, FuncnetError)


def test_every_error_is_also_the_builtin_a_caller_would_catch():
    assert issubclass(errors.ShapeError, ValueError)
    assert issubclass(errors.StructureError, ValueError)
    assert issubclass(errors.ArgumentError, ValueError)
    assert issubclass(errors.ArrayTypeError, TypeError)
    assert issubclass(errors.NonFiniteError, FloatingPointError)
    assert issubclass(errors.CheckpointError, ValueError)
    assert issubclass(errors.DataError, ValueError)
    assert issubclass(errors.GradientCheckError, AssertionError)


def test_serial_keeps_the_error_type_and_chains_the_original():
    with pytest.raises(ShapeError) as caught:
        _serial_with_wrong_third_params()
    original = caught.value.__cause__
    assert type(original) is ShapeError
    assert str(caught.value) == f"serial layer 2 (dense(4)): {original}"


def test_nested_serial_prefixes_each_level():
    inner = L.serial(L.dense(3), L.relu(), name="block")
    net = L.serial(L.dense(5), inner)
    params, _ = net.init(KEY, (2,))
    broken = (params[0], ({"W": np.ones((4, 3)), "b": np.ones(3)}, ()))
    with pytest.raises(ShapeError, match=r"^serial layer 1 \(block\): block layer 0 "
                                         r"\(dense\(3\)\): dense\(3\): expected 4 input "
                                         r"features, got 5"):
        net.forward(broken, np.ones((1, 2)))


@pytest.mark.parametrize(
    ("value", "text"),
    [(np.zeros((4, 5)), "an array of shape (4, 5) and dtype float64"),
     (np.zeros(3, np.float32), "an array of shape (3,) and dtype float32"),
     ([1, 2], "a list"), ((1,), "a tuple"), (3, "an int (3)"), (2.5, "a float (2.5)"),
     ("x", "a str ('x')"), (True, "a bool (True)"), (None, "None"), ({}, "a dict")],
)
def test_describe(value, text):
    assert errors.describe(value) == text


def test_a_numpy_scalar_is_not_called_an_array():
    # it has a shape and a dtype, so it was "an array of shape () and dtype float64", in a
    # message saying that it must be a float array
    with pytest.raises(ArrayTypeError, match=r"sgd\.init: params at params\['s'\] must be a "
                                             r"float array, got a numpy float64 scalar \(1\.0\)"):
        optim.sgd(0.1).init({"s": np.float64(1.0)})
