"""Training draws a fresh dropout mask at every step, in every epoch, and the same ones again
for the same seed.

A key reused across the steps of an epoch would keep runs deterministic and resumable, so
no reproducibility test notices it; only the masks themselves tell. A probe layer after the
dropout sees them: with an input of ones, a dropped unit reaches it as exactly 0.
"""

from __future__ import annotations

import numpy as np

from funcnet import layers as L
from funcnet import losses, optim, random
from funcnet.train import fit

EPOCHS, STEPS, BATCH, UNITS = 2, 3, 4, 16  # 64 units per step: two equal masks are no accident


def _masks_seen_in_training(seed):
    """The keep-mask of every training step of ``EPOCHS`` epochs, in order."""
    seen = []

    def init(key, in_shape):
        return (), in_shape

    def forward(params, x):  # the identity, recording which units survived the dropout
        seen.append(np.asarray(x) != 0)
        return x, None

    def backward(cache, dy):
        return dy, ()

    net = L.serial(L.dropout(0.5), L.Layer(init, forward, backward), L.dense(1))
    params, _ = net.init(random.key(0), (UNITS,))
    x, y = np.ones((STEPS * BATCH, UNITS)), np.zeros((STEPS * BATCH, 1))
    fit(net, losses.mse(), optim.sgd(0.01), params, (x, y), epochs=EPOCHS, batch_size=BATCH,
        key=random.key(seed), shuffle=False, progress=False)
    assert len(seen) == EPOCHS * STEPS, "one forward pass per step"
    return [seen[e * STEPS:(e + 1) * STEPS] for e in range(EPOCHS)]


def _distinct(masks):
    return len({m.tobytes() for m in masks}) == len(masks)


def test_every_step_of_every_epoch_draws_its_own_dropout_mask():
    epochs = _masks_seen_in_training(seed=1)
    for e, steps in enumerate(epochs):
        assert _distinct(steps), f"epoch {e}: two steps dropped exactly the same units"
        for m in steps:
            assert 0 < m.mean() < 1, "a mask keeps some units and drops others"
    assert _distinct([m for steps in epochs for m in steps]), "a mask repeats across epochs"


def test_the_masks_are_a_function_of_the_seed():
    first, again, other = (_masks_seen_in_training(seed) for seed in (1, 1, 2))
    flat = [np.stack([m for steps in run for m in steps]) for run in (first, again, other)]
    np.testing.assert_array_equal(flat[0], flat[1])
    assert not np.array_equal(flat[0], flat[2])
