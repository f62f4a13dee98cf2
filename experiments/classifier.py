"""Note 004: a classifier that names its prediction and says how sure it is.

Note 004 ends with a Fashion-MNIST model whose prediction is shown with its
class name and probability. Here a 64-100-10 ReLU MLP is trained on logits
with the fused softmax cross-entropy, by Adam at 1e-3 (the Keras default the
note's model was compiled with; it needs no tuning on either data set, and
plain SGD at 0.1 reaches the same accuracy on the digits), on the packaged
8x8 digits, or on MNIST-format IDX files with ``--data``. Inputs are
standardised with one mean and one std over all training pixels, fitted on
the training part only (one pair, so a stray pixel in a user's image is not
blown up by a near-zero per-pixel std). The model is saved for
``experiments/predict.py``, which names the class of any PNG or JPEG.

    python experiments/classifier.py                            # the digits
    python experiments/classifier.py --data DIR                 # Fashion-MNIST in DIR
    python experiments/classifier.py --data DIR --dataset mnist

Before the classifier, note 004's layer examples, printed beside the note's numbers
and kept in the metrics as ``note_004_layers``: ReLU on [[1, -0.5], [-2, 3]] and back,
Affine with x = [[2, 3]] (its y, dx, dW and db), and a batch of 100 inputs of 784
through Affine 784 -> 50.

Writes to OUT (default runs/classifier): metrics.json, params.npz,
standardization.npz, model.json, loss_curves.png, accuracy_curves.png,
confusion_matrix.png, predictions.png.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from _common import compare, parse_args, say, write_metrics, wrong_then_right

from funcnet import data, io, layers, losses, optim, plot, random, train

NAME = "classifier"
HIDDEN = 100
ACTIVATION = "relu"
LEARNING_RATE = 1e-3
TEST_FRACTION = 0.2  # of the digits; the IDX files come split
FULL = {"digits": {"epochs": 30, "batch_size": 32},
        "idx": {"epochs": 10, "batch_size": 64}}
QUICK = {"epochs": 2, "batch_size": 32, "max_train": 2000, "max_test": 500}
# How a picture fills the model's input (predict.py does the same): the ink's
# bounding box, padded to a square, is resized to FIT pixels and centred in SHAPE.
IMAGE = {"digits": {"shape": (8, 8), "fit": 8},       # the UCI bitmaps fill the frame
         "mnist": {"shape": (28, 28), "fit": 20},     # MNIST: a 20x20 box in 28x28
         "fashion": {"shape": (28, 28), "fit": 28}}   # Fashion-MNIST: longest side 28
SHOWN = 8  # samples in predictions.png, the wrong ones first
PRINT_EVERY = 5


# note 004's layer examples and the numbers it prints for them
RELU_X, RELU_DY = [[1.0, -0.5], [-2.0, 3.0]], [[7.0, 8.5], [3.0, 9.0]]
AFFINE = {"x": [[2.0, 3.0]], "W": [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]], "b": [[1.0, 1.0, 1.0]],
          "dout": [[2.0, 2.0, 1.0]]}
NOTE_004 = {"relu_y": [[1.0, 0.0], [0.0, 3.0]], "relu_dx": [[7.0, 0.0], [0.0, 9.0]],
            "affine_y": [[9.0, 19.0, 29.0]], "affine_dx": [[13.0, 18.0]],
            "affine_dW": [[4.0, 4.0, 2.0], [6.0, 6.0, 3.0]], "affine_db": [[2.0, 2.0, 1.0]],
            "batch_shape": [100, 50]}


def note_004_layers(key):
    """Note 004's ReLU, Affine and batch examples through funcnet's relu and dense: each
    value beside the note's, and whether they match exactly."""
    relu = layers.relu()
    relu_y, cache = relu.forward((), np.array(RELU_X))
    relu_dx, _ = relu.backward(cache, np.array(RELU_DY))
    affine = layers.dense(3)
    params = {"W": np.array(AFFINE["W"]), "b": np.array(AFFINE["b"][0])}
    affine_y, cache = affine.forward(params, np.array(AFFINE["x"]))
    affine_dx, grads = affine.backward(cache, np.array(AFFINE["dout"]))
    k_params, k_x = random.split(key)
    batch = layers.dense(50)
    batch_params, _ = batch.init(k_params, (784,))
    batch_y, _ = batch.forward(batch_params, random.normal(k_x, (100, 784)))
    values = {"relu_y": relu_y, "relu_dx": relu_dx, "affine_y": affine_y,
              "affine_dx": affine_dx, "affine_dW": grads["W"], "affine_db": grads["b"][None],
              "batch_shape": list(batch_y.shape)}
    say("note 004's layers:")
    for name, value in values.items():
        say(compare(f"  {name}", value, NOTE_004[name], digits=1) if name != "batch_shape"
            else f"  {name}: {tuple(value)}   (note: {tuple(NOTE_004[name])})")
    matches = {name: bool(np.array_equal(value, NOTE_004[name]))
               for name, value in values.items()}
    return {"values": values, "matches": matches}


