"""im2col and col2im: the window gathering that conv2d and max_pool2d share.

Arrays are NCHW; ``kernel``, ``stride`` and ``padding`` are (height, width) pairs.
``windows`` gathers entry ``[n, c, i * kw + j, oh, ow] = x_pad[n, c, oh * sh + i,
ow * sw + j]``, one strided slice of the whole batch per kernel offset, as the
textbook's im2col does. ``fold`` is its adjoint (col2im): it sums every window's
gradient back onto the pixel it came from, where windows overlap too. No step
assigns into an array, so the same code runs on numpy and under jax.

>>> import numpy as np
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> win = windows(x, (2, 2), (2, 2), (0, 0), (2, 2))
>>> win[0, 0, :, 0, 0]
array([0., 1., 4., 5.])
>>> fold(np.ones_like(win), (4, 4), (2, 2), (2, 2), (0, 0))[0, 0, 0]
array([1., 1., 1., 1.])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from funcnet._xp import namespace
from funcnet.errors import ArgumentError, ShapeError

__all__ = ["pair", "spell", "output_size", "out_hw", "windows", "fold"]

Pair = tuple[int, int]
_AXES = ("height", "width")


def pair(who: str, name: str, value: Any, *, minimum: int) -> Pair:
    """``value`` (an int or a pair of ints, each >= ``minimum``) as a pair, else ArgumentError."""

    def is_int(v: Any) -> bool:  # numpy's integers too: sizes drawn from np.arange
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    both = (value, value) if is_int(value) else value
    if not (isinstance(both, tuple | list) and len(both) == 2
            and all(is_int(v) and v >= minimum for v in both)):
        what = "positive" if minimum > 0 else "non-negative"
        raise ArgumentError(f"{who}: {name} must be a {what} integer or a pair of them "
                            f"(height, width), got {value!r}")
    return int(both[0]), int(both[1])


def spell(value: Pair) -> str:
    """A pair as a layer's name writes it: ``3`` for ``(3, 3)``, else ``(3, 2)``."""
    return str(value[0]) if value[0] == value[1] else str(value)


def output_size(who: str, in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair,
                window: str = "kernel") -> Pair:
    """``out_hw(...)``, checked: ShapeError unless ``(H + 2 ph - kh) / sh + 1`` is whole.

    ``window`` is what the messages call the kernel (``"window"`` for pooling).
    """
    for axis, size, k, s, p in zip(_AXES, in_hw, kernel, stride, padding, strict=True):
        padded = size + 2 * p
        if k > padded:
            where = f"padded input {axis} {padded} ({axis} {size} + 2 * padding {p})" if p \
                else f"input {axis} {size}"
            raise ShapeError(f"{who}: the {window} {axis} {k} is larger than the {where}")
        if (padded - k) % s:
            raise ShapeError(
                f"{who}: the output {axis} ({size} + 2 * {p} - {k}) / {s} + 1 = "
                f"{(padded - k) / s + 1:g} is not a whole number; choose {axis}, padding "
                f"and stride so that stride divides {axis} + 2 * padding - {window}")
    return out_hw(in_hw, kernel, stride, padding)


def out_hw(in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Pair:
    """``(OH, OW)`` with ``OH = (H + 2 ph - kh) // sh + 1``, unchecked (``output_size`` checks)."""
    (h, w), (kh, kw), (sh, sw), (ph, pw) = in_hw, kernel, stride, padding
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def windows(x: Any, kernel: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> Any:
    """Every kernel window of ``x`` (N, C, H, W): an array (N, C, kh * kw, OH, OW)."""
    xp = namespace(x)
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, padding, out_hw
    x = xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    slices = [x[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
              for i in range(kh) for j in range(kw)]
    return xp.stack(slices, axis=2)


def fold(dwin: Any, in_hw: Pair, kernel: Pair, stride: Pair, padding: Pair) -> Any:
    """col2im: sum window gradients (N, C, kh * kw, OH, OW) back onto the input (N, C, H, W)."""
    xp = namespace(dwin)
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    height, width = in_hw[0] + 2 * ph, in_hw[1] + 2 * pw
    n, c, k, oh, ow = dwin.shape
    # stride - 1 zeros between neighbours: each offset's gradient, spread as its windows lie
    spread = xp.pad(dwin[..., None, :, None], [(0, 0)] * 4 + [(0, sh - 1), (0, 0), (0, sw - 1)])
    span_h, span_w = (oh - 1) * sh + 1, (ow - 1) * sw + 1
    spread = xp.reshape(spread, (n, c, k, oh * sh, ow * sw))[..., :span_h, :span_w]
    parts = []
    for i in range(kh):
        for j in range(kw):
            placed = ((0, 0), (0, 0), (i, height - i - span_h), (j, width - j - span_w))
            parts.append(xp.pad(spread[:, :, i * kw + j], placed))
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total[:, :, ph:ph + in_hw[0], pw:pw + in_hw[1]]
