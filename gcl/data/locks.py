r"""Advisory file locks between processes (``flock`` on POSIX, ``msvcrt.locking``
on Windows): the operating system releases a lock when its file is closed or
its process ends, however it ends, so a killed process never leaves one held."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

__all__ = ["held_lock", "try_lock"]


def _lock(handle: IO[bytes], wait: bool) -> bool:
    r"""Locks ``handle`` exclusively; ``False`` when ``wait=False`` and another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
        import msvcrt

        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return True
            except OSError:
                if not wait:
                    return False
                time.sleep(0.1)
    import errno
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False  # held elsewhere
        # a file system without locks (some network mounts): run unlocked, as before locks
        _warn_unlocked(handle, error)
    return True


def _warn_unlocked(handle: IO[bytes], error: OSError) -> None:
    import warnings

    warnings.warn(f"cannot lock {handle.name} ({error.strerror}): going on without the lock; processes sharing "
                  "this folder are not kept apart", stacklevel=3)


def try_lock(path: str | os.PathLike[str]) -> IO[bytes] | None:
    r"""Takes the exclusive lock of the file ``path`` (created if missing, with its
    folder) without waiting: the open file, which holds the lock until it is
    closed, or ``None`` when another process holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+b")
    if not _lock(handle, wait=False):
        handle.close()
        return None
    return handle


@contextlib.contextmanager
def held_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    r"""Holds the exclusive lock of the file ``path`` (created if missing, with its
    folder) for the ``with`` block, waiting for other processes to release it.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / ".build.lock"
        >>> with held_lock(path):     # one process builds, the others wait here
        ...     print(try_lock(path))  # held: a second taker is turned away
        None
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        _lock(handle, wait=True)  # a file system without locks runs the block unlocked, with a warning
        yield
