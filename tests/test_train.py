"""funcnet.train: the fold and its laws, checked against explicit loops and hand computations.

Minibatches cover every sample once; a step's gradient is jax.grad (and finite
differences) of the loss of the net, computed without jax; ``fit`` equals the
explicit ``for`` loop over ``run_epoch``; a run is a pure function of its key;
observers and the progress bar only watch; a run stopped after any epoch, or
killed in the middle of one, resumes from its checkpoints bit for bit.
"""

from __future__ import annotations

import functools
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_bitwise_equal, snapshot

from funcnet import data, io, layers, losses, optim, random, train, tree
from funcnet import init as initializers
from funcnet.check import check_function
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    CheckpointError,
    NonFiniteError,
    ShapeError,
)
from funcnet.io import CheckpointWarning
from funcnet.losses import Loss
from funcnet.train import Config, History, TrainState

REPO = Path(__file__).resolve().parents[1]
KILLED = 17  # the exit status of a subprocess killed on purpose


# --------------------------------------------------------------------------- problems


def quadrants(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Points in the plane labelled 1 where x0 * x1 > 0 (an XOR of signs), else 0."""
    x = random.normal(random.key(seed), (n, 2))
    return x, (x[:, 0] * x[:, 1] > 0).astype(np.int64)


TRAIN = quadrants(10, 7)  # 10 samples: batch_size 3 gives 4 batches, the last one partial
VALID = quadrants(6, 8)
PROBE = random.uniform(random.key(9), (5, 2))  # the snapshot inputs
BATCHES = 4  # ceil(10 / 3)


def classifier(hidden: int = 8, dtype=np.float64):
    """A 2-hidden-2 tanh net on logits and its initial params."""
    net = layers.mlp([hidden, 2], activation="tanh", dtype=dtype)
    params, _ = net.init(random.key(0), (2,))
    return net, params


def fit_classifier(epochs: int, *, optimizer=None, loss=None, hidden: int = 8, **options):
    """``fit`` on TRAIN with validation, snapshots every 2 epochs, minibatches of 3."""
    net, params = classifier(hidden)
    kwargs = dict(epochs=epochs, batch_size=3, key=random.key(1), progress=False,
                  validation=VALID, snapshot=(PROBE, 2))
    kwargs.update(options)
    return train.fit(net, loss or losses.softmax_cross_entropy(), optimizer or optim.adam(0.05),
                     params, TRAIN, **kwargs)


def explicit_loop(epochs: int, *, optimizer=None, shuffle=True, drop_last=False):
    """The states after 0, 1, ..., epochs epochs of ``fit_classifier``'s run, by a for loop."""
    net, params = classifier()
    optimizer = optimizer or optim.adam(0.05)
    config = Config(net, losses.softmax_cross_entropy(), optimizer, *TRAIN, 3, shuffle,
                    drop_last, VALID, (PROBE, 2))
    state = train.init_state(net, optimizer, params, random.key(1))
    states = [state]
    for _ in range(epochs):
        state = train.run_epoch(config, state)
        states.append(state)
    return states


def assert_same_state(actual, expected, what="state"):
    """Bitwise equal params, opt_state, key, counters, history and model state."""
    assert type(actual) is TrainState and type(actual.history) is History
    assert type(actual.epoch) is int and type(actual.step) is int
    assert_bitwise_equal(expected, actual, what)


def killing(loss: Loss, after_calls: int) -> Loss:
    """``loss`` that kills the whole process (no cleanup) on forward call ``after_calls + 1``.

    ``functools.wraps`` keeps the loss's name, which ``predict`` reads to apply softmax.
    """
    calls = []

    @functools.wraps(loss.forward)
    def forward(pred, target):
        calls.append(None)
        if len(calls) > after_calls:
            os._exit(KILLED)
        return loss.forward(pred, target)

    return loss._replace(forward=forward)


def run_python(script: str, *extra_paths: Path) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh interpreter that imports funcnet from this worktree."""
    paths = [str(REPO), *map(str, extra_paths), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def checkpoint_epochs(directory) -> list[int]:
    return [epoch for epoch, _ in io.list_checkpoints(directory)]


# --------------------------------------------------------------------------- minibatches


def indexed(n: int):
    """x holds each sample's index twice (two features), y the index as an int label."""
    ids = np.arange(n)
    return np.stack([ids, -ids], axis=1).astype(np.float64), ids.copy()


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3, 4, 10])
def test_minibatches_use_every_sample_exactly_once(batch_size, shuffle):
    x, y = indexed(10)
    batches = train.minibatches(random.key(3), x, y, batch_size, shuffle=shuffle)
    assert len(batches) == math.ceil(10 / batch_size)
    sizes = [len(xb) for xb, _ in batches]
    assert sizes[:-1] == [batch_size] * (len(batches) - 1)
    assert sizes[-1] == 10 - batch_size * (len(batches) - 1)  # the partial batch is kept
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen.tolist()) == list(range(10))  # a permutation: no repeats, none missing
    for xb, yb in batches:  # rows stay paired with their targets
        assert np.array_equal(xb[:, 0], yb) and np.array_equal(xb[:, 1], -yb)


@pytest.mark.parametrize("shuffle", [True, False])
def test_drop_last_drops_only_the_partial_batch(shuffle):
    x, y = indexed(10)
    batches = train.minibatches(random.key(3), x, y, 4, shuffle=shuffle, drop_last=True)
    assert [len(yb) for _, yb in batches] == [4, 4]
    seen = np.concatenate([yb for _, yb in batches]).tolist()
    assert len(set(seen)) == 8
    if not shuffle:
        assert seen == list(range(8))
    divides = train.minibatches(random.key(3), x, y, 5, shuffle=shuffle, drop_last=True)
    assert sorted(np.concatenate([yb for _, yb in divides]).tolist()) == list(range(10))


def test_minibatches_without_shuffle_keep_the_data_order():
    x, y = indexed(7)
    batches = train.minibatches(random.key(3), x, y, 3, shuffle=False)
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2], [3, 4, 5], [6]]
    assert np.array_equal(np.concatenate([xb for xb, _ in batches]), x)


def test_minibatch_order_is_a_pure_function_of_the_key():
    x, y = indexed(20)

    def order(key):
        return np.concatenate([yb for _, yb in train.minibatches(key, x, y, 6)]).tolist()

    assert order(random.key(5)) == order(random.key(5))
    assert order(random.key(5)) == random.permutation(random.key(5), 20).tolist()
    orders = {tuple(order(random.key(seed))) for seed in range(6)}
    assert len(orders) == 6  # different keys, different orders
    assert tuple(range(20)) not in orders  # and shuffled


def test_minibatches_leave_the_data_alone():
    x, y = indexed(9)
    before = snapshot((x, y))
    train.minibatches(random.key(0), x, y, 2)
    train.minibatches(random.key(0), x, y, 2, shuffle=False)
    assert_bitwise_equal(before, (x, y), "data")


@pytest.mark.parametrize(("args", "error", "match"), [
    ((np.zeros((4, 2)), np.zeros(3), 2), ShapeError,
     r"minibatches: x has 4 samples but y has 3; they must match along axis 0"),
    ((np.zeros((4, 2)), np.zeros(4), 0), ArgumentError,
     r"minibatches: batch_size must be a positive integer, got 0"),
    ((np.zeros((4, 2)), np.zeros(4), -1), ArgumentError, r"batch_size .* got -1"),
    ((np.zeros((4, 2)), np.zeros(4), 2.0), ArgumentError, r"batch_size .* got 2\.0"),
    ((np.zeros((4, 2)), np.zeros(4), True), ArgumentError, r"batch_size .* got True"),
    ((np.zeros((4, 2)), np.zeros(4), 5), ArgumentError,
     r"minibatches: batch_size must be at most the number of samples \(4\), got 5"),
    (([[0.0, 1.0]], np.zeros(1), 1), ArrayTypeError,
     r"minibatches: expected x to be a numpy array with samples along axis 0, got a list"),
    ((np.zeros((4, 2)), (0, 1, 2, 3), 1), ArrayTypeError, r"expected y .* got a tuple"),
    ((np.array(1.0), np.zeros(1), 1), ShapeError, r"minibatches: x needs a sample axis"),
    ((np.zeros((0, 2)), np.zeros(0), 1), ShapeError, r"minibatches: the data set is empty"),
])
def test_minibatches_reject_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        train.minibatches(random.key(0), *args)


