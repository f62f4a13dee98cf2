"""Digits drawn the way a mouse draws them, made with Pillow: the window's test set.

Each digit is a few strokes from a template (two or three shapes per digit:
a 1 with and without a flag or a base, a 4 closed and open, a 7 with and
without a bar, ...), bent by a smooth random warp, slanted, rotated, scaled,
squeezed and put anywhere on a large dark canvas, then drawn as a polyline of
uneven steps with a little tremor, in bright ink of one width, with round
ends, by the function the window draws its canvas with (``_inference.render_strokes``).
Every choice comes from one ``funcnet.random`` key per sample, so the set is a pure
function of its key.
"""

from __future__ import annotations

import importlib
import math
import sys

import numpy as np
from helpers import EXPERIMENTS
from PIL import Image

from funcnet import random

if str(EXPERIMENTS) not in sys.path:
    sys.path.insert(0, str(EXPERIMENTS))
inference = importlib.import_module("_inference")

CANVAS = 280  # pixels, square: the window's drawing canvas
HEIGHT = (0.3, 0.85)  # digit height, as a fraction of the canvas
WIDTH = (0.55, 1.0)  # digit width, as a fraction of its height
SLANT = (-0.2, 0.35)  # top shifted right by this much of the height: leaning right
TURN = (-12.0, 12.0)  # rotation, degrees
WARP = 0.04  # amplitude of the smooth bend, as a fraction of the height
PEN = (0.035, 0.17)  # stroke width, as a fraction of the height
TREMOR = 0.6  # pixels, per sampled point
STEP = (4.0, 14.0)  # pixels between the points a mouse reports


def arc(cx, cy, rx, ry, start, stop, n=24):
    """Points of an ellipse from angle ``start`` to ``stop`` (degrees; y points down, so
    increasing angles turn clockwise on screen: 0 right, 90 bottom, 270 top)."""
    angles = np.radians(np.linspace(start, stop, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


# Strokes in a unit box: x in [0, 1] left to right, y in [0, 1] top to bottom.
TEMPLATES = {
    0: [[arc(0.5, 0.5, 0.4, 0.5, -90, 275, 40)],
        [arc(0.5, 0.5, 0.42, 0.5, -100, 260, 40)]],
    1: [[[(0.5, 0.0), (0.5, 1.0)]],
        [[(0.2, 0.25), (0.55, 0.0), (0.55, 1.0)]],
        [[(0.25, 0.22), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.85, 1.0)]]],
    2: [[arc(0.5, 0.28, 0.38, 0.28, 190, 400) + [(0.1, 1.0), (0.92, 1.0)]],
        [arc(0.5, 0.3, 0.4, 0.3, 200, 380) + [(0.55, 0.62), (0.1, 1.0), (0.95, 0.98)]]],
    3: [[arc(0.45, 0.25, 0.38, 0.25, 200, 450) + arc(0.45, 0.75, 0.42, 0.25, 270, 520)],
        [[(0.1, 0.0), (0.85, 0.0), (0.4, 0.42)] + arc(0.45, 0.7, 0.4, 0.3, 250, 520)]],
    4: [[[(0.65, 0.0), (0.05, 0.65), (0.95, 0.65)], [(0.68, 0.3), (0.68, 1.0)]],
        [[(0.15, 0.0), (0.1, 0.58), (0.92, 0.58)], [(0.72, 0.0), (0.72, 1.0)]]],
    5: [[[(0.88, 0.0), (0.28, 0.0), (0.22, 0.45)] + arc(0.5, 0.68, 0.4, 0.32, 235, 500)],
        [[(0.28, 0.0), (0.22, 0.45)] + arc(0.5, 0.68, 0.4, 0.32, 235, 500),
         [(0.28, 0.0), (0.9, 0.02)]]],
    6: [[[(0.78, 0.0), (0.5, 0.12), (0.3, 0.35), (0.2, 0.6)]
         + arc(0.5, 0.72, 0.3, 0.28, 180, -170)],
        [arc(0.95, 0.65, 0.75, 0.65, 260, 180, 12) + arc(0.5, 0.72, 0.32, 0.28, 180, -180)]],
    7: [[[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)]],
        [[(0.05, 0.0), (0.95, 0.0), (0.4, 1.0)], [(0.3, 0.5), (0.85, 0.5)]],
        [[(0.05, 0.1), (0.1, 0.0), (0.95, 0.0), (0.6, 0.5), (0.45, 1.0)]]],
    8: [[arc(0.5, 0.25, 0.32, 0.25, 330, 90) + arc(0.5, 0.74, 0.4, 0.26, 270, 630)
         + [(0.78, 0.12)]],
        [arc(0.5, 0.25, 0.3, 0.25, 90, 450), arc(0.5, 0.74, 0.38, 0.26, -90, 270)]],
    9: [[arc(0.45, 0.28, 0.38, 0.28, 0, -360) + [(0.8, 0.6), (0.75, 1.0)]],
        [arc(0.45, 0.3, 0.38, 0.3, 20, -340) + [(0.8, 0.55), (0.65, 0.85), (0.4, 1.0)]]],
}


