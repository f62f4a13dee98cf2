"""DLFS §6.2: the initial weights decide whether activations survive the depth and a net learns.

Reproduces the two weight-initialisation experiments of "Deep Learning from
Scratch", chapter 6.2, with funcnet's dense and activation layers:

(a) ``ch06/weight_init_activation_histogram.py``: 1000 standard-normal
    inputs of width 100 go forward through 5 dense layers of 100 units (bias
    0), each followed by sigmoid or ReLU, with weights drawn at std 1 (the
    textbook's first figure), std 0.01, Xavier (std 1/sqrt(100)) and He (std
    sqrt(2/100)). Every initialiser scales the same standard-normal draws.
    The textbook's findings: sigmoid at std 1 saturates at 0 and 1, at std
    0.01 it piles up at 0.5 (every unit says the same), Xavier keeps it
    spread; ReLU at std 0.01 shrinks towards 0 layer by layer, Xavier less so,
    He keeps the same spread in every layer. (With bias 0, ReLU commutes with
    a positive scale, so every initialiser zeroes exactly the same units.)
    Figures: one row of histograms per (activation, initialiser); metrics:
    each layer's mean, std, and the fraction of sigmoid outputs within 0.05
    of 0 or 1 or of ReLU outputs at 0.
(b) ``ch06/weight_init_compare.py``: the textbook's 4-hidden-layer ReLU net
    trained by SGD at 0.01, batch 128, for 2000 steps, with weights from std
    0.01, Xavier and He; on MNIST (784-100x4-10) its batch loss at step 1900
    was 2.305 for std 0.01 (no learning: ln 10 = 2.303 is the loss of a
    uniform guess), 0.377 for Xavier, 0.286 for He. Here the net is
    64-100x4-10 on the packaged 8x8 digits, standardised with one mean and
    std over all training pixels (11 full batches an epoch, 182 epochs: 2002
    steps), each run from the same draws and with the same minibatches; the
    curve is each epoch's mean batch loss, on a log axis.

    python experiments/weight_init.py [--seed N] [--out DIR] [--quick]

Writes to OUT (default runs/weight_init): histograms_ACTIVATION_INIT.png (eight),
loss_curves.png, metrics.json.
"""

import math
import time

import numpy as np
from _common import digits_split, parse_args, say, write_metrics

from funcnet import init, layers, losses, optim, plot, random, train

NAME = "weight_init"
# (a) activations of a deep stack, forward only
SAMPLES, WIDTH, DEPTH = 1000, 100, 5
HISTOGRAM_INITS = {"std 1": init.normal(1.0), "std 0.01": init.normal(0.01),
                   "Xavier": init.xavier, "He": init.he}
ACTIVATIONS = ("sigmoid", "relu")
NEAR = 0.05  # a sigmoid output within NEAR of 0 or 1 counts as saturated
# (b) training
TRAINING_INITS = {"std 0.01": init.normal(0.01), "Xavier": init.xavier, "He": init.he}
HIDDEN = (100, 100, 100, 100)
LEARNING_RATE = 0.01
BATCH_SIZE = 128
EPOCHS = 182  # 11 full batches an epoch: 2002 steps, the textbook's 2000
QUICK_EPOCHS = 1
TEST_FRACTION = 0.2
CHANCE_LOSS = math.log(10)  # the loss of a uniform guess over 10 classes
STUCK = 0.05  # "did not learn": the final loss is within STUCK of CHANCE_LOSS


def layer_outputs(x, w_init, activation, key):
    """Each layer's activations for the input x (SAMPLES, WIDTH): DEPTH arrays of x's shape."""
    dense, act = layers.dense(WIDTH, w_init=w_init), layers.activation_layer(activation)
    outputs = []
    for k in random.split(key, DEPTH):
        params, _ = dense.init(k, (WIDTH,))
        z, _ = dense.forward(params, x)
        x, _ = act.forward((), z)
        outputs.append(x)
    return outputs


def statistics(outputs, activation):
    """Per layer: mean, std, and the fraction saturated (sigmoid) or at zero (ReLU)."""
    if activation == "sigmoid":
        extreme = [np.mean((a < NEAR) | (a > 1 - NEAR)) for a in outputs]
    else:
        extreme = [np.mean(a == 0) for a in outputs]
    return {"mean": [a.mean() for a in outputs], "std": [a.std() for a in outputs],
            "saturated" if activation == "sigmoid" else "zero": extreme}


