"""Test helpers: tree comparison with paths, deep snapshots for immutability checks."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from funcnet import tree


def snapshot(value: Any) -> Any:
    """A deep copy of every array leaf (numbers and other leaves kept), to compare later."""
    return tree.map(lambda v: np.array(v, copy=True) if hasattr(v, "shape") else v, value)


def assert_bitwise_equal(before: Any, after: Any, what: str) -> None:
    """Same structure, and every leaf identical in dtype, shape and bits."""
    tree.assert_same_structure(before, after, who=what, expected_name="before",
                               actual_name="after")
    for (path, a), b in zip(tree.flatten_with_paths(before), tree.leaves(after), strict=True):
        where = f"{what}{tree.path_str(path)}"
        if hasattr(a, "shape"):
            b = np.asarray(b)
            assert a.dtype == b.dtype, f"{where}: dtype changed {a.dtype} -> {b.dtype}"
            assert a.shape == b.shape, f"{where}: shape changed"
            assert a.tobytes() == b.tobytes(), f"{where}: contents changed"
        else:
            assert a == b or (a != a and b != b), f"{where}: {a!r} changed to {b!r}"


def assert_trees_close(actual: Any, expected: Any, *, rtol: float = 1e-12,
                       atol: float = 0.0, what: str = "tree") -> None:
    """Structure first, then leafwise allclose with the path in the message."""
    tree.assert_same_structure(expected, actual, who=what, expected_name="expected",
                               actual_name="actual")
    for (path, e), a in zip(tree.flatten_with_paths(expected), tree.leaves(actual),
                            strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol,
                                   err_msg=f"{what}{tree.path_str(path)}")


def away_from_zero(rng: np.random.Generator, shape: tuple, *, margin: float = 0.05) -> np.ndarray:
    """Standard normal samples pushed at least ``margin`` away from 0 (relu's kink)."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + margin, x - margin)


# --- experiment scripts ----------------------------------------------------------------------

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"


def defined_functions(module: ModuleType) -> set[str]:
    """The public lower-case functions a package module holds that the package itself
    defines, whether or not ``__all__`` lists them: what a registry test must see."""
    package = module.__name__
    return {name for name, value in vars(module).items()
            if not name.startswith("_") and name.islower() and callable(value)
            and not isinstance(value, type)
            and getattr(value, "__module__", "").startswith(package)}


def load_script(name: str) -> ModuleType:
    """Import ``experiments/NAME.py`` as a module. The scripts ``import _common`` from
    beside them, so that folder goes on sys.path here (the scripts never touch it)."""
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))
    spec = importlib.util.spec_from_file_location(f"experiment_{name}",
                                                  EXPERIMENTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path: Path) -> None:
    """The file is a PNG that Pillow can read to the end."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG", f"{path} is {image.format}, not PNG"
        image.verify()


def write_bar_idx_set(folder: Path, sizes: dict[str, int]) -> Path:
    """A tiny MNIST-format set in ``folder``: class c is a bright bar in row band c.

    ``sizes`` maps a file prefix (``"train"``, ``"t10k"``) to its number of
    samples; labels cycle through 0..9. Returns ``folder``.
    """
    import struct

    def write_idx(path: Path, array: np.ndarray) -> None:
        header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
        header += struct.pack(f">{array.ndim}I", *array.shape)
        path.write_bytes(header + array.astype(np.uint8).tobytes())

    folder.mkdir(parents=True, exist_ok=True)
    for prefix, n in sizes.items():
        labels = np.arange(n) % 10
        images = np.zeros((n, 28, 28), np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c:4 + 2 * c, 4:24] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels)
    return folder
