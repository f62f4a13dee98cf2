"""The note-004 classifier and its predict command, the bug zoo, and the runner of every experiment.

The scripts live in experiments/ and import ``_common`` from beside them, so
that folder goes on sys.path here (the scripts themselves never touch it).
"""

import json
import re
import struct
import zlib

import numpy as np
import pytest
from helpers import assert_png, load_script, write_bar_idx_set
from PIL import Image, ImageDraw

from funcnet import data, io, losses, random, train
from funcnet.errors import CheckpointError, DataError

classifier = load_script("classifier")
predict = load_script("predict")
bug_zoo = load_script("bug_zoo")
run_all = load_script("run_all")



@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One quick digits run (seed 0), shared by the tests that need a model."""
    out = tmp_path_factory.mktemp("classifier")
    with np.errstate(all="raise"):
        metrics = classifier.main(["--quick", "--out", str(out)])
    return out, metrics


def digits_split(seed=0):
    """The digits split exactly as classifier.py makes it for ``seed``."""
    digits = data.digits()
    k_split, _, _ = random.split(random.key(seed), 3)
    return data.train_test_split(k_split, digits.x, digits.y, classifier.TEST_FRACTION)


# --- classifier.py -----------------------------------------------------------------------


def test_classifier_writes_model_figures_and_metrics(trained):
    out, metrics = trained
    for name in ("loss_curves", "accuracy_curves", "confusion_matrix", "predictions"):
        assert_png(out / f"{name}.png")
    assert {"test_accuracy", "train_accuracy", "final_loss", "test_loss", "epochs",
            "confusion_matrix"} <= set(metrics)
    assert metrics["epochs"] == classifier.QUICK["epochs"]
    record = json.loads((out / "metrics.json").read_text())
    assert record["metrics"]["test_accuracy"] == metrics["test_accuracy"]
    assert record["config"]["sizes"] == [64, classifier.HIDDEN, 10]
    spec = json.loads((out / "model.json").read_text())
    assert spec["sizes"] == [classifier.HIDDEN, 10] and spec["input_shape"] == [8, 8]
    assert spec["class_names"] == [str(d) for d in range(10)]
    params = io.load_params(out / "params.npz")
    assert [p["W"].shape for p in params if p] == [(64, classifier.HIDDEN),
                                                   (classifier.HIDDEN, 10)]


def test_classifier_metrics_agree_with_the_saved_model(trained):
    """Reloading the saved params and standardisation reproduces the reported accuracy."""
    out, metrics = trained
    model = predict.load_model(out)
    split = digits_split()
    x = data.standardize(split.x_test[:classifier.QUICK["max_test"]], model.stats)
    y = split.y_test[:classifier.QUICK["max_test"]]
    probs = train.predict(model.net, model.params, x, loss=losses.softmax_cross_entropy())
    assert train.accuracy(probs, y) == metrics["test_accuracy"]
    matrix = np.asarray(metrics["confusion_matrix"])
    assert matrix.sum() == len(y) and np.trace(matrix) / len(y) == metrics["test_accuracy"]
    assert np.allclose(model.stats.mean, model.stats.mean[0])  # one mean for every pixel


def test_classifier_reproduces_note_004s_layer_examples(trained):
    """Note 004's ReLU, Affine and batch numbers were checked only in tests/test_notes.py,
    though the README says a script in experiments/ reproduces every number of the notes."""
    out, metrics = trained
    record = json.loads((out / "metrics.json").read_text())["metrics"]["note_004_layers"]
    assert record["matches"] == dict.fromkeys(classifier.NOTE_004, True)
    assert record["values"]["affine_y"] == [[9.0, 19.0, 29.0]]
    assert record["values"]["affine_dx"] == [[13.0, 18.0]]
    assert record["values"]["relu_dx"] == [[7.0, 0.0], [0.0, 9.0]]
    assert record["values"]["batch_shape"] == [100, 50]


def test_classifier_full_configuration_reaches_the_target(tmp_path):
    with np.errstate(all="raise"):
        metrics = classifier.main(["--out", str(tmp_path)])
    assert metrics["test_accuracy"] >= 0.95
    assert metrics["epochs"] == classifier.FULL["digits"]["epochs"]


def test_classifier_reads_idx_files_with_fashion_names(tmp_path):
    """A tiny MNIST-format set: class c is a bright bar in row band c."""
    folder = write_bar_idx_set(tmp_path / "idx", {"train": 80, "t10k": 20})
    out = tmp_path / "out"
    metrics = classifier.main(["--quick", "--data", str(folder), "--out", str(out)])
    spec = json.loads((out / "model.json").read_text())
    assert spec["class_names"] == list(data.FASHION_MNIST_CLASSES)
    assert spec["input_shape"] == [28, 28] and spec["input_fit"] == 28
    assert metrics["test_samples"] == 20
    image = tmp_path / "bar.png"
    Image.fromarray(np.kron(np.eye(1, 4, 0) * 255, np.ones((3, 9))).astype(np.uint8)).save(image)
    result = predict.main([str(image), "--model", str(out)])
    assert result["class"] in data.FASHION_MNIST_CLASSES and result["input"].shape == (28, 28)


def test_classifier_refuses_dataset_without_data(tmp_path):
    with pytest.raises(SystemExit, match="--dataset mnist needs --data"):
        classifier.main(["--quick", "--dataset", "mnist", "--out", str(tmp_path)])


# --- predict.py --------------------------------------------------------------------------


def seven(size=(37, 53), *, ink="white", paper="black", scale=1):
    """An RGB image of a hand-drawn-looking 7."""
    image = Image.new("RGB", (size[0] * scale, size[1] * scale), paper)
    ImageDraw.Draw(image).line([(8 * scale, 10 * scale), (29 * scale, 10 * scale),
                                (15 * scale, 44 * scale)], fill=ink, width=4 * scale)
    return image


def check_result(result, class_names):
    names = [name for name, _ in result["top"]]
    probs = [p for _, p in result["top"]]
    assert len(result["top"]) == 3 and len(set(names)) == 3
    assert (result["class"], result["probability"]) == result["top"][0]
    assert result["class"] in class_names
    assert all(0.0 <= p <= 1.0 for p in probs) and probs == sorted(probs, reverse=True)
    assert sum(result["probabilities"]) == pytest.approx(1.0)
    assert max(result["probabilities"]) == result["probability"]


def test_predict_png_of_any_size(trained, tmp_path, capsys):
    out, _ = trained
    seven().save(tmp_path / "seven.png")
    result = predict.main([str(tmp_path / "seven.png"), "--model", str(out),
                           "--figure", str(tmp_path / "seen.png")])
    check_result(result, predict.load_model(out).class_names)
    assert result["input"].shape == (8, 8) and result["hint"] is None
    printed = capsys.readouterr().out
    assert f"{result['class']} ({result['probability']:.1%})" in printed
    assert_png(tmp_path / "seen.png")
    by_params = predict.main([str(tmp_path / "seven.png"), "--model", str(out / "params.npz")])
    assert by_params["probabilities"] == result["probabilities"]


def test_predict_jpeg_sees_what_the_png_sees(trained, tmp_path):
    out, _ = trained
    model = predict.load_model(out)
    seven().save(tmp_path / "seven.png")
    seven().save(tmp_path / "seven.jpg", quality=90)
    png = predict.predict_image(tmp_path / "seven.png", model)
    jpeg = predict.predict_image(tmp_path / "seven.jpg", model)
    check_result(jpeg, model.class_names)
    assert np.abs(png["input"] - jpeg["input"]).max() < 0.05


def test_predict_invert_and_size_laws(trained, tmp_path):
    out, _ = trained
    model = predict.load_model(out)
    seven().save(tmp_path / "light_ink.png")
    seven(ink="black", paper="white").save(tmp_path / "dark_ink.png")
    seven(scale=2).save(tmp_path / "twice.png")
    light = predict.predict_image(tmp_path / "light_ink.png", model)
    dark = predict.predict_image(tmp_path / "dark_ink.png", model, invert=True)
    np.testing.assert_allclose(dark["input"], light["input"], atol=1e-12)
    assert "--invert" in predict.predict_image(tmp_path / "dark_ink.png", model)["hint"]
    twice = predict.predict_image(tmp_path / "twice.png", model)
    assert np.abs(twice["input"] - light["input"]).max() < 0.2


def test_predict_maps_intensities_as_the_digits_were(trained, tmp_path):
    """Test digits drawn 4x larger on a 37x53 RGB canvas get the model's own verdict back;
    with the wrong polarity (--invert) they do not."""
    out, _ = trained
    model = predict.load_model(out)
    split, n = digits_split(), 30
    direct = train.predict(model.net, model.params,
                           data.standardize(split.x_test[:n], model.stats)).argmax(axis=1)
    agree = {False: 0, True: 0}
    for i in range(n):
        canvas = np.zeros((53, 37))
        canvas[10:42, 3:35] = np.kron(split.x_test[i].reshape(8, 8), np.ones((4, 4)))
        rgb = np.repeat(canvas[:, :, None], 3, axis=2)
        Image.fromarray(np.round(rgb * 255).astype(np.uint8)).save(tmp_path / "digit.png")
        for invert in agree:
            result = predict.predict_image(tmp_path / "digit.png", model, invert=invert)
            agree[invert] += result["class"] == model.class_names[direct[i]]
    assert agree[False] >= 0.8 * n
    assert agree[True] <= 0.5 * n


def test_predict_errors_name_the_path(trained, tmp_path, capsys):
    out, _ = trained
    model = predict.load_model(out)
    missing = tmp_path / "nowhere.png"
    with pytest.raises(DataError, match=f"image {missing} does not exist"):
        predict.predict_image(missing, model)
    text = tmp_path / "notes.png"
    text.write_text("not pixels")
    with pytest.raises(DataError, match=f"{text} is not an image Pillow can read"):
        predict.predict_image(text, model)
    with pytest.raises(DataError, match=f"{tmp_path} is a folder, not an image"):
        predict.predict_image(tmp_path, model)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match=f"model folder {empty} holds no params.npz"):
        predict.load_model(empty)
    with pytest.raises(CheckpointError, match=f"model {tmp_path / 'gone'} does not exist"):
        predict.load_model(tmp_path / "gone")
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "params.npz").write_bytes((out / "params.npz").read_bytes())
    with pytest.raises(CheckpointError, match=f"{lone / 'model.json'} is missing"):
        predict.load_model(lone)
    (lone / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=f"{lone / 'model.json'} is not readable JSON"):
        predict.load_model(lone / "params.npz")
    (lone / "model.json").write_text('{"sizes": [100, 10]}')
    with pytest.raises(CheckpointError, match=f"{lone / 'model.json'} lacks activation, "):
        predict.load_model(lone)
    spec = json.loads((out / "model.json").read_text())
    (lone / "model.json").write_text(json.dumps({**spec, "sizes": [50, 10]}))
    with pytest.raises(CheckpointError, match=re.escape(
            f"{lone / 'model.json'}: sizes [50, 10] do not match the params: "
            f"{lone / 'params.npz'} holds dense layers of widths [100, 10]")):
        predict.load_model(lone)
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(missing), "--model", str(out)])
    assert exit_info.value.code == 2 and str(missing) in capsys.readouterr().err


def model_folder(out, tmp_path, *, stats=None, **fields):
    """A copy of the trained folder ``out`` with model.json's ``fields`` replaced (a value
    of ``...`` removes the field) and, given ``stats``, another standardization.npz."""
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    for name in ("params.npz", "standardization.npz"):
        (folder / name).write_bytes((out / name).read_bytes())
    spec = json.loads((out / "model.json").read_text())
    spec.update(fields)
    spec = {key: value for key, value in spec.items() if value is not ...}
    (folder / "model.json").write_text(json.dumps(spec))
    if stats is not None:
        (folder / "standardization.npz").unlink()
        io.save_tree(folder / "standardization.npz", stats)
    return folder


def test_predict_refuses_class_names_that_do_not_match_the_outputs(trained, tmp_path, capsys):
    """Issue 13: 3 names for 10 outputs printed `b (43.1%)`, or an IndexError for class 4."""
    out, _ = trained
    folder = model_folder(out, tmp_path, class_names=["a", "b", "c"])
    spec_path = re.escape(str(folder / "model.json"))
    with pytest.raises(CheckpointError, match=f"{spec_path}: class_names holds 3 names, but "
                                              f"the network has 10 outputs"):
        predict.load_model(folder)
    seven().save(tmp_path / "seven.png")
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(tmp_path / "seven.png"), "--model", str(folder)])
    captured = capsys.readouterr()
    assert exit_info.value.code == 2 and "class_names holds 3 names" in captured.err
    assert captured.out == ""


def png_header(path, width, height):
    """A PNG whose header claims width x height pixels and that holds none."""
    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height", [(40000, 40000), (10000, 9000)])
def test_predict_refuses_an_image_too_large_to_decode(trained, tmp_path, capsys, width,
                                                       height):
    """Issue 13: a PNG claiming 40000x40000 ended in PIL's DecompressionBombError (and one
    just over Pillow's limit in its DecompressionBombWarning, an error under pytest)."""
    out, _ = trained
    model = predict.load_model(out)
    bomb = png_header(tmp_path / "bomb.png", width, height)
    limit = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DataError, match=re.escape(
            f"{bomb}: its header claims {width * height:,} pixels, more than the {limit:,}")):
        predict.predict_image(bomb, model)
    with pytest.raises(SystemExit) as exit_info:
        predict.main([str(bomb), "--model", str(out)])
    assert exit_info.value.code == 2 and f"{width * height:,} pixels" in capsys.readouterr().err


