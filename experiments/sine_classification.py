"""Note 000, classification: a 2-6-2 network learns which side of y = sin(πx) a point lies.

Reproduces the second experiment of note 000 (SEEDS.md): the 21x21 grid of
points in [-1, 1]², step 0.1, class [0, 1] below y = sin(πx) and [1, 0] on or
above it; a sigmoid hidden layer of 6 units and a softmax output; the
cross-entropy of the softmax probabilities with the note's 1e-7 guard inside
the log; plain SGD at learning rate 0.1 with batch size 1, shuffled every
epoch; 101 epochs; every weight and bias from N(0, 0.01²). Every 10 epochs it
prints the epoch's mean error and keeps the predicted classes; the figure
shows the points by predicted class with the true boundary dashed.

    python experiments/sine_classification.py [--seed N] [--out DIR] [--quick]
"""

import time

import _common
import numpy as np

from funcnet import data, init, layers, losses, optim, plot, random, train

HIDDEN = 6
CLASSES = 2
INIT_STD = 0.01
LEARNING_RATE = 0.1
BATCH_SIZE = 1
EPOCHS = 101
INTERVAL = 10
TARGET_ACCURACY = 0.95
CLASS_NAMES = ("above sin(πx)", "below sin(πx)")  # one-hot [1, 0] and [0, 1]
QUICK_EPOCHS, QUICK_INTERVAL = 6, 5


def network() -> layers.Layer:
    """2 -> 6 -> 2: dense, sigmoid, dense, softmax, every parameter from N(0, INIT_STD²)."""
    normal = init.normal(INIT_STD)
    return layers.serial(layers.dense(HIDDEN, w_init=normal, b_init=normal), layers.sigmoid(),
                         layers.dense(CLASSES, w_init=normal, b_init=normal), layers.softmax())



def main(argv=None):
    args = _common.parse_args("sine_classification", __doc__, argv)
    epochs, interval = (QUICK_EPOCHS, QUICK_INTERVAL) if args.quick else (EPOCHS, INTERVAL)
    grid = data.sine_boundary()
    # The note's loss: cross-entropy on the softmax layer's probabilities, log(y + 1e-7).
    net, loss = network(), losses.cross_entropy()
    init_key, train_key = random.split(random.key(args.seed))
    params, _ = net.init(init_key, (2,))

    start = time.perf_counter()
    final = train.fit(net, loss, optim.sgd(LEARNING_RATE), params, (grid.x, grid.t),
                      epochs=epochs, batch_size=BATCH_SIZE, key=train_key,
                      snapshot=(grid.x, interval),
                      observers=[_common.print_every(interval, epochs)])
    seconds = time.perf_counter() - start

    history = final.history
    accuracies = [train.accuracy(p, grid.t) for p in history.snapshots]
    probabilities = train.predict(net, final.params, grid.x)
    accuracy = train.accuracy(probabilities, grid.t)
    metrics = {
        "accuracy": accuracy,
        "final_loss": train.evaluate(net, loss, final.params, grid.x, grid.t).loss,
        "interval_errors": {str(e): history.loss[e] for e in history.snapshot_epochs},
        "interval_accuracy": dict(zip(map(str, history.snapshot_epochs), accuracies,
                                      strict=True)),
        "epochs": epochs,
        "steps": final.step,
    }
    _common.say(f"trained {epochs} epochs ({final.step} steps) in {seconds:.1f} s")
    _common.say(f"accuracy on the 441-point grid: {accuracy:.4f} "
                f"(must be >= {TARGET_ACCURACY}: the two regions separated)")

    boundary_x = np.linspace(-1.0, 1.0, 201)
    boundary = (boundary_x, np.sin(np.pi * boundary_x))
    plot.save(plot.decision_regions(grid.x, probabilities.argmax(axis=1), boundary=boundary,
                                    class_names=CLASS_NAMES,
                                    title=f"after {epochs} epochs: accuracy {accuracy:.3f}"),
              args.out / "regions.png")
    first, first_accuracy = history.snapshots[0], accuracies[0]
    plot.save(plot.decision_regions(grid.x, first.argmax(axis=1), boundary=boundary,
                                    class_names=CLASS_NAMES,
                                    title=f"after epoch 0: accuracy {first_accuracy:.3f}"),
              args.out / "regions_first_epoch.png")
    plot.save(plot.loss_curves({"mean cross-entropy over the epoch": (np.arange(epochs),
                                                                     history.loss)},
                               ylabel="mean error", log_y=True,
                               title="note 000 classification: error per epoch"),
              args.out / "loss.png")
    plot.save(plot.loss_curves({"accuracy on the grid": (history.snapshot_epochs, accuracies)},
                               ylabel="accuracy", title="accuracy at the snapshot epochs"),
              args.out / "accuracy.png")
    config = {"hidden": HIDDEN, "init_std": INIT_STD, "learning_rate": LEARNING_RATE,
              "batch_size": BATCH_SIZE, "epochs": epochs, "interval": interval,
              "quick": args.quick}
    _common.write_metrics(args.out, "sine_classification", config=config, seed=args.seed,
                          metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
