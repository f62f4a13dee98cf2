"""Figures for the experiments: plain data in, a matplotlib ``Figure`` out.

This is the only funcnet module that imports matplotlib, and ``import funcnet``
does not load it: write ``from funcnet import plot``. Every function takes
plain data (arrays, lists, dicts, callables on arrays), never a funcnet
object, and builds its figure with ``matplotlib.figure.Figure`` directly. No
pyplot is involved, so there is no global list of open figures and no GUI
backend is ever selected; the figures can be made on a server or in a test.

Every figure uses the one ``STYLE`` table below, has a title and axis labels,
and is laid out by matplotlib's constrained layout. ``save`` writes a PNG
atomically.

>>> fig = loss_curves({"train": ([0, 1, 2], [1.0, 0.5, 0.25])})
>>> [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
[('epoch', 'loss')]
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    ShapeError,
    describe,
    require_positive_int,
    require_rank,
)

__all__ = [
    "STYLE",
    "LOG_FLOOR",
    "save",
    "loss_curves",
    "regression_snapshots",
    "decision_regions",
    "decision_surface",
    "computational_graph",
    "gradient_check_report",
    "confusion_matrix",
    "samples_with_probabilities",
    "activation_histograms",
    "optimizer_paths",
    "bar_chart",
]

#: The look of every figure: font sizes (points), colours, colour maps, panel size (inches).
STYLE = MappingProxyType({
    "title_size": 11,
    "label_size": 9,
    "tick_size": 8,
    "small_size": 7,
    "line_width": 1.5,
    "marker_size": 30,
    "panel_inches": (3.2, 2.6),
    "palette": ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"),
    "target": "#1f77b4",
    "prediction": "#d62728",
    "forward": "#222222",
    "gradient": "#d62728",
    "good": "#2ca02c",
    "bad": "#d62728",
    "neutral": "#a0a0a0",
    "grid": "#e4e4e4",
    "surface_cmap": "RdBu_r",
    "count_cmap": "Blues",
    "contour_cmap": "viridis",
    "image_cmap": "gray",
    "label_colors": ("white", "black"),
})

#: Zeros cannot sit on a log axis: ``gradient_check_report`` draws them at this value.
LOG_FLOOR = 1e-18

_MARKERS = ("+", "x", "o", "s", "^", "v", "D", "*")


# ---------------------------------------------------------------------------
# Validation of plain data.

def _array(who: str, name: str, value: Any, rank: int, layout: str) -> np.ndarray:
    """``value`` as a float64 array of rank ``rank`` (``layout`` spells the shape)."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArrayTypeError(
            f"{who}: expected {name} to be numbers of shape {layout}, got {describe(value)}"
        ) from None
    require_rank(who, name, arr, rank, layout)
    return arr


def _finite(who: str, name: str, arr: np.ndarray, *, allow_nan: bool = False) -> np.ndarray:
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if bad.any():
        kind = "infinite" if allow_nan else "non-finite"
        raise ArgumentError(f"{who}: {name} must be finite, got {int(bad.sum())} {kind} values")
    return arr


def _labels(who: str, name: str, value: Any, n: int, k: int | None) -> np.ndarray:
    """Integer class labels of shape (n,), each in [0, k) when ``k`` is given."""
    arr = _finite(who, name, _array(who, name, value, 1, "(n,)"))
    if arr.shape[0] != n:
        raise ShapeError(f"{who}: expected {name} of shape ({n},), got shape {arr.shape}")
    if np.any(arr != np.round(arr)) or np.any(arr < 0) or (k is not None and np.any(arr >= k)):
        limit = f"[0, {k})" if k is not None else "[0, inf)"
        raise ArgumentError(f"{who}: {name} must be integer classes in {limit}, "
                            f"got values from {arr.min():g} to {arr.max():g}")
    return arr.astype(np.int64)


def _mapping(who: str, name: str, value: Any) -> Mapping:
    if not isinstance(value, Mapping) or not value:
        raise ArgumentError(f"{who}: expected {name} to be a non-empty dict, got {describe(value)}")
    return value


