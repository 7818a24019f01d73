from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from gcl.data.locks import held_lock, try_lock


def _hold(path: Path, entered: Any, seconds: float) -> None:
    with held_lock(path):
        entered.set()
        time.sleep(seconds)


def test_held_lock_waits_for_another_process_and_try_lock_does_not(tmp_path: Path, fork_context: Any) -> None:
    path = tmp_path / "nested" / ".build.lock"  # its folder is created
    context = fork_context
    entered = context.Event()
    holder = context.Process(target=_hold, args=(path, entered, 0.6))
    holder.start()
    assert entered.wait(30)
    assert try_lock(path) is None  # held elsewhere: no waiting
    started = time.monotonic()
    with held_lock(path):  # waits for the holder's block to end
        waited = time.monotonic() - started
    holder.join(30)
    handle = try_lock(path)  # free again, and released when closed
    assert handle is not None
    handle.close()
    assert waited > 0.2


def test_a_file_system_without_locks_runs_unlocked_with_a_warning(tmp_path: Path, monkeypatch: Any) -> None:
    import errno
    import fcntl

    import pytest

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.warns(UserWarning, match=r"cannot lock .*No locks available.*without the lock"):
        handle = try_lock(tmp_path / "task.lock")
    assert handle is not None  # not taken for "held by another process"
    handle.close()
    with pytest.warns(UserWarning, match="without the lock"), held_lock(tmp_path / "build.lock"):
        pass
