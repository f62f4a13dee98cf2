"""Tests of funcnet.plot: every figure saved as a real PNG, and its artists checked for the data."""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import same_color
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch
from PIL import Image

from funcnet import plot
from funcnet.errors import ArgumentError, ShapeError

ROOT = Path(__file__).resolve().parents[1]
DPI = 30


@pytest.fixture(autouse=True)
def _strict_numerics():
    with np.errstate(all="raise"):
        yield


def assert_png(fig, tmp_path, name="fig.png"):
    """Save ``fig`` and check the file is a PNG of the figure's size in pixels."""
    path = plot.save(fig, tmp_path / name, dpi=DPI)
    assert path == tmp_path / name
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.mode in ("RGB", "RGBA")
        width, height = fig.get_size_inches() * DPI
        assert abs(image.size[0] - width) <= 1 and abs(image.size[1] - height) <= 1
        assert image.size[0] > 0 and image.size[1] > 0
    return path


def red(rgba):
    r, g, b = rgba[:3]
    return r > 0.6 and g < 0.4 and b < 0.4


def offsets(collection):
    return np.asarray(collection.get_offsets())


# ---------------------------------------------------------------------------
# Imports: matplotlib only on request, never pyplot.

def _python(code):
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    return result.stdout.strip()


def test_import_funcnet_does_not_import_matplotlib():
    out = _python("import sys, funcnet\n"
                  "print(sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib'"
                  " or m == 'funcnet.plot'))")
    assert out == "[]"


def test_plot_never_imports_pyplot_or_a_gui(tmp_path):
    out = _python("import sys\n"
                  "from funcnet import plot\n"
                  "assert 'matplotlib' in sys.modules\n"
                  "fig = plot.loss_curves({'a': ([0, 1], [1.0, 0.5])})\n"
                  f"plot.save(fig, {str(tmp_path / 'a.png')!r}, dpi=20)\n"
                  "print(sorted(m for m in sys.modules if m == 'matplotlib.pyplot'"
                  " or m.startswith(('tkinter', 'PyQt', 'PySide', 'gi'))))")
    assert out == "[]"
    assert (tmp_path / "a.png").is_file()


def test_style_is_read_only():
    with pytest.raises(TypeError):
        plot.STYLE["title_size"] = 30


# ---------------------------------------------------------------------------
# save

def test_save_creates_parents_and_replaces(tmp_path):
    fig = plot.loss_curves({"a": ([0, 1], [1.0, 0.5])})
    target = tmp_path / "deep" / "er" / "a.png"
    assert plot.save(fig, str(target), dpi=DPI) == target
    first = target.read_bytes()
    target.write_bytes(b"stale")
    plot.save(fig, target, dpi=DPI)
    assert target.read_bytes() == first           # same figure, same bytes; stale file gone
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.png"]


