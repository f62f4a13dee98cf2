"""The public surface and the package's layering, checked from the outside.

- every name ``__all__`` promises exists;
- ``import funcnet`` loads neither jax nor matplotlib;
- each module imports only the funcnet modules below it in DESIGN.md's table,
  jax only lazily (inside a function) in ``check.py`` or a jit module,
  matplotlib only in ``plot.py``, dm-tree only in ``tree.py``;
- every public module carries at least one doctest, and pytest collects them.
"""

from __future__ import annotations

import ast
import doctest
import importlib
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import funcnet

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "funcnet"


def _all_modules() -> list[str]:
    return ["funcnet"] + sorted(m.name for m in pkgutil.walk_packages(funcnet.__path__,
                                                                        "funcnet."))


def _public_modules() -> list[str]:
    return sorted(f"funcnet.{m.name}" for m in pkgutil.iter_modules(funcnet.__path__)
                  if not m.name.startswith("_"))


@pytest.mark.parametrize("name", _all_modules())
def test_every_name_in_all_exists(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        assert name.rsplit(".", 1)[-1].startswith("_"), f"public module {name} has no __all__"
        return
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"


def test_the_package_exports_its_modules():
    for name in funcnet.__all__:
        assert hasattr(funcnet, name)
    assert isinstance(funcnet.__version__, str)


def _modules_loaded_by(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=True)
    return set(done.stdout.split())


HEAVY = ("jax", "jaxlib", "matplotlib")


@pytest.mark.parametrize("statement", ["import funcnet", "import funcnet.check"])
def test_import_loads_neither_jax_nor_matplotlib(statement):
    loaded = _modules_loaded_by(statement)
    assert "funcnet" in loaded and "numpy" in loaded
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert not heavy, f"{statement!r} imported {heavy[:5]}"


# --- layering ----------------------------------------------------------------------------------

#: DESIGN.md's table: which funcnet modules each module may import (itself always allowed).
ALLOWED = {
    "errors": set(),
    "_xp": set(),
    "_files": set(),
    "_kernel": set(),
    "tree": {"errors"},
    "random": {"errors"},
    "init": {"random", "errors"},
    "layers": {"tree", "random", "init", "errors", "_xp", "_kernel"},
    "losses": {"tree", "errors", "_xp", "_kernel"},
    "optim": {"tree", "errors", "_xp", "_kernel"},
    "check": {"layers", "losses", "tree", "random", "errors", "_xp"},
    "data": {"errors", "random"},
    "io": {"tree", "errors", "_files"},
    "plot": {"errors", "_files"},
}
#: Modules that sit on top: the package itself, training and a jit path may use all but plot.
TOP = ("__init__", "train")
EVERYTHING_BUT_PLOT = "everything but plot"


def _unit(path: Path) -> str:
    """The table's name of a source file: 'layers' for every file of the layers package."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _allowed(unit: str):
    if unit in TOP or "jit" in unit:
        return EVERYTHING_BUT_PLOT
    return ALLOWED.get(unit)


def _package_of(path: Path) -> str:
    parts = ("funcnet", *path.relative_to(PACKAGE).parts[:-1])
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, path: Path) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _funcnet_target(dotted: str) -> str | None:
    """'funcnet.layers._base' -> 'layers'; 'funcnet' -> '__init__'; not funcnet -> None."""
    parts = dotted.split(".")
    if parts[0] != "funcnet":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(source: str, path: Path):
    """Yield (line, imported dotted name, inside a function?) for every import in a module."""
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef
                                              | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend((child.lineno, a.name, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                module = _absolute(child, path)
                if module == "funcnet":  # from funcnet import tree: a module, or a package name
                    for a in child.names:
                        is_module = ((PACKAGE / f"{a.name}.py").exists()
                                     or (PACKAGE / a.name).is_dir())
                        found.append((child.lineno, f"funcnet.{a.name}" if is_module
                                      else "funcnet", in_function))
                else:
                    found.append((child.lineno, module, in_function))
            visit(child, inner)

    visit(ast.parse(source), False)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def _violations(path: Path, source: str) -> list[str]:
    unit = _unit(path)
    allowed = _allowed(unit)
    where = path.relative_to(ROOT)
    if allowed is None:
        return [f"{where}: module {unit!r} is not in DESIGN.md's table; add it to ALLOWED"]
    out = []
    for line, name, in_function in _imports(source, path):
        top = name.split(".")[0]
        target = _funcnet_target(name)
        if target is not None and target != unit:
            if allowed == EVERYTHING_BUT_PLOT:
                if target == "plot":
                    out.append(f"{where}:{line}: imports funcnet.plot")
            elif target not in allowed:
                out.append(f"{where}:{line}: {unit} may not import funcnet.{target} "
                           f"(allowed: {sorted(allowed) or 'none'})")
        if top in ("jax", "jaxlib"):
            if not (unit == "check" or "jit" in unit):
                out.append(f"{where}:{line}: imports {name}; only check.py and the jit path may")
            elif not in_function:
                out.append(f"{where}:{line}: imports {name} at module level; import it lazily "
                           f"inside the function that needs it")
        if top == "matplotlib" and unit != "plot":
            out.append(f"{where}:{line}: imports {name}; only plot.py may")
        if name == "tree" and unit != "tree":  # an absolute 'import tree' is dm-tree
            out.append(f"{where}:{line}: imports dm-tree; only funcnet/tree.py may")
    return out


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_respects_the_layering(path):
    problems = _violations(path, path.read_text())
    assert not problems, "\n".join(problems)


def test_the_layering_scanner_finds_violations():
    def scan(relative, source):
        return _violations(PACKAGE / relative, source)

    assert scan("tree.py", "import tree as _dm\nfrom funcnet.errors import describe\n") == []
    assert scan("layers/_new.py", "from ..tree import freeze\nfrom . import _base\n") == []
    found = scan("tree.py", "from funcnet import layers\n")
    assert found and "tree may not import funcnet.layers" in found[0]
    found = scan("losses.py", "from .layers._base import Layer\n")
    assert found and "losses may not import funcnet.layers" in found[0]
    found = scan("check.py", "import jax\n")
    assert found and "at module level" in found[0]
    assert scan("check.py", "def f():\n    import jax.numpy as jnp\n") == []
    assert "only check.py" in scan("optim.py", "def f():\n    import jax\n")[0]
    assert scan("fast_jit.py", "def f():\n    from jax import jit\nfrom funcnet import optim\n") \
        == []
    assert "only plot.py" in scan("io.py", "import matplotlib.pyplot as plt\n")[0]
    assert "only funcnet/tree.py" in scan("optim.py", "import tree\n")[0]
    assert "imports funcnet.plot" in scan("train.py", "from funcnet import plot\n")[0]
    assert scan("train.py", "from funcnet import layers, optim, data, io, check\n") == []
    assert "not in DESIGN.md's table" in scan("mystery.py", "")[0]


# --- doctests ----------------------------------------------------------------------------------


def _doctest_examples(module_name: str) -> int:
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder()
    count = sum(len(t.examples) for t in finder.find(module))
    if hasattr(module, "__path__"):  # a package: its objects live in its submodules
        for sub in pkgutil.walk_packages(module.__path__, module_name + "."):
            count += sum(len(t.examples) for t in finder.find(importlib.import_module(sub.name)))
    return count


@pytest.mark.parametrize("name", _public_modules())
def test_every_public_module_has_a_doctest(name):
    assert _doctest_examples(name) > 0, f"{name} has no example in any docstring"


def test_pytest_collects_the_doctests():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    options = config["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert "funcnet" in options["testpaths"]


def test_layer_files_do_not_import_each_other():
    """A layer file imports the protocol (_base) and shared kernels (_im2col), never another
    layer; only the builders (__init__ re-exporting, _mlp composing) know concrete layers."""
    folder = Path(funcnet.__file__).parent / "layers"
    shared = {"funcnet.layers._base", "funcnet.layers._im2col"}
    offenders = []
    for path in sorted(folder.glob("_*.py")):
        if path.name in ("__init__.py", "_mlp.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                    "funcnet.layers.") and node.module not in shared:
                offenders.append(f"{path.name} imports {node.module}")
    assert not offenders, offenders