def _pair(who: str, name: str, value: Any, spelled: str = "(x, y)") -> tuple[Any, Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ArgumentError(f"{who}: expected {name} to be a pair {spelled}, "
                            f"got {describe(value)}")
    return value[0], value[1]


def _xy(who: str, name: str, value: Any) -> tuple[np.ndarray, np.ndarray]:
    """A pair of 1-D arrays of one length (at least one point)."""
    x, y = _pair(who, name, value)
    x = _array(who, f"{name} x", x, 1, "(n,)")
    y = _array(who, f"{name} y", y, 1, "(n,)")
    if x.shape != y.shape or x.size == 0:
        raise ShapeError(f"{who}: {name} needs x and y of one non-zero length, "
                         f"got lengths {x.size} and {y.size}")
    return x, y


def _real(who: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ArgumentError(f"{who}: {name} must be a real number, got {describe(value)}")
    if not math.isfinite(value):
        raise ArgumentError(f"{who}: {name} must be finite, got {value!r}")
    return float(value)


def _interval(who: str, name: str, value: Any) -> tuple[float, float]:
    lo, hi = _pair(who, name, value, "(low, high)")
    lo, hi = _real(who, f"{name}[0]", lo), _real(who, f"{name}[1]", hi)
    if not lo < hi:
        raise ArgumentError(f"{who}: {name} must be (low, high) with low < high, got {value!r}")
    return lo, hi


def _names(who: str, name: str, value: Any, k: int, source: str) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ArgumentError(f"{who}: expected {name} to be a list of strings, "
                            f"got {describe(value)}")
    if len(value) != k:
        raise ShapeError(f"{who}: {name} has {len(value)} names but {source} has {k} classes")
    return [str(v) for v in value]


def _positive(who: str, name: str, values: np.ndarray) -> None:
    values = values[~np.isnan(values)]
    if values.size and values.min() <= 0:
        raise ArgumentError(f"{who}: {name} must be positive on a log axis, "
                            f"got a minimum of {values.min():g}")


# ---------------------------------------------------------------------------
# The shared look.

def _figure(rows: int = 1, columns: int = 1, *, scale: float = 1.0) -> Figure:
    width, height = STYLE["panel_inches"]
    return Figure(figsize=(width * columns * scale, height * rows * scale), layout="constrained")


def _panels(fig: Figure, n: int, columns: int, **share: Any) -> list[Any]:
    """``n`` axes in a grid ``columns`` wide; the unused cells of the last row are removed."""
    rows, columns = -(-n // columns), min(columns, n)
    grid = fig.subplots(rows, columns, squeeze=False, **share).ravel()
    for ax in grid[n:]:
        ax.remove()
    return list(grid[:n])


def _decorate(ax: Any, title: str, xlabel: str, ylabel: str, *, grid: bool = True) -> None:
    ax.set_title(title, fontsize=STYLE["title_size"])
    ax.set_xlabel(xlabel, fontsize=STYLE["label_size"])
    ax.set_ylabel(ylabel, fontsize=STYLE["label_size"])
    ax.tick_params(labelsize=STYLE["tick_size"])
    if grid:
        ax.grid(True, color=STYLE["grid"], linewidth=0.8)
        ax.set_axisbelow(True)


def _legend(ax: Any, **kwargs: Any) -> None:
    ax.legend(fontsize=STYLE["small_size"], frameon=False, **kwargs)


def _suptitle(fig: Figure, title: str) -> None:
    fig.suptitle(title, fontsize=STYLE["title_size"] + 1)


def _color(i: int) -> str:
    return STYLE["palette"][i % len(STYLE["palette"])]


def _label_color(c: int) -> str:
    """Training points on a surface: white, black, then the palette."""
    first = STYLE["label_colors"]
    return first[c] if c < len(first) else _color(c - len(first))


def _format(value: float) -> str:
    return f"{value:g}"


# ---------------------------------------------------------------------------
# Saving.

def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` atomically, creating parent directories.

    The image goes to a temporary file beside ``path`` which then replaces it,
    so a reader never sees half a file and a failed save leaves nothing behind.

    Args:
        fig: a figure made by this module (or any ``matplotlib.figure.Figure``).
        path: destination; its suffix must be ``.png``.
        dpi: dots per inch, a positive integer.

    Returns:
        ``path`` as a ``pathlib.Path``.

    Raises:
        ArgumentError: ``fig`` is not a Figure, ``path`` is not a .png, ``dpi`` is not positive.
    """
    if not isinstance(fig, Figure):
        raise ArgumentError(f"save: expected fig to be a matplotlib Figure, got {describe(fig)}")
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ArgumentError(f"save: path must end in .png, got {str(path)!r}")
    dpi = require_positive_int("save", "dpi", dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi, metadata={"Software": None})
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------------------
# Figures.

def loss_curves(curves: Mapping[str, tuple[Any, Any]], *, xlabel: str = "epoch",
                ylabel: str = "loss", log_y: bool = False, title: str | None = None) -> Figure:
    """Several curves on one axes with a legend: losses, accuracies, optimizer comparisons.

    Args:
        curves: name -> ``(x, y)``, two sequences of one length ``(n,)``. A NaN in
            ``y`` (a diverged run) leaves a gap; infinities are refused.
        xlabel, ylabel: axis labels.
        log_y: logarithmic y axis (every ``y`` must then be positive).
        title: defaults to ``"<ylabel> per <xlabel>"``.

    Returns:
        A Figure with one Axes holding one line per curve, in ``curves`` order.

    Raises:
        ArgumentError: no curves, an entry not a pair, infinities, ``y <= 0`` with ``log_y``.
        ShapeError: ``x`` and ``y`` not 1-D of one length.
    """
    who = "loss_curves"
    data = [(str(name), *_xy(who, f"curves[{name!r}]", xy))
            for name, xy in _mapping(who, "curves", curves).items()]
    for name, _, y in data:
        _finite(who, f"curves[{name!r}] y", y, allow_nan=True)
        if log_y:
            _positive(who, f"curves[{name!r}] y", y)
    fig = _figure(scale=1.5)
    ax = fig.add_subplot()
    for i, (name, x, y) in enumerate(data):
        ax.plot(x, y, label=name, color=_color(i), linewidth=STYLE["line_width"])
    if log_y:
        ax.set_yscale("log")
    _decorate(ax, title if title is not None else f"{ylabel} per {xlabel}", xlabel, ylabel)
    _legend(ax)
    return fig


def regression_snapshots(x: Any, t: Any, snapshots: Sequence[tuple[int, Any]], *,
                         columns: int = 4, xlabel: str = "x", ylabel: str = "y",
                         title: str | None = None) -> Figure:
    """Small multiples of a 1-D regression while it learns (note 000).

    Each panel draws the target as a line (points sorted by ``x``) and the
    network's outputs as red ``+`` markers, titled ``"epoch N"``.

    Args:
        x: inputs, shape ``(n,)``.
        t: targets, shape ``(n,)``.
        snapshots: list of ``(epoch, y)``: an int and the outputs at ``x``, shape ``(n,)``.
        columns: panels per row.
        xlabel, ylabel: figure-wide axis labels.
        title: defaults to ``"regression while training"``.

    Returns:
        A Figure with ``len(snapshots)`` axes sharing both axes.

    Raises:
        ArgumentError: no snapshots, an epoch that is not an int, non-finite values.
        ShapeError: ``x``, ``t`` or a ``y`` not of shape ``(n,)``.
    """
    who = "regression_snapshots"
    x = _finite(who, "x", _array(who, "x", x, 1, "(n,)"))
    t = _finite(who, "t", _array(who, "t", t, 1, "(n,)"))
    if t.shape != x.shape:
        raise ShapeError(f"{who}: expected t of shape {x.shape} like x, got shape {t.shape}")
    columns = require_positive_int(who, "columns", columns)
    if isinstance(snapshots, str) or not isinstance(snapshots, Sequence) or not snapshots:
        raise ArgumentError(f"{who}: expected snapshots to be a non-empty list of (epoch, y), "
                            f"got {describe(snapshots)}")
    panels = []
    for i, snapshot in enumerate(snapshots):
        epoch, y = _pair(who, f"snapshots[{i}]", snapshot, "(epoch, y)")
        if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer):
            raise ArgumentError(f"{who}: snapshots[{i}] epoch must be an int, "
                                f"got {describe(epoch)}")
        y = _finite(who, f"snapshots[{i}] y", _array(who, f"snapshots[{i}] y", y, 1, "(n,)"))
        if y.shape != x.shape:
            raise ShapeError(f"{who}: expected snapshots[{i}] y of shape {x.shape} like x, "
                             f"got shape {y.shape}")
        panels.append((int(epoch), y))
    order = np.argsort(x, kind="stable")
    rows = -(-len(panels) // columns)
    fig = _figure(rows, min(columns, len(panels)), scale=0.85)
    axes = _panels(fig, len(panels), columns, sharex=True, sharey=True)
    for ax, (epoch, y) in zip(axes, panels, strict=True):
        ax.plot(x[order], t[order], color=STYLE["target"], linewidth=STYLE["line_width"],
                label="target")
        ax.scatter(x, y, marker="+", color=STYLE["prediction"], s=STYLE["marker_size"],
                   linewidths=1.0, label="network")
        _decorate(ax, f"epoch {epoch}", "", "")
    _legend(axes[0], loc="best")
    fig.supxlabel(xlabel, fontsize=STYLE["label_size"])
    fig.supylabel(ylabel, fontsize=STYLE["label_size"])
    _suptitle(fig, title if title is not None else "regression while training")
    return fig


def decision_regions(points: Any, predicted: Any, *, boundary: tuple[Any, Any] | None = None,
                     class_names: Sequence[str] | None = None,
                     title: str | None = None) -> Figure:
    """Points in the plane marked by their predicted class, with an optional true boundary.

    Class ``c`` is drawn with marker ``'+', 'x', 'o', ...`` number ``c`` and its own colour.

    Args:
        points: shape ``(n, 2)``.
        predicted: integer classes, shape ``(n,)`` (e.g. ``argmax`` of the output).
        boundary: ``(xs, ys)``, two ``(m,)`` sequences drawn as a dashed line.
        class_names: one name per class; every predicted class must have one.
        title: defaults to ``"predicted classes"``.

    Returns:
        A Figure with one Axes: one scatter per class that occurs, then the boundary line.

    Raises:
        ShapeError: ``points`` not ``(n, 2)``; ``predicted`` not ``(n,)``; bad ``boundary``.
        ArgumentError: a class outside ``[0, len(class_names))`` or negative; non-finite values.
    """
    who = "decision_regions"
    points = _finite(who, "points", _array(who, "points", points, 2, "(n, 2)"))
    if points.shape[1] != 2:
        raise ShapeError(f"{who}: expected points of shape (n, 2), got shape {points.shape}")
    if class_names is not None:
        if isinstance(class_names, str) or not isinstance(class_names, Sequence):
            raise ArgumentError(f"{who}: expected class_names to be a list of strings, "
                                f"got {describe(class_names)}")
        class_names = [str(c) for c in class_names]
    k = None if class_names is None else len(class_names)
    predicted = _labels(who, "predicted", predicted, points.shape[0], k)
    if boundary is not None:
        bx, by = _xy(who, "boundary", boundary)
        _finite(who, "boundary", np.concatenate([bx, by]))
    fig = _figure(scale=1.5)
    ax = fig.add_subplot()
    for c in np.unique(predicted):
        mask = predicted == c
        name = class_names[c] if class_names is not None else f"class {c}"
        ax.scatter(points[mask, 0], points[mask, 1], marker=_MARKERS[c % len(_MARKERS)],
                   color=_color(int(c)), s=STYLE["marker_size"], linewidths=1.0, label=name)
    if boundary is not None:
        ax.plot(bx, by, linestyle="--", color=STYLE["forward"], linewidth=STYLE["line_width"],
                label="true boundary")
    _decorate(ax, title if title is not None else "predicted classes", "x", "y")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def decision_surface(predict: Callable[[np.ndarray], Any], *, points: Any = None,
                     labels: Any = None, xlim: tuple[float, float] = (-0.5, 1.5),
                     ylim: tuple[float, float] = (-0.5, 1.5), resolution: int = 200,
                     title: str | None = None) -> Figure:
    """A classifier's probability over the plane, its 0.5 contour, and the training points.

    Args:
        predict: maps an ``(m, 2)`` float64 array of points to ``(m,)`` (or ``(m, 1)``)
            probabilities of class 1, each in ``[0, 1]``.
        points: training points, shape ``(n, 2)``.
        labels: their classes, shape ``(n,)`` (needs ``points``); colours the points.
        xlim, ylim: the window ``(low, high)``.
        resolution: grid points per side (at least 2); ``predict`` sees ``resolution**2`` rows.
        title: defaults to ``"decision surface"``.

    Returns:
        A Figure with the surface Axes and its colorbar Axes.

    Raises:
        ArgumentError: ``predict`` not callable, probabilities outside ``[0, 1]``,
            ``labels`` without ``points``, a bad window or resolution.
        ShapeError: ``predict``'s output, ``points`` or ``labels`` of the wrong shape.
    """
    who = "decision_surface"
    if not callable(predict):
        raise ArgumentError(f"{who}: predict must be a callable mapping (m, 2) points to (m,) "
                            f"probabilities, got {describe(predict)}")
    (x0, x1), (y0, y1) = _interval(who, "xlim", xlim), _interval(who, "ylim", ylim)
    resolution = require_positive_int(who, "resolution", resolution)
    if resolution < 2:
        raise ArgumentError(f"{who}: resolution must be at least 2, got {resolution}")
    if labels is not None and points is None:
        raise ArgumentError(f"{who}: labels were given without points")
    if points is not None:
        points = _finite(who, "points", _array(who, "points", points, 2, "(n, 2)"))
        if points.shape[1] != 2:
            raise ShapeError(f"{who}: expected points of shape (n, 2), got shape {points.shape}")
        if labels is not None:
            labels = _labels(who, "labels", labels, points.shape[0], None)
    X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([X.ravel(), Y.ravel()], axis=1)
    m = grid.shape[0]
    out = predict(grid)
    try:
        P = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise ArrayTypeError(f"{who}: predict must return numbers of shape ({m},), "
                             f"got {describe(out)}") from None
    if P.shape not in ((m,), (m, 1)):
        raise ShapeError(f"{who}: predict must return shape ({m},) for ({m}, 2) points, "
                         f"got shape {P.shape}")
    _finite(who, "predict's output", P)
    if P.min() < 0.0 or P.max() > 1.0:
        raise ArgumentError(f"{who}: predict must return probabilities in [0, 1], "
                            f"got values from {P.min():g} to {P.max():g}")
    P = P.reshape(X.shape)
    fig = _figure(scale=1.5)
    ax = fig.add_subplot()
    filled = ax.contourf(X, Y, P, levels=np.linspace(0.0, 1.0, 11), cmap=STYLE["surface_cmap"],
                         vmin=0.0, vmax=1.0, alpha=0.8)
    bar = fig.colorbar(filled, ax=ax)
    bar.set_label("P(class 1)", fontsize=STYLE["label_size"])
    bar.ax.tick_params(labelsize=STYLE["tick_size"])
    if P.min() < 0.5 < P.max():
        ax.contour(X, Y, P, levels=[0.5], colors=STYLE["forward"], linewidths=STYLE["line_width"])
    if points is not None:
        groups = [(None, np.ones(len(points), bool))] if labels is None else [
            (int(c), labels == c) for c in np.unique(labels)]
        for c, mask in groups:
            ax.scatter(points[mask, 0], points[mask, 1], s=STYLE["marker_size"] * 2,
                       marker="o" if c is None else _MARKERS[2 + c % (len(_MARKERS) - 2)],
                       color=STYLE["neutral"] if c is None else _label_color(c),
                       edgecolors=STYLE["forward"], linewidths=1.0, zorder=3,
                       label="points" if c is None else f"label {c}")
        _legend(ax, loc="upper left")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    _decorate(ax, title if title is not None else "decision surface", "x", "y", grid=False)
    return fig


def computational_graph(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]],
                        *, title: str | None = None) -> Figure:
    """A small computational graph, left to right, with values above and gradients below.

    As in the textbook's shopping example (note 001): each edge is an arrow with
    its forward value written above it and its gradient (red) written below it.

    Args:
        nodes: dicts ``{"id", "label", "pos": (x, y)}`` with optional ``"kind"``:
            ``"op"`` (default: the label in a circle, e.g. ``"×"``) or ``"value"``
            (bare text such as an input name, where an arrow starts or ends).
        edges: dicts ``{"src", "dst"}`` naming node ids, with optional ``"forward"``
            and ``"backward"``: a number (printed with ``:g``), a string, or None (nothing).
        title: defaults to ``"computational graph"``.

    Returns:
        A Figure with one Axes (axis hidden). Its texts carry gid ``"node"``,
        ``"forward"`` or ``"backward"``; the figure legend explains the colours.

    Raises:
        ArgumentError: a missing or unknown key, a duplicate id, an edge to an unknown node.
        ShapeError: a ``pos`` that is not a pair of numbers.
    """
    who = "computational_graph"
    if isinstance(nodes, str) or not isinstance(nodes, Sequence) or not nodes:
        raise ArgumentError(f"{who}: expected nodes to be a non-empty list of dicts, "
                            f"got {describe(nodes)}")
    if isinstance(edges, str) or not isinstance(edges, Sequence):
        raise ArgumentError(f"{who}: expected edges to be a list of dicts, got {describe(edges)}")
    table: dict[Any, tuple[str, np.ndarray, str]] = {}
    for i, node in enumerate(nodes):
        _keys(who, f"nodes[{i}]", node, {"id", "label", "pos"}, {"kind"})
        if node["id"] in table:
            raise ArgumentError(f"{who}: nodes[{i}] repeats the id {node['id']!r}")
        kind = node.get("kind", "op")
        if kind not in ("op", "value"):
            raise ArgumentError(f"{who}: nodes[{i}] kind must be 'op' or 'value', got {kind!r}")
        where = f"nodes[{i}] pos"
        pos = _finite(who, where, _array(who, where, node["pos"], 1, "(2,)"))
        if pos.shape != (2,):
            raise ShapeError(f"{who}: expected nodes[{i}] pos of shape (2,), got shape {pos.shape}")
        table[node["id"]] = (str(node["label"]), pos, kind)
    lines = []
    for i, edge in enumerate(edges):
        _keys(who, f"edges[{i}]", edge, {"src", "dst"}, {"forward", "backward"})
        for end in ("src", "dst"):
            if edge[end] not in table:
                raise ArgumentError(f"{who}: edges[{i}] {end} {edge[end]!r} is not a node id")
        texts = [_edge_text(who, f"edges[{i}] {part}", edge.get(part))
                 for part in ("forward", "backward")]
        lines.append((edge["src"], edge["dst"], *texts))
    radius = 0.3
    xy = np.array([pos for _, pos, _ in table.values()])
    span = xy.max(axis=0) - xy.min(axis=0)
    fig = Figure(figsize=(float(np.clip(1.4 * span[0] + 3.0, 4.0, 12.0)),
                          float(np.clip(1.4 * span[1] + 2.0, 2.5, 9.0))), layout="constrained")
    ax = fig.add_subplot()
    outgoing = {src for src, *_ in lines}
    incoming = {dst for _, dst, *_ in lines}
    circles = {}
    for node_id, (label, pos, kind) in table.items():
        if kind == "op":
            circles[node_id] = Circle(tuple(pos), radius, facecolor="white",
                                      edgecolor=STYLE["forward"], linewidth=1.2, zorder=2)
            ax.add_patch(circles[node_id])
            align = "center"
        else:
            align = ("right" if node_id in outgoing and node_id not in incoming else
                     "left" if node_id in incoming and node_id not in outgoing else "center")
        ax.text(*pos, label, ha=align, va="center", fontsize=STYLE["label_size"] + 1,
                zorder=3, gid="node", color=STYLE["forward"])
    for src, dst, forward, backward in lines:
        p0, p1 = table[src][1], table[dst][1]
        length = float(np.hypot(*(p1 - p0)))
        unit = (p1 - p0) / length if length > 0 else np.zeros(2)
        start = p0 + unit * (radius if src in circles else 0.0)
        end = p1 - unit * (radius if dst in circles else 0.0)
        ax.add_patch(FancyArrowPatch(tuple(p0), tuple(p1), arrowstyle="-|>", mutation_scale=12,
                                     patchA=circles.get(src), patchB=circles.get(dst),
                                     shrinkA=0 if src in circles else 4,
                                     shrinkB=0 if dst in circles else 4,
                                     color=STYLE["forward"], linewidth=1.0, zorder=1))
        middle = tuple((start + end) / 2)
        for text, dy, va, color, gid in ((forward, 3, "bottom", STYLE["forward"], "forward"),
                                         (backward, -3, "top", STYLE["gradient"], "backward")):
            if text is not None:
                ax.annotate(text, middle, xytext=(0, dy), textcoords="offset points", ha="center",
                            va=va, color=color, fontsize=STYLE["label_size"], gid=gid)
    pad = np.array([1.2, 0.8])
    low, high = xy.min(axis=0) - pad, xy.max(axis=0) + pad
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title if title is not None else "computational graph",
                 fontsize=STYLE["title_size"])
    key = [Line2D([], [], color=STYLE["forward"], label="value (above the arrow)"),
           Line2D([], [], color=STYLE["gradient"], label="gradient (below the arrow)")]
    fig.legend(handles=key,
               loc="outside lower center", ncols=2, fontsize=STYLE["small_size"], frameon=False)
    return fig


def _keys(who: str, name: str, value: Any, required: set[str], optional: set[str]) -> None:
    if not isinstance(value, Mapping):
        raise ArgumentError(f"{who}: expected {name} to be a dict, got {describe(value)}")
    missing, unknown = required - value.keys(), value.keys() - required - optional
    if missing:
        raise ArgumentError(f"{who}: {name} lacks the key(s) {', '.join(sorted(missing))}")
    if unknown:
        raise ArgumentError(f"{who}: {name} has unknown key(s) "
                            f"{', '.join(sorted(map(str, unknown)))}; expected "
                            f"{', '.join(sorted(required | optional))}")


def _edge_text(who: str, name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return _format(_real(who, name, value))


def gradient_check_report(rows: Sequence[tuple[str, float | None, float | None]], *,
                          tol_jax: float = 1e-7, tol_numerical: float = 1e-6,
                          title: str | None = None) -> Figure:
    """Relative error of each parameter's gradient against ``jax.grad`` and finite differences.

    Horizontal grouped bars on a log axis, one group per row, with each
    tolerance as a dashed vertical line; a bar over its tolerance is hatched.
    An error of exactly zero cannot be drawn on a log axis: it is drawn at
    ``LOG_FLOOR`` (1e-18) and the x label says so.

    Args:
        rows: ``(label, error_vs_jax, error_vs_numerical)``; an error is a
            non-negative number, or None when that referee was not run.
        tol_jax, tol_numerical: the two tolerances (positive).
        title: defaults to ``"gradient check"``.

    Returns:
        A Figure with one Axes; bar widths are the errors (at least ``LOG_FLOOR``).

    Raises:
        ArgumentError: no rows, a row that is not a triple, a negative or
            non-finite error, a tolerance that is not positive.
    """
    who = "gradient_check_report"
    tol_jax, tol_numerical = _real(who, "tol_jax", tol_jax), _real(who, "tol_numerical",
                                                                     tol_numerical)
    for name, tol in (("tol_jax", tol_jax), ("tol_numerical", tol_numerical)):
        if tol <= 0:
            raise ArgumentError(f"{who}: {name} must be positive, got {tol!r}")
    if isinstance(rows, str) or not isinstance(rows, Sequence) or not rows:
        raise ArgumentError(f"{who}: expected rows to be a non-empty list of "
                            f"(label, error_vs_jax, error_vs_numerical), got {describe(rows)}")
    parsed = []
    for i, row in enumerate(rows):
        if isinstance(row, str) or not isinstance(row, Sequence) or len(row) != 3:
            raise ArgumentError(f"{who}: expected rows[{i}] to be a triple (label, error_vs_jax, "
                                f"error_vs_numerical), got {describe(row)}")
        errs = []
        for part, err in zip(("error_vs_jax", "error_vs_numerical"), row[1:], strict=True):
            if err is not None:
                err = _real(who, f"rows[{i}] {part}", err)
                if err < 0:
                    raise ArgumentError(f"{who}: rows[{i}] {part} must be non-negative, "
                                        f"got {err!r}")
            errs.append(err)
        parsed.append((str(row[0]), *errs))
    n = len(parsed)
    fig = Figure(figsize=(6.5, 1.2 + 0.45 * n), layout="constrained")
    ax = fig.add_subplot()
    height = 0.38
    clipped = False
    series = (("vs jax.grad", 1, tol_jax, -height / 2, STYLE["palette"][0]),
              ("vs finite differences", 2, tol_numerical, height / 2, STYLE["palette"][1]))
    shown = [tol_jax, tol_numerical]
    for name, column, tol, offset, color in series:
        index = [i for i, row in enumerate(parsed) if row[column] is not None]
        errors = np.array([parsed[i][column] for i in index], dtype=np.float64)
        widths = np.maximum(errors, LOG_FLOOR)
        clipped = clipped or bool(np.any(errors < LOG_FLOOR))
        shown.extend(widths)
        if index:
            bars = ax.barh(np.array(index) + offset, widths, height=height, color=color,
                           label=name)
            for bar, err in zip(bars, errors, strict=True):
                if err > tol:
                    bar.set_hatch("///")
                    bar.set_edgecolor(STYLE["bad"])
        for i, err, width in zip(index, errors, widths, strict=True):
            ax.text(width * 1.6, i + offset, f"{err:.1e}" if err else "0", va="center",
                    fontsize=STYLE["small_size"], color=STYLE["bad"] if err > tol else "black")
        ax.axvline(tol, linestyle="--", color=color, linewidth=1.2, label=f"tolerance {tol:g}")
    ax.set_xscale("log")
    ax.set_xlim(min(shown) / 10, max(shown) * 1e3)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(range(n), labels=[row[0] for row in parsed])
    xlabel = "relative error (log scale)"
    if clipped:
        xlabel += f"; zero drawn at {LOG_FLOOR:g}"
    _decorate(ax, title if title is not None else "gradient check", xlabel, "parameter")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def confusion_matrix(matrix: Any, class_names: Sequence[str], *, normalize: bool = True,
                     title: str | None = None) -> Figure:
    """A confusion matrix as an image, with the count written in every cell.

    Args:
        matrix: counts, shape ``(k, k)``; ``matrix[i, j]`` = samples of true class
            ``i`` predicted as ``j``. Non-negative.
        class_names: ``k`` names, for both axes.
        normalize: colour each row by its fraction of that true class (rows
            with no samples stay 0); otherwise colour by count.
        title: defaults to ``"confusion matrix"``.

    Returns:
        A Figure with the matrix Axes (``k * k`` texts, the counts, row by row) and a colorbar.

    Raises:
        ShapeError: ``matrix`` not square; ``class_names`` not of length ``k``.
        ArgumentError: negative or non-finite counts.
    """
    who = "confusion_matrix"
    M = _finite(who, "matrix", _array(who, "matrix", matrix, 2, "(k, k)"))
    if M.shape[0] != M.shape[1] or M.size == 0:
        raise ShapeError(f"{who}: expected a square matrix of shape (k, k), got shape {M.shape}")
    if np.any(M < 0):
        raise ArgumentError(f"{who}: matrix must hold non-negative counts, got a minimum of "
                            f"{M.min():g}")
    k = M.shape[0]
    names = _names(who, "class_names", class_names, k, "matrix")
    totals = M.sum(axis=1, keepdims=True)
    shade = np.divide(M, totals, out=np.zeros_like(M), where=totals > 0) if normalize else M
    top = 1.0 if normalize else max(float(M.max()), 1.0)
    size = float(np.clip(1.2 + 0.5 * k, 3.5, 9.0))
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shade, cmap=STYLE["count_cmap"], vmin=0.0, vmax=top)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label("fraction of the true class" if normalize else "count",
                  fontsize=STYLE["label_size"])
    bar.ax.tick_params(labelsize=STYLE["tick_size"])
    for i in range(k):
        for j in range(k):
            count = M[i, j]
            ax.text(j, i, f"{int(count)}" if count == int(count) else f"{count:.3g}",
                    ha="center", va="center", fontsize=STYLE["small_size"],
                    color="white" if shade[i, j] > 0.6 * top else "black")
    ax.set_xticks(range(k), labels=names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(k), labels=names)
    _decorate(ax, title if title is not None else "confusion matrix", "predicted", "true",
              grid=False)
    return fig


def samples_with_probabilities(images: Any, probs: Any, class_names: Sequence[str], *,
                               true_labels: Any = None, top: int = 3, columns: int = 4,
                               title: str | None = None) -> Figure:
    """Images with the classifier's verdict: predicted name and probability, and a top-k bar chart.

    Each sample gets two panels: the image, titled with the predicted class name
    and its probability (green when it equals the true label, red when it does
    not, black when no labels are given), and horizontal bars of the ``top``
    most probable classes.

    Args:
        images: grayscale images, shape ``(n, h, w)``.
        probs: class probabilities, shape ``(n, k)``, each in ``[0, 1]``.
        class_names: ``k`` names.
        true_labels: optional true classes, shape ``(n,)``, in ``[0, k)``.
        top: how many classes each bar chart shows, ``1 <= top <= k``.
        columns: samples per row (each sample is two panels).
        title: defaults to ``"predictions"``.

    Returns:
        A Figure with ``2 n`` axes: image, bars, image, bars, ...

    Raises:
        ShapeError: wrong ranks, ``probs`` rows not matching ``images``, ``class_names``
            not of length ``k``, ``true_labels`` not ``(n,)``.
        ArgumentError: probabilities outside ``[0, 1]``, labels out of range, a bad ``top``.
    """
    who = "samples_with_probabilities"
    images = _finite(who, "images", _array(who, "images", images, 3, "(n, h, w)"))
    probs = _finite(who, "probs", _array(who, "probs", probs, 2, "(n, k)"))
    n, k = probs.shape
    if n != images.shape[0]:
        raise ShapeError(f"{who}: probs has {n} rows but images has {images.shape[0]} images")
    if n == 0:
        raise ShapeError(f"{who}: expected at least one image, got shape {images.shape}")
    if probs.min() < 0 or probs.max() > 1:
        raise ArgumentError(f"{who}: probs must be probabilities in [0, 1], "
                            f"got values from {probs.min():g} to {probs.max():g}")
    names = _names(who, "class_names", class_names, k, "probs")
    labels = None if true_labels is None else _labels(who, "true_labels", true_labels, n, k)
    top = require_positive_int(who, "top", top)
    if top > k:
        raise ArgumentError(f"{who}: top must be at most the {k} classes, got {top}")
    columns = min(require_positive_int(who, "columns", columns), n)
    rows = -(-n // columns)
    width, height = STYLE["panel_inches"]
    fig = Figure(figsize=(columns * 0.95 * width, rows * 0.7 * height), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * columns, width_ratios=[1.0, 1.3] * columns)
    predicted = np.argmax(probs, axis=1)
    for i in range(n):
        r, c = divmod(i, columns)
        image_ax, bar_ax = fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1])
        guess = int(predicted[i])
        verdict = (STYLE["forward"] if labels is None else
                   STYLE["good"] if labels[i] == guess else STYLE["bad"])
        image_ax.imshow(images[i], cmap=STYLE["image_cmap"], interpolation="nearest")
        image_ax.set_xticks([])
        image_ax.set_yticks([])
        image_ax.set_title(f"{names[guess]} {probs[i, guess]:.1%}", color=verdict,
                           fontsize=STYLE["label_size"])
        image_ax.set_xlabel(f"true: {names[labels[i]]}" if labels is not None else f"sample {i}",
                            fontsize=STYLE["small_size"])
        best = np.argsort(-probs[i], kind="stable")[:top]
        colors = [STYLE["good"] if labels is not None and c == labels[i] else
                  STYLE["bad"] if labels is not None and c == guess else
                  STYLE["target"] if labels is None and c == guess else STYLE["neutral"]
                  for c in best]
        bar_ax.barh(np.arange(top), probs[i, best], color=colors, height=0.7)
        bar_ax.set_yticks(range(top), labels=[names[c] for c in best])
        bar_ax.set_ylim(top - 0.5, -0.5)
        bar_ax.set_xlim(0.0, 1.0)
        bar_ax.set_title(f"top {top}", fontsize=STYLE["small_size"])
        bar_ax.set_xlabel("probability", fontsize=STYLE["small_size"])
        bar_ax.tick_params(labelsize=STYLE["small_size"])
    _suptitle(fig, title if title is not None else "predictions")
    return fig


def activation_histograms(activations: Sequence[tuple[str, Any]], *, bins: int = 30,
                          title: str | None = None) -> Figure:
    """One histogram per layer, side by side on shared bins and a shared count axis.

    Args:
        activations: ``(label, values)`` per layer; ``values`` is an array of any
            shape (flattened), non-empty and finite.
        bins: number of bins, common to all panels (they span all values).
        title: defaults to ``"activations per layer"``.

    Returns:
        A Figure with one Axes per layer, each holding ``bins`` bars.

    Raises:
        ArgumentError: no layers, an entry that is not a pair, empty or non-finite values,
            a bad ``bins``.
    """
    who = "activation_histograms"
    if isinstance(activations, str) or not isinstance(activations, Sequence) or not activations:
        raise ArgumentError(f"{who}: expected activations to be a non-empty list of "
                            f"(label, values), got {describe(activations)}")
    bins = require_positive_int(who, "bins", bins)
    layers = []
    for i, entry in enumerate(activations):
        label, values = _pair(who, f"activations[{i}]", entry, "(label, values)")
        try:
            values = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise ArrayTypeError(f"{who}: expected activations[{i}] values to be numbers, "
                                 f"got {describe(values)}") from None
        if values.size == 0:
            raise ArgumentError(f"{who}: activations[{i}] ({label!r}) has no values")
        layers.append((str(label), _finite(who, f"activations[{i}] values", values)))
    low = min(v.min() for _, v in layers)
    high = max(v.max() for _, v in layers)
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    fig = _figure(1, len(layers), scale=0.8)
    axes = _panels(fig, len(layers), len(layers), sharex=True, sharey=True)
    for i, (ax, (label, values)) in enumerate(zip(axes, layers, strict=True)):
        ax.hist(values, bins=edges, color=_color(i))
        _decorate(ax, label, "activation", "count" if i == 0 else "")
    _suptitle(fig, title if title is not None else "activations per layer")
    return fig


def optimizer_paths(f: Callable[[np.ndarray, np.ndarray], Any],
                    paths: Mapping[str, Any], *, xlim: tuple[float, float],
                    ylim: tuple[float, float], minimum: tuple[float, float] | None = None,
                    levels: int = 20, resolution: int = 200,
                    title: str | None = None) -> Figure:
    """Contours of a function of two variables with each optimizer's trajectory over them.

    Args:
        f: maps meshgrid arrays ``X, Y`` (shape ``(resolution, resolution)``) to
            values of that shape, e.g. ``lambda X, Y: X**2 / 20 + Y**2``.
        paths: name -> the visited points, shape ``(steps, 2)``.
        xlim, ylim: the window ``(low, high)``.
        minimum: where to put the star; by default the lowest grid point of ``f``.
        levels: number of contour levels.
        resolution: grid points per side (at least 2).
        title: defaults to ``"optimizer paths"``.

    Returns:
        A Figure with one Axes: the contour set, one line (with markers) per path in
        ``paths`` order, and the minimum as a star.

    Raises:
        ArgumentError: ``f`` not callable, non-finite values, a bad window, levels or resolution.
        ShapeError: ``f``'s output or a path of the wrong shape.
    """
    who = "optimizer_paths"
    if not callable(f):
        raise ArgumentError(f"{who}: f must be a callable of meshgrid arrays (X, Y), "
                            f"got {describe(f)}")
    (x0, x1), (y0, y1) = _interval(who, "xlim", xlim), _interval(who, "ylim", ylim)
    levels = require_positive_int(who, "levels", levels)
    resolution = require_positive_int(who, "resolution", resolution)
    if resolution < 2:
        raise ArgumentError(f"{who}: resolution must be at least 2, got {resolution}")
    trajectories = []
    for name, path in _mapping(who, "paths", paths).items():
        path = _finite(who, f"paths[{name!r}]",
                       _array(who, f"paths[{name!r}]", path, 2, "(steps, 2)"))
        if path.shape[1] != 2 or path.shape[0] == 0:
            raise ShapeError(f"{who}: expected paths[{name!r}] of shape (steps, 2), "
                             f"got shape {path.shape}")
        trajectories.append((str(name), path))
    X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    Z = _finite(who, "f(X, Y)", _array(who, "f(X, Y)", f(X, Y), 2, "(resolution, resolution)"))
    if Z.shape != X.shape:
        raise ShapeError(f"{who}: expected f(X, Y) of shape {X.shape}, got shape {Z.shape}")
    if minimum is None:
        row, col = np.unravel_index(np.argmin(Z), Z.shape)
        minimum = (X[row, col], Y[row, col])
    mx, my = _pair(who, "minimum", minimum)
    mx, my = _real(who, "minimum[0]", mx), _real(who, "minimum[1]", my)
    fig = _figure(scale=1.6)
    ax = fig.add_subplot()
    ax.contour(X, Y, Z, levels=levels, cmap=STYLE["contour_cmap"], linewidths=0.8)
    for i, (name, path) in enumerate(trajectories):
        ax.plot(path[:, 0], path[:, 1], marker="o", markersize=3, color=_color(i + 1),
                linewidth=1.2, label=name)
    ax.scatter([mx], [my], marker="*", s=STYLE["marker_size"] * 6, color=STYLE["forward"],
               zorder=3, label="minimum")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    _decorate(ax, title if title is not None else "optimizer paths", "x", "y", grid=False)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def bar_chart(groups: Mapping[str, Mapping[str, float]], *, ylabel: str, xlabel: str = "group",
              title: str | None = None, log_y: bool = False) -> Figure:
    """Grouped bars: one group per key of ``groups``, one coloured series per inner key.

    Args:
        groups: group label -> (series label -> value). Series are coloured in
            order of first appearance; a series missing from a group has no bar there.
        ylabel, xlabel: axis labels.
        title: defaults to ``ylabel``.
        log_y: logarithmic y axis (every value must then be positive).

    Returns:
        A Figure with one Axes: one bar container per series, each bar labelled with its value.

    Raises:
        ArgumentError: empty groups, a value that is not a finite number, a
            non-positive value with ``log_y``.
    """
    who = "bar_chart"
    table = {}
    for group, row in _mapping(who, "groups", groups).items():
        table[str(group)] = {str(s): _real(who, f"groups[{group!r}][{s!r}]", v)
                             for s, v in _mapping(who, f"groups[{group!r}]", row).items()}
    series = list(dict.fromkeys(s for row in table.values() for s in row))
    if log_y:
        _positive(who, "groups values", np.array([v for r in table.values() for v in r.values()]))
    labels = list(table)
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(4.5, 1.0 + 0.5 * len(labels) * len(series)), 3.5),
                 layout="constrained")
    ax = fig.add_subplot()
    for j, name in enumerate(series):
        index = [g for g, label in enumerate(labels) if name in table[label]]
        values = [table[labels[g]][name] for g in index]
        bars = ax.bar(np.array(index) + (j - (len(series) - 1) / 2) * width, values, width,
                      color=_color(j), label=name)
        ax.bar_label(bars, fmt="%.3g", fontsize=STYLE["small_size"], padding=1)
    if log_y:
        ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels=labels)
    _decorate(ax, title if title is not None else ylabel, xlabel, ylabel)
    ax.grid(False, axis="x")
    _legend(ax)
    return fig
