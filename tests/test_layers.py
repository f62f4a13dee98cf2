"""The laws every layer obeys, checked over the whole registry with drawn shapes.

For each case: init's out_shape equals forward's; dx and dparams equal
jax.grad of the SAME forward (float64, rel. error < 1e-7) and central
differences (< 1e-6); dparams has params' structure; nothing is mutated
(the key and state given to forward included); params are frozen; float32
stays float32. Keyed and stateful layers get their key / train / state from
the case's ``forward_kwargs``, in forward and in the gradient check alike.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_bitwise_equal, defined_functions, snapshot
from hypothesis import given, settings
from hypothesis import strategies as st
from registry import LAYER_CASES

from funcnet import layers as L
from funcnet import random, tree
from funcnet.check import check_layer

CASES = sorted(LAYER_CASES)


#: The functions funcnet.layers exports beside its constructors.
NOT_CONSTRUCTORS = {"init_state", "checked_layer", "check_takes", "math_of", "activation_layer"}


def test_registry_covers_every_public_layer():
    covered = {constructor for constructor, _ in LAYER_CASES.values()}
    missing = set(L.CONSTRUCTORS) - covered
    assert not missing, f"layers without a registry case: {sorted(missing)}"
    public = {name for name in L.__all__ if callable(getattr(L, name))
              and name.islower() and name not in NOT_CONSTRUCTORS}
    assert public <= set(L.CONSTRUCTORS), f"not in CONSTRUCTORS: {public - set(L.CONSTRUCTORS)}"
    # a constructor imported into funcnet.layers but listed nowhere is missed by __all__
    unlisted = defined_functions(L) - set(L.CONSTRUCTORS) - NOT_CONSTRUCTORS
    assert not unlisted, f"not in CONSTRUCTORS: {sorted(unlisted)}"


def _setup(data, case, dtype=np.float64):
    _, build = LAYER_CASES[case]
    built = build(data.draw, dtype)
    batch = data.draw(built.batch)
    seed = data.draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    params, out_shape = built.layer.init(random.key(seed), built.in_shape)
    x = built.make_x(rng, batch, dtype)
    return built, params, out_shape, x, rng, built.kwargs(seed + 1)


def _new_state(cache, kwargs):
    """The state a stateful forward returned (``()`` for a layer without state)."""
    return cache.state if "state" in kwargs else ()


def _out_shape_of(y):
    return tuple(np.shape(y))[1:]


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_init_shape_matches_forward(case, data):
    built, params, out_shape, x, _, kwargs = _setup(data, case)
    y, cache = built.layer.forward(params, x, **kwargs)
    assert out_shape == _out_shape_of(y)
    if "state" in kwargs:  # the new state has the structure and shapes of the old one
        tree.assert_same_shapes(kwargs["state"], cache.state, who="forward",
                                expected_name="state", actual_name="new state")


COMPOSED = ("serial", "mlp")
#: jax compiles once per new shape, about 0.1 s: fewer examples keep the oracle tests quick.
#: The convolutional cases compile the most operations per shape, so they draw fewer still.
ORACLE_EXAMPLES = {"conv2d": 6, "max_pool2d": 6, "serial_conv": 4}


def _oracle(case):
    """Run the decorated ``check(data)`` as a hypothesis test with ``case``'s example budget."""

    def decorate(check):
        return settings(max_examples=ORACLE_EXAMPLES.get(case, 10))(given(data=st.data())(check))

    return decorate


@pytest.mark.parametrize("case", CASES)
def test_backward_matches_jax_and_finite_differences(case, jax):
    @_oracle(case)
    def check(data):
        _backward_matches_jax_and_finite_differences(case, data)

    check()


def _backward_matches_jax_and_finite_differences(case, data):
    built, params, _, x, _, kwargs = _setup(data, case)
    report = check_layer(built.layer, params, x, seed=data.draw(st.integers(0, 99)),
                         forward_kwargs=kwargs)
    if not case.startswith(COMPOSED):
        # inputs sit at least 0.05 from relu's corner; inside a composed net a hidden
        # pre-activation can land within the step of 0, which the checker explains as a kink
        assert report.kinks == 0, str(report)
    for leaf in report.leaves:
        assert leaf.error_jax < 1e-7, str(report)
        assert leaf.error_numerical < 1e-6, str(report)
    assert report.ok


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_dparams_has_params_structure_and_nothing_is_mutated(case, data):
    built, params, _, x, rng, kwargs = _setup(data, case)
    x_before, params_before, kwargs_before = snapshot(x), snapshot(params), snapshot(kwargs)
    y, cache = built.layer.forward(params, x, **kwargs)
    dy = rng.standard_normal(np.shape(y))
    cache_before, dy_before = snapshot(cache), snapshot(dy)
    dx, dparams = built.layer.backward(cache, dy)

    tree.assert_same_shapes(params, dparams, who="backward")
    tree.assert_same_shapes(x, dx, who="backward", expected_name="x", actual_name="dx")
    assert_bitwise_equal(x_before, x, "x")
    assert_bitwise_equal(params_before, params, "params")
    assert_bitwise_equal(dy_before, dy, "dy")
    assert_bitwise_equal(cache_before, cache, "cache")
    assert_bitwise_equal(kwargs_before, kwargs, "forward_kwargs")  # key and state too
    assert tree.is_frozen(_new_state(cache, kwargs))


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_params_from_init_are_frozen(case, data):
    built, params, _, _, _, _ = _setup(data, case)
    assert tree.is_frozen(params)
    for leaf in tree.leaves(params):
        with pytest.raises(ValueError, match="read-only"):
            leaf[...] = 0


