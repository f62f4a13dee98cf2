"""What ``predict.py`` and ``window.py`` share, with no screen: load a model, make a picture
its input, classify it, and say which pixels decided.

    model = load_model("runs/drawn_classifier")
    result = predict_image("seven.png", model)       # or predict_drawing(pil_image, model)
    why = saliency(model, result["input"], result["index"])

A picture becomes the model's input in three steps:

1. ``read_image`` / ``gray_of``: upright by its EXIF orientation, transparent pixels white,
   grayscale in [0, 1]; with ``invert`` dark ink on light paper becomes bright ink on
   dark, as in the training data.
2. The contrast is stretched (background 0, strongest ink 1) and the ink's bounding box,
   the pixels above ``INK_THRESHOLD``, is what counts.
3. ``to_input`` fits the box into the model's image the way its training images were
   made, as ``model.json``'s ``preprocess`` says:

   - ``"box"`` (``classifier.py``'s models): the box is padded to a square, resized by
     area averaging to the model's ``input_fit`` and centred in its ``input_shape``
     (``fit_box``: the whole 8x8 for the digits, a 20x20 box in 28x28 for MNIST, the
     whole 28x28 for Fashion-MNIST).
   - ``"strokes"`` (``drawn_classifier.py``'s model of the 8x8 digits, trained on its
     digits passed through this same path): UCI's optdigits were 32x32 bitmaps counted in
     4x4 blocks, and every one holds about the same amount of ink (0.30 of the frame,
     whatever the digit). So the box is scaled to 32 pixels on its longer side
     (``stroke_grid``), sheared upright (``deskew``: the ink's x no longer drifts with y),
     its strokes thickened or thinned along a distance map until the 8x8 image holds as
     much ink as the model's average training image, and averaged over 4x4 areas
     (``normalise_strokes``). A thin mouse stroke and a felt-pen stroke give one input.

Then the training standardisation saved beside the params is applied.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

from funcnet import data, io, layers, losses, random, train
from funcnet.errors import CheckpointError, DataError

INK_THRESHOLD = 0.3  # after stretching, the pixels above this bound the ink's box
FLAT = 0.05  # an image whose intensities span less than this is blank: no box, no stretch
LIGHT_BORDER = 0.5  # a border brighter than this suggests dark ink on light paper
SPEC_KEYS = ("sizes", "activation", "input_shape", "input_fit", "class_names", "params",
             "standardization")
# The stroke path (8x8 digits): a glyph's longer side on the working grid, one output pixel
# per BLOCK x BLOCK area there (UCI: 32x32 bitmaps in 4x4 blocks), MARGIN pixels of room
# around it for thicker strokes and for the shear, and the grid's ink threshold.
BLOCK = 4
MARGIN = 8
GRID_INK = 0.25
MAX_SHEAR = 0.5  # deskew shears x by at most this many pixels per pixel of y
SEARCH_STEPS = 10  # bisection steps for the stroke offset that gives the wanted ink
PREPROCESSING = ("box", "strokes")
SIXTEEN_BIT = ("I", "I;16", "I;16L", "I;16B", "I;16N")  # Pillow's modes of 16-bit grayscale


class Model(NamedTuple):
    """A trained classifier rebuilt from the folder ``classifier.py`` writes."""

    net: layers.Layer
    params: Any
    stats: data.Standardization
    class_names: tuple[str, ...]
    input_shape: tuple[int, int]
    input_fit: int
    preprocess: str  # how a picture becomes an input: "box" or "strokes" (see to_input)
    dataset: str  # what it was trained on: "digits", "mnist" or "fashion"


def load_model(path: str | Path) -> Model:
    """Rebuild the net of ``model.json`` and load its params and standardisation (no pickle).

    Every field read is checked before it is used: its type and range, ``input_fit``
    against ``input_shape``, ``sizes`` and ``input_shape`` against the saved params, as
    many ``class_names`` as the net has outputs, and a standardisation of the input's
    shape with finite means and finite positive stds.

    Args:
      path: the classifier's output folder (its params file is the one model.json's
        ``params`` names), or a params file, used as given.

    Raises:
      CheckpointError: the path, its params, model.json or standardisation is missing or
        unreadable, a field of model.json is malformed (the message names the file and the
        field, what was expected and what came), or the files do not fit one another.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"predict: model {path} does not exist; expected the folder "
                              f"experiments/classifier.py wrote, or its params.npz")
    folder = path if path.is_dir() else path.parent
    spec_path = folder / "model.json"
    train_one = f"train one with: python experiments/classifier.py --out {folder}"
    if path.is_dir() and not (folder / "params.npz").is_file() and not spec_path.exists():
        raise CheckpointError(f"predict: model folder {folder} holds no params.npz; "
                              f"{train_one}")
    spec = _read_spec(spec_path, path)
    params_name = _file_field(spec_path, spec, "params")
    params_path = path if path.is_file() else folder / params_name
    if not params_path.is_file():
        raise CheckpointError(f"predict: {spec_path}: params names {params_name}, which the "
                              f"folder does not hold; {train_one}")
    sizes = _sizes(spec_path, spec["sizes"])
    activation = spec["activation"]
    if not isinstance(activation, str) or activation not in layers.ACTIVATIONS:
        raise CheckpointError(f"predict: {spec_path}: activation must be one of "
                              f"{', '.join(layers.ACTIVATIONS)}, got {activation!r}")
    shape = _input_shape(spec_path, spec["input_shape"])
    fit = spec["input_fit"]
    if not _positive_int(fit):
        raise CheckpointError(f"predict: {spec_path}: input_fit must be a positive integer, "
                              f"got {fit!r}")
    if fit > min(shape):
        raise CheckpointError(f"predict: {spec_path}: input_fit must be at most the input's "
                              f"rows and columns ({min(shape)}), got {fit}")
    preprocess = spec.get("preprocess", "box")
    if not isinstance(preprocess, str) or preprocess not in PREPROCESSING:
        raise CheckpointError(f"predict: {spec_path}: preprocess must be one of "
                              f"{', '.join(PREPROCESSING)}, got {preprocess!r}")
    dataset = spec.get("dataset", "digits")
    if not isinstance(dataset, str):
        raise CheckpointError(f"predict: {spec_path}: dataset must be a string, got "
                              f"{dataset!r}")
    names = spec["class_names"]
    if (not isinstance(names, list) or not all(isinstance(n, str) for n in names)
            or len(set(names)) != len(names)):
        raise CheckpointError(f"predict: {spec_path}: class_names must be a list of distinct "
                              f"strings, one per output, got {names!r}")
    # the params' shapes against sizes and input_shape, before the net of model.json is
    # built: a template of the sizes model.json claims could be too large to allocate
    inputs = int(np.prod(shape))
    _check_params_fit(spec_path, params_path, io.load_params(params_path), sizes, shape)
    net = layers.mlp(sizes, activation=activation)
    template, _ = net.init(random.key(0), (inputs,))
    params = io.load_params(params_path, like=template)
    if len(names) != sizes[-1]:
        raise CheckpointError(f"predict: {spec_path}: class_names holds {len(names)} names, "
                              f"but the network has {sizes[-1]} outputs (the last of sizes "
                              f"{sizes}, as in {params_path}); expected one name per output")
    stats_name = _file_field(spec_path, spec, "standardization")
    stats = _standardization(folder / stats_name, shape)
    return Model(net, params, stats, tuple(names), shape, fit, preprocess, dataset)


