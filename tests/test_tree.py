"""funcnet.tree: the pytree helpers every other module leans on.

The arithmetic helpers are checked against numpy on the flattened
concatenation of all leaves, the structure checks by the path and the
wording of the first difference they report.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from funcnet import tree
from funcnet.errors import ShapeError, StructureError


class Pair(NamedTuple):
    first: object
    second: object


def _nested(rng, dtype=np.float64):
    """A mixed tree: dict (unsorted keys), tuple, NamedTuple, empty tuple, 0-d leaf."""
    return {
        "zeta": (rng.standard_normal((2, 3)).astype(dtype), ()),
        "alpha": {"W": rng.standard_normal(4).astype(dtype),
                  "b": np.asarray(rng.standard_normal(), dtype)},
        "mid": Pair(rng.standard_normal((1, 2)).astype(dtype),
                    rng.standard_normal(3).astype(dtype)),
    }


def _flat(t):
    return np.concatenate([np.ravel(x) for x in tree.leaves(t)])


SEEDS = st.integers(0, 2**16)


def test_map_over_several_trees():
    a = {"x": 1, "y": (2, 3)}
    b = {"x": 10, "y": (20, 30)}
    c = {"x": 100, "y": (200, 300)}
    assert tree.map(lambda p, q, r: p + q + r, a, b, c) == {"x": 111, "y": (222, 333)}
    assert tree.map(lambda p: -p, ()) == ()


def test_map_keeps_namedtuples():
    out = tree.map(lambda v: 2 * v, Pair(1, {"k": 2}))
    assert isinstance(out, Pair) and out == Pair(2, {"k": 4})


def test_leaves_sort_dict_keys():
    t = {"b": 2, "a": (1, {"d": 4, "c": 3}), "e": ()}
    assert tree.leaves(t) == [1, 3, 4, 2]
    assert tree.leaves(()) == []


def test_flatten_with_paths_and_path_str():
    t = ({"W": "w0", "b": "b0"}, (), [{"W": "w2"}])
    pairs = tree.flatten_with_paths(t)
    assert [leaf for _, leaf in pairs] == tree.leaves(t)
    assert [p for p, _ in pairs] == [(0, "W"), (0, "b"), (2, 0, "W")]
    assert [tree.path_str(p) for p, _ in pairs] == ["[0]['W']", "[0]['b']", "[2][0]['W']"]
    assert tree.path_str((), "params") == "params"
    assert tree.path_str((1, "W"), root="grads") == "grads[1]['W']"


def test_path_str_indexes_the_tree():
    # a NamedTuple's field renders as an attribute (['mu'] would not index it), a dict key
    # of the same text as a key
    t = {"layers": ({"W": np.arange(3)}, [5, 6]),
         "state": Pair(np.ones(1), {"a": np.zeros(2)}), "a": Pair(7, 8)}
    paths = []
    for path, leaf in tree.flatten_with_paths(t):
        paths.append(tree.path_str(path))
        assert eval("t" + paths[-1]) is leaf  # the rendered path is Python indexing
    assert "['state'].second['a']" in paths and "['a'].first" in paths
    assert tree.path_str(tree.first_nonfinite({"s": Pair(1.0, np.array([np.nan]))}), "x") \
        == "x['s'].second"


def test_structure_errors_name_namedtuple_fields_as_attributes():
    with pytest.raises(StructureError,
                       match=r"at state\.second: expected a dict with keys \['W'\]"):
        tree.assert_same_structure(Pair(1, {"W": 1}), Pair(1, {"V": 1}), who="t",
                                   expected_name="state", actual_name="other")


@given(seed=SEEDS)
def test_unflatten_as_round_trip(seed):
    t = _nested(np.random.default_rng(seed))
    flat = tree.leaves(t)
    back = tree.unflatten_as(t, flat)
    assert tree.structure(back) == tree.structure(t)
    assert all(x is y for x, y in zip(tree.leaves(back), flat, strict=True))
    tree.assert_same_structure(t, back, who="round trip")
    # a rebuild from new leaves lands them in flatten order
    numbered = tree.unflatten_as(t, range(len(flat)))
    assert tree.leaves(numbered) == list(range(len(flat)))
    assert isinstance(numbered["mid"], Pair)


def test_structure_replaces_leaves_with_none():
    assert tree.structure({"a": np.ones(2), "b": (1, 2.0)}) == {"a": None, "b": (None, None)}


# --- assert_same_structure: the first differing path, worded -------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        ({"a": 1, "b": {"c": 1, "d": 2}}, {"a": 1, "b": {"c": 1, "e": 2}},
         r"at params\['b'\]: expected a dict with keys \['c', 'd'\], "
         r"got a dict with keys \['c', 'e'\]"),
        ({"x": (1, 2)}, {"x": (1, 2, 3)},
         r"at params\['x'\]: expected a tuple of length 2, got a tuple of length 3"),
        ({"x": (1, 2)}, {"x": [1, 2]},
         r"at params\['x'\]: expected a tuple of length 2, got a list of length 2"),
        ({"x": (1, {"y": 2})}, {"x": (1, 3)},
         r"at params\['x'\]\[1\]: expected a dict with keys \['y'\], got an int \(3\)"),
        ((np.zeros(2), 5), ((np.zeros(2),), 5),
         r"at params\[0\]: expected an array of shape \(2,\) and dtype float64, "
         r"got a tuple of length 1"),
        ((Pair(1, 2),), ((1, 2),),
         r"at params\[0\]: expected a Pair of length 2, got a tuple of length 2"),
        ({"W": 1, "b": 2}, {"W": 1},
         r"at params: expected a dict with keys \['W', 'b'\], got a dict with keys \['W'\]"),
    ],
    ids=["dict keys", "tuple length", "tuple vs list", "subtree vs leaf", "leaf vs subtree",
         "namedtuple vs tuple", "root"],
)
def test_assert_same_structure_names_the_first_difference(expected, actual, message):
    with pytest.raises(StructureError, match=r"^sgd\.update: grads do not match the structure "
                                             r"of params " + message):
        tree.assert_same_structure(expected, actual, who="sgd.update")


def test_assert_same_structure_reports_the_first_path_in_flatten_order():
    a = {"a": (1, 2), "b": (1, 2)}
    b = {"b": (1, 2, 3), "a": [1, 2]}  # both differ; 'a' comes first in sorted order
    with pytest.raises(StructureError, match=r"at params\['a'\]: .* got a list"):
        tree.assert_same_structure(a, b, who="w")


def test_assert_same_structure_uses_the_given_names():
    with pytest.raises(StructureError, match=r"^f: after do not match the structure of before "
                                             r"at before\[1\]"):
        tree.assert_same_structure((1, (2,)), (1, (2, 3)), who="f", expected_name="before",
                                   actual_name="after")


def test_assert_same_structure_accepts_equal_structures_with_other_leaves():
    t = _nested(np.random.default_rng(0))
    tree.assert_same_structure(t, tree.map(lambda x: "anything", t), who="w")


def test_assert_same_shapes_names_shape_and_dtype():
    a = {"w": np.zeros((2, 3)), "b": np.zeros(3)}
    with pytest.raises(ShapeError, match=r"^s: grads at params\['w'\] has shape \(3, 2\), "
                                         r"expected \(2, 3\)$"):
        tree.assert_same_shapes(a, {"w": np.zeros((3, 2)), "b": np.zeros(3)}, who="s")
    other_dtype = {"w": np.zeros((2, 3)), "b": np.zeros(3, np.float32)}
    tree.assert_same_shapes(a, other_dtype, who="s")  # dtype only when asked
    with pytest.raises(ShapeError, match=r"^s: grads at params\['b'\] has dtype float32, "
                                         r"expected float64$"):
        tree.assert_same_shapes(a, other_dtype, who="s", check_dtype=True)
    with pytest.raises(StructureError, match="at params: expected a dict"):
        tree.assert_same_shapes(a, {"w": np.zeros((2, 3))}, who="s")


# --- freeze ----------------------------------------------------------------------------------


def test_freeze_makes_writes_raise_and_copies_by_default():
    W = np.arange(4.0)
    frozen = tree.freeze({"W": W, "nested": (np.ones(2),)})
    assert tree.is_frozen(frozen)
    for leaf in tree.leaves(frozen):
        with pytest.raises(ValueError, match="read-only"):
            leaf[0] = 7.0
    # the caller's array: still writeable, not aliased, unchanged
    assert W.flags.writeable and not np.shares_memory(W, frozen["W"])
    W[0] = 100.0
    assert frozen["W"][0] == 0.0


def test_freeze_without_copy_seals_in_place():
    W = np.arange(3.0)
    frozen = tree.freeze({"W": W}, copy=False)
    assert frozen["W"] is W and not W.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        W[0] = 1.0


def test_freeze_returns_frozen_leaves_as_they_are():
    W = np.arange(3.0)
    W.flags.writeable = False
    assert tree.freeze({"W": W})["W"] is W


def test_freeze_passes_numbers_and_jax_arrays_through(jax):
    import jax.numpy as jnp

    j = jnp.ones(3)
    out = tree.freeze({"j": j, "n": 3, "f": 2.5})
    assert out["j"] is j and out["n"] == 3 and out["f"] == 2.5
    assert tree.is_frozen(out)


def test_is_frozen_sees_any_writeable_leaf():
    assert tree.is_frozen(())
    assert tree.is_frozen({"n": 1.0})
    t = (tree.freeze(np.zeros(2)), np.zeros(2))
    assert not tree.is_frozen(t)
    assert tree.is_frozen(tree.freeze(t))


# --- arithmetic against numpy on the flattened tree ------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zeros_like_keeps_shapes_and_dtypes(dtype):
    t = _nested(np.random.default_rng(1), dtype)
    z = tree.zeros_like(t)
    tree.assert_same_shapes(t, z, who="zeros_like", check_dtype=True)
    assert all(not np.any(x) for x in tree.leaves(z))
    assert tree.leaves(tree.zeros_like({"i": np.arange(3)}))[0].dtype == np.arange(3).dtype


@given(seed=SEEDS, factor=st.floats(-3, 3))
def test_arithmetic_matches_numpy_on_the_concatenation(seed, factor):
    rng = np.random.default_rng(seed)
    a, b = _nested(rng), _nested(rng)
    fa, fb = _flat(a), _flat(b)
    np.testing.assert_array_equal(_flat(tree.add(a, b)), fa + fb)
    np.testing.assert_array_equal(_flat(tree.sub(a, b)), fa - fb)
    np.testing.assert_array_equal(_flat(tree.scale(factor, a)), factor * fa)
    np.testing.assert_allclose(tree.vdot(a, b), np.dot(fa, fb), rtol=1e-12)
    np.testing.assert_allclose(tree.global_norm(a), np.linalg.norm(fa), rtol=1e-12)
    assert tree.size(a) == fa.size == 2 * 3 + 4 + 1 + 2 + 3
    assert tree.structure(tree.add(a, b)) == tree.structure(a)


def test_arithmetic_on_empty_and_bare_trees():
    assert tree.size(()) == 0
    assert float(tree.global_norm(())) == 0.0
    assert float(tree.global_norm(np.array([3.0, 4.0]))) == 5.0
    assert tree.add(np.array(1.0), np.array(2.0)) == 3.0


def test_arithmetic_does_not_mutate():
    a, b = {"w": np.ones(3)}, {"w": np.full(3, 2.0)}
    tree.add(a, b), tree.sub(a, b), tree.scale(3.0, a)
    np.testing.assert_array_equal(a["w"], np.ones(3))
    np.testing.assert_array_equal(b["w"], np.full(3, 2.0))


# --- finiteness ------------------------------------------------------------------------------


def test_all_finite_and_first_nonfinite():
    ok = {"a": np.ones(2), "b": (np.zeros(3), 1.5)}
    assert tree.all_finite(ok) and tree.first_nonfinite(ok) is None
    assert tree.all_finite(()) and tree.first_nonfinite(()) is None

    bad = {"z": np.array([np.inf]), "b": (np.zeros(3), np.array([1.0, np.nan]))}
    assert not tree.all_finite(bad)
    assert tree.first_nonfinite(bad) == ("b", 1)  # 'b' sorts before 'z'
    assert tree.path_str(tree.first_nonfinite(bad), "params") == "params['b'][1]"
    assert tree.first_nonfinite({"only": -np.inf}) == ("only",)
    assert tree.first_nonfinite(float("nan")) == ()


# --- map and unflatten_as walk trees themselves: they must agree with dm-tree -----------


class Triple(NamedTuple):
    a: object
    b: object
    c: object


def _random_tree(draw_int, depth=0):
    """A random tree of dicts (keys in a random insertion order), tuples, lists, NamedTuples
    and empty containers, with numpy arrays of random shapes at the leaves."""
    kind = draw_int(0, 6 if depth < 3 else 0)
    if kind == 0:
        return np.full((draw_int(0, 3),), float(draw_int(0, 99)))
    if kind == 1:
        names = ["W", "b", "zeta", "alpha", "mid"][: draw_int(0, 4)]
        order = sorted(names, key=lambda _: draw_int(0, 9))
        return {k: _random_tree(draw_int, depth + 1) for k in order}
    if kind == 2:
        return tuple(_random_tree(draw_int, depth + 1) for _ in range(draw_int(0, 3)))
    if kind == 3:
        return [_random_tree(draw_int, depth + 1) for _ in range(draw_int(1, 3))]
    if kind == 4:
        return Pair(_random_tree(draw_int, depth + 1), _random_tree(draw_int, depth + 1))
    if kind == 5:
        return Triple(*(_random_tree(draw_int, depth + 1) for _ in range(3)))
    return ()


def _same_tree(a, b):
    """Equal structure, types, dict key ORDER and identical leaves."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, tuple | list):
        return len(a) == len(b) and all(_same_tree(x, y) for x, y in zip(a, b, strict=True))
    return a is b


