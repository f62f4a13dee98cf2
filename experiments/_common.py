"""What every experiment script shares: its command line, its output folder, its metrics file.

Each script is ``python experiments/NAME.py [--seed N] [--out DIR] [--quick]``;
its figures and ``metrics.json`` go to ``runs/NAME/`` unless ``--out`` says
otherwise. ``metrics.json`` records the configuration, the seed, the package
versions and the final metrics, so a reader can tell exactly what produced a
number.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

RUNS = Path("runs")


def summary(doc: str | None) -> str:
    """A docstring's first paragraph on one line: what ``--help`` says the script does (its
    first line alone can stop mid-sentence)."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def seed(text: str) -> int:
    """``--seed``'s type: a non-negative integer, as ``funcnet.random.key`` takes, refused
    with a usage message (and before the output folder is made) otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value}")
    return value


def parse_args(name: str, doc: str | None, argv: Sequence[str] | None, *,
               default_seed: int = 0,
               extra: Callable[[argparse.ArgumentParser], None] | None = None,
               ) -> argparse.Namespace:
    """``--seed``, ``--out`` (default ``runs/NAME``) and ``--quick``, plus ``extra`` options."""
    parser = argparse.ArgumentParser(prog=f"{name}.py", description=summary(doc))
    parser.add_argument("--seed", type=seed, default=default_seed,
                        help=f"random seed, a non-negative integer (default {default_seed})")
    parser.add_argument("--out", type=Path, default=RUNS / name,
                        help=f"output folder (default runs/{name})")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny configuration, for tests: seconds, not the note's numbers")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    return args


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that can change the numbers."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for package in ("funcnet", "numpy", "dm-tree", "matplotlib", "jax"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python numbers and lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # strict JSON has no NaN or inf: a diverged run's metric is null
    if isinstance(value, Path):
        return str(value)
    return value


def write_metrics(out: Path, name: str, *, config: dict, seed: int,
                  metrics: dict) -> Path:
    """Write ``out/metrics.json`` atomically and return its path."""
    record = {"experiment": name, "seed": seed, "config": _plain(config),
              "versions": versions(), "metrics": _plain(metrics)}
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    handle, tmp = tempfile.mkstemp(prefix=".tmp-metrics-", dir=out)
    try:
        with os.fdopen(handle, "w") as f:
            json.dump(record, f, indent=2, sort_keys=False, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def say(*parts: Any) -> None:
    """Print a progress line at once (scripts are often piped into logs)."""
    print(*parts, flush=True)
    sys.stdout.flush()


def compare(label: str, value: Any, note: Any, *, digits: int = 8) -> str:
    """A line ``label: value (note: note)`` with both printed to ``digits`` decimals."""
    def fmt(v: Any) -> str:
        arr = np.asarray(v, dtype=float)
        return (f"{float(arr):.{digits}f}" if arr.ndim == 0
                else np.array2string(arr, precision=digits, floatmode="fixed"))

    return f"{label}: {fmt(value)}   (note: {fmt(note)})"


def print_every(interval: int, epochs: int) -> Callable[[Any, dict], None]:
    """An observer printing the epoch's mean error every ``interval`` epochs, the way the
    notes print ``Epoch:i/N Error:e`` (epochs counted from 0)."""
    def observe(state: Any, metrics: dict) -> None:
        if (metrics["epoch"] - 1) % interval == 0:
            say(f"Epoch:{metrics['epoch'] - 1}/{epochs} Error:{metrics['loss']:.8f}")
    return observe


def digits_split(key: Any, test_fraction: float, *, images: bool = False) -> tuple:
    """The digits split by ``key`` into training and test parts, standardised with one mean
    and std over the training pixels: ``(x_train, y_train, x_test, y_test)``."""
    from funcnet import data

    full = data.digits(images=images)
    x_train, y_train, x_test, y_test = data.train_test_split(key, full.x, full.y, test_fraction)
    stats = data.standardizer(x_train, per_feature=False)
    return data.standardize(x_train, stats), y_train, data.standardize(x_test, stats), y_test


def wrong_then_right(predicted: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Indices of up to ``count`` samples to show: misclassified ones first (at most half),
    then correct ones."""
    wrong = np.flatnonzero(predicted != labels)[:count // 2]
    right = np.flatnonzero(predicted == labels)[:count - len(wrong)]
    return np.concatenate([wrong, right])
