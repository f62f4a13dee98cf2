"""Note 000, regression: a 1-3-1 sigmoid network learns sin(x), one sample at a time.

Reproduces the first experiment of note 000 (SEEDS.md): inputs 0, 0.1, ..., 6.2
scaled to (x - π)/π, targets sin(x); a sigmoid hidden layer of 3 units and an
identity output; loss ½·Σ(y - t)²; plain SGD at learning rate 0.1 with batch
size 1, the samples shuffled every epoch; 2001 epochs; every weight and bias
drawn from N(0, 0.01²). Every 200 epochs it prints the epoch's mean error as
the note does and keeps the network's outputs, drawn as red + over the sine.

    python experiments/sine_regression.py [--seed N] [--out DIR] [--quick]
"""

import time

import _common
import numpy as np

from funcnet import data, init, layers, losses, optim, plot, random, train

HIDDEN = 3
INIT_STD = 0.01  # the note's wb_width: weights AND biases ~ N(0, 0.01²)
LEARNING_RATE = 0.1
BATCH_SIZE = 1
EPOCHS = 2001
INTERVAL = 200  # epochs between snapshots and printed errors
TARGET_ERROR = 1e-3  # the fit must end well under the note's 0.01 (the textbook reaches ~1e-5)
QUICK_EPOCHS, QUICK_INTERVAL = 21, 10


def network() -> layers.Layer:
    """1 -> 3 -> 1: dense, sigmoid, dense, identity, every parameter from N(0, INIT_STD²)."""
    normal = init.normal(INIT_STD)
    return layers.serial(layers.dense(HIDDEN, w_init=normal, b_init=normal), layers.sigmoid(),
                         layers.dense(1, w_init=normal, b_init=normal), layers.identity())



def main(argv=None):
    args = _common.parse_args("sine_regression", __doc__, argv)
    epochs, interval = (QUICK_EPOCHS, QUICK_INTERVAL) if args.quick else (EPOCHS, INTERVAL)
    sine = data.sine_regression()
    net, loss = network(), losses.sum_of_squares()
    init_key, train_key = random.split(random.key(args.seed))
    params, _ = net.init(init_key, (1,))

    start = time.perf_counter()
    final = train.fit(net, loss, optim.sgd(LEARNING_RATE), params, (sine.x, sine.t),
                      epochs=epochs, batch_size=BATCH_SIZE, key=train_key,
                      snapshot=(sine.x, interval),
                      observers=[_common.print_every(interval, epochs)])
    seconds = time.perf_counter() - start

    # The history's loss is the mean over the epoch of each sample's ½(y - t)², taken just
    # before that sample's step: the note's total_error / n_data. final_error is the same
    # mean with the final parameters.
    history = final.history
    final_error = train.evaluate(net, loss, final.params, sine.x, sine.t).loss / len(sine.x)
    metrics = {
        "final_error": final_error,
        "interval_errors": {str(e): history.loss[e] for e in history.snapshot_epochs},
        "epochs": epochs,
        "steps": final.step,
    }
    _common.say(f"trained {epochs} epochs ({final.step} steps) in {seconds:.1f} s")
    _common.say(f"final mean error ½(y - t)²: {final_error:.3e} "
                f"(must be < {TARGET_ERROR:g}; the note asks for well under 0.01)")

    # Snapshots are taken after each recorded epoch's steps (the note draws the outputs
    # it saw during that epoch, one step earlier for each sample).
    snapshots = [(e, y[:, 0]) for e, y in zip(history.snapshot_epochs, history.snapshots,
                                               strict=True)]
    plot.save(plot.regression_snapshots(sine.x[:, 0], sine.t[:, 0], snapshots,
                                        xlabel="input (x - π) / π", ylabel="sin(x)",
                                        title="note 000: a 1-3-1 network learning sin(x)"),
              args.out / "snapshots.png")
    plot.save(plot.loss_curves({"mean ½(y - t)² over the epoch": (np.arange(epochs),
                                                                  history.loss)},
                               ylabel="mean error", log_y=True,
                               title="note 000 regression: error per epoch"),
              args.out / "loss.png")
    config = {"hidden": HIDDEN, "init_std": INIT_STD, "learning_rate": LEARNING_RATE,
              "batch_size": BATCH_SIZE, "epochs": epochs, "interval": interval,
              "quick": args.quick}
    _common.write_metrics(args.out, "sine_regression", config=config, seed=args.seed,
                          metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