@given(data=st.data())
def test_map_and_unflatten_as_agree_with_dm_tree(data):
    import tree as dm

    t = _random_tree(lambda lo, hi: data.draw(st.integers(lo, hi)))
    fresh = [np.array(i, dtype=float) for i in range(len(tree.leaves(t)))]
    assert _same_tree(tree.unflatten_as(t, fresh), dm.unflatten_as(t, fresh))
    seen = []
    mapped = tree.map(lambda a: seen.append(a) or a + 1.0, t)
    assert all(x is y for x, y in zip(seen, tree.leaves(t), strict=True))  # leaves order
    expected = dm.map_structure(lambda a: a, mapped)
    assert _same_tree(mapped, expected)
    assert all(np.array_equal(x, y + 1.0) for x, y in zip(tree.leaves(mapped), tree.leaves(t),
                                                          strict=True))
    # another tree of the same structure (other leaves, another dict insertion order) maps
    other = dm.unflatten_as(t, fresh)
    tree.map(lambda a, b: a, t, other)


@pytest.mark.parametrize("changed", [
    {"W": np.ones(2)},                                        # a key missing
    {"W": np.ones(2), "b": np.ones(1), "c": np.ones(1)},      # a key more
    {"W": np.ones(2), "c": np.ones(1)},                       # a key renamed
    {"W": np.ones(2), "b": (np.ones(1),)},                    # a container for a leaf
    {"W": np.ones(2), "b": [np.ones(1)]},
    [np.ones(2), np.ones(1)],                                 # a list for a dict
])
def test_map_checks_the_structure_of_every_tree(changed):
    template = ({"W": np.zeros(2), "b": np.zeros(1)}, (), [np.zeros(3)])
    with pytest.raises(StructureError, match=r"^opt: grads do not match the structure of "
                                             r"params at params\[0\]"):
        tree.map(lambda *xs: xs[0], template, template, (changed, (), [np.zeros(3)]),
                 who="opt", names=["params", "state", "grads"])
    for other in [({"W": np.ones(2), "b": np.ones(1)}, (), (np.zeros(3),)),   # a tuple, a list
                  ({"W": np.ones(2), "b": np.ones(1)}, ())]:                  # shorter
        with pytest.raises(StructureError, match=r"^tree\.map: trees\[1\] do not match"):
            tree.map(lambda a, b: a, template, other)


