"""Saving and loading pytrees as ``.npz`` files, without pickle, atomically.

A file holds one ``.npy`` entry per array leaf, named by the leaf's path
(``params[1]['W']``, ``state.opt_state.mu[0]['b']``), and an entry
``__structure__``: a JSON description (stored as uint8 bytes) of the
containers, the dict keys and their types, NamedTuple names and fields, and
every leaf's kind, dtype and shape. Python numbers, strings and ``None`` live
in the description itself; a tuple or list made only of Python floats (or
ints, or bools), such as a loss history, is stored as ONE array entry. The
file is an ordinary zip that ``np.load(path, allow_pickle=False)`` can read.

Paths are used exactly as given: no ``.npz`` suffix is added. Every write
goes to a temporary file in the target's directory, is flushed to disk and
then renamed over the target, so a crash leaves either the old file or the
new one, never half of one. Loading never unpickles, and loaded arrays are
read-only.

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

import contextlib
import functools
import json
import os
import re
import struct
import tempfile
import time
import warnings
import zipfile
import zlib
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np

from funcnet.errors import (
    ArgumentError,
    ArrayTypeError,
    CheckpointError,
    StructureError,
    describe,
    is_array,
    require_positive_int,
)
from funcnet.tree import _is_named as _is_namedtuple  # the one NamedTuple test
from funcnet.tree import freeze

__all__ = [
    "save_tree",
    "load_tree",
    "save_params",
    "load_params",
    "save_checkpoint",
    "list_checkpoints",
    "load_latest_checkpoint",
    "CheckpointWarning",
    "FORMAT_VERSION",
]

#: The version written into every file's description; other versions are refused.
FORMAT_VERSION = 1
_FORMAT_NAME = "funcnet.io"
_STRUCTURE = "__structure__"
_TMP_PREFIX = ".tmp-"
_CKPT_NAME = re.compile(r"ckpt-(\d{8,})\.npz")
#: A checkpoint's temporary file (``_atomic_write``'s name for it) that a crash left behind.
_CKPT_TMP_NAME = re.compile(re.escape(_TMP_PREFIX) + r"ckpt-\d{8,}\.npz-\w+")
#: Older than this, such a file is no write in progress (saving takes seconds) and is removed.
_STALE_TMP_SECONDS = 3600
# Stored, not deflated. Measured on an MLP train state (params + Adam moments):
# deflate shrank trained float64 weights by 4%, but made saving ~20x and
# loading ~12x slower (43 MB: 0.14 s -> 2.8 s to save, 0.04 s -> 0.5 s to load).
_COMPRESSION = zipfile.ZIP_STORED
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so one tree always gives the same bytes
_ARRAY_KINDS = "biufcmMSU"  # numeric, bool, datetime and string dtypes; never object
_SCALARS = {"float": float, "int": int, "bool": bool}
_SCALAR_DTYPES = {"float": np.dtype(np.float64), "int": np.dtype(np.int64), "bool": np.dtype(bool)}
_INT64 = np.iinfo(np.int64)
_MAX_PROBLEMS = 10


class CheckpointWarning(UserWarning):
    """A checkpoint could not be read and an older one was loaded instead."""


# --------------------------------------------------------------------------- paths


def _key_text(key: Any) -> str:
    return f"[{key!r}]"


def _field_text(name: str) -> str:
    return f".{name}"


# --------------------------------------------------------------------------- saving


def _element(values: Any) -> str | None:
    """'float', 'int' or 'bool' when ``values`` is non-empty and all of that exact type."""
    if not values:
        return None
    for name, cls in _SCALARS.items():
        if all(type(v) is cls for v in values):
            return name
    return None


def _packable(values: Any) -> str | None:
    """The element type when ``values`` can be stored as one int64/float64/bool array."""
    element = _element(values)
    if element == "int" and not all(_INT64.min <= v <= _INT64.max for v in values):
        return None
    return element


class _Encoder:
    """Walks a tree once, building its JSON description and its array entries."""

    def __init__(self, who: str):
        self.who = who
        self.entries: dict[str, np.ndarray] = {}

    def entry(self, name: str, array: np.ndarray) -> str:
        assert name not in self.entries and name != _STRUCTURE, name
        self.entries[name] = array
        return name

    def encode(self, node: Any, at: str) -> dict:
        if isinstance(node, Mapping):
            items = []
            for k, v in node.items():
                if type(k) not in (str, int):
                    raise StructureError(
                        f"{self.who}: {at} has the key {k!r} ({describe(k)}); "
                        f"only str and int dict keys can be saved"
                    )
                items.append({"key": k, "key_type": type(k).__name__,
                              "value": self.encode(v, at + _key_text(k))})
            return {"kind": "dict", "items": items}
        if _is_namedtuple(node):
            fields = list(type(node)._fields)
            items = [self.encode(v, at + _field_text(f)) for f, v in zip(fields, node, strict=True)]
            return {"kind": "namedtuple", "name": type(node).__name__, "fields": fields,
                    "items": items}
        if isinstance(node, tuple | list):
            container = "tuple" if isinstance(node, tuple) else "list"
            element = _packable(node)
            if element is not None:
                array = np.array(node, dtype=_SCALAR_DTYPES[element])
                return {"kind": "scalars", "container": container, "element": element,
                        "length": len(node), "entry": self.entry(at, array)}
            items = [self.encode(v, at + _key_text(i)) for i, v in enumerate(node)]
            return {"kind": container, "items": items}
        if node is None:
            return {"kind": "none"}
        if type(node) in (bool, int, float, str):
            return {"kind": type(node).__name__, "value": node}
        if isinstance(node, np.generic | np.ndarray) or is_array(node):
            array = np.asarray(node)
            if array.dtype.kind not in _ARRAY_KINDS:
                raise ArrayTypeError(
                    f"{self.who}: {at} is {describe(array)}; only numeric, bool, datetime "
                    f"and string arrays can be saved without pickle"
                )
            kind = "numpy_scalar" if isinstance(node, np.generic) else "array"
            return {"kind": kind, "dtype": array.dtype.str, "shape": list(array.shape),
                    "entry": self.entry(at, array)}
        raise ArrayTypeError(
            f"{self.who}: {at} is {describe(node)}; expected an array, a numpy scalar, "
            f"a Python int/float/bool/str, None, or a dict, tuple, list or NamedTuple of those"
        )


def _encode_file(who: str, root: str, tree: Any) -> dict[str, np.ndarray]:
    """Every entry of the file, ``__structure__`` included, as arrays."""
    encoder = _Encoder(who)
    description = {"format": _FORMAT_NAME, "version": FORMAT_VERSION, "root": root,
                   "tree": encoder.encode(tree, root)}
    text = json.dumps(description, separators=(",", ":"))
    return {_STRUCTURE: np.frombuffer(text.encode("ascii"), np.uint8), **encoder.entries}


def _write_npz(file: Any, entries: dict[str, np.ndarray]) -> None:
    with zipfile.ZipFile(file, "w", compression=_COMPRESSION) as zf:
        for name, array in entries.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=_ZIP_DATE)
            info.compress_type = _COMPRESSION
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, array, allow_pickle=False)


def _umask() -> int | None:
    """The process umask, read without changing it (Linux), or None if unknown."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    return None