# --------------------------------------------------------------------------- one step


def _mlp(sizes, activation, output=None):
    # Random biases: with zero biases XOR's (0, 0) row gives a logit of exactly 0, where
    # jax.grad of sigmoid_binary_cross_entropy's max/abs form is off by 0.5 (see the report).
    return layers.mlp(sizes, activation=activation, output=output, b_init=initializers.normal(0.5))


STEP_CASES = {
    "sigmoid_bce_xor": lambda: (_mlp([3, 1], "tanh"), losses.sigmoid_binary_cross_entropy(),
                                *data.xor()),
    "softmax_ce_labels": lambda: (_mlp([3, 2], "tanh"), losses.softmax_cross_entropy(), *TRAIN),
    "softmax_ce_one_hot": lambda: (_mlp([3, 2], "tanh"), losses.softmax_cross_entropy(),
                                   TRAIN[0], data.one_hot(TRAIN[1], 2)),
    "mse_sine": lambda: (_mlp([3, 1], "sigmoid"), losses.mse(),
                         *(a[::9] for a in data.sine_regression()[:2])),
    "sum_of_squares_sine": lambda: (_mlp([3, 1], "sigmoid"), losses.sum_of_squares(),
                                    *(a[::9] for a in data.sine_regression()[:2])),
    "bce_probabilities": lambda: (_mlp([3, 1], "tanh", "sigmoid"),
                                  losses.binary_cross_entropy(), *data.xor()),
}


@pytest.mark.parametrize("case", sorted(STEP_CASES))
def test_value_and_grad_is_the_gradient_of_the_loss_of_the_net(jax, case):
    net, loss, x, y = STEP_CASES[case]()
    params, _ = net.init(random.key(4), x.shape[1:])
    before = snapshot((params, x, y))
    value, grads, model_state = train.value_and_grad(net, loss, params, x, y)

    def objective(p):  # the loss of the net, composed from the two forwards only
        return loss.forward(net.forward(p, x)[0], y)[0]

    check_function(objective, grads, params, name=case, root="params", raise_on_failure=True)
    assert float(value) == float(objective(params))
    assert model_state == ()
    assert_bitwise_equal(before, (params, x, y), "inputs")


def test_train_step_is_the_optimizer_rule_applied_to_the_hand_gradient():
    net, loss, x, y = STEP_CASES["softmax_ce_labels"]()
    params, _ = net.init(random.key(4), (2,))
    opt = optim.sgd(0.3)
    value, grads, _ = train.value_and_grad(net, loss, params, x, y)
    result = train.train_step(net, loss, opt, params, opt.init(params), x, y)
    expected = tree.map(lambda W, g: W - 0.3 * g, params, grads)  # W <- W - lr g, by hand
    assert_bitwise_equal(expected, result.params, "params")
    assert_bitwise_equal(grads, result.grads, "grads")
    assert result.loss == float(value) and type(result.loss) is float
    assert int(result.opt_state.count) == 1
    assert tree.is_frozen(result.params)


def test_training_never_imports_jax():
    script = """
        import sys
        sys.modules["jax"] = None  # from here on, `import jax` raises ImportError
        sys.modules["jaxlib"] = None
        try:
            import jax  # noqa: F401
        except ImportError:
            pass
        else:
            raise SystemExit("the guard does not work")
        import numpy as np
        from funcnet import data, layers, losses, optim, random, train
        d = data.xor()
        net = layers.mlp([3, 1], activation="tanh")
        params, _ = net.init(random.key(4), (2,))
        loss, opt = losses.sigmoid_binary_cross_entropy(), optim.adam(0.1)
        step = train.train_step(net, loss, opt, params, opt.init(params), d.x, d.t)
        state = train.fit(net, loss, opt, params, (d.x, d.t), epochs=3, batch_size=2,
                          key=random.key(1), progress=False, validation=(d.x, d.t))
        evaluation = train.evaluate(net, loss, state.params, d.x, d.t)
        probs = train.predict(net, state.params, d.x, loss=loss, batch_size=3)
        loaded = [m for m, v in sys.modules.items() if m.split(".")[0] in ("jax", "jaxlib")
                  and v is not None]
        assert not loaded, loaded
        print(repr(step.loss), repr(state.history.loss[-1]), repr(evaluation.loss),
              repr(float(probs.sum())))
    """
    done = run_python(script)
    assert done.returncode == 0, done.stderr
    d = data.xor()
    net = layers.mlp([3, 1], activation="tanh")
    params, _ = net.init(random.key(4), (2,))
    loss, opt = losses.sigmoid_binary_cross_entropy(), optim.adam(0.1)
    step = train.train_step(net, loss, opt, params, opt.init(params), d.x, d.t)
    state = train.fit(net, loss, opt, params, (d.x, d.t), epochs=3, batch_size=2,
                      key=random.key(1), progress=False, validation=(d.x, d.t))
    evaluation = train.evaluate(net, loss, state.params, d.x, d.t)
    probs = train.predict(net, state.params, d.x, loss=loss, batch_size=3)
    assert done.stdout.split() == [repr(step.loss), repr(state.history.loss[-1]),
                                   repr(evaluation.loss), repr(float(probs.sum()))]


# --------------------------------------------------------------------------- the fold


@pytest.mark.parametrize("optimizer", [optim.sgd(0.2), optim.momentum(0.1), optim.adam(0.05)],
                         ids=["sgd", "momentum", "adam"])
def test_fit_equals_the_explicit_loop_over_run_epoch(optimizer):
    expected = explicit_loop(5, optimizer=optimizer)[-1]
    assert_same_state(fit_classifier(5, optimizer=optimizer), expected)


@pytest.mark.parametrize(("shuffle", "drop_last"), [(False, False), (True, True)])
def test_fit_passes_shuffle_and_drop_last_to_every_epoch(shuffle, drop_last):
    expected = explicit_loop(3, shuffle=shuffle, drop_last=drop_last)[-1]
    actual = fit_classifier(3, shuffle=shuffle, drop_last=drop_last)
    assert_same_state(actual, expected)
    assert actual.step == 3 * (3 if drop_last else BATCHES)


def test_zero_epochs_return_the_initial_state():
    net, params = classifier()
    state = fit_classifier(0)
    assert_same_state(state, train.init_state(net, optim.adam(0.05), params, random.key(1)))
    assert state.history == History()


def test_fit_leaves_its_inputs_alone():
    net, params = classifier()
    params = tree.map(np.copy, params)  # writeable, so a write would go unnoticed otherwise
    x, y = (a.copy() for a in TRAIN)
    before = snapshot((params, x, y))
    train.fit(net, losses.softmax_cross_entropy(), optim.adam(0.05), params, (x, y), epochs=2,
              batch_size=3, key=random.key(1), progress=False)
    assert_bitwise_equal(before, (params, x, y), "inputs")


def _sine(batch_size, loss, learning_rate, epochs):
    d = data.sine_regression()
    net = layers.mlp([3, 1], activation="sigmoid")  # note 000's 1-3-1 net
    params, _ = net.init(random.key(0), (1,))
    return train.fit(net, loss, optim.sgd(learning_rate), params, (d.x, d.t), epochs=epochs,
                     batch_size=batch_size, key=random.key(1), progress=False)


@pytest.mark.parametrize(("batch_size", "loss", "learning_rate", "epochs"), [
    (1, losses.sum_of_squares(), 0.3, 8),  # note 000: one sample per step
    (10, losses.mse(), 0.5, 20),  # minibatches, the last one of 3 samples
    (63, losses.mse(), 0.5, 30),  # the full batch
], ids=["one", "minibatch", "full"])
def test_every_batch_size_trains(batch_size, loss, learning_rate, epochs):
    state = _sine(batch_size, loss, learning_rate, epochs)
    assert state.epoch == epochs
    assert state.step == epochs * math.ceil(63 / batch_size)
    assert len(state.history.loss) == epochs
    assert state.history.loss[-1] < 0.5 * state.history.loss[0]


def test_full_batch_xor_of_note_002_learns():
    d = data.xor()
    net = layers.mlp([4, 1], activation="tanh", output="sigmoid")
    params, _ = net.init(random.key(0), (2,))
    loss = losses.binary_cross_entropy()
    state = train.fit(net, loss, optim.sgd(0.5), params, (d.x, d.t), epochs=300, batch_size=4,
                      key=random.key(1), progress=False)
    assert state.step == 300
    assert state.history.loss[-1] < 0.1 < state.history.loss[0]
    assert train.evaluate(net, loss, state.params, d.x, d.t).accuracy == 1.0


