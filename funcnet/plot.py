"""Figures for the experiments: plain data in, a matplotlib ``Figure`` out.

The only funcnet module that imports matplotlib (``import funcnet`` does not
load it). Figures are built as ``matplotlib.figure.Figure`` without pyplot, so
no GUI backend and no global list of figures. Every figure uses ``STYLE`` and
has a title (``title=None`` gives each function's default). Data is drawn as
given, and checked only where a mistake would draw a wrong figure silently or
fail deep inside matplotlib (class labels, probabilities, one name per class).

>>> fig = loss_curves({"train": ([0, 1, 2], [1.0, 0.5, 0.25])})
>>> [(ax.get_xlabel(), ax.get_ylabel()) for ax in fig.axes]
[('epoch', 'loss')]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from funcnet._files import atomic_write
from funcnet.errors import ArgumentError, ShapeError, require_positive_int

__all__ = [
    "STYLE", "LOG_FLOOR", "save", "loss_curves", "regression_snapshots", "decision_regions",
    "decision_surface", "computational_graph", "gradient_check_report", "confusion_matrix",
    "samples_with_probabilities", "activation_histograms", "optimizer_paths", "bar_chart",
]

#: The look of every figure: font sizes (points), colours, colour maps, panel size (inches).
STYLE = MappingProxyType({
    "title_size": 11, "label_size": 9, "tick_size": 8, "small_size": 7,
    "line_width": 1.5, "marker_size": 30, "panel_inches": (3.2, 2.6),
    "palette": ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b",
                "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"),
    "target": "#1f77b4", "prediction": "#d62728",  # a regression's target and outputs
    "forward": "#222222", "gradient": "#d62728",  # a graph's values and gradients
    "good": "#2ca02c", "bad": "#d62728", "neutral": "#a0a0a0", "grid": "#e4e4e4",
    "surface_cmap": "RdBu_r", "count_cmap": "Blues", "contour_cmap": "viridis",
    "image_cmap": "gray", "label_colors": ("white", "black"),
})

#: Zeros cannot sit on a log axis: ``gradient_check_report`` draws them at this value.
LOG_FLOOR = 1e-18

_MARKERS = ("+", "x", "o", "s", "^", "v", "D", "*")


def _classes(who: str, name: str, values: Any, n: int, k: int | None = None) -> np.ndarray:
    """``values`` as integer classes of shape ``(n,)``, each in ``[0, k)`` when ``k`` is given
    (probabilities passed for classes would otherwise index markers and names by a float)."""
    classes = np.asarray(values, dtype=np.float64)
    if classes.shape != (n,):
        raise ShapeError(f"{who}: expected {name} of shape ({n},), got shape {classes.shape}")
    top = np.inf if k is None else k
    if not np.all((classes == np.round(classes)) & (classes >= 0) & (classes < top)):
        raise ArgumentError(f"{who}: {name} must be integer classes in [0, {top}), "
                            f"got values from {classes.min():g} to {classes.max():g}")
    return classes.astype(np.int64)


def _probabilities(who: str, name: str, values: np.ndarray) -> None:
    """Refuse values outside ``[0, 1]`` (logits given for probabilities) and NaN."""
    if values.size and not (values.min() >= 0.0 and values.max() <= 1.0):
        raise ArgumentError(f"{who}: {name} must be probabilities in [0, 1], "
                            f"got values from {values.min():g} to {values.max():g}")


def _names(who: str, names: Sequence[str], k: int, source: str) -> list[str]:
    if len(names) != k:
        raise ShapeError(f"{who}: class_names has {len(names)} names but {source} has {k} classes")
    return [str(name) for name in names]


def _panels(n: int, columns: int, scale: float, **share: Any) -> tuple[Figure, list[Any]]:
    """A figure of ``n`` axes in a grid ``columns`` wide, the last row's unused cells removed;
    each panel is ``STYLE["panel_inches"]`` times ``scale``."""
    rows, columns = -(-n // columns), min(columns, n)
    width, height = STYLE["panel_inches"]
    fig = Figure(figsize=(width * columns * scale, height * rows * scale), layout="constrained")
    grid = fig.subplots(rows, columns, squeeze=False, **share).ravel()
    for ax in grid[n:]:
        ax.remove()
    return fig, list(grid[:n])


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


def _colorbar(fig: Figure, mappable: Any, ax: Any, label: str) -> None:
    bar = fig.colorbar(mappable, ax=ax)
    bar.set_label(label, fontsize=STYLE["label_size"])
    bar.ax.tick_params(labelsize=STYLE["tick_size"])


def _suptitle(fig: Figure, title: str) -> None:
    fig.suptitle(title, fontsize=STYLE["title_size"] + 1)


def _color(i: int) -> str:
    return STYLE["palette"][i % len(STYLE["palette"])]


def save(fig: Figure, path: str | os.PathLike, *, dpi: int = 120) -> Path:
    """Write ``fig`` as a PNG at ``path`` (a ``.png``) atomically, creating parent directories.

    A failed save leaves the old file, or nothing, behind. Returns ``path`` as a ``Path``.

    Raises:
        ArgumentError: ``path`` is not a .png, ``dpi`` is not a positive integer.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ArgumentError(f"save: path must end in .png, got {str(path)!r}")
    dpi = require_positive_int("save", "dpi", dpi)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=dpi,
                                                metadata={"Software": None}))
    return path


