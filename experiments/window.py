"""Note 004's window: open or draw an image, read its class and probability, and see why.

    python experiments/window.py [--model DIR] [--open IMAGE]

The note ends with a small Tk window, "Fashion MNIST Classifier": a button to upload an
image, then "Predicted Label: ..." and "Probability: 0.xxxx". This is that window for a
model folder as ``classifier.py`` or ``drawn_classifier.py`` writes it (default
runs/drawn_classifier, the digits model trained for drawings):

- **Open image...** (button or Ctrl+O): a PNG or JPEG of any size, shown on the canvas;
  "Dark ink on light paper" reads it inverted, as ``predict.py --invert`` does.
- **Draw** on the canvas with the mouse, bright ink on dark as in the training data; the
  prediction follows every stroke. **Clear** (or Delete) wipes it.
- "Predicted: <class>" and "Probability: 0.xxxx", a bar for every class, and the image the
  model saw. **Why?** colours that image by the gradient of the predicted class's score
  with respect to each pixel, from the network's own backward pass: red where ink pushed
  the answer up, blue where it pushed it down.
- Errors (an unreadable image, a missing or broken model) show as a message in the
  window, which stays usable. Esc or Ctrl+Q closes it.

Everything but the drawing on screen is in ``_inference.py``, shared with ``predict.py``.
"""

from __future__ import annotations

import argparse
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, font, ttk

from _common import RUNS
from _inference import (
    Model,
    input_image,
    load_model,
    predict_drawing,
    predict_image,
    render_strokes,
    saliency,
    saliency_image,
    screen_picture,
)
from PIL import Image, ImageTk

from funcnet.errors import FuncnetError

DEFAULT_MODEL = RUNS / "drawn_classifier"
MAKE_MODEL = "python experiments/drawn_classifier.py"
CANVAS = 280  # pixels, square: the drawing canvas and the space an opened image gets
PEN = 18  # pixels: the width of the mouse's stroke
SHOWN = 120  # pixels: the width of the pictures of the model's input and of why
BAR_WIDTH = 150  # pixels: a bar of probability 1
BAR_ROW = 20  # pixels between bars
TITLES = {"fashion": "Fashion MNIST Classifier", "mnist": "MNIST Classifier",
          "digits": "Digits Classifier"}
IMAGE_TYPES = [("Images", "*.png *.jpg *.jpeg *.PNG *.JPG *.JPEG"), ("All files", "*")]


