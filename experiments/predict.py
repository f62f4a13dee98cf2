"""Note 004's last step: open an image and read the predicted class name and its probability.

The note does this in a small window; here it is a command:

    python experiments/predict.py IMAGE --model runs/classifier [--invert] [--figure F.png]

``--model`` is the folder ``experiments/classifier.py`` wrote (or its
params.npz). IMAGE is a PNG or JPEG of any size. It becomes the model's input
the way the training images were made:

- turned upright by its EXIF orientation (phone photos), made grayscale,
  intensities scaled to [0, 1]; transparent pixels count as white;
- the model expects BRIGHT INK ON A DARK BACKGROUND, as in the training data
  (the digits store ink counts, 0 = no ink; MNIST and Fashion-MNIST are white
  on black). For dark ink on light paper pass ``--invert``; a light border
  without ``--invert`` prints a hint;
- the contrast is stretched so the background is 0 and the strongest ink 1;
- the ink's bounding box is padded to a square and resized by area averaging
  (as the digits' 4x4 blocks were counted) to the model's ``input_fit``, then
  centred in its ``input_shape`` (8x8 digits; a 20x20 box in 28x28 for MNIST;
  the whole 28x28 for Fashion-MNIST);
- then the training standardisation, saved beside the params, is applied.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from _common import RUNS, say
from PIL import Image, ImageOps, UnidentifiedImageError

from funcnet import data, io, layers, losses, plot, random, train
from funcnet.errors import CheckpointError, DataError, FuncnetError

INK_THRESHOLD = 0.3  # after stretching, the pixels above this bound the ink's box
FLAT = 0.05  # an image whose intensities span less than this is blank: no box, no stretch
LIGHT_BORDER = 0.5  # a border brighter than this suggests dark ink on light paper
SPEC_KEYS = ("sizes", "activation", "input_shape", "input_fit", "class_names", "params",
             "standardization")


class Model(NamedTuple):
    """A trained classifier rebuilt from the classifier's output folder."""

    net: layers.Layer
    params: Any
    stats: data.Standardization
    class_names: tuple[str, ...]
    input_shape: tuple[int, int]
    input_fit: int


def load_model(path: str | Path) -> Model:
    """Rebuild the net of ``model.json`` and load its params and standardisation (no pickle).

    Args:
      path: the classifier's output folder, or the params.npz inside it.

    Raises:
      CheckpointError: the path, its params.npz or model.json is missing or unreadable,
        or the params do not fit the net model.json describes.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"predict: model {path} does not exist; expected the folder "
                              f"experiments/classifier.py wrote, or its params.npz")
    folder = path if path.is_dir() else path.parent
    params_path = path if path.is_file() else folder / "params.npz"
    if not params_path.is_file():
        raise CheckpointError(f"predict: model folder {folder} holds no params.npz; train "
                              f"one with: python experiments/classifier.py --out {folder}")
    spec_path = folder / "model.json"
    try:
        spec = json.loads(spec_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"predict: {spec_path} is missing; it says how to rebuild "
                              f"the net of {params_path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"predict: {spec_path} is not readable JSON ({e})") from None
    missing = [k for k in SPEC_KEYS if not isinstance(spec, dict) or k not in spec]
    if missing:
        raise CheckpointError(f"predict: {spec_path} lacks {', '.join(missing)}")
    net = layers.mlp(spec["sizes"], activation=spec["activation"])
    shape = tuple(spec["input_shape"])
    template, _ = net.init(random.key(0), (int(np.prod(shape)),))
    params = io.load_params(params_path, like=template)
    stats = io.load_tree(folder / spec["standardization"])
    return Model(net, params, data.Standardization(stats["mean"], stats["std"]),
                 tuple(spec["class_names"]), shape, int(spec["input_fit"]))


def read_image(path: str | Path, *, invert: bool = False) -> tuple[np.ndarray, float]:
    """Grayscale intensities (h, w) in [0, 1] with bright ink, and the mean of the border.

    Raises:
      DataError: ``path`` is missing, a folder, or not an image Pillow can read.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"predict: {path} is a folder, not an image")
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if "A" in image.getbands() or "transparency" in image.info:
                rgba = image.convert("RGBA")
                image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
            gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise DataError(f"predict: image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"predict: {path} is not an image Pillow can read ({e})") from None
    if invert:
        gray = 1.0 - gray
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return gray, float(border.mean())


def fit_to_input(gray: np.ndarray, shape: tuple[int, int], fit: int) -> np.ndarray:
    """Stretch, crop to the ink, pad to a square, resize to ``fit`` and centre in ``shape``.

    Args:
      gray: intensities (h, w) in [0, 1], bright ink.
      shape: the model's image shape (rows, columns); ``fit`` <= both.

    Returns:
      The model's input image, shape ``shape``, values in [0, 1].
    """
    low, high = gray.min(), gray.max()
    if high - low > FLAT:
        gray = (gray - low) / (high - low)
        rows, cols = np.nonzero(gray > INK_THRESHOLD)
        gray = gray[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    else:
        gray = np.zeros_like(gray)
    h, w = gray.shape
    side = max(h, w)
    square = np.zeros((side, side), dtype=np.float32)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = gray
    small = np.asarray(Image.fromarray(square).resize((fit, fit), Image.Resampling.BOX))
    frame = np.zeros(shape)
    top, left = (shape[0] - fit) // 2, (shape[1] - fit) // 2
    frame[top:top + fit, left:left + fit] = np.clip(small, 0.0, 1.0)
    return frame


def predict_image(image: str | Path, model: Model, *, invert: bool = False,
                  top: int = 3) -> dict:
    """The class probabilities of one image: top class, its probability, the ``top`` best.

    Returns:
      A dict: ``class`` and ``probability`` of the best class; ``top``, the
      ``top`` best (name, probability) pairs, most probable first;
      ``probabilities`` (k,); ``input``, the image the model saw (before
      standardisation); ``hint``, a word on ``--invert`` or None.

    Raises:
      DataError: the image cannot be read (see ``read_image``).
    """
    gray, border = read_image(image, invert=invert)
    pixels = fit_to_input(gray, model.input_shape, model.input_fit)
    x = data.standardize(pixels.reshape(1, -1), model.stats)
    probs = train.predict(model.net, model.params, x, loss=losses.softmax_cross_entropy())[0]
    order = np.argsort(-probs, kind="stable")[:top]
    hint = None
    if border > LIGHT_BORDER:
        hint = (("after --invert the image's border is light" if invert else
                 "the image's border is light")
                + ", but the model expects bright ink on a dark background: "
                + ("drop --invert if the ink was light" if invert else
                   "pass --invert for dark ink on light paper"))
    return {"image": str(image), "class": model.class_names[order[0]],
            "probability": float(probs[order[0]]),
            "top": [(model.class_names[i], float(probs[i])) for i in order],
            "probabilities": probs.tolist(), "input": pixels, "hint": hint}


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
