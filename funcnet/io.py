"""Saving and loading pytrees as ``.npz`` files, without pickle, atomically.

A file is an ordinary ``.npz`` (``np.load(path, allow_pickle=False)`` reads
it): one ``.npy`` entry per array leaf, named by the leaf's path
(``state.opt_state.mu[0]['b']``), and an entry ``__structure__``: JSON, as
uint8 bytes, giving the containers (dicts with str or int keys, tuples, lists,
NamedTuples with their names and fields), the entry of each array, and every
other leaf itself (Python numbers, strings, ``None``; JSON keeps every bit of
a float, so a loss history comes back exactly).

Paths are used as given (no ``.npz`` suffix is added) and every write is
atomic (``_files.atomic_write``). Loading never unpickles, checks each entry's
size against its header before reading it, and returns read-only arrays.

>>> import tempfile
>>> from typing import NamedTuple
>>> class State(NamedTuple):
...     W: np.ndarray
...     step: int
...     history: tuple
>>> state = State(np.eye(2), 3, (0.5, 0.25))
>>> with tempfile.TemporaryDirectory() as d:
...     path = save_checkpoint(d, state, epoch=3)
...     back, epoch, _ = load_latest_checkpoint(d, like=state)
>>> back.step, back.history, epoch, bool((back.W == state.W).all()), back.W.flags.writeable
(3, (0.5, 0.25), 3, True, False)
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import struct
import warnings
import zipfile
import zlib
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from funcnet._files import atomic_write
from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    CheckpointError,
    StructureError,
    describe,
    is_array,
    require_positive_int,
)
from funcnet.tree import _is_named

__all__ = [
    "save_tree", "load_tree", "save_params", "load_params", "save_checkpoint",
    "list_checkpoints", "load_latest_checkpoint", "CheckpointWarning", "FORMAT_VERSION",
]

#: The version written into every file's description; other versions are refused.
FORMAT_VERSION = 2
_FORMAT_NAME = "funcnet.io"
_STRUCTURE = "__structure__"
_CKPT_NAME = "ckpt-{:08d}.npz"
_CKPT_PATTERN = re.compile(r"ckpt-(\d{8,})\.npz")
_ARRAY_KINDS = "biufcmMSU"  # numeric, bool, datetime and string dtypes; never object
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read and an older one was loaded instead."""


class _Unreadable(Exception):
    """The file is missing, damaged or not funcnet's; ``args[0]`` says why."""


class _Mismatch(Exception):
    """The file is sound but differs from ``like``; ``args[0]`` says where and how."""


def _encode(who: str, node: Any, at: str, arrays: dict[str, np.ndarray]) -> Any:
    """The JSON description of ``node``; its arrays are added to ``arrays`` under their path."""
    if isinstance(node, Mapping):
        items = []
        for key, value in node.items():
            if type(key) not in (str, int):
                raise StructureError(f"{who}: {at} has the key {key!r} ({describe(key)}); "
                                     f"only str and int dict keys can be saved")
            items.append([key, _encode(who, value, f"{at}[{key!r}]", arrays)])
        return {"dict": items}
    if _is_named(node):
        fields = type(node)._fields
        items = [_encode(who, v, f"{at}.{f}", arrays) for f, v in zip(fields, node, strict=True)]
        return {"namedtuple": [type(node).__name__, list(fields), items]}
    if isinstance(node, tuple | list):
        items = [_encode(who, v, f"{at}[{i}]", arrays) for i, v in enumerate(node)]
        return {"list" if isinstance(node, list) else "tuple": items}
    if node is None or type(node) in (bool, int, float, str):
        return node
    if isinstance(node, np.ndarray | np.generic) or is_array(node):
        array = np.asarray(node)
        if array.dtype.kind not in _ARRAY_KINDS:
            raise ArrayTypeError(f"{who}: {at} is {describe(array)}; only numeric, bool, "
                                 f"datetime and string arrays can be saved without pickle")
        arrays[at] = array
        return {"scalar" if isinstance(node, np.generic) else "array": at}
    raise ArrayTypeError(f"{who}: {at} is {describe(node)}; expected an array, a numpy scalar, "
                         f"a Python int/float/bool/str, None, or a dict, tuple, list or "
                         f"NamedTuple of those")