SPEC_FAULTS = [  # (model.json fields, what the error says after "model.json: ")
    ({"input_shape": 64}, "input_shape must be a list of 2 positive integers (rows, "
                          "columns), got 64"),
    ({"input_shape": [8, 0]}, "input_shape must be a list of 2 positive integers"),
    ({"input_shape": [8, 8, 1]}, "input_shape must be a list of 2 positive integers"),
    ({"input_shape": [8.0, 8]}, "input_shape must be a list of 2 positive integers"),
    ({"input_shape": [7, 7], "input_fit": 7}, "input_shape [7, 7] gives 49 inputs, but the "
                                              "first layer of "),
    ({"input_fit": 20}, "input_fit must be at most the input's rows and columns (8), got 20"),
    ({"input_fit": 0}, "input_fit must be a positive integer, got 0"),
    ({"input_fit": "8"}, "input_fit must be a positive integer, got '8'"),
    ({"input_shape": [4, 16]}, "input_fit must be at most the input's rows and columns (4)"),
    ({"sizes": 100}, "sizes must be a non-empty list of positive integers (the dense "
                     "layers' widths), got 100"),
    ({"sizes": []}, "sizes must be a non-empty list of positive integers (the dense "
                    "layers' widths), got []"),
    ({"sizes": [100, True]}, "sizes must be a non-empty list of positive integers"),
    ({"sizes": [50, 10]}, "sizes [50, 10] do not match the params: "),
    ({"sizes": [100, 10, 10]}, "sizes [100, 10, 10] do not match the params: "),
    ({"activation": "swish"}, "activation must be one of "),
    ({"activation": 3}, "activation must be one of "),
    ({"class_names": "0123456789"}, "class_names must be a list of distinct strings"),
    ({"class_names": list(range(10))}, "class_names must be a list of distinct strings"),
    ({"class_names": ["a"] * 10}, "class_names must be a list of distinct strings"),
    ({"params": 5}, "params must be the name of a file in the model folder, got 5"),
    ({"params": "other.npz"}, "params names other.npz, which the folder does not hold"),
    ({"standardization": None}, "standardization must be the name of a file in the model "
                                "folder, got None"),
    ({"preprocess": ["box"]}, "preprocess must be one of box, strokes, got ['box']"),
    ({"dataset": 7}, "dataset must be a string, got 7"),
]


