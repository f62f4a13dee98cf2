"""The jit path runs the same hand-written math as the numpy path, compiled by jax."""

import numpy as np
import pytest

pytest.importorskip("jax")

from helpers import assert_trees_close  # noqa: E402

from funcnet import data, init, jit, layers, losses, optim, random, train  # noqa: E402
from funcnet.errors import (  # noqa: E402
    ArgumentError,
    ArrayTypeError,
    NonFiniteError,
    StructureError,
)


def _regression():
    d = data.sine_regression()
    net = layers.mlp([3, 1], activation="sigmoid", w_init=init.normal(0.01),
                     b_init=init.normal(0.01))
    params, _ = net.init(random.key(0), (1,))
    return net, losses.sum_of_squares(), params, (d.x, d.t)


def _classifier(dtype=np.float64):
    d = data.digits(dtype=dtype)
    x, y = d.x[:150], d.y[:150]
    net = layers.mlp([16, 10], dtype=dtype)
    params, _ = net.init(random.key(3), (64,))
    return net, losses.softmax_cross_entropy(), params, (x, y)


def _binary():
    """Odd digits against even ones, on one logit: accuracy thresholds at 0."""
    d = data.digits()
    x, y = d.x[:150], (d.y[:150] % 2).astype(np.float64)[:, None]
    net = layers.mlp([16, 1])
    params, _ = net.init(random.key(3), (64,))
    return net, losses.sigmoid_binary_cross_entropy(), params, (x, y)


@pytest.fixture(params=[False, True], ids=["x64-off", "x64-on"])
def jax_x64(request):
    """jax's global ``jax_enable_x64`` as a user may have it (off is jax's default); the
    jit path must behave the same under either, so the setting is restored afterwards."""
    import jax

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", request.param)
    yield request.param
    jax.config.update("jax_enable_x64", before)


@pytest.mark.parametrize("make, optimizer, batch_size", [
    (_regression, optim.sgd(0.1), 1),
    (_classifier, optim.adam(1e-2), 32),  # 150 = 4 * 32 + 22: a smaller last batch
    (_classifier, optim.momentum(0.05), 150),
    (_binary, optim.sgd(0.5), 40),  # 150 = 3 * 40 + 30
])
def test_fit_jit_matches_the_numpy_path(make, optimizer, batch_size, jax_x64):
    net, loss, params, xy = make()
    kwargs = dict(epochs=4, batch_size=batch_size, key=random.key(11), progress=False,
                  validation=xy, snapshot=(xy[0][:5], 2))
    plain = train.fit(net, loss, optimizer, params, xy, **kwargs)
    compiled = train.fit(net, loss, optimizer, params, xy, runner=jit.epoch_runner, **kwargs)
    assert compiled.epoch == plain.epoch and compiled.step == plain.step
    assert_trees_close(compiled.params, plain.params, rtol=1e-9, atol=1e-12, what="params")
    assert_trees_close(compiled.opt_state, plain.opt_state, rtol=1e-9, atol=1e-12,
                       what="opt_state")
    np.testing.assert_allclose(compiled.history.loss, plain.history.loss, rtol=1e-9)
    np.testing.assert_allclose(compiled.history.val_loss, plain.history.val_loss, rtol=1e-9)
    # the training accuracy, from each step's own predictions, for classifiers only
    assert len(plain.history.accuracy) == (0 if make is _regression else 4)
    np.testing.assert_allclose(compiled.history.accuracy, plain.history.accuracy, rtol=1e-12)
    assert compiled.history.snapshot_epochs == plain.history.snapshot_epochs
    assert np.array_equal(compiled.key, plain.key)
    for leaf in __import__("funcnet").tree.leaves(compiled.params):
        assert isinstance(leaf, np.ndarray) and not leaf.flags.writeable


def _regression32():
    d = data.sine_regression(dtype=np.float32)
    net = layers.mlp([3, 1], activation="sigmoid", dtype=np.float32)
    params, _ = net.init(random.key(0), (1,))
    return net, losses.sum_of_squares(), params, (d.x, d.t)


@pytest.mark.parametrize("make, batch_size", [
    (_regression32, 1),  # float32 data: nothing 64-bit but the optimizer's step count
    (lambda: _classifier(np.float32), 50),  # int64 labels
])
def test_fit_jit_keeps_float32_and_an_int64_count(make, batch_size, jax_x64):
    # with jax's x64 off (its default) the int64 count once came back from the scan as
    # int32, which jax refused as a carry of another dtype
    net, loss, params, xy = make()
    kwargs = dict(epochs=3, batch_size=batch_size, key=random.key(0), progress=False)
    compiled = train.fit(net, loss, optim.sgd(0.1), params, xy, runner=jit.epoch_runner,
                         **kwargs)
    plain = train.fit(net, loss, optim.sgd(0.1), params, xy, **kwargs)
    assert all(leaf.dtype == np.float32 for leaf in __import__("funcnet").tree.leaves(
        compiled.params))
    assert compiled.opt_state.count.dtype == np.int64
    assert int(compiled.opt_state.count) == int(plain.opt_state.count)
    assert_trees_close(compiled.params, plain.params, rtol=1e-4, atol=1e-6, what="params")