def test_save_failure_leaves_nothing(tmp_path, monkeypatch):
    fig = plot.loss_curves({"a": ([0, 1], [1.0, 0.5])})

    def broken(handle, **kwargs):
        handle.write(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        plot.save(fig, tmp_path / "a.png")
    assert list(tmp_path.iterdir()) == []


def test_save_failure_keeps_the_old_file(tmp_path, monkeypatch):
    fig = plot.loss_curves({"a": ([0, 1], [1.0, 0.5])})
    target = tmp_path / "a.png"
    target.write_bytes(b"previous")
    monkeypatch.setattr(fig, "savefig", lambda handle, **kwargs: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        plot.save(fig, target)
    assert target.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [target]


# ---------------------------------------------------------------------------
# The figures.

def test_loss_curves(tmp_path):
    curves = {"train": ([0, 1, 2, 3], [1.0, 0.5, 0.25, 0.125]),
              "test": (np.arange(4), np.array([1.2, 0.7, 0.5, 0.45]))}
    fig = plot.loss_curves(curves, log_y=True)
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["train", "test"]
    for line, (x, y) in zip(ax.lines, curves.values(), strict=True):
        np.testing.assert_array_equal(line.get_xdata(), x)
        np.testing.assert_array_equal(line.get_ydata(), y)
    assert ax.get_yscale() == "log"
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("epoch", "loss", "loss per epoch")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "test"]


def test_loss_curves_labels_and_nan_gap(tmp_path):
    fig = plot.loss_curves({"acc": ([0, 1, 2], [0.5, np.nan, 0.9])}, ylabel="accuracy",
                           title="XOR")
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert (ax.get_ylabel(), ax.get_title(), ax.get_yscale()) == ("accuracy", "XOR", "linear")
    assert np.isnan(ax.lines[0].get_ydata()[1])
    diverged = plot.loss_curves({"a": ([0, 1], [0.5, 2.0]), "b": ([0, 1], [np.nan, np.nan])},
                                log_y=True)
    assert_png(diverged, tmp_path, "diverged.png")


def test_regression_snapshots(tmp_path):
    x = np.array([0.3, -1.0, 0.0, 1.0, -0.5])                     # unsorted on purpose
    t = np.sin(np.pi * x)
    snapshots = [(epoch, t + 0.1 * epoch) for epoch in (0, 200, 400, 600, 800)]
    fig = plot.regression_snapshots(x, t, snapshots, columns=2)
    assert_png(fig, tmp_path)
    assert len(fig.axes) == 5                                      # sixth grid cell removed
    order = np.argsort(x)
    for ax, (epoch, y) in zip(fig.axes, snapshots, strict=True):
        assert ax.get_title() == f"epoch {epoch}"
        (line,) = ax.lines
        (scatter,) = ax.collections
        np.testing.assert_array_equal(line.get_xdata(), x[order])
        np.testing.assert_array_equal(line.get_ydata(), t[order])
        assert np.all(np.diff(line.get_xdata()) > 0)
        np.testing.assert_array_equal(offsets(scatter), np.stack([x, y], axis=1))
        assert same_color(scatter.get_edgecolor()[0], plot.STYLE["prediction"])
        assert red(scatter.get_edgecolor()[0])
    assert fig.get_suptitle() == "regression while training"
    assert (fig.get_supxlabel(), fig.get_supylabel()) == ("x", "y")


def test_decision_regions(tmp_path):
    points = np.array([[-1.0, 0.5], [0.0, -0.5], [0.5, 0.9], [1.0, -1.0]])
    predicted = np.array([0, 1, 0, 1])
    xs = np.linspace(-1, 1, 7)
    fig = plot.decision_regions(points, predicted, boundary=(xs, np.sin(np.pi * xs)),
                                class_names=["above", "below"])
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    first, second = ax.collections
    np.testing.assert_array_equal(offsets(first), points[[0, 2]])
    np.testing.assert_array_equal(offsets(second), points[[1, 3]])
    assert [first.get_label(), second.get_label()] == ["above", "below"]
    assert not same_color(first.get_edgecolor()[0], second.get_edgecolor()[0])
    (boundary,) = ax.lines
    assert boundary.get_linestyle() == "--"
    np.testing.assert_allclose(boundary.get_ydata(), np.sin(np.pi * xs))
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("x", "y", "predicted classes")


def test_decision_regions_one_class_without_names(tmp_path):
    fig = plot.decision_regions([[0, 0], [1, 1]], [1.0, 1.0])      # float labels, integral
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert [c.get_label() for c in ax.collections] == ["class 1"]
    assert len(ax.lines) == 0


def test_decision_surface(tmp_path):
    seen = []

    def predict(p):
        seen.append(p)
        return 1 / (1 + np.exp(-10 * (p[:, 0] - p[:, 1])))

    xor = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    fig = plot.decision_surface(predict, points=xor, labels=[0, 1, 1, 0], resolution=7)
    assert_png(fig, tmp_path)
    (grid,) = seen
    assert grid.shape == (49, 2) and grid.dtype == np.float64
    assert grid.min(axis=0).tolist() == [-0.5, -0.5] and grid.max(axis=0).tolist() == [1.5, 1.5]
    ax, bar = fig.axes
    assert bar.get_ylabel() == "P(class 1)"
    filled, half, zeros, ones = ax.collections
    assert half.levels.tolist() == [0.5]
    np.testing.assert_array_equal(offsets(zeros), xor[[0, 3]])
    np.testing.assert_array_equal(offsets(ones), xor[[1, 2]])
    assert ax.get_xlim() == (-0.5, 1.5) and ax.get_ylim() == (-0.5, 1.5)
    assert ax.get_title() == "decision surface"


def test_decision_surface_column_output_and_no_crossing(tmp_path):
    fig = plot.decision_surface(lambda p: np.full((len(p), 1), 0.25), xlim=(0, 1), ylim=(2, 3),
                                resolution=3)
    assert_png(fig, tmp_path)
    ax, _ = fig.axes
    assert len(ax.collections) == 1                                # no 0.5 line, no points
    assert ax.get_xlim() == (0, 1) and ax.get_ylim() == (2, 3)


APPLE_NODES = [
    {"id": "apple", "label": "apple", "pos": (0, 1), "kind": "value"},
    {"id": "count", "label": "apple count", "pos": (0, 0), "kind": "value"},
    {"id": "mul", "label": "×", "pos": (1.5, 0.5)},
    {"id": "tax", "label": "tax", "pos": (1.5, -0.5), "kind": "value"},
    {"id": "mul_tax", "label": "×", "pos": (3, 0)},
    {"id": "price", "label": "price", "pos": (4.5, 0), "kind": "value"},
]
APPLE_EDGES = [
    {"src": "apple", "dst": "mul", "forward": 100, "backward": 2.2},
    {"src": "count", "dst": "mul", "forward": 2, "backward": 110},
    {"src": "mul", "dst": "mul_tax", "forward": 200, "backward": 1.1},
    {"src": "tax", "dst": "mul_tax", "forward": 1.1, "backward": 200},
    {"src": "mul_tax", "dst": "price", "forward": 100 * 2 * 1.1, "backward": 1},
]


def test_computational_graph(tmp_path):
    fig = plot.computational_graph(APPLE_NODES, APPLE_EDGES)
    assert_png(fig, tmp_path)                                      # also draws: extents known
    (ax,) = fig.axes
    by_gid = {gid: [t for t in ax.texts if t.get_gid() == gid]
              for gid in ("node", "forward", "backward")}
    assert [t.get_text() for t in by_gid["node"]] == [n["label"] for n in APPLE_NODES]
    assert [t.get_text() for t in by_gid["forward"]] == ["100", "2", "200", "1.1", "220"]
    assert [t.get_text() for t in by_gid["backward"]] == ["2.2", "110", "1.1", "200", "1"]
    assert all(same_color(t.get_color(), plot.STYLE["gradient"]) for t in by_gid["backward"])
    assert not same_color(plot.STYLE["gradient"], plot.STYLE["forward"])
    fig.draw_without_rendering()
    for above, below in zip(by_gid["forward"], by_gid["backward"], strict=True):
        top, bottom = above.get_window_extent(), below.get_window_extent()
        assert top.y0 > bottom.y1                                  # value above, gradient below
    assert sum(isinstance(p, Circle) for p in ax.patches) == 2
    assert sum(isinstance(p, FancyArrowPatch) for p in ax.patches) == len(APPLE_EDGES)
    legend = " ".join(t.get_text() for t in fig.legends[0].get_texts())
    assert "above" in legend and "gradient" in legend and "below" in legend
    assert ax.get_title() == "computational graph"


def test_computational_graph_strings_and_missing_values(tmp_path):
    nodes = [{"id": 0, "label": "x", "pos": (0, 0), "kind": "value"},
             {"id": 1, "label": "+", "pos": (1, 0)}]
    fig = plot.computational_graph(nodes, [{"src": 0, "dst": 1, "forward": "x₀"}], title="add")
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts if t.get_gid() == "forward"] == ["x₀"]
    assert [t for t in ax.texts if t.get_gid() == "backward"] == []
    assert ax.get_title() == "add"