def _save(who: str, root: str, path: str | os.PathLike, tree: Any) -> None:
    arrays: dict[str, np.ndarray] = {}
    description = {"format": _FORMAT_NAME, "version": FORMAT_VERSION,
                   "tree": _encode(who, tree, root, arrays)}  # fails before touching the disk
    text = json.dumps(description, separators=(",", ":")).encode()
    entries = {_STRUCTURE: np.frombuffer(text, np.uint8), **arrays}
    try:
        atomic_write(path, lambda file: np.savez(file, **entries))
    except OSError as exc:
        raise CheckpointError(f"{who}: cannot write {os.fspath(path)}: {exc}") from exc


def save_tree(path: str | os.PathLike, tree: Any) -> None:
    """Save a pytree to ``path`` (used as given), atomically.

    Raises:
      ArrayTypeError: a leaf cannot be saved without pickle (object arrays, functions).
      StructureError: a dict key is neither str nor int.
      CheckpointError: the file cannot be written.
    """
    _save("save_tree", "tree", path, tree)


def save_params(path: str | os.PathLike, params: Any) -> None:
    """Save a parameter pytree to ``path``; ``save_tree`` with messages naming ``params``."""
    _save("save_params", "params", path, params)


def _read_entry(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    """The array in the entry ``name``, read-only; a header claiming more bytes than the entry
    stores is a damaged file, found before anything is allocated (never a ``MemoryError``)."""
    try:
        info = zf.getinfo(name + ".npy")
    except KeyError:
        raise _Unreadable(f"the entry {name!r} is missing") from None
    with zf.open(info) as file:
        try:
            shape, fortran_order, dtype = _NPY_HEADERS[np.lib.format.read_magic(file)](file)
        except (ValueError, KeyError) as exc:
            raise _Unreadable(f"the entry {name!r} has no valid .npy header ({exc})") from None
        if dtype.hasobject:
            raise _Unreadable(f"the entry {name!r} holds Python objects")
        claimed, stored = math.prod(shape) * dtype.itemsize, info.file_size - file.tell()
        if claimed != stored:
            raise _Unreadable(f"the entry {name!r} claims shape {shape} and dtype {dtype} "
                              f"({claimed} bytes) but stores {stored} bytes")
        data = file.read()  # to the end, so zipfile checks the entry's CRC
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran_order else "C")


@functools.lru_cache(maxsize=256)
def _record(name: str, fields: tuple) -> type:
    """One namedtuple class per (name, fields), so equal files give equal types."""
    return namedtuple(name, fields)


def _decode(node: Any, read: Callable[[str], np.ndarray]) -> Any:
    """The tree a JSON description stands for, its arrays read by ``read``."""
    if not isinstance(node, dict):
        return node
    [(kind, payload)] = node.items()
    if kind == "dict":
        return {key: _decode(value, read) for key, value in payload}
    if kind in ("tuple", "list"):
        return (tuple if kind == "tuple" else list)(_decode(v, read) for v in payload)
    if kind == "namedtuple":
        name, fields, items = payload
        return _record(name, tuple(fields))(*(_decode(v, read) for v in items))
    if kind == "array":
        return read(payload)
    if kind == "scalar":
        return read(payload)[()]
    raise ValueError(f"unknown kind {kind!r}")


def _parse(zf: zipfile.ZipFile) -> Any:
    """The tree stored in an open funcnet file."""
    if _STRUCTURE + ".npy" not in zf.namelist():
        raise _Unreadable(f"it has no {_STRUCTURE} entry (not written by funcnet.io)")
    text = _read_entry(zf, _STRUCTURE).tobytes()
    try:
        description = json.loads(text)
        if description["format"] != _FORMAT_NAME:
            raise ValueError("not a funcnet.io description")
    except (ValueError, TypeError, KeyError) as exc:
        raise _Unreadable(f"its {_STRUCTURE} entry is not a funcnet.io description "
                          f"({exc})") from None
    if description.get("version") != FORMAT_VERSION:
        raise _Unreadable(f"it has format version {description.get('version')!r}; "
                          f"this funcnet reads version {FORMAT_VERSION}")
    try:
        return _decode(description["tree"], functools.partial(_read_entry, zf))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _Unreadable(f"its {_STRUCTURE} entry is malformed ({exc})") from None


