"""Pytree helpers on dm-tree: the only module that imports dm-tree.

A pytree here is any nesting of dicts, tuples, lists and NamedTuples with arrays (or
numbers) at the leaves. dm-tree flattens dicts in *sorted* key order, treats ``None`` as a
leaf, and treats ``()`` as a tree with no leaves, which is why a layer without parameters has
``params == ()``. ``map`` walks dicts, tuples, lists and NamedTuples itself and leaves other
containers to dm-tree. A path names a leaf by the keys, indices and NamedTuple fields that
lead to it; ``path_str`` renders it as Python indexing.

>>> params = ({"W": np.ones((2, 3)), "b": np.zeros(3)}, ())
>>> [path_str(p) for p, _ in flatten_with_paths(params)]
["[0]['W']", "[0]['b']"]
>>> float(global_norm(params))
2.449489742783178
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tree as _dm

from funcnet.errors import ShapeError, StructureError, describe

__all__ = [
    "map", "leaves", "structure", "unflatten_as", "flatten_with_paths", "leaf_path", "path_str",
    "same_structure", "assert_same_structure", "assert_same_shapes", "freeze", "is_frozen",
    "zeros_like", "add", "sub", "scale", "vdot", "global_norm", "size", "all_finite",
    "first_nonfinite", "Field",
]

Tree = Any
Path = tuple


def _is_named(node: Any) -> bool:
    """A NamedTuple (a tuple whose type has ``_fields``)."""
    return isinstance(node, tuple) and hasattr(type(node), "_fields")


def map(f: Callable[..., Any], *trees: Tree, who: str = "tree.map",  # noqa: A001
        names: Sequence[str] | None = None) -> Tree:
    """Apply ``f`` leafwise, in ``leaves`` order, over trees of the first one's structure.

    One walk checks the structure and builds the result (in the first tree's dict key order).

    >>> map(lambda a, b: a + b, {"x": 1, "y": (2, 3)}, {"x": 10, "y": (20, 30)})
    {'x': 11, 'y': (22, 33)}

    Raises:
        StructureError: a tree differs from the first; worded as ``assert_same_structure``
            does, with ``who`` and ``names`` (one per tree, ``trees[i]`` by default).
    """
    return _map(f, (trees, who, names), trees[0], trees[1:])


def _map(f: Callable[..., Any], context: tuple, node: Any, others: Sequence[Any]) -> Any:
    """``map`` at ``node``, ``others`` being the other trees' nodes there; ``context`` is
    ``(trees, who, names)``, to word a mismatch."""
    kind = type(node)
    if kind is dict:
        for o in others:
            if type(o) is not dict or o.keys() != node.keys():
                _mismatch(*context)
        keys = list(node)
        order = sorted(keys)
        built = {}
        for k in order:  # loops, not comprehensions: in Python 3.11 each is a call of its own
            built[k] = _map(f, context, node[k], [o[k] for o in others])
        return built if keys == order else {k: built[k] for k in keys}
    if kind is tuple or kind is list or isinstance(node, tuple) and hasattr(kind, "_fields"):
        for o in others:
            if type(o) is not kind or len(o) != len(node):
                _mismatch(*context)
        children = []
        for nodes in zip(node, *others, strict=True):
            children.append(_map(f, context, nodes[0], nodes[1:]))
        return kind(children) if kind is tuple or kind is list else kind(*children)
    if kind is not np.ndarray and _dm.is_nested(node):  # another container dm-tree knows
        for o in others:
            if not same_structure(node, o):
                _mismatch(*context)
        return _dm.map_structure(f, node, *others)
    for o in others:
        if isinstance(o, dict | tuple | list):
            _mismatch(*context)
    return f(node, *others)


def _mismatch(trees: Sequence[Tree], who: str, names: Sequence[str] | None) -> None:
    """Raise the ``StructureError`` naming where a tree differs from the first; return only
    if dm-tree sees no difference (two NamedTuple classes of one name and fields)."""
    labels = names or [f"trees[{i}]" for i in range(len(trees))]
    for other, label in zip(trees[1:], labels[1:], strict=True):
        assert_same_structure(trees[0], other, who=who, expected_name=labels[0],
                              actual_name=label)


def leaves(tree: Tree) -> list:
    """The leaves of ``tree`` in dm-tree's order (dict keys sorted)."""
    return _dm.flatten(tree)


def structure(tree: Tree) -> Tree:
    """``tree`` with every leaf replaced by ``None``: its shape as a tree, for comparisons."""
    return map(lambda _: None, tree)


def unflatten_as(tree: Tree, flat: Sequence[Any]) -> Tree:
    """Rebuild a tree with the structure of ``tree`` from a flat list of leaves.

    >>> unflatten_as({"b": 0, "W": (0, 0)}, [1, 2, 3])
    {'b': 3, 'W': (1, 2)}
    """
    flat = list(flat)
    if len(flat) != len(_dm.flatten(tree)):
        return _dm.unflatten_as(tree, flat)  # which raises, worded by dm-tree
    rest = iter(flat)
    return map(lambda _: next(rest), tree)


class Field(str):
    """A NamedTuple's field in a path: equal to its name, rendered ``.name`` by ``path_str``
    (a dict key of the same text renders ``['name']``)."""

    __slots__ = ()


def _marked(tree: Tree, path: Path) -> Path:
    """``path`` (as dm-tree gives it) with each NamedTuple field name made a ``Field``."""
    out, node = [], tree
    for p in path:
        named = isinstance(p, str) and _is_named(node)
        out.append(Field(p) if named else p)
        node = getattr(node, p) if named else node[p]
    return tuple(out)


def flatten_with_paths(tree: Tree) -> list[tuple[Path, Any]]:
    """``[(path, leaf), ...]`` in ``leaves`` order; NamedTuple fields in a path are ``Field``s.

    >>> from funcnet.optim import sgd
    >>> [path_str(p, "state") for p, _ in flatten_with_paths(sgd(0.1).init(np.ones(2)))]
    ['state.count']
    """
    return [(_marked(tree, path), leaf) for path, leaf in _dm.flatten_with_path(tree)]


def leaf_path(tree: Tree, i: int, root: str = "") -> str:
    """The path of ``tree``'s ``i``-th leaf (in ``leaves`` order), rendered by ``path_str``.

    >>> leaf_path(({"W": 1, "b": 2}, ()), 1, "params")
    "params[0]['b']"
    """
    return path_str(flatten_with_paths(tree)[i][0], root)


def path_str(path: Path, root: str = "") -> str:
    """Render a path as Python indexing: ``(1, 'W')`` -> ``[1]['W']``, a ``Field`` as ``.f``.

    >>> path_str((1, "W"), root="params"), path_str((Field("mu"), "W"), root="state")
    ("params[1]['W']", "state.mu['W']")
    """
    return root + "".join(f".{p}" if type(p) is Field else f"[{p!r}]" for p in path)


def _kind(node: Any) -> str:
    if isinstance(node, Mapping):
        return f"a dict with keys {sorted(builtins.map(str, node))}"
    if _dm.is_nested(node):
        return f"a {type(node).__name__} of length {len(node)}"
    return describe(node)


def _first_difference(a: Any, b: Any, path: Path = ()) -> tuple[Path, str, str] | None:
    """The first ``(path, expected, got)`` where ``a`` and ``b`` differ as trees, or None."""
    if not _dm.is_nested(a) and not _dm.is_nested(b):
        return None
    if type(a) is not type(b) or len(a) != len(b) or isinstance(a, Mapping) and set(a) != set(b):
        return path, _kind(a), _kind(b)
    if isinstance(a, Mapping):
        children = [(k, a[k], b[k]) for k in sorted(a)]
    else:
        keys = [Field(f) for f in type(a)._fields] if _is_named(a) else range(len(a))
        children = zip(keys, a, b, strict=True)
    for key, x, y in children:
        found = _first_difference(x, y, (*path, key))
        if found:
            return found
    return None


def same_structure(a: Tree, b: Tree) -> bool:
    """True when ``a`` and ``b`` have the same containers (types included) and keys.

    >>> same_structure({"W": 1, "b": 2}, {"W": 3, "b": 4}), same_structure((1,), [1])
    (True, False)
    """
    try:
        _dm.assert_same_structure(a, b, check_types=True)
    except (ValueError, TypeError):
        return False
    return True


def assert_same_structure(
    expected: Tree, actual: Tree, *, who: str, expected_name: str = "params",
    actual_name: str = "grads",
) -> None:
    """Raise ``StructureError`` naming the first path where two trees differ.

    >>> assert_same_structure({"W": 1, "b": 2}, {"W": 1}, who="sgd.update")
    Traceback (most recent call last):
    ...
    funcnet.errors.StructureError: sgd.update: grads do not match the structure of params \
at params: expected a dict with keys ['W', 'b'], got a dict with keys ['W']
    """
    if same_structure(expected, actual):
        return
    path, want, got = (_first_difference(expected, actual)
                       or ((), _kind(expected), _kind(actual)))  # a difference only dm-tree sees
    raise StructureError(f"{who}: {actual_name} do not match the structure of {expected_name} "
                         f"at {path_str(path, expected_name)}: expected {want}, got {got}")


def _dtype(leaf: Any) -> np.dtype:
    """A leaf's dtype: its own (jax arrays and tracers too), else numpy's for the value."""
    return leaf.dtype if hasattr(leaf, "dtype") else np.result_type(leaf)


def assert_same_shapes(
    expected: Tree, actual: Tree, *, who: str, expected_name: str = "params",
    actual_name: str = "grads", check_dtype: bool = False,
) -> None:
    """Structure first, then every leaf's shape (and dtype if asked), naming the path."""
    assert_same_structure(expected, actual, who=who, expected_name=expected_name,
                          actual_name=actual_name)
    for i, (e, a) in enumerate(zip(leaves(expected), leaves(actual), strict=True)):
        if np.shape(e) != np.shape(a):
            what = f"shape {np.shape(a)}, expected {np.shape(e)}"
        elif check_dtype and _dtype(e) != _dtype(a):
            what = f"dtype {_dtype(a)}, expected {_dtype(e)}"
        else:
            continue
        raise ShapeError(f"{who}: {actual_name} at {leaf_path(expected, i, expected_name)} "
                         f"has {what}")


def freeze(tree: Tree, *, copy: bool = True) -> Tree:
    """Make every numpy leaf read-only, so an in-place write raises.

    With ``copy=True`` (the default) a writeable leaf is copied first, so the caller's own
    arrays are neither aliased nor changed; ``copy=False`` seals fresh arrays in place.

    >>> w = freeze({"W": np.zeros(2)})["W"]
    >>> w[0] = 1.0
    Traceback (most recent call last):
    ...
    ValueError: assignment destination is read-only
    """

    def seal(leaf):
        if type(leaf) is not np.ndarray or not leaf.flags.writeable:
            return leaf  # numbers and jax arrays are immutable already
        leaf = leaf.copy() if copy else leaf
        leaf.flags.writeable = False
        return leaf

    return map(seal, tree)


def is_frozen(tree: Tree) -> bool:
    """True when no numpy leaf of ``tree`` is writeable."""
    return not any(type(x) is np.ndarray and x.flags.writeable for x in _dm.flatten(tree))


def zeros_like(tree: Tree) -> Tree:
    """A tree of zeros with the shapes and dtypes of ``tree``'s leaves."""
    return map(lambda a: np.zeros(np.shape(a), np.result_type(a)), tree)


def add(a: Tree, b: Tree) -> Tree:
    """Leafwise ``a + b``."""
    return map(lambda x, y: x + y, a, b)


def sub(a: Tree, b: Tree) -> Tree:
    """Leafwise ``a - b``."""
    return map(lambda x, y: x - y, a, b)


def scale(factor: float, tree: Tree) -> Tree:
    """Leafwise ``factor * leaf``."""
    return map(lambda x: factor * x, tree)


def vdot(a: Tree, b: Tree) -> Any:
    """The sum over all leaves of ``sum(a * b)``: the dot product of two flattened trees."""
    return builtins.sum((x * y).sum() for x, y in zip(leaves(a), leaves(b), strict=True))


def global_norm(tree: Tree) -> Any:
    """The L2 norm of all leaves taken together, as one long vector."""
    return builtins.sum(((x * x).sum() for x in _dm.flatten(tree)), 0.0) ** 0.5


def size(tree: Tree) -> int:
    """The number of scalars in ``tree``."""
    return int(builtins.sum(np.size(x) for x in _dm.flatten(tree)))


def all_finite(tree: Tree) -> bool:
    """True when every leaf holds only finite numbers."""
    return all(bool(np.isfinite(x).all()) for x in _dm.flatten(tree))


def first_nonfinite(tree: Tree) -> Path | None:
    """The path of the first leaf with a NaN or an infinity, or None if all are finite."""
    for path, leaf in _dm.flatten_with_path(tree):
        if not bool(np.isfinite(leaf).all()):
            return _marked(tree, path)
    return None
