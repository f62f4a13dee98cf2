"""Bad inputs that once gave a wrong or NaN answer now get a clear error (issue 13)."""

import numpy as np
import pytest

from funcnet import layers, losses, optim, random, train
from funcnet.errors import ArgumentError, ArrayTypeError, NonFiniteError, ShapeError, StructureError

ONE_HOT = np.eye(3)[[0, 1, 2, 1]]
LOGITS = np.array([[1.0, 2.0, 0.5], [0.1, 0.2, 0.3], [2.0, -1.0, 0.0], [0.0, 0.0, 1.0]])


# --- accuracy ------------------------------------------------------------------------------


def test_accuracy_of_one_output_per_sample_does_not_broadcast():
    pred = np.array([[0.9], [0.1], [0.8], [0.2]])
    assert train.accuracy(pred, np.array([1, 0, 1, 0])) == 1.0
    assert train.accuracy(pred, np.array([[1], [0], [1], [1]])) == 0.75


@pytest.mark.parametrize("pred, target, match", [
    (np.ones((8, 3)), np.array([1]), r"same number of samples"),
    (np.ones((8, 3)), np.zeros(7), r"same number of samples"),
    (np.ones((8, 3)), np.zeros(8), r"integer labels \(8,\) or one-hot rows \(8, 3\)"),
    (np.ones((8, 2)), np.ones((8, 3)), r"integer labels"),
    (np.ones((8, 1)), np.ones((8, 2)), r"one output per sample"),
])
def test_accuracy_refuses_targets_that_do_not_fit(pred, target, match):
    with pytest.raises(ShapeError, match=match):
        train.accuracy(pred, target)


# --- layers --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.complex128, object, "U3"])
@pytest.mark.parametrize("make", [lambda: layers.dense(2), layers.relu, layers.tanh])
def test_layers_refuse_x_that_is_not_real_numbers(make, dtype):
    layer = make()
    params, _ = layer.init(random.key(0), (3,))
    x = np.ones((2, 3)).astype(dtype)
    with pytest.raises(ArrayTypeError, match=r"expected x of real numbers .* got dtype"):
        layer.forward(params, x)


def test_dense_with_integer_params_names_the_params():
    layer = layers.dense(2)
    with pytest.raises(ArrayTypeError, match=r"params W and b must be float arrays.*int64"):
        layer.forward({"W": np.ones((3, 2), np.int64), "b": np.zeros(2, np.int64)},
                      np.ones((4, 3)))


def test_batch_norm_refuses_an_empty_batch_in_training_only():
    layer = layers.batch_norm()
    params, _ = layer.init(random.key(0), (4,))
    state = layers.init_state(layer, (4,))
    with pytest.raises(ShapeError, match=r"train=True needs at least one sample"):
        layer.forward(params, np.ones((0, 4)), train=True, state=state)
    y, cache = layer.forward(params, np.ones((0, 4)), train=False, state=state)
    assert y.shape == (0, 4) and cache.state is state


def test_a_backward_refuses_another_layers_cache():
    _, relu_cache = layers.relu().forward((), np.ones((2, 3)))
    with pytest.raises(StructureError, match=r"dense\(2\)\.backward: expected the cache "
                                             r"dense\(2\)\.forward returned \(a DenseCache\)"):
        layers.dense(2).backward(relu_cache, np.ones((2, 2)))
    _, ce_cache = losses.softmax_cross_entropy().forward(LOGITS, ONE_HOT)
    with pytest.raises(StructureError, match=r"mse\.backward: expected the cache"):
        losses.mse().backward(ce_cache)


# --- losses --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", [-ONE_HOT, np.zeros((4, 3)), ONE_HOT * 2,
                                    ONE_HOT + np.nan])
@pytest.mark.parametrize("make", [losses.softmax_cross_entropy, losses.cross_entropy])
def test_one_hot_targets_must_be_distributions(make, target):
    pred = LOGITS if make is losses.softmax_cross_entropy else np.full((4, 3), 1 / 3)
    with pytest.raises(ArgumentError, match=r"target rows must be one-hot or probabilities "
                                            r"summing to 1; row 0"):
        make().forward(pred, target)


@pytest.mark.parametrize("labels", [np.array([0.0, 1.0, 2.0, 1.0]),
                                    np.array([True, False, True, True]),
                                    np.array(["a", "b", "c", "a"])])