def loss_curves(curves: Mapping[str, tuple[Any, Any]], *, xlabel: str = "epoch",
                ylabel: str = "loss", log_y: bool = False, title: str | None = None) -> Figure:
    """Curves on one Axes, one line per entry in order: losses, accuracies, comparisons.

    Args:
        curves: name -> ``(x, y)``, each of shape ``(n,)``; a NaN in ``y`` leaves a gap.
        title: defaults to ``"<ylabel> per <xlabel>"``.
    """
    fig, [ax] = _panels(1, 1, 1.5)
    for i, (name, (x, y)) in enumerate(curves.items()):
        if np.ndim(x) != 1 or np.shape(y)[:1] != np.shape(x):
            raise ShapeError(f"loss_curves: curve {str(name)!r} must have x and y of shape "
                             f"(n,), got shapes {np.shape(x)} and {np.shape(y)}")
        ax.plot(x, y, label=str(name), color=_color(i), linewidth=STYLE["line_width"])
    if log_y:
        ax.set_yscale("log")
    _decorate(ax, title if title is not None else f"{ylabel} per {xlabel}", xlabel, ylabel)
    _legend(ax)
    return fig


def regression_snapshots(x: Any, t: Any, snapshots: Sequence[tuple[int, Any]], *,
                         columns: int = 4, xlabel: str = "x", ylabel: str = "y",
                         title: str | None = None) -> Figure:
    """Small multiples of a 1-D regression while it learns (note 000), ``columns`` a row.

    Each panel, titled ``"epoch N"``, draws the target as a line and the
    network's outputs as red ``+`` markers; the axes are shared.

    Args:
        x, t: inputs and targets, shape ``(n,)``.
        snapshots: a non-empty list of ``(epoch, y)``, ``y`` the outputs at ``x``, ``(n,)``.
    """
    columns = require_positive_int("regression_snapshots", "columns", columns)
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    fig, axes = _panels(len(snapshots), columns, 0.85, sharex=True, sharey=True)
    for ax, (epoch, y) in zip(axes, snapshots, strict=True):
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
    """Points in the plane marked by predicted class (one scatter each), and a true boundary.

    Args:
        points: shape ``(n, 2)``.
        predicted: integer classes, shape ``(n,)`` (e.g. ``argmax`` of the output).
        boundary: optional ``(xs, ys)``, each ``(m,)``, drawn as a dashed line.
        class_names: optional, one name per class.
    """
    points = np.asarray(points, dtype=np.float64)
    k = None if class_names is None else len(class_names)
    predicted = _classes("decision_regions", "predicted", predicted, len(points), k)
    fig, [ax] = _panels(1, 1, 1.5)
    for c in np.unique(predicted):
        mask = predicted == c
        name = str(class_names[c]) if class_names is not None else f"class {c}"
        ax.scatter(points[mask, 0], points[mask, 1], marker=_MARKERS[c % len(_MARKERS)],
                   color=_color(int(c)), s=STYLE["marker_size"], linewidths=1.0, label=name)
    if boundary is not None:
        ax.plot(*boundary, linestyle="--", color=STYLE["forward"],
                linewidth=STYLE["line_width"], label="true boundary")
    _decorate(ax, title if title is not None else "predicted classes", "x", "y")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def decision_surface(predict: Callable[[np.ndarray], Any], *, points: Any = None,
                     labels: Any = None, xlim: tuple[float, float] = (-0.5, 1.5),
                     ylim: tuple[float, float] = (-0.5, 1.5), resolution: int = 200,
                     title: str | None = None) -> Figure:
    """A classifier's probability over the plane (and a colorbar), its 0.5 contour, the points.

    Args:
        predict: maps ``(m, 2)`` float64 points, ``m = resolution**2`` (at least 2
            per side), to ``(m,)`` or ``(m, 1)`` probabilities of class 1.
        points: optional training points, shape ``(n, 2)``: grey circles, or
            with ``labels`` (integer classes, ``(n,)``) a marker and colour per class.
        xlim, ylim: the window ``(low, high)``.
    """
    who = "decision_surface"
    if require_positive_int(who, "resolution", resolution) < 2:
        raise ArgumentError(f"{who}: resolution must be at least 2 (points per side of the "
                            f"grid), got {resolution}")
    if points is not None:
        points = np.asarray(points, dtype=np.float64)
        if labels is not None:
            labels = _classes(who, "labels", labels, len(points))
    X, Y = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    grid = np.stack([X.ravel(), Y.ravel()], axis=1)
    P = np.asarray(predict(grid), dtype=np.float64)
    if P.shape not in ((len(grid),), (len(grid), 1)):
        raise ShapeError(f"{who}: predict must return shape ({len(grid)},) for "
                         f"({len(grid)}, 2) points, got shape {P.shape}")
    _probabilities(who, "predict's output", P)
    P = P.reshape(X.shape)
    fig, [ax] = _panels(1, 1, 1.5)
    filled = ax.contourf(X, Y, P, levels=np.linspace(0.0, 1.0, 11), cmap=STYLE["surface_cmap"],
                         vmin=0.0, vmax=1.0, alpha=0.8)
    _colorbar(fig, filled, ax, "P(class 1)")
    if P.min() < 0.5 < P.max():
        ax.contour(X, Y, P, levels=[0.5], colors=STYLE["forward"], linewidths=STYLE["line_width"])
    if points is not None:
        first = STYLE["label_colors"]  # white and black, then the palette
        groups = [(None, np.ones(len(points), bool))] if labels is None else [
            (int(c), labels == c) for c in np.unique(labels)]
        for c, mask in groups:
            ax.scatter(points[mask, 0], points[mask, 1], s=STYLE["marker_size"] * 2,
                       marker="o" if c is None else _MARKERS[2 + c % (len(_MARKERS) - 2)],
                       color=STYLE["neutral"] if c is None else
                       first[c] if c < len(first) else _color(c - len(first)),
                       edgecolors=STYLE["forward"], linewidths=1.0, zorder=3,
                       label="points" if c is None else f"label {c}")
        _legend(ax, loc="upper left")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    _decorate(ax, title if title is not None else "decision surface", "x", "y", grid=False)
    return fig


