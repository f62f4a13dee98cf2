"""experiments/window.py, on a real screen: a virtual X server (Xvfb) started here.

The window opens a test image through the function its Open button calls, a digit is
drawn on its canvas with generated mouse events, and the texts and bars it shows must be
what ``_inference`` predicts for that image and for that drawing. Errors become messages
and the window stays usable; Esc and Ctrl+Q close it. A screenshot of the window is
saved and must show a window.

Without Xvfb or tkinter the tests skip, except under CI (CI=true), where ``.ci/run``
installs them and a skip would hide a broken window: there they fail.
"""

import importlib
import os
import select
import shutil
import subprocess

import numpy as np
import pytest
from drawn_digits import strokes
from helpers import load_script, write_bar_idx_set
from PIL import Image, ImageDraw, ImageGrab

from funcnet import data, random

classifier = load_script("classifier")
drawn_classifier = load_script("drawn_classifier")
inference = importlib.import_module("_inference")
XVFB_START_SECONDS = 30


def unavailable(why):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{why}; CI must run the window's test (.ci/run installs what it needs)")
    pytest.skip(why)


@pytest.fixture(scope="module")
def tk():
    try:
        import tkinter
    except ImportError as e:
        unavailable(f"tkinter cannot be imported ({e})")
    return tkinter