def test_gradient_check_report(tmp_path):
    rows = [("W1", 1e-10, 3e-8), ("b1", 0.0, 2e-9), ("W2", 5e-7, None), ("b2", None, 4e-5)]
    fig = plot.gradient_check_report(rows, tol_jax=1e-7, tol_numerical=1e-6)
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    bars = ax.patches
    assert [b.get_width() for b in bars] == [1e-10, 1e-18, 5e-7, 3e-8, 2e-9, 4e-5]
    centers = [b.get_y() + b.get_height() / 2 for b in bars]
    np.testing.assert_allclose(centers, [-0.19, 0.81, 1.81, 0.19, 1.19, 3.19])
    assert [bool(b.get_hatch()) for b in bars] == [False, False, True, False, False, True]
    assert [line.get_xdata()[0] for line in ax.lines] == [1e-7, 1e-6]
    assert all(line.get_linestyle() == "--" for line in ax.lines)
    assert "zero drawn at 1e-18" in ax.get_xlabel()
    assert [t.get_text() for t in ax.get_yticklabels()] == ["W1", "b1", "W2", "b2"]
    assert ax.get_xlim()[0] < 1e-18


def test_gradient_check_report_without_zeros_says_nothing_about_a_floor(tmp_path):
    fig = plot.gradient_check_report([("W", 2e-9, 3e-7)])
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "relative error (log scale)"
    assert [b.get_width() for b in ax.patches] == [2e-9, 3e-7]


