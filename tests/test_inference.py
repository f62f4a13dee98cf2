"""experiments/_inference.py: what predict.py and the window share, tested without a screen.

The saliency map is the network's own backward pass, so it is checked against
``jax.grad`` of the very same forward code; the stroke path is checked by its laws
(pen width, place and size on the canvas, slant and blankness do not change what the
model sees, and the ink comes out as the model's average) and its exact distance map.
"""

import importlib
import json

import numpy as np
import pytest
from drawn_digits import strokes
from helpers import load_script
from PIL import Image

from funcnet import data, layers, random
from funcnet.errors import CheckpointError

drawn_classifier = load_script("drawn_classifier")
inference = importlib.import_module("_inference")  # the module the scripts share

CANVAS = (280, 280)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The window's model from a quick drawn_classifier run (seed 0)."""
    out = tmp_path_factory.mktemp("drawn")
    drawn_classifier.main(["--quick", "--out", str(out)])
    return inference.load_model(out)


def drawing(key, digit, *, pen=None, shift=(0, 0), scale=1.0, canvas=CANVAS):
    """One mouse-drawn ``digit`` (drawn_digits' strokes), optionally with another pen,
    scaled about the canvas's corner and moved by ``shift`` pixels."""
    paths, own_pen = strokes(key, digit)
    moved = [[((x * scale) + shift[0], (y * scale) + shift[1]) for x, y in path]
             for path in paths]
    return inference.render_strokes(moved, pen or own_pen, canvas)


# --- saliency: the hand-written backward against jax.grad ---------------------------------


def jax_saliency(jax, model, pixels, index):
    """d logit[index] / d pixels by jax.grad through the model's own forward code."""
    jnp = jax.numpy
    mean, std = jnp.asarray(model.stats.mean), jnp.asarray(model.stats.std)

    def score(p):
        logits, _ = model.net.forward(model.params, (p.reshape(1, -1) - mean) / std)
        return logits[0, index]

    return np.asarray(jax.grad(score)(jnp.asarray(pixels)))


def test_saliency_is_the_backward_pass_and_agrees_with_jax_grad(jax, model):
    picture = drawing(random.key(3), 7)
    result = inference.predict_drawing(picture, model)
    for index in (result["index"], (result["index"] + 1) % 10):
        ours = inference.saliency(model, result["input"], index)
        assert ours.shape == model.input_shape
        np.testing.assert_allclose(ours, jax_saliency(jax, model, result["input"], index),
                                   rtol=1e-10, atol=1e-12)
    assert np.abs(ours).max() > 0


def test_saliency_divides_by_each_pixels_own_std(jax):
    """A model standardised per pixel: the chain rule through (p - mean) / std."""
    net = layers.mlp([16, 10], activation="tanh")
    params, _ = net.init(random.key(1), (64,))
    stats = data.Standardization(random.uniform(random.key(2), (64,)),
                                 random.uniform(random.key(3), (64,), minval=0.2, maxval=2.0))
    model = inference.Model(net, params, stats, tuple("abcdefghij"), (8, 8), 8, "box",
                            "digits")
    pixels = random.uniform(random.key(4), (8, 8))
    for index in range(10):
        np.testing.assert_allclose(inference.saliency(model, pixels, index),
                                   jax_saliency(jax, model, pixels, index),
                                   rtol=1e-10, atol=1e-12)


def test_saliency_image_is_red_up_and_blue_down():
    gradient = np.zeros((8, 8))
    gradient[1, 1], gradient[6, 6] = 2.0, -2.0
    image = np.asarray(inference.saliency_image(np.zeros((8, 8)), gradient, 80))
    assert image.shape == (80, 80, 3)
    red, blue, plain = image[15, 15], image[65, 65], image[40, 40]
    assert red[0] > 200 and red[2] < 80
    assert blue[2] > 200 and blue[0] < 80
    assert plain[0] == plain[1] == plain[2]  # no gradient: the input's gray
    flat = np.asarray(inference.saliency_image(np.zeros((8, 8)), np.zeros((8, 8)), 8))
    assert (flat == flat[0, 0]).all()


# --- the stroke path ----------------------------------------------------------------------


def test_distance_map_is_exact_within_reach():
    ink = random.uniform(random.key(5), (3, 30, 40)) > 0.97
    found = inference._distance(ink, 6)
    rows, cols = np.mgrid[:30, :40]
    for b in range(3):
        points = np.argwhere(ink[b])
        exact = np.sqrt(((rows[..., None] - points[:, 0]) ** 2
                         + (cols[..., None] - points[:, 1]) ** 2).min(axis=-1))
        near = exact <= 6
        np.testing.assert_allclose(found[b][near], exact[near], rtol=1e-6)
        assert (found[b][~near] > 6).all()


def test_stroke_path_keeps_the_models_ink_and_ignores_pen_place_and_size(model):
    target = inference.mean_ink(model)
    base = inference.to_input(np.asarray(drawing(random.key(6), 4, pen=6)) / 255.0, model)
    assert base.shape == (8, 8) and 0.0 <= base.min() and base.max() <= 1.0
    assert base.mean() == pytest.approx(target, abs=0.02)
    for variant in (drawing(random.key(6), 4, pen=22),
                    drawing(random.key(6), 4, pen=6, shift=(90, 50), canvas=(400, 360)),
                    drawing(random.key(6), 4, pen=6, scale=0.6)):
        moved = inference.to_input(np.asarray(variant) / 255.0, model)
        assert moved.mean() == pytest.approx(target, abs=0.02)
        assert np.abs(moved - base).mean() < 0.06