def test_jit_step_keeps_its_dtypes_under_either_x64_setting(jax_x64):
    # float64 params must not be truncated to float32, nor the count to int32 (which
    # also warned and traced the step a second time)
    for dtype in (np.float32, np.float64):
        net, loss, params, (x, y) = _classifier(dtype)
        opt = optim.sgd(0.1)
        step = jit.jit_step(net, loss, opt)
        p, o = jit.to_device(params), jit.to_device(opt.init(params))
        xd, yd = jit.to_device(x[:32]), jit.to_device(y[:32])
        for _ in range(2):
            p, o, _, value = step(p, o, xd, yd)
        assert [leaf.dtype for leaf in __import__("funcnet").tree.leaves(jit.to_numpy(p))] \
            == [dtype] * 4
        assert o.count.dtype == np.int64 and int(o.count) == 2


def test_jit_step_equals_train_step():
    net, loss, params, (x, y) = _classifier()
    opt = optim.adam(1e-2)
    step = jit.jit_step(net, loss, opt)
    p, o = params, opt.init(params)
    pj, oj = jit.to_device(params), jit.to_device(opt.init(params))
    for _ in range(3):
        r = train.train_step(net, loss, opt, p, o, x[:32], y[:32])
        p, o = r.params, r.opt_state
        pj, oj, _, value = step(pj, oj, jit.to_device(x[:32]), jit.to_device(y[:32]))
        assert float(value) == pytest.approx(r.loss, rel=1e-12)
    assert_trees_close(jit.to_numpy(pj), p, rtol=1e-10, what="params")


@pytest.mark.parametrize("batch_size", [32, 150])  # 150 = 4 * 32 + 22, and one full batch
def test_fit_jit_trains_dropout_with_the_numpy_paths_masks(batch_size, jax_x64):
    net = layers.serial(layers.dense(16), layers.relu(), layers.dropout(0.5), layers.dense(10))
    _, loss, _, xy = _classifier()
    params, _ = net.init(random.key(4), (xy[0].shape[1],))
    kwargs = dict(epochs=3, batch_size=batch_size, key=random.key(7), progress=False)
    plain = train.fit(net, loss, optim.sgd(0.1), params, xy, **kwargs)
    compiled = train.fit(net, loss, optim.sgd(0.1), params, xy, runner=jit.epoch_runner,
                         **kwargs)
    assert_trees_close(compiled.params, plain.params, rtol=1e-9, atol=1e-12, what="params")
    np.testing.assert_allclose(compiled.history.loss, plain.history.loss, rtol=1e-9)
    # the masks matter: another key gives other params
    other = train.fit(net, loss, optim.sgd(0.1), params, xy, runner=jit.epoch_runner,
                      **{**kwargs, "key": random.key(8)})
    assert not np.allclose(other.params[0]["W"], compiled.params[0]["W"])


def test_jit_step_refuses_layers_that_draw_random_numbers():
    net = layers.serial(layers.dense(3), _KeyedIdentity())
    with pytest.raises(ArgumentError, match=r"jit_step: .*draws random numbers.*epoch_runner"):
        jit.jit_step(net, losses.mse(), optim.sgd(0.1))


def test_stop_when_stops_a_compiled_run_where_it_stops_the_numpy_run():
    net, loss, params, xy = _classifier()
    kwargs = dict(epochs=30, batch_size=32, key=random.key(5), progress=False,
                  stop_when=lambda state, metrics: metrics["accuracy"] > 0.9)
    plain = train.fit(net, loss, optim.adam(1e-2), params, xy, **kwargs)
    compiled = train.fit(net, loss, optim.adam(1e-2), params, xy, runner=jit.epoch_runner,
                         **kwargs)
    assert 1 < compiled.epoch == plain.epoch < 30
    assert_trees_close(compiled.params, plain.params, rtol=1e-9, atol=1e-12, what="params")
    np.testing.assert_allclose(compiled.history.accuracy, plain.history.accuracy, rtol=1e-12)


def test_jit_reports_a_diverging_run():
    net, loss, params, xy = _regression()
    with pytest.raises(NonFiniteError, match=r"epoch \d+, step \d+"):
        train.fit(net, loss, optim.sgd(1e6), params, (xy[0], xy[1] * 1e6), epochs=3,
                  batch_size=1, key=random.key(0), progress=False, runner=jit.epoch_runner)


