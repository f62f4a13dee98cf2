"""The chapter 6-7 experiments (batch norm, overfitting, a conv net), run quick.

The scripts live in experiments/ and import ``_common`` from beside them, so
that folder goes on sys.path here (the scripts themselves never touch it).
"""

import json
import math

import numpy as np
import pytest
from helpers import assert_png, load_script

from funcnet import data, layers, random
from funcnet.errors import NonFiniteError

batch_norm = load_script("batch_norm")
overfitting = load_script("overfitting")
cnn = load_script("cnn")



def recorded(out, name):
    """The record in metrics.json, after checking its name, seed and quick flag."""
    record = json.loads((out / "metrics.json").read_text())
    assert record["experiment"] == name and record["seed"] == 0 and record["config"]["quick"]
    return record


def test_batch_norm_quick(tmp_path):
    metrics = batch_norm.main(["--quick", "--out", str(tmp_path)])
    for png in ("final_accuracy.png", "accuracy_curves.png"):
        assert_png(tmp_path / png)
    scales = batch_norm.QUICK["scales"]
    normed, plain = metrics["batch_norm_train_accuracy"], metrics["plain_train_accuracy"]
    assert len(normed) == len(plain) == len(scales)
    assert all(0.0 <= a <= 1.0 for a in normed)  # batch norm never diverges
    # a NaN marks a diverged plain run, and each diverged run is recorded with its error
    diverged = {record["scale"] for record in metrics["diverged"]}
    for scale, accuracy in zip(scales, plain, strict=True):
        assert (scale in diverged) == math.isnan(accuracy)
    assert 1.0 in diverged  # the book's overflow at the largest scale, recorded, not raised
    for record in metrics["diverged"]:
        assert record["net"] == "plain" and "epoch" in record["error"]
    saved = recorded(tmp_path, "batch_norm")["metrics"]
    assert saved["batch_norm_train_accuracy"] == pytest.approx(normed)
    assert len(saved["diverged"]) == len(diverged)


def test_batch_norm_nets_differ_only_by_batch_norm():
    plain = batch_norm.network(0.01, batch_norm=False)
    normed = batch_norm.network(0.01, batch_norm=True)
    params, out_shape = normed.init(random.key(0), (64,))
    assert out_shape == (10,)
    assert sum("gamma" in p for p in params) == batch_norm.DEPTH
    dense_plain = [p["W"].shape for p in plain.init(random.key(0), (64,))[0] if p]
    dense_normed = [p["W"].shape for p in params if "W" in p]
    assert dense_plain == dense_normed == [(64, 100)] + [(100, 100)] * 4 + [(100, 10)]
    assert len(layers.init_state(normed, (64,))) == len(params)


def test_batch_norm_a_huge_scale_diverges_and_is_recorded():
    """At weight std 1 the plain deep net overflows in its first epoch, in a training step or
    in the evaluation after it; run returns the error instead of raising."""
    digits = data.digits()
    accuracy, error = batch_norm.run(batch_norm.network(1.0, batch_norm=False),
                                     digits.x[:200], digits.y[:200], random.key(0), 2)
    assert isinstance(error, NonFiniteError)
    assert len(accuracy) < 2 and f"epoch {len(accuracy)}" in str(error)  # the failing epoch


def test_overfitting_quick(tmp_path):
    metrics = overfitting.main(["--quick", "--out", str(tmp_path)])
    for name in ("plain", "weight_decay", "dropout"):
        assert_png(tmp_path / f"accuracy_{name}.png")
    assert set(metrics["runs"]) == set(overfitting.RUNS)
    for run in metrics["runs"].values():
        assert len(run["train_curve"]) == len(run["test_curve"]) == overfitting.QUICK["epochs"]
        assert run["gap"] == pytest.approx(run["train_accuracy"] - run["test_accuracy"])
        assert all(0.0 <= a <= 1.0 for a in run["train_curve"] + run["test_curve"])
    plain = metrics["runs"]["plain"]["mean_gap_last_epochs"]
    for name, narrowed in metrics["gap_narrowed"].items():
        assert narrowed == (metrics["runs"][name]["mean_gap_last_epochs"] < plain)
    record = recorded(tmp_path, "overfitting")
    assert record["config"]["weight_decay"] == overfitting.WEIGHT_DECAY
    assert record["metrics"]["gap_narrowed"] == metrics["gap_narrowed"]


def test_cnn_quick(tmp_path):
    metrics = cnn.main(["--quick", "--out", str(tmp_path)])
    for png in ("loss_curves.png", "accuracy_curves.png"):
        assert_png(tmp_path / png)
    for key in ("test_accuracy", "mlp_test_accuracy", "train_accuracy", "mlp_train_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0, key
    assert metrics["beats_mlp"] == (metrics["test_accuracy"] >= metrics["mlp_test_accuracy"])
    n = metrics["test_samples"]
    assert n == cnn.QUICK["max_test"]
    assert metrics["wrong"] == round((1 - metrics["test_accuracy"]) * n)
    assert metrics["mlp_parameters"] == 64 * 100 + 100 + 100 * 10 + 10
    assert metrics["parameters"] == (9 * 16 + 16) + (16 * 4 * 4 * 64 + 64) + (64 * 10 + 10)
    assert recorded(tmp_path, "cnn")["metrics"]["beats_mlp"] == metrics["beats_mlp"]


def test_cnn_standardization_is_one_mean_and_std_over_training_pixels():
    x = np.arange(24.0).reshape(3, 1, 2, 4)
    stats = data.standardizer(x, per_feature=False)
    assert stats.mean.shape == stats.std.shape == (1, 2, 4)
    np.testing.assert_allclose(stats.mean, x.mean())
    np.testing.assert_allclose(stats.std, x.std())


def test_metrics_json_is_strict_json_with_null_for_a_diverged_run(tmp_path):
    import _common

    metrics = {"accuracy": float("nan"), "scores": np.array([1.0, np.inf])}
    path = _common.write_metrics(tmp_path, "demo", config={}, seed=0, metrics=metrics)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text)["metrics"] == {"accuracy": None, "scores": [1.0, None]}