def test_confusion_matrix(tmp_path):
    M = np.array([[5, 1, 0], [2, 7, 1], [0, 0, 0]])                # last class never seen
    names = ["cat", "dog", "bird"]
    fig = plot.confusion_matrix(M, names)
    assert_png(fig, tmp_path)
    ax, bar = fig.axes
    assert len(ax.texts) == M.size
    for text in ax.texts:                                          # column j at x, row i at y
        j, i = text.get_position()
        assert text.get_text() == str(M[int(i), int(j)])
    image = ax.get_images()[0].get_array()
    expected = np.array([[5 / 6, 1 / 6, 0], [0.2, 0.7, 0.1], [0, 0, 0]])
    np.testing.assert_allclose(image, expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    assert all(t.get_rotation() == 45 for t in ax.get_xticklabels())
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert bar.get_ylabel() == "fraction of the true class"


def test_confusion_matrix_counts(tmp_path):
    M = [[3.0, 1.5], [0.0, 2.0]]
    fig = plot.confusion_matrix(M, ["a", "b"], normalize=False, title="counts")
    assert_png(fig, tmp_path)
    ax, bar = fig.axes
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), M)
    assert [t.get_text() for t in ax.texts] == ["3", "1.5", "0", "2"]
    assert (ax.get_title(), bar.get_ylabel()) == ("counts", "count")


def test_samples_with_probabilities(tmp_path):
    images = np.arange(3 * 4 * 5, dtype=float).reshape(3, 4, 5)
    probs = np.array([[0.1, 0.7, 0.2, 0.0],
                      [0.5, 0.1, 0.15, 0.25],
                      [0.0, 0.0, 0.1, 0.9]])
    names = ["A", "B", "C", "D"]
    fig = plot.samples_with_probabilities(images, probs, names, true_labels=[1, 3, 3],
                                          top=2, columns=2)
    assert_png(fig, tmp_path)
    assert len(fig.axes) == 6
    image_axes, bar_axes = fig.axes[0::2], fig.axes[1::2]
    titles = ["B 70.0%", "A 50.0%", "D 90.0%"]
    verdicts = ["green", "red", "green"]
    for i, (ax, title, verdict) in enumerate(zip(image_axes, titles, verdicts, strict=True)):
        assert ax.get_title() == title
        assert same_color(ax.title.get_color(), plot.STYLE["good" if verdict == "green" else "bad"])
        np.testing.assert_array_equal(ax.get_images()[0].get_array(), images[i])
    top_two = [([0.7, 0.2], ["B", "C"]), ([0.5, 0.25], ["A", "D"]), ([0.9, 0.1], ["D", "C"])]
    for ax, (widths, labels) in zip(bar_axes, top_two, strict=True):
        assert [b.get_width() for b in ax.patches] == widths
        assert [t.get_text() for t in ax.get_yticklabels()] == labels
        assert ax.get_xlabel() == "probability" and ax.get_xlim() == (0.0, 1.0)
    # sample 1 was wrong: the predicted bar is red, the true class's bar green
    wrong = bar_axes[1].patches
    assert same_color(wrong[0].get_facecolor(), plot.STYLE["bad"])
    assert same_color(wrong[1].get_facecolor(), plot.STYLE["good"])


