"""DLFS §6.3: batch normalisation trains a deep ReLU net whose weights start too small to learn.

"Deep Learning from Scratch" (ch06/batch_norm_test.py) trains a 784-100x5-10
ReLU net on 1000 MNIST images, with and without batch norm, for weights drawn
from N(0, scale²) at scales from 1 down to 1e-4, and shows that with batch
norm the training accuracy rises at every scale while the plain net stays at
chance once the weights are small. Here the same experiment runs on 1000 of
the packaged 8x8 digits (pixels in [0, 1], as the book's MNIST): a
64-100x5-10 net, each hidden layer dense -> relu, or dense -> batch_norm ->
relu with the book's eps of 1e-6; every weight (the output layer's too) from
N(0, scale²), biases 0; plain SGD at 0.01, batch 100, 20 epochs. These are the
book's settings, all kept: the full run takes 20-40 s. Training
accuracy is measured after each epoch on the whole training set in eval mode
(batch norm then uses its running statistics, as the book's ``accuracy`` does).

A plain net that blows up (a NaN or inf loss or gradient) stops with
``NonFiniteError``; it is recorded as diverged: its final accuracy is NaN and
the last finite epoch's accuracy is kept beside it.

    python experiments/batch_norm.py [--seed N] [--out DIR] [--quick]

Writes to OUT (default runs/batch_norm): final_accuracy.png (final training
accuracy against log10 of the scale), accuracy_curves.png (accuracy per
epoch at the largest scale, the plain net's best and the smallest), metrics.json.
"""

from __future__ import annotations

import math
import time

import numpy as np
from _common import parse_args, say, write_metrics

from funcnet import data, init, layers, losses, optim, plot, random, train
from funcnet.errors import NonFiniteError

NAME = "batch_norm"
HIDDEN = 100
DEPTH = 5  # hidden layers
CLASSES = 10
TRAIN_SAMPLES = 1000
SCALES = np.logspace(0, -4, 12)  # std of every initial weight
BN_EPS = 1e-6  # the book's ``10e-7``; at 1e-5 the eps swamps the variance of tiny weights
LEARNING_RATE = 0.01
BATCH_SIZE = 100
EPOCHS = 20
QUICK = {"samples": 200, "scales": np.logspace(0, -4, 3), "epochs": 5}
NETS = ("batch norm", "plain")


def network(scale, *, batch_norm):
    """64 -> 100 x DEPTH -> 10; each hidden layer dense[-> batch_norm] -> relu."""
    w_init = init.normal(scale)
    hidden = []
    for _ in range(DEPTH):
        hidden.append(layers.dense(HIDDEN, w_init=w_init))
        if batch_norm:
            hidden.append(layers.batch_norm(eps=BN_EPS))
        hidden.append(layers.relu())
    return layers.serial(*hidden, layers.dense(CLASSES, w_init=w_init))


