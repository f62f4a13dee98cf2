"""Note 004's classifier for digits drawn with a mouse: the model of ``window.py``.

``classifier.py`` trains a 64-100-10 ReLU MLP on the 8x8 digits as they are. A digit
drawn on a screen is not one of them: a thin or fat pen, a slant, a turn, a narrow or
wide hand. This script trains the same net, with the same split, keys, optimiser and
batch size, on what the window gives it: every training digit, enlarged to 32x32, goes
through ``_inference``'s stroke path (deskewed, its strokes brought to the training
digits' average ink, averaged back to 8x8) once as it is and ``COPIES`` times distorted
(turned, sheared, stretched and bent by a smooth random field, as Simard et al. did for
MNIST; each distortion drawn from a key, so the run is a pure function of the seed).
The held-out digits go through the same path, undistorted. The model folder says
``"preprocess": "strokes"``, so ``predict.py`` and the window put any picture through
that path too.

    python experiments/drawn_classifier.py [--seed N] [--out DIR] [--quick]

Writes to OUT (default runs/drawn_classifier): metrics.json, params.npz,
standardization.npz, model.json, predictions.png.
"""

from __future__ import annotations

import json
import time

import classifier
import numpy as np
from _common import parse_args, say, write_metrics, wrong_then_right
from _inference import normalise_strokes, stroke_grid
from PIL import Image

from funcnet import data, layers, losses, optim, plot, random, train

NAME = "drawn_classifier"
COPIES = 12  # distorted copies of each training digit, besides the digit itself
TURN = 20.0  # degrees, either way
SHEAR = 0.4  # x moves by up to this much per unit of y, either way
STRETCH = 0.25  # the width scales by 1 -/+ this much
BEND = 3.0  # pixels (of the 32-pixel digit) the smooth random field moves a point, at most
BEND_GRID = 4  # the field is drawn on a 4x4 grid and spread over the picture bicubically
EPOCHS = 20
BATCH_SIZE = 32
QUICK = {"copies": 1, "epochs": 2, "max_train": 300, "max_test": 100}
ENLARGE = 4  # each 8x8 digit is drawn 32x32 (UCI's bitmaps were) before it is distorted
CHUNK = 512  # grids normalised at once
DISTORT_STREAM = 4  # the distortions' key: fold_in(key(seed), 4), apart from the split's
SHOWN = 8