def _interval(u, bounds):
    return bounds[0] + u * (bounds[1] - bounds[0])


def strokes(key, digit: int, canvas: int = CANVAS) -> tuple[list[np.ndarray], int]:
    """The mouse paths of one drawn ``digit``: a list of (n, 2) pixel arrays, and a pen width."""
    k_shape, k_pick, k_path = random.split(key, 3)
    u = random.uniform(k_shape, (12,))
    template = TEMPLATES[digit][int(random.integers(k_pick, 0, len(TEMPLATES[digit])))]
    height = _interval(u[0], HEIGHT) * canvas
    width = _interval(u[1], WIDTH) * height
    slant, turn = _interval(u[2], SLANT), math.radians(_interval(u[3], TURN))
    phases = 2 * math.pi * u[4:6]
    bend = WARP * (2 * u[6:8] - 1)
    pen = max(2, round(_interval(u[8], PEN) * height))

    def place(points):
        p = np.asarray(points, dtype=np.float64)
        x = p[:, 0] + bend[0] * np.sin(2 * math.pi * p[:, 1] + phases[0])
        y = p[:, 1] + bend[1] * np.sin(2 * math.pi * p[:, 0] + phases[1])
        x, y = (x - 0.5) * width + slant * (0.5 - y) * height, (y - 0.5) * height
        c, s = math.cos(turn), math.sin(turn)
        return np.stack([c * x - s * y, s * x + c * y], axis=1)

    placed = [place(stroke) for stroke in template]
    corners = np.concatenate(placed)
    low, high = corners.min(axis=0) - pen, corners.max(axis=0) + pen
    room = np.maximum(canvas - (high - low), 0.0)
    offset = -low + u[9:11] * room
    paths = []
    for i, stroke in enumerate(placed):
        paths.append(_mouse(random.fold_in(k_path, i), stroke + offset))
    return paths, pen


def _mouse(key, path: np.ndarray) -> np.ndarray:
    """Resample a path at uneven steps, as mouse events arrive, with a little tremor."""
    k_step, k_shake = random.split(key)
    length = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(path, axis=0).T))])
    steps = random.uniform(k_step, (int(length[-1] / STEP[0]) + 2,), minval=STEP[0],
                           maxval=STEP[1])
    at = np.concatenate([[0.0], np.cumsum(steps)])
    at = np.append(at[at < length[-1]], length[-1])
    points = np.stack([np.interp(at, length, path[:, 0]), np.interp(at, length, path[:, 1])],
                      axis=1)
    return points + TREMOR * random.normal(k_shake, points.shape)


def drawn_digits(key, per_class: int, canvas: int = CANVAS) -> tuple[list[Image.Image],
                                                                      np.ndarray]:
    """``per_class`` drawings of each digit 0-9 (images, labels), a pure function of ``key``."""
    images, labels = [], []
    for digit in range(10):
        for i in range(per_class):
            paths, pen = strokes(random.fold_in(random.fold_in(key, digit), i), digit, canvas)
            images.append(inference.render_strokes(paths, pen, (canvas, canvas)))
            labels.append(digit)
    return images, np.array(labels)
