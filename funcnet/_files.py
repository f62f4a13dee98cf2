"""Atomic file writes, shared by ``io`` (checkpoints) and ``plot`` (figures).

A file is written to a temporary file beside it, synced to disk and renamed
over it, so a reader or a crash finds the old file or the new one, never half
of one.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     atomic_write(os.path.join(d, "a.txt"), lambda f: f.write(b"hello"))
...     os.listdir(d)
['a.txt']
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable
from typing import BinaryIO

#: The start of a temporary file's name: ``.tmp-<target name>-<random hex>``.
TMP_PREFIX = ".tmp-"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` by calling ``write`` on a temporary file, then renaming it over ``path``.

    The temporary file sits in ``path``'s directory, because a rename is atomic
    only within one file system. It gets the mode a plain ``open`` would give
    (or the mode of the file it replaces), is synced before the rename, and is
    removed if anything fails, the error then propagating unchanged. The
    directory is synced after the rename, so the rename itself survives a power
    cut.

    Raises:
      OSError: the file cannot be written (e.g. a missing directory, a full disk).
    """
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f"{TMP_PREFIX}{name}-{uuid.uuid4().hex[:12]}")
    try:
        with open(tmp, "xb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every system can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