@pytest.fixture(scope="module")
def display():
    """A private X display from Xvfb, which picks a free display number and tells it, and
    ends when its last client goes (so a crashed run leaves no server behind)."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        unavailable("Xvfb is not installed")
    read, write = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write), "-screen", "0", "1024x768x24",
                               "-nolisten", "tcp", "-terminate"], pass_fds=(write,),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as told:
        ready, _, _ = select.select([told], [], [], XVFB_START_SECONDS)
        number = told.readline().strip() if ready else ""
    if not number:
        server.kill()
        server.wait()
        pytest.fail(f"Xvfb did not start within {XVFB_START_SECONDS} s")
    yield f":{number}"
    server.terminate()
    server.wait()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("drawn")
    drawn_classifier.main(["--quick", "--out", str(out)])
    return out


@pytest.fixture
def window_module(tk):
    return load_script("window")


@pytest.fixture(scope="module")
def screen(tk, display):
    """One Tk interpreter for the module (its own root stays hidden): Tk is not made for
    one process creating and destroying interpreters one after another."""
    screen = tk.Tk(screenName=display)
    screen.withdraw()
    yield screen
    screen.destroy()


@pytest.fixture
def root(tk, screen):
    """A top-level window for the test's Window, as the script's Tk root is."""
    top = tk.Toplevel(screen)
    yield top
    if top.winfo_exists():
        top.destroy()


def draw(window, digit, key):
    """Draw ``digit`` on the canvas with mouse events; the paths drawn, in canvas pixels."""
    paths, _ = strokes(key, digit)
    drawn = []
    for path in paths:
        points = [(int(round(x)), int(round(y))) for x, y in path]
        window.canvas.event_generate("<ButtonPress-1>", x=points[0][0], y=points[0][1])
        for x, y in points[1:]:
            window.canvas.event_generate("<B1-Motion>", x=x, y=y)
        window.canvas.event_generate("<ButtonRelease-1>", x=points[-1][0], y=points[-1][1])
        drawn.append(points)
    window.root.update()
    return drawn


def assert_shows(window, expected, bar_width):
    """The labels and bars on screen say what ``expected`` (a predict result) says, and the
    picture beside the canvas is its input."""
    assert window.predicted.cget("text") == f"Predicted: {expected['class']}"
    assert window.probability.cget("text") == f"Probability: {expected['probability']:.4f}"
    assert window.result["probabilities"] == expected["probabilities"]
    names = [window.bars.itemcget(item, "text")
             for item in window.bars.find_all() if window.bars.type(item) == "text"][::2]
    assert names == list(window.model.class_names)
    for (bar, value), p in zip(window.bar_items, expected["probabilities"], strict=True):
        x0, _, x1, _ = window.bars.coords(bar)
        assert x1 - x0 == pytest.approx(p * bar_width, abs=0.01)
        assert window.bars.itemcget(value, "text") == f"{p:.4f}"
    photo = window.pictures["seen"]
    expected_seen = inference.input_image(expected["input"], photo.width())
    assert shown_pixels(window, "seen") == [expected_seen.getpixel(xy) for xy in probes(photo)]


def probes(photo):
    """Points at the centre of each of the 8x8 input's cells."""
    cell = photo.width() // 8
    return [(cell * i + cell // 2, cell * j + cell // 2) for i in range(8) for j in range(8)]


def shown_pixels(window, key):
    """Pixels the Tk photo shown under ``key`` holds (as Tk reads them back)."""
    photo = window.pictures[key]
    name = str(photo)
    values = [window.root.tk.call(name, "get", x, y) for x, y in probes(photo)]
    rgb = [tuple(int(v) for v in (value.split() if isinstance(value, str) else value))
           for value in values]
    return [r for r, _, _ in rgb] if key == "seen" else rgb


def save_screenshot(window, path):
    window.root.update()
    root = window.root
    x, y = root.winfo_rootx(), root.winfo_rooty()
    shot = ImageGrab.grab(bbox=(x, y, x + root.winfo_width(), y + root.winfo_height()),
                          xdisplay=root.winfo_screen())
    shot.save(path)
    return shot


def test_window_shows_what_predict_says_for_an_image_and_a_drawing(
        window_module, root, model_dir, tmp_path, monkeypatch):
    window = window_module.Window(root, model_dir)
    root.update()
    model = inference.load_model(model_dir)
    assert root.title() == "Digits Classifier"

    seven = Image.new("RGB", (90, 120), "white")
    ImageDraw.Draw(seven).line([(15, 20), (75, 20), (35, 105)], fill="black", width=9)
    seven.save(tmp_path / "seven.png")
    window.invert_box.invoke()  # dark ink on light paper
    asked = []
    monkeypatch.setattr(window_module.filedialog, "askopenfilename",
                        lambda **options: asked.append(options) or str(tmp_path / "seven.png"))
    window.open_button.invoke()  # the button asks for a file, then open_image opens it
    root.update()
    assert asked and asked[0]["parent"] is root
    bar_width = window_module.BAR_WIDTH
    assert_shows(window, inference.predict_image(tmp_path / "seven.png", model, invert=True,
                                                 top=10), bar_width)
    assert window.source == tmp_path / "seven.png" and window.canvas.find_all()
    window.invert_box.invoke()  # the toggle reads the same file again, as it is
    root.update()
    assert_shows(window, inference.predict_image(tmp_path / "seven.png", model, top=10),
                 bar_width)
    assert "tick “Dark ink on light paper”" in window.status.cget("text")  # light border

    paths = draw(window, 3, random.key(11))
    assert window.source is None and window.strokes == paths
    picture = inference.render_strokes(paths, window.pen, (window_module.CANVAS,) * 2)
    expected = inference.predict_drawing(picture, model, top=10)
    assert_shows(window, expected, bar_width)
    assert len(window.canvas.find_all()) == sum(len(p) for p in paths)  # a dot, then lines

    window.why_box.invoke()
    root.update()
    why = inference.saliency(model, expected["input"], expected["index"])
    np.testing.assert_array_equal(window.why, why)
    heat = inference.saliency_image(expected["input"], why, window.pictures["why"].width())
    assert shown_pixels(window, "why") == [heat.getpixel(xy)
                                           for xy in probes(window.pictures["why"])]
    assert window.why_caption.cget("text").startswith(f"Why {expected['class']}?")

    shot = save_screenshot(window, tmp_path / "window.png")
    assert shot.size == (root.winfo_width(), root.winfo_height())
    assert len(np.unique(np.asarray(shot.convert("L")))) > 10  # a window, not a blank screen

    window.clear_button.invoke()
    assert not window.canvas.find_all() and window.result is None
    assert window.predicted.cget("text") == "Predicted: –"


def test_errors_show_in_the_window_and_it_stays_usable(window_module, root, model_dir,
                                                      tmp_path):
    window = window_module.Window(root, model_dir)
    (tmp_path / "notes.png").write_text("not pixels")
    window.open_image(tmp_path / "notes.png")
    root.update()
    assert "is not an image Pillow can read" in window.status.cget("text")
    assert window.result is None
    window.open_image(tmp_path / "gone.png")
    assert "does not exist" in window.status.cget("text")
    draw(window, 0, random.key(12))
    assert window.result is not None and window.status.cget("text") == ""


def test_a_missing_or_broken_model_is_a_message(window_module, root, model_dir, tmp_path):
    missing = tmp_path / "none"
    window = window_module.Window(root, missing)
    root.update()
    text = window.status.cget("text")
    assert f"No model in {missing}" in text
    assert f"python experiments/drawn_classifier.py --out {missing}" in text
    draw(window, 1, random.key(13))
    assert window.result is None and window.status.cget("text") == text
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "params.npz").write_bytes(b"not an archive")
    (broken / "model.json").write_text((model_dir / "model.json").read_text())
    window.load(broken)
    assert window.status.cget("text").startswith("Cannot load the model:")
    window.load(model_dir)
    draw(window, 1, random.key(13))
    assert window.result is not None


@pytest.mark.parametrize("keys", ["<Escape>", "<Control-q>"])
def test_esc_and_ctrl_q_close_the_window(window_module, root, model_dir, keys):
    window_module.Window(root, model_dir)
    root.focus_force()  # keys go to the window with the focus; no window manager gives it
    root.update()
    root.event_generate(keys)
    assert not root.winfo_exists()


def test_ctrl_o_asks_for_an_image_and_opens_it(window_module, root, model_dir, tmp_path,
                                              monkeypatch):
    window = window_module.Window(root, model_dir)
    zero = Image.new("L", (40, 60), 0)
    ImageDraw.Draw(zero).ellipse([8, 8, 32, 52], outline=255, width=5)
    zero.save(tmp_path / "zero.png")
    monkeypatch.setattr(window_module.filedialog, "askopenfilename",
                        lambda **options: str(tmp_path / "zero.png"))
    root.focus_force()
    root.update()
    root.event_generate("<Control-o>")
    root.update()
    model = inference.load_model(model_dir)
    expected = inference.predict_image(tmp_path / "zero.png", model, top=10)
    assert window.source == tmp_path / "zero.png"
    assert window.result["probabilities"] == expected["probabilities"]
    monkeypatch.setattr(window_module.filedialog, "askopenfilename", lambda **options: "")
    root.event_generate("<Control-o>")  # cancelled: nothing changes
    assert window.source == tmp_path / "zero.png"


def test_a_fashion_model_names_its_classes(window_module, root, tmp_path):
    """A model trained on Fashion-MNIST files: the note's title and the ten clothing names."""
    folder = write_bar_idx_set(tmp_path / "idx", {"train": 40, "t10k": 10})
    classifier.main(["--quick", "--data", str(folder), "--out", str(tmp_path / "fashion")])
    window = window_module.Window(root, tmp_path / "fashion")
    assert root.title() == "Fashion MNIST Classifier"
    Image.fromarray(np.kron(np.eye(1, 4) * 255, np.ones((3, 9))).astype(np.uint8)).save(
        tmp_path / "bar.png")
    window.open_image(tmp_path / "bar.png")
    root.update()
    expected = inference.predict_image(tmp_path / "bar.png",
                                       inference.load_model(tmp_path / "fashion"), top=10)
    assert_shows(window, expected, window_module.BAR_WIDTH)
    assert expected["class"] in data.FASHION_MNIST_CLASSES


def test_a_16_bit_png_is_shown_and_read_as_its_8_bit_twin(window_module, root, model_dir,
                                                          tmp_path):
    """A 16-bit grayscale PNG was clipped at 255 by Pillow: the canvas showed a white page
    and the model was asked about one."""
    window = window_module.Window(root, model_dir)
    picture = Image.fromarray(np.full((60, 40), 20, np.uint8))
    ImageDraw.Draw(picture).line([(8, 10), (32, 10), (14, 52)], fill=150, width=6)
    picture.save(tmp_path / "eight.png")
    Image.fromarray(np.asarray(picture).astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    shown = {}
    for name in ("eight", "sixteen"):
        window.open_image(tmp_path / f"{name}.png")
        root.update()
        photo = window.pictures["canvas"]
        shown[name] = [window.root.tk.call(str(photo), "get", x, y)
                       for x in range(0, photo.width(), 7) for y in range(0, photo.height(), 7)]
        assert window.result is not None, window.status.cget("text")
        shown[name, "probabilities"] = window.result["probabilities"]
    assert shown["sixteen"] == shown["eight"]
    assert shown["sixteen", "probabilities"] == shown["eight", "probabilities"]