def through_layers(out, key):
    """(a): activation statistics per activation, initialiser and layer; the histograms drawn."""
    k_x, k_layers = random.split(key)
    say(f"(a) {SAMPLES} standard-normal inputs through {DEPTH} layers of {WIDTH} units")
    x = random.normal(k_x, (SAMPLES, WIDTH))
    found = {}
    for activation in ACTIVATIONS:
        found[activation] = {}
        extreme = "saturated" if activation == "sigmoid" else "zero"
        for label, w_init in HISTOGRAM_INITS.items():
            outputs = layer_outputs(x, w_init, activation, k_layers)
            row = found[activation][label] = statistics(outputs, activation)
            say(f"  {activation:7s} {label:8s} std per layer "
                + " ".join(f"{s:.2g}" for s in row["std"])
                + f"   {extreme} " + " ".join(f"{e:.0%}" for e in row[extreme]))
            panels = [(f"layer {i + 1}", a) for i, a in enumerate(outputs)]
            title = (f"{activation}, weights {label}: std of the activations "
                     f"{row['std'][0]:.2g} in layer 1, {row['std'][-1]:.2g} in layer {DEPTH}")
            file = f"histograms_{activation}_{label.lower().replace(' ', '_')}.png"
            plot.save(plot.activation_histograms(panels, title=title), out / file)
    return found


def training_curves(out, key, epochs):
    """(b): one net trained from each initialiser's draws; per initialiser its numbers."""
    k_split, k_init, k_fit = random.split(key, 3)
    x_train, y_train, x_test, y_test = digits_split(k_split, TEST_FRACTION)
    sizes = [x_train.shape[1], *HIDDEN, 10]
    steps_per_epoch = len(x_train) // BATCH_SIZE
    loss = losses.softmax_cross_entropy()
    say(f"(b) digits: mlp {sizes}, ReLU, SGD {LEARNING_RATE}, batch {BATCH_SIZE}, "
        f"{epochs} epochs of {steps_per_epoch} steps")
    curves, rows, start = {}, {}, time.perf_counter()
    for label, w_init in TRAINING_INITS.items():
        net = layers.mlp(sizes[1:], activation="relu", w_init=w_init)
        params, _ = net.init(k_init, (sizes[0],))
        final = train.fit(net, loss, optim.sgd(LEARNING_RATE), params, (x_train, y_train),
                          epochs=epochs, batch_size=BATCH_SIZE, key=k_fit, drop_last=True,
                          progress=False)
        curve = np.array(final.history.loss)
        rows[label] = {
            "first_loss": curve[0], "final_loss": curve[-1],
            "test_accuracy": train.evaluate(net, loss, final.params, x_test, y_test).accuracy}
        curves[label] = (np.arange(1, epochs + 1) * steps_per_epoch, curve)
        say(f"  {label:8s} loss: first epoch {curve[0]:.4f}, last epoch {curve[-1]:.4f}, "
            f"test accuracy {rows[label]['test_accuracy']:.4f} "
            f"({time.perf_counter() - start:.1f} s)")
    seconds = time.perf_counter() - start
    plot.save(plot.loss_curves(curves, xlabel="step", ylabel="mean batch loss of the epoch",
                               log_y=True, title=f"digits, SGD {LEARNING_RATE}: initial weights"),
              out / "loss_curves.png")
    say(f"trained {len(rows)} nets in {seconds:.1f} s")
    config = {"sizes": sizes, "activation": "relu", "inits": list(TRAINING_INITS),
              "optimizer": "sgd", "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE,
              "epochs": epochs, "steps": epochs * steps_per_epoch,
              "test_fraction": TEST_FRACTION, "stuck_within": STUCK,
              "standardization": "one mean and std over all training pixels"}
    return rows, seconds, config


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    k_layers, k_training = random.split(random.key(args.seed))
    activations = through_layers(args.out, k_layers)
    training, seconds, training_config = training_curves(
        args.out, k_training, QUICK_EPOCHS if args.quick else EPOCHS)

    final_loss = {label: row["final_loss"] for label, row in training.items()}
    stuck = abs(final_loss["std 0.01"] - CHANCE_LOSS) <= STUCK
    learned = [label for label in ("Xavier", "He") if final_loss[label] < CHANCE_LOSS - STUCK]
    say(f"textbook: std 0.01 does not learn (2.305 at step 1900). Here: final loss "
        f"{final_loss['std 0.01']:.4f}, {'within' if stuck else 'NOT within'} {STUCK} of "
        f"ln 10 = {CHANCE_LOSS:.4f}: {'matches' if stuck else 'DIFFERS'}")
    say(f"textbook: Xavier and He learn, He faster. Here learned: {', '.join(learned) or 'none'}"
        f"; final loss Xavier {final_loss['Xavier']:.4f}, He {final_loss['He']:.4f}")

    metrics = {"activations": activations, "training": training, "final_loss": final_loss,
               "small_init_stuck_at_chance": stuck, "learned": learned,
               "train_seconds": seconds}
    config = {"activations": {"samples": SAMPLES, "width": WIDTH, "depth": DEPTH,
                              "inits": list(HISTOGRAM_INITS), "activations": ACTIVATIONS,
                              "saturated_within": NEAR},
              "training": training_config, "quick": args.quick}
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    say(f"figures and metrics in {args.out}")
    return metrics


if __name__ == "__main__":
    main()