@pytest.mark.parametrize("fields, message", SPEC_FAULTS)
def test_predict_validates_each_model_json_field(trained, tmp_path, fields, message):
    """Issue 13: a malformed model.json (input_shape 64, input_fit 20 for an 8x8 input, ...)
    ended in TypeError or ValueError tracebacks, or loaded and answered nonsense."""
    out, _ = trained
    folder = model_folder(out, tmp_path, **fields)
    with pytest.raises(CheckpointError, match=re.escape(f"{folder / 'model.json'}: {message}")):
        predict.load_model(folder)


def test_predict_refuses_a_model_json_that_is_not_an_object(trained, tmp_path):
    out, _ = trained
    folder = model_folder(out, tmp_path)
    (folder / "model.json").write_text("[1, 2]")
    with pytest.raises(CheckpointError, match=re.escape(
            f"{folder / 'model.json'} must hold a JSON object, got a list")):
        predict.load_model(folder)


STATS_FAULTS = [  # (standardization.npz's tree, what the error says after its path)
    (lambda m, s: {"mean": m, "std": np.zeros_like(s)},
     "std must be finite and positive, got 0.0 at [0]"),
    (lambda m, s: {"mean": m, "std": np.where(np.arange(64) == 5, -1.0, s)},
     "std must be finite and positive, got -1.0 at [5]"),
    (lambda m, s: {"mean": np.where(np.arange(64) == 3, np.nan, m), "std": s},
     "mean must be finite, got nan at [3]"),
    (lambda m, s: {"mean": m[:63], "std": s[:63]},
     "mean must have shape (64,) (the 8x8 input_shape), got (63,)"),
    (lambda m, s: {"mean": m, "std": s.astype(complex)},
     "std must be real numbers, got dtype complex128"),
    (lambda m, s: {"mean": m}, "must hold mean and std, got mean"),
    (lambda m, s: [m, s], "must hold mean and std, got a list"),
]


