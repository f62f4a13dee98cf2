"""DLFS §7: a small convolutional net on the 8x8 digits, against the MLP of classifier.py.

"Deep Learning from Scratch" ch. 7 trains SimpleConvNet (conv 30 filters
5x5 -> relu -> pool 2x2 -> affine 100 -> relu -> affine 10) on MNIST with Adam
at 1e-3. Here its miniature runs on the packaged 8x8 digits as NCHW images
(1, 8, 8): conv2d(16 filters 3x3, padding 1) -> relu -> max_pool2d(2) ->
flatten -> dense(64) -> relu -> dense(10), trained on logits with the fused
softmax cross-entropy. In the same script, with the same split, the same
standardisation, the same keys and the same settings, it trains the
64-100-10 ReLU MLP of experiments/classifier.py (so ``mlp_test_accuracy`` is
that script's ``test_accuracy``), and reports whether the conv net is at
least as accurate on the test set (``beats_mlp``, ties count). Settings, as in
classifier.py: 20 % of the digits held out by a key split, inputs standardised
with one mean and one std over every training pixel, He weights, Adam at
1e-3, batch 32, 30 epochs.

    python experiments/cnn.py [--seed N] [--out DIR] [--quick]

Writes to OUT (default runs/cnn): loss_curves.png, accuracy_curves.png (train
and test, both nets), metrics.json.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse_args, say, write_metrics

from funcnet import data, init, layers, losses, optim, plot, random, train, tree

NAME = "cnn"
TEST_FRACTION = 0.2
FILTERS = 16
KERNEL = 3
CNN_HIDDEN = 64
MLP_HIDDEN = 100
CLASSES = 10
LEARNING_RATE = 1e-3
EPOCHS = 30
BATCH_SIZE = 32
QUICK = {"epochs": 2, "max_train": 300, "max_test": 100}
PRINT_EVERY = 5


def conv_net():
    """conv 3x3 (same size) -> relu -> 2x2 max pool -> flatten -> 64 -> relu -> 10."""
    return layers.serial(layers.conv2d(FILTERS, KERNEL, padding=KERNEL // 2), layers.relu(),
                         layers.max_pool2d(2), layers.flatten(),
                         layers.dense(CNN_HIDDEN, w_init=init.he), layers.relu(),
                         layers.dense(CLASSES, w_init=init.he), name="cnn")


def run(name, net, train_set, test_set, k_init, k_fit, epochs):
    """Train with Adam; the final state and the training accuracy after each epoch."""
    loss = losses.softmax_cross_entropy()
    params, _ = net.init(k_init, train_set[0].shape[1:])
    train_accuracy = []

    def watch(state, metrics):  # records into our list; it cannot change the run
        train_accuracy.append(train.evaluate(net, loss, state.params, *train_set).accuracy)
        if state.epoch % PRINT_EVERY == 0 or state.epoch == epochs:
            say(f"  {name}  epoch {state.epoch:3d}  loss {metrics['loss']:.4f}  "
                f"train accuracy {train_accuracy[-1]:.4f}  "
                f"test accuracy {metrics['val_accuracy']:.4f}")

    start = time.perf_counter()
    final = train.fit(net, loss, optim.adam(LEARNING_RATE), params, train_set, epochs=epochs,
                      batch_size=BATCH_SIZE, key=k_fit, validation=test_set,
                      observers=(watch,), progress=False)
    return final, train_accuracy, time.perf_counter() - start


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    k_split, k_init, k_fit = random.split(random.key(args.seed), 3)  # as classifier.py
    digits = data.digits(images=True)
    x_train, y_train, x_test, y_test = data.train_test_split(k_split, digits.x, digits.y,
                                                             TEST_FRACTION)
    epochs = QUICK["epochs"] if args.quick else EPOCHS
    if args.quick:
        x_train, y_train = x_train[:QUICK["max_train"]], y_train[:QUICK["max_train"]]
        x_test, y_test = x_test[:QUICK["max_test"]], y_test[:QUICK["max_test"]]
    stats = data.standardizer(x_train, per_feature=False)  # one mean, std
    images = (data.standardize(x_train, stats), data.standardize(x_test, stats))
    flat = tuple(x.reshape(len(x), -1) for x in images)
    say(f"digits: {len(x_train)} training and {len(x_test)} test images {x_train.shape[1:]}; "
        f"adam({LEARNING_RATE}), batch {BATCH_SIZE}, {epochs} epochs")

    nets = {"cnn": (conv_net(), images), "mlp": (layers.mlp([MLP_HIDDEN, CLASSES]), flat)}
    results = {}
    for name, (net, (x_fit, x_eval)) in nets.items():
        final, train_accuracy, seconds = run(name, net, (x_fit, y_train), (x_eval, y_test),
                                             k_init, k_fit, epochs)
        predicted = train.predict(net, final.params, x_eval).argmax(axis=1)
        results[name] = {"history": final.history, "train_accuracy": train_accuracy,
                         "test_accuracy": final.history.val_accuracy[-1], "seconds": seconds,
                         "wrong": int((predicted != y_test).sum()),
                         "parameters": sum(leaf.size for leaf in tree.leaves(final.params))}
        say(f"{name}: test accuracy {results[name]['test_accuracy']:.4f}, train accuracy "
            f"{train_accuracy[-1]:.4f}, {results[name]['parameters']} parameters, "
            f"{seconds:.1f} s")
    cnn, mlp = results["cnn"], results["mlp"]
    beats = bool(cnn["test_accuracy"] >= mlp["test_accuracy"])
    say(f"cnn {cnn['test_accuracy']:.4f} ({cnn['wrong']} wrong) vs mlp "
        f"{mlp['test_accuracy']:.4f} ({mlp['wrong']} wrong) of {len(y_test)}: the cnn "
        f"{'is at least as accurate' if beats else 'is LESS accurate'}")

    epoch_axis = np.arange(1, epochs + 1)
    plot.save(plot.loss_curves({f"{name} {part}": (epoch_axis, values)
                                for name, r in results.items()
                                for part, values in (("train", r["history"].loss),
                                                     ("test", r["history"].val_loss))},
                               title="digits: softmax cross-entropy"),
              args.out / "loss_curves.png")
    plot.save(plot.loss_curves({f"{name} {part}": (epoch_axis, values)
                                for name, r in results.items()
                                for part, values in (("train", r["train_accuracy"]),
                                                     ("test", r["history"].val_accuracy))},
                               ylabel="accuracy", title="digits: accuracy"),
              args.out / "accuracy_curves.png")

    metrics = {"test_accuracy": cnn["test_accuracy"], "mlp_test_accuracy": mlp["test_accuracy"],
               "beats_mlp": beats, "train_accuracy": cnn["train_accuracy"][-1],
               "mlp_train_accuracy": mlp["train_accuracy"][-1], "wrong": cnn["wrong"],
               "mlp_wrong": mlp["wrong"], "parameters": cnn["parameters"],
               "mlp_parameters": mlp["parameters"], "train_seconds": cnn["seconds"],
               "mlp_train_seconds": mlp["seconds"], "test_samples": len(y_test)}
    config = {"cnn": f"conv2d({FILTERS}, {KERNEL}, padding={KERNEL // 2}) relu max_pool2d(2) "
                     f"flatten dense({CNN_HIDDEN}) relu dense({CLASSES})",
              "mlp": [64, MLP_HIDDEN, CLASSES], "loss": "softmax_cross_entropy",
              "optimizer": "adam", "learning_rate": LEARNING_RATE, "epochs": epochs,
              "batch_size": BATCH_SIZE, "test_fraction": TEST_FRACTION,
              "standardization": "one mean and std over all training pixels",
              "quick": args.quick}
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
