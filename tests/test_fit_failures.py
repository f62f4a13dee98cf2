"""How fit fails: an overflowing last update named on both paths, options and validation data
refused before the first epoch, a changed global recompiled by the jit path."""

import numpy as np
import pytest

from funcnet import errors, layers, losses, optim, random, train, tree
from funcnet.errors import ArgumentError, NonFiniteError


def _overflowing_update():
    """One full-batch step whose loss and gradient are finite but whose update is not:
    W - 1e308 * (-2e6) overflows, so only the params after the step show it."""
    net = layers.dense(1)
    params, _ = net.init(random.key(0), (2,))
    data = (np.ones((4, 2)), np.full((4, 1), 1e6))
    return net, losses.mse(), optim.sgd(1e308), params, data


def _runner(name):
    if name == "numpy":
        return None
    pytest.importorskip("jax")
    from funcnet import jit
    return jit.epoch_runner


@pytest.mark.parametrize("runner", ["numpy", "jit"])
def test_an_update_that_overflows_at_the_epochs_last_step_is_named(runner):
    """The epoch's last update made the params inf. The numpy path's checked replay said the
    epoch's non-finite values did not reproduce (they did); the jit path, which tested only
    the losses, returned the inf params as the trained result."""
    net, loss, opt, params, data = _overflowing_update()
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(NonFiniteError, match=r"the update at epoch 0, step 0 \(batch 0 of "
                                                 r"the epoch\) made params\['W'\] NaN or inf"
                           ) as caught:
            train.fit(net, loss, opt, params, data, epochs=1, batch_size=4, key=random.key(1),
                      progress=False, runner=_runner(runner))
    assert caught.value.state.epoch == 0 and tree.all_finite(caught.value.state.params)


def _classifier_fit(**options):
    """A small classifier's fit; ``steps`` counts the loss's forward passes."""
    steps, loss = [], losses.softmax_cross_entropy()

    def counted(pred, target):
        steps.append(1)
        return loss.forward(pred, target)

    net = layers.mlp([4, 3])
    params, _ = net.init(random.key(0), (3,))
    x, y = random.normal(random.key(1), (8, 3)), np.arange(8) % 3
    options = dict(epochs=3, batch_size=4, key=random.key(2), progress=False) | options
    try:
        return train.fit(net, loss._replace(forward=counted), optim.sgd(0.1), params, (x, y),
                         **options)
    finally:
        _classifier_fit.steps = len(steps)


@pytest.mark.parametrize(("options", "match"), [
    (dict(keep_checkpoints=0), r"fit: keep_checkpoints must be a positive integer, got 0"),
    (dict(keep_checkpoints="3"), r"fit: keep_checkpoints must be a positive integer, got '3'"),
    (dict(keep_checkpoints=2, checkpoint_dir=None), r"fit: keep_checkpoints needs checkpoint_dir"),
    (dict(checkpoint_dir=7), r"fit: checkpoint_dir must be a path .* got an? int"),
    (dict(checkpoint_dir="a_file"), r"fit: checkpoint_dir must be a directory, got '.*a_file'"),
])
def test_checkpoint_options_are_refused_before_training_not_after_it(tmp_path, options, match):
    """keep_checkpoints was checked by the first save_checkpoint, after the first epoch that
    saves (with checkpoint_every None: after the whole run, which was lost with it), and was
    ignored without checkpoint_dir; a checkpoint_dir that is a file or no path at all failed
    there too."""
    (tmp_path / "a_file").write_text("not a directory")
    options = dict(checkpoint_dir=tmp_path) | options
    if isinstance(options["checkpoint_dir"], str):
        options["checkpoint_dir"] = tmp_path / options["checkpoint_dir"]
    with pytest.raises(ArgumentError, match=match):
        _classifier_fit(**options)
    assert _classifier_fit.steps == 0


_X = random.normal(random.key(1), (8, 3))
_LABELS = np.arange(8) % 3


@pytest.mark.parametrize(("options", "error", "match"), [
    (dict(validation=(_X[:, :2], _LABELS)), "ShapeError",
     r"fit\(validation\): mlp\(\[4, 3\]\) layer 0 \(dense\(4\)\): dense\(4\): expected 3 input "
     r"features, got 2"),
    (dict(validation=(_X[:1], _LABELS[:1] + 3)), "ShapeError",
     r"fit\(validation\): softmax_cross_entropy: labels must lie in \[0, 3\)"),
    (dict(validation=(_X, _LABELS.astype(float))), "ArrayTypeError",
     r"fit\(validation\): softmax_cross_entropy: class labels must be integers"),
    (dict(snapshot=(_X[:, :2], 1)), "ShapeError", r"fit\(snapshot\): mlp\(\[4, 3\]\) layer 0"),
    (dict(validation=(np.where(np.arange(8)[:, None] == 5, np.nan, _X), _LABELS)),
     "NonFiniteError", r"fit: validation x holds NaN or inf at row 5"),
])
def test_validation_and_snapshot_inputs_are_checked_before_the_first_epoch(options, error,
                                                                           match):
    """They were first used after the first epoch: it trained, and then the error did not
    say that the validation data or snapshot inputs were at fault; NaN in the validation
    data gave a NonFiniteError from the loss whose ``state`` was None, where fit promises
    the last finite TrainState."""
    with pytest.raises(getattr(errors, error), match=match):
        _classifier_fit(**options)
    assert _classifier_fit.steps == 0



_SCALE = 1.0  # a module constant a user's layer reads: changed between two fits below


def _scaled():
    """A parameterless layer y = _SCALE * x, reading the module's constant as it runs."""
    def init(key, in_shape):
        return (), tuple(in_shape)

    def forward(params, x):
        return _SCALE * x, ()

    def backward(cache, dy):
        return _SCALE * dy, ()

    return layers.Layer(init, forward, backward, name="scaled")


def test_a_changed_global_is_not_computed_with_its_old_value_by_the_jit_path(monkeypatch):
    """jit kept the compiled epoch for an equal net, comparing functions' globals by the
    dict's identity alone: after a constant (or a helper function) a layer reads was
    changed, as at a notebook's prompt, a new fit with runner=jit.epoch_runner silently
    ran the program traced with the old value while the numpy path used the new one."""
    runner = _runner("jit")

    def losses_of(run):
        net = layers.serial(layers.dense(3), _scaled())
        params, _ = net.init(random.key(0), (3,))
        return train.fit(net, losses.softmax_cross_entropy(), optim.sgd(0.1), params,
                         (_X, _LABELS), epochs=2, batch_size=4, key=random.key(3),
                         progress=False, runner=run).history.loss

    np.testing.assert_allclose(losses_of(runner), losses_of(None), rtol=1e-12)
    monkeypatch.setitem(globals(), "_SCALE", 5.0)
    np.testing.assert_allclose(losses_of(runner), losses_of(None), rtol=1e-12)


@pytest.mark.parametrize("runner", ["numpy", "jit"])
def test_a_validation_evaluation_that_overflows_names_the_epoch_and_keeps_a_state(runner):
    """Finite validation data whose eval-mode outputs overflow: the loss's NonFiniteError
    came out of fit bare, naming neither the validation data nor the epoch, with state None
    where fit promises the last finite TrainState."""
    far = (np.full((2, 3), 1.7e308), _LABELS[:2])
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(NonFiniteError, match=r"evaluating the validation data after epoch "
                                                 r"0: softmax_cross_entropy") as caught:
            _classifier_fit(validation=far, runner=_runner(runner))
    state = caught.value.state
    assert isinstance(state, train.TrainState) and state.epoch == 0