def test_one_seed_one_run_and_other_seeds_other_runs():
    first, second = fit_classifier(3), fit_classifier(3)
    assert_same_state(second, first)
    other = fit_classifier(3, key=random.key(2))
    assert other.history.loss != first.history.loss
    for a, b in zip(tree.leaves(first.params), tree.leaves(other.params), strict=True):
        assert not np.array_equal(a, b)


# --------------------------------------------------------------------------- history


def test_epoch_loss_is_the_mean_of_the_minibatch_losses_computed_by_hand():
    net, params = classifier()
    loss = losses.softmax_cross_entropy()
    x, y = TRAIN
    state = train.fit(net, loss, optim.sgd(0.4), params, TRAIN, epochs=1, batch_size=4,
                      key=random.key(1), shuffle=False, progress=False)
    values = []
    for start in (0, 4, 8):  # the data order, batches of 4, 4 and 2
        xb, yb = x[start:start + 4], y[start:start + 4]
        pred, cache = net.forward(params, xb)
        value, loss_cache = loss.forward(pred, yb)
        _, grads = net.backward(cache, loss.backward(loss_cache))
        params = tree.map(lambda W, g: W - 0.4 * g, params, grads)
        values.append(float(value))
    assert state.history.loss == pytest.approx([sum(values) / 3], rel=1e-13, abs=0)
    for (path, W), V in zip(tree.flatten_with_paths(params), tree.leaves(state.params),
                            strict=True):
        np.testing.assert_allclose(V, W, rtol=1e-13, atol=0, err_msg=tree.path_str(path))
    assert state.step == 3


def test_fit_never_hands_an_epoch_the_history_before_it(monkeypatch):
    # so a run costs O(epochs): no epoch copies the ever longer tuples of the ones before
    # it (150 000 one-step epochs once spent minutes on that); the result is the same
    seen = []
    original = train.epoch_runner

    def spy(config):
        run = original(config)

        def watched(state):
            seen.append(tuple(map(len, state.history)))
            return run(state)
        return watched

    monkeypatch.setattr(train, "epoch_runner", spy)
    final = fit_classifier(5)
    assert seen == [(0,) * len(History._fields)] * 5
    assert_same_state(final, explicit_loop(5)[-1])


def test_validation_history_is_the_evaluation_after_each_epoch():
    seen = []
    state = fit_classifier(4, observers=[lambda s, _: seen.append(s)])
    net, _ = classifier()
    loss = losses.softmax_cross_entropy()
    assert len(state.history.val_loss) == len(state.history.val_accuracy) == 4
    for epoch, after in enumerate(seen):
        loss_value, accuracy = train.evaluate(net, loss, after.params, *VALID)
        assert state.history.val_loss[epoch] == loss_value
        assert state.history.val_accuracy[epoch] == accuracy
    assert all(a in {k / 6 for k in range(7)} for a in state.history.val_accuracy)


def test_regression_validation_has_losses_and_no_accuracy():
    d = data.sine_regression()
    net = layers.mlp([3, 1], activation="sigmoid")
    params, _ = net.init(random.key(0), (1,))
    state = train.fit(net, losses.mse(), optim.sgd(0.5), params, (d.x, d.t), epochs=3,
                      batch_size=21, key=random.key(1), progress=False,
                      validation=(d.x[::2], d.t[::2]))
    assert len(state.history.val_loss) == 3 and state.history.val_accuracy == ()
    pred = net.forward(state.params, d.x[::2])[0]
    assert state.history.val_loss[-1] == pytest.approx(
        float(np.sum((pred - d.t[::2]) ** 2) / len(pred)), rel=1e-13)


def test_without_validation_or_snapshots_only_losses_are_kept():
    state = fit_classifier(2, validation=None, snapshot=None)
    assert len(state.history.loss) == len(state.history.accuracy) == 2
    assert state.history._replace(loss=(), accuracy=()) == History()


@pytest.mark.parametrize(("epochs", "interval", "expected"), [
    (7, 3, (0, 3, 6)), (6, 3, (0, 3)), (3, 1, (0, 1, 2)), (2, 5, (0,)),
])
def test_snapshots_are_the_predictions_every_interval_epochs(epochs, interval, expected):
    states = explicit_loop(epochs)
    state = fit_classifier(epochs, snapshot=(PROBE, interval))
    assert state.history.snapshot_epochs == expected
    assert len(state.history.snapshots) == len(expected)
    net, _ = classifier()
    for epoch, pred in zip(expected, state.history.snapshots, strict=True):
        # snapshot of epoch e: the predictions after that epoch's training, i.e. states[e + 1]
        want = train.predict(net, states[epoch + 1].params, PROBE,
                             loss=losses.softmax_cross_entropy())
        assert pred.shape == (len(PROBE), 2)
        assert_bitwise_equal(want, pred, f"snapshot of epoch {epoch}")
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, rtol=1e-12)  # probabilities


def _accuracies_by_hand(net, loss, params, data, epochs, *, learning_rate, threshold):
    """Each epoch's mean over its steps of ``train.accuracy`` on the predictions that step's
    forward pass made, before its update: plain SGD by hand, batches of 3 in the order fit
    draws with key 1."""
    key, means = random.key(1), []
    for _ in range(epochs):
        key, order_key, _ = train.epoch_keys(key)
        right = []
        for xb, yb in train.minibatches(order_key, *data, 3):
            pred, cache = net.forward(params, xb)
            right.append(train.accuracy(pred, yb, threshold=threshold))
            value, loss_cache = loss.forward(pred, yb)
            _, grads = net.backward(cache, loss.backward(loss_cache))
            params = tree.map(lambda W, g: W - learning_rate * g, params, grads)
        means.append(float(np.mean(right)))
    return means


@pytest.mark.parametrize("loss, outputs, threshold", [
    (losses.softmax_cross_entropy(), 2, 0.5),  # argmax against integer labels
    (losses.sigmoid_binary_cross_entropy(), 1, 0.0),  # one logit: 0 is the threshold
], ids=["softmax", "sigmoid-logits"])
def test_training_accuracy_is_each_steps_accuracy_on_its_own_predictions(loss, outputs,
                                                                         threshold):
    net = layers.mlp([8, outputs], activation="tanh")
    params, _ = net.init(random.key(0), (2,))
    x, labels = TRAIN
    xy = (x, labels if outputs == 2 else labels[:, None].astype(np.float64))
    state = train.fit(net, loss, optim.sgd(1.5), params, xy, epochs=4, batch_size=3,
                      key=random.key(1), progress=False)
    expected = _accuracies_by_hand(net, loss, params, xy, 4, learning_rate=1.5,
                                   threshold=threshold)
    assert state.history.accuracy == tuple(expected)
    assert len(set(expected)) > 1  # it moves as the net learns


def test_regression_records_no_training_accuracy():
    state = _sine(10, losses.mse(), 0.5, 2)
    assert state.history.accuracy == () and len(state.history.loss) == 2


def test_train_step_measures_accuracy_on_its_own_forward_pass():
    net, params = classifier()
    loss, opt = losses.softmax_cross_entropy(), optim.sgd(0.1)
    x, y = TRAIN
    result = train.train_step(net, loss, opt, params, opt.init(params), x, y)
    assert result.accuracy == train.accuracy(net.forward(params, x)[0], y)
    assert 0 < result.accuracy < 1
    d = data.sine_regression()
    net = layers.mlp([3, 1])
    params, _ = net.init(random.key(0), (1,))
    assert train.train_step(net, losses.mse(), opt, params, opt.init(params), d.x,
                            d.t).accuracy is None


# --------------------------------------------------------------------------- observers