def options(parser):
    parser.add_argument("--data", type=Path, default=None,
                        help="directory with the four MNIST-format IDX files (default: digits)")
    parser.add_argument("--dataset", choices=("fashion", "mnist"), default=None,
                        help="which data --data holds (default fashion)")


def load(args, key):
    """The training and test parts (pixels in [0, 1], ink bright) and the data set's name."""
    if args.data is None:
        if args.dataset is not None:
            raise SystemExit(f"{NAME}.py: --dataset {args.dataset} needs --data DIR")
        digits = data.digits()
        split = data.train_test_split(key, digits.x, digits.y, TEST_FRACTION)
        return data.TrainTest(*split, digits.class_names), "digits"
    name = args.dataset or "fashion"
    read = data.fashion_mnist if name == "fashion" else data.mnist
    return read(args.data), name


def confusion(labels, predicted, k):
    """Counts (k, k): row = true class, column = predicted class."""
    return np.bincount(labels * k + predicted, minlength=k * k).reshape(k, k)


def save_model(out, params, stats, dataset, sizes, class_names):
    """params.npz, standardization.npz and model.json: enough for predict.py, without pickle."""
    io.save_params(out / "params.npz", params)
    io.save_tree(out / "standardization.npz", {"mean": stats.mean, "std": stats.std})
    spec = {"model": "funcnet.layers.mlp", "sizes": sizes[1:], "activation": ACTIVATION,
            "loss": "softmax_cross_entropy", "input_shape": list(IMAGE[dataset]["shape"]),
            "input_fit": IMAGE[dataset]["fit"],
            "input_scale": "intensity in [0, 1], bright ink on a dark background",
            "dataset": dataset, "class_names": list(class_names),
            "params": "params.npz", "standardization": "standardization.npz"}
    (out / "model.json").write_text(json.dumps(spec, indent=2) + "\n")