@pytest.mark.parametrize("tree, message", STATS_FAULTS)
def test_predict_validates_the_standardization(trained, tmp_path, tree, message):
    """Issue 13: std = 0 in the standardisation gave a traceback, not a named field."""
    out, _ = trained
    saved = io.load_tree(out / "standardization.npz")
    mean, std = np.array(saved["mean"]), np.array(saved["std"])
    folder = model_folder(out, tmp_path, stats=tree(mean, std))
    with pytest.raises(CheckpointError, match=re.escape(
            f"{folder / 'standardization.npz'} (model.json's standardization): {message}")):
        predict.load_model(folder)


# --- bug_zoo.py --------------------------------------------------------------------------


def test_bug_zoo_catches_every_bug(tmp_path):
    metrics = bug_zoo.main(["--quick", "--out", str(tmp_path)])
    bugs = metrics["bugs"]
    assert len(bugs) == 4 and metrics["all_caught"] and metrics["funcnet_all_pass"]
    for label, bug in bugs.items():
        assert bug["caught"], label
        assert bug["max_relative_error"] > 1e-2, label
        assert bug["funcnet_ok"] and bug["funcnet_max_error"] < 1e-6, label
    in_place = next(b for label, b in bugs.items() if label.startswith("(a)"))
    assert in_place["gradient_check_ok"]  # on a copy of dy, the comparison cannot see it
    assert in_place["check"] == "immutability, check_layer"  # check_layer refuses the write
    assert all(not b["gradient_check_ok"] for label, b in bugs.items()
               if not label.startswith("(a)"))
    assert_png(tmp_path / "gradient_checks.png")


