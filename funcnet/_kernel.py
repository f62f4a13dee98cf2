"""What layers and losses share about kernels: which function runs when checks are done."""

from __future__ import annotations

from collections.abc import Callable


def unchecked(public: tuple[Callable, ...], math: tuple[Callable, ...],
              entries: tuple[Callable, ...] | tuple[()]) -> tuple[Callable, ...]:
    """Each public function's unchecked twin.

    ``entries`` are the checked functions built from ``math``: while a public
    function is still its entry, its math runs; one that was replaced
    (``layer._replace(backward=...)``) runs itself. Without entries, the
    public functions are already the bare math.
    """
    if not entries:
        return public
    return tuple(m if p is e else p for p, m, e in zip(public, math, entries, strict=True))