_NODE_RADIUS = 0.3


def _keys(who: str, name: str, value: Mapping, required: set[str], optional: set[str]) -> None:
    """A graph's node or edge has every required key and no unknown (misspelt) one."""
    if not required <= value.keys() <= required | optional:
        raise ArgumentError(f"{who}: {name} has the keys {sorted(map(str, value))}; expected "
                            f"{sorted(required)} and optionally {sorted(optional)}")


def _node_table(who: str, nodes: Sequence[Mapping[str, Any]],
                edges: Sequence[Mapping[str, Any]]) -> dict:
    """``{id: (label, pos, kind)}`` for a graph's nodes, after checking nodes and edges."""
    table = {}
    for i, node in enumerate(nodes):
        _keys(who, f"nodes[{i}]", node, {"id", "label", "pos"}, {"kind"})
        kind = node.get("kind", "op")
        if kind not in ("op", "value"):
            raise ArgumentError(f"{who}: nodes[{i}] kind must be 'op' or 'value', got {kind!r}")
        table[node["id"]] = (str(node["label"]), np.asarray(node["pos"], dtype=np.float64), kind)
    for i, edge in enumerate(edges):
        _keys(who, f"edges[{i}]", edge, {"src", "dst"}, {"forward", "backward"})
        for end in ("src", "dst"):
            if edge[end] not in table:
                raise ArgumentError(f"{who}: edges[{i}] {end} {edge[end]!r} is not a node id")
    return table