def test_samples_without_labels_are_neutral(tmp_path):
    fig = plot.samples_with_probabilities(np.zeros((1, 2, 2)), [[0.4, 0.6]], ["no", "yes"],
                                          top=1)
    assert_png(fig, tmp_path)
    image_ax, bar_ax = fig.axes
    assert image_ax.get_title() == "yes 60.0%"
    assert same_color(image_ax.title.get_color(), plot.STYLE["forward"])
    assert [b.get_width() for b in bar_ax.patches] == [0.6]


def test_activation_histograms(tmp_path):
    layers = [("layer 1", np.linspace(0, 1, 100)), ("layer 2", np.full((4, 5), 0.5)),
              ("layer 3", [[0.0, 1.0], [0.25, 0.75]])]
    fig = plot.activation_histograms(layers, bins=10)
    assert_png(fig, tmp_path)
    assert len(fig.axes) == 3
    for ax, (label, values) in zip(fig.axes, layers, strict=True):
        assert ax.get_title() == label and ax.get_xlabel() == "activation"
        assert len(ax.patches) == 10
        assert sum(p.get_height() for p in ax.patches) == np.size(values)
        assert math.isclose(ax.patches[0].get_x(), 0.0, abs_tol=1e-12)  # common bins
        assert math.isclose(ax.patches[-1].get_x() + ax.patches[-1].get_width(), 1.0,
                            abs_tol=1e-12)
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[2])
    assert fig.axes[0].get_ylabel() == "count"
    assert fig.get_suptitle() == "activations per layer"


def test_optimizer_paths(tmp_path):
    calls = []

    def f(X, Y):
        calls.append(X.shape)
        return (X - 1) ** 2 + 10 * (Y + 0.5) ** 2

    paths = {"sgd": np.array([[-2.0, 1.0], [-1.0, 0.0], [0.5, -0.4]]),
             "momentum": [[2.0, -1.0], [1.0, -0.5]]}
    fig = plot.optimizer_paths(f, paths, xlim=(-3, 3), ylim=(-1.5, 1.5), resolution=13)
    assert_png(fig, tmp_path)
    assert calls == [(13, 13)]
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["sgd", "momentum"]
    for line, path in zip(ax.lines, paths.values(), strict=True):
        np.testing.assert_array_equal(line.get_xydata(), path)
        assert line.get_marker() == "o"
    contours, star = ax.collections
    np.testing.assert_allclose(offsets(star), [[1.0, -0.5]])       # on the 13-point grid
    assert star.get_label() == "minimum"
    assert ax.get_xlim() == (-3, 3) and ax.get_title() == "optimizer paths"


def test_optimizer_paths_explicit_minimum(tmp_path):
    fig = plot.optimizer_paths(lambda X, Y: X * 0 + Y * 0, {"a": [[0, 0]]}, xlim=(0, 1),
                               ylim=(0, 1), minimum=(0.25, 0.75), resolution=4)
    assert_png(fig, tmp_path)
    np.testing.assert_array_equal(offsets(fig.axes[0].collections[-1]), [[0.25, 0.75]])