def _read(path: str) -> Any:
    """The tree in the file at ``path``, or ``_Unreadable`` saying what is wrong with it."""
    try:
        with zipfile.ZipFile(path) as zf:
            return _parse(zf)
    except FileNotFoundError:
        raise _Unreadable("no such file") from None
    except IsADirectoryError:
        raise _Unreadable("it is a directory, not a file") from None
    except zipfile.BadZipFile as exc:
        raise _Unreadable(f"not a valid .npz/zip file, or truncated ({exc})") from None
    except OSError as exc:
        raise _Unreadable(f"cannot read it ({exc})") from None
    except (EOFError, zlib.error, struct.error, ValueError, KeyError, RuntimeError,
            NotImplementedError, OverflowError) as exc:
        # numpy's .npy header checks; zipfile's size, compression and encryption checks
        raise _Unreadable(f"it is damaged ({type(exc).__name__}: {exc})") from None


def _text(node: Any) -> str:
    """How a node reads in a mismatch message."""
    if _is_named(node):
        return f"a {type(node).__name__} with fields {list(type(node)._fields)}"
    if isinstance(node, Mapping):
        return f"a dict with keys {list(node)}"
    if isinstance(node, tuple | list):
        return f"a {type(node).__name__} of length {len(node)}"
    return describe(node)


def _as_like(node: Any, like: Any, at: str) -> Any:
    """``node``, as loaded, rebuilt in ``like``'s containers (the rules of ``load_tree``);
    the first difference raises ``_Mismatch`` naming its path."""
    if isinstance(like, Mapping):
        if not isinstance(node, dict):
            raise _Mismatch(f"{at} is {_text(node)} in the file, expected {_text(like)}")
        if node.keys() != like.keys():
            raise _Mismatch(f"{at} has the keys {list(node)} in the file, expected {list(like)}")
        return {key: _as_like(node[key], value, f"{at}[{key!r}]") for key, value in like.items()}
    if _is_named(like):
        if not _is_named(node) or node._fields != like._fields:
            raise _Mismatch(f"{at} is {_text(node)} in the file, expected {_text(like)}")
        return type(like)._make(_as_like(n, v, f"{at}.{f}")
                                for f, n, v in zip(like._fields, node, like, strict=True))
    if isinstance(like, tuple | list):
        if _is_named(node) or not isinstance(node, list if isinstance(like, list) else tuple):
            raise _Mismatch(f"{at} is {_text(node)} in the file, expected {_text(like)}")
        if not like or all(type(v) in (bool, int, float) for v in (*like, *node)):
            return type(like)(node)
        if len(node) != len(like):
            raise _Mismatch(f"{at} is {_text(node)} in the file, expected {_text(like)}")
        return type(like)(_as_like(n, v, f"{at}[{i}]")
                          for i, (n, v) in enumerate(zip(node, like, strict=True)))
    if isinstance(like, np.ndarray | np.generic) or is_array(like):
        scalar = isinstance(like, np.generic)
        if not isinstance(node, np.generic if scalar else np.ndarray):
            raise _Mismatch(f"{at} is {describe(node)} in the file, expected "
                            f"{'a numpy scalar' if scalar else 'an array'} of shape "
                            f"{tuple(like.shape)} and dtype {like.dtype}")
        if node.shape != tuple(like.shape):
            raise _Mismatch(f"{at} has shape {node.shape}, expected {tuple(like.shape)}")
        if node.dtype != like.dtype:
            raise _Mismatch(f"{at} has dtype {node.dtype}, expected {like.dtype}")
        return node
    if type(node) is not type(like):
        raise _Mismatch(f"{at} is {describe(node)} in the file, expected {describe(like)}")
    return node


def _load(who: str, root: str, path: str | os.PathLike, like: Any) -> Any:
    path = os.fspath(path)
    try:
        node = _read(path)
        return node if like is None else _as_like(node, like, root)
    except (_Unreadable, _Mismatch) as exc:
        raise CheckpointError(f"{who}: {path}: {exc.args[0]}") from None