def test_observers_see_each_epoch_once_in_order():
    calls = []

    def watcher(name):
        def observe(state, metrics):
            calls.append((name, metrics["epoch"], state.epoch, snapshot(state), dict(metrics)))
        return observe

    final = fit_classifier(3, observers=[watcher("a"), watcher("b")])
    assert [(name, epoch) for name, epoch, *_ in calls] == [
        ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    states = explicit_loop(3)
    for name, epoch, state_epoch, seen, metrics in calls:
        assert state_epoch == epoch
        assert_same_state(seen, states[epoch], f"observer {name} at epoch {epoch}")
        history = states[epoch].history
        assert metrics == {"epoch": epoch, "loss": history.loss[-1],
                           "accuracy": history.accuracy[-1],
                           "val_loss": history.val_loss[-1],
                           "val_accuracy": history.val_accuracy[-1]}
    assert_same_state(final, states[-1])


def test_observers_cannot_change_the_run():
    refused, metrics_seen = [], []

    def vandal(state, metrics):
        targets = [*tree.leaves(state.params), *tree.leaves(state.opt_state), state.key,
                   *state.history.snapshots]
        for leaf in targets:
            try:
                leaf[...] = 0
            except ValueError as e:
                refused.append(str(e))
        metrics.clear()  # its own copy
        return state._replace(params=None, epoch=99)  # ignored

    def reader(state, metrics):
        metrics_seen.append(sorted(metrics))
        return "stop"  # ignored as well

    watched = fit_classifier(4, observers=[vandal, reader])
    plain = fit_classifier(4)
    assert_same_state(watched, plain)
    # per epoch: 4 param leaves, count + 8 adam moments, the key; then 1, 1, 2, 2 snapshots
    assert len(refused) == 4 * (4 + 9 + 1) + 6
    assert all("read-only" in message for message in refused)
    assert metrics_seen == [["accuracy", "epoch", "loss", "val_accuracy", "val_loss"]] * 4


def test_an_observer_that_raises_stops_the_run():
    def fail(state, metrics):
        if state.epoch == 2:
            raise RuntimeError("seen enough")

    with pytest.raises(RuntimeError, match="seen enough"):
        fit_classifier(4, observers=[fail])


def test_an_observer_that_raises_stop_iteration_ends_fit_with_it_unchanged():
    # documented: an observer's exception ends fit as it is, StopIteration too (not read as
    # "stop here and return"); stop_when is the way to stop early and keep the run
    seen = []

    def enough(state, metrics):
        seen.append(state.epoch)
        if state.epoch == 2:
            raise StopIteration("enough")

    with pytest.raises(StopIteration, match="enough"):
        fit_classifier(5, observers=[enough])
    assert seen == [1, 2]


# --------------------------------------------------------------------------- early stopping


def test_stop_when_ends_the_run_and_returns_the_state_so_far(tmp_path, bars):
    asked, observed = [], []

    def stop_when(state, metrics):
        asked.append((snapshot(state), dict(metrics)))
        return state.epoch == 3

    final = fit_classifier(10, stop_when=stop_when, progress=True, checkpoint_dir=tmp_path,
                           checkpoint_every=5, observers=[lambda s, m: observed.append(m)])
    states = explicit_loop(3)
    assert_same_state(final, states[3])
    assert len(asked) == 3  # after each epoch, and no epoch after the one it stopped at
    for epoch, (state, metrics) in enumerate(asked, 1):
        assert_same_state(state, states[epoch], f"stop_when's state at epoch {epoch}")
        assert metrics == observed[epoch - 1]  # what the observers saw
    # the stopped state is saved as the last one is, and the bar is closed
    assert checkpoint_epochs(tmp_path) == [3]
    assert_same_state(io.load_tree(io.list_checkpoints(tmp_path)[-1][1], like=final), final)
    (bar,) = bars
    assert bar.updates == 3 and bar.closed


def test_stop_when_with_patience_stops_once_validation_stops_improving():
    def no_better_in(epochs):
        def stop_when(state, metrics):
            val_loss = state.history.val_loss
            return len(val_loss) > epochs and min(val_loss) < min(val_loss[-epochs:])
        return stop_when

    full = fit_classifier(20)
    stopped = fit_classifier(20, stop_when=no_better_in(3))
    val_loss = full.history.val_loss
    first = next(e for e in range(4, 21) if min(val_loss[:e]) < min(val_loss[e - 3:e]))
    assert stopped.epoch == first < 20
    assert_same_state(stopped, explicit_loop(first)[-1])


def test_stop_when_false_throughout_changes_nothing():
    assert_same_state(fit_classifier(3, stop_when=lambda state, metrics: np.False_),
                      fit_classifier(3))


@pytest.mark.parametrize("stop_when, match", [
    ("epoch > 3", r"fit: stop_when must be a function \(state, metrics\) -> bool or None, "
                  r"got a str"),
    (lambda state, metrics: None, r"fit: stop_when must return True or False, got None "
                                  r"after epoch 1"),
    (lambda state, metrics: 1, r"fit: stop_when must return True or False, got .*int.* "
                               r"after epoch 1"),
])
def test_stop_when_is_a_function_that_says_true_or_false(stop_when, match):
    with pytest.raises(ArgumentError, match=match):
        fit_classifier(3, stop_when=stop_when)


# --------------------------------------------------------------------------- progress


class FakeBar:
    """Stands in for tqdm: records what fit asks of the bar."""

    def __init__(self, made, **kwargs):
        self.kwargs, self.updates, self.postfixes, self.closed = kwargs, 0, [], False
        made.append(self)

    def update(self, n):
        self.updates += n

    def set_postfix(self, values):
        self.postfixes.append(values)

    def close(self):
        self.closed = True


class Terminal:
    """A stderr that says it is a terminal."""

    def isatty(self):
        return True

    def write(self, text):
        return len(text)

    def flush(self):
        pass


@pytest.fixture
def bars(monkeypatch):
    auto = pytest.importorskip("tqdm.auto")
    made = []
    monkeypatch.setattr(auto, "tqdm", lambda **kwargs: FakeBar(made, **kwargs))
    return made


@pytest.mark.parametrize(("progress", "terminal", "ci", "shown"), [
    (False, True, None, False),
    (None, True, None, True),  # default: on at a terminal
    (None, False, None, False),  # default: off when stderr is not a terminal
    (None, True, "true", False),  # default: off under CI
    (True, False, "true", True),  # asked for explicitly
])
def test_progress_bar_switch(bars, monkeypatch, progress, terminal, ci, shown):
    if terminal:
        monkeypatch.setattr(sys, "stderr", Terminal())
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    state = fit_classifier(3, progress=progress)
    assert len(bars) == int(shown)
    if shown:
        (bar,) = bars
        assert bar.kwargs["total"] == 3 and bar.kwargs["initial"] == 0
        assert bar.updates == 3 and bar.closed
        assert [set(p) for p in bar.postfixes] == [
            {"loss", "accuracy", "val_loss", "val_accuracy"}] * 3
    assert_same_state(state, fit_classifier(3))


def test_progress_bar_is_closed_when_training_fails(bars):
    def fail(state, metrics):
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        fit_classifier(3, progress=True, observers=[fail])
    assert len(bars) == 1 and bars[0].closed


def test_real_tqdm_progress_bar_works(capsys):
    pytest.importorskip("tqdm")
    state = fit_classifier(3, progress=True)
    assert_same_state(state, fit_classifier(3))
    assert "epoch" in capsys.readouterr().err


def test_progress_without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `from tqdm.auto import ...` fails
    with pytest.raises(ImportError, match=r"fit\(progress=True\) needs tqdm"):
        fit_classifier(1, progress=True)
    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.delenv("CI", raising=False)
    assert fit_classifier(1, progress=None).epoch == 1  # the default quietly goes without


# --------------------------------------------------------------------------- evaluate, predict


def test_accuracy_by_hand():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert train.accuracy(probs, np.array([1, 1, 1])) == pytest.approx(2 / 3)
    assert train.accuracy(probs, np.array([[0, 1], [1, 0], [1, 0]])) == pytest.approx(2 / 3)
    one = np.array([[0.6], [0.4], [0.2]])
    assert train.accuracy(one, np.array([[1], [1], [0]])) == pytest.approx(2 / 3)
    assert train.accuracy(one, np.array([[1], [1], [0]]), threshold=0.3) == 1.0


def _labelled_net():
    net, params = classifier()
    x, y = TRAIN
    logits = net.forward(params, x)[0]
    return net, params, x, y, logits


def test_evaluate_softmax_cross_entropy_with_labels_and_one_hot():
    net, params, x, y, logits = _labelled_net()
    loss = losses.softmax_cross_entropy()
    result = train.evaluate(net, loss, params, x, y)
    assert type(result) is train.Evaluation
    assert result.loss == float(loss.forward(logits, y)[0])
    assert result.accuracy == np.mean(logits.argmax(axis=1) == y)
    assert 0 < result.accuracy < 1  # neither trivially right nor wrong, so the count matters
    one_hot = train.evaluate(net, loss, params, x, data.one_hot(y, 2))
    assert one_hot.accuracy == result.accuracy
    assert one_hot.loss == pytest.approx(result.loss, rel=1e-15)


def test_evaluate_sigmoid_bce_thresholds_logits_at_zero():
    net = layers.dense(1)
    params = {"W": np.array([[1.0]]), "b": np.array([0.0])}
    x = np.array([[0.3], [-0.2], [0.1], [-1.0], [2.0]])  # the logits themselves
    t = np.array([[1.0], [0.0], [1.0], [0.0], [0.0]])
    loss_value, accuracy = train.evaluate(net, losses.sigmoid_binary_cross_entropy(), params,
                                          x, t)
    assert accuracy == 0.8  # at threshold 0.5 the logits 0.3 and 0.1 would count as wrong
    z, expected = x.ravel(), 0.0
    for zi, ti in zip(z, t.ravel(), strict=True):  # -(t log s(z) + (1 - t) log(1 - s(z)))
        s = 1 / (1 + math.exp(-zi))
        expected -= ti * math.log(s) + (1 - ti) * math.log(1 - s)
    assert loss_value == pytest.approx(expected / 5, rel=1e-13)


def test_evaluate_probabilities_threshold_at_one_half():
    net = layers.serial(layers.dense(1), layers.sigmoid())
    params = ({"W": np.array([[1.0]]), "b": np.array([0.0])}, ())
    x = np.array([[0.3], [-0.2], [-1.0]])
    t = np.array([[1.0], [1.0], [0.0]])
    _, accuracy = train.evaluate(net, losses.binary_cross_entropy(), params, x, t)
    assert accuracy == pytest.approx(2 / 3)


def test_evaluate_regression_has_no_accuracy():
    d = data.sine_regression()
    net = layers.mlp([3, 1], activation="sigmoid")
    params, _ = net.init(random.key(0), (1,))
    pred = net.forward(params, d.x)[0]
    result = train.evaluate(net, losses.sum_of_squares(), params, d.x, d.t)
    assert result.accuracy is None
    assert result.loss == pytest.approx(0.5 * float(np.sum((pred - d.t) ** 2)), rel=1e-13)


def test_evaluate_rejects_mismatched_data():
    net, params, x, y, _ = _labelled_net()
    with pytest.raises(ShapeError, match=r"evaluate: x has 10 samples but y has 9"):
        train.evaluate(net, losses.softmax_cross_entropy(), params, x, y[:9])


def test_predict_gives_probabilities_for_fused_losses_and_raw_outputs_otherwise():
    net, params, x, _, logits = _labelled_net()
    probs = train.predict(net, params, x, loss=losses.softmax_cross_entropy())
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-14)
    assert ((probs > 0) & (probs < 1)).all()
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(probs, e / e.sum(axis=1, keepdims=True), rtol=1e-14)
    assert_bitwise_equal(logits, train.predict(net, params, x), "raw logits")
    assert_bitwise_equal(logits, train.predict(net, params, x, loss=losses.mse()), "mse")

    d = data.xor()
    one = layers.mlp([3, 1], activation="tanh")
    one_params, _ = one.init(random.key(2), (2,))
    z = one.forward(one_params, d.x)[0]
    p = train.predict(one, one_params, d.x, loss=losses.sigmoid_binary_cross_entropy())
    assert p.shape == (4, 1) and ((p > 0) & (p < 1)).all()
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-z)), rtol=1e-14)