def _read_spec(spec_path: Path, path: Path) -> dict:
    """model.json as a dict holding every key of ``SPEC_KEYS``."""
    try:
        spec = json.loads(spec_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"predict: {spec_path} is missing; it says how to rebuild "
                              f"the net of {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"predict: {spec_path} is not readable JSON ({e})") from None
    if not isinstance(spec, dict):
        raise CheckpointError(f"predict: {spec_path} must hold a JSON object, got a "
                              f"{type(spec).__name__}")
    missing = [k for k in SPEC_KEYS if k not in spec]
    if missing:
        raise CheckpointError(f"predict: {spec_path} lacks {', '.join(missing)}")
    return spec


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _file_field(spec_path: Path, spec: dict, field: str) -> str:
    """The file name model.json's ``field`` holds, relative to its folder."""
    name = spec[field]
    if not isinstance(name, str) or not name:
        raise CheckpointError(f"predict: {spec_path}: {field} must be the name of a file in "
                              f"the model folder, got {name!r}")
    return name


def _sizes(spec_path: Path, sizes: Any) -> list[int]:
    if not isinstance(sizes, list) or not sizes or not all(map(_positive_int, sizes)):
        raise CheckpointError(f"predict: {spec_path}: sizes must be a non-empty list of "
                              f"positive integers (the dense layers' widths), got {sizes!r}")
    return sizes


def _input_shape(spec_path: Path, shape: Any) -> tuple[int, int]:
    if not isinstance(shape, list) or len(shape) != 2 or not all(map(_positive_int, shape)):
        raise CheckpointError(f"predict: {spec_path}: input_shape must be a list of 2 "
                              f"positive integers (rows, columns), got {shape!r}")
    return shape[0], shape[1]


def _check_params_fit(spec_path: Path, params_path: Path, stored: Any, sizes: list[int],
                      shape: tuple[int, int]) -> None:
    """The dense layers in ``stored`` (params loaded without a template) against model.json's
    ``sizes`` and ``input_shape``, naming the field that disagrees. Params of another
    structure pass here; loading them with the net's template then says where they differ."""
    weights = [layer["W"] for layer in stored if isinstance(layer, dict) and "W" in layer] \
        if isinstance(stored, tuple | list) else []
    if not weights or any(np.ndim(w) != 2 for w in weights):
        return
    widths = [int(np.shape(w)[1]) for w in weights]
    if widths != sizes:
        raise CheckpointError(f"predict: {spec_path}: sizes {sizes} do not match the params: "
                              f"{params_path} holds dense layers of widths {widths}")
    inputs, taken = shape[0] * shape[1], int(np.shape(weights[0])[0])
    if inputs != taken:
        raise CheckpointError(f"predict: {spec_path}: input_shape {list(shape)} gives {inputs} "
                              f"inputs, but the first layer of {params_path} takes {taken} "
                              f"(its W has shape {np.shape(weights[0])})")


def _standardization(stats_path: Path, shape: tuple[int, int]) -> data.Standardization:
    """The mean and std saved at ``stats_path``: real, finite, of the input's flat shape,
    std positive."""
    stats = io.load_tree(stats_path)
    where = f"predict: {stats_path} (model.json's standardization)"
    if not isinstance(stats, dict) or set(stats) != {"mean", "std"}:
        got = ", ".join(map(str, stats)) if isinstance(stats, dict) else \
            f"a {type(stats).__name__}"
        raise CheckpointError(f"{where}: must hold mean and std, got {got}")
    flat = (shape[0] * shape[1],)
    for name in ("mean", "std"):
        value = stats[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
            got = f"dtype {value.dtype}" if isinstance(value, np.ndarray) else repr(value)
            raise CheckpointError(f"{where}: {name} must be real numbers, got {got}")
        if value.shape != flat:
            raise CheckpointError(f"{where}: {name} must have shape {flat} (the "
                                  f"{shape[0]}x{shape[1]} input_shape), got {value.shape}")
        bad = ~np.isfinite(value) | ((value <= 0) if name == "std" else False)
        if bad.any():
            at = int(np.argmax(bad))
            rule = "finite and positive" if name == "std" else "finite"
            raise CheckpointError(f"{where}: {name} must be {rule}, got {value[at].item()!r} at "
                                  f"[{at}]")
    return data.Standardization(stats["mean"], stats["std"])


# --- pictures to grayscale ---------------------------------------------------------------


def gray_of(image: Image.Image, *, invert: bool = False) -> tuple[np.ndarray, float]:
    """Grayscale intensities (h, w) in [0, 1] with bright ink, and the mean of the border.

    A 16-bit grayscale image (a 16-bit PNG opens as mode I;16, or I) is scaled by 65535:
    Pillow's conversion to 8-bit L clips it at 255 instead, so all but its darkest pixels
    came out white.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT and "transparency" not in image.info:
        gray = np.clip(np.asarray(image, dtype=np.float64) / 65535.0, 0.0, 1.0)
    else:
        if "A" in image.getbands() or "transparency" in image.info:
            rgba = image.convert("RGBA")
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        gray = np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    if invert:
        gray = 1.0 - gray
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return gray, float(border.mean())


def screen_picture(image: Image.Image) -> Image.Image:
    """``image`` upright in RGB, to show; a 16-bit grayscale one scaled as ``gray_of`` reads
    it (Pillow's conversion clips it at 255, so it showed white)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in SIXTEEN_BIT and "transparency" not in image.info:
        gray, _ = gray_of(image)
        image = Image.fromarray(np.round(gray * 255).astype(np.uint8))
    return image.convert("RGB")


def read_image(path: str | Path, *, invert: bool = False) -> tuple[np.ndarray, float]:
    """``gray_of`` the image file at ``path``.

    Raises:
      DataError: ``path`` is missing, a folder, not an image Pillow can read, or its header
        claims more pixels than Pillow's ``Image.MAX_IMAGE_PIXELS`` (a decompression bomb:
        decoding it could take all memory).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"predict: {path} is a folder, not an image")
    try:
        # Pillow only warns up to twice its limit; here the limit is the limit
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return gray_of(image, invert=invert)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        found = re.search(r"\((\d+) pixels\)", str(e))
        claimed = f"{int(found[1]):,} pixels" if found else f"too many pixels ({e})"
        raise DataError(f"predict: {path}: its header claims {claimed}, more than the "
                        f"{Image.MAX_IMAGE_PIXELS:,} that Pillow decodes safely "
                        f"(PIL.Image.MAX_IMAGE_PIXELS); shrink the image first") from None
    except FileNotFoundError:
        raise DataError(f"predict: image {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as e:
        raise DataError(f"predict: {path} is not an image Pillow can read ({e})") from None


def ink_box(gray: np.ndarray) -> np.ndarray | None:
    """The contrast-stretched crop of ``gray`` to its ink, or None for a blank picture."""
    low, high = gray.min(), gray.max()
    if high - low <= FLAT:
        return None
    gray = (gray - low) / (high - low)
    ink = gray > INK_THRESHOLD
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return gray[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _resize(gray: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-averaged resize of (h, w) intensities to ``size`` = (width, height)."""
    image = Image.fromarray(gray.astype(np.float32))
    return np.asarray(image.resize(size, Image.Resampling.BOX), dtype=np.float64)


# --- the box path ------------------------------------------------


def fit_box(gray: np.ndarray, shape: tuple[int, int], fit: int) -> np.ndarray:
    """Crop to the ink, pad to a square, resize to ``fit`` and centre in ``shape``.

    Args:
      gray: intensities (h, w) in [0, 1], bright ink.
      shape: the model's image shape (rows, columns); ``fit`` <= both.

    Returns:
      The model's input image, shape ``shape``, values in [0, 1].
    """
    frame = np.zeros(shape)
    box = ink_box(gray)
    if box is None:
        return frame
    h, w = box.shape
    side = max(h, w)
    square = np.zeros((side, side))
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = box
    top, left = (shape[0] - fit) // 2, (shape[1] - fit) // 2
    frame[top:top + fit, left:left + fit] = np.clip(_resize(square, (fit, fit)), 0.0, 1.0)
    return frame


# --- the stroke path ------------------------------------------------------


def stroke_grid(gray: np.ndarray, fit: int) -> np.ndarray:
    """The ink's box scaled to ``BLOCK * fit`` pixels on its longer side, centred in a
    square grid with ``MARGIN`` pixels of room on every side: (n, n), n = BLOCK*fit + 2*MARGIN.
    A blank picture gives an empty grid."""
    work = BLOCK * fit
    n = work + 2 * MARGIN
    grid = np.zeros((n, n), np.float32)
    box = ink_box(gray)
    if box is None:
        return grid
    h, w = box.shape
    scale = work / max(h, w)
    width, height = max(1, round(w * scale)), max(1, round(h * scale))
    top, left = (n - height) // 2, (n - width) // 2
    grid[top:top + height, left:left + width] = _resize(box, (width, height))
    return grid


def deskew(grids: np.ndarray) -> np.ndarray:
    """Shear each grid (b, n, n) along x so that its ink's x and y are uncorrelated.

    The shear is the slope of x against y over the ink (weighted by intensity), at most
    ``MAX_SHEAR``; each row moves by slope * (its y - the ink's mean y), with linear
    interpolation between pixels.
    """
    b, n, _ = grids.shape
    at = np.arange(n, dtype=np.float64)
    mass = grids.sum(axis=(1, 2), dtype=np.float64)
    weight = np.where(mass > 0, mass, 1.0)
    rows, cols = grids.sum(axis=2) / weight[:, None], grids.sum(axis=1) / weight[:, None]
    mean_y, mean_x = rows @ at, cols @ at
    dy, dx = at[None] - mean_y[:, None], at[None] - mean_x[:, None]
    var_y = np.einsum("by,by->b", rows, dy ** 2)
    cov = np.einsum("byx,by,bx->b", grids, dy, dx) / weight
    slope = np.clip(cov / np.where(var_y > 0, var_y, 1.0), -MAX_SHEAR, MAX_SHEAR)
    shift = slope[:, None] * dy  # (b, y): row y reads from x + shift
    whole = np.floor(shift).astype(np.int64)
    frac = (shift - whole)[:, :, None].astype(grids.dtype)
    # rows padded with n empty pixels on each side, so x + whole (|whole| <= n) stays inside
    padded = np.pad(grids, ((0, 0), (0, 0), (n, n))).ravel()
    start = (np.arange(b)[:, None] * n + np.arange(n)[None, :]) * 3 * n + n + whole
    index = start[:, :, None] + np.arange(n)[None, None, :]
    return (1 - frac) * padded.take(index) + frac * padded.take(index + 1)


def _distance(ink: np.ndarray, reach: int) -> np.ndarray:
    """Euclidean distance (b, h, w) from every pixel to the nearest True pixel of ``ink``,
    exact up to ``reach``; farther pixels get more than ``reach``."""
    b, h, w = ink.shape
    at = np.arange(w)
    far = reach + 1
    left = np.maximum.accumulate(np.where(ink, at, -2 * w), axis=2)
    right = np.minimum.accumulate(np.where(ink, at, 3 * w)[:, :, ::-1], axis=2)[:, :, ::-1]
    along_row = np.minimum(np.minimum(at - left, right - at), far).astype(np.float32) ** 2
    rows = np.pad(along_row, ((0, 0), (reach, reach), (0, 0)), constant_values=far ** 2)
    # the nearest ink along each row of the rows within reach, plus the rows' distance
    squared = functools.reduce(np.minimum, (rows[:, reach + shift:reach + shift + h]
                                            + shift ** 2 for shift in range(-reach, far)))
    return np.sqrt(squared)


def signed_distance(ink: np.ndarray, reach: int = MARGIN) -> np.ndarray:
    """How far each pixel lies outside the strokes (b, n, n); negative inside. Thresholding
    at t keeps the ink (t = -0.5), thickens it by t pixels, or thins it (t < -0.5)."""
    return np.where(ink, 0.5 - _distance(~ink, reach), _distance(ink, reach) - 0.5)


def _area_weights(start: np.ndarray, length: np.ndarray, bins: int, n: int) -> np.ndarray:
    """(b, bins, n): the share of pixel j in bin i when [start, start + length) is cut into
    ``bins`` equal parts; pixels outside the grid count as empty."""
    step = (length / bins)[:, None, None]
    low = start[:, None, None] + np.arange(bins)[None, :, None] * step
    j = np.arange(n)[None, None, :]
    share = np.clip(np.minimum(low + step, j + 1) - np.maximum(low, j), 0.0, None) / step
    return share.astype(np.float32)


def _square_weights(cover: np.ndarray, fit: int) -> tuple[np.ndarray, np.ndarray]:
    """How each coverage map's (b, n, n) inked box, padded to a centred square, falls into
    (fit, fit) areas: weights by row and by column, each (b, fit, n)."""
    b, n, _ = cover.shape
    inked = cover > 0
    rows, cols = inked.any(axis=2), inked.any(axis=1)
    top, bottom = rows.argmax(axis=1), n - rows[:, ::-1].argmax(axis=1)
    left, right = cols.argmax(axis=1), n - cols[:, ::-1].argmax(axis=1)
    side = np.where(rows.any(axis=1), np.maximum(bottom - top, right - left), n).astype(float)
    return (_area_weights((top + bottom - side) / 2, side, fit, n),
            _area_weights((left + right - side) / 2, side, fit, n))


def _block_average(cover: np.ndarray, fit: int) -> np.ndarray:
    """Each coverage map's (b, n, n) inked box, padded to a centred square, averaged into
    (fit, fit) areas."""
    by_row, by_col = _square_weights(cover, fit)
    return np.clip(by_row @ cover @ by_col.transpose(0, 2, 1), 0.0, 1.0)


def _mean_block(cover: np.ndarray, fit: int) -> np.ndarray:
    """The mean (b,) of ``_block_average(cover, fit)``, without making the blocks."""
    by_row, by_col = _square_weights(cover, fit)
    return np.einsum("bi,bij,bj->b", by_row.sum(axis=1), cover, by_col.sum(axis=1)) / fit ** 2


def _offset(signed: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The strokes moved out by ``t`` (b,) pixels along the signed distance: coverage in
    [0, 1], the original ink at t = -0.5, an edge pixel partly covered in between, so the
    ink grows continuously with t."""
    return np.clip(t[:, None, None].astype(np.float32) + 1.0 - signed, 0.0, 1.0)


def normalise_strokes(grids: np.ndarray, fit: int, shape: tuple[int, int],
                      ink: float) -> np.ndarray:
    """Model inputs (b, *shape) from stroke grids (b, n, n): deskewed, strokes offset along
    the signed distance until the (fit, fit) block average holds ``ink`` on average (within
    the margin's reach), centred in ``shape``. An empty grid gives an empty input."""
    strokes = deskew(grids) > GRID_INK
    signed = signed_distance(strokes)
    drawn = strokes.any(axis=(1, 2))
    deepest = np.where(drawn, signed.min(axis=(1, 2)), 0.0)
    low = np.minimum(-0.5, deepest / 2)  # thin to at most half of the thickest stroke
    high = np.full(len(grids), MARGIN - 1.0)
    for _ in range(SEARCH_STEPS):
        middle = (low + high) / 2
        light = _mean_block(_offset(signed, middle), fit) < ink
        low, high = np.where(light, middle, low), np.where(light, high, middle)
    small = _block_average(_offset(signed, (low + high) / 2), fit)
    out = np.zeros((len(grids), *shape))
    top, left = (shape[0] - fit) // 2, (shape[1] - fit) // 2
    out[:, top:top + fit, left:left + fit] = small * drawn[:, None, None]
    return out


def mean_ink(model: Model) -> float:
    """The ink of the model's average training image: the standardisation's mean."""
    return float(np.mean(model.stats.mean))


def to_input(gray: np.ndarray, model: Model) -> np.ndarray:
    """The model's input image (``model.input_shape``, values in [0, 1]) for intensities
    ``gray`` (h, w) in [0, 1] with bright ink."""
    if model.preprocess == "strokes":
        grid = stroke_grid(gray, model.input_fit)
        return normalise_strokes(grid[None], model.input_fit, model.input_shape,
                                 mean_ink(model))[0]
    return fit_box(gray, model.input_shape, model.input_fit)


# --- classify and explain -----------------------------------------------------------------


def classify(model: Model, pixels: np.ndarray) -> np.ndarray:
    """Class probabilities (k,) of one input image ``pixels`` (``model.input_shape``)."""
    x = data.standardize(pixels.reshape(1, -1), model.stats)
    return train.predict(model.net, model.params, x, loss=losses.softmax_cross_entropy())[0]


def saliency(model: Model, pixels: np.ndarray, index: int) -> np.ndarray:
    """The gradient of class ``index``'s score (its logit) with respect to the input pixels,
    by the network's own hand-written backward pass.

    Args:
      pixels: one input image, shape ``model.input_shape``, before standardisation.
      index: the class whose score is differentiated.

    Returns:
      d score / d pixels, shape ``model.input_shape``: positive where more ink would raise
      the score, negative where it would lower it.
    """
    x = data.standardize(pixels.reshape(1, -1), model.stats)
    logits, cache = model.net.forward(model.params, x)
    dlogits = np.eye(logits.shape[1])[None, index]
    dx, _ = model.net.backward(cache, dlogits)
    return (np.asarray(dx) / model.stats.std).reshape(model.input_shape)


def predict_gray(gray: np.ndarray, model: Model, *, border: float = 0.0,
                 invert: bool = False, top: int = 3, name: str = "") -> dict:
    """The class probabilities of one grayscale picture: see ``predict_image``."""
    pixels = to_input(gray, model)
    probs = classify(model, pixels)
    order = np.argsort(-probs, kind="stable")[:top]
    hint = None
    if border > LIGHT_BORDER:
        hint = (("after --invert the image's border is light" if invert else
                 "the image's border is light")
                + ", but the model expects bright ink on a dark background: "
                + ("drop --invert if the ink was light" if invert else
                   "pass --invert for dark ink on light paper"))
    return {"image": name, "class": model.class_names[order[0]], "index": int(order[0]),
            "probability": float(probs[order[0]]),
            "top": [(model.class_names[i], float(probs[i])) for i in order],
            "probabilities": probs.tolist(), "input": pixels, "hint": hint}


def predict_image(image: str | Path, model: Model, *, invert: bool = False,
                  top: int = 3) -> dict:
    """The class probabilities of one image file: top class, its probability, the ``top`` best.

    Returns:
      A dict: ``class``, ``index`` and ``probability`` of the best class; ``top``, the
      ``top`` best (name, probability) pairs, most probable first; ``probabilities``
      (k,); ``input``, the image the model saw (before standardisation); ``hint``, a
      word on ``--invert`` or None; ``image``, the path as given.

    Raises:
      DataError: the image cannot be read (see ``read_image``).
    """
    gray, border = read_image(image, invert=invert)
    return predict_gray(gray, model, border=border, invert=invert, top=top, name=str(image))


def predict_drawing(image: Image.Image, model: Model, *, top: int = 3) -> dict:
    """``predict_image`` for a drawing in memory: bright ink on a dark background."""
    gray, border = gray_of(image)
    return predict_gray(gray, model, border=border, top=top, name="drawing")


# --- drawings and pictures of the answer ---------------------------------------------------


def render_strokes(strokes: Sequence[Sequence[tuple[float, float]]], pen: int,
                   size: tuple[int, int]) -> Image.Image:
    """Mouse paths drawn as a canvas draws them: bright lines ``pen`` pixels wide with round
    joints and ends, on a dark grayscale image of ``size`` = (width, height)."""
    image = Image.new("L", size, 0)
    ink = ImageDraw.Draw(image)
    radius = pen / 2
    for stroke in strokes:
        points = [(float(x), float(y)) for x, y in stroke]
        if len(points) > 1:
            ink.line(points, fill=255, width=pen, joint="curve")
        for x, y in (points[0], points[-1]) if points else ():
            ink.ellipse([x - radius, y - radius, x + radius, y + radius], fill=255)
    return image


def input_image(pixels: np.ndarray, size: int) -> Image.Image:
    """The model's input as a grayscale picture ``size`` pixels wide, each pixel a square."""
    gray = Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    return gray.resize((size, size * pixels.shape[0] // pixels.shape[1]),
                       Image.Resampling.NEAREST)


def saliency_image(pixels: np.ndarray, gradient: np.ndarray, size: int) -> Image.Image:
    """A heat map of ``gradient`` over the input ``pixels``: red where a pixel pushed the
    score up, blue where it pushed it down, stronger for larger |gradient| (the largest
    one most strongly coloured); the input shows through in gray."""
    scale = np.abs(gradient).max()
    strength = np.abs(gradient) / scale if scale > 0 else np.zeros_like(gradient)
    base = 0.15 + 0.7 * np.clip(pixels, 0, 1)  # the input in gray, under the colours
    colour = np.where((gradient > 0)[..., None], [0.95, 0.1, 0.05], [0.1, 0.35, 1.0])
    cover = 0.85 * strength[..., None]
    rgb = (1 - cover) * base[..., None] + cover * colour
    image = Image.fromarray(np.round(rgb * 255).astype(np.uint8), "RGB")
    return image.resize((size, size * pixels.shape[0] // pixels.shape[1]),
                        Image.Resampling.NEAREST)