@pytest.mark.parametrize("case", CASES)
@given(data=st.data())
def test_float32_in_float32_out(case, data):
    built, params, _, x, rng, kwargs = _setup(data, case, dtype=np.float32)
    for leaf in tree.leaves(params):
        assert leaf.dtype == np.float32
    y, cache = built.layer.forward(params, x, **kwargs)
    dy = tree.map(lambda a: rng.standard_normal(np.shape(a)).astype(np.float32), y)
    dx, dparams = built.layer.backward(cache, dy)
    state = _new_state(cache, kwargs)
    for name, value in (("y", y), ("dx", dx), ("dparams", dparams), ("state", state)):
        for leaf in tree.leaves(value):
            assert np.result_type(leaf) == np.float32, f"{name} became {np.result_type(leaf)}"


@pytest.mark.parametrize("case", CASES)
def test_same_forward_runs_under_jax(case, jax):
    """The namespace-generic kernels: jax arrays in, jax arrays out, same numbers."""

    @_oracle(case)
    def check(data):
        _same_forward_runs_under_jax(case, data, jax)

    check()


def _same_forward_runs_under_jax(case, data, jax):
    import jax.numpy as jnp

    built, params, _, x, _, kwargs = _setup(data, case)
    y_np, cache_np = built.layer.forward(params, x, **kwargs)
    kwargs_jax = dict(kwargs)  # keys stay numpy: they are never traced
    if "state" in kwargs:
        kwargs_jax["state"] = tree.map(jnp.asarray, kwargs["state"])
    y_jax, cache_jax = built.layer.forward(tree.map(jnp.asarray, params),
                                           tree.map(jnp.asarray, x), **kwargs_jax)
    assert isinstance(y_jax, jax.Array)
    np.testing.assert_allclose(np.asarray(y_jax), y_np, rtol=1e-12, atol=1e-14)
    for a, b in zip(tree.leaves(_new_state(cache_jax, kwargs)),
                    tree.leaves(_new_state(cache_np, kwargs)), strict=True):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-12, atol=1e-14)


def test_serial_params_are_one_entry_per_layer_with_empty_tuples():
    net = L.serial(L.dense(4), L.relu(), L.dense(2), L.softmax())
    params, out_shape = net.init(random.key(0), (3,))
    assert out_shape == (2,)
    assert isinstance(params, tuple) and len(params) == 4
    assert params[1] == () and params[3] == ()
    assert set(params[0]) == {"W", "b"} and params[0]["W"].shape == (3, 4)


def test_mlp_builds_dense_layers_of_the_given_output_widths():
    net = L.mlp([5, 4, 2], activation="tanh", output="softmax")
    params, out_shape = net.init(random.key(1), (3,))
    widths = [p["W"].shape for p in params if p]
    assert widths == [(3, 5), (5, 4), (4, 2)] and out_shape == (2,)
    assert len(params) == 6  # dense tanh dense tanh dense softmax


def test_mlp_default_init_is_he_for_relu_and_xavier_otherwise():
    x_relu = L.mlp([4000], activation="relu").init(random.key(2), (50,))[0][0]["W"]
    x_tanh = L.mlp([4000], activation="tanh").init(random.key(2), (50,))[0][0]["W"]
    assert abs(x_relu.std() - np.sqrt(2 / 50)) < 0.01
    assert abs(x_tanh.std() - np.sqrt(1 / 50)) < 0.01


def test_init_is_deterministic_in_the_key_and_differs_across_keys():
    net = L.mlp([3, 2])
    a, _ = net.init(random.key(7), (2,))
    b, _ = net.init(random.key(7), (2,))
    c, _ = net.init(random.key(8), (2,))
    assert_bitwise_equal(a, b, "params")
    assert not np.array_equal(a[0]["W"], c[0]["W"])


def test_mul_and_add_broadcast_and_sum_gradients_back():
    x, y = np.arange(6.0).reshape(2, 3), np.array([10.0, 20.0, 30.0])
    out, cache = L.mul().forward((), (x, y))
    (dx, dy), _ = L.mul().backward(cache, np.ones((2, 3)))
    np.testing.assert_array_equal(dx, np.broadcast_to(y, (2, 3)))
    np.testing.assert_array_equal(dy, x.sum(axis=0))  # y was used in both rows
    out, cache = L.add().forward((), (x, 1.5))
    (dx, dy), _ = L.add().backward(cache, np.full((2, 3), 2.0))
    assert dx.shape == (2, 3) and float(dy) == 12.0


def test_dense_backward_can_skip_the_input_gradient():
    net = L.mlp([4, 3])
    params, _ = net.init(random.key(3), (5,))
    x = np.random.default_rng(0).standard_normal((2, 5))
    y, cache = net.forward(params, x)
    dy = np.ones_like(y)
    dx_full, g_full = net.backward(cache, dy)
    dx_none, g_none = net.backward(cache, dy, need_dx=False)
    assert dx_none is None and dx_full.shape == (2, 5)
    assert_bitwise_equal(g_full, g_none, "grads")
    assert net.skips_dx and L.dense(2).skips_dx and not L.relu().skips_dx


@pytest.mark.parametrize("layer", [L.relu(), L.leaky_relu(0.0)])
def test_relu_zeros_are_positive_zeros(layer):
    """Multiplying a negative input by False gives -0.0; the layer must print 0, not -0."""
    y, cache = layer.forward((), np.array([[1.0, -0.5], [-2.0, 3.0]]))
    dx, _ = layer.backward(cache, np.array([[-7.0, -8.5], [3.0, 9.0]]))
    assert not np.signbit(y[y == 0]).any() and not np.signbit(dx[dx == 0]).any()
    np.testing.assert_array_equal(y, [[1.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(dx, [[-7.0, 0.0], [0.0, 9.0]])