def test_bar_chart(tmp_path):
    groups = {"numpy": {"forward": 1.2, "backward": 2.0},
              "jax": {"forward": 0.3, "backward": 0.5, "update": 0.1}}
    fig = plot.bar_chart(groups, ylabel="seconds", log_y=True, title="timings")
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    forward, backward, update = ax.containers
    assert [b.get_height() for b in forward] == [1.2, 0.3]
    assert [b.get_height() for b in backward] == [2.0, 0.5]
    assert [b.get_height() for b in update] == [0.1]                # missing in "numpy"
    assert [b.get_label() for b in ax.containers] == ["forward", "backward", "update"]
    width = 0.8 / 3                                                # three series share 0.8
    np.testing.assert_allclose([b.get_x() + b.get_width() / 2 for b in forward],
                               [-width, 1 - width])
    np.testing.assert_allclose([b.get_x() + b.get_width() / 2 for b in update], [1 + width])
    assert sorted(t.get_text() for t in ax.texts) == ["0.1", "0.3", "0.5", "1.2", "2"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["numpy", "jax"]
    assert (ax.get_ylabel(), ax.get_title(), ax.get_yscale()) == ("seconds", "timings", "log")


def test_every_figure_is_a_figure_with_titles(tmp_path):
    figures = [
        plot.loss_curves({"a": ([0, 1], [1, 2])}),
        plot.regression_snapshots([0, 1], [0, 1], [(0, [0, 1])]),
        plot.decision_regions([[0, 0]], [0]),
        plot.decision_surface(lambda p: np.zeros(len(p)), resolution=2),
        plot.computational_graph([{"id": 0, "label": "+", "pos": (0, 0)}], []),
        plot.gradient_check_report([("W", 0.0, 0.0)]),
        plot.confusion_matrix([[1]], ["a"]),
        plot.samples_with_probabilities(np.zeros((1, 2, 2)), [[1.0]], ["a"], top=1),
        plot.activation_histograms([("a", [0.0])]),
        plot.optimizer_paths(lambda X, Y: X + Y, {"a": [[0, 0]]}, xlim=(0, 1), ylim=(0, 1),
                             resolution=2),
        plot.bar_chart({"g": {"s": 1.0}}, ylabel="y"),
    ]
    for fig in figures:
        assert isinstance(fig, Figure)
        assert fig.get_layout_engine() is not None
        assert any(ax.get_title() for ax in fig.axes) or fig.get_suptitle()


# ---------------------------------------------------------------------------
# Every error message.

IMAGES = np.zeros((2, 3, 3))
PROBS = np.array([[0.5, 0.5], [1.0, 0.0]])
NODE = {"id": "a", "label": "+", "pos": (0, 0)}


ERRORS = [
    (lambda: plot.save(Figure(), "a.jpg"), ArgumentError, r"save: path must end in \.png"),
    (lambda: plot.save(Figure(), "a.png", dpi=0), ArgumentError,
     r"save: dpi must be a positive integer, got 0"),
    (lambda: plot.decision_regions(np.zeros((3, 2)), [0, 0]), ShapeError,
     r"decision_regions: expected predicted of shape \(3,\), got shape \(2,\)"),
    (lambda: plot.decision_regions(np.zeros((2, 2)), [0, 2], class_names=["a", "b"]),
     ArgumentError, r"decision_regions: predicted must be integer classes in \[0, 2\), "
     r"got values from 0 to 2"),
    (lambda: plot.decision_regions(np.zeros((2, 2)), [0, 0.5]), ArgumentError,
     r"decision_regions: predicted must be integer classes in \[0, inf\)"),
    (lambda: plot.decision_regions(np.zeros((2, 2)), [[0.3, 0.7], [0.9, 0.1]]), ShapeError,
     r"decision_regions: expected predicted of shape \(2,\), got shape \(2, 2\)"),
    (lambda: plot.decision_surface(lambda p: np.zeros((len(p), 2)), resolution=2), ShapeError,
     r"decision_surface: predict must return shape \(4,\) for \(4, 2\) points, "
     r"got shape \(4, 2\)"),
    (lambda: plot.decision_surface(lambda p: p[:, 0] * 3, resolution=2), ArgumentError,
     r"decision_surface: predict's output must be probabilities in \[0, 1\], "
     r"got values from -1\.5 to 4\.5"),
    (lambda: plot.decision_surface(lambda p: np.full(len(p), np.nan), resolution=2),
     ArgumentError, r"decision_surface: predict's output must be probabilities in \[0, 1\], "
     r"got values from nan to nan"),
    (lambda: plot.decision_surface(lambda p: p[:, 0], points=np.zeros((2, 2)), labels=[0]),
     ShapeError, r"decision_surface: expected labels of shape \(2,\), got shape \(1,\)"),
    (lambda: plot.computational_graph([{"id": "a", "label": "+"}], []), ArgumentError,
     r"computational_graph: nodes\[0\] has the keys \['id', 'label'\]; "
     r"expected \['id', 'label', 'pos'\] and optionally \['kind'\]"),
    (lambda: plot.computational_graph([{**NODE, "colour": "red"}], []), ArgumentError,
     r"computational_graph: nodes\[0\] has the keys \['colour', 'id', 'label', 'pos'\]"),
    (lambda: plot.computational_graph([NODE], [{"src": "a", "dst": "a", "fwd": 1}]),
     ArgumentError, r"computational_graph: edges\[0\] has the keys \['dst', 'fwd', 'src'\]; "
     r"expected \['dst', 'src'\] and optionally \['backward', 'forward'\]"),
    (lambda: plot.computational_graph([{**NODE, "kind": "box"}], []), ArgumentError,
     r"computational_graph: nodes\[0\] kind must be 'op' or 'value', got 'box'"),
    (lambda: plot.computational_graph([NODE], [{"src": "a", "dst": "b"}]), ArgumentError,
     r"computational_graph: edges\[0\] dst 'b' is not a node id"),
    (lambda: plot.confusion_matrix(np.zeros((2, 3)), ["a", "b"]), ShapeError,
     r"confusion_matrix: expected a square matrix of shape \(k, k\), got shape \(2, 3\)"),
    (lambda: plot.confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"]), ShapeError,
     r"confusion_matrix: class_names has 3 names but matrix has 2 classes"),
    (lambda: plot.samples_with_probabilities(IMAGES, PROBS[:1], ["a", "b"]), ShapeError,
     r"samples_with_probabilities: probs has 1 rows but images has 2 images"),
    (lambda: plot.samples_with_probabilities(IMAGES, PROBS, ["a"]), ShapeError,
     r"samples_with_probabilities: class_names has 1 names but probs has 2 classes"),
    (lambda: plot.samples_with_probabilities(IMAGES, PROBS * 2, ["a", "b"]), ArgumentError,
     r"samples_with_probabilities: probs must be probabilities in \[0, 1\], "
     r"got values from 0 to 2"),
    (lambda: plot.samples_with_probabilities(IMAGES, PROBS, ["a", "b"], top=3), ArgumentError,
     r"samples_with_probabilities: top must be from 1 to the 2 classes, got 3"),
    (lambda: plot.samples_with_probabilities(IMAGES, PROBS, ["a", "b"], true_labels=[0, 2]),
     ArgumentError, r"samples_with_probabilities: true_labels must be integer classes in "
     r"\[0, 2\), got values from 0 to 2"),
    # shapes matplotlib refused deep inside, with errors naming neither function nor argument
    (lambda: plot.samples_with_probabilities(IMAGES[:, None], PROBS, ["a", "b"], top=1),
     ShapeError, r"samples_with_probabilities: expected grayscale images of shape \(n, h, w\), "
     r"got shape \(2, 1, 3, 3\) \(NCHW: take images\[:, 0\]\)"),
    (lambda: plot.samples_with_probabilities(IMAGES[:1], PROBS[0], ["a", "b"], top=1),
     ShapeError, r"samples_with_probabilities: expected probs of shape \(n, k\) with n >= 1, "
     r"got shape \(2,\)"),
    (lambda: plot.samples_with_probabilities(IMAGES, PROBS, ["a", "b"], top=1, columns=0),
     ArgumentError, r"samples_with_probabilities: columns must be a positive integer, got 0"),
    (lambda: plot.regression_snapshots([0, 1], [0, 1], [(0, [0, 1])], columns=0),
     ArgumentError, r"regression_snapshots: columns must be a positive integer, got 0"),
    (lambda: plot.loss_curves({"train": ([0, 1], [1.0, 0.5]), "val": ([0, 1, 2], [1.0, 0.5])}),
     ShapeError, r"loss_curves: curve 'val' must have x and y of shape \(n,\), "
     r"got shapes \(3,\) and \(2,\)"),
    (lambda: plot.decision_surface(lambda p: np.zeros(len(p)), resolution=1), ArgumentError,
     r"decision_surface: resolution must be at least 2 \(points per side of the grid\), "
     r"got 1"),
    (lambda: plot.optimizer_paths(lambda X, Y: X + Y, {"sgd": [1.0, 1.0]}, xlim=(0, 1),
                                  ylim=(0, 1), resolution=3), ShapeError,
     r"optimizer_paths: path 'sgd' must have shape \(steps, 2\), got shape \(2,\)"),
    (lambda: plot.optimizer_paths(lambda X, Y: np.full(X.shape, np.nan), {}, xlim=(0, 1),
                                  ylim=(0, 1), resolution=3), ArgumentError,
     r"optimizer_paths: f is NaN everywhere in the window"),
    (lambda: plot.activation_histograms([("a", [])]), ArgumentError,
     r"activation_histograms: 'a' must hold finite values, got no values"),
    (lambda: plot.activation_histograms([("a", [1.0])], bins=0), ArgumentError,
     r"activation_histograms: bins must be a positive integer, got 0"),
]


@pytest.mark.parametrize("call, error, message", ERRORS,
                         ids=[m.split(":")[0] + f"-{i}" for i, (_, _, m) in enumerate(ERRORS)])
def test_error_messages(call, error, message):
    with pytest.raises(error, match=f"^{message}"):
        call()


def test_errors_are_builtin_errors_too():
    with pytest.raises(ValueError):
        plot.confusion_matrix(np.zeros((2, 3)), ["a", "b"])
    with pytest.raises(ValueError):
        plot.samples_with_probabilities(IMAGES, PROBS * 2, ["a", "b"])


def test_gradient_check_report_draws_a_nan_or_infinite_error_as_failed(tmp_path):
    """A NaN gradient gives a NaN relative error: it fails every tolerance, and the figure
    must say so (it drew it in black, unhatched and without a bar, as if it passed; an
    infinite error could not be drawn at all)."""
    fig = plot.gradient_check_report([("W", math.nan, 1e-9), ("b", 1e-9, math.inf)],
                                     tol_jax=1e-7, tol_numerical=1e-6)
    assert_png(fig, tmp_path)
    (ax,) = fig.axes
    assert [bool(b.get_hatch()) for b in ax.patches] == [True, False, False, True]
    right = ax.get_xlim()[1]
    assert [b.get_width() for b in ax.patches] == [right, 1e-9, 1e-9, right]
    colors = {t.get_text(): t.get_color() for t in ax.texts}
    assert colors["nan"] == colors["inf"] == plot.STYLE["bad"]
    assert colors["1.0e-09"] == "black"


def test_optimizer_paths_star_skips_where_f_is_nan(tmp_path):
    """np.argmin returns the first NaN: a function undefined in part of the window (a log,
    a square root) put the 'minimum' star in the window's corner."""
    with np.errstate(invalid="ignore"):
        fig = plot.optimizer_paths(lambda X, Y: np.log(X) + (X - 1) ** 2 + Y ** 2,
                                   {"sgd": [[1.5, 0.5], [1.0, 0.0]]}, xlim=(-1, 2),
                                   ylim=(-1, 1), resolution=6)
    assert_png(fig, tmp_path)
    (x, y), = offsets(fig.axes[0].collections[-1])
    assert (x, y) == pytest.approx((0.2, -0.2))                   # not the NaN corner (-1, -1)


def test_activation_histograms_refuse_nan_instead_of_drawing_empty_panels():
    """One NaN made every shared bin edge NaN: every panel was drawn empty, silently (a
    diverged net is when one looks at its activations)."""
    with pytest.raises(ArgumentError, match=r"^activation_histograms: 'layer 2' must hold "
                                            r"finite values, got 1 NaN or infinite values"):
        plot.activation_histograms([("layer 1", [0.0, 1.0]), ("layer 2", [0.5, np.nan])])