def _fsync_directory(directory: str) -> None:
    with contextlib.suppress(OSError, AttributeError):  # not every OS can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _atomic_write(who: str, path: str, write: Callable[[Any], None]) -> None:
    """Write ``path`` through a synced temporary file renamed over it; clean up on failure."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + os.path.basename(path) + "-",
                                   dir=directory)
    except OSError as exc:
        raise CheckpointError(f"{who}: cannot write {path}: {exc}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file 0600: give it the mode a plain open() would have.
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            umask = _umask()
            mode = None if umask is None else 0o666 & ~umask
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise CheckpointError(f"{who}: cannot write {path}: {exc}") from exc
        raise
    _fsync_directory(directory)


def _save(who: str, root: str, path: Any, tree: Any) -> None:
    path = os.fspath(path)
    entries = _encode_file(who, root, tree)  # fails before touching the disk
    _atomic_write(who, path, lambda f: _write_npz(f, entries))


def save_tree(path: str | os.PathLike, tree: Any) -> None:
    """Save a pytree to ``path`` (used as given, no suffix added), atomically.

    Args:
      path: the file to write; an existing file is replaced only once the new
        one is complete on disk.
      tree: nested dicts (str or int keys), tuples, lists and NamedTuples with
        numpy arrays, numpy scalars, Python int/float/bool/str or None leaves.

    Raises:
      ArrayTypeError: a leaf cannot be saved without pickle (object arrays,
        functions, other objects).
      StructureError: a dict key is neither str nor int.
      CheckpointError: the file cannot be written.
    """
    _save("save_tree", "tree", path, tree)


def save_params(path: str | os.PathLike, params: Any) -> None:
    """Save a parameter pytree to ``path``; ``save_tree`` with messages naming ``params``."""
    _save("save_params", "params", path, params)


# --------------------------------------------------------------------------- reading


class _Unreadable(Exception):
    """The file is missing, corrupt, or not a funcnet file (``args[0]`` says why)."""


class _Mismatch(Exception):
    """The file is sound but does not match ``like`` (``args[0]``: the problems)."""


class _Dict(NamedTuple):
    items: list  # [(key, node)]


class _Seq(NamedTuple):
    container: type  # tuple or list
    items: list


class _Named(NamedTuple):
    name: str
    fields: tuple
    items: list


class _Scalars(NamedTuple):
    container: type
    element: str  # "float", "int" or "bool"
    values: list


class _Leaf(NamedTuple):
    value: Any  # an array, a numpy scalar, a Python scalar, a str or None


def _need(condition: bool, at: str, what: str) -> None:
    if not condition:
        raise _Unreadable(f"the description of {at} is malformed ({what})")


def _is_int(value: Any) -> bool:
    return type(value) is int


class _Decoder:
    """Checks a JSON description and reads the entries it names from an open zip."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        self.members = {name[: -len(".npy")] for name in zf.namelist() if name.endswith(".npy")}
        self.used: set[str] = set()

    def read(self, name: Any, at: str) -> np.ndarray:
        _need(isinstance(name, str), at, "entry name")
        if name not in self.members:
            raise _Unreadable(f"the entry {name!r} for {at} is missing")
        if name in self.used:
            raise _Unreadable(f"the entry {name!r} is described twice")
        self.used.add(name)
        with self.zf.open(name + ".npy") as member:
            array = np.lib.format.read_array(member, allow_pickle=False)
            if member.read(1):  # also makes zipfile check the CRC of the whole entry
                raise _Unreadable(f"the entry {name!r} has trailing bytes")
        return freeze(array, copy=False)

    def read_checked(self, node: dict, at: str, dtype: np.dtype, shape: tuple) -> np.ndarray:
        array = self.read(node.get("entry"), at)
        if array.dtype != dtype or array.shape != shape:
            raise _Unreadable(
                f"the entry for {at} holds {describe(array)}, but the description says "
                f"shape {shape} and dtype {dtype}"
            )
        return array

    def decode(self, node: Any, at: str) -> Any:
        _need(isinstance(node, dict), at, "not an object")
        kind = node.get("kind")
        if kind == "dict":
            items, keys = node.get("items"), set()
            _need(isinstance(items, list), at, "dict items")
            out = []
            for item in items:
                _need(isinstance(item, dict), at, "dict item")
                key, key_type = item.get("key"), item.get("key_type")
                _need((key_type == "str" and type(key) is str)
                      or (key_type == "int" and _is_int(key)), at, "dict key")
                _need(key not in keys, at, f"duplicate key {key!r}")
                keys.add(key)
                out.append((key, self.decode(item.get("value"), at + _key_text(key))))
            return _Dict(out)
        if kind in ("tuple", "list", "namedtuple"):
            items = node.get("items")
            _need(isinstance(items, list), at, f"{kind} items")
            if kind == "namedtuple":
                name, fields = node.get("name"), node.get("fields")
                _need(isinstance(name, str) and isinstance(fields, list)
                      and len(fields) == len(items) and all(type(f) is str for f in fields),
                      at, "namedtuple name and fields")
                try:
                    _namedtuple_class(name, tuple(fields))
                except (ValueError, TypeError) as exc:
                    raise _Unreadable(f"the description of {at} is malformed ({exc})") from exc
                return _Named(name, tuple(fields),
                              [self.decode(v, at + _field_text(f))
                               for f, v in zip(fields, items, strict=True)])
            container = tuple if kind == "tuple" else list
            return _Seq(container, [self.decode(v, at + _key_text(i))
                                    for i, v in enumerate(items)])
        if kind == "scalars":
            container, element, length = (node.get(k) for k in ("container", "element", "length"))
            _need(container in ("tuple", "list") and element in _SCALARS and _is_int(length)
                  and length >= 0, at, "scalar sequence")
            array = self.read_checked(node, at, _SCALAR_DTYPES[element], (length,))
            return _Scalars(tuple if container == "tuple" else list, element, array.tolist())
        if kind in ("array", "numpy_scalar"):
            dtype_text, shape = node.get("dtype"), node.get("shape")
            _need(isinstance(shape, list) and all(_is_int(n) and n >= 0 for n in shape),
                  at, "shape")
            _need(kind == "array" or shape == [], at, "numpy scalar shape")
            try:
                dtype = np.dtype(dtype_text)
            except (TypeError, ValueError) as exc:
                raise _Unreadable(f"the description of {at} is malformed (dtype)") from exc
            _need(dtype.kind in _ARRAY_KINDS, at, f"dtype {dtype}")
            array = self.read_checked(node, at, dtype, tuple(shape))
            return _Leaf(array[()] if kind == "numpy_scalar" else array)
        if kind == "none":
            return _Leaf(None)
        if kind in ("int", "float", "bool", "str"):
            value = node.get("value")
            _need(type(value) is {"int": int, "float": float, "bool": bool, "str": str}[kind],
                  at, f"{kind} value")
            return _Leaf(value)
        raise _Unreadable(f"the description of {at} has an unknown kind {kind!r}")