def test_what_a_loss_is_comes_from_its_marks_not_its_name():
    # predict and evaluate once matched the function's name: a loss of one's own named
    # like a fused one was taken for it, and a wrapped fused loss was not
    net, params, x, y, logits = _labelled_net()
    fused = losses.softmax_cross_entropy()

    def softmax_cross_entropy_mine(pred, target):  # not fused: pred are probabilities
        return losses.cross_entropy().forward(pred, target)

    look_alike = losses.Loss(softmax_cross_entropy_mine, fused.backward)
    assert_bitwise_equal(logits, train.predict(net, params, x, loss=look_alike), "look-alike")

    def wrapped(pred, target):
        return fused.forward(pred, target)

    marked = losses.Loss(wrapped, fused.backward, on_logits="softmax", classification=True)
    assert_bitwise_equal(train.predict(net, params, x, loss=fused),
                         train.predict(net, params, x, loss=marked), "a marked wrapper")
    one_hot = data.one_hot(y, 2).astype(np.float64)  # float targets: only the mark tells
    expected = train.evaluate(net, fused, params, x, y).accuracy
    assert expected is not None
    assert train.evaluate(net, marked, params, x, one_hot).accuracy == expected
    unmarked = losses.Loss(lambda pred, target: fused.forward(pred, target), fused.backward)
    assert train.evaluate(net, unmarked, params, x, one_hot).accuracy is None


@pytest.mark.parametrize("batch_size", [1, 3, 10, 64])
def test_predict_in_batches_equals_predict_at_once(batch_size):
    net, params, x, _, _ = _labelled_net()
    for loss in (None, losses.softmax_cross_entropy()):
        whole = train.predict(net, params, x, loss=loss)
        parts = train.predict(net, params, x, loss=loss, batch_size=batch_size)
        assert parts.shape == whole.shape and parts.dtype == whole.dtype
        np.testing.assert_allclose(parts, whole, rtol=1e-14, atol=0)


def test_predict_rejects_bad_input():
    net, params, x, _, _ = _labelled_net()
    with pytest.raises(ArrayTypeError, match=r"predict: expected x to be an array, got a list"):
        train.predict(net, params, x.tolist())
    with pytest.raises(ArgumentError, match=r"predict: batch_size must be a positive integer"):
        train.predict(net, params, x, batch_size=0)


# --------------------------------------------------------------------------- non-finite


def test_data_with_inf_or_nan_names_the_row():
    x, y = (a.copy() for a in TRAIN)
    x[6, 1] = np.inf
    net, params = classifier()
    with pytest.raises(NonFiniteError, match=r"fit: x holds NaN or inf at row 6"):
        train.fit(net, losses.softmax_cross_entropy(), optim.sgd(0.1), params, (x, y),
                  epochs=1, batch_size=3, key=random.key(1), progress=False)
    d = data.sine_regression()
    t = d.t.copy()
    t[4, 0] = np.nan
    net = layers.mlp([3, 1], activation="sigmoid")
    params, _ = net.init(random.key(0), (1,))
    with pytest.raises(NonFiniteError, match=r"fit: y holds NaN or inf at row 4"):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (d.x, t), epochs=1, batch_size=5,
                  key=random.key(1), progress=False)


def _xor_fit(optimizer, *, loss=None, params=None, epochs=50, batch_size=1, shuffle=True):
    d = data.xor()
    net = layers.mlp([4, 1], activation="tanh")
    if params is None:
        params, _ = net.init(random.key(0), (2,))
    return train.fit(net, loss or losses.mse(), optimizer, params, (d.x, d.t), epochs=epochs,
                     batch_size=batch_size, key=random.key(1), shuffle=shuffle, progress=False)


def test_a_diverging_run_stops_naming_epoch_step_and_the_parameter():
    # numpy overflows on the way there; the test wants funcnet's error, not numpy's
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(NonFiniteError) as slow:
            _xor_fit(optim.sgd(1e6))
        with pytest.raises(NonFiniteError,
                           match=r"non-finite loss \(nan\) at epoch 0, step 1 \(batch 1 of the "
                                 r"epoch\): params\[\d\]\['[Wb]'\] already holds NaN or inf"):
            _xor_fit(optim.sgd(1e308))  # one step overflows the weights
    found = re.search(r"at epoch (\d+), step (\d+) \(batch (\d+) of the epoch\)",
                      str(slow.value))
    assert found, str(slow.value)
    epoch, step, batch = map(int, found.groups())
    assert epoch > 0 and step == 4 * epoch + batch  # 4 steps per epoch at batch size 1
    assert "non-finite loss (inf)" in str(slow.value)


def test_a_parameter_holding_inf_is_named_by_its_path():
    net = layers.mlp([4, 1], activation="tanh")
    params, _ = net.init(random.key(0), (2,))
    params = (params[0], (), {"W": params[2]["W"], "b": np.array([np.inf])})
    with np.errstate(invalid="ignore"):
        with pytest.raises(NonFiniteError, match=r"train_step: non-finite loss \(\w+\) at epoch "
                                                 r"0, step 0 .*params\[2\]\['b'\] already holds"):
            _xor_fit(optim.sgd(0.1), params=params)