def _KeyedIdentity():
    """A stand-in for dropout: a parameterless layer that takes a key."""
    def init(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x, *, key=None):
        return x, ()

    def backward(cache, dy):
        return dy, ()

    return layers.Layer(init, forward, backward, name="keyed", takes=frozenset({"key"}))


@pytest.mark.parametrize("make_optimizer", [
    lambda rate: optim.sgd(rate),
    lambda rate: optim.adam(rate, weight_decay=1e-3, max_grad_norm=1.0),
    lambda rate: optim.momentum(optim.cosine(rate, 20)),
], ids=["sgd", "adamw-clipped", "momentum-cosine"])
def test_a_second_fit_with_an_equal_new_optimizer_reuses_the_compiled_epoch(make_optimizer):
    net, loss, params, xy = _regression()
    kwargs = dict(epochs=2, batch_size=5, key=random.key(0), progress=False,
                  runner=jit.epoch_runner)
    first = train.fit(net, loss, make_optimizer(0.1), params, xy, **kwargs)
    before = jit._compiled_epoch.cache_info()
    second = train.fit(net, loss, make_optimizer(0.1), params, xy, **kwargs)  # a new object
    after = jit._compiled_epoch.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
    assert_trees_close(second.params, first.params, rtol=0, atol=0, what="params")
    # another learning rate is another program, and gives another result
    other = train.fit(net, loss, make_optimizer(0.2), params, xy, **kwargs)
    assert jit._compiled_epoch.cache_info().misses == after.misses + 1
    assert not np.array_equal(other.params[0]["W"], first.params[0]["W"])
    assert_trees_close(other.params, train.fit(net, loss, make_optimizer(0.2), params, xy,
                                               **{**kwargs, "runner": None}).params,
                       rtol=1e-9, atol=1e-12, what="params")


def test_a_rebuilt_equal_net_reuses_the_compiled_epoch():
    """mlp(...) called again is a new object computing the same thing: one program. Its
    caches stay its own (serial refuses another composition's cache by identity)."""
    _, loss, params, xy = _regression()
    kwargs = dict(epochs=1, batch_size=5, key=random.key(0), progress=False,
                  runner=jit.epoch_runner)
    first = train.fit(_regression()[0], loss, optim.sgd(0.1), params, xy, **kwargs)
    before = jit._compiled_epoch.cache_info()
    second = train.fit(_regression()[0], loss, optim.sgd(0.1), params, xy, **kwargs)
    after = jit._compiled_epoch.cache_info()
    assert after.hits == before.hits + 1 and after.misses == before.misses
    assert_trees_close(second.params, first.params, rtol=0, atol=0, what="params")
    other = layers.mlp([3, 1], activation="tanh")
    train.fit(other, loss, optim.sgd(0.1), other.init(random.key(0), (1,))[0], xy, **kwargs)
    assert jit._compiled_epoch.cache_info().misses == after.misses + 1
    a, b = _regression()[0], _regression()[0]
    _, cache = a.forward(params, xy[0][:2])
    with pytest.raises(StructureError, match="made by another network's forward"):
        b.backward(cache, np.ones((2, 1)))


@pytest.mark.parametrize("name", sorted(optim.CONSTRUCTORS))
def test_equal_optimizers_are_one_program_and_any_other_setting_another(name):
    make = optim.CONSTRUCTORS[name]
    key = jit._program_key
    assert key(make(0.1)) == key(make(0.1))
    assert hash(key(make(0.1))) == hash(key(make(0.1)))
    others = [make(0.2), make(np.float32(0.1)), make(optim.constant(0.1)),
              make(0.1, weight_decay=1e-4), make(0.1, weight_decay=1e-4, decoupled=True),
              make(0.1, max_grad_norm=1.0), make(0.1, decay_mask=lambda path, leaf: True)]
    if name in ("momentum", "nesterov"):
        others.append(make(0.1, momentum=0.8))
    if name in ("adagrad", "rmsprop", "adam"):
        others.append(make(0.1, eps=1e-6))
    keys = [key(make(0.1)), *map(key, others)]
    assert len(set(keys)) == len(keys)


@pytest.mark.parametrize("name", sorted(optim.SCHEDULES))
def test_equal_schedules_are_one_program_and_other_settings_another(name):
    args = {"constant": (0.1,), "step_decay": (0.1, 0.5, 3), "exponential": (0.1, 0.5, 3),
            "cosine": (0.1, 30)}[name]
    make, key = optim.SCHEDULES[name], jit._program_key
    assert key(optim.sgd(make(*args))) == key(optim.sgd(make(*args)))
    assert key(optim.sgd(make(*args))) != key(optim.sgd(make(args[0] * 2, *args[1:])))


