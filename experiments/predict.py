"""Note 004's last step: open an image and read the predicted class name and its probability.

The note does this in a small window (``experiments/window.py``); here it is a command:

    python experiments/predict.py IMAGE --model runs/classifier [--invert] [--figure F.png]

``--model`` is the folder ``experiments/classifier.py`` (or ``drawn_classifier.py``)
wrote, or its params.npz. IMAGE is a PNG or JPEG of any size. It becomes the model's
input the way the training images were made, by the code the window uses too
(``_inference.py`` says how):

- turned upright by its EXIF orientation (phone photos), made grayscale,
  intensities scaled to [0, 1]; transparent pixels count as white;
- the model expects BRIGHT INK ON A DARK BACKGROUND, as in the training data
  (the digits store ink counts, 0 = no ink; MNIST and Fashion-MNIST are white
  on black). For dark ink on light paper pass ``--invert``; a light border
  without ``--invert`` prints a hint;
- the contrast is stretched so the background is 0 and the strongest ink 1, and
  the ink's bounding box is fitted to the model's input: for the 8x8 digits
  deskewed and with strokes as thick as the training digits' (a thin pen and a
  felt pen give the same input); for MNIST a 20x20 box centred in 28x28, for
  Fashion-MNIST the whole 28x28;
- then the training standardisation, saved beside the params, is applied.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _common import RUNS, say
from _inference import Model, load_model, predict_image, read_image

from funcnet import plot
from funcnet.errors import FuncnetError

__all__ = ["Model", "load_model", "predict_image", "read_image", "main"]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="a PNG or JPEG of any size")
    parser.add_argument("--model", type=Path, default=RUNS / "classifier",
                        help="the classifier's output folder or its params.npz "
                             "(default runs/classifier)")
    parser.add_argument("--invert", action="store_true",
                        help="the image has dark ink on a light background")
    parser.add_argument("--top", type=int, default=3, help="how many classes to list")
    parser.add_argument("--figure", type=Path, default=None,
                        help="also save the model's input with its top classes as this PNG")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.model)
        if not 1 <= args.top <= len(model.class_names):
            parser.error(f"--top must be in 1..{len(model.class_names)}, got {args.top}")
        result = predict_image(args.image, model, invert=args.invert, top=args.top)
    except FuncnetError as e:
        parser.error(str(e))
    say(f"{result['image']}: {result['class']} ({result['probability']:.1%})")
    for rank, (name, p) in enumerate(result["top"], start=1):
        say(f"  {rank}. {name:<12} {p:7.2%}  {'#' * round(20 * p)}")
    if result["hint"]:
        say(f"note: {result['hint']}")
    if args.figure is not None:
        fig = plot.samples_with_probabilities(result["input"][None], np.array(
            [result["probabilities"]]), model.class_names, top=args.top,
            columns=1, title=f"{Path(result['image']).name}")
        plot.save(fig, args.figure)
    return result


if __name__ == "__main__":
    main()