def test_bug_zoo_reproduces_the_notes_wrong_numbers():
    """The bugs compute what the notes printed: right values, wrong side effects or rules."""
    dy = bug_zoo.RELU_DY.copy()
    layer = bug_zoo.textbook_relu()
    _, cache = layer.forward((), bug_zoo.RELU_X)
    dx, _ = layer.backward(cache, dy)
    np.testing.assert_array_equal(dx, [[7.0, 0.0], [0.0, 9.0]])
    assert dx is dy  # the note's dx IS the caller's dout
    params = {"W": bug_zoo.NOTE3_W1, "b": bug_zoo.NOTE3_B1}
    for note_rule, db in ((True, 0.5 * (0.00747633 + 0.00174744)),
                          (False, 0.00747633 + 0.00174744)):
        note = bug_zoo.dense_shared_bias(2, note_rule=note_rule)
        _, cache = note.forward(params, bug_zoo.NOTE3_X)
        assert note.backward(cache, bug_zoo.NOTE3_DELTA)[1]["b"][0] == pytest.approx(db)


# --- run_all.py --------------------------------------------------------------------------

STUB = '''
import json, sys
from pathlib import Path

def main(argv=None):
    out = Path(argv[argv.index("--out") + 1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "argv.json").write_text(json.dumps(argv))
    {body}
'''