def test_a_nan_loss_by_design_names_epoch_and_step():
    mse = losses.mse()

    def forward(pred, target):  # NaN on the second batch in data order, targets (1, 0)
        value, cache = mse.forward(pred, target)
        return (value * np.nan if target[0, 0] == 1 else value), cache

    with pytest.raises(NonFiniteError,
                       match=r"non-finite loss \(nan\) at epoch 0, step 1 \(batch 1 of the "
                             r"epoch\) with finite params: check the data and the loss"):
        _xor_fit(optim.sgd(0.1), loss=Loss(forward, mse.backward), batch_size=2, shuffle=False)


def test_a_nan_gradient_by_design_names_the_first_parameter_path():
    mse = losses.mse()
    nan_loss = Loss(mse.forward, lambda cache: mse.backward(cache) * np.nan)
    with pytest.raises(NonFiniteError,
                       match=r"non-finite gradient at epoch 0, step 0 \(batch 0 of the epoch\), "
                             r"at params\[0\]\['W'\]; lower the learning rate"):
        _xor_fit(optim.sgd(0.1), loss=nan_loss)


@pytest.mark.parametrize("where", ["my step 7", ("phase", 2, "b")])
def test_train_step_names_the_callers_where_as_given(where):
    """Any ``where`` a caller passes comes back as its text, a tuple included (run_epoch's
    own (epoch, step, batch) triples are worded by it alone)."""
    mse = losses.mse()
    nan_loss = Loss(mse.forward, lambda cache: mse.backward(cache) * np.nan)
    net = layers.dense(1)
    params, _ = net.init(random.key(0), (2,))
    opt = optim.sgd(0.1)
    with pytest.raises(NonFiniteError, match=rf"non-finite gradient at {re.escape(str(where))}, "
                                             r"at params\['W'\]"):
        train.train_step(net, nan_loss, opt, params, opt.init(params), np.ones((3, 2)),
                         np.ones((3, 1)), where=where)


def test_large_finite_gradients_do_not_stop_training():
    net = layers.dense(100, dtype=np.float32)
    params, _ = net.init(random.key(0), (2,))
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 100), np.float32)
    loud = Loss(lambda pred, t: (pred.mean(), pred.shape),
                lambda shape: np.full(shape, 1e36, np.float32))  # dW = 4e36 each: sum overflows
    opt = optim.sgd(0.0)
    result = train.train_step(net, loud, opt, params, opt.init(params), x, y)
    assert tree.all_finite(result.grads)
    assert float(np.abs(result.grads["W"]).max()) == pytest.approx(4e36, rel=1e-6)


# --------------------------------------------------------------------------- float32


def test_float32_training_stays_float32():
    d = data.xor(dtype=np.float32)
    net = layers.mlp([4, 1], activation="tanh", dtype=np.float32)
    params, _ = net.init(random.key(0), (2,))
    loss = losses.sigmoid_binary_cross_entropy()
    state = train.fit(net, loss, optim.adam(0.05), params, (d.x, d.t), epochs=20, batch_size=2,
                      key=random.key(1), progress=False, validation=(d.x, d.t),
                      snapshot=(d.x, 5))
    for leaf in tree.leaves(state.params):
        assert leaf.dtype == np.float32
    assert state.opt_state.count.dtype == np.int64
    for leaf in tree.leaves((state.opt_state.mu, state.opt_state.nu)):
        assert leaf.dtype == np.float32
    assert all(p.dtype == np.float32 for p in state.history.snapshots)
    assert train.predict(net, state.params, d.x).dtype == np.float32
    assert train.predict(net, state.params, d.x, loss=loss).dtype == np.float32
    assert all(math.isfinite(v) for v in state.history.loss + state.history.val_loss)
    assert state.history.loss[-1] < state.history.loss[0]


# --------------------------------------------------------------------------- checkpoints


def test_checkpoints_every_k_epochs_and_at_the_end(tmp_path):
    final = fit_classifier(5, checkpoint_dir=tmp_path, checkpoint_every=2)
    assert sorted(os.listdir(tmp_path)) == [f"ckpt-{e:08d}.npz" for e in (2, 4, 5)]  # no temps
    states = explicit_loop(5)
    for epoch, path in io.list_checkpoints(tmp_path):
        assert_same_state(io.load_tree(path, like=states[epoch]), states[epoch],
                          f"checkpoint {epoch}")
    assert_same_state(final, states[5])


