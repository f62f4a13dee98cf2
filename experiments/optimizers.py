"""DLFS §6.1: SGD, Momentum, Nesterov, AdaGrad, RMSProp and Adam, on a bowl and on the digits.

Reproduces the two optimizer comparisons of "Deep Learning from Scratch",
chapter 6.1, with funcnet's own optimizers:

(a) ``ch06/optimizer_compare_naive.py``: 30 steps on f(x, y) = x²/20 + y²
    from (-7, 2), gradient (x/10, 2y) written by hand, at the textbook's rates
    (SGD 0.95, Momentum 0.1, AdaGrad 1.5, Adam 0.3). The textbook leaves
    Nesterov and RMSProp out of this figure; we give Nesterov Momentum's 0.1
    (so the two differ only in the look-ahead) and RMSProp 0.15 with its
    default decay 0.99 (``h`` starts at 0, so its first step is 10 lr = 1.5
    along each axis). Figures: the paths over the contours, together and one
    by one.
(b) ``ch06/optimizer_compare_mnist.py``: a 4-hidden-layer ReLU net with He
    init trained from one initial point by each optimizer, batch 128, the same
    minibatches in the same order, the textbook's default rates (0.01; Adam
    0.001) for 2000 steps. The textbook's MNIST net (784-100x4-10) reached
    batch losses of SGD 0.150, Momentum 0.050, AdaGrad 0.016, Adam 0.032 at
    step 1900. Here the net is 64-100x4-10 on the packaged 8x8 digits (1437
    training samples, standardised with one mean and std over all training
    pixels, so 11 full batches an epoch and 182 epochs make 2002 steps); the
    loss curve is each epoch's mean batch loss, on a log axis. The numbers
    differ from MNIST's; the finding to see is the order: SGD slowest.

    python experiments/optimizers.py [--seed N] [--out DIR] [--quick]

Writes to OUT (default runs/optimizers): paths.png (every path), paths_sgd.png ...
paths_adam.png (one each), loss_curves.png, metrics.json.
"""

import time

import numpy as np
from _common import digits_split, parse_args, say, write_metrics

from funcnet import init, layers, losses, optim, plot, random, train

NAME = "optimizers"
OPTIMIZERS = {"SGD": optim.sgd, "Momentum": optim.momentum, "Nesterov": optim.nesterov,
              "AdaGrad": optim.adagrad, "RMSProp": optim.rmsprop, "Adam": optim.adam}
# (a) the bowl
START = (-7.0, 2.0)
PATH_STEPS = 30
BOWL_RATES = {"SGD": 0.95, "Momentum": 0.1, "Nesterov": 0.1, "AdaGrad": 1.5, "RMSProp": 0.15,
              "Adam": 0.3}
XLIM, YLIM = (-8.0, 2.0), (-2.5, 2.5)  # the textbook's (-10, 10) x (-5, 5), zoomed in
# (b) the digits
HIDDEN = (100, 100, 100, 100)
DIGITS_RATES = {"SGD": 0.01, "Momentum": 0.01, "Nesterov": 0.01, "AdaGrad": 0.01,
                "RMSProp": 0.01, "Adam": 0.001}
BATCH_SIZE = 128
EPOCHS = 182  # 11 full batches an epoch: 2002 steps, the textbook's 2000
QUICK_EPOCHS = 1
TEST_FRACTION = 0.2
FAST_LOSS = 0.1  # epochs_to_fast_loss: the first epoch whose mean batch loss is below this


def f(x, y):
    """The textbook's bowl, lowest (0) at (0, 0) and twenty times flatter along x."""
    return x**2 / 20 + y**2


def grad_f(p):
    """The gradient of f at p = [x, y], by hand: [x/10, 2y]."""
    return np.array([p[0] / 10, 2 * p[1]])


def descend(optimizer, steps):
    """The points visited from START: an array (steps + 1, 2)."""
    p = np.array(START)
    state, path = optimizer.init(p), [p]
    for _ in range(steps):
        p, state = optimizer.update(grad_f(p), state, p)
        path.append(p)
    return np.array(path)


def draw_paths(paths, file):
    plot.save(plot.optimizer_paths(f, paths, xlim=XLIM, ylim=YLIM, minimum=(0.0, 0.0),
                                   title=f"x²/20 + y²: {PATH_STEPS} steps from {START}"), file)


def on_bowl(out):
    """(a): each optimizer's path on f, drawn; per optimizer its end and distance to (0, 0)."""
    say(f"(a) f(x, y) = x²/20 + y² from {START}, {PATH_STEPS} steps")
    paths = {name: descend(OPTIMIZERS[name](rate), PATH_STEPS)
             for name, rate in BOWL_RATES.items()}
    labels = {name: f"{name} ({rate})" for name, rate in BOWL_RATES.items()}
    draw_paths({labels[name]: path for name, path in paths.items()}, out / "paths.png")
    rows = {}
    for name, path in paths.items():
        draw_paths({labels[name]: path}, out / f"paths_{name.lower()}.png")  # like its panels
        (x, y) = end = path[-1]
        rows[name] = {"learning_rate": BOWL_RATES[name], "final_point": end,
                      "distance": float(np.hypot(x, y)), "final_value": float(f(x, y))}
        say(f"  {name:9s} lr {BOWL_RATES[name]:<5} final ({x:+.4f}, {y:+.4f})  "
            f"distance to (0, 0) {rows[name]['distance']:.4f}  f {rows[name]['final_value']:.2e}")
    return {"start": START, "start_value": f(*START), "optimizers": rows}


