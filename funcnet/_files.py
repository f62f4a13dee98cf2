"""Atomic file writes, shared by ``io`` (checkpoints) and ``plot`` (figures).

A file is written to a temporary file beside it, synced to disk and renamed
over it, so a reader or a crash finds the old file or the new one, never half
of one. The temporary file is named ``.tmp-<target name>-<pid>-<12 hex digits>``
after the process writing it; a process killed before its rename leaves it
behind, and the next write into that directory removes it once no process has
that PID.

>>> import tempfile
>>> with tempfile.TemporaryDirectory() as d:
...     atomic_write(os.path.join(d, "a.txt"), lambda f: f.write(b"hello"))
...     os.listdir(d)
['a.txt']
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable
from typing import BinaryIO

#: The start of a temporary file's name: ``.tmp-<target name>-<pid>-<12 hex digits>``.
TMP_PREFIX = ".tmp-"
_TMP_NAME = re.compile(re.escape(TMP_PREFIX) + r".+-(\d+)-[0-9a-f]{12}")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` by calling ``write`` on a temporary file, then renaming it over ``path``.

    The temporary file sits in ``path``'s directory, because a rename is atomic
    only within one file system. It gets the mode a plain ``open`` would give
    (or the mode of the file it replaces), is synced before the rename, and is
    removed if anything fails, the error then propagating unchanged. The
    directory is synced after the rename, so the rename itself survives a power
    cut. Then the temporary files that processes now gone left in the directory
    are removed (``remove_dead_temporaries``).

    Raises:
      OSError: the file cannot be written (e.g. a missing directory, a full disk).
    """
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f"{TMP_PREFIX}{name}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
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
    remove_dead_temporaries(directory)


def _is_gone(pid: int) -> bool:
    """True when no process on this machine has the id ``pid``."""
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):  # alive under another user; no possible PID
        return False
    return False


def remove_dead_temporaries(directory: str) -> None:
    """Remove the files in ``directory`` named as ``atomic_write``'s temporaries whose
    writer's PID no process has now.

    Files of a running PID (a write in progress, or a PID reused since) and
    names of another form stay. PIDs are those of this machine, so in a
    directory that several machines write to, another machine's write in
    progress could be removed. Only POSIX systems are checked: elsewhere
    ``os.kill(pid, 0)`` ends the process instead of asking about it. A file
    that cannot be removed, or a directory that cannot be listed, is left for
    a later write.
    """
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TMP_NAME.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False) and _is_gone(int(match[1])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