def computational_graph(nodes: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]],
                        *, title: str | None = None) -> Figure:
    """A small computational graph with each edge's value above it and its gradient below.

    As in the textbook's shopping example (note 001). The texts carry gid
    ``"node"``, ``"forward"`` or ``"backward"``; a figure legend explains the colours.

    Args:
        nodes: a non-empty list of ``{"id", "label", "pos": (x, y)}``, with
            ``"kind"``: ``"op"`` (default: the label in a circle, e.g. ``"×"``)
            or ``"value"`` (bare text, such as an input name, set off its arrow).
        edges: ``{"src", "dst"}`` naming node ids, with optional ``"forward"`` and
            ``"backward"``: a number (printed with ``:g``), a string, or None.

    Raises:
        ArgumentError: a missing or misspelt key, an unknown kind or node id.
    """
    table = _node_table("computational_graph", nodes, edges)
    xy = np.array([pos for _, pos, _ in table.values()])
    span = xy.max(axis=0) - xy.min(axis=0)
    fig = Figure(figsize=(float(np.clip(1.4 * span[0] + 3.0, 4.0, 12.0)),
                          float(np.clip(1.4 * span[1] + 2.0, 2.5, 9.0))), layout="constrained")
    ax = fig.add_subplot()
    sources, targets = {edge["src"] for edge in edges}, {edge["dst"] for edge in edges}
    circles = {}
    for node_id, (label, pos, kind) in table.items():
        align = "center"
        if kind == "op":
            circles[node_id] = Circle(tuple(pos), _NODE_RADIUS, facecolor="white",
                                      edgecolor=STYLE["forward"], linewidth=1.2, zorder=2)
            ax.add_patch(circles[node_id])
        elif node_id in sources and node_id not in targets:
            align = "right"
        elif node_id in targets and node_id not in sources:
            align = "left"
        ax.text(*pos, label, ha=align, va="center", fontsize=STYLE["label_size"] + 1,
                zorder=3, gid="node", color=STYLE["forward"])
    for edge in edges:
        (_, p0, _), (_, p1, _) = table[edge["src"]], table[edge["dst"]]
        circle0, circle1 = circles.get(edge["src"]), circles.get(edge["dst"])
        length = float(np.hypot(*(p1 - p0)))
        unit = (p1 - p0) / length if length > 0 else np.zeros(2)
        start = p0 + unit * (_NODE_RADIUS if circle0 is not None else 0.0)
        end = p1 - unit * (_NODE_RADIUS if circle1 is not None else 0.0)
        ax.add_patch(FancyArrowPatch(tuple(p0), tuple(p1), arrowstyle="-|>", mutation_scale=12,
                                     patchA=circle0, patchB=circle1,
                                     shrinkA=0 if circle0 is not None else 4,
                                     shrinkB=0 if circle1 is not None else 4,
                                     color=STYLE["forward"], linewidth=1.0, zorder=1))
        for gid, dy, va, color in (("forward", 3, "bottom", STYLE["forward"]),
                                   ("backward", -3, "top", STYLE["gradient"])):
            value = edge.get(gid)
            if value is not None:
                ax.annotate(value if isinstance(value, str) else f"{value:g}",
                            tuple((start + end) / 2), xytext=(0, dy), textcoords="offset points",
                            ha="center", va=va, color=color, fontsize=STYLE["label_size"],
                            gid=gid)
    low, high = xy.min(axis=0) - (1.2, 0.8), xy.max(axis=0) + (1.2, 0.8)
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    ax.set_aspect("equal")
    ax.set_axis_off()
    ax.set_title(title if title is not None else "computational graph",
                 fontsize=STYLE["title_size"])
    key = [Line2D([], [], color=STYLE["forward"], label="value (above the arrow)"),
           Line2D([], [], color=STYLE["gradient"], label="gradient (below the arrow)")]
    fig.legend(handles=key, loc="outside lower center", ncols=2, fontsize=STYLE["small_size"],
               frameon=False)
    return fig