def run(net, x, y, key, epochs):
    """Training accuracy after each epoch, and the error that stopped a diverging run (or None)."""
    k_init, k_fit = random.split(key)
    params, _ = net.init(k_init, x.shape[1:])
    loss = losses.softmax_cross_entropy()
    accuracy = []

    def watch(state, metrics):  # records into our list; it cannot change the run
        try:
            ev = train.evaluate(net, loss, state.params, x, y, model_state=state.model_state)
        except FloatingPointError as error:  # finite params whose outputs overflow
            raise NonFiniteError(f"batch_norm: evaluating the params after epoch "
                                 f"{state.epoch - 1}: {error}") from error
        accuracy.append(ev.accuracy)

    try:  # numpy raising on overflow makes fit name the first step that overflowed
        with np.errstate(over="raise", invalid="raise"):
            train.fit(net, loss, optim.sgd(LEARNING_RATE), params, (x, y), epochs=epochs,
                      batch_size=BATCH_SIZE, key=k_fit, observers=(watch,), progress=False)
    except NonFiniteError as error:
        return accuracy, error
    return accuracy, None


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    samples, scales, epochs = ((QUICK["samples"], QUICK["scales"], QUICK["epochs"])
                               if args.quick else (TRAIN_SAMPLES, SCALES, EPOCHS))
    k_data, k_runs = random.split(random.key(args.seed))
    digits = data.digits()
    chosen = random.permutation(k_data, len(digits.y))[:samples]
    x, y = digits.x[chosen], digits.y[chosen]
    say(f"digits: {samples} training samples; 64-{HIDDEN}x{DEPTH}-{CLASSES} relu, "
        f"sgd({LEARNING_RATE}), batch {BATCH_SIZE}, {epochs} epochs, {len(scales)} scales")
    say(f"{'scale':>9}  {'batch norm':>10}  {'plain':>10}")

    curves = {name: [] for name in NETS}  # per scale: the accuracy after each epoch
    final = {name: [] for name in NETS}  # per scale: the last epoch's, NaN if diverged
    diverged = []  # one record per diverged run
    start = time.perf_counter()
    for scale, key in zip(scales, random.split(k_runs, len(scales)), strict=True):
        for name in NETS:
            accuracy, error = run(network(scale, batch_norm=name == "batch norm"), x, y, key,
                                  epochs)
            curves[name].append(accuracy)
            final[name].append(math.nan if error else accuracy[-1])
            if error is not None:
                diverged.append({"net": name, "scale": scale, "epochs_done": len(accuracy),
                                 "last_finite_accuracy": (accuracy or [math.nan])[-1],
                                 "error": str(error)})
        say(f"{scale:9.2e}  {final['batch norm'][-1]:10.3f}  {final['plain'][-1]:10.3f}"
            + ("  (diverged)" if diverged and diverged[-1]["scale"] == scale else ""))
    seconds = time.perf_counter() - start

    bn_wins = [f"{s:.3g}" for s, a, b in zip(scales, final["batch norm"], final["plain"],
                                             strict=True)
               if math.isnan(b) or a > b + 0.05]
    chance = 1.0 / CLASSES + 0.05
    plain_stuck = [f"{s:.3g}" for s, b in zip(scales, final["plain"], strict=True)
                   if not math.isnan(b) and b <= chance]
    say(f"batch norm ahead by more than 0.05 (or the plain net diverged) at scales: "
        f"{', '.join(bn_wins) or 'none'}")
    say(f"plain net at chance (<= {chance:.2f}) at scales: {', '.join(plain_stuck) or 'none'}")
    for record in diverged:
        done = record["epochs_done"]
        last = (f"after {done} finite epochs at accuracy {record['last_finite_accuracy']:.3f}"
                if done else "before its first epoch ended")
        say(f"scale {record['scale']:.3g}: the {record['net']} net diverged {last}; its final "
            f"accuracy is "
            f"recorded as NaN. {record['error']}")
    say(f"{len(scales) * len(NETS)} runs in {seconds:.1f} s")

    log_scales = np.log10(scales)
    plot.save(plot.loss_curves({name: (log_scales, final[name]) for name in NETS},
                               xlabel="log10 of the initial weight std", ylabel="train accuracy",
                               title=f"final training accuracy after {epochs} epochs"),
              args.out / "final_accuracy.png")
    plain_best = int(np.argmax(np.nan_to_num(final["plain"], nan=-1.0)))
    shown = sorted({0, plain_best, len(scales) - 1})
    epoch_axis = np.arange(1, epochs + 1)
    plot.save(plot.loss_curves(
        {f"{name}, scale {scales[i]:.2g}": (epoch_axis[:len(curves[name][i])], curves[name][i])
         for i in shown for name in NETS if curves[name][i]},
        ylabel="train accuracy", title="training accuracy per epoch (a diverged run stops)"),
        args.out / "accuracy_curves.png")

    metrics = {"scales": scales, "batch_norm_train_accuracy": final["batch norm"],
               "plain_train_accuracy": final["plain"],
               "batch_norm_wins_at": bn_wins, "plain_at_chance_at": plain_stuck,
               "diverged": diverged, "seconds": seconds}
    config = {"train_samples": samples, "hidden": HIDDEN, "depth": DEPTH, "bn_eps": BN_EPS,
              "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE, "epochs": epochs,
              "optimizer": "sgd", "data": "digits, pixels in [0, 1]", "quick": args.quick}
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    return metrics


if __name__ == "__main__":
    main()