@pytest.fixture
def stubs(tmp_path, monkeypatch):
    """Stub experiments in a scratch folder, with one target each."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    bodies = {"good": 'return {"score": 0.9}', "bad": 'return {"score": 0.1}',
              "broken": 'raise RuntimeError("stub broke")', "unnamed": 'return {"other": 1}'}
    for name, body in bodies.items():
        (folder / f"{name}.py").write_text(STUB.format(body=body))
    at_least_half = run_all.Target("score", ">= 0.5", lambda v: v >= 0.5)
    monkeypatch.setattr(run_all, "EXPERIMENTS_DIR", folder)
    monkeypatch.setattr(run_all, "TARGETS", {name: (at_least_half,) for name in bodies})
    return tmp_path / "runs"


def summary_of(root):
    return json.loads((root / "run_all" / "metrics.json").read_text())["metrics"]


def test_run_all_passes_and_passes_options_on(stubs, monkeypatch, capsys):
    monkeypatch.setattr(run_all, "EXPERIMENTS", ("good",))
    summary = run_all.main(["--out", str(stubs), "--quick", "--seed", "3"])
    assert summary["passed"] and summary["experiments"]["good"]["status"] == "pass"
    argv = json.loads((stubs / "good" / "argv.json").read_text())
    assert argv == ["--out", str(stubs / "good"), "--quick", "--seed", "3"]
    assert summary_of(stubs)["passed"] is True
    assert "1 of 1 experiments pass" in capsys.readouterr().out


def test_run_all_exits_non_zero_when_a_target_fails(stubs, monkeypatch, capsys):
    monkeypatch.setattr(run_all, "EXPERIMENTS", ("good", "bad", "broken", "unnamed"))
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--out", str(stubs)])
    assert exit_info.value.code == 1
    status = {n: r["status"] for n, r in summary_of(stubs)["experiments"].items()}
    assert status == {"good": "pass", "bad": "fail", "broken": "error", "unnamed": "fail"}
    printed = capsys.readouterr().out
    assert "FAIL" in printed and "RuntimeError: stub broke" in printed
    assert "no metric 'score' (found: other)" in printed
    assert "FAILED: bad, broken, unnamed" in printed


def test_run_all_missing_script_is_an_error_unless_allowed(stubs, monkeypatch, capsys):
    monkeypatch.setattr(run_all, "EXPERIMENTS", ("good", "absent"))
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--out", str(stubs)])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "absent.py" in err and "--allow-missing" in err
    assert not (stubs / "good").exists()  # refused before running anything
    summary = run_all.main(["--out", str(stubs), "--allow-missing"])
    assert summary["passed"] and summary["experiments"]["absent"]["status"] == "skipped"
    assert "absent: skipped" in capsys.readouterr().out


def test_run_all_targets_cover_every_experiment_and_mean_the_issue():
    assert set(run_all.TARGETS) == set(run_all.EXPERIMENTS)

    def passes(name, metrics):
        return all(row["passed"] for row in run_all.judge(name, metrics, None))

    assert passes("graph_nodes", {"price": 100 * 2 * 1.1 + 150 * 3 * 1.1})
    assert not passes("graph_nodes", {"price": 714.0})
    assert passes("xor", {"first_loss": 0.704922094, "predictions": [0.02, 0.97, 0.95, 0.06]})
    assert not passes("xor", {"first_loss": 0.70492209, "predictions": [0.2, 0.97, 0.95, 0.06]})
    assert not passes("xor", {"first_loss": 0.7049, "predictions": [0, 1, 1, 0]})
    assert passes("xor", {"first_loss": 0.70492209, "predictions": [[0.0], [1.0], [1.0], [0.0]]})
    assert not passes("xor", {"first_loss": 0.70492209, "predictions": [0, 1, 1]})
    assert passes("sine_regression", {"final_error": 0.0009})
    assert not passes("sine_regression", {"final_error": 0.001})
    assert passes("hand_step", {"matches": {"W1": True, "W2": np.bool_(True)}})
    assert not passes("hand_step", {"matches": {"W1": True, "b": False}})
    assert not passes("bug_zoo", {"all_caught": 1})
    assert passes("classifier", {"test_accuracy": 0.95})
