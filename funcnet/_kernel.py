"""What checked kernels share: which function runs once the checks are done."""

from __future__ import annotations

from collections.abc import Callable


def unchecked(public: tuple[Callable, ...], math: tuple[Callable, ...],
              entries: tuple[Callable, ...] | tuple[()]) -> tuple[Callable, ...]:
    """Each public function's unchecked twin: its ``math`` while the public function is still
    the checked entry built from it, itself once replaced (``layer._replace(backward=...)``).
    Without ``entries``, the public functions are already the bare math."""
    if not entries:
        return public
    return tuple(m if p is e else p for p, m, e in zip(public, math, entries, strict=True))
