"""Atomic file writes, shared by ``io`` (checkpoints) and ``plot`` (figures).

A file is written to ``.tmp-<target name>-<pid>-<12 hex digits>`` beside it,
synced and renamed over it, so a reader or a crash finds the old file or the
new one, never half of one. A writer killed before its rename leaves its
temporary file behind; the next write into that directory removes it once no
process has that PID.

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

_TMP_NAME = re.compile(r"\.tmp-.+-(\d+)-[0-9a-f]{12}")


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` by calling ``write`` on a temporary file, then renaming it over ``path``.

    The temporary file sits beside ``path`` (a rename is atomic only within one
    file system), gets the mode of a plain ``open`` or of the file it replaces,
    and is removed if anything fails, the error propagating unchanged.

    Raises:
      OSError: the file cannot be written (e.g. a missing directory, a full disk).
    """
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:12]}")
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
    with contextlib.suppress(OSError):  # sync the rename itself, where a directory opens
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
        pass
    return False


def remove_dead_temporaries(directory: str) -> None:
    """Remove ``atomic_write``'s temporary files in ``directory`` whose writer's PID is gone.

    PIDs are this machine's, so in a directory that several machines write to,
    another machine's write in progress could be removed. Only POSIX systems
    are checked (elsewhere ``os.kill(pid, 0)`` ends the process). What cannot
    be listed or removed is left for a later write.
    """
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TMP_NAME.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False) and _is_gone(int(match[1])):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
