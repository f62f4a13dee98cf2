"""The experiments of notes 000-003 run end to end and reproduce the notes' numbers.

Each script runs once in ``--quick`` mode into a temporary folder; the exact
numbers of notes 001, 002 and 003 do not depend on the quick switch, so they
are checked at full precision here, against the notes' values and against
independent hand computations. The full configurations are checked through
the module constants (running them takes a minute or more; see the report).
"""

import json
import math

import numpy as np
import pytest
from helpers import load_script
from PIL import Image

from funcnet import data, losses, optim, random, train, tree

FIGURES = {
    "sine_regression": ("snapshots.png", "loss.png"),
    "sine_classification": ("regions.png", "regions_first_epoch.png", "loss.png",
                            "accuracy.png"),
    "graph_nodes": ("graph.png", "gradient_check.png"),
    "xor": ("loss.png", "surface.png", "surface_scalar_bias.png", "surface_note_start.png"),
    "hand_step": ("bias_gradient.png",),
}


load = load_script


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """name -> (module, returned metrics, output folder), each script run once, lazily."""
    done = {}

    def run(name):
        if name not in done:
            module, out = load(name), tmp_path_factory.mktemp(name)
            with np.errstate(all="raise"):
                metrics = module.main(["--quick", "--out", str(out)])
            done[name] = (module, metrics, out)
        return done[name]

    return run