def test_keep_checkpoints_prunes_the_oldest(tmp_path):
    fit_classifier(5, checkpoint_dir=tmp_path, checkpoint_every=1, keep_checkpoints=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000004.npz", "ckpt-00000005.npz"]


def test_a_failed_checkpoint_write_leaves_only_complete_checkpoints(tmp_path, monkeypatch):
    replace, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(CheckpointError, match=r"save_checkpoint: cannot write .*ckpt-00000004"
                                              r"\.npz: .*No space left"):
        fit_classifier(6, checkpoint_dir=tmp_path, checkpoint_every=2)
    monkeypatch.setattr(os, "replace", replace)
    assert os.listdir(tmp_path) == ["ckpt-00000002.npz"]  # and no temporary file
    resumed = fit_classifier(6, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True)
    assert_same_state(resumed, fit_classifier(6))


def test_a_crash_inside_the_rename_never_leaves_half_a_checkpoint(tmp_path):
    script = f"""
        import os
        import test_train
        replace, calls = os.replace, []

        def dying(src, dst):
            calls.append(dst)
            if len(calls) == 3:
                os._exit({KILLED})  # the process dies with the third checkpoint half-done
            return replace(src, dst)

        os.replace = dying
        test_train.fit_classifier(6, checkpoint_dir={str(tmp_path)!r}, checkpoint_every=1)
    """
    done = run_python(script, REPO / "tests")
    assert done.returncode == KILLED, done.stderr
    assert checkpoint_epochs(tmp_path) == [1, 2]  # the temporary file is not a checkpoint
    states = explicit_loop(6)
    for epoch, path in io.list_checkpoints(tmp_path):
        assert_same_state(io.load_tree(path, like=states[epoch]), states[epoch])
    resumed = fit_classifier(6, checkpoint_dir=tmp_path, checkpoint_every=1, resume=True)
    assert_same_state(resumed, states[6])
    assert checkpoint_epochs(tmp_path) == [1, 2, 3, 4, 5, 6]


def _interrupt_after(epoch):
    def observer(state, metrics):
        if metrics["epoch"] == epoch:
            raise KeyboardInterrupt
    return observer


@pytest.mark.parametrize(("checkpoint_every", "saved"), [(None, [3]), (2, [2, 3]), (3, [3])])
def test_ctrl_c_keeps_the_epochs_done_and_resume_goes_on_bitwise(tmp_path, checkpoint_every,
                                                                  saved):
    # Ctrl-C after epoch 3 (an observer raises it there, before epoch 3's own save):
    # the epochs done are saved on the way out, whatever checkpoint_every says
    options = dict(checkpoint_dir=tmp_path, checkpoint_every=checkpoint_every)
    with pytest.raises(KeyboardInterrupt) as stopped:
        fit_classifier(6, observers=[_interrupt_after(3)], **options)
    assert checkpoint_epochs(tmp_path) == saved
    assert re.search(r"fit: the state after epoch 3 was saved to .*ckpt-00000003\.npz; "
                     r"resume=True goes on from it", "\n".join(stopped.value.__notes__))
    after_3 = explicit_loop(3)[-1]
    assert_same_state(io.load_tree(io.list_checkpoints(tmp_path)[-1][1], like=after_3), after_3)
    resumed = fit_classifier(6, resume=True, **options)
    assert_same_state(resumed, fit_classifier(6))


def test_an_interrupt_before_any_new_epoch_is_done_saves_nothing(tmp_path):
    sce = losses.softmax_cross_entropy()

    def interrupted(pred, target):
        raise KeyboardInterrupt

    stopping = Loss(interrupted, sce.backward, classification=True)
    with pytest.raises(KeyboardInterrupt) as stopped:  # in the first epoch
        fit_classifier(6, loss=stopping, checkpoint_dir=tmp_path)
    assert checkpoint_epochs(tmp_path) == [] and not hasattr(stopped.value, "__notes__")
    fit_classifier(2, checkpoint_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt) as stopped:  # in the first epoch after resuming
        fit_classifier(6, loss=stopping, checkpoint_dir=tmp_path, resume=True)
    assert checkpoint_epochs(tmp_path) == [2] and not hasattr(stopped.value, "__notes__")


def test_a_diverging_run_saves_its_last_finite_epoch(tmp_path):
    d = data.xor()
    net = layers.mlp([4, 1], activation="tanh")
    params, _ = net.init(random.key(0), (2,))
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(NonFiniteError) as failed:
        train.fit(net, losses.mse(), optim.sgd(1e6), params, (d.x, d.t), epochs=50,
                  batch_size=1, key=random.key(1), progress=False, checkpoint_dir=tmp_path)
    last = failed.value.state
    assert last.epoch > 0 and checkpoint_epochs(tmp_path) == [last.epoch]
    assert_same_state(io.load_tree(io.list_checkpoints(tmp_path)[0][1], like=last), last)
    assert f"the state after epoch {last.epoch} was saved" in failed.value.__notes__[0]


def test_a_new_run_into_a_directory_of_checkpoints_is_refused(tmp_path):
    # else its checkpoints mix with the earlier run's, and a later resume=True takes the
    # newest epoch, whichever run wrote it
    fit_classifier(4, checkpoint_dir=tmp_path, checkpoint_every=2)
    with pytest.raises(ArgumentError, match=r"fit: checkpoint_dir '.*' holds the checkpoints of "
                                            r"an earlier run \(epochs 2, 4\); pass resume=True"):
        fit_classifier(3, hidden=4, checkpoint_dir=tmp_path)
    assert checkpoint_epochs(tmp_path) == [2, 4]
    assert_same_state(fit_classifier(4, checkpoint_dir=tmp_path, resume=True), fit_classifier(4))


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize("stopped_after", [1, 2, 3, 5, 6])
def test_a_stopped_run_resumes_bitwise(tmp_path, stopped_after):
    options = dict(checkpoint_dir=tmp_path, checkpoint_every=2)
    first = fit_classifier(stopped_after, **options)
    assert checkpoint_epochs(tmp_path)[-1] == stopped_after
    resumed = fit_classifier(6, resume=True, **options)
    uninterrupted = fit_classifier(6)
    assert_same_state(resumed, uninterrupted)
    assert_same_state(first, explicit_loop(stopped_after)[-1])
    assert resumed.history.snapshot_epochs == (0, 2, 4)
    assert len(resumed.history.val_loss) == len(resumed.history.loss) == 6


@pytest.mark.parametrize("optimizer", [optim.sgd(0.2), optim.nesterov(0.1), optim.rmsprop(0.01),
                                       optim.adam(0.05, weight_decay=0.01, decoupled=True)],
                         ids=["sgd", "nesterov", "rmsprop", "adamw"])
def test_every_optimizer_state_resumes_bitwise(tmp_path, optimizer):
    fit_classifier(3, optimizer=optimizer, checkpoint_dir=tmp_path, checkpoint_every=3)
    resumed = fit_classifier(5, optimizer=optimizer, checkpoint_dir=tmp_path,
                             checkpoint_every=3, resume=True)
    assert_same_state(resumed, fit_classifier(5, optimizer=optimizer))


def test_a_run_killed_mid_epoch_resumes_bitwise(tmp_path):
    # 5 loss calls an epoch (4 steps, then validation): call 13 is the third step of the third
    # epoch, so two steps of that epoch are done and lost, and the checkpoint of epoch 2 stays
    script = f"""
        import test_train
        from funcnet import losses
        loss = test_train.killing(losses.softmax_cross_entropy(), after_calls=12)
        test_train.fit_classifier(6, loss=loss, checkpoint_dir={str(tmp_path)!r},
                                  checkpoint_every=2,
                                  observers=[lambda s, _: print(s.epoch, s.step, flush=True)])
        raise SystemExit("not killed")
    """
    done = run_python(script, REPO / "tests")
    assert done.returncode == KILLED, done.stderr
    assert done.stdout.splitlines() == ["1 4", "2 8"]  # it died inside the third epoch
    assert checkpoint_epochs(tmp_path) == [2]
    resumed = fit_classifier(6, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True)
    assert_same_state(resumed, fit_classifier(6))


def test_resume_with_progress_starts_the_bar_at_the_checkpoint(tmp_path, bars):
    fit_classifier(2, checkpoint_dir=tmp_path, checkpoint_every=2)
    fit_classifier(5, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True, progress=True)
    (bar,) = bars
    assert (bar.kwargs["total"], bar.kwargs["initial"], bar.updates) == (5, 2, 3)


def test_a_checkpoint_whose_history_has_other_fields_is_refused(tmp_path):
    # a checkpoint written before History gained accuracy: its val_loss must not be read
    # as the training accuracy, nor the runs' epochs go out of step
    from collections import namedtuple

    state = fit_classifier(2)
    older = namedtuple("History", [f for f in History._fields if f != "accuracy"])
    io.save_checkpoint(tmp_path, state._replace(history=older(*(
        getattr(state.history, f) for f in older._fields))), state.epoch)
    with pytest.raises(CheckpointError, match=r"expected a history with the fields "
                       r"\['loss', 'accuracy', .*\], got \['loss', 'val_loss', "):
        fit_classifier(4, checkpoint_dir=tmp_path, resume=True)


def test_resume_without_checkpoints_starts_from_scratch(tmp_path):
    directory = tmp_path / "new"
    resumed = fit_classifier(3, checkpoint_dir=directory, checkpoint_every=3, resume=True)
    assert_same_state(resumed, fit_classifier(3))
    assert checkpoint_epochs(directory) == [3]


def test_resume_of_a_finished_run_returns_it(tmp_path):
    done = fit_classifier(4, checkpoint_dir=tmp_path, checkpoint_every=2)
    again = fit_classifier(4, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True)
    assert_same_state(again, done)


def test_a_corrupt_newest_checkpoint_is_reported_and_the_previous_one_used(tmp_path):
    fit_classifier(4, checkpoint_dir=tmp_path, checkpoint_every=1)
    newest = tmp_path / "ckpt-00000004.npz"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    with pytest.warns(CheckpointWarning, match=r"skipped .*ckpt-00000004\.npz: .*truncated.*"
                                               r"loaded .*ckpt-00000003\.npz instead"):
        resumed = fit_classifier(6, checkpoint_dir=tmp_path, checkpoint_every=1, resume=True)
    uninterrupted = explicit_loop(6)
    assert_same_state(resumed, uninterrupted[6])
    rewritten = io.load_tree(newest, like=uninterrupted[4])  # whole again, by the resumed run
    assert_same_state(rewritten, uninterrupted[4])


def test_a_checkpoint_of_another_architecture_is_refused(tmp_path):
    fit_classifier(2, hidden=4, checkpoint_dir=tmp_path, checkpoint_every=2)
    with pytest.raises(CheckpointError, match=r"fit\(resume=True\): .*ckpt-00000002\.npz: "
                                              r"the checkpoint at params\[0\]\['W'\] has shape "
                                              r"\(2, 4\), expected \(2, 8\) \(a checkpoint of "
                                              r"another model\?\)"):
        fit_classifier(4, hidden=8, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True)


def test_a_checkpoint_of_another_optimizer_or_dtype_is_refused(tmp_path):
    fit_classifier(2, optimizer=optim.sgd(0.1), checkpoint_dir=tmp_path, checkpoint_every=2)
    with pytest.raises(CheckpointError, match=r"fit\(resume=True\): .*opt_state.*another model"):
        fit_classifier(4, checkpoint_dir=tmp_path, checkpoint_every=2, resume=True)
    net, params = classifier(dtype=np.float32)
    with pytest.raises(CheckpointError, match=r"params\[0\]\['W'\] has dtype float64, "
                                              r"expected float32"):
        train.fit(net, losses.softmax_cross_entropy(), optim.sgd(0.1), params,
                  (TRAIN[0].astype(np.float32), TRAIN[1]), epochs=4, batch_size=3,
                  key=random.key(1), progress=False, checkpoint_dir=tmp_path, resume=True)


# --------------------------------------------------------------------------- bad input


X, Y = TRAIN


@pytest.mark.parametrize(("options", "error", "match"), [
    (dict(data=(X[:4], Y[:3])), ShapeError, r"fit: x has 4 samples but y has 3"),
    (dict(data=X), ArgumentError, r"fit: data must be a pair \(x, y\), got an array of shape "
                                  r"\(10, 2\) and dtype float64"),
    (dict(data=(X, Y, Y)), ArgumentError, r"fit: data must be a pair \(x, y\), got a tuple"),
    (dict(data=(X.tolist(), Y.tolist())), ArrayTypeError,
     r"fit: expected x to be a numpy array with samples along axis 0, got a list"),
    (dict(data=(X, tuple(Y))), ArrayTypeError, r"fit: expected y to be a numpy array .*a tuple"),
    (dict(data=(X[:0], Y[:0])), ShapeError, r"fit: the data set is empty"),
    (dict(batch_size=0), ArgumentError, r"fit: batch_size must be a positive integer, got 0"),
    (dict(batch_size=-3), ArgumentError, r"fit: batch_size must be a positive integer, got -3"),
    (dict(batch_size=11), ArgumentError,
     r"fit: batch_size must be at most the number of samples \(10\), got 11"),
    (dict(batch_size=2.5), ArgumentError, r"fit: batch_size .* got 2\.5"),
    (dict(epochs=-1), ArgumentError, r"fit: epochs must be a non-negative integer, got -1"),
    (dict(epochs=2.0), ArgumentError, r"fit: epochs .* got 2\.0"),
    (dict(epochs=True), ArgumentError, r"fit: epochs .* got True"),
    (dict(key=3), ArrayTypeError, r"random\.split: expected a random key"),
    (dict(checkpoint_every=2), ArgumentError, r"fit: checkpoint_every needs checkpoint_dir"),
    (dict(checkpoint_every=0, checkpoint_dir="unused"), ArgumentError,
     r"fit: checkpoint_every must be a positive integer, got 0"),
    (dict(resume=True), ArgumentError, r"fit: resume=True needs checkpoint_dir"),
    (dict(observers=[print, "log"]), ArgumentError,
     r"fit: observers\[1\] must be callable, got a str \('log'\)"),
    (dict(snapshot=(PROBE, 0)), ArgumentError,
     r"fit: snapshot interval must be a positive integer, got 0"),
    (dict(validation=(X, Y[:3])), ShapeError, r"fit\(validation\): x has 10 samples but y has 3"),
    (dict(validation=(X.tolist(), Y)), ArrayTypeError, r"fit\(validation\): expected x"),
])
def test_fit_rejects_bad_input_before_training(tmp_path, monkeypatch, options, error, match):
    monkeypatch.chdir(tmp_path)
    steps, loss = [], losses.softmax_cross_entropy()

    @functools.wraps(loss.forward)
    def counted(pred, target):
        steps.append(None)
        return loss.forward(pred, target)

    data_pair = options.pop("data", TRAIN)
    kwargs = dict(epochs=1, batch_size=3, key=random.key(1), progress=False)
    kwargs.update(options)
    net, params = classifier()
    with pytest.raises(error, match=match):
        train.fit(net, Loss(counted, loss.backward), optim.sgd(0.1), params, data_pair,
                  **kwargs)
    assert steps == [] and os.listdir(tmp_path) == []


@pytest.mark.parametrize("constructor", [optim.sgd, optim.momentum, optim.adam])
def test_a_negative_learning_rate_is_refused(constructor):
    name = constructor.__name__
    with pytest.raises(ArgumentError, match=rf"{name}: learning_rate must be a finite number "
                                            rf">= 0 or a schedule .*got a float \(-0\.1\)"):
        constructor(-0.1)


# --- integration fixes: checkpoints at the end, resume past the end, early argument checks ---


def test_a_checkpoint_dir_alone_saves_the_final_state(tmp_path):
    d = data.xor()
    net = layers.mlp([3, 1], activation="tanh")
    params, _ = net.init(random.key(0), (2,))
    final = train.fit(net, losses.sigmoid_binary_cross_entropy(), optim.sgd(0.5), params,
                      (d.x, d.t), epochs=3, batch_size=4, key=random.key(5), progress=False,
                      checkpoint_dir=tmp_path)
    assert [epoch for epoch, _ in io.list_checkpoints(tmp_path)] == [3]
    saved, epoch, _ = io.load_latest_checkpoint(tmp_path)
    assert epoch == 3
    assert_bitwise_equal(tuple(final.params), tuple(saved.params), "params")


def test_resuming_from_a_checkpoint_past_the_requested_epochs_is_an_error(tmp_path):
    d = data.xor()
    net = layers.mlp([3, 1], activation="tanh")
    params, _ = net.init(random.key(0), (2,))
    args = (net, losses.sigmoid_binary_cross_entropy(), optim.sgd(0.5), params, (d.x, d.t))
    train.fit(*args, epochs=4, batch_size=4, key=random.key(1), progress=False,
              checkpoint_dir=tmp_path)
    with pytest.raises(ArgumentError, match=r"fit: the newest checkpoint .* is at epoch 4, "
                                            r"past epochs=2"):
        train.fit(*args, epochs=2, batch_size=4, key=random.key(1), progress=False,
                  checkpoint_dir=tmp_path, resume=True)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"validation": np.zeros((4, 2))}, ArgumentError, r"fit: validation must be a pair"),
    ({"snapshot": np.zeros((4, 2))}, ArgumentError, r"fit: snapshot must be a pair"),
    ({"snapshot": ([1, 2], 3)}, ArrayTypeError, r"fit: snapshot inputs must be an array"),
])
def test_fit_checks_validation_and_snapshot_before_training(kwargs, error, match):
    d = data.xor()
    net = layers.mlp([3, 1], activation="tanh")
    params, _ = net.init(random.key(0), (2,))
    with pytest.raises(error, match=match):
        train.fit(net, losses.sigmoid_binary_cross_entropy(), optim.sgd(0.5), params,
                  (d.x, d.t), epochs=2, batch_size=4, key=random.key(1), progress=False,
                  **kwargs)