def test_map_tells_namedtuples_apart():
    with pytest.raises(StructureError, match=r"expected a Pair of length 2, got a tuple"):
        tree.map(lambda a, b: a, Pair(np.zeros(1), np.zeros(1)), (np.zeros(1), np.zeros(1)))
    rebuilt = tree.map(lambda a: a + 1, Pair(np.zeros(1), np.zeros(1)))
    assert type(rebuilt) is Pair and rebuilt.first[0] == 1.0


def test_map_and_unflatten_as_hand_other_containers_to_dm_tree():
    from collections import OrderedDict

    t = {"a": OrderedDict(z=np.ones(1), y=np.zeros(1)), "b": (np.full(2, 2.0),)}
    doubled = tree.map(lambda x: 2 * x, t)
    assert type(doubled["a"]) is OrderedDict and list(doubled["a"]) == ["z", "y"]
    assert doubled["a"]["z"][0] == 2.0 and doubled["a"]["y"][0] == 0.0
    back = tree.unflatten_as(t, tree.leaves(doubled))
    assert type(back["a"]) is OrderedDict and back["b"][0][0] == 4.0
    with pytest.raises(ValueError):
        tree.unflatten_as(t, tree.leaves(doubled)[:-1])
    with pytest.raises(ValueError):
        tree.unflatten_as(t, [*tree.leaves(doubled), 1.0])
