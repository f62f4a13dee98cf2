"""Pytree helpers on dm-tree: the only module that imports dm-tree.

A pytree here is any nesting of dicts, tuples, lists and NamedTuples with
arrays (or numbers) at the leaves. dm-tree flattens dicts in *sorted* key
order, treats ``None`` as a leaf, and treats ``()`` as a tree with no leaves,
which is why a layer without parameters has ``params == ()``.

``map`` and ``unflatten_as`` walk dicts, tuples, lists and NamedTuples
themselves (``map`` checking in the same pass that its trees agree) and leave
any other container dm-tree knows to dm-tree.

Paths name a leaf by the keys, indices and NamedTuple fields that lead to
it; ``path_str`` renders them the way Python would index the tree, e.g.
``[1]['W']`` or ``.mu['W']``.

>>> params = ({"W": np.ones((2, 3)), "b": np.zeros(3)}, ())
>>> [path_str(p) for p, _ in flatten_with_paths(params)]
["[0]['W']", "[0]['b']"]
>>> float(global_norm(params))
2.449489742783178
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import tree as _dm

from funcnet.errors import ShapeError, StructureError, describe

__all__ = [
    "map",
    "leaves",
    "structure",
    "unflatten_as",
    "flatten_with_paths",
    "leaf_path",
    "path_str",
    "same_structure",
    "assert_same_structure",
    "assert_same_shapes",
    "freeze",
    "is_frozen",
    "zeros_like",
    "add",
    "sub",
    "scale",
    "vdot",
    "global_norm",
    "size",
    "all_finite",
    "first_nonfinite",
    "Field",
]

Tree = Any
Path = tuple
_CONTAINERS = (dict, tuple, list)


def _is_named(node: Any) -> bool:
    """A NamedTuple (a tuple whose type has ``_fields``)."""
    return isinstance(node, tuple) and hasattr(type(node), "_fields")


def map(f: Callable[..., Any], *trees: Tree, who: str = "tree.map",  # noqa: A001
        names: Sequence[str] | None = None) -> Tree:
    """Apply ``f`` leafwise over one or more trees of the same structure.

    One walk checks the trees' structure and builds the result, which has the
    first tree's structure (its dict key order included). ``f`` sees the leaves
    in ``leaves`` order.

    >>> map(lambda a, b: a + b, {"x": 1, "y": (2, 3)}, {"x": 10, "y": (20, 30)})
    {'x': 11, 'y': (22, 33)}

    Raises:
        StructureError: a tree does not have the first one's structure. The message
            names the path as ``assert_same_structure`` words it, with ``who`` and
            ``names`` (one per tree, ``trees[i]`` by default).
    """
    return _map(f, (trees, who, names), trees[0], trees[1:])


def _map(f: Callable[..., Any], context: tuple, node: Any, others: Sequence[Any]) -> Any:
    """``map`` from ``node`` down, ``others`` holding the other trees' nodes at the same
    place; ``context`` is ``(trees, who, names)``, to word a mismatch."""
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
        if isinstance(o, _CONTAINERS):
            _mismatch(*context)
    return f(node, *others)


def _mismatch(trees: Sequence[Tree], who: str, names: Sequence[str] | None) -> None:
    """Raise the ``StructureError`` that names where a tree differs from the first; return
    only if dm-tree sees no difference (two NamedTuple classes of one name and fields)."""
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


def _rebuild(node: Any, flat: Iterator[Any]) -> Any:
    """``node``'s structure holding the next leaves of ``flat``, taken in ``leaves`` order."""
    kind = type(node)
    if kind is dict:
        keys = list(node)
        order = sorted(keys)
        built = {}
        for k in order:
            built[k] = _rebuild(node[k], flat)
        return built if keys == order else {k: built[k] for k in keys}
    if kind is tuple or kind is list or isinstance(node, tuple) and hasattr(kind, "_fields"):
        children = []
        for child in node:
            children.append(_rebuild(child, flat))
        return kind(children) if kind is tuple or kind is list else kind(*children)
    if kind is not np.ndarray and _dm.is_nested(node):  # another container dm-tree knows
        return _dm.unflatten_as(node, [next(flat) for _ in _dm.flatten(node)])
    return next(flat)


def unflatten_as(tree: Tree, flat: Sequence[Any]) -> Tree:
    """Rebuild a tree with the structure of ``tree`` from a flat list of leaves.

    >>> unflatten_as({"b": 0, "W": (0, 0)}, [1, 2, 3])
    {'b': 3, 'W': (1, 2)}
    """
    flat = list(flat)
    rest = iter(flat)
    try:
        rebuilt = _rebuild(tree, rest)
    except StopIteration:  # too few leaves: dm-tree words the error
        return _dm.unflatten_as(tree, flat)
    if next(rest, rest) is not rest:  # too many leaves: likewise
        return _dm.unflatten_as(tree, flat)
    return rebuilt