def test_numpy_floating_point_errors_become_nonfinite_errors_with_the_step():
    d = data.sine_regression()
    net = layers.mlp([3, 1], activation="sigmoid")
    params, _ = net.init(random.key(0), (1,))
    with pytest.raises(NonFiniteError, match=r"train_step: overflow .* at epoch \d+, step \d+"):
        train.fit(net, losses.sum_of_squares(), optim.sgd(1e6), params, (d.x, d.t * 1e150),
                  epochs=3, batch_size=1, key=random.key(1), progress=False)


@pytest.mark.parametrize("batch_size", [1, 3, 7])
def test_minibatches_are_the_same_gathered_once_or_batch_by_batch(batch_size, monkeypatch):
    """Small data is shuffled with one gather per epoch, large data batch by batch: the
    batches hold the same values either way, so a run does not depend on the data's size."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3)), rng.integers(0, 4, 10)
    once = train.minibatches(random.key(5), x, y, batch_size, drop_last=batch_size == 3)
    monkeypatch.setattr(train, "_GATHER_ONCE_BYTES", 0)
    by_batch = train.minibatches(random.key(5), x, y, batch_size, drop_last=batch_size == 3)
    assert len(once) == len(by_batch)
    for (xa, ya), (xb, yb) in zip(once, by_batch, strict=True):
        assert xa.tobytes() == xb.tobytes() and ya.tobytes() == yb.tobytes()


@pytest.mark.parametrize("optimizer", [optim.sgd(0.1), optim.sgd(0.1, weight_decay=0.01),
                                       optim.adam(0.01)])
def test_an_epoch_equals_its_train_steps_bitwise(optimizer):
    """run_epoch runs the kernels unchecked; its numbers are those of train_step, which runs
    the checked forward and backward."""
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((24, 3)), rng.integers(0, 2, 24)
    net = layers.mlp([5, 2], activation="tanh")
    params, _ = net.init(random.key(0), (3,))
    loss = losses.softmax_cross_entropy()
    config = Config(net, loss, optimizer, x, y, 5)
    state = train.init_state(net, optimizer, params, random.key(3))
    after = train.run_epoch(config, state)
    _, k_order, _ = random.split(state.key, 3)
    p, s = params, state.opt_state
    for xb, yb in train.minibatches(k_order, x, y, 5):
        r = train.train_step(net, loss, optimizer, p, s, xb, yb)
        p, s = r.params, r.opt_state
    assert_bitwise_equal(p, after.params, "params")
    assert_bitwise_equal(s, after.opt_state, "optimizer state")