def load_tree(path: str | os.PathLike, like: Any = None) -> Any:
    """Load a pytree saved by ``save_tree``; its arrays come back read-only.

    Args:
      like: optional template (e.g. a freshly initialised state). Containers
        and leaves must match it, arrays in shape and dtype, and the result is
        built from its containers, NamedTuple classes included. A tuple or list
        of Python numbers (a history) may differ in length, and an empty one in
        ``like`` takes what the file holds. Without ``like``, NamedTuples come
        back as ``collections.namedtuple`` types of the saved names and fields.

    Raises:
      CheckpointError: the file is missing, damaged, not a funcnet.io file, of
        another format version, or differs from ``like`` (naming the first
        difference's path).
    """
    return _load("load_tree", "tree", path, like)


def load_params(path: str | os.PathLike, like: Any = None) -> Any:
    """Load parameters saved by ``save_params``; ``load_tree`` with messages naming ``params``."""
    return _load("load_params", "params", path, like)


def save_checkpoint(
    directory: str | os.PathLike, state: Any, epoch: int, *, keep: int | None = None
) -> str:
    """Save ``state`` (a pytree) atomically as ``directory/ckpt-{epoch:08d}.npz``; return the path.

    The directory is created if need be. With ``keep``, the checkpoint written
    and the ``keep - 1`` others of highest epoch stay and the rest are removed.

    Raises:
      ArgumentError: ``epoch`` or ``keep`` is not a valid integer.
      CheckpointError: the directory or file cannot be written.
    """
    who = "save_checkpoint"
    if isinstance(epoch, bool) or not isinstance(epoch, int | np.integer) or epoch < 0:
        raise ArgumentError(f"{who}: epoch must be a non-negative integer, got {epoch!r}")
    if keep is not None:
        keep = require_positive_int(who, "keep", keep)
    directory = os.fspath(directory)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"{who}: cannot create the directory {directory}: {exc}") from exc
    path = os.path.join(directory, _CKPT_NAME.format(int(epoch)))
    _save(who, "state", path, state)
    if keep is not None:
        older = [p for _, p in list_checkpoints(directory) if p != path]
        for name in older[: max(len(older) - (keep - 1), 0)]:
            try:
                os.unlink(name)
            except FileNotFoundError:
                pass
            except OSError as exc:
                warnings.warn(CheckpointWarning(f"{who}: cannot remove {name}: {exc}"),
                              stacklevel=2)
    return path


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """``[(epoch, path), ...]`` of the checkpoints in ``directory``, oldest first.

    Only files named exactly ``ckpt-{epoch:08d}.npz`` count; temporary files and
    other names are ignored. A directory that does not exist has none.

    Raises:
      CheckpointError: ``directory`` exists but cannot be listed.
    """
    directory = os.fspath(directory)
    try:
        names = {e.name for e in os.scandir(directory) if e.is_file()}
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"list_checkpoints: cannot list {directory}: {exc}") from exc
    epochs = [int(m[1]) for m in map(_CKPT_PATTERN.fullmatch, names) if m]
    return sorted((epoch, os.path.join(directory, _CKPT_NAME.format(epoch)))
                  for epoch in epochs if _CKPT_NAME.format(epoch) in names)


def load_latest_checkpoint(
    directory: str | os.PathLike, like: Any = None
) -> tuple[Any, int, str] | None:
    """``(state, epoch, path)`` of the newest readable checkpoint, or None if there is none.

    A damaged newer checkpoint is skipped with a ``CheckpointWarning`` naming it
    and why; one that reads fine but differs from ``like`` (as for ``load_tree``)
    is an error, never skipped.

    Raises:
      CheckpointError: no checkpoint can be read (each file and its problem
        listed), or the newest readable one differs from ``like``.
    """
    who = "load_latest_checkpoint"
    failures = []
    for epoch, path in reversed(list_checkpoints(directory)):
        try:
            node = _read(path)
        except _Unreadable as exc:
            failures.append(f"{path}: {exc.args[0]}")
            continue
        try:
            state = node if like is None else _as_like(node, like, "state")
        except _Mismatch as exc:
            raise CheckpointError(f"{who}: {path}: {exc.args[0]}") from None
        for failure in failures:
            warnings.warn(CheckpointWarning(f"{who}: skipped {failure}; loaded {path} instead"),
                          stacklevel=2)
        return state, epoch, path
    if failures:
        raise CheckpointError(f"{who}: no checkpoint in {os.fspath(directory)} can be read: "
                              + "; ".join(failures))
    return None
