"""DLFS §6.4: a deep net overfits a small training set; do weight decay and dropout narrow the gap?

"Deep Learning from Scratch" (ch06/overfit_weight_decay.py, overfit_dropout.py)
trains a 784-100x6-10 ReLU net on 300 MNIST images with SGD at 0.01, batch
100, and plots training against test accuracy per epoch: the plain net
reaches 100 % on its 300 images and stays far lower on the test set; L2
weight decay (λ = 0.1: epoch 200, train 0.927, test 0.721) and dropout
(drop 0.2) hold training accuracy down and bring the two curves closer. Here
the same three runs use 300 of the packaged 8x8 digits for training and the
other 1497 for testing (pixels in [0, 1], as the book's MNIST): a
64-100x6-10 ReLU net with He weights (the book's default), SGD at 0.01,
batch 100, 200 epochs. Weight decay is the optimizer's ``weight_decay``
option (L2: ``λ W`` added to each weight's gradient, the gradient of
``λ/2 ΣW²``; biases are left alone, as in the book); dropout follows every
hidden ReLU. Training accuracy is measured after each epoch on the whole
training set, in eval mode; the gap is judged on its mean over the last 20
epochs, as one epoch's value jitters by a few points. The 8x8 digits are
easier than MNIST: the plain net's gap is about 0.08, not the book's 0.24,
both regularisers at the book's strengths cost test accuracy, and whether
they narrow the gap depends on the seed; the script prints which.

    python experiments/overfitting.py [--seed N] [--out DIR] [--quick]

Writes to OUT (default runs/overfitting): accuracy_plain.png,
accuracy_weight_decay.png, accuracy_dropout.png (train and test accuracy per
epoch), metrics.json.
"""

from __future__ import annotations

import time

import numpy as np
from _common import parse_args, say, write_metrics

from funcnet import data, init, layers, losses, optim, plot, random, train

NAME = "overfitting"
TRAIN_SAMPLES = 300
HIDDEN = 100
DEPTH = 6  # hidden layers
CLASSES = 10
LEARNING_RATE = 0.01
BATCH_SIZE = 100
EPOCHS = 200
WEIGHT_DECAY = 0.1
DROP_PROB = 0.2
PRINT_EVERY = 50
LAST = 20  # the gap is also averaged over the last LAST epochs: one epoch's is noisy
QUICK = {"epochs": 3, "max_test": 200}
RUNS = {"plain": {"weight_decay": 0.0, "drop_prob": None},
        "weight decay": {"weight_decay": WEIGHT_DECAY, "drop_prob": None},
        "dropout": {"weight_decay": 0.0, "drop_prob": DROP_PROB}}


def network(drop_prob):
    """64 -> 100 x DEPTH -> 10: dense -> relu [-> dropout] per hidden layer, He weights."""
    hidden = []
    for _ in range(DEPTH):
        hidden += [layers.dense(HIDDEN, w_init=init.he), layers.relu()]
        if drop_prob is not None:
            hidden.append(layers.dropout(drop_prob))
    return layers.serial(*hidden, layers.dense(CLASSES, w_init=init.he))


def run(name, settings, train_set, test_set, key, epochs):
    """Train accuracy (observed) and test accuracy (fit's validation) after each epoch."""
    net, loss = network(settings["drop_prob"]), losses.softmax_cross_entropy()
    k_init, k_fit = random.split(key)
    params, _ = net.init(k_init, train_set[0].shape[1:])
    train_accuracy = []

    def watch(state, metrics):  # records into our list; it cannot change the run
        train_accuracy.append(train.evaluate(net, loss, state.params, *train_set).accuracy)
        if state.epoch % PRINT_EVERY == 0 or state.epoch == epochs:
            say(f"  {name:12s} epoch {state.epoch:3d}  loss {metrics['loss']:.4f}  "
                f"train {train_accuracy[-1]:.3f}  test {metrics['val_accuracy']:.3f}")

    optimizer = optim.sgd(LEARNING_RATE, weight_decay=settings["weight_decay"])
    final = train.fit(net, loss, optimizer, params, train_set, epochs=epochs,
                      batch_size=BATCH_SIZE, key=k_fit, validation=test_set,
                      observers=(watch,), progress=False)
    return train_accuracy, list(final.history.val_accuracy)


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    epochs = QUICK["epochs"] if args.quick else EPOCHS
    k_data, k_runs = random.split(random.key(args.seed))
    digits = data.digits()
    order = random.permutation(k_data, len(digits.y))
    chosen, rest = order[:TRAIN_SAMPLES], order[TRAIN_SAMPLES:]
    if args.quick:
        rest = rest[:QUICK["max_test"]]
    train_set = (digits.x[chosen], digits.y[chosen])
    test_set = (digits.x[rest], digits.y[rest])
    say(f"digits: {len(chosen)} training and {len(rest)} test samples; "
        f"64-{HIDDEN}x{DEPTH}-{CLASSES} relu, sgd({LEARNING_RATE}), batch {BATCH_SIZE}, "
        f"{epochs} epochs")

    results = {}
    start = time.perf_counter()
    for (name, settings), key in zip(RUNS.items(), random.split(k_runs, len(RUNS)),
                                     strict=True):
        results[name] = run(name, settings, train_set, test_set, key, epochs)
    seconds = time.perf_counter() - start

    metrics = {}
    say(f"{'run':12s}  {'train':>6}  {'test':>6}  {'gap':>6}  gap over the last {LAST} epochs")
    for name, (train_accuracy, test_accuracy) in results.items():
        gaps = np.subtract(train_accuracy, test_accuracy)
        metrics[name] = {"train_accuracy": train_accuracy[-1],
                         "test_accuracy": test_accuracy[-1], "gap": gaps[-1],
                         "mean_gap_last_epochs": gaps[-LAST:].mean(),
                         "train_curve": train_accuracy, "test_curve": test_accuracy}
        say(f"{name:12s}  {train_accuracy[-1]:6.3f}  {test_accuracy[-1]:6.3f}  {gaps[-1]:6.3f}"
            f"  {gaps[-LAST:].mean():6.3f}")
    plain = metrics["plain"]["mean_gap_last_epochs"]
    narrowed = {name: bool(metrics[name]["mean_gap_last_epochs"] < plain)
                for name in ("weight decay", "dropout")}
    for name, smaller in narrowed.items():
        say(f"{name}: the train-test gap (last {LAST} epochs) "
            f"{'narrowed' if smaller else 'did NOT narrow'}: "
            f"{plain:.3f} -> {metrics[name]['mean_gap_last_epochs']:.3f}")
    say(f"3 runs in {seconds:.1f} s")

    epoch_axis = np.arange(1, epochs + 1)
    for name, (train_accuracy, test_accuracy) in results.items():
        plot.save(plot.loss_curves({"train": (epoch_axis, train_accuracy),
                                    "test": (epoch_axis, test_accuracy)}, ylabel="accuracy",
                                   title=f"{name}: train {train_accuracy[-1]:.3f}, "
                                         f"test {test_accuracy[-1]:.3f}"),
                  args.out / f"accuracy_{name.replace(' ', '_')}.png")

    metrics = {"runs": metrics, "gap_narrowed": narrowed, "seconds": seconds}
    config = {"train_samples": len(chosen), "test_samples": len(rest), "hidden": HIDDEN,
              "depth": DEPTH, "init": "he", "optimizer": "sgd",
              "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE, "epochs": epochs,
              "weight_decay": WEIGHT_DECAY, "drop_prob": DROP_PROB,
              "data": "digits, pixels in [0, 1]", "quick": args.quick}
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