def test_deskew_stands_a_slanted_stroke_upright():
    upright = inference.render_strokes([[(140, 40), (140, 240)]], 12, CANVAS)
    slanted = inference.render_strokes([[(180, 40), (100, 240)]], 12, CANVAS)
    grids = np.stack([inference.stroke_grid(np.asarray(p) / 255.0, 8)
                      for p in (upright, slanted)])
    straight = inference.deskew(grids)
    for grid in straight:
        ys, xs = np.nonzero(grid > 0.5)
        assert abs(np.corrcoef(ys, xs)[0, 1]) < 0.1
    np.testing.assert_allclose(straight[0], grids[0], atol=1e-6)  # upright stays put


def test_blank_pictures_give_an_empty_input(model):
    for gray in (np.zeros((50, 40)), np.full((30, 30), 0.7)):
        assert not inference.to_input(gray, model).any()
        assert not inference.fit_box(gray, (28, 28), 20).any()


def test_box_path_fits_the_ink_as_before():
    gray = np.zeros((40, 20))
    gray[5:35, 8:12] = 1.0
    frame = inference.fit_box(gray, (28, 28), 20)
    rows, cols = np.nonzero(frame > 0.5)
    assert rows.min() == 4 and rows.max() == 23  # 20 rows, centred in 28
    assert 12 <= cols.min() and cols.max() <= 15


# --- predictions --------------------------------------------------------------------------


def test_a_drawing_and_its_png_get_one_answer(model, tmp_path):
    picture = drawing(random.key(7), 2)
    picture.save(tmp_path / "two.png")
    from_file = inference.predict_image(tmp_path / "two.png", model, top=10)
    in_memory = inference.predict_drawing(picture, model, top=10)
    assert from_file["probabilities"] == in_memory["probabilities"]
    np.testing.assert_array_equal(from_file["input"], in_memory["input"])
    probs = np.array(in_memory["probabilities"])
    assert in_memory["index"] == probs.argmax()
    assert in_memory["class"] == model.class_names[in_memory["index"]]
    assert in_memory["probability"] == probs.max()
    assert len(in_memory["top"]) == 10 and in_memory["hint"] is None


def test_render_strokes_draws_round_ends_and_dots():
    image = np.asarray(inference.render_strokes([[(50, 50)], [(100, 20), (100, 80)]], 10,
                                                (200, 100)))
    assert image.shape == (100, 200) and image[50, 50] == 255
    assert image[50, 100] == 255 and image[16, 100] == 255  # the round cap above the end
    assert image[50, 150] == 0 and image[5, 100] == 0


def test_model_folder_says_how_pictures_become_inputs(model, tmp_path):
    out = tmp_path / "drawn"
    drawn_classifier.main(["--quick", "--out", str(out)])
    spec = json.loads((out / "model.json").read_text())
    assert spec["preprocess"] == "strokes" and spec["dataset"] == "digits"
    assert inference.load_model(out).preprocess == "strokes"
    spec.pop("preprocess")
    (out / "model.json").write_text(json.dumps(spec))
    assert inference.load_model(out).preprocess == "box"  # classifier.py's folders
    (out / "model.json").write_text(json.dumps({**spec, "preprocess": "sideways"}))
    with pytest.raises(CheckpointError, match="preprocess must be one of box, strokes"):
        inference.load_model(out)


def test_input_image_is_the_input_enlarged():
    pixels = np.zeros((8, 8))
    pixels[2, 5] = 1.0
    image = np.asarray(inference.input_image(pixels, 80))
    assert image.shape == (80, 80)
    assert (image[20:30, 50:60] == 255).all() and image[:20].max() == 0
    assert isinstance(inference.input_image(pixels, 16), Image.Image)


def test_a_16_bit_png_reads_as_its_8_bit_twin(tmp_path):
    """Pillow converts a 16-bit grayscale PNG (mode I;16) to 8-bit L by clipping at 255, so
    every pixel brighter than 255/65535 read as white: dark ink on light paper came out a
    blank white page, and a mid-gray stroke as full ink."""
    eight = np.full((30, 20), 230, np.uint8)
    eight[5:25, 8:12] = 40                                       # a gray "1" on light paper
    Image.fromarray(eight).save(tmp_path / "eight.png")
    Image.fromarray(eight.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    for invert in (False, True):
        gray, border = inference.read_image(tmp_path / "sixteen.png", invert=invert)
        twin, twin_border = inference.read_image(tmp_path / "eight.png", invert=invert)
        np.testing.assert_allclose(gray, twin, rtol=0, atol=1e-12)
        assert border == pytest.approx(twin_border)
    with Image.open(tmp_path / "sixteen.png") as image:
        assert image.mode.startswith("I")
        shown = np.asarray(inference.screen_picture(image))
    assert shown.shape == (30, 20, 3) and (shown == eight[:, :, None]).all()
