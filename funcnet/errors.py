"""The errors funcnet raises, and the one place their messages are worded.

Every message names who complained (a layer such as ``dense(3)``, a loss, or an argument
such as ``fit(batch_size)``), then what was expected, then what came. Each error class also
derives from the builtin a caller would naturally catch (``ValueError``, ``TypeError``...).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

__all__ = [
    "FuncnetError", "ShapeError", "StructureError", "ArgumentError", "ArrayTypeError",
    "NonFiniteError", "CheckpointError", "DataError", "GradientCheckError", "describe",
]


class FuncnetError(Exception):
    """Base class of every error funcnet raises on purpose."""


class ShapeError(FuncnetError, ValueError):
    """An array has the wrong rank, size or shape for the layer or loss."""


class StructureError(FuncnetError, ValueError):
    """Two pytrees that must match (e.g. params and grads) do not."""


class ArgumentError(FuncnetError, ValueError):
    """A configuration value is out of range or unknown."""


class ArrayTypeError(FuncnetError, TypeError):
    """Something that is not an array came where an array was expected."""


class NonFiniteError(FuncnetError, FloatingPointError):
    """Training met a NaN or an infinity; ``state`` is the run's last finite ``TrainState``
    (the start of the epoch that failed), from which one can save or go on."""

    state: Any = None


class CheckpointError(FuncnetError, ValueError):
    """A saved file is missing, corrupt, or belongs to another model."""


class DataError(FuncnetError, ValueError):
    """A data file is missing, truncated, or not in the expected format."""


class GradientCheckError(FuncnetError, AssertionError):
    """A hand-written gradient disagrees with its reference."""


#: How forward and backward must do their math so that jax can trace them, said once for
#: the jax referee (``check``) and the jit path.
ARRAY_MATH_RULE = (
    "expected array math through the input's own namespace, xp = x.__array_namespace__() "
    "(numpy >= 2 and jax arrays; funcnet.xp(x) gives the same), then xp.logaddexp(0.0, x), "
    "or array methods such as x.sum(), in forward and backward alike, so that one code runs "
    "on numpy, under jax.grad and under jax.jit"
)
#: The same for code that reads an array's value in Python.
ARRAY_VALUE_RULE = (
    "expected array operations throughout, such as xp.where(x > 0, a, b) with "
    "xp = x.__array_namespace__()"
)

#: The same for code that writes into an array (which also changes the caller's numpy array).
ARRAY_WRITE_RULE = (
    "expected new arrays, never a write into one (x[x < 0] = 0 or W -= lr * g change the "
    "caller's arrays, and jax arrays refuse them): xp.where(x < 0, 0, x) with "
    "xp = x.__array_namespace__(), or W - lr * g"
)


def is_write_error(error: BaseException) -> bool:
    """True for the error on ``x[idx] = v`` or ``W -= g`` into a jax array or tracer, or into
    a read-only numpy array (funcnet's params, and the data it passes a net)."""
    return (isinstance(error, TypeError) and "immutable" in str(error)
            or isinstance(error, ValueError) and "is read-only" in str(error))


def raise_if_write(error: BaseException, who: str, *, what: str = "an array", at: str = ""
                   ) -> None:
    """If ``error`` is a write into a read-only numpy array or a jax array, raise it again as
    an ``ArrayTypeError`` saying that ``who`` wrote into ``what`` (``at`` where), and what to
    write instead; else return, for the caller's bare ``raise``."""
    if is_write_error(error):
        raise ArrayTypeError(f"{who} wrote into {what} in place ({error}){at}: "
                             f"{ARRAY_WRITE_RULE}") from error


def describe(value: Any) -> str:
    """A short human description of ``value`` for error messages.

    >>> describe(np.zeros((4, 5)))
    'an array of shape (4, 5) and dtype float64'
    >>> describe([1, 2])
    'a list'
    >>> describe(3)
    'an int (3)'
    >>> describe(np.float32(0.5))
    'a numpy float32 scalar (0.5)'
    """
    if isinstance(value, np.generic):  # it has a shape and a dtype, but is no array
        return f"a numpy {value.dtype} scalar ({value.item()!r})"
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None and hasattr(value, "__array_namespace__"):
        return f"an array of shape {tuple(shape)} and dtype {dtype}"
    name = type(value).__name__
    article = "an" if name[0].lower() in "aeiou" else "a"
    if isinstance(value, bool | int | float | complex | str):
        return f"{article} {name} ({value!r})"
    return "None" if value is None else f"{article} {name}"


def is_array(value: Any) -> bool:
    """True for numpy and jax arrays (and jax tracers), False for lists and scalars."""
    return (
        hasattr(value, "__array_namespace__")
        and hasattr(value, "shape")
        and not isinstance(value, np.generic)
    )


def require_array(who: str, what: str, value: Any) -> None:
    """Raise ``ArrayTypeError`` unless ``value`` is an array."""
    if not is_array(value):
        raise ArrayTypeError(f"{who}: expected {what} to be an array, got {describe(value)}")


def require_positive_int(who: str, name: str, value: Any) -> int:
    """Return ``value`` as an int, or raise ``ArgumentError`` if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ArgumentError(f"{who}: {name} must be a positive integer, got {value!r}")
    return int(value)


def require_choice(who: str, name: str, value: Any, choices: Iterable[str]) -> None:
    """Raise ``ArgumentError`` unless ``value`` is one of ``choices``."""
    choices = list(choices)
    if value not in choices:
        raise ArgumentError(
            f"{who}: unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}"
        )


def require_probability(who: str, name: str, value: Any, *, open_right: bool = False) -> float:
    """Return ``value`` as a float in [0, 1] (or [0, 1)), else raise ``ArgumentError``."""
    if isinstance(value, int | float | np.floating) and not isinstance(value, bool):
        value = float(value)
        if 0.0 <= value < 1.0 or (value == 1.0 and not open_right):
            return value
    interval = "[0, 1)" if open_right else "[0, 1]"
    raise ArgumentError(f"{who}: {name} must be a number in {interval}, got {value!r}")
