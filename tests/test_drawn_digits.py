"""Digits drawn with a mouse are read correctly by the window's model.

The drawn set (``drawn_digits.py``: 30 of each digit, from one key, nothing downloaded)
is read by two models, each through the path its model folder names:

- note 004's model (``classifier.py``, fitted by the box path): what the window would
  have used without a model of its own;
- the window's model (``drawn_classifier.py`` at its full configuration, seed 0: the
  same net trained on distorted digits through the stroke path).

The window's model must read at least 90 % of the drawings right, and more than the
note's model does.
"""

import importlib
import json

import numpy as np
import pytest
from drawn_digits import drawn_digits
from helpers import assert_png, load_script

from funcnet import random

classifier = load_script("classifier")
drawn_classifier = load_script("drawn_classifier")
inference = importlib.import_module("_inference")

KEY = 31  # the drawn set's key
PER_CLASS = 30
TARGET = 0.90


@pytest.fixture(scope="module")
def drawn():
    return drawn_digits(random.key(KEY), PER_CLASS)


def read(model, images):
    return np.array([inference.predict_drawing(image, model)["index"] for image in images])


def per_class(predicted, labels):
    return [int((predicted[labels == c] == c).sum()) for c in range(10)]


def test_the_windows_model_reads_drawn_digits(drawn, tmp_path, record_property, capsys):
    images, labels = drawn
    classifier.main(["--out", str(tmp_path / "note")])
    drawn_classifier.main(["--out", str(tmp_path / "window")])
    before = read(inference.load_model(tmp_path / "note"), images)
    window = inference.load_model(tmp_path / "window")
    assert window.preprocess == "strokes"
    after = read(window, images)
    accuracy = {"note_model": float((before == labels).mean()),
                "window_model": float((after == labels).mean())}
    for name, value in accuracy.items():
        record_property(f"drawn_accuracy_{name}", value)
    with capsys.disabled():
        print(f"\ndrawn digits ({len(labels)}, key {KEY}): note 004's model "
              f"{accuracy['note_model']:.3f} {per_class(before, labels)}, the window's model "
              f"{accuracy['window_model']:.3f} {per_class(after, labels)}")
    assert accuracy["window_model"] >= TARGET
    assert accuracy["window_model"] > accuracy["note_model"]


def test_drawn_classifier_quick_run_writes_a_model_folder(tmp_path):
    metrics = drawn_classifier.main(["--quick", "--out", str(tmp_path)])
    quick = drawn_classifier.QUICK
    assert metrics["train_inputs"] == quick["max_train"] * (quick["copies"] + 1)
    assert metrics["epochs"] == quick["epochs"] and 0.0 <= metrics["test_accuracy"] <= 1.0
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["preprocess"] == "strokes" and spec["input_shape"] == [8, 8]
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["config"]["copies"] == quick["copies"]
    assert_png(tmp_path / "predictions.png")


def test_distortions_are_keyed_and_keep_the_digit():
    assert drawn_classifier.stroke_grid is inference.stroke_grid  # one shared module
    x = np.zeros((2, 64))
    x[:, [3, 11, 19, 27, 35, 43, 51, 59]] = 1.0  # a vertical bar: a 1
    first, source = drawn_classifier.strokes_inputs(x, random.key(1), 3, 0.3)
    again, _ = drawn_classifier.strokes_inputs(x, random.key(1), 3, 0.3)
    other, _ = drawn_classifier.strokes_inputs(x, random.key(2), 3, 0.3)
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 0.1
    assert first.shape == (8, 64) and source.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert np.allclose(first.mean(axis=1), 0.3, atol=0.02)  # the ink the caller asked for


def test_the_drawn_set_is_a_pure_function_of_its_key():
    images, labels = drawn_digits(random.key(5), 2)
    again, _ = drawn_digits(random.key(5), 2)
    other, _ = drawn_digits(random.key(6), 2)
    assert labels.tolist() == [d for d in range(10) for _ in range(2)]
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again,
                                                                          strict=True))
    assert not all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, other,
                                                                              strict=True))
    for image in images:
        pixels = np.asarray(image)
        assert image.size == (280, 280) and set(np.unique(pixels)) <= {0, 255}
        assert 0.005 < (pixels > 0).mean() < 0.5