class Window:
    """The classifier's window on ``root``: widgets, and what each button and key does.

    ``result`` is the last prediction shown (``_inference.predict_image``'s dict), and
    ``why`` the last saliency map computed for it, or None.
    """

    def __init__(self, root: tk.Tk, model_path: str | Path = DEFAULT_MODEL, *,
                 pen: int = PEN):
        self.root, self.pen = root, pen
        self.model: Model | None = None
        self.problem = ""  # why there is no model, when there is none
        self.result: dict | None = None
        self.why = None
        self.source: Path | None = None  # the opened image, None while drawing
        self.strokes: list[list[tuple[int, int]]] = []
        self.pictures: dict[str, ImageTk.PhotoImage] = {}  # Tk shows only referenced ones
        self.invert = tk.BooleanVar(root, value=False)
        self.explain = tk.BooleanVar(root, value=False)
        self._build()
        self.load(model_path)

    # --- layout ---------------------------------------------------------------------------

    def _build(self) -> None:
        root = self.root
        root.title(TITLES["fashion"])
        root.resizable(False, False)
        tools = ttk.Frame(root, padding=(8, 8, 8, 0))
        tools.grid(row=0, column=0, columnspan=3, sticky="we")
        self.open_button = ttk.Button(tools, text="Open image…", command=self.open_dialog)
        self.open_button.pack(side="left")
        self.clear_button = ttk.Button(tools, text="Clear", command=self.clear)
        self.clear_button.pack(side="left", padx=(6, 0))
        self.invert_box = ttk.Checkbutton(tools, text="Dark ink on light paper",
                                          variable=self.invert, command=self.reread)
        self.invert_box.pack(side="left", padx=(12, 0))
        self.why_box = ttk.Checkbutton(tools, text="Why?", variable=self.explain,
                                       command=self.show_input)
        self.why_box.pack(side="left", padx=(12, 0))

        self.canvas = tk.Canvas(root, width=CANVAS, height=CANVAS, background="black",
                                highlightthickness=0, borderwidth=0, cursor="pencil")
        self.canvas.grid(row=1, column=0, padx=8, pady=8)
        self.canvas.bind("<ButtonPress-1>", self._press)
        self.canvas.bind("<B1-Motion>", self._move)
        self.canvas.bind("<ButtonRelease-1>", self._release)

        seen = ttk.Frame(root, width=SHOWN)
        seen.grid(row=1, column=1, padx=8, pady=8, sticky="n")
        ttk.Label(seen, text="What the model sees").pack(anchor="w")
        self.seen = ttk.Label(seen)
        self.seen.pack(anchor="w", pady=(2, 8))
        self.why_caption = ttk.Label(seen, text="", wraplength=SHOWN + 40)
        self.why_caption.pack(anchor="w")
        self.why_map = ttk.Label(seen)
        self.why_map.pack(anchor="w", pady=(2, 0))

        answer = ttk.Frame(root)
        answer.grid(row=1, column=2, padx=8, pady=8, sticky="n")
        self.predicted = ttk.Label(answer, text="Predicted: –", font=("TkDefaultFont", 14,
                                                                      "bold"))
        self.predicted.pack(anchor="w")
        self.probability = ttk.Label(answer, text="Probability: –")
        self.probability.pack(anchor="w", pady=(2, 8))
        self.bars = tk.Canvas(answer, width=BAR_WIDTH, height=BAR_ROW,
                              highlightthickness=0, borderwidth=0)
        self.bars.pack(anchor="w")
        self.bar_items: list[tuple[int, int]] = []  # (rectangle, value text) per class

        self.status = ttk.Label(root, padding=(8, 0, 8, 8), wraplength=CANVAS + SHOWN + 300)
        self.status.grid(row=2, column=0, columnspan=3, sticky="we")
        for sequence, action in (("<Control-o>", self.open_dialog), ("<Escape>", self.close),
                                 ("<Control-q>", self.close), ("<Delete>", self.clear)):
            root.bind(sequence, lambda event, act=action: act())

    def _make_bars(self, names: tuple[str, ...]) -> None:
        """One row per class: its name, a bar as long as its probability, the value."""
        self.bars.delete("all")
        measure = font.nametofont("TkDefaultFont", root=self.root).measure
        left = max((measure(name) for name in names), default=0) + 8
        self.bars.configure(height=BAR_ROW * len(names),
                            width=left + BAR_WIDTH + 4 + measure("0.0000") + 4)
        self.bar_items = []
        for i, name in enumerate(names):
            y = i * BAR_ROW + BAR_ROW / 2
            self.bars.create_text(left - 6, y, text=name, anchor="e")
            bar = self.bars.create_rectangle(left, y - 6, left, y + 6, fill="#8a8a8a",
                                             width=0)
            value = self.bars.create_text(left + 4, y, text="", anchor="w")
            self.bar_items.append((bar, value))

    # --- the model --------------------------------------------------------------------------

    def load(self, path: str | Path) -> None:
        """Load the model folder at ``path``; a missing or broken one becomes a message."""
        path = Path(path)
        self.clear(quiet=True)
        try:
            self.model = load_model(path)
        except FuncnetError as e:
            self.model = None
            self._make_bars(())
            if not (path / "params.npz").is_file() and not path.is_file():
                make = MAKE_MODEL if path == DEFAULT_MODEL else f"{MAKE_MODEL} --out {path}"
                self.problem = f"No model in {path}. Make one with:  {make}"
            else:
                self.problem = f"Cannot load the model: {e}"
            self.say(self.problem, error=True)
            return
        self.problem = ""
        self.root.title(TITLES.get(self.model.dataset, TITLES["fashion"]))
        self._make_bars(self.model.class_names)
        self.say("Draw with the mouse, or open an image (Ctrl+O).")

    # --- what the buttons and keys do --------------------------------------------------------

    def open_dialog(self) -> None:
        """Ask for an image file and open it (the Open button and Ctrl+O)."""
        path = filedialog.askopenfilename(parent=self.root, title="Open image",
                                          filetypes=IMAGE_TYPES)
        if path:
            self.open_image(path)

    def open_image(self, path: str | Path) -> None:
        """Show the image at ``path`` on the canvas and predict its class."""
        path = Path(path)
        if self.model is None:
            self.say(self.problem, error=True)
            return
        try:
            result = predict_image(path, self.model, invert=self.invert.get(),
                                   top=len(self.model.class_names))
            with Image.open(path) as image:
                picture = screen_picture(image)
        except (FuncnetError, OSError) as e:
            self.say(str(e), error=True)
            return
        self.clear(quiet=True)
        self.source = path
        picture.thumbnail((CANVAS, CANVAS))
        self.pictures["canvas"] = ImageTk.PhotoImage(picture, master=self.root)
        self.canvas.create_image(CANVAS // 2, CANVAS // 2, image=self.pictures["canvas"])
        self.show(result)

    def reread(self) -> None:
        """Predict the opened image again (the invert toggle changed)."""
        if self.source is not None:
            self.open_image(self.source)

    def clear(self, quiet: bool = False) -> None:
        """Wipe the canvas and the answer."""
        self.canvas.delete("all")
        self.strokes, self.source, self.result, self.why = [], None, None, None
        self.pictures.pop("canvas", None)
        self.predicted.configure(text="Predicted: –")
        self.probability.configure(text="Probability: –")
        for bar, value in self.bar_items:
            x0, y0, _, y1 = self.bars.coords(bar)
            self.bars.coords(bar, x0, y0, x0, y1)
            self.bars.itemconfigure(value, text="")
        self.seen.configure(image="")
        self.why_map.configure(image="")
        self.why_caption.configure(text="")
        self.pictures.pop("seen", None)
        self.pictures.pop("why", None)
        if not quiet and self.model is not None:
            self.say("Draw with the mouse, or open an image (Ctrl+O).")

    def close(self) -> None:
        self.root.destroy()

    # --- drawing ------------------------------------------------------------------------------

    def _press(self, event) -> None:
        if self.source is not None:
            self.clear(quiet=True)
        self.strokes.append([(event.x, event.y)])
        r = self.pen / 2
        self.canvas.create_oval(event.x - r, event.y - r, event.x + r, event.y + r,
                                fill="white", outline="")

    def _move(self, event) -> None:
        if not self.strokes:
            return
        x0, y0 = self.strokes[-1][-1]
        self.strokes[-1].append((event.x, event.y))
        self.canvas.create_line(x0, y0, event.x, event.y, fill="white", width=self.pen,
                                capstyle="round", joinstyle="round")

    def _release(self, event) -> None:
        if self.strokes:
            self.predict_drawing()

    def drawing(self) -> Image.Image:
        """The strokes drawn so far as the grayscale picture the model is asked about."""
        return render_strokes(self.strokes, self.pen, (CANVAS, CANVAS))

    def predict_drawing(self) -> None:
        if self.model is None:
            self.say(self.problem, error=True)
            return
        self.show(predict_drawing(self.drawing(), self.model,
                                  top=len(self.model.class_names)))

    # --- the answer ---------------------------------------------------------------------------

    def show(self, result: dict) -> None:
        """Write ``result`` into the labels, the bars and the picture of the input."""
        self.result = result
        self.why = saliency(self.model, result["input"], result["index"])
        self.predicted.configure(text=f"Predicted: {result['class']}")
        self.probability.configure(text=f"Probability: {result['probability']:.4f}")
        for i, ((bar, value), p) in enumerate(zip(self.bar_items, result["probabilities"],
                                                  strict=True)):
            x0, y0, _, y1 = self.bars.coords(bar)
            self.bars.coords(bar, x0, y0, x0 + p * BAR_WIDTH, y1)
            self.bars.itemconfigure(bar, fill="#d9480f" if i == result["index"] else "#8a8a8a")
            self.bars.itemconfigure(value, text=f"{p:.4f}")
            self.bars.coords(value, x0 + p * BAR_WIDTH + 4, (y0 + y1) / 2)
        if result["hint"] is None:
            self.say("")
        elif self.invert.get():
            self.say("Read inverted, the image's border is light: untick “Dark ink on light "
                     "paper” if its ink is light.")
        else:
            self.say("The image's border is light, but the model expects bright ink on a dark "
                     "background: tick “Dark ink on light paper” if its ink is dark.")
        self.show_input()

    def input_pictures(self) -> tuple[Image.Image | None, Image.Image | None]:
        """The pictures beside the canvas: the model's input, and with Why? its saliency
        map (None when there is nothing to show)."""
        if self.result is None:
            return None, None
        seen = input_image(self.result["input"], SHOWN)
        if not self.explain.get():
            return seen, None
        return seen, saliency_image(self.result["input"], self.why, SHOWN)

    def show_input(self) -> None:
        seen, why = self.input_pictures()
        for label, key, picture in ((self.seen, "seen", seen), (self.why_map, "why", why)):
            if picture is None:
                label.configure(image="")
                self.pictures.pop(key, None)
            else:
                self.pictures[key] = ImageTk.PhotoImage(picture, master=self.root)
                label.configure(image=self.pictures[key])
        self.why_caption.configure(
            text="" if why is None else
            f"Why {self.result['class']}? Red pixels raised its score, blue ones lowered it")

    def say(self, message: str, *, error: bool = False) -> None:
        self.status.configure(text=message, foreground="#b00020" if error else "")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="window.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                        help=f"a model folder (default {DEFAULT_MODEL}; "
                             f"runs/classifier is note 004's)")
    parser.add_argument("--open", type=Path, default=None, metavar="IMAGE",
                        help="an image to open at the start")
    args = parser.parse_args(argv)
    try:
        root = tk.Tk()
    except tk.TclError as e:
        parser.error(f"no screen to open a window on ({e})")
    window = Window(root, args.model)
    if args.open is not None:
        window.open_image(args.open)
    root.mainloop()


if __name__ == "__main__":
    main()