def numbers(value):
    """Every number in a nested metrics value, flattened."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers(v)]
    if isinstance(value, list | tuple | np.ndarray):
        return [n for v in value for n in numbers(v)]
    return [float(value)]


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_quick_run_writes_figures_and_metrics(quick, name):
    _, metrics, out = quick(name)
    for figure in FIGURES[name]:
        with Image.open(out / figure) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 100
    record = json.loads((out / "metrics.json").read_text())
    assert record["experiment"] == name
    assert {"seed", "config", "versions", "metrics"} <= set(record)
    assert record["config"]["quick"] is True
    assert set(record["metrics"]) == set(metrics)
    values = numbers(record["metrics"])
    assert values and all(math.isfinite(v) for v in values)
    np.testing.assert_array_equal(values, numbers(metrics))  # JSON keeps full precision


# --- note 000 -----------------------------------------------------------------------------


def test_sine_regression_quick_metrics(quick):
    module, metrics, _ = quick("sine_regression")
    assert metrics["epochs"] == module.QUICK_EPOCHS
    assert metrics["steps"] == module.QUICK_EPOCHS * 63
    assert list(metrics["interval_errors"]) == [str(e) for e in range(0, module.QUICK_EPOCHS,
                                                                      module.QUICK_INTERVAL)]
    errors = list(metrics["interval_errors"].values())
    assert errors == sorted(errors, reverse=True)  # it is learning, even in a few epochs
    assert 0 < metrics["final_error"] < errors[0]


def test_sine_regression_full_configuration_is_the_note():
    module = load("sine_regression")
    assert (module.HIDDEN, module.INIT_STD, module.LEARNING_RATE) == (3, 0.01, 0.1)
    assert (module.BATCH_SIZE, module.EPOCHS, module.INTERVAL) == (1, 2001, 200)
    assert module.TARGET_ERROR <= 1e-3
    params, out_shape = module.network().init(random.key(0), (1,))
    assert [p["W"].shape for p in params if p] == [(1, 3), (3, 1)] and out_shape == (1,)
    assert all(abs(float(np.std(leaf))) < 0.05 for leaf in tree.leaves(params))  # N(0, 0.01²)


def test_sine_classification_quick_metrics(quick):
    module, metrics, _ = quick("sine_classification")
    assert metrics["steps"] == module.QUICK_EPOCHS * 441
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert set(metrics["interval_accuracy"]) == set(metrics["interval_errors"])


def test_sine_classification_full_configuration_is_the_note():
    module = load("sine_classification")
    assert (module.HIDDEN, module.CLASSES, module.INIT_STD) == (6, 2, 0.01)
    assert (module.LEARNING_RATE, module.BATCH_SIZE) == (0.1, 1)
    assert (module.EPOCHS, module.INTERVAL, module.TARGET_ACCURACY) == (101, 10, 0.95)
    params, out_shape = module.network().init(random.key(0), (2,))
    assert [p["W"].shape for p in params if p] == [(2, 6), (6, 2)] and out_shape == (2,)
    y, _ = module.network().forward(params, data.sine_boundary().x)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)  # softmax output: probabilities


# --- note 001 -----------------------------------------------------------------------------


def test_graph_nodes_reproduce_the_shopping_graphs(quick):
    _, metrics, _ = quick("graph_nodes")
    expected = {"price": 715, "apple_price": 220, "d_apple": 2.2, "d_apple_count": 110,
                "d_orange": 3.3, "d_orange_count": 165, "d_tax": 650,
                "apple_only_d_apple": 2.2, "apple_only_d_apple_count": 110,
                "apple_only_d_tax": 200}
    for name, value in expected.items():
        assert metrics[name] == pytest.approx(value, rel=1e-12, abs=0), name


def test_graph_nodes_gradient_checks_pass(quick):
    _, metrics, _ = quick("graph_nodes")
    assert metrics["gradient_check_ok"] is True
    for layer in ("dense", "relu", "sigmoid", "softmax_cross_entropy"):
        assert metrics[f"max_error_{layer}_vs_jax"] < 1e-7
        assert metrics[f"max_error_{layer}_vs_numerical"] < 1e-6
    assert metrics["relu_leaves_dy_unchanged"] is True
    # softmax_cross_entropy of logits [2, 1, -1], label 0, by hand: log(e² + e + e⁻¹) - 2
    by_hand = math.log(math.exp(2) + math.exp(1) + math.exp(-1)) - 2
    assert metrics["softmax_loss_value"] == pytest.approx(by_hand, rel=1e-14)


def test_graph_nodes_configuration_is_the_note():
    module = load("graph_nodes")
    assert (module.APPLE, module.APPLE_COUNT, module.ORANGE, module.ORANGE_COUNT,
            module.TAX) == (100, 2, 150, 3, 1.1)


# --- note 002 -----------------------------------------------------------------------------


def note_002_loss(draw):
    """The note's own column-per-sample forward pass, written out independently, from the
    ``draw``-th init_parameters(2) after np.random.seed(42) (legacy generator)."""
    legacy = np.random.RandomState(42)
    for _ in range(draw):
        W1, W2 = legacy.randn(2, 2), legacy.randn(2, 1)
    X = np.array([0, 0, 1, 1, 0, 1, 0, 1]).reshape(2, 4)
    Y = np.array([0, 1, 1, 0]).reshape(1, 4)
    H = 1 / (1 + np.exp(-(W1.T @ X + np.zeros((2, 1)))))
    Y_hat = 1 / (1 + np.exp(-(W2.T @ H + np.zeros((1, 1)))))
    return float(-(Y * np.log(Y_hat) + (1 - Y) * np.log(1 - Y_hat)).sum() / 4)


def test_xor_first_loss_is_the_notes(quick):
    _, metrics, _ = quick("xor")
    # The note prints 0.70492209: the first 8 decimals of 0.70492209845 (cut, not rounded).
    assert 0 <= metrics["first_loss"] - 0.70492209 < 1e-8
    assert metrics["first_loss"] == pytest.approx(note_002_loss(draw=1), rel=1e-14)
    # The note's own training starts, as in its notebook, from the next draw of the stream.
    assert metrics["note_start_first_loss"] == pytest.approx(note_002_loss(draw=2), rel=1e-14)


def test_xor_quick_metrics(quick):
    module, metrics, _ = quick("xor")
    assert len(metrics["predictions"]) == len(metrics["buggy_predictions"]) == 4
    assert len(metrics["loss_trace"]) == module.QUICK_ITERATIONS // module.RECORD_EVERY
    assert metrics["loss_trace"][0] == metrics["buggy_loss_trace"][0]  # the same keyed start
    assert metrics["note_start_loss_trace"][0] == metrics["note_start_first_loss"]
    assert metrics["loss_trace"][-1] < metrics["loss_trace"][0]


def test_xor_scalar_bias_variant_gives_both_units_the_summed_step():
    module = load("xor")
    params = module.note_params(np.random.RandomState(42))
    xor = data.xor()
    _, grads, _ = train.value_and_grad(module.network(), losses.binary_cross_entropy(), params,
                                       xor.x, xor.t)
    sgd = optim.sgd(0.1)
    fixed, _ = sgd.update(grads, sgd.init(params), params)
    buggy, _ = module.scalar_hidden_bias(sgd).update(grads, sgd.init(params), params)
    total = float(np.sum(grads[0]["b"]))
    np.testing.assert_allclose(buggy[0]["b"], [-0.1 * total] * 2, rtol=1e-15)
    np.testing.assert_allclose(fixed[0]["b"], -0.1 * np.asarray(grads[0]["b"]), rtol=1e-15)
    for i in (0, 2):  # everything else is the same step
        np.testing.assert_array_equal(buggy[i]["W"], fixed[i]["W"])
    np.testing.assert_array_equal(buggy[2]["b"], fixed[2]["b"])


def test_xor_loop_equals_fit():
    module = load("xor")
    xor, net, loss = data.xor(), module.network(), losses.binary_cross_entropy()
    params = module.note_params(np.random.RandomState(42))
    ours, trace = module.gradient_descent(net, loss, optim.sgd(0.1), params, xor.x, xor.t, 201)
    state = train.fit(net, loss, optim.sgd(0.1), params, (xor.x, xor.t), epochs=201,
                      batch_size=4, shuffle=False, key=random.key(0), progress=False)
    for a, b in zip(tree.leaves(ours), tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert trace == list(state.history.loss[::module.RECORD_EVERY])


def test_xor_full_configuration_is_the_note():
    module = load("xor")
    assert (module.HIDDEN, module.NOTE_SEED, module.LEARNING_RATE) == (2, 42, 0.1)
    assert (module.ITERATIONS, module.BATCH_SIZE, module.RECORD_EVERY) == (150_000, 4, 100)
    assert module.NOTE_FIRST_LOSS == 0.70492209 and module.TOLERANCE <= 0.1


# --- note 003 -----------------------------------------------------------------------------

NOTE_003 = {
    "hidden_output": [0.93702664, 0.96442881],
    "prediction": [0.86103399, 0.75879129],
    "per_output_cost": [0.06517277, 0.21700298],
    "output_delta": [0.04319933, 0.12057664],
    "hidden_delta": [0.00747633, 0.00174744],
    "dW2": [[0.04047892, 0.11298352], [0.04166268, 0.11628758]],
    "dW1": [[0.00747633, 0.00174744], [0.01495265, 0.00349488], [0.02242898, 0.00524232]],
    "updated_W1": [[0.09252367, 0.19825256], [0.28504735, 0.39650512],
                   [0.47757102, 0.59475768]],
    "updated_W2": [[0.65952108, 0.68701648], [0.85833732, -0.01628758]],
    "db1": 0.00922377,
    "db2": 0.16377596,
}


def test_hand_step_reproduces_every_number_of_the_note(quick):
    _, metrics, _ = quick("hand_step")
    for name, note in NOTE_003.items():
        np.testing.assert_allclose(metrics[name], note, rtol=0, atol=1e-8, err_msg=name)
    assert metrics["serial_backward_matches"] is True


def test_hand_step_scalar_bias_gradients(quick):
    _, metrics, _ = quick("hand_step")
    # By hand: the deltas of the note's network; a bias added to every unit gets their sum.
    x, t = np.array([1.0, 2.0, 3.0]), np.array([0.5, 0.1])
    W1 = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    W2 = np.array([[0.7, 0.8], [0.9, 0.1]])
    h = 1 / (1 + np.exp(-(x @ W1 + 0.5)))
    y = 1 / (1 + np.exp(-(h @ W2 + 0.3)))
    delta2 = (y - t) * y * (1 - y)
    delta1 = (W2 @ delta2) * h * (1 - h)
    for name, by_hand, note in (("db1", delta1.sum(), 0.00922377),
                                ("db2", delta2.sum(), 0.16377596)):
        assert abs(metrics[name] - by_hand) / by_hand < 1e-13
        assert abs(metrics[name] - note) / note < 1e-6  # 8 printed decimals
        assert abs(metrics[f"{name}_numerical"] - by_hand) / by_hand < 1e-8
    assert metrics["db1_note_rule"] == pytest.approx(0.00461188, abs=1e-8)
    assert metrics["db2_note_rule"] == pytest.approx(0.04913279, abs=1e-8)
    assert metrics["db1_note_rule"] != pytest.approx(metrics["db1"], rel=0.1)


def test_hand_step_three_layer_deltas_differ(quick):
    _, metrics, _ = quick("hand_step")
    assert not np.allclose(metrics["three_layer_first_delta"],
                           metrics["three_layer_first_delta_note_rule"], rtol=0.1)


def test_hand_step_configuration_is_the_note():
    module = load("hand_step")
    np.testing.assert_array_equal(module.X, [[1, 2, 3]])
    np.testing.assert_array_equal(module.TARGET, [[0.5, 0.1]])
    np.testing.assert_array_equal(module.W1, [[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    np.testing.assert_array_equal(module.W2, [[0.7, 0.8], [0.9, 0.1]])
    assert (module.B1, module.B2, module.LEARNING_RATE) == (0.5, 0.3, 1.0)