def gradient_check_report(rows: Sequence[tuple[str, float | None, float | None]], *,
                          tol_jax: float = 1e-7, tol_numerical: float = 1e-6,
                          title: str | None = None) -> Figure:
    """Relative error of each parameter's gradient against ``jax.grad`` and finite differences.

    Horizontal bars on a log axis, hatched over their tolerance (a dashed line);
    an error of zero is drawn at ``LOG_FLOOR`` and the x label says so. A NaN or infinite
    error (a gradient that is NaN or inf) fails its tolerance: its bar runs to the right edge.

    Args:
        rows: a non-empty list of ``(label, error_vs_jax, error_vs_numerical)``,
            an error being a non-negative number, or None where that referee was not run.
    """
    rows = [(str(label), *(None if e is None else float(e) for e in errors))
            for label, *errors in rows]
    n, height = len(rows), 0.38
    given = np.array([e for row in rows for e in row[1:] if e is not None], dtype=np.float64)
    shown = [tol_jax, tol_numerical, *np.maximum(given[np.isfinite(given)], LOG_FLOOR)]
    low, high = min(shown) / 10, max(shown) * 1e3
    fig = Figure(figsize=(6.5, 1.2 + 0.45 * n), layout="constrained")
    ax = fig.add_subplot()
    for name, column, tol, offset, color in (
            ("vs jax.grad", 1, tol_jax, -height / 2, STYLE["palette"][0]),
            ("vs finite differences", 2, tol_numerical, height / 2, STYLE["palette"][1])):
        index = [i for i, row in enumerate(rows) if row[column] is not None]
        drawn = np.array([rows[i][column] for i in index], dtype=np.float64)
        widths = np.where(np.isfinite(drawn), np.maximum(drawn, LOG_FLOOR), high)
        failed = ~(drawn <= tol)  # NaN fails too
        if index:
            bars = ax.barh(np.array(index) + offset, widths, height=height, color=color,
                           label=name)
            for bar, bad in zip(bars, failed, strict=True):
                if bad:
                    bar.set_hatch("///")
                    bar.set_edgecolor(STYLE["bad"])
        for i, err, width, bad in zip(index, drawn, widths, failed, strict=True):
            ax.text(min(width * 1.6, high / 10), i + offset, f"{err:.1e}" if err else "0",
                    va="center", fontsize=STYLE["small_size"],
                    color=STYLE["bad"] if bad else "black")
        ax.axvline(tol, linestyle="--", color=color, linewidth=1.2, label=f"tolerance {tol:g}")
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_yticks(range(n), labels=[row[0] for row in rows])
    xlabel = "relative error (log scale)"
    if np.any(given < LOG_FLOOR):
        xlabel += f"; zero drawn at {LOG_FLOOR:g}"
    _decorate(ax, title if title is not None else "gradient check", xlabel, "parameter")
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def confusion_matrix(matrix: Any, class_names: Sequence[str], *, normalize: bool = True,
                     title: str | None = None) -> Figure:
    """A confusion matrix as an image and a colorbar, with the count written in every cell.

    Args:
        matrix: non-negative counts, shape ``(k, k)``: ``matrix[i, j]`` samples of
            true class ``i`` were predicted as ``j``.
        class_names: ``k`` names, for both axes.
        normalize: colour each row by its fraction of that true class (rows
            with no samples stay 0); otherwise colour by count.
    """
    who = "confusion_matrix"
    M = np.asarray(matrix, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ShapeError(f"{who}: expected a square matrix of shape (k, k), got shape {M.shape}")
    k = M.shape[0]
    names = _names(who, class_names, k, "matrix")
    totals = M.sum(axis=1, keepdims=True)
    shade = np.divide(M, totals, out=np.zeros_like(M), where=totals > 0) if normalize else M
    top = 1.0 if normalize else max(float(M.max()), 1.0)
    size = float(np.clip(1.2 + 0.5 * k, 3.5, 9.0))
    fig = Figure(figsize=(size + 1.0, size), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(shade, cmap=STYLE["count_cmap"], vmin=0.0, vmax=top)
    _colorbar(fig, image, ax, "fraction of the true class" if normalize else "count")
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
    """Images with the classifier's verdict, two Axes a sample, ``columns`` samples a row.

    The image is titled with the predicted name and probability (green when
    right, red when wrong, black without labels); beside it, bars of the
    ``top`` most probable classes.

    Args:
        images: at least one grayscale image, shape ``(n, h, w)``.
        probs: class probabilities, shape ``(n, k)``.
        class_names: ``k`` names.
        true_labels: optional integer classes, shape ``(n,)``.
        top: how many classes each bar chart shows, ``1 <= top <= k``.
    """
    who = "samples_with_probabilities"
    images, probs = np.asarray(images), np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ShapeError(f"{who}: expected probs of shape (n, k) with n >= 1, "
                         f"got shape {probs.shape}")
    if images.ndim != 3:
        raise ShapeError(f"{who}: expected grayscale images of shape (n, h, w), got shape "
                         f"{images.shape}" + (" (NCHW: take images[:, 0])"
                                              if images.ndim == 4 and images.shape[1] == 1
                                              else ""))
    n, k = probs.shape
    columns = require_positive_int(who, "columns", columns)
    if n != len(images):
        raise ShapeError(f"{who}: probs has {n} rows but images has {len(images)} images")
    _probabilities(who, "probs", probs)
    names = _names(who, class_names, k, "probs")
    labels = [None] * n if true_labels is None else _classes(who, "true_labels", true_labels,
                                                             n, k)
    if not 1 <= top <= k:
        raise ArgumentError(f"{who}: top must be from 1 to the {k} classes, got {top}")
    columns = min(columns, n)
    rows = -(-n // columns)
    width, height = STYLE["panel_inches"]
    fig = Figure(figsize=(columns * 0.95 * width, rows * 0.7 * height), layout="constrained")
    grid = fig.add_gridspec(rows, 2 * columns, width_ratios=[1.0, 1.3] * columns)
    for i, (label, p) in enumerate(zip(labels, probs, strict=True)):
        r, c = divmod(i, columns)
        image_ax, bar_ax = fig.add_subplot(grid[r, 2 * c]), fig.add_subplot(grid[r, 2 * c + 1])
        guess = int(np.argmax(p))
        verdict = (STYLE["forward"] if label is None else
                   STYLE["good"] if label == guess else STYLE["bad"])
        image_ax.imshow(images[i], cmap=STYLE["image_cmap"], interpolation="nearest")
        image_ax.set_xticks([])
        image_ax.set_yticks([])
        image_ax.set_title(f"{names[guess]} {p[guess]:.1%}", color=verdict,
                           fontsize=STYLE["label_size"])
        image_ax.set_xlabel(f"true: {names[label]}" if label is not None else f"sample {i}",
                            fontsize=STYLE["small_size"])
        best = np.argsort(-p, kind="stable")[:top]
        marked = ({guess: STYLE["target"]} if label is None else
                  {guess: STYLE["bad"], label: STYLE["good"]})
        bar_ax.barh(np.arange(top), p[best], color=[marked.get(c, STYLE["neutral"]) for c in best],
                    height=0.7)
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
    """One histogram per layer, side by side on ``bins`` shared bins and a shared count axis.

    Args:
        activations: ``(label, values)`` per layer; ``values`` is a non-empty,
            finite array of any shape.
    """
    who = "activation_histograms"
    layers = [(str(label), np.asarray(values, dtype=np.float64).ravel())
              for label, values in activations]
    if not layers:
        raise ArgumentError(f"{who}: expected at least one (label, values) pair, got none")
    for label, values in layers:
        if values.size == 0 or not np.isfinite(values).all():
            what = "no values" if values.size == 0 else \
                f"{int((~np.isfinite(values)).sum())} NaN or infinite values"
            raise ArgumentError(f"{who}: {label!r} must hold finite values, got {what}")
    bins = require_positive_int(who, "bins", bins)
    low = min(v.min() for _, v in layers)
    high = max(v.max() for _, v in layers)
    if low == high:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, bins + 1)
    fig, axes = _panels(len(layers), len(layers), 0.8, sharex=True, sharey=True)
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
    """Contours of a function of two variables, each optimizer's path over them, a star.

    Args:
        f: maps meshgrid arrays ``X, Y`` of shape ``(resolution, resolution)`` to
            values of that shape, e.g. ``lambda X, Y: X**2 / 20 + Y**2``.
        paths: name -> the visited points, shape ``(steps, 2)``, drawn in order.
        xlim, ylim: the window ``(low, high)``.
        minimum: where the star goes; by default the lowest grid point of ``f`` (NaN
            values, where ``f`` is undefined, are skipped).
    """
    X, Y = np.meshgrid(np.linspace(*xlim, resolution), np.linspace(*ylim, resolution))
    Z = np.asarray(f(X, Y), dtype=np.float64)
    if Z.shape != X.shape:
        raise ShapeError(f"optimizer_paths: f must return shape {X.shape} for meshgrid "
                         f"arrays of that shape, got shape {Z.shape}")
    if minimum is None:
        if np.isnan(Z).all():
            raise ArgumentError("optimizer_paths: f is NaN everywhere in the window; expected "
                                "numbers somewhere, or pass minimum")
        row, col = np.unravel_index(np.nanargmin(Z), Z.shape)
        minimum = (X[row, col], Y[row, col])
    fig, [ax] = _panels(1, 1, 1.6)
    ax.contour(X, Y, Z, levels=levels, cmap=STYLE["contour_cmap"], linewidths=0.8)
    for i, (name, path) in enumerate(paths.items()):
        path = np.asarray(path, dtype=np.float64)
        if path.ndim != 2 or path.shape[1] != 2:
            raise ShapeError(f"optimizer_paths: path {str(name)!r} must have shape (steps, 2), "
                             f"got shape {path.shape}")
        ax.plot(path[:, 0], path[:, 1], marker="o", markersize=3, color=_color(i + 1),
                linewidth=1.2, label=str(name))
    ax.scatter([minimum[0]], [minimum[1]], marker="*", s=STYLE["marker_size"] * 6,
               color=STYLE["forward"], zorder=3, label="minimum")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    _decorate(ax, title if title is not None else "optimizer paths", "x", "y", grid=False)
    _legend(ax, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def bar_chart(groups: Mapping[str, Mapping[str, float]], *, ylabel: str, xlabel: str = "group",
              title: str | None = None, log_y: bool = False) -> Figure:
    """Grouped bars, each labelled with its value: a group per key, a series per inner key.

    Args:
        groups: group label -> (series label -> value). Series are coloured in
            order of first appearance; a series missing from a group has no bar there.
        title: defaults to ``ylabel``.
    """
    labels = list(groups)
    series = list(dict.fromkeys(s for row in groups.values() for s in row))
    width = 0.8 / len(series)
    fig = Figure(figsize=(max(4.5, 1.0 + 0.5 * len(labels) * len(series)), 3.5),
                 layout="constrained")
    ax = fig.add_subplot()
    for j, name in enumerate(series):
        index = [g for g, label in enumerate(labels) if name in groups[label]]
        values = [groups[labels[g]][name] for g in index]
        bars = ax.bar(np.array(index) + (j - (len(series) - 1) / 2) * width, values, width,
                      color=_color(j), label=str(name))
        ax.bar_label(bars, fmt="%.3g", fontsize=STYLE["small_size"], padding=1)
    if log_y:
        ax.set_yscale("log")
    ax.set_xticks(range(len(labels)), labels=[str(label) for label in labels])
    _decorate(ax, title if title is not None else ylabel, xlabel, ylabel)
    ax.grid(False, axis="x")
    _legend(ax)
    return fig