class Field(str):
    """A NamedTuple's field in a path: equal to its name, rendered ``.name`` by ``path_str``
    (a dict key of the same text renders ``['name']``)."""

    __slots__ = ()


def _marked(tree: Tree, path: Path) -> Path:
    """``path`` (as dm-tree gives it) with each NamedTuple field name made a ``Field``."""
    if not any(isinstance(p, str) for p in path):
        return path
    out, node = [], tree
    for p in path:
        if isinstance(p, str) and _is_named(node):
            out.append(Field(p))
            node = getattr(node, p)
        else:
            out.append(p)
            node = node[p]
    return tuple(out)


def flatten_with_paths(tree: Tree) -> list[tuple[Path, Any]]:
    """``[(path, leaf), ...]`` in the same order as ``leaves``; NamedTuple fields in a path
    are ``Field``s.

    >>> from funcnet.optim import sgd
    >>> [path_str(p, "state") for p, _ in flatten_with_paths(sgd(0.1).init(np.ones(2)))]
    ['state.count']
    """
    return [(_marked(tree, path), leaf) for path, leaf in _dm.flatten_with_path(tree)]


def leaf_path(tree: Tree, i: int, root: str = "") -> str:
    """The path of ``tree``'s ``i``-th leaf (in ``leaves`` order), rendered by ``path_str``:
    what an error message names, found only once there is an error to word.

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
    """The first place where ``a`` and ``b`` differ as trees, or None."""
    a_nested, b_nested = _dm.is_nested(a), _dm.is_nested(b)
    if not a_nested and not b_nested:
        return None
    if a_nested != b_nested:
        return path, _kind(a), _kind(b)
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        if not (isinstance(a, Mapping) and isinstance(b, Mapping)) or set(a) != set(b):
            return path, _kind(a), _kind(b)
        for k in sorted(a):
            found = _first_difference(a[k], b[k], (*path, k))
            if found:
                return found
        return None
    if type(a) is not type(b) or len(a) != len(b):
        return path, _kind(a), _kind(b)
    names = [Field(f) for f in type(a)._fields] if _is_named(a) else range(len(a))
    for i, x, y in zip(names, a, b, strict=True):
        found = _first_difference(x, y, (*path, i))
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
    try:
        _dm.assert_same_structure(expected, actual, check_types=True)
        return
    except (ValueError, TypeError):
        pass
    found = _first_difference(expected, actual)
    if found is None:  # dm-tree saw a difference our walk does not describe
        path, want, got = (), _kind(expected), _kind(actual)
    else:
        path, want, got = found
    raise StructureError(
        f"{who}: {actual_name} do not match the structure of {expected_name} at "
        f"{path_str(path, expected_name)}: expected {want}, got {got}"
    )


def assert_same_shapes(
    expected: Tree, actual: Tree, *, who: str, expected_name: str = "params",
    actual_name: str = "grads", check_dtype: bool = False,
) -> None:
    """Structure first, then every leaf's shape (and dtype if asked), naming the path."""
    assert_same_structure(
        expected, actual, who=who, expected_name=expected_name, actual_name=actual_name
    )
    for i, (e, a) in enumerate(zip(leaves(expected), leaves(actual), strict=True)):
        e_shape, a_shape = np.shape(e), np.shape(a)
        if e_shape != a_shape:
            what = f"shape {a_shape}, expected {e_shape}"
        elif check_dtype and np.result_type(e) != np.result_type(a):
            what = f"dtype {np.result_type(a)}, expected {np.result_type(e)}"
        else:
            continue
        raise ShapeError(f"{who}: {actual_name} at {leaf_path(expected, i, expected_name)} "
                         f"has {what}")


def _freeze_leaf(leaf: Any, copy: bool) -> Any:
    if type(leaf) is not np.ndarray:
        return leaf  # numbers and jax arrays are immutable already
    if not leaf.flags.writeable:
        return leaf
    if copy:
        leaf = leaf.copy()
    leaf.flags.writeable = False
    return leaf


def freeze(tree: Tree, *, copy: bool = True) -> Tree:
    """Make every numpy leaf read-only, so an in-place write raises.

    With ``copy=True`` (the default) a writeable leaf is copied first, so the
    caller's own arrays are neither aliased nor changed. ``copy=False`` seals
    freshly computed arrays in place, for code that just made them.

    >>> w = freeze({"W": np.zeros(2)})["W"]
    >>> w[0] = 1.0
    Traceback (most recent call last):
    ...
    ValueError: assignment destination is read-only
    """
    return map(lambda leaf: _freeze_leaf(leaf, copy), tree)


def is_frozen(tree: Tree) -> bool:
    """True when no numpy leaf of ``tree`` is writeable."""
    return all(
        not (type(leaf) is np.ndarray and leaf.flags.writeable) for leaf in _dm.flatten(tree)
    )


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
    return builtins.sum(
        (x * y).sum() for x, y in zip(_dm.flatten(a), _dm.flatten(b), strict=True)
    )


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
