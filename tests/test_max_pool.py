"""max_pool2d: equal to a naive loop written here, ties going to the first maximum of each
window. Every error message has a test.
"""

from __future__ import annotations

import numpy as np
import pytest

from funcnet import layers as L
from funcnet import random
from funcnet.errors import ArgumentError, ShapeError, StructureError


def _naive_max_pool(x, size, stride):
    """Forward max and backward to the FIRST maximum of each window in row-major order."""
    (kh, kw), (sh, sw) = size, stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n, c, oh, ow))
    route = np.zeros((n, c, oh, ow, h, w))  # d y[n, c, i, j] / d x[n, c, :, :]
    for s in range(n):
        for ch in range(c):
            for i in range(oh):
                for j in range(ow):
                    window = x[s, ch, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    y[s, ch, i, j] = window.max()
                    first = next((a, b) for a in range(kh) for b in range(kw)
                                 if window[a, b] == window.max())
                    route[s, ch, i, j, i * sh + first[0], j * sw + first[1]] = 1.0
    return y, route


@pytest.mark.parametrize("size, stride, hw", [(2, None, (6, 8)), (2, 1, (7, 7)),
                                              ((2, 3), (1, 2), (7, 7)), (3, 2, (7, 5)),
                                              (1, None, (3, 4))])
def test_max_pool_equals_a_naive_loop_with_ties_going_to_the_first_maximum(size, stride, hw):
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, (2, 2, *hw)).astype(np.float64)  # small integers: many ties
    kernel = (size, size) if isinstance(size, int) else size
    steps = kernel if stride is None else ((stride, stride) if isinstance(stride, int)
                                           else stride)
    layer = L.max_pool2d(size, stride)
    y, cache = layer.forward((), x)
    y_naive, route = _naive_max_pool(x, kernel, steps)
    np.testing.assert_array_equal(y, y_naive)
    assert layer.init(random.key(0), (2, *hw)) == ((), y.shape[1:])
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(cache, dy)
    np.testing.assert_allclose(dx, np.einsum("ncij,ncijhw->nchw", dy, route), rtol=1e-14)
    assert grads == ()


@pytest.mark.parametrize("argument, value, message", [
    ("size", 0, r"max_pool2d: size must be a positive integer or a pair of them"),
    ("size", (2, 2, 2), r"max_pool2d: size must be .*got \(2, 2, 2\)"),
    ("stride", -1, r"max_pool2d: stride must be a positive integer or a pair.*got -1"),
])
def test_max_pool_argument_errors(argument, value, message):
    arguments = {"size": 2, "stride": None, argument: value}
    with pytest.raises(ArgumentError, match=message):
        L.max_pool2d(**arguments)


def test_max_pool_shape_errors_name_the_layer_and_the_numbers():
    layer = L.max_pool2d(2)
    with pytest.raises(ShapeError, match=r"max_pool2d\(2\): expected x of rank 4"):
        layer.forward((), np.ones((2, 4, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d\(2\): the output height \(5 \+ 2 \* 0 - 2\)"
                                         r" / 2 \+ 1 = 2.5 is not a whole number"):
        layer.forward((), np.ones((1, 1, 5, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d\(3, stride=1\).init: the window width 3 "
                                         r"is larger than the input width 2"):
        L.max_pool2d(3, 1).init(random.key(0), (1, 4, 2))
    with pytest.raises(StructureError, match=r"max_pool2d\(2\): this layer has no parameters"):
        layer.forward({"W": np.ones(1)}, np.ones((1, 1, 4, 4)))
    _, cache = layer.forward((), np.ones((1, 1, 4, 4)))
    with pytest.raises(ShapeError, match=r"max_pool2d\(2\).backward: expected dy of shape "
                                         r"\(1, 1, 2, 2\)"):
        layer.backward(cache, np.ones((1, 1, 4, 4)))