def test_class_labels_must_be_integers(labels):
    with pytest.raises(ArrayTypeError, match=r"class labels must be integers in \[0, 3\)"):
        losses.softmax_cross_entropy().forward(LOGITS, labels)


def test_softmax_cross_entropy_refuses_infinite_logits():
    logits = LOGITS.copy()
    logits[2, 1] = np.inf
    with pytest.raises(NonFiniteError, match=r"logits\) holds NaN or inf at row 2"):
        losses.softmax_cross_entropy().forward(logits, ONE_HOT)


@pytest.mark.parametrize("make, pred", [
    (losses.binary_cross_entropy, np.array([[3.0], [-2.0]])),
    (losses.cross_entropy, LOGITS[:2]),
])
def test_probability_losses_refuse_logits(make, pred):
    target = np.array([[1.0], [0.0]]) if pred.shape[1] == 1 else ONE_HOT[:2]
    with pytest.raises(ArgumentError, match=r"expected pred \(probabilities\) in \[0, 1\].*"
                                            r"for logits use"):
        make().forward(pred, target)


@pytest.mark.parametrize("make", [losses.sigmoid_binary_cross_entropy,
                                  losses.binary_cross_entropy])
def test_binary_targets_must_lie_in_the_unit_interval(make):
    with pytest.raises(ArgumentError, match=r"expected target in \[0, 1\].*e\.g\. 2\.0"):
        make().forward(np.array([[0.5], [0.5]]), np.array([[2.0], [0.0]]))


def test_a_complex_target_is_refused():
    with pytest.raises(ArrayTypeError, match=r"mse: expected target of real numbers"):
        losses.mse().forward(np.ones((2, 1)), np.ones((2, 1), np.complex128))


def test_fit_checks_every_target_once_before_the_first_step():
    net = layers.mlp([3])
    params, _ = net.init(random.key(0), (2,))
    y = np.eye(3)[np.arange(6) % 3]
    y[5] = 0.0  # the last sample, in the last batch: caught before any step runs
    with pytest.raises(ArgumentError, match=r"row 5 is \[0\.0, 0\.0, 0\.0\]"):
        train.fit(net, losses.softmax_cross_entropy(), optim.sgd(0.1), params,
                  (np.ones((6, 2)), y), epochs=1, batch_size=2, key=random.key(0),
                  progress=False)


# --- predict and a diverging run -----------------------------------------------------------


def test_predict_on_an_empty_batch_and_on_a_scalar():
    net = layers.mlp([3])
    params, _ = net.init(random.key(0), (2,))
    assert train.predict(net, params, np.ones((0, 2))).shape == (0, 3)
    with pytest.raises(ShapeError, match=r"predict: expected x with a batch axis"):
        train.predict(net, params, np.array(1.0))


def test_a_diverging_fit_keeps_the_last_finite_state():
    net = layers.mlp([1], activation="identity")
    params, _ = net.init(random.key(0), (1,))
    x = np.linspace(-1, 1, 8)[:, None]
    with pytest.raises(NonFiniteError, match=r"epoch \d+, step \d+") as caught:
        train.fit(net, losses.mse(), optim.sgd(50.0), params, (x, 3 * x), epochs=200,
                  batch_size=8, key=random.key(0), progress=False)
    state = caught.value.state
    assert isinstance(state, train.TrainState) and state.epoch > 0
    assert len(state.history.loss) == state.epoch and np.isfinite(state.history.loss).all()
    assert all(np.isfinite(leaf).all() for leaf in (state.params[0]["W"], state.params[0]["b"]))


def test_a_network_refuses_the_cache_of_another_network():
    small, big = layers.mlp([5, 3]), layers.mlp([16, 3])
    params, _ = small.init(random.key(0), (2,))
    y, cache = small.forward(params, np.ones((4, 2)))
    with pytest.raises(StructureError, match=r"mlp\(\[16, 3\]\)\.backward: this cache was "
                                             r"made by another network's forward"):
        big.backward(cache, np.ones_like(y))
    assert small.backward(cache, np.ones_like(y))[0].shape == (4, 2)


@pytest.mark.parametrize("make", [lambda: layers.conv2d(2, 3, padding=1),
                                  lambda: layers.max_pool2d(2)])
def test_image_layers_refuse_x_that_is_not_real_numbers(make):
    layer = make()
    params, _ = layer.init(random.key(0), (1, 4, 4))
    with pytest.raises(ArrayTypeError, match=r"expected x of real numbers .* got dtype complex"):
        layer.forward(params, np.ones((2, 1, 4, 4), np.complex128))