def test_the_program_key_compares_values_by_type_and_bits_and_the_rest_by_identity():
    key = jit._program_key

    def closing_over(value):
        return lambda x: x * value

    assert key(closing_over(np.arange(3.0))) == key(closing_over(np.arange(3.0)))
    for a, b in [(np.arange(3.0), np.array([0.0, 1.0, 2.5])),  # one element differs
                 (np.arange(3.0), np.arange(3, dtype=np.float32)),  # the dtype
                 (np.arange(3.0), np.arange(3.0).reshape(3, 1)),  # the shape
                 (0.0, -0.0), (1, 1.0), (1, True), (0.5, np.float64(0.5)), ("a", "b")]:
        assert key(closing_over(a)) != key(closing_over(b)), (a, b)
    assert key(lambda x: x + 1) != key(lambda x: x + 2)  # other code
    thing, same = object(), []
    assert key(closing_over(thing)) == key(closing_over(thing))
    assert key(closing_over(thing)) != key(closing_over(object()))  # identity
    assert key(closing_over(same)) == key(closing_over([]))  # an equal list

    def recursive(n):  # a closure that holds its own function: the walk ends
        return recursive(n - 1) if n else 0

    assert key(recursive) == key(recursive)


def test_fit_jit_compiles_a_net_that_cannot_be_a_cache_key():
    class Unhashable:  # a callable layer part with __eq__ and so no __hash__
        def __init__(self, fn):
            self.fn = fn

        def __call__(self, *args, **kwargs):
            return self.fn(*args, **kwargs)

        def __eq__(self, other):
            return self is other

    net, loss, params, xy = _regression()
    odd = net._replace(backward=Unhashable(net.backward))
    kwargs = dict(epochs=2, batch_size=5, key=random.key(0), progress=False)
    compiled = train.fit(odd, loss, optim.sgd(0.1), params, xy, runner=jit.epoch_runner, **kwargs)
    plain = train.fit(net, loss, optim.sgd(0.1), params, xy, **kwargs)
    assert_trees_close(compiled.params, plain.params, rtol=1e-9, atol=1e-12, what="params")


def test_a_diverging_jit_run_is_reported_as_the_numpy_path_reports_it():
    net, loss, params, xy = _regression()
    data = (xy[0], xy[1] * 1e6)
    kwargs = dict(epochs=3, batch_size=1, key=random.key(0), progress=False)
    messages = []
    for runner in (None, jit.epoch_runner):
        with pytest.raises(NonFiniteError) as caught:
            train.fit(net, loss, optim.sgd(1e6), params, data, runner=runner, **kwargs)
        messages.append(str(caught.value))
        assert isinstance(caught.value.state, train.TrainState)
    assert messages[0] == messages[1] and "epoch 0, step" in messages[0]


def _plain_numpy_softplus():
    """A user's layer whose forward calls numpy directly: fine on numpy, not traceable."""

    def init(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x):
        return np.logaddexp(0.0, x), x

    def backward(x, dy):
        return dy / (1 + np.exp(-x)), ()

    return layers.Layer(init, forward, backward, name="softplus")


def test_a_layer_in_plain_numpy_is_named_with_what_to_change():
    net = layers.serial(layers.dense(4), _plain_numpy_softplus(), layers.dense(1))
    params, _ = net.init(random.key(0), (2,))
    x, y = np.ones((6, 2)), np.zeros((6, 1))
    kwargs = dict(epochs=1, batch_size=3, key=random.key(0), progress=False)
    train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), **kwargs)  # numpy: fine
    with pytest.raises(ArrayTypeError, match=r"fit\(runner=jit.epoch_runner\): .* called "
                                             r"numpy on a traced array.*funcnet.xp\(x\)"):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), runner=jit.epoch_runner,
                  **kwargs)


def test_a_layer_that_reads_an_array_value_in_python_is_named_with_what_to_change():
    def init(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x):  # a Python branch on a value: fine on numpy, not traceable
        return (x if float(x.max()) > 100 else 2 * x), ()

    def backward(cache, dy):
        return 2 * dy, ()

    branchy = layers.Layer(init, forward, backward, name="branchy")
    net = layers.serial(layers.dense(4), branchy, layers.dense(1))
    params, _ = net.init(random.key(0), (2,))
    x, y = np.ones((6, 2)), np.zeros((6, 1))
    with pytest.raises(ArrayTypeError, match=r"fit\(runner=jit.epoch_runner\): .* read a "
                                             r"traced array's value in Python.*xp\.where"):
        train.fit(net, losses.mse(), optim.sgd(0.1), params, (x, y), runner=jit.epoch_runner,
                  epochs=1, batch_size=3, key=random.key(0), progress=False)