def on_digits(out, key, epochs):
    """(b): one net trained by each optimizer from one start; per optimizer its numbers."""
    k_split, k_init, k_fit = random.split(key, 3)
    x_train, y_train, x_test, y_test = digits_split(k_split, TEST_FRACTION)
    sizes = [x_train.shape[1], *HIDDEN, 10]
    steps_per_epoch = len(x_train) // BATCH_SIZE
    net = layers.mlp(sizes[1:], activation="relu", w_init=init.he)
    loss = losses.softmax_cross_entropy()
    params, _ = net.init(k_init, (sizes[0],))
    say(f"(b) digits: mlp {sizes}, ReLU, He init, batch {BATCH_SIZE}, {epochs} epochs of "
        f"{steps_per_epoch} steps")
    curves, rows, start = {}, {}, time.perf_counter()
    for name, rate in DIGITS_RATES.items():
        final = train.fit(net, loss, OPTIMIZERS[name](rate), params, (x_train, y_train),
                          epochs=epochs, batch_size=BATCH_SIZE, key=k_fit, drop_last=True,
                          progress=False)
        curve = np.array(final.history.loss)
        below = np.flatnonzero(curve < FAST_LOSS)
        rows[name] = {
            "learning_rate": rate, "final_loss": curve[-1],
            "test_accuracy": train.evaluate(net, loss, final.params, x_test, y_test).accuracy,
            "epochs_to_fast_loss": int(below[0]) + 1 if below.size else None}
        curves[f"{name} ({rate})"] = (np.arange(1, epochs + 1) * steps_per_epoch, curve)
        say(f"  {name:9s} final loss {curve[-1]:.2e}  ({time.perf_counter() - start:.1f} s)")
    seconds = time.perf_counter() - start
    plot.save(plot.loss_curves(curves, xlabel="step", ylabel="mean batch loss of the epoch",
                               log_y=True, title=f"digits, mlp {sizes}: training loss"),
              out / "loss_curves.png")
    say(f"trained {len(rows)} nets in {seconds:.1f} s")
    config = {"sizes": sizes, "activation": "relu", "w_init": "he",
              "learning_rates": DIGITS_RATES, "batch_size": BATCH_SIZE, "epochs": epochs,
              "steps": epochs * steps_per_epoch, "fast_loss": FAST_LOSS,
              "test_fraction": TEST_FRACTION,
              "standardization": "one mean and std over all training pixels"}
    return rows, seconds, config


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    bowl = on_bowl(args.out)
    rows, seconds, digits_config = on_digits(args.out, random.key(args.seed),
                                             QUICK_EPOCHS if args.quick else EPOCHS)

    say(f"\n{'optimizer':10s}{'rate':>7s}{'final loss':>12s}{'test acc':>10s}"
        f"{f'epochs to {FAST_LOSS}':>16s}")
    for name, row in rows.items():
        reached = row["epochs_to_fast_loss"]
        say(f"{name:10s}{row['learning_rate']:>7}{row['final_loss']:>12.2e}"
            f"{row['test_accuracy']:>10.4f}{'never' if reached is None else reached:>16}")
    final_losses = {name: row["final_loss"] for name, row in rows.items()}
    sgd_slowest = max(final_losses, key=final_losses.get) == "SGD"
    faster = [name for name, value in final_losses.items() if value < final_losses["SGD"]]
    say(f"textbook: SGD is the slowest. Here: {'matches' if sgd_slowest else 'DIFFERS'} "
        f"(SGD's final loss {final_losses['SGD']:.2e} is "
        f"{'the highest' if sgd_slowest else 'not the highest'})")
    say(f"textbook: momentum and adaptive methods learn faster. Here below SGD: "
        f"{', '.join(faster) or 'none'} ({len(faster)} of {len(final_losses) - 1})")
    say("lowest final loss first: " + " < ".join(sorted(final_losses, key=final_losses.get)))

    metrics = {"bowl": bowl, "digits": rows, "sgd_slowest": sgd_slowest,
               "faster_than_sgd": faster, "train_seconds": seconds}
    config = {"bowl": {"f": "x**2 / 20 + y**2", "start": START, "steps": PATH_STEPS,
                       "learning_rates": BOWL_RATES},
              "digits": digits_config, "quick": args.quick}
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    say(f"figures and metrics in {args.out}")
    return metrics


if __name__ == "__main__":
    main()