def enlarged(pixels: np.ndarray) -> np.ndarray:
    """An 8x8 digit (64,) drawn 32x32 (bilinear), centred on a 64x64 dark canvas."""
    side = 8 * ENLARGE
    big = Image.fromarray(pixels.reshape(8, 8).astype(np.float32), "F").resize(
        (side, side), Image.Resampling.BILINEAR)
    canvas = np.zeros((2 * side, 2 * side), np.float32)
    canvas[side // 2:side // 2 + side, side // 2:side // 2 + side] = np.asarray(big)
    return canvas


def distorted(picture: np.ndarray, u: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Copies (c, n, n) of ``picture`` (n, n), each turned, sheared and stretched about the
    centre and bent by a smooth random field, read between pixels bilinearly.

    Args:
      u: uniforms in [0, 1), (c, 3 + 2 * BEND_GRID**2): three for the affine map, then
        the field's displacements along y and x on a BEND_GRID x BEND_GRID grid.
      spread: (n, BEND_GRID), how the grid's values spread over the picture (bicubic).
    """
    n = picture.shape[0]
    c = len(u)
    turn = np.radians(TURN * (2 * u[:, 0] - 1))
    shear, widen = SHEAR * (2 * u[:, 1] - 1), 1.0 + STRETCH * (2 * u[:, 2] - 1)
    cos, sin = np.cos(turn), np.sin(turn)
    forward = np.stack([np.stack([cos * widen, cos * shear - sin], axis=1),
                        np.stack([sin * widen, sin * shear + cos], axis=1)], axis=1)
    back = np.linalg.inv(forward).astype(np.float32)  # (c, 2, 2): output (x, y) -> input
    field = BEND * (2 * u[:, 3:].reshape(c, 2, BEND_GRID, BEND_GRID) - 1)
    bend = (spread @ field @ spread.T).astype(np.float32)  # (c, 2, n, n): along y, x
    centre = (n - 1) / 2
    rows, cols = (np.mgrid[:n, :n] - centre).astype(np.float32)
    x = back[:, 0, 0, None, None] * cols + back[:, 0, 1, None, None] * rows
    y = back[:, 1, 0, None, None] * cols + back[:, 1, 1, None, None] * rows
    y = np.clip(y + centre + bend[:, 0], 0, n - 1)
    x = np.clip(x + centre + bend[:, 1], 0, n - 1)
    top, left = np.minimum(y.astype(np.int64), n - 2), np.minimum(x.astype(np.int64), n - 2)
    fy, fx = y - top, x - left
    flat, at = picture.ravel(), top * n + left  # the pixel up and left of each point
    return ((1 - fy) * ((1 - fx) * flat.take(at) + fx * flat.take(at + 1))
            + fy * ((1 - fx) * flat.take(at + n) + fx * flat.take(at + n + 1)))


def spreading(n: int) -> np.ndarray:
    """(n, BEND_GRID): column j is a unit at grid point j resized bicubically to n pixels."""
    units = np.eye(BEND_GRID, dtype=np.float32)
    return np.stack([np.asarray(Image.fromarray(unit[None], "F").resize(
        (n, 1), Image.Resampling.BICUBIC))[0] for unit in units], axis=1).astype(np.float64)


def strokes_inputs(x: np.ndarray, key, copies: int, ink: float) -> tuple[np.ndarray,
                                                                          np.ndarray]:
    """Model inputs (n * (copies + 1), 64) of the digits ``x`` (n, 64), each as it is and
    ``copies`` times distorted, and for each the index of its digit in ``x``."""
    grids, source = [], []
    spread = spreading(2 * 8 * ENLARGE)
    for i, pixels in enumerate(x):
        picture = enlarged(pixels)
        u = random.uniform(random.fold_in(key, i), (copies, 3 + 2 * BEND_GRID ** 2))
        for shape in [picture, *distorted(picture, u, spread)]:
            grids.append(stroke_grid(shape, 8))
            source.append(i)
    grids = np.stack(grids)
    inputs = np.concatenate([normalise_strokes(grids[i:i + CHUNK], 8, (8, 8), ink)
                             for i in range(0, len(grids), CHUNK)])
    return inputs.reshape(len(grids), -1), np.array(source)


def main(argv=None):
    args = parse_args(NAME, __doc__, argv)
    k_split, k_init, k_fit = random.split(random.key(args.seed), 3)  # as classifier.py
    k_distort = random.fold_in(random.key(args.seed), DISTORT_STREAM)
    digits = data.digits()
    x_train, y_train, x_test, y_test = data.train_test_split(
        k_split, digits.x, digits.y, classifier.TEST_FRACTION)
    copies, epochs = COPIES, EPOCHS
    if args.quick:
        x_train, y_train = x_train[:QUICK["max_train"]], y_train[:QUICK["max_train"]]
        x_test, y_test = x_test[:QUICK["max_test"]], y_test[:QUICK["max_test"]]
        copies, epochs = QUICK["copies"], QUICK["epochs"]
    ink = float(x_train.mean())  # the average training digit's ink, kept by the stroke path

    start = time.perf_counter()
    x_fit, source = strokes_inputs(x_train, k_distort, copies, ink)
    y_fit = y_train[source]
    x_held, _ = strokes_inputs(x_test, k_distort, 0, ink)
    say(f"digits through the stroke path: {len(x_train)} training digits x {copies + 1} "
        f"= {len(x_fit)} inputs, {len(x_held)} held out ({time.perf_counter() - start:.1f} s)")
    stats = data.standardizer(x_fit, per_feature=False)
    x_fit, x_eval = data.standardize(x_fit, stats), data.standardize(x_held, stats)
    k = len(digits.class_names)
    sizes = [x_fit.shape[1], classifier.HIDDEN, k]
    net, loss = layers.mlp(sizes[1:], activation=classifier.ACTIVATION), \
        losses.softmax_cross_entropy()
    params, _ = net.init(k_init, (sizes[0],))
    say(f"mlp {sizes}, {classifier.ACTIVATION}, adam({classifier.LEARNING_RATE}), "
        f"{epochs} epochs of batch {BATCH_SIZE}")

    def watch(state, metrics):  # observes the fold; it cannot steer it
        if state.epoch % classifier.PRINT_EVERY == 0 or state.epoch == epochs:
            say(f"  epoch {state.epoch:3d}  loss {metrics['loss']:.4f}  "
                f"test accuracy {metrics['val_accuracy']:.4f}")

    start = time.perf_counter()
    final = train.fit(net, loss, optim.adam(classifier.LEARNING_RATE), params, (x_fit, y_fit),
                      epochs=epochs, batch_size=BATCH_SIZE, key=k_fit,
                      validation=(x_eval, y_test), observers=(watch,), progress=False)
    seconds = time.perf_counter() - start
    test = train.evaluate(net, loss, final.params, x_eval, y_test)
    probs = train.predict(net, final.params, x_eval, loss=loss)
    predicted = probs.argmax(axis=1)
    metrics = {"test_accuracy": test.accuracy, "test_loss": test.loss,
               "final_loss": final.history.loss[-1], "epochs": final.epoch,
               "steps": final.step, "wrong": int((predicted != y_test).sum()),
               "train_inputs": len(x_fit), "test_samples": len(y_test),
               "train_seconds": seconds,
               "confusion_matrix": classifier.confusion(y_test, predicted, k)}
    config = {"dataset": "digits", "sizes": sizes, "activation": classifier.ACTIVATION,
              "loss": "softmax_cross_entropy", "optimizer": "adam",
              "learning_rate": classifier.LEARNING_RATE, "epochs": epochs,
              "batch_size": BATCH_SIZE, "copies": copies, "turn_degrees": TURN,
              "shear": SHEAR, "stretch": STRETCH, "bend_pixels": BEND,
              "bend_grid": BEND_GRID, "ink": ink, "preprocess": "strokes",
              "standardization": "one mean and std over all training inputs",
              "test_fraction": classifier.TEST_FRACTION, "quick": args.quick}
    say(f"test accuracy {test.accuracy:.4f} ({metrics['wrong']} wrong of {len(y_test)}), "
        f"{final.epoch} epochs in {seconds:.1f} s")

    classifier.save_model(args.out, final.params, stats, "digits", sizes, digits.class_names)
    spec_path = args.out / "model.json"
    spec = json.loads(spec_path.read_text())
    spec.update(preprocess="strokes", input_scale="the stroke path of experiments/_inference.py")
    spec_path.write_text(json.dumps(spec, indent=2) + "\n")
    shown = wrong_then_right(predicted, y_test, SHOWN)
    plot.save(plot.samples_with_probabilities(x_held[shown].reshape(-1, 8, 8), probs[shown],
                                              digits.class_names, true_labels=y_test[shown],
                                              title="held-out digits through the stroke path"),
              args.out / "predictions.png")
    write_metrics(args.out, NAME, config=config, seed=args.seed, metrics=metrics)
    say(f"model and figures in {args.out}")
    return metrics


if __name__ == "__main__":
    main()
