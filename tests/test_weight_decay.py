"""Weight decay by default decays the weights of dense and conv layers, never their biases nor
batch norm's gamma and beta.
"""

from __future__ import annotations

import numpy as np

from funcnet import init, optim, random, tree
from funcnet import layers as L


def test_default_weight_decay_touches_conv_and_dense_weights_not_biases_or_batch_norm():
    net = L.serial(L.conv2d(2, 3, padding=1, b_init=init.normal(1.0)), L.batch_norm(), L.relu(),
                   L.flatten(), L.dense(3, b_init=init.normal(1.0)))
    params, _ = net.init(random.key(5), (1, 4, 4))
    params = (params[0], {"gamma": np.full(2, 1.5), "beta": np.full(2, 0.5)}, *params[2:])
    opt = optim.sgd(0.1, weight_decay=0.5)
    new, _ = opt.update(tree.zeros_like(params), opt.init(params), params)
    decayed = []
    for (path, before), after in zip(tree.flatten_with_paths(params), tree.leaves(new),
                                     strict=True):
        if np.array_equal(after, before):
            continue
        np.testing.assert_allclose(after, before * (1 - 0.1 * 0.5), rtol=1e-15)
        decayed.append(tree.path_str(path))
    assert decayed == ["[0]['W']", "[4]['W']"]