def _read(path: str) -> tuple[str, Any]:
    """The root name and decoded tree of the file at ``path``, or raise ``_Unreadable``."""
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                with zf.open(_STRUCTURE + ".npy") as member:
                    raw = np.lib.format.read_array(member, allow_pickle=False)
                    member.read(1)  # reach the end, so the CRC is checked
            except KeyError:
                raise _Unreadable(
                    f"it has no {_STRUCTURE} entry (not written by funcnet.io)"
                ) from None
            if raw.dtype != np.uint8 or raw.ndim != 1:
                raise _Unreadable(f"its {_STRUCTURE} entry is {describe(raw)}, not uint8 bytes")
            try:
                description = json.loads(raw.tobytes().decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _Unreadable(f"its {_STRUCTURE} entry is not valid JSON ({exc})") from exc
            if not isinstance(description, dict) or description.get("format") != _FORMAT_NAME:
                raise _Unreadable(f"its {_STRUCTURE} entry is not a funcnet.io description")
            version = description.get("version")
            if version != FORMAT_VERSION:
                raise _Unreadable(
                    f"it has format version {version!r}; this funcnet reads version "
                    f"{FORMAT_VERSION}"
                )
            root = description.get("root")
            if not isinstance(root, str):
                raise _Unreadable(f"its {_STRUCTURE} entry has no root name")
            decoder = _Decoder(zf)
            tree = decoder.decode(description.get("tree"), root)
            extra = sorted(decoder.members - decoder.used - {_STRUCTURE})
            if extra:
                raise _Unreadable(f"it has entries the description does not name: {extra}")
            return root, tree
    except FileNotFoundError:
        raise _Unreadable("no such file") from None
    except IsADirectoryError:
        raise _Unreadable("it is a directory, not a file") from None
    except zipfile.BadZipFile as exc:
        raise _Unreadable(f"not a valid .npz/zip file, or truncated ({exc})") from exc
    except OSError as exc:
        raise _Unreadable(f"cannot read it ({exc})") from exc
    except (EOFError, zlib.error, struct.error) as exc:
        raise _Unreadable(f"its data is truncated or damaged ({type(exc).__name__}: {exc})") \
            from exc
    except (ValueError, KeyError, RuntimeError, NotImplementedError, OverflowError) as exc:
        # numpy's .npy header checks, zipfile's encryption/compression/size checks
        raise _Unreadable(f"it is damaged ({type(exc).__name__}: {exc})") from exc


# --------------------------------------------------------------------------- rebuilding


@functools.lru_cache(maxsize=256)
def _namedtuple_class(name: str, fields: tuple) -> type:
    """One class per (name, fields), so equal descriptions give the same type."""
    return namedtuple(name, fields)


def _build(node: Any) -> Any:
    """The tree a decoded description stands for, with namedtuples made from it."""
    if isinstance(node, _Leaf):
        return node.value
    if isinstance(node, _Scalars):
        return node.container(node.values)
    if isinstance(node, _Dict):
        return {k: _build(v) for k, v in node.items}
    if isinstance(node, _Named):
        return _namedtuple_class(node.name, node.fields)(*map(_build, node.items))
    return node.container(map(_build, node.items))


def _node_text(node: Any) -> str:
    """How a decoded node reads in an error message."""
    if isinstance(node, _Leaf):
        return describe(node.value)
    if isinstance(node, _Scalars):
        return f"a {node.container.__name__} of {len(node.values)} {node.element}s"
    if isinstance(node, _Dict):
        return f"a dict with keys {[k for k, _ in node.items]}"
    if isinstance(node, _Named):
        return f"a {node.name} with fields {list(node.fields)}"
    return f"a {node.container.__name__} of length {len(node.items)}"


def _like_text(like: Any) -> str:
    if isinstance(like, Mapping):
        return f"a dict with keys {list(like)}"
    if _is_namedtuple(like):
        return f"a {type(like).__name__} with fields {list(type(like)._fields)}"
    if isinstance(like, tuple | list):
        return f"a {type(like).__name__} of length {len(like)}"
    return describe(like)


def _numbers(node: Any) -> tuple[str | None, list] | None:
    """``(element, values)`` when a decoded sequence holds only Python numbers of one type."""
    if isinstance(node, _Scalars):
        return node.element, node.values
    if all(isinstance(n, _Leaf) for n in node.items):
        values = [n.value for n in node.items]
        element = _element(values)
        if element or not values:
            return element, values
    return None


def _array_spec(like: Any) -> tuple[np.dtype, tuple] | None:
    if isinstance(like, np.ndarray | np.generic) or is_array(like):
        return np.dtype(like.dtype), tuple(like.shape)
    return None


class _Matcher:
    """Rebuilds a decoded file in ``like``'s containers, collecting every mismatch."""

    def __init__(self):
        self.problems: list[str] = []

    def fail(self, text: str) -> None:
        self.problems.append(text)

    def missing(self, at: str, like: Any) -> None:
        self.fail(f"{at} is missing from the file (expected {_like_text(like)})")

    def extra(self, at: str, node: Any) -> None:
        self.fail(f"{at} is in the file ({_node_text(node)}) but not in like")

    def match(self, node: Any, like: Any, at: str) -> Any:
        if isinstance(like, Mapping):
            if not isinstance(node, _Dict):
                return self.fail(
                    f"{at} is {_node_text(node)} in the file, expected {_like_text(like)}"
                )
            found = {(type(k), k): (k, v) for k, v in node.items}
            out = {}
            for k, v in like.items():
                if (type(k), k) in found:
                    out[k] = self.match(found.pop((type(k), k))[1], v, at + _key_text(k))
                else:
                    self.missing(at + _key_text(k), v)
            for k, v in found.values():
                self.extra(at + _key_text(k), v)
            return out
        if _is_namedtuple(like):
            fields = type(like)._fields
            if not isinstance(node, _Named):
                return self.fail(
                    f"{at} is {_node_text(node)} in the file, expected {_like_text(like)}"
                )
            found = dict(zip(node.fields, node.items, strict=True))
            values = []
            for f, v in zip(fields, like, strict=True):
                if f in found:
                    values.append(self.match(found.pop(f), v, at + _field_text(f)))
                else:
                    self.missing(at + _field_text(f), v)
            for f, v in found.items():
                self.extra(at + _field_text(f), v)
            return type(like)._make(values) if len(values) == len(fields) else None
        if isinstance(like, tuple | list):
            return self.match_sequence(node, like, at)
        return self.match_leaf(node, like, at)

    def match_sequence(self, node: Any, like: tuple | list, at: str) -> Any:
        container = list if isinstance(like, list) else tuple
        if not isinstance(node, _Seq | _Scalars) or node.container is not container:
            return self.fail(
                f"{at} is {_node_text(node)} in the file, expected {_like_text(like)}"
            )
        # A sequence of Python numbers (a loss history) may differ in length from like's.
        like_element = _element(like)
        numbers = _numbers(node)
        if numbers is not None and (like_element or not like):
            element, values = numbers
            if None in (element, like_element) or element == like_element:
                return container(values)
            return self.fail(f"{at} is {_node_text(node)} in the file, "
                             f"expected a {container.__name__} of {like_element}s")
        if isinstance(node, _Scalars):
            return self.fail(
                f"{at} is {_node_text(node)} in the file, expected {_like_text(like)}"
            )
        out = [self.match(n, v, at + _key_text(i))
               for i, (n, v) in enumerate(zip(node.items, like, strict=False))]
        for i in range(len(node.items), len(like)):
            self.missing(at + _key_text(i), like[i])
        for i in range(len(like), len(node.items)):
            self.extra(at + _key_text(i), node.items[i])
        return container(out)

    def match_leaf(self, node: Any, like: Any, at: str) -> Any:
        if not isinstance(node, _Leaf):
            return self.fail(f"{at} is {_node_text(node)} in the file, expected {describe(like)}")
        value = node.value
        spec = _array_spec(like)
        if spec is not None:
            want_scalar = isinstance(like, np.generic)
            if not (isinstance(value, np.ndarray) or isinstance(value, np.generic)) or \
                    isinstance(value, np.generic) != want_scalar:
                return self.fail(f"{at} is {_node_text(node)} in the file, "
                                 f"expected {'a numpy scalar' if want_scalar else 'an array'} "
                                 f"of shape {spec[1]} and dtype {spec[0]}")
            if value.shape != spec[1]:
                self.fail(f"{at} has shape {value.shape}, expected {spec[1]}")
            if value.dtype != spec[0]:
                self.fail(f"{at} has dtype {value.dtype}, expected {spec[0]}")
            return value
        if like is None or type(like) in (bool, int, float, str):
            if type(value) is not type(like):
                self.fail(f"{at} is {_node_text(node)} in the file, expected {describe(like)}")
            return value
        return self.fail(f"{at}: like holds {describe(like)}, which no file can hold")


def _rebuild(root: str, node: Any, like: Any) -> Any:
    if like is None:
        return _build(node)
    matcher = _Matcher()
    tree = matcher.match(node, like, root)
    if matcher.problems:
        shown = matcher.problems[:_MAX_PROBLEMS]
        more = len(matcher.problems) - len(shown)
        raise _Mismatch("; ".join(shown) + (f"; and {more} more" if more else ""))
    return tree


def _load(who: str, root: str, path: Any, like: Any) -> Any:
    path = os.fspath(path)
    try:
        _, node = _read(path)
        return _rebuild(root, node, like)
    except (_Unreadable, _Mismatch) as exc:
        raise CheckpointError(f"{who}: {path}: {exc.args[0]}") from None


def load_tree(path: str | os.PathLike, like: Any = None) -> Any:
    """Load a pytree saved by ``save_tree``; its arrays come back read-only.

    Args:
      path: the file, used as given.
      like: optional template with the expected structure (e.g. a freshly
        initialised state). Every leaf must match its kind, shape and dtype,
        and the result is built from ``like``'s containers, so NamedTuples come
        back as ``like``'s classes. Only tuples/lists of Python numbers (such
        as a loss history) may differ in length from ``like``'s. Without
        ``like``, NamedTuples come back as ``collections.namedtuple`` types
        with the saved names and fields.

    Returns:
      The tree, with frozen numpy arrays.

    Raises:
      CheckpointError: the file is missing, truncated, not a funcnet.io file,
        of an unknown format version, or it does not match ``like``
        (missing or extra entries, other shapes or dtypes), naming each path.
    """
    return _load("load_tree", "tree", path, like)


def load_params(path: str | os.PathLike, like: Any = None) -> Any:
    """Load parameters saved by ``save_params``; ``load_tree`` with messages naming ``params``."""
    return _load("load_params", "params", path, like)


# --------------------------------------------------------------------------- checkpoints


def _checkpoint_path(directory: str, epoch: int) -> str:
    return os.path.join(directory, f"ckpt-{epoch:08d}.npz")


def save_checkpoint(
    directory: str | os.PathLike, state: Any, epoch: int, *, keep: int | None = None
) -> str:
    """Save ``state`` atomically as ``directory/ckpt-{epoch:08d}.npz``, creating the directory.

    Args:
      directory: where checkpoints live.
      state: any pytree ``save_tree`` accepts (e.g. a train state).
      epoch: a non-negative int naming the checkpoint.
      keep: if given, keep the checkpoint just written and the ``keep - 1``
        others of highest epoch; remove the rest.

    A checkpoint's temporary file more than an hour old (left by a save that a
    crash stopped before its rename) is removed as well.

    Returns:
      The path written.

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
    path = _checkpoint_path(directory, int(epoch))
    _save(who, "state", path, state)
    stale = _crash_leftovers(directory)
    if keep is not None:
        old = [p for _, p in list_checkpoints(directory) if p != path]
        stale += old[: max(len(old) - (keep - 1), 0)]
    for name in stale:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass
        except OSError as exc:
            warnings.warn(CheckpointWarning(f"{who}: cannot remove {name}: {exc}"),
                          stacklevel=2)
    return path


def _crash_leftovers(directory: str) -> list[str]:
    """Temporary checkpoint files older than ``_STALE_TMP_SECONDS``: a save that crashed
    (a killed process) before renaming. Younger ones may be another process's save in
    progress, and other names are not ours; both are left alone."""
    cutoff = time.time() - _STALE_TMP_SECONDS
    found = []
    with contextlib.suppress(OSError):  # a listing that fails only leaves them for later
        for entry in os.scandir(directory):
            if _CKPT_TMP_NAME.fullmatch(entry.name) and entry.is_file():
                with contextlib.suppress(OSError):
                    if entry.stat().st_mtime < cutoff:
                        found.append(entry.path)
    return found


def list_checkpoints(directory: str | os.PathLike) -> list[tuple[int, str]]:
    """``[(epoch, path), ...]`` of the checkpoints in ``directory``, oldest first.

    Only files named exactly ``ckpt-{epoch:08d}.npz`` count; temporary files and
    other names are ignored. A directory that does not exist has none.

    Raises:
      CheckpointError: ``directory`` exists but cannot be listed.
    """
    directory = os.fspath(directory)
    try:
        names = sorted(e.name for e in os.scandir(directory) if e.is_file())
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"list_checkpoints: cannot list {directory}: {exc}") from exc
    found = []
    for name in names:
        match = _CKPT_NAME.fullmatch(name)
        if match and name == os.path.basename(_checkpoint_path("", int(match[1]))):
            found.append((int(match[1]), os.path.join(directory, name)))
    return sorted(found)


def load_latest_checkpoint(
    directory: str | os.PathLike, like: Any = None
) -> tuple[Any, int, str] | None:
    """Load the newest checkpoint in ``directory`` that can be read.

    A corrupt newer checkpoint (truncated, not a zip, bad description) is
    skipped with a ``CheckpointWarning`` naming it and why; a checkpoint that
    reads fine but does not match ``like`` is an error, never skipped.

    Args:
      directory: where ``save_checkpoint`` wrote.
      like: optional template state, as for ``load_tree``.

    Returns:
      ``(state, epoch, path)``, or None when there is no checkpoint at all.

    Raises:
      CheckpointError: no checkpoint can be read (each file and its problem
        listed), or the newest readable one does not match ``like``.
    """
    who = "load_latest_checkpoint"
    checkpoints = list_checkpoints(directory)
    if not checkpoints:
        return None
    failures = []
    for epoch, path in reversed(checkpoints):
        try:
            _, node = _read(path)
        except _Unreadable as exc:
            failures.append((path, exc.args[0]))
            continue
        try:
            state = _rebuild("state", node, like)
        except _Mismatch as exc:
            raise CheckpointError(f"{who}: {path}: {exc.args[0]}") from None
        for bad, reason in failures:
            warnings.warn(
                CheckpointWarning(f"{who}: skipped {bad}: {reason}; loaded {path} instead"),
                stacklevel=2,
            )
        return state, epoch, path
    listing = "; ".join(f"{p}: {reason}" for p, reason in failures)
    raise CheckpointError(f"{who}: no checkpoint in {os.fspath(directory)} can be read: {listing}")

