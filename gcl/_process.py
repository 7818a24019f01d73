r"""Helpers for the worker processes gcl starts (private): a launch's ranks, view workers and
the benchmark runner's workers."""

from __future__ import annotations

import os
import sys
import threading
import time


def started_by_main_thread() -> bool:
    r"""Whether the calling thread is the main thread: what a process about to start workers
    passes on to :func:`exit_with_parent`."""
    return threading.current_thread() is threading.main_thread()


def exit_with_parent(parent: int, *, started_by_main: bool = True) -> None:
    r"""Ends this worker process when ``parent``, the process that started it, ends,
    however it ends (a SIGTERM, a SIGKILL or the out-of-memory killer included): an
    orphaned worker would go on training, or wait in a collective, for nobody.

    On Linux the kernel sends the worker SIGTERM (``PR_SET_PDEATHSIG``), even while it
    runs compiled code. That signal comes when the *thread* that started the worker
    ends, so it is used only for workers started by the parent's main thread
    (``started_by_main``, see :func:`started_by_main_thread`): the main thread lasts as
    long as the process. Elsewhere, and for workers started by another thread (which
    may end while the parent goes on), a thread of the worker checks every second
    whether its parent is gone.

    Args:
        parent (int): The process id of the parent.
        started_by_main (bool): Whether the parent's main thread started this worker.
            (default: :obj:`True`)
    """
    if started_by_main and sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent ended before the call
                os._exit(1)
            return
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="gcl-parent-watch", daemon=True).start()
