"""Bugs found by reading train.py, io.py and jit.py against what they promise, one test each."""

import numpy as np
import pytest

from funcnet import layers, losses, optim, random, train, tree
from funcnet.errors import NonFiniteError


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