def main(argv=None):
    args = parse_args(NAME, __doc__, argv, extra=options)
    k_split, k_init, k_fit = random.split(random.key(args.seed), 3)
    layer_examples = note_004_layers(random.fold_in(random.key(args.seed), 4))
    parts, dataset = load(args, k_split)
    x_train, y_train, x_test, y_test = parts[:4]
    if args.quick:
        x_train, y_train = x_train[:QUICK["max_train"]], y_train[:QUICK["max_train"]]
        x_test, y_test = x_test[:QUICK["max_test"]], y_test[:QUICK["max_test"]]
    settings = QUICK if args.quick else FULL["digits" if dataset == "digits" else "idx"]
    stats = data.standardizer(x_train, per_feature=False)  # one mean, std
    x_fit, x_eval = data.standardize(x_train, stats), data.standardize(x_test, stats)
    k = len(parts.class_names)
    sizes = [x_train.shape[1], HIDDEN, k]
    say(f"{dataset}: {len(x_train)} training and {len(x_test)} test samples of "
        f"{sizes[0]} pixels, {k} classes; mlp {sizes}, {ACTIVATION}, adam({LEARNING_RATE})")

    net, loss = layers.mlp(sizes[1:], activation=ACTIVATION), losses.softmax_cross_entropy()
    params, _ = net.init(k_init, (sizes[0],))
    train_accuracy = []

    def watch(state, metrics):  # observes the fold; it cannot steer it
        train_accuracy.append(train.evaluate(net, loss, state.params, x_fit, y_train).accuracy)
        if state.epoch % PRINT_EVERY == 0 or state.epoch == settings["epochs"]:
            say(f"  epoch {state.epoch:3d}  loss {metrics['loss']:.4f}  "
                f"train accuracy {train_accuracy[-1]:.4f}  "
                f"test accuracy {metrics['val_accuracy']:.4f}")

    start = time.perf_counter()
    final = train.fit(net, loss, optim.adam(LEARNING_RATE), params, (x_fit, y_train),
                      epochs=settings["epochs"], batch_size=settings["batch_size"], key=k_fit,
                      validation=(x_eval, y_test), observers=(watch,), progress=False)
    seconds = time.perf_counter() - start
    history = final.history

    probs = train.predict(net, final.params, x_eval, loss=loss)
    predicted = probs.argmax(axis=1)
    matrix = confusion(y_test, predicted, k)
    test = train.evaluate(net, loss, final.params, x_eval, y_test)
    metrics = {"test_accuracy": test.accuracy, "train_accuracy": train_accuracy[-1],
               "final_loss": history.loss[-1], "test_loss": test.loss,
               "epochs": final.epoch, "steps": final.step,
               "wrong": int((predicted != y_test).sum()),
               "train_samples": len(x_train), "test_samples": len(x_test),
               "train_seconds": seconds, "confusion_matrix": matrix,
               "note_004_layers": layer_examples}
    config = {"dataset": dataset, "data": args.data, "sizes": sizes, "activation": ACTIVATION,
              "loss": "softmax_cross_entropy", "optimizer": "adam",
              "learning_rate": LEARNING_RATE, **settings,
              "standardization": "one mean and std over all training pixels",
              "test_fraction": TEST_FRACTION if dataset == "digits" else None,
              "quick": args.quick}
    say(f"test accuracy {test.accuracy:.4f} ({metrics['wrong']} wrong of {len(y_test)}), "
        f"train accuracy {train_accuracy[-1]:.4f}, final loss {history.loss[-1]:.4f}, "
        f"{final.epoch} epochs in {seconds:.1f} s")

    save_model(args.out, final.params, stats, dataset, sizes, parts.class_names)
    epochs = np.arange(1, final.epoch + 1)
    plot.save(plot.loss_curves({"train": (epochs, history.loss),
                                "test": (epochs, history.val_loss)},
                               title=f"{dataset}: softmax cross-entropy"),
              args.out / "loss_curves.png")
    plot.save(plot.loss_curves({"train": (epochs, train_accuracy),
                                "test": (epochs, history.val_accuracy)}, ylabel="accuracy",
                               title=f"{dataset}: accuracy"),
              args.out / "accuracy_curves.png")
    plot.save(plot.confusion_matrix(matrix, parts.class_names,
                                    title=f"{dataset}: test set ({test.accuracy:.1%} right)"),
              args.out / "confusion_matrix.png")
    shown = wrong_then_right(predicted, y_test, SHOWN)
    images = x_test[shown].reshape(-1, *IMAGE[dataset]["shape"])
    plot.save(plot.samples_with_probabilities(images, probs[shown], parts.class_names,
                                              true_labels=y_test[shown],
                                              title=f"{dataset}: class name and probability"),
              args.out / "predictions.png")
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    say(f"model and figures in {args.out}")
    return metrics


if __name__ == "__main__":
    main()
